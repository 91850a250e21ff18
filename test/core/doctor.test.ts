import assert from 'node:assert/strict'
import {describe, test} from 'node:test'

import {clusterChecks, type Finding, selectFindings} from '../../src/core/doctor.js'
import {parseCidr4, parseIPv4} from '../../src/core/ipv4.js'
import {keyLayout} from '../../src/core/keys.js'
import {classifyKeys, type RawKV} from '../../src/core/leases.js'
import {nodeChecks, type NodeObservation} from '../../src/core/node-checks.js'
import type {LinkState, RouteEntry} from '../../src/core/vxlan.js'

const layout = keyLayout('/coreos.com/network')
const VXLAN = '{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}'
let macN = 0
const nextMac = () => `02:00:00:00:00:${(++macN).toString(16).padStart(2, '0')}`

function vx(ip: string, mac = nextMac(), vni = 1): string {
  return `{"PublicIP":"${ip}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":${vni},"VtepMAC":"${mac}"}}`
}

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

function run(config: string | null, kvs: RawKV[], ttls: Map<string, number> | null = null) {
  const all = config === null ? kvs : [kv('/coreos.com/network/config', config, '0'), ...kvs]
  return clusterChecks({layout, snapshot: classifyKeys(layout, all, '42'), ttls, renewMarginSeconds: 3600})
}

function ids(fs: Finding[]): string[] {
  return fs.map((f) => f.id)
}

function only(fs: Finding[], id: string): Finding[] {
  return selectFindings(fs, [id], [])
}

describe('doctor cluster checks: a healthy cluster has no findings', () => {
  test('three vxlan nodes', () => {
    const {findings} = run(
      VXLAN,
      [
        kv('10.5.1.0-24', vx('192.168.1.1')),
        kv('10.5.2.0-24', vx('192.168.1.2')),
        kv('10.5.3.0-24', vx('192.168.1.3')),
      ],
      new Map([['100', 80_000]]),
    )
    assert.deepEqual(findings, [])
  })
})

