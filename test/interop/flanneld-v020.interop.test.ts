// A mixed cluster in network namespaces: two real flanneld v0.20.0 nodes (one with --ip-masq) and one flannelctl
// agent, on a TLS etcd (v0.20 talks to etcd only with client certificates), with Backend.MTU set (v0.20 ignores it).
// flannelctl must judge the flanneld nodes the way that release behaves: doctor --local healthy, subnet-env byte for
// byte, leases reserve honest about what a running and a stopped v0.20 node does with a reservation.
//
// Runs when FLANNELD_BIN points at a flanneld v0.20.0 binary (built outside the repo, see test/interop/README.md)
// and the test runs as root; skipped, saying why, otherwise. Addresses: 198.18.0.0/15 only. Everything is removed.

import assert from 'node:assert/strict'
import {readFile} from 'node:fs/promises'
import {setTimeout as sleep} from 'node:timers/promises'
import {after, before, describe, test} from 'node:test'

import {keyOf, type Node, podIP, Topology} from '../helpers/topology.js'
import {
  awaitFlanneld,
  cli,
  cliIn,
  doctorJson,
  type Flanneld,
  interopSkipReason,
  leaseOf,
  startFlanneld,
} from './flanneld.js'

const skip = interopSkipReason('FLANNELD_BIN', 'v0.20.0')
const BIN = process.env.FLANNELD_BIN ?? ''
const NAT_PUBLIC = '198.18.0.44'
const NAT_PRIVATE = '198.18.1.4'
const CONFIG = '{"Network":"198.19.0.0/16","SubnetLen":24,"Backend":{"Type":"vxlan","MTU":1350}}'

