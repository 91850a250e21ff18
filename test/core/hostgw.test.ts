import assert from 'node:assert/strict'
import {describe, test} from 'node:test'

import {hostGwPeers, planHostGw} from '../../src/core/hostgw.js'
import {parseCidr4, parseIPv4} from '../../src/core/ipv4.js'
import {decodeLeases, type RawKV} from '../../src/core/leases.js'
import type {RouteEntry} from '../../src/core/vxlan.js'

const kv = (seg: string, value: string): RawKV => ({
  key: `/coreos.com/network/subnets/${seg}`,
  value,
  createRevision: '1',
  modRevision: '1',
  version: '1',
  lease: '5',
})
const hg = (ip: string) => `{"PublicIP":"${ip}","PublicIPv6":null,"BackendType":"host-gw"}`
const ip = (s: string) => parseIPv4(s)!
const N = parseCidr4('198.19.0.0/16')!

describe('host-gw planning', () => {
  const {leases} = decodeLeases([
    kv('198.19.1.0-24', hg('198.18.0.1')),
    kv('198.19.2.0-24', hg('198.18.0.2')),
    kv('198.19.3.0-24', hg('198.18.1.3')),
    kv(
      '198.19.4.0-24',
      '{"PublicIP":"198.18.0.4","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:00:00:00:00:04"}}',
    ),
  ])
  const connected: RouteEntry[] = [
    {dst: null, gateway: ip('198.18.0.254'), dev: 'eth0', onlink: false},
    {dst: parseCidr4('198.18.0.0/24'), gateway: null, dev: 'eth0', onlink: false},
  ]

  test('routes to peers on the segment; a peer behind a router is reported, not routed; other backends ignored', () => {
    const peers = hostGwPeers(leases, parseCidr4('198.19.1.0/24'), connected)
    assert.deepEqual(
      peers.map((p) => [p.publicIP === ip('198.18.0.2') ? 'near' : 'far', p.reachable]),
      [
        ['near', true],
        ['far', false],
      ],
    )
    const plan = planHostGw(peers, connected, 'eth0', N)
    assert.deepEqual(plan.ip, ['route replace 198.19.2.0/24 via 198.18.0.2 dev eth0'])
    assert.deepEqual(
      plan.unreachable.map((p) => p.publicIP),
      [ip('198.18.1.3')],
    )
  })

  test('a route with another gateway is replaced; a stale one removed; a correct one left alone', () => {
    const peers = hostGwPeers(leases, parseCidr4('198.19.1.0/24'), connected)
    const routes: RouteEntry[] = [
      ...connected,
      {dst: parseCidr4('198.19.2.0/24'), gateway: ip('198.18.0.9'), dev: 'eth0', onlink: false},
      {dst: parseCidr4('198.19.9.0/24'), gateway: ip('198.18.0.9'), dev: 'eth0', onlink: false},
    ]
    const plan = planHostGw(peers, routes, 'eth0', N)
    assert.deepEqual(plan.ip, [
      'route del 198.19.9.0/24 via 198.18.0.9 dev eth0',
      'route replace 198.19.2.0/24 via 198.18.0.2 dev eth0',
    ])
    assert.equal(plan.replaced.length, 1)
    const ok = planHostGw(
      peers,
      [...connected, {dst: parseCidr4('198.19.2.0/24'), gateway: ip('198.18.0.2'), dev: 'eth0', onlink: false}],
      'eth0',
      N,
    )
    assert.deepEqual(ok.ip, [])
  })
})
