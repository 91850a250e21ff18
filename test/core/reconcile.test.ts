import assert from 'node:assert/strict'
import {describe, test} from 'node:test'

import {parseCidr4, parseIPv4} from '../../src/core/ipv4.js'
import {decodeLeases, type RawKV} from '../../src/core/leases.js'
import {planSync, programmedState} from '../../src/core/reconcile.js'
import {desiredPeers, type RouteEntry} from '../../src/core/vxlan.js'

const ip = (s: string) => parseIPv4(s)!
const N = parseCidr4('198.19.0.0/16')!
const kv = (seg: string, pub: string, mac: string): RawKV => ({
  key: `/coreos.com/network/subnets/${seg}`,
  value: `{"PublicIP":"${pub}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${mac}"}}`,
  createRevision: '1',
  modRevision: '1',
  version: '1',
  lease: '5',
})
const underlay: RouteEntry[] = [{dst: parseCidr4('198.18.0.0/24'), gateway: null, dev: 'eth0', onlink: false}]

describe('vxlan sync planning', () => {
  const {leases} = decodeLeases([
    kv('198.19.1.0-24', '198.18.0.1', '02:00:00:00:00:01'),
    kv('198.19.2.0-24', '198.18.0.2', '02:00:00:00:00:02'),
    kv('198.19.3.0-24', '198.18.0.3', '02:00:00:00:00:03'),
  ])
  const peers = desiredPeers(leases, parseCidr4('198.19.1.0/24'), false, underlay)

  test('from nothing: FDB first, then neighbours before routes', () => {
    const plan = planSync(peers, {routes: underlay, neighs: [], fdb: []}, 'flannel.1', N)
    assert.deepEqual(plan.bridge, [
      'fdb replace 02:00:00:00:00:02 dev flannel.1 dst 198.18.0.2 self permanent',
      'fdb replace 02:00:00:00:00:03 dev flannel.1 dst 198.18.0.3 self permanent',
    ])
    assert.deepEqual(plan.ip, [
      'neigh replace 198.19.2.0 lladdr 02:00:00:00:00:02 dev flannel.1 nud permanent',
      'neigh replace 198.19.3.0 lladdr 02:00:00:00:00:03 dev flannel.1 nud permanent',
      'route replace 198.19.2.0/24 via 198.19.2.0 dev flannel.1 onlink',
      'route replace 198.19.3.0/24 via 198.19.3.0 dev flannel.1 onlink',
    ])
  })

  test('what a sync programmed needs nothing more', () => {
    const state = programmedState(peers, 'flannel.1')
    const plan = planSync(peers, {...state, routes: [...underlay, ...state.routes]}, 'flannel.1', N)
    assert.deepEqual([plan.bridge, plan.ip], [[], []])
  })

  test("a peer's MAC change replaces the neighbour and removes the stale FDB entry; a vanished peer is removed", () => {
    const before = programmedState(peers, 'flannel.1')
    const {leases: now} = decodeLeases([kv('198.19.2.0-24', '198.18.0.2', '02:00:00:00:00:22')])
    const plan = planSync(desiredPeers(now, parseCidr4('198.19.1.0/24'), false, underlay), before, 'flannel.1', N)
    assert.deepEqual(plan.bridge, [
      'fdb del 02:00:00:00:00:03 dev flannel.1 dst 198.18.0.3 self',
      'fdb del 02:00:00:00:00:02 dev flannel.1 dst 198.18.0.2 self',
      'fdb replace 02:00:00:00:00:22 dev flannel.1 dst 198.18.0.2 self permanent',
    ])
    assert.deepEqual(plan.ip, [
      'route del 198.19.3.0/24 via 198.19.3.0 dev flannel.1',
      'neigh del 198.19.3.0 dev flannel.1',
      'neigh replace 198.19.2.0 lladdr 02:00:00:00:00:22 dev flannel.1 nud permanent',
    ])
  })

  test('DirectRouting: a peer on the connected segment gets a plain route and nothing on the device', () => {
    const direct = desiredPeers(leases, parseCidr4('198.19.1.0/24'), true, underlay)
    const plan = planSync(direct, {routes: underlay, neighs: [], fdb: []}, 'flannel.1', N)
    assert.deepEqual(
      [plan.bridge, plan.ip],
      [[], ['route replace 198.19.2.0/24 via 198.18.0.2', 'route replace 198.19.3.0/24 via 198.18.0.3']],
    )
    assert.equal(ip('198.18.0.2') > 0, true)
  })
})
