import assert from 'node:assert/strict'
import {describe, test} from 'node:test'

import {resolveNetworkConfig} from '../../src/core/config.js'
import {clusterChecks, type Finding} from '../../src/core/doctor.js'
import {parseCidr4, parseIPv4} from '../../src/core/ipv4.js'
import {keyLayout} from '../../src/core/keys.js'
import {classifyKeys, type RawKV} from '../../src/core/leases.js'
import {MASQ_RULE_SETS, masqRuleSetFor, recogniseMasqRules, ruleLine} from '../../src/core/masq.js'
import {nodeChecks, type NodeObservation} from '../../src/core/node-checks.js'
import {formatRange, parseRelease} from '../../src/core/release.js'
import {backendMtu, honoursBackendMtu} from '../../src/core/subnet-env.js'
import {agentVxlanLocal, expectedVxlanLocals} from '../../src/core/vxlan-local.js'

const layout = keyLayout('/coreos.com/network')
const ip = (s: string) => parseIPv4(s)!
const N = parseCidr4('10.5.0.0/16')!
const S = parseCidr4('10.5.1.0/24')!
const rel = (s: string) => parseRelease(s)!

function kv(seg: string, value: string, lease = '100'): RawKV {
  return {
    key: seg.startsWith('/') ? seg : `/coreos.com/network/subnets/${seg}`,
    value,
    createRevision: '2',
    modRevision: '2',
    version: '1',
    lease,
  }
}

function ctxFor(config: string) {
  const lease =
    '{"PublicIP":"198.18.0.1","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:00:00:00:01:01"}}'
  const all = [kv('/coreos.com/network/config', config, '0'), kv('10.5.1.0-24', lease)]
  return clusterChecks({layout, snapshot: classifyKeys(layout, all, '42'), ttls: null, renewMarginSeconds: 3600})
    .context
}

const VXLAN = '{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}'
const VXLAN_MTU = '{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan","MTU":1350}}'

/** `iptables -t nat -S` of a flanneld v0.20.0 node with --ip-masq (v0.20.0:network/iptables.go; test/interop checks the real binary's rules are recognised as this set). */
const V020_NAT = [
  '-P PREROUTING ACCEPT',
  '-P INPUT ACCEPT',
  '-P OUTPUT ACCEPT',
  '-P POSTROUTING ACCEPT',
  '-N FLANNEL-POSTRTG',
  '-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG',
  '-A FLANNEL-POSTRTG -s 10.5.0.0/16 -d 10.5.0.0/16 -m comment --comment "flanneld masq" -j RETURN',
  '-A FLANNEL-POSTRTG -s 10.5.0.0/16 ! -d 224.0.0.0/4 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully',
  '-A FLANNEL-POSTRTG ! -s 10.5.0.0/16 -d 10.5.1.0/24 -m comment --comment "flanneld masq" -j RETURN',
  '-A FLANNEL-POSTRTG ! -s 10.5.0.0/16 -d 10.5.0.0/16 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully',
].join('\n')

const base: NodeObservation = {
  subnetFile: '/run/flannel/subnet.env',
  subnetEnvText: 'FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n',
  publicIP: ip('198.18.0.1'),
  publicIPSource: 'test',
  ifaceMtu: 1500,
  device: {
    name: 'flannel.1',
    mtu: 1450,
    mac: '02:00:00:00:01:01',
    up: true,
    vxlan: {id: 1, local: '198.18.0.1', port: 8472, learning: false, gbp: false},
    addresses: [{ip: ip('10.5.1.0'), prefix: 32}],
  },
  routes: [],
  neighs: [],
  fdb: [],
  ipForward: true,
  iptablesNat: V020_NAT,
  ifaceAddress: ip('198.18.0.1'),
  hostAddresses: [ip('127.0.0.1'), ip('198.18.0.1')],
}

const errors = (fs: Finding[]) => fs.filter((f) => f.severity === 'error').map((f) => f.id)

