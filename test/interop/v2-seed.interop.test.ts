// The seed's own scenario on etcd v2 with real flanneld v0.11.0 nodes in network namespaces: a small Network with a
// lease, widened with `network expand --etcd-api v2` keeping SubnetLen; the node restarted keeps its subnet and its
// subnet.env shows the new Network; a new node gets a subnet in the new range only (the old one is full); pods on
// both reach each other; a reservation made on v2, then that node restarted: it keeps the subnet and the key keeps
// no TTL (flanneld <= v0.17 re-sets a reservation without one).
//
// Addresses stay inside 198.18.0.0/15 (nodes 198.18.0.x, pods 198.19.x.0/24), so the widening is 198.19.0.0/22 to
// 198.19.0.0/16 rather than the seed's /16 to /8 (that one runs on data in test/commands/v2-mutations.int.test.ts).
// flanneld wants room for four subnets; SubnetMin = SubnetMax = 198.19.1.0 leaves one to allocate, so the second node
// can only get one of the new range (expand widens the explicit range with --subnet-min/--subnet-max). Runs when FLANNELD_V2_BIN points at a flanneld v0.11.0 binary (built outside the repo, see
// test/interop/README.md) and the test runs as root; skipped, saying why, otherwise. Everything it creates is removed.

import assert from 'node:assert/strict'
import {rm} from 'node:fs/promises'
import {after, before, describe, test} from 'node:test'

import {keyOf, type Node, Topology} from '../helpers/topology.js'
import {awaitFlanneld, cli, type Flanneld, interopSkipReason, startFlanneld} from './flanneld.js'

const skip = interopSkipReason('FLANNELD_V2_BIN', 'v0.11.0')
const BIN = process.env.FLANNELD_V2_BIN ?? ''
const CONFIG =
  '{"Network":"198.19.0.0/22","SubnetLen":24,"SubnetMin":"198.19.1.0","SubnetMax":"198.19.1.0","Backend":{"Type":"vxlan"}}'
const WIDER = ['--to', '198.19.0.0/16', '--subnet-min', '198.19.1.0', '--subnet-max', '198.19.255.0']
const V2 = ['--etcd-api', 'v2']

describe('the seed scenario on etcd v2 with flanneld v0.11.0 (interop)', {skip: skip ?? false}, () => {
  const topo = new Topology({tag: 'seed11', resyncMs: 1000})
  let one: Node
  let two: Node
  const flannelds = new Map<Node, Flanneld>()
  /** The commands run and what they printed, for the closing note. */
  const transcript: string[] = []

  const run = async (args: string[]) => {
    const r = await cli(topo, args)
    transcript.push(`$ flannelctl ${args.join(' ')}  # exit ${r.code}`, r.stdout.trimEnd(), r.stderr.trimEnd())
    return r
  }
  const v2Key = (key: string): {value: string; ttl?: number; expiration?: string} | null => {
    const out = topo.etcdNs.exec('curl', '-s', '-m', '5', `${topo.etcd.endpoint}/v2/keys${key}`)
    return (JSON.parse(out) as {node?: {value: string; ttl?: number}}).node ?? null
  }
  const env = async (n: Node) => {
    const text = await topo.readSubnetEnv(n)
    const net = /^FLANNEL_NETWORK=(.*)$/m.exec(text)?.[1]
    const sub = /^FLANNEL_SUBNET=198\.19\.(\d+)\.1\/24$/m.exec(text)?.[1]
    assert.ok(net && sub, `node ${n.n}: ${text}`)
    return {network: net, subnet: `198.19.${sub}.0/24`, x: Number(sub)}
  }
  const start = async (n: Node) => {
    // A fresh subnet.env each start, so what is read is what this flanneld wrote.
    await rm(n.subnetFile, {force: true})
    const f = startFlanneld(topo, n, BIN)
    flannelds.set(n, f)
    await awaitFlanneld(topo, f)
  }
  const restart = async (n: Node) => {
    await flannelds.get(n)!.stop()
    await start(n)
  }

  before(async () => {
    await topo.init()
    await topo.startEtcd(CONFIG, {v2: true})
    one = await topo.addNode(1, '198.18.0.31')
    two = await topo.addNode(2, '198.18.0.32')
    await start(one)
  })
  after(async () => {
    process.stderr.write(`--- seed scenario transcript ---\n${transcript.filter((l) => l !== '').join('\n')}\n`)
    await topo.teardown()
  })

  test('expand on v2 keeping SubnetLen; node 1 restarted keeps its subnet and its subnet.env shows the new Network', async () => {
    const before = await env(one)
    assert.equal(before.network, '198.19.0.0/22')
    assert.equal((await run(['network', 'show', ...V2])).code, 0)
    const plan = await run(['network', 'expand', ...WIDER, '--dry-run', ...V2])
    assert.equal(plan.code, 0, plan.stderr)
    const r = await run(['network', 'expand', ...WIDER, '--yes', ...V2])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(
      v2Key('/coreos.com/network/config')?.value,
      '{"Network":"198.19.0.0/16","SubnetLen":24,"SubnetMin":"198.19.1.0","SubnetMax":"198.19.255.0","Backend":{"Type":"vxlan"}}',
    )
    await restart(one)
    const after = await env(one)
    assert.deepEqual([after.subnet, after.network], [before.subnet, '198.19.0.0/16'])
    assert.equal((await run(['subnet-env', '--public-ip', one.ip, '--flanneld-version', '0.11.0', ...V2])).code, 0)
  })

  test('a new node gets a subnet in the new range (outside the old range), and pods on both nodes reach each other', async () => {
    await start(two)
    const e = await env(two)
    assert.equal(e.network, '198.19.0.0/16')
    assert.ok(e.x >= 2, `node 2 got ${e.subnet}, the old range's only subnet`)
    for (const n of [one, two]) {
      n.x = (await env(n)).x
      topo.wirePod(n)
    }
    const failures = await topo.pingPairs(topo.allPairs(), 10)
    assert.deepEqual(failures, [], failures.join('\n'))
    assert.equal((await run(['leases', 'ls', ...V2])).code, 0)
  })

  test('reserve on v2, restart that node: it keeps the subnet and the key keeps no TTL', async () => {
    const e = await env(two)
    const key = keyOf(e.subnet)
    const leased = v2Key(key)
    assert.ok(leased?.ttl, 'a v0.11 lease has a TTL')
    const r = await run(['leases', 'reserve', e.subnet, '--yes', '--watch', '2s', ...V2])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(v2Key(key)?.ttl, undefined)
    await restart(two)
    assert.equal((await env(two)).subnet, e.subnet)
    const now = v2Key(key)
    assert.deepEqual([now?.ttl, now?.expiration], [undefined, undefined], JSON.stringify(now))
    assert.equal(now?.value, leased.value)
    assert.equal((await run(['leases', 'ls', ...V2])).code, 0)
    const failures = await topo.pingPairs(topo.allPairs(), 10)
    assert.deepEqual(failures, [], failures.join('\n'))
  })
})
