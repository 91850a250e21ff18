// The agent's behaviour on fakes (test/agent/fakes.ts): no root, no etcd, a manual clock. The namespace e2e suites
// (*.e2e.test.ts) prove the same against the real kernel and a real etcd.

import assert from 'node:assert/strict'
import {describe, test} from 'node:test'

import {ConflictError} from '../../src/core/errors.js'
import {FakeStore, hostGwValue, ip, RecordingDataplane, vxlanValue} from './fakes.js'
import {HOSTGW_CONFIG, startAgent, SUBNET_FILE, VXLAN_CONFIG} from './harness.js'

const DAY = 86_400_000
const HOUR = 3_600_000
/** Few resync wake-ups when a test moves the clock by hours. */
const SLOW_RESYNC = {resyncMs: HOUR}
const key = (seg: string) => `/coreos.com/network/subnets/${seg}`

describe('acquire', () => {
  test('a fresh node creates a 24 h lease with flanneld bytes, sets up the device, writes subnet.env, is ready', async () => {
    const h = startAgent()
    await h.settle()
    const s = h.agent.getStatus()
    assert.equal(s.ready, true, h.logs.text())
    assert.equal(s.lease, 'held')
    assert.equal(s.subnet, '198.19.1.0/24')
    const kv = h.store.kvs.get(key('198.19.1.0-24'))!
    const mac = h.dp.links.get('flannel.1')!.mac
    assert.equal(kv.value, vxlanValue('198.18.0.1', mac))
    assert.equal(h.store.grants.get(kv.lease), 86_400)
    assert.deepEqual(
      h.dp.log.filter((l) => !l.startsWith('ensure ') && !l.startsWith('flush') && !l.startsWith('removeNft')),
      ['ensureDevice flannel.1 local 198.18.0.1 mtu 1450', 'configureAddress flannel.1 198.19.1.0/32', 'readActual'],
    )
    assert.equal(
      h.files.files.get(SUBNET_FILE),
      'FLANNEL_NETWORK=198.19.0.0/16\nFLANNEL_SUBNET=198.19.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n',
    )
    assert.equal(s.expiresAt, new Date(h.clock.now() + DAY).toISOString())
    assert.equal((await h.stop()).ok, true)
    assert.equal(h.clock.pending, 0)
  })

  test('a lost race picks again, and the other node keeps the subnet it won', async () => {
    const store = new FakeStore(VXLAN_CONFIG)
    const create = store.createLease.bind(store)
    let first = true
    store.createLease = (k, v, ttl) => {
      if (first) {
        first = false
        store.put(k, vxlanValue('198.18.0.7', '02:00:00:00:00:07'), '99')
      }
      return create(k, v, ttl)
    }
    const h = startAgent({store})
    await h.settle()
    assert.match(h.logs.text(), /lost the race for a subnet, picking again/)
    assert.deepEqual(store.holders(), {'198.19.1.0-24': '198.18.0.7', '198.19.2.0-24': '198.18.0.1'})
    assert.equal(h.agent.getStatus().subnet, '198.19.2.0/24')
    await h.stop()
  })

  test('the lease holding our PublicIP is reused; the subnet of an earlier subnet.env is preferred when free', async () => {
    const store = new FakeStore(VXLAN_CONFIG)
    store.put(key('198.19.9.0-24'), vxlanValue('198.18.0.1', '02:00:00:00:00:99'), '5')
    const h = startAgent({store})
    await h.settle()
    assert.equal(h.agent.getStatus().subnet, '198.19.9.0/24')
    assert.match(h.logs.text(), /found lease 198\.19\.9\.0\/24 for current IP 198\.18\.0\.1, reusing/)
    await h.stop()
    const h2 = startAgent({files: h.files})
    h2.files.files.set(SUBNET_FILE, 'FLANNEL_NETWORK=198.19.0.0/16\nFLANNEL_SUBNET=198.19.42.1/24\n')
    await h2.settle()
    assert.equal(h2.agent.getStatus().subnet, '198.19.42.0/24')
    assert.match(h2.logs.text(), /reusing previously leased subnet 198\.19\.42\.0\/24/)
    await h2.stop()
  })

  test('etcd errors while acquiring are retried with a backoff (1 s, 2 s, 4 s ...)', async () => {
    const store = new FakeStore(VXLAN_CONFIG)
    const h = startAgent({store})
    store.failNext('readNetwork', new Error('etcd down')) // loadConfig
    await h.settle()
    assert.equal(h.agent.getStatus().lease, 'pending')
    assert.match(h.logs.text(), /reading the config: etcd down; retrying in 1s/)
    await h.clock.advance(1000)
    assert.equal(h.agent.getStatus().ready, true, h.logs.text())
    await h.stop()
  })
})

