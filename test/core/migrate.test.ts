import assert from 'node:assert/strict'
import {describe, test} from 'node:test'

import {keyLayout} from '../../src/core/keys.js'
import {classifyKeys, type RawKV} from '../../src/core/leases.js'
import {planMigration, v2DeleteCommand, verifyMigration} from '../../src/core/migrate.js'

const layout = keyLayout('/coreos.com/network')
const CFG = '{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}'
const val = (n: number) =>
  `{"PublicIP":"192.168.1.${n}","BackendType":"vxlan","BackendData":{"VtepMAC":"c6:d2:32:6f:8f:${String(n).padStart(2, '0')}"}}`
const sub = (n: number) => `/coreos.com/network/subnets/10.5.${n}.0-24`

function kv(key: string, value: string, lease = '0', mod = '3'): RawKV {
  return {key, value, createRevision: mod, modRevision: mod, version: '1', lease}
}
const snap = (...kvs: RawKV[]) => classifyKeys(layout, kvs, '10')
const v2lease = (key: string) => `v2:${key}`

describe('migrate planning', () => {
  const v2 = snap(
    kv('/coreos.com/network/config', CFG),
    kv(sub(12), val(12), v2lease(sub(12))),
    kv(sub(2), val(2), v2lease(sub(2))),
    kv(sub(20), val(20)),
    kv(sub(30), val(30), v2lease(sub(30))),
    kv('/coreos.com/network/multi/config', '{}'),
  )
  const v2Ttls = new Map([
    [v2lease(sub(12)), 86_000],
    [v2lease(sub(2)), 500],
    [v2lease(sub(30)), 100],
  ])

  test('subnets in numeric order with their remaining TTLs (null for the reservation), the config last, other keys ignored', () => {
    const plan = planMigration({v2, v2Ttls, v3: snap()})
    assert.deepEqual(
      plan.items.map((p) => [p.key, p.kind, p.action, p.ttlSeconds]),
      [
        [sub(2), 'subnet', 'create', 500],
        [sub(12), 'subnet', 'create', 86_000],
        [sub(20), 'subnet', 'create', null],
        [sub(30), 'subnet', 'create', 100],
        ['/coreos.com/network/config', 'config', 'create', null],
      ],
    )
    assert.deepEqual(plan.ignored, ['/coreos.com/network/multi/config'])
    assert.equal(plan.items[0]!.value, val(2))
  })

  test('a v3 key with the same value is skipped (whatever its lease), a different value is a conflict', () => {
    const plan = planMigration({
      v2,
      v2Ttls,
      v3: snap(kv(sub(12), val(12), '777'), kv(sub(20), val(99)), kv('/coreos.com/network/config', CFG)),
    })
    assert.deepEqual(
      plan.items.map((p) => [p.key, p.action]),
      [
        [sub(2), 'create'],
        [sub(12), 'skip'],
        [sub(20), 'conflict'],
        [sub(30), 'create'],
        ['/coreos.com/network/config', 'skip'],
      ],
    )
    assert.deepEqual(plan.items[2]!.v3, {value: val(99), modRevision: '3', lease: '0'})
  })
})

describe('migrate verification', () => {
  const v2 = snap(kv('/coreos.com/network/config', CFG), kv(sub(2), val(2), v2lease(sub(2))), kv(sub(20), val(20)))
  const v2Ttls = new Map([[v2lease(sub(2)), 1000]])
  const created = new Set([sub(2), sub(20), '/coreos.com/network/config'])
  const base = {v2, v2Ttls, created, kept: new Set<string>(), toleranceSeconds: 5}

  test('equal keyspaces verify', () => {
    const v3 = snap(kv('/coreos.com/network/config', CFG), kv(sub(2), val(2), '55'), kv(sub(20), val(20)))
    assert.deepEqual(verifyMigration({...base, v3, v3Ttls: new Map([['55', 997]])}), [])
  })

  test('each kind of difference is reported', () => {
    const v3 = snap(kv(sub(2), val(2), '55'), kv(sub(20), val(20), '56'))
    const d = verifyMigration({...base, v3, v3Ttls: new Map([['55', 900]])})
    assert.deepEqual(
      d.map((x) => x.key),
      ['/coreos.com/network/config', sub(2), sub(20)],
    )
    assert.match(d[0]!.problem, /missing in v3/)
    assert.match(d[1]!.problem, /remaining TTL differs: v2 1000 s, v3 900 s/)
    assert.match(d[2]!.problem, /no TTL \(a reservation\) but the v3 key has etcd lease 56/)
    const noLease = verifyMigration({
      ...base,
      v3: snap(kv('/coreos.com/network/config', CFG), kv(sub(2), val(2)), kv(sub(20), val(20))),
      v3Ttls: new Map(),
    })
    assert.match(noLease[0]!.problem, /v2 has a TTL of 1000 s but the v3 key has no lease/)
    const changed = verifyMigration({
      ...base,
      v3: snap(kv('/coreos.com/network/config', '{}'), kv(sub(2), val(2), '55'), kv(sub(20), val(20))),
      v3Ttls: new Map([['55', 1000]]),
    })
    assert.deepEqual(
      changed.map((x) => x.problem),
      ['value differs: v2 "{\\"Network\\":\\"10.5.0.0/16\\",\\"Backend\\":{\\"Type\\":\\"vxlan\\"}}", v3 "{}"'],
    )
  })

  test('keys not created by this run are compared by value only; keys kept by --force not at all', () => {
    const v3 = snap(kv('/coreos.com/network/config', '{}'), kv(sub(2), val(2), '77'), kv(sub(20), val(20), '78'))
    assert.deepEqual(
      verifyMigration({
        ...base,
        created: new Set(),
        kept: new Set(['/coreos.com/network/config']),
        v3,
        v3Ttls: new Map(),
      }),
      [],
    )
  })
})

test('the v2 delete command spares other keys under the prefix', () => {
  assert.equal(v2DeleteCommand(layout, false, ''), 'ETCDCTL_API=2 etcdctl rm --recursive /coreos.com/network')
  assert.equal(
    v2DeleteCommand(keyLayout('coreos.com/network'), true, '--endpoints http://10.0.0.1:2379'),
    'ETCDCTL_API=2 etcdctl --endpoints http://10.0.0.1:2379 rm /coreos.com/network/config && ETCDCTL_API=2 etcdctl --endpoints http://10.0.0.1:2379 rm --recursive /coreos.com/network/subnets',
  )
})

test('a config key with a v2 TTL is planned with it, like any TTL key', () => {
  const key = '/coreos.com/network/config'
  const plan = planMigration({v2: snap(kv(key, CFG, v2lease(key))), v2Ttls: new Map([[v2lease(key), 60]]), v3: snap()})
  assert.deepEqual(
    plan.items.map((p) => [p.key, p.ttlSeconds]),
    [[key, 60]],
  )
})