describe('masquerade rule sets per release', () => {
  test('every set is recognised as its own release range', () => {
    for (const set of MASQ_RULE_SETS) {
      for (const rf of [true, false]) {
        const saved = set
          .rules(N, S, rf && set.randomFully)
          .map(ruleLine)
          .join('\n')
        const {complete} = recogniseMasqRules(N, S, saved)
        assert.ok(
          complete.some((m) => m.set === set),
          `${formatRange(set.releases)} (random-fully ${rf}) not recognised: ${complete.map((m) => formatRange(m.set.releases)).join(', ')}`,
        )
      }
    }
  })

  test('v0.20: 4 FLANNEL-POSTRTG rules, no mark rule, RETURN not scoped to the subnet, jump inserted', () => {
    const set = masqRuleSetFor(rel('0.20.0'))
    assert.equal(set.jump, '-I')
    assert.deepEqual(set.rules(N, S, true).map(ruleLine), V020_NAT.split('\n').slice(5))
    assert.equal(masqRuleSetFor(rel('0.28.9')).rules(N, S, true).length, 7)
    assert.equal(masqRuleSetFor(rel('0.28.9')).jump, '-A')
    assert.equal(masqRuleSetFor(rel('0.20.2')).rules(N, S, true).length, 6)
    assert.equal(masqRuleSetFor(rel('0.11.0')).chain, 'POSTROUTING')
  })

  test('doctor --local: a healthy v0.20 node with --ip-masq has no error, and the set is named', () => {
    const fs = nodeChecks(base, ctxFor(VXLAN))
    assert.deepEqual(errors(fs), [])
    const named = fs.find((f) => f.id === 'masq-rule-set')!
    assert.match(named.message, /flanneld v0\.20\.0–v0\.20\.1 \(4 rules in FLANNEL-POSTRTG, jump inserted\)/)
    assert.deepEqual(errors(nodeChecks(base, ctxFor(VXLAN), rel('0.20.0'))), [])
  })

  test('v0.20 node missing a rule: counted against the v0.20 set; a v0.28 node is judged by its own set', () => {
    const partial = V020_NAT.split('\n')
      .filter((l) => !l.includes('-d 10.5.1.0/24'))
      .join('\n')
    const f = nodeChecks({...base, iptablesNat: partial}, ctxFor(VXLAN)).find((x) => x.id === 'masq-rules-missing')!
    assert.match(f.message, /^1 of the 5 masquerade rules flanneld v0\.20\.0–v0\.20\.1 \(the closest known set\)/)
    const exact = nodeChecks({...base, iptablesNat: partial}, ctxFor(VXLAN), rel('0.20.0'))
    assert.match(exact.find((x) => x.id === 'masq-rules-missing')!.message, /^1 of the 5 .* flanneld v0\.20\.0 /)
    // A node said to run v0.28.9 but holding v0.20's rules is missing v0.28.9's.
    const wrong = nodeChecks(base, ctxFor(VXLAN), rel('0.28.9')).find((x) => x.id === 'masq-rules-missing')!
    assert.match(wrong.message, /^3 of the 7 masquerade rules flanneld v0\.28\.9 installs/)
  })

  test('EnableNFTables: table ip flannel-ipv4 is judged (nft list output of a real nft, fully-random or not)', () => {
    const NFT = '{"Network":"10.5.0.0/16","EnableNFTables":true,"Backend":{"Type":"vxlan"}}'
    // `nft list table ip flannel-ipv4` after loading core/masq.ts nftScript into a network namespace (nftables 1.0).
    const table = [
      'table ip flannel-ipv4 {',
      '\tchain postrtg {',
      '\t\ttype nat hook postrouting priority srcnat; policy accept;',
      '\t\tmeta mark 0x00004000 return',
      '\t\tip saddr 10.5.1.0/24 ip daddr 10.5.0.0/16 return',
      '\t\tip saddr 10.5.0.0/16 ip daddr 10.5.1.0/24 return',
      '\t\tip saddr != 10.5.1.0/24 ip daddr 10.5.0.0/16 return',
      '\t\tip saddr 10.5.0.0/16 ip daddr != 224.0.0.0/4 masquerade fully-random',
      '\t\tip saddr != 10.5.0.0/16 ip daddr 10.5.0.0/16 masquerade fully-random',
      '\t}',
      '',
      '\tchain forward {',
      '\t\ttype filter hook forward priority filter; policy accept;',
      '\t\tip saddr 10.5.0.0/16 accept',
      '\t\tip daddr 10.5.0.0/16 accept',
      '\t}',
      '}',
      '',
    ].join('\n')
    const run = (nftFlannel: string | null) =>
      nodeChecks({...base, iptablesNat: '-P POSTROUTING ACCEPT', nftFlannel}, ctxFor(NFT)).filter((f) =>
        f.id.startsWith('masq-'),
      )
    const ok = run(table)
    assert.deepEqual(
      ok.map((f) => [f.id, f.severity]),
      [['masq-rule-set', 'info']],
    )
    assert.match(ok[0]!.message, /complete masquerade set/)
    assert.deepEqual(
      run(table.replaceAll(' fully-random', '')).map((f) => f.id),
      ['masq-rule-set'],
    )
    const gone = run('')
    assert.deepEqual(
      gone.map((f) => [f.id, f.severity]),
      [['masq-rules-missing', 'error']],
    )
    assert.match(gone[0]!.message, /6 of the 6 .*the table does not exist/)
    assert.deepEqual(gone[0]!.commands![0]!.argv, ['nft', 'list', 'table', 'ip', 'flannel-ipv4'])
    const one = run(table.replace('\t\tmeta mark 0x00004000 return\n', ''))
    assert.match(one.find((f) => f.id === 'masq-rules-missing')!.message, /1 of the 6 .*meta mark 0x4000 return/)
    // Built for the Network before an expand: stale, and the current set missing.
    const old = run(table.replaceAll('10.5.0.0/16', '10.5.0.0/17'))
    assert.deepEqual(old.map((f) => f.id).sort(), ['masq-rules-missing', 'masq-rules-stale'])
    // nft not readable: said as info, as before.
    assert.match(run(null).find((f) => f.id === 'masq-rule-set')!.message, /could not read/)
  })

  test('EnableNFTables: an empty iptables nat table is healthy (the rules are in nftables), said as info', () => {
    const NFT = '{"Network":"10.5.0.0/16","EnableNFTables":true,"Backend":{"Type":"vxlan"}}'
    const fs = nodeChecks({...base, iptablesNat: '-P POSTROUTING ACCEPT'}, ctxFor(NFT))
    assert.deepEqual(errors(fs), [])
    assert.equal(fs.filter((f) => f.id === 'masq-rules-missing').length, 0)
    assert.match(fs.find((f) => f.id === 'masq-rule-set')!.message, /EnableNFTables/)
  })

  test('an empty nat table is judged against the current set', () => {
    const f = nodeChecks({...base, iptablesNat: '-P POSTROUTING ACCEPT'}, ctxFor(VXLAN)).find(
      (x) => x.id === 'masq-rules-missing',
    )!
    assert.match(f.message, /^7 of the 7 masquerade rules flanneld v0\.21\.0 and later/)
  })

  test('after network expand, a node not yet restarted is judged by the Network its rules were built for', () => {
    // The config says 10.4.0.0/15; the node's subnet.env and rules still say 10.5.0.0/16.
    const wide = ctxFor('{"Network":"10.4.0.0/15","Backend":{"Type":"vxlan"}}')
    const fs = nodeChecks(base, wide)
    assert.deepEqual(errors(fs), [])
    assert.ok(fs.some((f) => f.id === 'subnet-env-stale-network' && f.severity === 'warning'))
  })

  test('forward rules in FORWARD itself (<= v0.19) satisfy the FORWARD DROP check', () => {
    const filter = '-P FORWARD DROP\n-A FORWARD -s 10.5.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT'
    assert.deepEqual(errors(nodeChecks({...base, iptablesFilter: filter}, ctxFor(VXLAN))), [])
  })
})