describe('doctor cluster checks: one fixture per check', () => {
  test('config-missing', () => assert.deepEqual(ids(run(null, []).findings), ['config-missing']))
  test("config-invalid carries flannel's message", () => {
    const f = only(run('{"Network":"10.5.0.0/29"}', []).findings, 'config-invalid')
    assert.equal(f.length, 1)
    assert.match(f[0]!.message, /network is too small\. Minimum useful network prefix is \/28/)
  })
  test('config-range-inverted', () =>
    assert.deepEqual(
      ids(
        only(
          run('{"Network":"10.5.0.0/16","SubnetMin":"10.5.9.0","SubnetMax":"10.5.2.0","Backend":{"Type":"vxlan"}}', [])
            .findings,
          'config-range-inverted',
        ),
      ),
      ['config-range-inverted'],
    ))
  test('config-noncanonical', () =>
    assert.equal(
      only(run('{"Network":"10.5.1.1/16","Backend":{"Type":"vxlan"}}', []).findings, 'config-noncanonical')[0]!
        .severity,
      'warning',
    ))
  test('backend-udp', () =>
    assert.equal(only(run('{"Network":"10.5.0.0/16"}', []).findings, 'backend-udp')[0]!.severity, 'warning'))

  test('duplicate-public-ip names both subnets', () => {
    const f = only(
      run(VXLAN, [
        kv('10.5.3.0-24', vx('10.0.2.15')),
        kv('10.5.9.0-24', vx('10.0.2.15')),
        kv('10.5.4.0-24', vx('192.168.1.4')),
      ]).findings,
      'duplicate-public-ip',
    )
    assert.deepEqual(
      f.map((x) => [x.severity, x.subjects]),
      [['error', ['10.5.3.0/24', '10.5.9.0/24']]],
    )
  })
  for (const ip of ['10.0.2.15', '127.0.0.1', '169.254.3.4', '0.0.0.0', '224.0.0.1', '255.255.255.255']) {
    test(`suspicious-public-ip ${ip}`, () => {
      const f = only(run(VXLAN, [kv('10.5.3.0-24', vx(ip))]).findings, 'suspicious-public-ip')
      assert.deepEqual(
        f.map((x) => x.subjects),
        [['10.5.3.0/24']],
      )
      assert.match(f[0]!.hint, /--iface/)
    })
  }
  test('public-ip-in-network', () =>
    assert.deepEqual(
      only(run(VXLAN, [kv('10.5.3.0-24', vx('10.5.200.1'))]).findings, 'public-ip-in-network').map((x) => x.subjects),
      [['10.5.3.0/24']],
    ))
  test('overlapping-leases', () => {
    const f = only(
      run(VXLAN, [
        kv('10.5.4.0-22', vx('192.168.1.1')),
        kv('10.5.5.0-24', vx('192.168.1.2')),
        kv('10.5.9.0-24', vx('192.168.1.3')),
      ]).findings,
      'overlapping-leases',
    )
    assert.deepEqual(
      f.map((x) => x.subjects),
      [['10.5.4.0/22', '10.5.5.0/24']],
    )
  })
  test('misaligned-lease', () =>
    assert.deepEqual(
      only(run(VXLAN, [kv('10.5.4.7-24', vx('192.168.1.1'))]).findings, 'misaligned-lease').map((x) => x.subjects),
      [['/coreos.com/network/subnets/10.5.4.7-24']],
    ))
  test('incompatible-lease names the node', () => {
    const f = only(run(VXLAN, [kv('10.5.4.0-25', vx('192.168.1.1'))]).findings, 'incompatible-lease')
    assert.equal(f[0]!.severity, 'warning')
    assert.match(f[0]!.message, /192\.168\.1\.1/)
  })
  test('malformed-lease: bad key and bad value', () => {
    const f = only(
      run(VXLAN, [kv('10.5.4.0-24x', vx('192.168.1.1')), kv('10.5.5.0-24', '{"PublicIP":"nope"}')]).findings,
      'malformed-lease',
    )
    assert.deepEqual(
      f.map((x) => x.subjects[0]),
      ['/coreos.com/network/subnets/10.5.4.0-24x', '/coreos.com/network/subnets/10.5.5.0-24'],
    )
  })
  test('backend-mismatch', () =>
    assert.deepEqual(
      only(
        run(VXLAN, [kv('10.5.4.0-24', '{"PublicIP":"192.168.1.1","PublicIPv6":null,"BackendType":"host-gw"}')])
          .findings,
        'backend-mismatch',
      ).map((x) => x.subjects),
      [['10.5.4.0/24']],
    ))
  test('udp config and udp leases (no BackendType) match', () =>
    assert.deepEqual(
      only(
        run('{"Network":"10.5.0.0/16"}', [kv('10.5.4.0-24', '{"PublicIP":"1.2.3.4","PublicIPv6":null}')]).findings,
        'backend-mismatch',
      ),
      [],
    ))
  test('vni-mismatch', () =>
    assert.deepEqual(
      only(run(VXLAN, [kv('10.5.4.0-24', vx('192.168.1.1', nextMac(), 2))]).findings, 'vni-mismatch').map(
        (x) => x.severity,
      ),
      ['warning'],
    ))
  test('backend-data-invalid follows the vxlan backend decoding exactly (flannel v0.28.9, go-vectors)', () => {
    const lease = (bd: string | null): string =>
      `{"PublicIP":"192.168.1.9","PublicIPv6":null,"BackendType":"vxlan"${bd === null ? '' : `,"BackendData":${bd}`}}`
    const invalid = (bd: string | null): string[] =>
      only(run(VXLAN, [kv('10.5.4.0-24', lease(bd))]).findings, 'backend-data-invalid').map((f) => f.message)
    const ok = [
      '{}',
      'null',
      '{"VNI":1,"VtepMAC":"02-00-00-00-00-09"}',
      '{"VNI":1,"VtepMAC":"0200.0000.0009"}',
      '{"VNI":1,"VtepMAC":"02:00:00:00:00:00:00:09"}',
      '{"VNI":1,"VtepMAC":"00:00:00:00:fe:80:00:00:00:00:00:00:02:00:5e:10:00:00:00:01"}',
      '{"vni":1,"vtepmac":"02:00:00:00:00:09"}',
    ]
    for (const bd of ok) assert.deepEqual(invalid(bd), [], bd)
    const cases: Array<[string | null, string]> = [
      [null, 'unexpected end of JSON input" (the lease has no BackendData)'],
      ['{"VNI":1,"VtepMAC":""}', '"error decoding subnet lease JSON: invalid MAC address"'],
      // The unmarshaler's error wins over the type error saved before it.
      ['{"VNI":"1","VtepMAC":""}', '"error decoding subnet lease JSON: invalid MAC address"'],
      ['{"VNI":"1","VtepMAC":"02:00:00:00:00:09"}', 'vxlanLeaseAttrs.VNI of type uint32"'],
      // A later valid duplicate does not undo an unmarshaler error.
      ['{"VNI":1,"VtepMAC":"","VtepMAC":"02:00:00:00:00:09"}', 'invalid MAC address"'],
      ['{"VNI":1,"VtepMAC":null}', '"error decoding subnet lease JSON: error parsing hardware addr"'],
    ]
    for (const [bd, tail] of cases) {
      const m = invalid(bd)
      assert.equal(m.length, 1, String(bd))
      assert.ok(m[0]!.includes(tail), `${bd}: ${m[0]}`)
    }
    // {} decodes with no VtepMAC: not invalid, but vxlan peers cannot add its ARP/FDB entries.
    const noMac = only(
      run(VXLAN, [kv('10.5.4.0-24', lease('{}')), kv('10.5.5.0-24', lease('null'))]).findings,
      'backend-data-no-mac',
    )
    assert.deepEqual(
      noMac.map((f) => f.subjects),
      [['10.5.4.0/24'], ['10.5.5.0/24']],
    )
    assert.deepEqual(
      only(run(VXLAN, [kv('10.5.4.0-24', lease('{}')), kv('10.5.5.0-24', lease('{}'))]).findings, 'duplicate-vtep-mac'),
      [],
    )
  })
  test('backend-data-invalid: BackendV6Data of a dual-stack lease on a dual-stack network', () => {
    const dual = '{"EnableIPv6":true,"Network":"10.5.0.0/16","IPv6Network":"fd00::/48","Backend":{"Type":"vxlan"}}'
    const v = (v6: string): string =>
      `{"PublicIP":"192.168.1.9","PublicIPv6":"fd00::9","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:00:00:00:00:09"}${v6}}`
    const f = only(run(dual, [kv('10.5.4.0-24&fd00:0:0:4::-64', v(''))]).findings, 'backend-data-invalid')
    assert.equal(f.length, 1)
    assert.match(
      f[0]!.message,
      /error decoding v6 subnet lease JSON: unexpected end of JSON input" \(the lease has no BackendV6Data\)/,
    )
    const good = `,"BackendV6Data":{"VNI":1,"VtepMAC":"02:00:00:00:00:0a"}`
    assert.deepEqual(only(run(dual, [kv('10.5.4.0-24&fd00:0:0:4::-64', v(good))]).findings, 'backend-data-invalid'), [])
    // An IPv4-only network does not read BackendV6Data.
    assert.deepEqual(only(run(VXLAN, [kv('10.5.4.0-24&fd00:0:0:4::-64', v(''))]).findings, 'backend-data-invalid'), [])
  })
  test('duplicate-vtep-mac', () =>
    assert.deepEqual(
      only(
        run(VXLAN, [
          kv('10.5.4.0-24', vx('192.168.1.1', 'aa:bb:cc:00:00:01')),
          kv('10.5.5.0-24', vx('192.168.1.2', 'AA:BB:CC:00:00:01')),
        ]).findings,
        'duplicate-vtep-mac',
      ).map((x) => x.subjects),
      [['10.5.4.0/24', '10.5.5.0/24']],
    ))
  test('missed-renewal uses the TTLs and the margin', () => {
    const f = only(
      run(
        VXLAN,
        [kv('10.5.4.0-24', vx('192.168.1.1'), '7'), kv('10.5.5.0-24', vx('192.168.1.2'), '8')],
        new Map([
          ['7', 600],
          ['8', 80_000],
        ]),
      ).findings,
      'missed-renewal',
    )
    assert.deepEqual(
      f.map((x) => x.subjects),
      [['10.5.4.0/24']],
    )
    assert.match(f[0]!.hint, /leases release --stale/)
    assert.deepEqual(only(run(VXLAN, [kv('10.5.4.0-24', vx('192.168.1.1'), '7')], null).findings, 'missed-renewal'), [])
  })
  test('reservation: a warning on etcd v3 (flanneld ≥ v0.18 takes it back), info on v2 (kept)', () => {
    const reserved = [kv('10.5.4.0-24', vx('192.168.1.1'), '0')]
    const [f] = only(run(VXLAN, reserved).findings, 'reservation')
    assert.equal(f!.severity, 'warning')
    assert.match(
      f!.message,
      /flanneld ≥ v0\.18 on 192\.168\.1\.1 takes it back as an ordinary 24h lease when it starts/,
    )
    const all = [kv('/coreos.com/network/config', VXLAN, '0'), ...reserved]
    const v2 = clusterChecks({
      layout,
      snapshot: classifyKeys(layout, all, '42'),
      ttls: null,
      renewMarginSeconds: 3600,
      api: 'v2',
    })
    assert.deepEqual(
      only(v2.findings, 'reservation').map((x) => x.severity),
      ['info'],
    )
  })
  test('a pre-reservation (no lease, no BackendData) is healthy: info, no backend-data-invalid', () => {
    const pre = kv('10.5.4.0-24', '{"PublicIP":"192.168.9.9","PublicIPv6":null,"BackendType":"vxlan"}', '0')
    const fs = run(VXLAN, [pre]).findings
    assert.deepEqual(
      fs.map((x) => [x.id, x.severity]),
      [['reservation', 'info']],
    )
    assert.match(fs[0]!.message, /pre-reserved for 192\.168\.9\.9, which has not joined/)
    // With a lease, missing BackendData is a broken lease as before.
    const leased = kv('10.5.4.0-24', '{"PublicIP":"192.168.9.9","PublicIPv6":null,"BackendType":"vxlan"}', '7')
    assert.deepEqual(ids(run(VXLAN, [leased]).findings), ['backend-data-invalid'])
  })
  test('capacity: warning at 80 %, error at 95 %, hint names an accepted expand', () => {
    const fill = (n: number) =>
      Array.from({length: n}, (_, i) => kv(`10.5.${i + 1}.0-24`, vx(`192.168.${Math.floor(i / 200)}.${(i % 200) + 1}`)))
    assert.deepEqual(only(run(VXLAN, fill(203)).findings, 'capacity'), [])
    assert.equal(only(run(VXLAN, fill(204)).findings, 'capacity')[0]!.severity, 'warning')
    const e = only(run(VXLAN, fill(243)).findings, 'capacity')[0]!
    assert.equal(e.severity, 'error')
    assert.match(e.hint, /flannelctl network expand --to 10\.4\.0\.0\/15/)
  })
  test('capacity hint never suggests an expand that expand would refuse', () => {
    const fill = (node: string) =>
      Array.from({length: 250}, (_, i) =>
        kv(`10.5.${i + 1}.0-24`, vx(i === 0 ? node : `192.168.${Math.floor(i / 200)}.${(i % 200) + 1}`)),
      )
    // 10.6.0.1 is outside 10.4.0.0/15, so that one is accepted
    assert.match(only(run(VXLAN, fill('10.6.0.1')).findings, 'capacity')[0]!.hint, /--to 10\.4\.0\.0\/15 /)
    // 10.4.0.1 is inside every supernet of 10.5.0.0/16: no expand is suggested
    const h = only(run(VXLAN, fill('10.4.0.1')).findings, 'capacity')[0]!.hint
    assert.doesNotMatch(h, /network expand/)
    assert.match(h, /leases release --stale/)
  })
  test('foreign-keys', () =>
    assert.deepEqual(
      only(run(VXLAN, [kv('/coreos.com/network/net1/config', '{}')]).findings, 'foreign-keys').map((x) => x.subjects),
      [['/coreos.com/network/net1/config']],
    ))
})

