import assert from 'node:assert/strict'
import {describe, test} from 'node:test'

import {keyLayout} from '../../src/core/keys.js'
import {classifyKeys, type RawKV} from '../../src/core/leases.js'
import {planMigration, sameLease, v2DeleteCommand, verifyMigration} from '../../src/core/migrate.js'
import {flattenV2} from '../../src/core/v2-keyspace.js'

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
    const r = verifyMigration({...base, v3, v3Ttls: new Map([['55', 997]])})
    assert.deepEqual(r.differences, [])
    assert.deepEqual(r.compared, {keys: 3, sameBytes: 3, sameLease: 0, leaseNess: 3, ttls: 1, expired: 0, kept: 0})
  })

  test('each kind of difference is reported', () => {
    const v3 = snap(kv(sub(2), val(2), '55'), kv(sub(20), val(20), '56'))
    const d = verifyMigration({...base, v3, v3Ttls: new Map([['55', 900]])}).differences
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
    }).differences
    assert.match(
      noLease[0]!.problem,
      /v2 has a TTL of 1000 s but the v3 key has no lease: it would never expire in v3 \(give it one: flannelctl leases unreserve 10\.5\.2\.0\/24 --etcd-api v3 --ttl 1000s\)/,
    )
    const changed = verifyMigration({
      ...base,
      v3: snap(kv('/coreos.com/network/config', '{}'), kv(sub(2), val(2), '55'), kv(sub(20), val(20))),
      v3Ttls: new Map([['55', 1000]]),
    }).differences
    assert.deepEqual(
      changed.map((x) => x.problem),
      ['value differs: v2 "{\\"Network\\":\\"10.5.0.0/16\\",\\"Backend\\":{\\"Type\\":\\"vxlan\\"}}", v3 "{}"'],
    )
  })

  test('keys not created by this run: value and lease-ness; a reservation v3 put under a lease is a note; --force-kept keys not at all', () => {
    const v3 = snap(kv('/coreos.com/network/config', '{}'), kv(sub(2), val(2), '77'), kv(sub(20), val(20), '78'))
    const r = verifyMigration({
      ...base,
      created: new Set(),
      kept: new Set(['/coreos.com/network/config']),
      v3,
      v3Ttls: new Map(),
    })
    assert.deepEqual(r.differences, [])
    assert.deepEqual(
      r.notes.map((n) => n.key),
      [sub(20)],
    )
    assert.match(r.notes[0]!.problem, /flannelctl leases reserve 10\.5\.20\.0\/24 --etcd-api v3/)
    assert.deepEqual(r.compared, {keys: 2, sameBytes: 2, sameLease: 0, leaseNess: 2, ttls: 0, expired: 0, kept: 1})
  })

  test('a v2 lease that v3 holds with no lease is a difference even when this run did not create it (an earlier run made it permanent)', () => {
    const v3 = snap(kv('/coreos.com/network/config', CFG), kv(sub(2), val(2)), kv(sub(20), val(20)))
    const r = verifyMigration({...base, created: new Set(), v3, v3Ttls: new Map()})
    assert.deepEqual(
      r.differences.map((d) => d.key),
      [sub(2)],
    )
  })

  test('a key created without a lease that vanished from v2 since is a difference; one with a lease is not', () => {
    const v2 = snap(kv('/coreos.com/network/config', CFG))
    const v3 = snap(kv('/coreos.com/network/config', CFG), kv(sub(2), val(2), '55'), kv(sub(20), val(20)))
    const r = verifyMigration({...base, v2, v2Ttls: new Map(), v3, v3Ttls: new Map([['55', 900]])})
    assert.deepEqual(
      r.differences.map((d) => [d.key, d.problem]),
      [
        [
          sub(20),
          'copied without a lease, but it has since vanished from v2 (deleted or expired): v3 keeps it forever',
        ],
      ],
    )
  })

  test('v2 keys past their expiration are not compared', () => {
    const v3 = snap(kv('/coreos.com/network/config', CFG), kv(sub(20), val(20)))
    const r = verifyMigration({...base, v2Ttls: new Map([[v2lease(sub(2)), -1]]), v3, v3Ttls: new Map()})
    assert.deepEqual(r.differences, [])
    assert.equal(r.compared.expired, 1)
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

describe('the expiry window: a v2 key past its expiration is a dying lease, never a reservation', () => {
  // What etcd 3.4 answers for ~0.2-0.5 s after a key's TTL ran out, until the leader's expiry sweep deletes it:
  // `expiration` without `ttl` (measured against etcd 3.4.23 with `set --ttl 1`).
  const dying = {
    key: sub(40),
    value: val(40),
    expiration: '2026-12-01T20:25:42.442555439Z',
    modifiedIndex: 12,
    createdIndex: 12,
  }
  const dir = {key: '/coreos.com/network', dir: true, modifiedIndex: 1, createdIndex: 1}

  test('flattenV2 gives it a lease with TTL -1, and a key with neither ttl nor expiration lease 0', () => {
    const flat = flattenV2(
      {...dir, nodes: [dying, {key: sub(41), value: val(41), modifiedIndex: 13, createdIndex: 13}]},
      layout,
    )
    assert.deepEqual(
      flat.kvs.map((k) => [k.key, k.lease]),
      [
        [sub(40), v2lease(sub(40))],
        [sub(41), '0'],
      ],
    )
    assert.deepEqual([...flat.ttls], [[v2lease(sub(40)), -1]])
  })

  test('a ttl of 0 or less (a late sweep) is expired too; a positive ttl is kept', () => {
    const flat = flattenV2(
      {
        ...dir,
        nodes: [
          {...dying, key: sub(42), ttl: -1},
          {...dying, key: sub(43), ttl: 7},
        ],
      },
      layout,
    )
    assert.deepEqual(
      [...flat.ttls],
      [
        [v2lease(sub(42)), -1],
        [v2lease(sub(43)), 7],
      ],
    )
  })

  test('migrate plans it as expired: not created in v3, with or without a lease, and not a conflict', () => {
    const flat = flattenV2({...dir, nodes: [dying]}, layout)
    const v2 = snap(kv('/coreos.com/network/config', CFG), ...flat.kvs)
    for (const v3 of [snap(), snap(kv(sub(40), val(99), '5'))]) {
      const plan = planMigration({v2, v2Ttls: flat.ttls, v3})
      assert.deepEqual(
        plan.items.map((p) => [p.key, p.action, p.ttlSeconds]),
        [
          [sub(40), 'expired', -1],
          ['/coreos.com/network/config', 'create', null],
        ],
      )
    }
  })
})

describe('already migrated: a v3 lease rewritten by flanneld >= 0.18 is the same lease', () => {
  const v011 = '{"PublicIP":"192.168.1.12","BackendType":"vxlan","BackendData":{"VtepMAC":"c6:d2:32:6f:8f:44"}}'
  const v018 =
    '{"PublicIP":"192.168.1.12","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}'

  test('sameLease compares PublicIP, PublicIPv6, BackendType and VtepMAC', () => {
    assert.equal(sameLease(v011, v018), true)
    assert.equal(sameLease(v011, v018.replace('8f:44', '8f:45')), false)
    assert.equal(sameLease(v011, v018.replace('1.12"', '1.13"')), false)
    assert.equal(sameLease(v011, v018.replace('"vxlan"', '"host-gw"')), false)
    assert.equal(sameLease(v011, v018.replace('"PublicIPv6":null', '"PublicIPv6":"fd00::1"')), false)
    assert.equal(
      sameLease(
        '{"PublicIP":"192.168.1.12","BackendType":"host-gw"}',
        '{"PublicIP":"192.168.1.12","PublicIPv6":null,"BackendType":"host-gw","BackendData":null}',
      ),
      true,
    )
    assert.equal(sameLease('{"PublicIP":', '{"PublicIP":'), true)
    assert.equal(sameLease('{"PublicIP":', '{"PublicIP": '), false)
  })

  test('planned as skip (match lease), verified as the same lease', () => {
    const v2 = snap(kv('/coreos.com/network/config', CFG), kv(sub(12), v011, v2lease(sub(12))))
    const v2Ttls = new Map([[v2lease(sub(12)), 80_000]])
    const v3 = snap(kv('/coreos.com/network/config', CFG), kv(sub(12), v018, '99'))
    const plan = planMigration({v2, v2Ttls, v3})
    assert.deepEqual(
      plan.items.map((p) => [p.action, p.match]),
      [
        ['skip', 'lease'],
        ['skip', 'bytes'],
      ],
    )
    const r = verifyMigration({
      v2,
      v2Ttls,
      v3,
      v3Ttls: new Map(),
      created: new Set(),
      kept: new Set(),
      toleranceSeconds: 5,
    })
    assert.deepEqual(r.differences, [])
    assert.deepEqual(r.compared, {keys: 2, sameBytes: 1, sameLease: 1, leaseNess: 2, ttls: 0, expired: 0, kept: 0})
  })

  test('the config is compared byte for byte only', () => {
    const v2 = snap(kv('/coreos.com/network/config', CFG))
    const v3 = snap(kv('/coreos.com/network/config', CFG.replace(',', ', ')))
    assert.equal(planMigration({v2, v2Ttls: new Map(), v3}).items[0]!.action, 'conflict')
  })
})
