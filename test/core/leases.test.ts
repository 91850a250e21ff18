import assert from 'node:assert/strict'
import {describe, test} from 'node:test'

import {resolveNetworkConfig} from '../../src/core/config.js'
import {parseDuration, formatTtl} from '../../src/core/duration.js'
import {parseCidr4} from '../../src/core/ipv4.js'
import {keyLayout} from '../../src/core/keys.js'
import {capacity, classifyKeys, decodeLeases, isLeaseCompatible, type RawKV} from '../../src/core/leases.js'
import {parseEtcdctlSnapshot} from '../../src/core/snapshot.js'
import {renderSubnetEnv} from '../../src/core/subnet-env.js'
import {parseSubnetKey} from '../../src/core/subnet-key.js'

const kv = (key: string, value: string, lease = '0'): RawKV => ({
  key,
  value,
  createRevision: '2',
  modRevision: '3',
  version: '1',
  lease,
})
const cidr = (s: string) => parseCidr4(s)!

function resolved(text: string) {
  const r = resolveNetworkConfig(text)
  assert.ok(r.ok)
  return r.value
}

describe('key layout', () => {
  test('path.Join semantics for the prefix', () => {
    assert.equal(keyLayout('/coreos.com/network').config, '/coreos.com/network/config')
    assert.equal(keyLayout('/coreos.com/network/').subnets, '/coreos.com/network/subnets')
    assert.equal(keyLayout('coreos.com//network').config, 'coreos.com/network/config')
    assert.equal(keyLayout('/x/y').range, '/x/y/')
  })

  test('classify: config, subnets as flannel lists them (no trailing slash), foreign keys', () => {
    const l = keyLayout('/coreos.com/network')
    const s = classifyKeys(
      l,
      [
        kv('/coreos.com/network/config', '{}'),
        kv('/coreos.com/network/subnets/10.5.1.0-24', '{}'),
        kv('/coreos.com/network/subnetsX/1.2.3.0-24', '{}'),
        kv('/coreos.com/network/net1/config', '{}'),
      ],
      '9',
    )
    assert.equal(s.config?.key, '/coreos.com/network/config')
    assert.deepEqual(
      s.subnets.map((k) => k.key),
      ['/coreos.com/network/subnets/10.5.1.0-24', '/coreos.com/network/subnetsX/1.2.3.0-24'],
    )
    assert.deepEqual(
      s.foreign.map((k) => k.key),
      ['/coreos.com/network/net1/config'],
    )
  })
})

describe('decodeLeases', () => {
  test('sorted numerically, malformed kept apart with the reason', () => {
    const {leases, malformed} = decodeLeases([
      kv('/p/subnets/10.5.10.0-24', '{"PublicIP":"1.1.1.10"}', '77'),
      kv(
        '/p/subnets/10.5.9.0-24',
        '{"PublicIP":"1.1.1.9","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:ff"}}',
      ),
      kv('/p/subnets/garbage', '{}'),
      kv('/p/subnets/10.5.11.0-24', 'not json'),
    ])
    assert.deepEqual(
      leases.map((l) => l.key),
      ['/p/subnets/10.5.9.0-24', '/p/subnets/10.5.10.0-24'],
    )
    assert.equal(leases[0]!.reserved, true)
    assert.equal(leases[1]!.reserved, false)
    assert.deepEqual(leases[0]!.vxlan, {vni: 1, vtepMAC: 'aa:bb:cc:dd:ee:ff'})
    assert.deepEqual(
      malformed.map((m) => m.key),
      ['/p/subnets/10.5.11.0-24', '/p/subnets/garbage'], // numeric order, as the valid leases,
    )
    assert.match(malformed[1]!.error, /failed to parse subnet key/)
    assert.match(malformed[0]!.error, /^error decoding subnet lease JSON: invalid character 'o' in literal null/)
  })
})

describe('compatibility (isSubnetConfigCompat)', () => {
  const {config, effective} = resolved('{"Network":"10.3.0.0/16","SubnetMin":"10.3.1.0","SubnetMax":"10.3.25.0"}')
  const sk = (s: string) => parseSubnetKey(s)!
  test('inside range and of SubnetLen', () =>
    assert.equal(isLeaseCompatible(config, effective, sk('10.3.25.0-24')), true))
  test('outside range', () => assert.equal(isLeaseCompatible(config, effective, sk('10.3.31.0-24')), false))
  test('other prefix length', () => assert.equal(isLeaseCompatible(config, effective, sk('10.3.2.0-25')), false))
  test('a dual-stack key is incompatible while IPv6 is off', () =>
    assert.equal(isLeaseCompatible(config, effective, sk('10.3.2.0-24&fc00::-64')), false))
})