describe('doctor node checks', () => {
  const leases = [
    kv('10.5.1.0-24', vx('198.18.0.1', '02:00:00:00:01:01')),
    kv('10.5.2.0-24', vx('198.18.0.2', '02:00:00:00:02:02')),
    kv('10.5.3.0-24', vx('198.18.0.3', '02:00:00:00:03:03')),
  ]
  const ctx = run(VXLAN, leases).context
  const ip = (s: string) => parseIPv4(s)!
  const dev: LinkState = {
    name: 'flannel.1',
    mtu: 1450,
    mac: '02:00:00:00:01:01',
    up: true,
    vxlan: {id: 1, local: '198.18.0.1', port: 8472, learning: false, gbp: false},
    addresses: [{ip: ip('10.5.1.0'), prefix: 32}],
  }
  const routes: RouteEntry[] = [
    {dst: parseCidr4('198.18.0.0/24'), gateway: null, dev: 'eth0', onlink: false},
    {dst: parseCidr4('10.5.2.0/24'), gateway: ip('10.5.2.0'), dev: 'flannel.1', onlink: true},
    {dst: parseCidr4('10.5.3.0/24'), gateway: ip('10.5.3.0'), dev: 'flannel.1', onlink: true},
  ]
  const healthy: NodeObservation = {
    subnetFile: '/run/flannel/subnet.env',
    subnetEnvText: 'FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n',
    publicIP: ip('198.18.0.1'),
    publicIPSource: 'test',
    ifaceMtu: 1500,
    device: dev,
    routes,
    neighs: [
      {ip: ip('10.5.2.0'), mac: '02:00:00:00:02:02', permanent: true},
      {ip: ip('10.5.3.0'), mac: '02:00:00:00:03:03', permanent: true},
    ],
    fdb: [
      {mac: '02:00:00:00:02:02', dst: ip('198.18.0.2')},
      {mac: '02:00:00:00:03:03', dst: ip('198.18.0.3')},
    ],
    ipForward: true,
  }
  const check = (o: Partial<NodeObservation>) => nodeChecks({...healthy, ...o}, ctx)

  test('a node as flanneld leaves it: no findings', () => assert.deepEqual(check({}), []))
  test('subnet-env-missing', () => assert.deepEqual(ids(check({subnetEnvText: null})), ['subnet-env-missing']))
  test('subnet-env-invalid', () =>
    assert.deepEqual(ids(check({subnetEnvText: 'FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_MTU=x\n'})).slice(0, 1), [
      'subnet-env-invalid',
    ]))
  test('subnet-env-outside-network', () =>
    assert.ok(
      ids(
        check({
          subnetEnvText:
            'FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.9.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n',
        }),
      ).includes('subnet-env-outside-network'),
    ))
  test('subnet-env-stale-network', () =>
    assert.deepEqual(
      ids(
        check({
          subnetEnvText:
            'FLANNEL_NETWORK=10.5.0.0/17\nFLANNEL_SUBNET=10.5.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n',
        }),
      ),
      ['subnet-env-stale-network'],
    ))
  test('subnet-env-foreign', () =>
    assert.ok(
      ids(
        check({
          subnetEnvText:
            'FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.2.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n',
        }),
      ).includes('subnet-env-foreign'),
    ))
  test('subnet-env-no-lease', () =>
    assert.ok(
      ids(
        check({
          subnetEnvText:
            'FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.77.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n',
        }),
      ).includes('subnet-env-no-lease'),
    ))
  test('device-missing', () => assert.deepEqual(ids(check({device: null})), ['device-missing']))
  test('device-mtu', () => assert.deepEqual(ids(check({device: {...dev, mtu: 1500}})), ['device-mtu']))
  test('device-address', () =>
    assert.deepEqual(ids(check({device: {...dev, addresses: [{ip: ip('10.5.1.0'), prefix: 16}]}})), ['device-address']))
  test('device-local-ip', () =>
    assert.deepEqual(ids(check({device: {...dev, vxlan: {...dev.vxlan!, local: '10.0.2.15'}}})), ['device-local-ip']))
  test('route-missing', () =>
    assert.deepEqual(
      check({routes: routes.filter((r) => r.dst?.ip !== ip('10.5.3.0'))}).map((f) => [f.id, f.subjects[0]]),
      [['route-missing', '10.5.3.0/24']],
    ))
  test('neigh-missing', () =>
    assert.deepEqual(
      check({neighs: healthy.neighs.slice(1)}).map((f) => [f.id, f.subjects[0]]),
      [['neigh-missing', '10.5.2.0/24']],
    ))
  test('fdb-missing (a stale MAC counts as missing)', () =>
    assert.deepEqual(
      check({fdb: [{mac: '02:00:00:00:02:99', dst: ip('198.18.0.2')}, healthy.fdb[1]!]}).map((f) => [
        f.id,
        f.subjects[0],
      ]),
      [['fdb-missing', '10.5.2.0/24']],
    ))
  test('route-stale', () =>
    assert.deepEqual(
      check({
        routes: [...routes, {dst: parseCidr4('10.5.9.0/24'), gateway: ip('10.5.9.0'), dev: 'flannel.1', onlink: true}],
      }).map((f) => [f.id, f.severity]),
      [['route-stale', 'warning']],
    ))
  test('ip-forward-off', () => assert.deepEqual(ids(check({ipForward: false})), ['ip-forward-off']))
  test('DirectRouting: peers on the connected segment want a route via their PublicIP only', () => {
    const dr = run('{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan","DirectRouting":true}}', leases).context
    const direct: RouteEntry[] = [
      routes[0]!,
      {dst: parseCidr4('10.5.2.0/24'), gateway: ip('198.18.0.2'), dev: 'eth0', onlink: false},
      {dst: parseCidr4('10.5.3.0/24'), gateway: ip('198.18.0.3'), dev: 'eth0', onlink: false},
    ]
    assert.deepEqual(nodeChecks({...healthy, routes: direct, neighs: [], fdb: []}, dr), [])
    assert.deepEqual(
      nodeChecks({...healthy, routes: direct.slice(0, 2), neighs: [], fdb: []}, dr).map((f) => [f.id, f.subjects[0]]),
      [['route-missing', '10.5.3.0/24']],
    )
  })
})