describe('Backend.MTU per release (introduced in v0.21.3, commit bd2e72e3)', () => {
  const eff = (c: string) => {
    const r = resolveNetworkConfig(c)
    assert.ok(r.ok)
    return r.value.effective
  }
  test('v0.20 ignores it: FLANNEL_MTU 1450 on a 1500 underlay', () => {
    assert.equal(honoursBackendMtu(rel('0.21.2')), false)
    assert.equal(honoursBackendMtu(rel('0.21.3')), true)
    assert.equal(honoursBackendMtu(null), true)
    assert.equal(backendMtu(eff(VXLAN_MTU), 1350, 1500, honoursBackendMtu(rel('0.20.0'))), 1450)
    assert.equal(backendMtu(eff(VXLAN_MTU), 1350, 1500, honoursBackendMtu(rel('0.28.9'))), 1300)
  })
  test('doctor device-mtu: a v0.20 node (by its rule set or by --flanneld-version) with 1450 is healthy', () => {
    assert.deepEqual(errors(nodeChecks(base, ctxFor(VXLAN_MTU))), [])
    assert.deepEqual(errors(nodeChecks(base, ctxFor(VXLAN_MTU), rel('0.20.0'))), [])
    assert.deepEqual(errors(nodeChecks(base, ctxFor(VXLAN_MTU), rel('0.28.9'))), ['device-mtu', 'masq-rules-missing'])
    const dev1300 = {...base, device: {...base.device!, mtu: 1300}}
    assert.deepEqual(errors(nodeChecks(dev1300, ctxFor(VXLAN_MTU), rel('0.20.0'))), ['device-mtu'])
  })
  test('unknown release: either MTU passes; the interface one is explained', () => {
    const noMasq = {...base, subnetEnvText: base.subnetEnvText!.replace('IPMASQ=true', 'IPMASQ=false')}
    const fs = nodeChecks(noMasq, ctxFor(VXLAN_MTU))
    assert.deepEqual(errors(fs), [])
    assert.match(
      fs.find((f) => f.id === 'device-mtu')!.message,
      /flanneld before v0\.21\.3, which ignores Backend\.MTU/,
    )
    assert.deepEqual(nodeChecks({...noMasq, device: {...base.device!, mtu: 1300}}, ctxFor(VXLAN_MTU)), [])
  })
})