describe('renew', () => {
  test('renews at expiry minus the margin, with a new lease, and the old one is gone', async () => {
    const h = startAgent({options: SLOW_RESYNC})
    await h.settle()
    const k = h.agent.getStatus().key!
    const firstLease = h.store.kvs.get(k)!.lease
    const renewals = () => h.store.calls.filter((c) => c.startsWith('renewLease')).length
    await h.clock.advance(23 * HOUR - 1000)
    assert.equal(renewals(), 0)
    await h.clock.advance(1000)
    assert.equal(renewals(), 1)
    const kv = h.store.kvs.get(k)!
    assert.notEqual(kv.lease, firstLease)
    assert.equal(h.store.grants.has(firstLease), false)
    assert.equal(h.agent.getStatus().expiresAt, new Date(h.clock.now() + DAY).toISOString())
    await h.clock.advance(23 * HOUR)
    assert.equal(renewals(), 2)
    await h.stop()
  })

  test('a reservation is not renewed', async () => {
    const h = startAgent({options: SLOW_RESYNC})
    await h.settle()
    const k = h.agent.getStatus().key!
    h.store.put(k, h.store.kvs.get(k)!.value, '0')
    await h.settle()
    assert.equal(h.agent.getStatus().reserved, true)
    await h.clock.advance(3 * DAY)
    assert.equal(h.store.calls.filter((c) => c.startsWith('renewLease')).length, 0)
    assert.equal(h.agent.getStatus().ready, true)
    await h.stop()
  })

  test('a failed renewal is retried well before the lease runs out', async () => {
    const h = startAgent({options: SLOW_RESYNC})
    await h.settle()
    h.store.failNext('renewLease', new Error('etcd timeout'))
    await h.clock.advance(23 * HOUR)
    assert.match(h.logs.text(), /renewing .* failed: etcd timeout; 3600s of lease left/)
    await h.clock.advance(60_000)
    assert.equal(h.store.calls.filter((c) => c.startsWith('renewLease')).length, 2)
    assert.equal(h.agent.getStatus().ready, true)
    await h.stop()
  })
})

