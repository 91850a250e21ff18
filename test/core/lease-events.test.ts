import assert from 'node:assert/strict'
import {describe, test} from 'node:test'

import {
  applyChange,
  classifyChange,
  diffSubnets,
  expandDirDelete,
  type SubnetChange,
  valueChanges,
} from '../../src/core/lease-events.js'
import type {RawKV} from '../../src/core/leases.js'

const K = '/coreos.com/network/subnets/10.5.1.0-24'
const vx = (ip: string, mac = 'aa:bb:cc:dd:ee:01') =>
  `{"PublicIP":"${ip}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${mac}"}}`
const kv = (value: string, lease = '7', mod = '3', key = K): RawKV => ({
  key,
  value,
  createRevision: '2',
  modRevision: mod,
  version: '1',
  lease,
})
const put = (k: RawKV, prev: RawKV | null = null): SubnetChange => ({type: 'put', kv: k, prev})
const del = (prev: RawKV | null, expired?: boolean): SubnetChange => ({
  type: 'delete',
  key: K,
  revision: '9',
  prev,
  ...(expired === undefined ? {} : {expired}),
})

describe('classifyChange', () => {
  test('a put of a new key is added', () => {
    assert.deepEqual(classifyChange(put(kv(vx('192.0.2.1'))), null), {kind: 'added', changes: []})
  })

  test("flanneld's renewal (same value, new lease) is renewed; a re-put with the same lease too", () => {
    const before = kv(vx('192.0.2.1'), '7')
    assert.deepEqual(classifyChange(put(kv(vx('192.0.2.1'), '8', '4')), before), {kind: 'renewed', changes: ['lease']})
    assert.deepEqual(classifyChange(put(kv(vx('192.0.2.1'), '7', '4')), before), {kind: 'renewed', changes: []})
  })

  test('v2: a set with a TTL of the same value (same synthetic lease) is renewed', () => {
    const v2 = `v2:${K}`
    assert.deepEqual(classifyChange(put(kv(vx('192.0.2.1'), v2, '12')), kv(vx('192.0.2.1'), v2, '10')), {
      kind: 'renewed',
      changes: [],
    })
  })

  test('a changed value names the LeaseAttrs fields that differ', () => {
    const before = kv(vx('192.0.2.1'))
    assert.deepEqual(classifyChange(put(kv(vx('192.0.2.2'), '8')), before), {kind: 'changed', changes: ['PublicIP']})
    assert.deepEqual(classifyChange(put(kv(vx('192.0.2.1', 'aa:bb:cc:dd:ee:02'), '8')), before), {
      kind: 'changed',
      changes: ['BackendData'],
    })
    assert.deepEqual(classifyChange(put(kv('{"PublicIP":"192.0.2.1","BackendType":"host-gw"}')), before).changes, [
      'BackendType',
      'BackendData',
    ])
  })

  test('a value that does not decode on either side changes "value"; other bytes for the same fields too', () => {
    assert.deepEqual(classifyChange(put(kv('junk')), kv(vx('192.0.2.1'))), {kind: 'changed', changes: ['value']})
    assert.deepEqual(valueChanges(vx('192.0.2.1'), vx('192.0.2.1').replace('"PublicIP"', '"publicip"')), ['value'])
  })

  test('the same value losing its lease is changed/reserved; getting one back changed/unreserved', () => {
    const v = vx('192.0.2.1')
    assert.deepEqual(classifyChange(put(kv(v, '0')), kv(v, '7')), {kind: 'changed', changes: ['reserved']})
    assert.deepEqual(classifyChange(put(kv(v, '9')), kv(v, '0')), {kind: 'changed', changes: ['unreserved']})
    assert.deepEqual(classifyChange(put(kv(vx('192.0.2.2'), '0')), kv(v, '7')), {
      kind: 'changed',
      changes: ['PublicIP', 'reserved'],
    })
  })

  test('deletes: expired when the store says so (v2 expire) or the lease is gone (v3), else deleted', () => {
    const before = kv(vx('192.0.2.1'))
    assert.equal(classifyChange(del(before, true), before).kind, 'expired')
    assert.equal(classifyChange(del(before, false), before, true).kind, 'deleted')
    assert.equal(classifyChange(del(before), before, true).kind, 'expired')
    assert.equal(classifyChange(del(before), before, false).kind, 'deleted')
    assert.equal(classifyChange(del(before), before, null).kind, 'deleted')
    assert.equal(classifyChange(del(null), null).kind, 'deleted')
  })
})

describe('state and resync', () => {
  test('applyChange keeps the state; a v2 directory delete removes every key under it', () => {
    const state = new Map<string, RawKV>()
    applyChange(state, put(kv(vx('192.0.2.1'))))
    const other = kv(vx('192.0.2.2'), '5', '4', '/coreos.com/network/subnets/10.5.2.0-24')
    applyChange(state, put(other))
    assert.equal(state.size, 2)
    const dir: SubnetChange = {type: 'delete', key: '/coreos.com/network/subnets', revision: '9', prev: null, dir: true}
    const expanded = expandDirDelete(state, dir)
    assert.deepEqual(
      expanded.map((c) => (c.type === 'delete' ? [c.key, c.prev?.value] : null)),
      [
        [K, vx('192.0.2.1')],
        [other.key, vx('192.0.2.2')],
      ],
    )
    applyChange(state, dir)
    assert.equal(state.size, 0)
  })

  test('diffSubnets: new, changed and gone keys, in key order; unchanged keys give nothing', () => {
    const a = kv(vx('192.0.2.1'), '7', '3', '/s/a')
    const b = kv(vx('192.0.2.2'), '7', '3', '/s/b')
    const c = kv(vx('192.0.2.3'), '7', '3', '/s/c')
    const known = new Map([a, b, c].map((x) => [x.key, x]))
    const bRenewed = {...b, lease: '8', modRevision: '20'}
    const d = kv(vx('192.0.2.4'), '9', '21', '/s/d')
    const diff = diffSubnets(known, [a, bRenewed, d], '22')
    assert.deepEqual(
      diff.map((x) => [x.type, x.type === 'put' ? x.kv.key : x.key, x.prev?.key ?? null]),
      [
        ['put', '/s/b', '/s/b'],
        ['delete', '/s/c', '/s/c'],
        ['put', '/s/d', null],
      ],
    )
    const kinds = diff.map((x) => classifyChange(x, x.prev).kind)
    assert.deepEqual(kinds, ['renewed', 'deleted', 'added'])
    assert.equal((diff[1] as {revision: string}).revision, '22')
  })
})