describe('doctor node checks: masquerade, forward policy, host-gw', () => {
  const leases = [kv('10.5.1.0-24', vx('198.18.0.1', '02:00:00:00:01:01'))]
  const ctx = run(VXLAN, leases).context
  const ip = (s: string) => parseIPv4(s)!
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
  }
  const golden = [
    '-P POSTROUTING ACCEPT',
    '-N FLANNEL-POSTRTG',
    '-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG',
    '-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment "flanneld masq" -j RETURN',
    '-A FLANNEL-POSTRTG -s 10.5.1.0/24 -d 10.5.0.0/16 -m comment --comment "flanneld masq" -j RETURN',
    '-A FLANNEL-POSTRTG -s 10.5.0.0/16 -d 10.5.1.0/24 -m comment --comment "flanneld masq" -j RETURN',
    '-A FLANNEL-POSTRTG ! -s 10.5.0.0/16 -d 10.5.1.0/24 -m comment --comment "flanneld masq" -j RETURN',
    '-A FLANNEL-POSTRTG -s 10.5.0.0/16 ! -d 224.0.0.0/4 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully',
    '-A FLANNEL-POSTRTG ! -s 10.5.0.0/16 -d 10.5.0.0/16 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully',
  ]
  const check = (o: Partial<NodeObservation>) => nodeChecks({...base, ...o}, ctx).map((f) => f.id)

  test('rules as flanneld installs them: no error, the set is named', () =>
    assert.deepEqual(check({iptablesNat: golden.join('\n')}), ['masq-rule-set']))
  test('masq-rules-missing', () =>
    assert.deepEqual(check({iptablesNat: golden.filter((_, i) => i !== 5).join('\n')}), ['masq-rules-missing']))
  test('masq-rules-stale (rules for the pre-expansion Network left behind)', () =>
    assert.deepEqual(
      check({
        iptablesNat: [
          ...golden,
          '-A FLANNEL-POSTRTG -s 10.5.0.0/17 ! -d 224.0.0.0/4 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully',
        ].join('\n'),
      }),
      ['masq-rule-set', 'masq-rules-stale'],
    ))
  test('FLANNEL_IPMASQ=false: masquerade rules are not expected', () =>
    assert.deepEqual(
      check({iptablesNat: '', subnetEnvText: base.subnetEnvText!.replace('IPMASQ=true', 'IPMASQ=false')}),
      [],
    ))
  test('forward-policy-drop without flannel ACCEPT rules, none with them', () => {
    assert.deepEqual(
      check({iptablesNat: golden.join('\n'), iptablesFilter: '-P INPUT ACCEPT\n-P FORWARD DROP\n-P OUTPUT ACCEPT'}),
      ['masq-rule-set', 'forward-policy-drop'],
    )
    const withFwd =
      '-P FORWARD DROP\n-N FLANNEL-FWD\n-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD\n-A FLANNEL-FWD -s 10.5.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT'
    assert.deepEqual(check({iptablesNat: golden.join('\n'), iptablesFilter: withFwd}), ['masq-rule-set'])
  })
  test('host-gw: a peer behind a router is unreachable; a missing route is reported', () => {
    const hg = (a: string) => `{"PublicIP":"${a}","PublicIPv6":null,"BackendType":"host-gw"}`
    const hctx = run('{"Network":"10.5.0.0/16","Backend":{"Type":"host-gw"}}', [
      kv('10.5.1.0-24', hg('198.18.0.1')),
      kv('10.5.2.0-24', hg('198.18.0.2')),
      kv('10.5.3.0-24', hg('198.18.1.3')),
    ]).context
    const routes: RouteEntry[] = [
      {dst: null, gateway: ip('198.18.0.254'), dev: 'eth0', onlink: false},
      {dst: parseCidr4('198.18.0.0/24'), gateway: null, dev: 'eth0', onlink: false},
    ]
    const fs = nodeChecks(
      {
        ...base,
        subnetEnvText: base.subnetEnvText!.replace('IPMASQ=true', 'IPMASQ=false'),
        device: null,
        ifaceName: 'eth0',
        routes,
      },
      hctx,
    )
    assert.deepEqual(
      fs.map((f) => [f.id, f.subjects[0]]),
      [
        ['hostgw-peer-unreachable', '10.5.3.0/24'],
        ['route-missing', '10.5.2.0/24'],
      ],
    )
  })
})

describe('check IDs', () => {
  test('CHECK_IDS names every finding ID the checks can produce (so --only/--skip accept each one)', async () => {
    const {readFile, readdir} = await import('node:fs/promises')
    const {CHECK_IDS} = await import('../../src/core/doctor.js')
    const dir = new URL('../../src/core/', import.meta.url)
    const ids = new Set<string>()
    for (const f of await readdir(dir)) {
      if (!f.endsWith('.ts')) continue
      for (const m of (await readFile(new URL(f, dir), 'utf8')).matchAll(/\bid: '([a-z0-9-]+)'/g)) ids.add(m[1]!)
    }
    assert.ok(ids.size > 30)
    assert.deepEqual(
      [...ids].filter((id) => !CHECK_IDS.includes(id)),
      [],
    )
  })
})