describe('vxlan local by release (v0.27.4, commit 73af8ea7) and behind 1:1 NAT', () => {
  // The node's interface is 198.18.0.1; its PublicIP 198.19.0.1 belongs to the NAT router.
  const nat = {...base, publicIP: ip('198.19.0.1'), iptablesNat: null}
  const facts = {publicIP: ip('198.19.0.1'), ifaceAddress: ip('198.18.0.1'), hostAddresses: [ip('198.18.0.1')]}
  test('the agent uses the PublicIP only when it is an address of the host', () => {
    assert.equal(agentVxlanLocal(facts), ip('198.18.0.1'))
    assert.equal(agentVxlanLocal({...facts, hostAddresses: [ip('198.18.0.1'), ip('198.19.0.1')]}), ip('198.19.0.1'))
    assert.deepEqual(expectedVxlanLocals(facts, {kind: 'exact', release: rel('0.27.3')}), [ip('198.18.0.1')])
    assert.deepEqual(expectedVxlanLocals(facts, {kind: 'exact', release: rel('0.27.4')}), [ip('198.19.0.1')])
  })
  test('flanneld v0.20 behind NAT (local = interface address) is healthy', () => {
    const ctx = ctxFor(VXLAN)
    const lease = ctx.leases[0]!
    const natCtx = {...ctx, leases: [{...lease, attrs: {...lease.attrs, publicIP: ip('198.19.0.1')}}]}
    assert.deepEqual(errors(nodeChecks(nat, natCtx)), [])
    assert.deepEqual(errors(nodeChecks(nat, natCtx, rel('0.20.0'))), [])
    // ... but not when it claims v0.27.4+, which would set local to the PublicIP
    assert.deepEqual(errors(nodeChecks(nat, natCtx, rel('0.28.0'))), ['device-local-ip'])
  })
  test('a local that is not an address of the host is an error whatever the release', () => {
    const broken = {...nat, device: {...base.device!, vxlan: {...base.device!.vxlan!, local: '198.19.0.1'}}}
    for (const r of [null, rel('0.20.0'), rel('0.28.9')]) {
      const f = nodeChecks(broken, ctxFor(VXLAN), r).find((x) => x.id === 'device-local-ip')!
      assert.match(f.message, /198\.19\.0\.1, which is not an address of this host/)
      assert.match(f.message, /v0\.27\.4 and later set local to the PublicIP and break the same way/)
    }
  })
})