describe('capacity', () => {
  const {effective} = resolved('{"Network":"10.5.0.0/16"}')
  test('counts slots any key overlaps, inside the range only', () => {
    const c = capacity(effective.ipv4!, [
      cidr('10.5.1.0/24'),
      cidr('10.5.2.0/24'),
      cidr('10.5.0.0/24'),
      cidr('10.6.0.0/24'),
    ])
    assert.deepEqual(c, {total: 255, used: 2, free: 253, utilization: 0.0078})
  })
  test('a shorter-prefix key blocks every slot it covers; duplicates count once', () => {
    const c = capacity(effective.ipv4!, [cidr('10.5.16.0/20'), cidr('10.5.17.0/24'), cidr('10.5.17.0/26')])
    assert.equal(c.used, 16)
  })
  test('a full /8', () => {
    const {effective: e8} = resolved('{"Network":"10.0.0.0/8"}')
    const subnets = Array.from({length: 65535}, (_, i) => ({ip: (10 << 24) + (i + 1) * 256, prefix: 24}))
    assert.deepEqual(capacity(e8.ipv4!, subnets), {total: 65535, used: 65535, free: 0, utilization: 1})
  })
})

describe('durations and TTLs', () => {
  test('parse', () => {
    assert.equal(parseDuration('5s', '--x'), 5000)
    assert.equal(parseDuration('1h30m', '--x'), 5_400_000)
    assert.equal(parseDuration('250ms', '--x'), 250)
    assert.throws(
      () => parseDuration('5 parsecs', '--dial-timeout'),
      /invalid duration for --dial-timeout: "5 parsecs"/,
    )
  })
  test('format', () => {
    assert.equal(formatTtl(86_399), '23h59m')
    assert.equal(formatTtl(3599), '59m59s')
    assert.equal(formatTtl(42), '42s')
  })
})

describe('etcdctl snapshot', () => {
  test('base64 keys and values, exact lease IDs', () => {
    const b = (s: string) => Buffer.from(s).toString('base64')
    const text = `{"header":{"cluster_id":14841639068965178418,"member_id":10276657743932975437,"revision":57,"raft_term":2},"kvs":[{"key":"${b('/coreos.com/network/config')}","create_revision":2,"mod_revision":3,"version":2,"value":"${b('{"Network":"10.5.0.0/16"}')}"},{"key":"${b('/coreos.com/network/subnets/10.5.1.0-24')}","create_revision":4,"mod_revision":4,"version":1,"value":"${b('{"PublicIP":"1.2.3.4","PublicIPv6":null}')}","lease":7587869207405510410}],"count":2}`
    const s = parseEtcdctlSnapshot(text, 'snap.json')
    assert.equal(s.revision, '57')
    assert.equal(s.kvs[1]!.lease, '7587869207405510410')
    assert.equal(s.kvs[0]!.lease, '0')
    assert.equal(s.kvs[0]!.value, '{"Network":"10.5.0.0/16"}')
    assert.throws(() => parseEtcdctlSnapshot('nope', 'x.json'), /snapshot x.json is not etcdctl JSON output/)
  })
})

describe('subnet.env', () => {
  test('vxlan on a 1500-byte NIC', () => {
    const {effective} = resolved('{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}')
    assert.equal(
      renderSubnetEnv({effective, subnet: cidr('10.5.72.0/24'), ipv6Subnet: null, mtu: 1450, ipMasq: false}),
      'FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.72.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n',
    )
  })
  test('dual stack (Documentation/configuration.md)', () => {
    const {effective} = resolved(
      '{"Network":"10.42.0.0/16","EnableIPv6":true,"IPv6Network":"2001:cafe:42::/56","Backend":{"Type":"vxlan"}}',
    )
    const k = parseSubnetKey('10.42.0.0-24&2001:cafe:42::-64')!
    assert.equal(
      renderSubnetEnv({effective, subnet: k.subnet, ipv6Subnet: k.ipv6Subnet, mtu: 1450, ipMasq: true}),
      'FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET=10.42.0.1/24\nFLANNEL_IPV6_NETWORK=2001:cafe:42::/56\nFLANNEL_IPV6_SUBNET=2001:cafe:42::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n',
    )
  })
})

describe('malformed keys', () => {
  test('are listed in numeric, not lexical, order', () => {
    const raw = (key: string): RawKV => ({
      key,
      value: 'x',
      createRevision: '1',
      modRevision: '1',
      version: '1',
      lease: '0',
    })
    const {malformed} = decodeLeases(
      ['/p/subnets/10.5.10.0-2x', '/p/subnets/10.5.9.0-2x', '/p/subnets/10.5.100.0-2x'].map(raw),
    )
    assert.deepEqual(
      malformed.map((m) => m.key),
      ['/p/subnets/10.5.9.0-2x', '/p/subnets/10.5.10.0-2x', '/p/subnets/10.5.100.0-2x'],
    )
  })
})