describe('flanneld v0.20.0 beside flannelctl (interop)', {skip: skip ?? false}, () => {
  const topo = new Topology({tag: 'interop20', resyncMs: 1000})
  let masq: Node // flanneld v0.20 --ip-masq
  let plain: Node // flanneld v0.20
  let agent: Node // flannelctl agent --ip-masq
  let natted: Node // flanneld v0.20 behind a 1:1 NAT router: interface 198.18.1.4, --public-ip 198.18.0.44
  const flannelds = new Map<Node, Flanneld>()

  const subnetOfNode = async (n: Node) => {
    const m = /^FLANNEL_SUBNET=198\.19\.(\d+)\.1\/24$/m.exec(await topo.readSubnetEnv(n))
    assert.ok(m, `node ${n.n} has a FLANNEL_SUBNET`)
    return `198.19.${m[1]}.0/24`
  }
  const failMsg = (n: Node) => `flanneld on node ${n.n}:\n${flannelds.get(n)?.output().slice(-4000) ?? ''}`

  before(async () => {
    await topo.init()
    await topo.startEtcd(CONFIG, {tls: true})
    masq = await topo.addNode(1, '198.18.0.11')
    plain = await topo.addNode(2, '198.18.0.12')
    agent = await topo.addNode(3, '198.18.0.13', {args: ['--ip-masq']})
    // 1:1 NAT: the router owns 198.18.0.44 on br0 and maps it to 198.18.1.4 on br1 (DNAT in, SNAT out).
    topo.addSegment('br1')
    const router = topo.addHost('nat', '198.18.0.254', 'urt0')
    topo.plug(router, '198.18.1.254', 'urt1', 'br1', 'eth1')
    router.ip('addr', 'add', `${NAT_PUBLIC}/32`, 'dev', 'eth0')
    router.exec('sysctl', '-q', '-w', 'net.ipv4.ip_forward=1')
    router.exec(
      'iptables',
      '-t',
      'nat',
      '-A',
      'PREROUTING',
      '-d',
      NAT_PUBLIC,
      '-j',
      'DNAT',
      '--to-destination',
      NAT_PRIVATE,
    )
    router.exec(
      'iptables',
      '-t',
      'nat',
      '-A',
      'POSTROUTING',
      '-s',
      NAT_PRIVATE,
      '-j',
      'SNAT',
      '--to-source',
      NAT_PUBLIC,
    )
    natted = await topo.addNode(4, NAT_PRIVATE, {bridge: 'br1', gateway: '198.18.1.254'})
    // One node after the other: flanneld v0.20 reads only the first event of each etcd watch response
    // (subnet/etcd/registry.go watchSubnets, "TODO:handle more than 1 event?"), so leases created in the same instant
    // can be missed by it for good. That is flanneld's bug, not what this tier tests.
    for (const [n, extra] of [
      [masq, ['--ip-masq']],
      [plain, []],
      [natted, [`--public-ip=${NAT_PUBLIC}`]],
    ] as const) {
      const f = startFlanneld(topo, n, BIN, [...extra])
      flannelds.set(n, f)
      await awaitFlanneld(topo, f)
      await sleep(500)
    }
    topo.startAgent(agent)
    await topo.waitFor('the agent is ready', 30_000, () => topo.ready([agent]))
    for (const n of [masq, plain, agent, natted]) {
      n.x = await topo.subnetX(n)
      topo.wirePod(n)
    }
  })
  after(async () => {
    await topo.teardown()
  })

  test('pods on flanneld v0.20 and flannelctl nodes reach each other both ways', async () => {
    const failures = await topo.pingPairs(topo.allPairs(), 10)
    const all = [...flannelds.keys()].map(failMsg).join('\n')
    assert.deepEqual(failures, [], `${failures.join('\n')}\n${all}\n${await topo.logs()}`)
  })

  test('doctor --local on a healthy v0.20 node, with and without --ip-masq: no error', async () => {
    for (const n of [masq, plain]) {
      for (const version of [[], ['--flanneld-version', '0.20.0']]) {
        const r = await cliIn(n, [
          'doctor',
          '--local',
          '--subnet-file',
          n.subnetFile,
          '--json',
          ...version,
          ...topo.etcdArgs(),
        ])
        const d = doctorJson(r)
        const errors = d.findings.filter((f) => f.severity === 'error')
        assert.deepEqual(errors, [], `node ${n.n} ${version.join(' ')}: ${JSON.stringify(d.findings, null, 1)}`)
        assert.equal(r.code, 0, r.stderr)
      }
    }
    // The --ip-masq node's rule set is recognised as v0.20's (4 rules in FLANNEL-POSTRTG, jump inserted).
    const d = doctorJson(
      await cliIn(masq, ['doctor', '--local', '--subnet-file', masq.subnetFile, '--json', ...topo.etcdArgs()]),
    )
    const named = d.findings.find((f) => f.id === 'masq-rule-set')
    assert.ok(named, JSON.stringify(d.findings))
    assert.match(named.message, /flanneld v0\.20\.0–v0\.20\.1 \(4 rules in FLANNEL-POSTRTG, jump inserted\)/)
    // ... and the node judged as a current release would be wrong: Backend.MTU and the 6-rule set.
    const asNew = doctorJson(
      await cliIn(masq, [
        'doctor',
        '--local',
        '--subnet-file',
        masq.subnetFile,
        '--json',
        '--flanneld-version',
        '0.28.9',
        ...topo.etcdArgs(),
      ]),
    )
    assert.deepEqual(
      asNew.findings.filter((f) => f.severity === 'error').map((f) => f.id),
      ['device-mtu', 'masq-rules-missing'],
    )
  })

  test('behind 1:1 NAT: v0.20 sends from its interface address; doctor --local judges that by release', async () => {
    const link = await topo.linkOf(natted)
    assert.equal(link.linkinfo?.info_data?.local, NAT_PRIVATE, 'flanneld v0.20 uses IfaceAddr as the vxlan local')
    const leases = await topo.listSubnets()
    assert.ok(
      leases.some((k) => k.value.includes(`"PublicIP":"${NAT_PUBLIC}"`)),
      'the lease carries the PublicIP',
    )
    const doctor = (extra: string[]) =>
      cliIn(natted, [
        ...['doctor', '--local', '--subnet-file', natted.subnetFile, '--iface', 'eth0', '--public-ip', NAT_PUBLIC],
        ...['--json', ...extra, ...topo.etcdArgs()],
      ])
    for (const version of [[], ['--flanneld-version', '0.20.0']]) {
      const r = await doctor(version)
      const d = doctorJson(r)
      assert.deepEqual(
        d.findings.filter((f) => f.severity === 'error'),
        [],
        `${version.join(' ')}: ${JSON.stringify(d.findings, null, 1)}`,
      )
      assert.equal(r.code, 0, r.stderr)
    }
    // A node said to run v0.27.4+ would have local = PublicIP (and be cut off behind this NAT): this device is not that.
    const asNew = doctorJson(await doctor(['--flanneld-version', '0.28.0']))
    const f = asNew.findings.find((x) => x.id === 'device-local-ip')
    assert.ok(f, JSON.stringify(asNew.findings))
    assert.match(f.message, new RegExp(`flanneld v0\\.28\\.0 sets ${NAT_PUBLIC.replace(/\./g, '\\.')}`))
  })

  test("subnet-env --flanneld-version 0.20.0 is byte-identical to v0.20's file with Backend.MTU set", async () => {
    for (const [n, masqFlag] of [
      [masq, ['--ip-masq']],
      [plain, []],
    ] as const) {
      const file = await readFile(n.subnetFile, 'utf8')
      assert.match(file, /^FLANNEL_MTU=1450$/m, 'v0.20 ignores Backend.MTU 1350')
      const r = await cli(topo, ['subnet-env', '--public-ip', n.ip, '--flanneld-version', '0.20.0', ...masqFlag])
      assert.equal(r.code, 0, r.stderr)
      assert.equal(r.stdout, file)
      // Without the release, the current rule (Backend.MTU honoured since v0.21.3) gives 1300.
      const current = await cli(topo, ['subnet-env', '--public-ip', n.ip, ...masqFlag])
      assert.match(current.stdout, /^FLANNEL_MTU=1300$/m)
    }
  })

  test('leases reserve on a running v0.20 node: it re-leases at once, reserve exits 3 and says what works', async () => {
    const subnet = await subnetOfNode(plain)
    const r = await cli(topo, ['leases', 'reserve', subnet, '--yes', '--watch', '5s'])
    assert.equal(r.code, 3, `${r.stdout}\n${r.stderr}`)
    assert.match(
      r.stderr,
      new RegExp(
        `the reservation of ${subnet.replace(/\./g, '\\.')} was undone: flanneld on 198\\.18\\.0\\.12 re-leased it`,
      ),
    )
    assert.match(r.stderr, /stop flanneld on 198\.18\.0\.12/)
    assert.notEqual(await leaseOf(topo, keyOf(subnet)), '0', 'flanneld put its key back under a lease')
    assert.match(flannelds.get(plain)!.output(), /Waiting for -1h0m\d+(\.\d+)?s to renew lease/)
  })

  test('leases reserve on a stopped v0.20 node holds; on start it takes the same subnet back as a 24h lease', async () => {
    const subnet = await subnetOfNode(plain)
    await flannelds.get(plain)!.stop()
    const r = await cli(topo, ['leases', 'reserve', subnet, '--yes', '--watch', '2s'])
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`)
    assert.match(r.stdout, /still reserved after 2s/)
    assert.equal(await leaseOf(topo, keyOf(subnet)), '0')
    const doc = doctorJson(await cli(topo, ['doctor', '--json', '--only', 'reservation']))
    assert.equal(doc.findings[0]?.severity, 'warning')
    assert.match(doc.findings[0].message, /takes it back as an ordinary 24h lease when it starts/)
    // What doctor and reserve said: flanneld v0.20 reuses it by PublicIP and re-leases it.
    flannelds.set(plain, startFlanneld(topo, plain, BIN))
    await topo.waitFor('flanneld re-leases its reserved subnet', 30_000, async () => {
      const lease = await leaseOf(topo, keyOf(subnet))
      return lease !== null && lease !== '0' ? [] : [`lease ${lease}\n${failMsg(plain)}`]
    })
    assert.equal(await subnetOfNode(plain), subnet)
    const failures = await topo.pingPairs(
      [
        [agent, plain],
        [plain, agent],
      ],
      10,
    )
    assert.deepEqual(failures, [], `${failures.join('\n')}\n${failMsg(plain)}`)
    assert.ok(podIP(plain).startsWith(subnet.slice(0, -5)))
  })
})