describe('own key', () => {
  test('deleted (expired or removed): re-acquired, the same subnet when still free', async () => {
    const h = startAgent()
    await h.settle()
    const k = h.agent.getStatus().key!
    h.store.expire(h.store.kvs.get(k)!.lease)
    await h.settle()
    assert.match(h.logs.text(), /OUR LEASE .* WAS DELETED/)
    assert.equal(h.agent.getStatus().lease, 'held')
    assert.equal(h.agent.getStatus().subnet, '198.19.1.0/24')
    assert.equal(h.store.holders()['198.19.1.0-24'], '198.18.0.1')
    // And it goes on programming peers (a sync that found no lease must not leave the scheduler stuck).
    h.store.put(key('198.19.5.0-24'), vxlanValue('198.18.0.5', '02:00:00:00:00:05'), '7')
    await h.settle()
    assert.ok(h.dp.lines().includes('fdb replace 02:00:00:00:00:05 dev flannel.1 dst 198.18.0.5 self permanent'))
    await h.stop()
  })

  test('taken over by another node: a new subnet, and the node says its subnet changed', async () => {
    const h = startAgent()
    await h.settle()
    const k = h.agent.getStatus().key!
    h.store.put(k, vxlanValue('198.18.0.9', '02:00:00:00:00:09'), '42')
    await h.settle()
    assert.match(h.logs.text(), /was taken over by another node \(198\.18\.0\.9\); re-acquiring/)
    assert.match(h.logs.text(), /THIS NODE'S SUBNET CHANGED to 198\.19\.2\.0\/24/)
    assert.equal(h.agent.getStatus().subnet, '198.19.2.0/24')
    assert.match(h.files.files.get(SUBNET_FILE) ?? '', /FLANNEL_SUBNET=198\.19\.2\.1\/24/)
    assert.deepEqual(h.store.holders(), {'198.19.1.0-24': '198.18.0.9', '198.19.2.0-24': '198.18.0.1'})
    await h.stop()
  })

  test('a guarded renewal that loses to a takeover re-acquires instead of overwriting', async () => {
    const h = startAgent({options: SLOW_RESYNC})
    await h.settle()
    const k = h.agent.getStatus().key!
    const renew = h.store.renewLease.bind(h.store)
    h.store.renewLease = (kk) => {
      h.store.renewLease = renew
      return Promise.reject(new ConflictError(`${kk} changed`, 'CAS_LOST'))
    }
    // The takeover is only visible through the store (its watch event is lost): the renewal finds it.
    const old = h.store.kvs.get(k)!
    h.store.kvs.set(k, {...old, value: vxlanValue('198.18.0.9', '02:00:00:00:00:09'), modRevision: '999'})
    await h.clock.advance(23 * HOUR)
    assert.match(h.logs.text(), /taken over by another node/)
    assert.equal(h.agent.getStatus().subnet, '198.19.2.0/24')
    await h.stop()
  })
})

describe('subnet cache', () => {
  test('after compaction the agent lists again, watches from the new revision, and sees later leases', async () => {
    const h = startAgent()
    await h.settle()
    const lists = () => h.store.calls.filter((c) => c.startsWith('readNetwork')).length
    const before = lists()
    h.store.compact()
    await h.settle()
    assert.match(h.logs.text(), /the watch was cancelled \(.*compacted\); listing again/)
    assert.match(h.logs.text(), /the config watch was cancelled \(.*compacted\); reading the config again/)
    assert.equal(lists(), before + 2, 'the subnets and the config are read again')
    assert.equal(h.store.watching, 2, 'one subnets watch and one config watch')
    h.store.put(key('198.19.5.0-24'), vxlanValue('198.18.0.5', '02:00:00:00:00:05'), '7')
    await h.settle()
    assert.ok(h.dp.lines().includes('fdb replace 02:00:00:00:00:05 dev flannel.1 dst 198.18.0.5 self permanent'))
    await h.stop()
  })

  test("a peer's MAC change replaces its FDB entry and neighbour, and removes the old FDB entry", async () => {
    const store = new FakeStore(VXLAN_CONFIG)
    store.put(key('198.19.5.0-24'), vxlanValue('198.18.0.5', '02:00:00:00:00:05'), '7')
    const h = startAgent({store})
    await h.settle()
    assert.deepEqual(h.dp.plans[0]!.bridge, [
      'fdb replace 02:00:00:00:00:05 dev flannel.1 dst 198.18.0.5 self permanent',
    ])
    const reads = h.dp.log.filter((l) => l === 'readActual').length
    store.put(key('198.19.5.0-24'), vxlanValue('198.18.0.5', '02:00:00:00:00:55'), '8')
    await h.settle()
    const p = h.dp.plans.at(-1)!
    assert.deepEqual(p.bridge, [
      'fdb del 02:00:00:00:00:05 dev flannel.1 dst 198.18.0.5 self',
      'fdb replace 02:00:00:00:00:55 dev flannel.1 dst 198.18.0.5 self permanent',
    ])
    assert.ok(p.ip.includes('neigh replace 198.19.5.0 lladdr 02:00:00:00:00:55 dev flannel.1 nud permanent'))
    assert.equal(h.dp.log.filter((l) => l === 'readActual').length, reads, 'event-driven syncs read no kernel state')
    await h.stop()
  })
})

describe('backends', () => {
  test('host-gw: no device, host-gw lease bytes, a route via each peer on the interface', async () => {
    const store = new FakeStore(HOSTGW_CONFIG)
    store.put(key('198.19.5.0-24'), hostGwValue('198.18.0.5'), '7')
    const dp = new RecordingDataplane()
    dp.routes = [{dst: {ip: ip('198.18.0.0'), prefix: 24}, gateway: null, dev: 'eth0', onlink: false}]
    const h = startAgent({store, dp})
    await h.settle()
    assert.equal(h.agent.getStatus().ready, true, h.logs.text())
    assert.equal(dp.devices.length, 0)
    assert.equal(store.kvs.get(key('198.19.1.0-24'))!.value, hostGwValue('198.18.0.1'))
    assert.deepEqual(dp.lines(), ['route replace 198.19.5.0/24 via 198.18.0.5 dev eth0'])
    assert.match(h.files.files.get(SUBNET_FILE) ?? '', /FLANNEL_MTU=1500/)
    await h.stop()
  })

  test('host-gw behind NAT refuses to start (fatal, exit 2)', async () => {
    const dp = new RecordingDataplane({
      name: 'eth0',
      mtu: 1500,
      address: ip('198.18.0.1'),
      publicIP: ip('198.18.100.1'),
      how: '--iface eth0',
    })
    const h = startAgent({store: new FakeStore(HOSTGW_CONFIG), dp})
    const r = await h.done
    assert.equal(!r.ok && (r.error as {code?: string}).code, 'HOSTGW_NAT')
    assert.equal(h.clock.pending, 0)
  })

  test('an unsupported backend is refused at start', async () => {
    const h = startAgent({store: new FakeStore('{"Network":"198.19.0.0/16","Backend":{"Type":"wireguard"}}')})
    const r = await h.done
    assert.equal(!r.ok && (r.error as {code?: string}).code, 'UNSUPPORTED_BACKEND')
  })

  test('vxlan behind 1:1 NAT: the device sends from the interface address; the lease publishes the PublicIP', async () => {
    const dp = new RecordingDataplane({
      name: 'eth0',
      mtu: 1500,
      address: ip('198.18.0.1'),
      publicIP: ip('198.18.100.1'),
      how: '--iface eth0',
    })
    const h = startAgent({dp, options: {publicIP: ip('198.18.100.1')}})
    await h.settle()
    assert.equal(h.agent.getStatus().ready, true, h.logs.text())
    assert.equal(dp.devices[0]!.local, ip('198.18.0.1'))
    assert.match(h.logs.text(), /PublicIP 198\.18\.100\.1 is not an address of this host \(1:1 NAT\)/)
    const kv = h.store.kvs.get(key('198.19.1.0-24'))!
    assert.match(kv.value, /^\{"PublicIP":"198\.18\.100\.1"/)
    await h.stop()
  })

  test('a device sending from an address the host does not have is not ready and is recreated', async () => {
    const dp = new RecordingDataplane({
      name: 'eth0',
      mtu: 1500,
      address: ip('198.18.0.1'),
      publicIP: ip('198.18.100.1'),
      how: '--iface eth0',
    })
    const h = startAgent({dp, options: {publicIP: ip('198.18.100.1')}})
    await h.settle()
    // As a v0.27.4+ flanneld (or an older flannelctl) left it: local = the NAT'd PublicIP.
    const link = dp.links.get('flannel.1')!
    dp.links.set('flannel.1', {...link, vxlan: {...link.vxlan!, local: '198.18.100.1'}})
    await h.clock.advance(10_000)
    assert.match(
      h.logs.text(),
      /flannel\.1 sends from local 198\.18\.100\.1, which is not an address of this host.*; repairing it/,
    )
    assert.equal(dp.devices.at(-1)!.local, ip('198.18.0.1'))
    assert.equal(dp.links.get('flannel.1')!.vxlan!.local, '198.18.0.1')
    assert.equal(h.agent.getStatus().ready, true)
    await h.stop()
  })

  test('a vanished device is recreated with its MAC, its address and subnet.env put back', async () => {
    const h = startAgent()
    await h.settle()
    const mac = h.dp.links.get('flannel.1')!.mac
    h.dp.links.delete('flannel.1')
    await h.clock.advance(10_000)
    assert.match(h.logs.text(), /flannel\.1 is gone; repairing it/)
    assert.equal(h.dp.devices.at(-1)!.mac, mac)
    assert.equal(h.dp.links.get('flannel.1')!.addresses[0]!.ip, ip('198.19.1.0'))
    assert.equal(h.agent.getStatus().ready, true)
    assert.equal(h.store.calls.filter((c) => c.startsWith('renewLease')).length, 0, 'same MAC: nothing to announce')
    await h.stop()
  })
})

describe('config changes', () => {
  test('an agent waiting on "out of subnets" acquires within the second after network expand', async () => {
    // A /22 with SubnetLen 24 has three usable subnets (198.19.1.0 to 198.19.3.0), all taken by other nodes.
    const store = new FakeStore('{"Network":"198.19.0.0/22","SubnetLen":24,"Backend":{"Type":"vxlan"}}')
    for (const n of [1, 2, 3])
      store.put(key(`198.19.${n}.0-24`), vxlanValue(`198.18.0.${10 + n}`, `02:00:00:00:00:1${n}`), '5')
    const h = startAgent({store})
    await h.clock.advance(30_000)
    assert.match(h.logs.text(), /acquiring a lease failed: out of subnets; retrying in 10s/)
    assert.equal(h.agent.getStatus().lease, 'pending')
    store.setConfig('{"Network":"198.19.0.0/21","SubnetLen":24,"Backend":{"Type":"vxlan"}}')
    await h.settle()
    assert.equal(h.agent.getStatus().lease, 'held', h.logs.text())
    assert.equal(h.agent.getStatus().subnet, '198.19.4.0/24')
    assert.match(h.files.files.get(SUBNET_FILE) ?? '', /^FLANNEL_NETWORK=198\.19\.0\.0\/21$/m)
    await h.stop()
  })

  test('a wider Network rewrites subnet.env and replaces the masquerade and forward rules', async () => {
    const h = startAgent({options: {ipMasq: true}})
    await h.settle()
    const oldRules = h.dp.rules.map((r) => r.spec.join(' '))
    assert.ok(oldRules.some((r) => r.includes('198.19.0.0/16')))
    h.store.setConfig('{"Network":"198.16.0.0/14","Backend":{"Type":"vxlan"}}')
    await h.settle()
    assert.match(
      h.logs.text(),
      /network config changed \(Network 198\.19\.0\.0\/16 -> 198\.16\.0\.0\/14.*\); following it/,
    )
    assert.match(h.files.files.get(SUBNET_FILE) ?? '', /^FLANNEL_NETWORK=198\.16\.0\.0\/14$/m)
    const now = h.dp.rules.map((r) => r.spec.join(' '))
    assert.equal(
      now.filter((r) => r.includes('198.19.0.0/16')).length,
      0,
      `no rule for the old Network is left: ${now.join('\n')}`,
    )
    assert.ok(now.some((r) => r.includes('-s 198.16.0.0/14') && r.includes('MASQUERADE')))
    assert.ok(now.some((r) => r.includes('-d 198.16.0.0/14') && r.includes('ACCEPT')))
    assert.ok(h.dp.log.includes('flush filter FLANNEL-FWD'))
    assert.equal(h.agent.getStatus().subnet, '198.19.1.0/24', 'the lease is kept')
    await h.stop()
  })

  test('a change flanneld cannot follow live (VNI, backend type, SubnetLen) is refused and nothing is torn down', async () => {
    const h = startAgent()
    await h.settle()
    const before = {
      env: h.files.files.get(SUBNET_FILE),
      devices: h.dp.devices.length,
      kv: h.store.kvs.get(key('198.19.1.0-24')),
    }
    for (const cfg of [
      '{"Network":"198.19.0.0/16","Backend":{"Type":"vxlan","VNI":2}}',
      '{"Network":"198.19.0.0/16","Backend":{"Type":"host-gw"}}',
      '{"Network":"198.19.0.0/16","SubnetLen":25,"Backend":{"Type":"vxlan"}}',
    ]) {
      h.store.setConfig(cfg)
      await h.settle()
    }
    const text = h.logs.text()
    assert.match(text, /REFUSING the new network config: Backend\.VNI 1 -> 2 cannot change/)
    assert.match(text, /REFUSING the new network config: Backend\.Type vxlan -> host-gw/)
    assert.match(text, /REFUSING the new network config: SubnetLen 24 -> 25/)
    assert.match(h.agent.getStatus().configRefused ?? '', /SubnetLen 24 -> 25/)
    assert.equal(h.files.files.get(SUBNET_FILE), before.env)
    assert.equal(h.dp.devices.length, before.devices)
    assert.deepEqual(h.store.kvs.get(key('198.19.1.0-24')), before.kv)
    assert.equal(h.agent.getStatus().ready, true)
    // Back to the running config: the refusal is cleared.
    h.store.setConfig(VXLAN_CONFIG)
    await h.settle()
    assert.equal(h.agent.getStatus().configRefused, null)
    await h.stop()
  })

  test('a Network that no longer holds our subnet: a new lease inside it', async () => {
    const h = startAgent()
    await h.settle()
    h.store.setConfig('{"Network":"198.18.0.0/16","Backend":{"Type":"vxlan"}}')
    await h.settle()
    assert.match(h.logs.text(), /our subnet 198\.19\.1\.0\/24 is outside the new config; acquiring a new one/)
    assert.equal(h.agent.getStatus().subnet, '198.18.1.0/24')
    await h.stop()
  })
})
