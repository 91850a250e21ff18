// Two real flanneld v0.11.0 nodes (etcd v2 keys API, one with --ip-masq) in network namespaces, judged by flannelctl
// through etcd's v2 keyspace: doctor --local healthy on both (v0.11's four POSTROUTING rules recognised), subnet-env
// byte for byte, and a reservation on a running v0.11 node kept (flanneld <= v0.17 never renews a key without a TTL).
//
// Runs when FLANNELD_V2_BIN points at a flanneld v0.11.0 binary (built outside the repo, see test/interop/README.md)
// and the test runs as root; skipped, saying why, otherwise. Addresses: 198.18.0.0/15 only. Everything is removed.

import assert from 'node:assert/strict'
import {readFile} from 'node:fs/promises'
import {setTimeout as sleep} from 'node:timers/promises'
import {after, before, describe, test} from 'node:test'

import {keyOf, type Node, Topology} from '../helpers/topology.js'
import {awaitFlanneld, cli, cliIn, doctorJson, type Flanneld, interopSkipReason, startFlanneld} from './flanneld.js'

const skip = interopSkipReason('FLANNELD_V2_BIN', 'v0.11.0')
const BIN = process.env.FLANNELD_V2_BIN ?? ''
const CONFIG = '{"Network":"198.19.0.0/16","SubnetLen":24,"Backend":{"Type":"vxlan"}}'
const V2 = ['--etcd-api', 'v2']

describe('flanneld v0.11.0 on etcd v2 beside flannelctl (interop)', {skip: skip ?? false}, () => {
  const topo = new Topology({tag: 'interop11', resyncMs: 1000})
  let masq: Node
  let plain: Node
  const flannelds = new Map<Node, Flanneld>()

  /** A v2 key as etcd's v2 API returns it (ttl absent for a key without one). */
  const v2Key = (key: string): {value: string; ttl?: number} | null => {
    const out = topo.etcdNs.exec('curl', '-s', '-m', '5', `${topo.etcd.endpoint}/v2/keys${key}`)
    const doc = JSON.parse(out) as {node?: {value: string; ttl?: number}}
    return doc.node ?? null
  }
  const subnetOfNode = async (n: Node) => {
    const m = /^FLANNEL_SUBNET=198\.19\.(\d+)\.1\/24$/m.exec(await topo.readSubnetEnv(n))
    assert.ok(m, `node ${n.n} has a FLANNEL_SUBNET`)
    return `198.19.${m[1]}.0/24`
  }

  before(async () => {
    await topo.init()
    await topo.startEtcd(CONFIG, {v2: true})
    masq = await topo.addNode(1, '198.18.0.21')
    plain = await topo.addNode(2, '198.18.0.22')
    flannelds.set(masq, startFlanneld(topo, masq, BIN, ['--ip-masq']))
    flannelds.set(plain, startFlanneld(topo, plain, BIN))
    for (const f of flannelds.values()) await awaitFlanneld(topo, f)
    for (const n of [masq, plain]) {
      n.x = await topo.subnetX(n)
      topo.wirePod(n)
    }
  })
  after(async () => {
    await topo.teardown()
  })

  test('pods on the two v0.11 nodes reach each other', async () => {
    const failures = await topo.pingPairs(topo.allPairs(), 10)
    assert.deepEqual(failures, [], `${failures.join('\n')}\n${flannelds.get(masq)!.output().slice(-3000)}`)
  })

  test('doctor --local on healthy v0.11 nodes, with and without --ip-masq: no error; the rule set is named', async () => {
    const doctor = (n: Node, extra: string[]) =>
      cliIn(n, ['doctor', '--local', '--subnet-file', n.subnetFile, '--json', ...V2, ...extra, ...topo.etcdArgs()])
    const errorsOf = (d: ReturnType<typeof doctorJson>) => d.findings.filter((f) => f.severity === 'error')
    for (const n of [masq, plain]) {
      const r = await doctor(n, ['--flanneld-version', '0.11.0'])
      const d = doctorJson(r)
      assert.deepEqual(errorsOf(d), [], `node ${n.n}: ${JSON.stringify(d.findings, null, 1)}`)
      assert.equal(r.code, 0, r.stderr)
    }
    // Without --flanneld-version the --ip-masq node's rules tell its release (v0.11–v0.16: four rules in POSTROUTING),
    // so the v2-only config is what that release reads (a warning), not the error it is for flanneld >= 0.18.
    const r = await doctor(masq, [])
    const d = doctorJson(r)
    assert.deepEqual(errorsOf(d), [], JSON.stringify(d.findings, null, 1))
    assert.equal(r.code, 0, r.stderr)
    const named = d.findings.find((f) => f.id === 'masq-rule-set')
    assert.ok(named, JSON.stringify(d.findings))
    assert.match(named.message, /flanneld v0\.(8|11)\.0–v0\.16\.1 \(4 rules in POSTROUTING\)/)
    assert.equal(d.findings.find((f) => f.id === 'config-only-in-v2')?.severity, 'warning')
    // The node without masquerade rules shows nothing of its release: doctor judges the keyspace for flanneld >= 0.18
    // (its documented default) and that is the only error.
    assert.deepEqual(
      errorsOf(doctorJson(await doctor(plain, []))).map((f) => f.id),
      ['config-only-in-v2'],
    )
  })

  test("subnet-env --etcd-api v2 is byte-identical to v0.11's file", async () => {
    for (const [n, masqFlag] of [
      [masq, ['--ip-masq']],
      [plain, []],
    ] as const) {
      const r = await cli(topo, ['subnet-env', '--public-ip', n.ip, '--flanneld-version', '0.11.0', ...V2, ...masqFlag])
      assert.equal(r.code, 0, r.stderr)
      assert.equal(r.stdout, await readFile(n.subnetFile, 'utf8'))
    }
  })

  test('leases reserve on a running v0.11 node holds: flanneld <= v0.17 never renews a key without a TTL', async () => {
    const subnet = await subnetOfNode(plain)
    const before = v2Key(keyOf(subnet))
    assert.ok(before?.ttl, 'a v0.11 lease has a TTL')
    const r = await cli(topo, ['leases', 'reserve', subnet, '--yes', '--watch', '3s', ...V2])
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`)
    assert.match(r.stdout, /still reserved after 3s/)
    await sleep(1000)
    const now = v2Key(keyOf(subnet))
    assert.equal(now?.ttl, undefined, `still without a TTL: ${JSON.stringify(now)}`)
    assert.equal(now?.value, before.value)
    // flanneld saw the change and computed a renewal ~292 years away (time.Until(zero) - margin overflows).
    assert.match(flannelds.get(plain)!.output(), /Waiting for 25620\d\dh\d+m[\d.]+s to renew lease/)
    const doc = doctorJson(await cli(topo, ['doctor', '--json', '--only', 'reservation', ...V2]))
    assert.equal(doc.findings[0]?.severity, 'info')
  })
})
