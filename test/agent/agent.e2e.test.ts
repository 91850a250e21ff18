// `flannelctl agent` end to end (issue 5): the real kernel and a real etcd, in network namespaces this file creates
// and always removes. One L2 segment (a bridge in its own namespace, underlay 198.18.0.0/24) joins an etcd namespace
// (198.18.0.100) and three node namespaces (198.18.0.1-3), each running the agent; every node has a pod namespace
// on a veth with an address in the node's subnet of Network 198.19.0.0/16. Only 198.18.0.0/15 addresses are used.
// Every process started here is killed by its own pid (after() and an exit/signal hook); every ping is bounded.
// The namespaces, processes and observations come from test/helpers/topology.ts (shared with the host-gw test).

import assert from 'node:assert/strict'
import {statSync} from 'node:fs'
import {setTimeout as sleep} from 'node:timers/promises'
import {after, before, describe, test} from 'node:test'

import {currentRevision, putSubnet, vxlanValue} from '../helpers/cli.js'
import {canUseNetns} from '../helpers/netns.js'
import {type Kernel, keyOf, type Node, subnetOf, Topology} from '../helpers/topology.js'

const ok = process.getuid?.() === 0 && canUseNetns()

const CONFIG = '{"Network":"198.19.0.0/16","Backend":{"Type":"vxlan"}}'
const ETCD_IP = '198.18.0.100'
const RESYNC_MS = 1000
/** Made-up peers that exist only in etcd (nothing answers at their PublicIPs). */
const SYNTH = {
  outage: {subnet: '198.19.200.0/24', publicIP: '198.18.0.50', mac: '02:00:00:c8:00:32'},
  compacted: {subnet: '198.19.201.0/24', publicIP: '198.18.0.51', mac: '02:00:00:c9:00:33'},
  afterRelist: {subnet: '198.19.202.0/24', publicIP: '198.18.0.52', mac: '02:00:00:ca:00:34'},
} as const

// ---------------------------------------------------------------------------------------------------------------
// The cluster

interface Peer {
  subnet: string
  publicIP: string
  mac: string
}

const topo = new Topology({tag: 'agent-e2e', resyncMs: RESYNC_MS})
const nodes = topo.nodes
/** Synthetic leases every node must currently program besides the real nodes. */
const synthetic: Peer[] = []

const asPeer = (node: Node): Peer => ({subnet: subnetOf(node), publicIP: node.ip, mac: node.mac})
const peersOf = (node: Node): Peer[] => [...nodes.filter((o) => o !== node).map(asPeer), ...synthetic]

const startAgent = (node: Node) => topo.startAgent(node)
const stopAgent = (node: Node, signal: NodeJS.Signals) => topo.stopAgent(node, signal)
const logs = () => topo.logs()
const logMarks = () => topo.logMarks()
const logSince = (node: Node, marks: number[]) => topo.logSince(node, marks)
const assertSyncsClean = (marks: number[]) => topo.assertSyncsClean(marks)
const listSubnets = () => topo.listSubnets()
const ctl = (...args: string[]) => topo.ctl(...args)
const readKernel = (node: Node) => topo.readKernel(node)
const waitFor = (what: string, deadlineMs: number, check: () => Promise<string[]>, everyMs?: number) =>
  topo.waitFor(what, deadlineMs, check, everyMs)
const httpGet = (node: Node, urlPath: string) => topo.httpGet(node, urlPath)
const ready = (nodesToCheck: Node[]) => topo.ready(nodesToCheck)
const pingPairs = (pairs: Array<[Node, Node]>, attempts: number) => topo.pingPairs(pairs, attempts)
const allPairs = () => topo.allPairs()
const linkOf = (node: Node) => topo.linkOf(node)
const readSubnetEnv = (node: Node) => topo.readSubnetEnv(node)

// ---------------------------------------------------------------------------------------------------------------
// Observing the kernel

const inNetwork = (dst: string) => dst.startsWith('198.19.')

/**
 * What is wrong with one node's flannel entries: for every peer exactly one permanent neighbour (subnet IP → MAC),
 * exactly one FDB entry for its MAC (→ PublicIP), exactly one route (subnet via subnet IP dev flannel.1 onlink), and
 * nothing else on flannel.1 or into the Network through a gateway.
 */
function problems(node: Node, k: Kernel, peers: Peer[]): string[] {
  const out: string[] = []
  const at = `node ${node.n}`
  for (const p of peers) {
    const gw = p.subnet.split('/')[0]!
    const neigh = k.neighs.filter((x) => x.dst === gw)
    if (neigh.length !== 1 || neigh[0]!.lladdr !== p.mac || !neigh[0]!.state?.includes('PERMANENT'))
      out.push(`${at}: neighbour ${gw} should be ${p.mac} permanent, is ${JSON.stringify(neigh)}`)
    const fdb = k.fdb.filter((x) => x.mac === p.mac)
    if (fdb.length !== 1 || fdb[0]!.dst !== p.publicIP || fdb[0]!.state !== 'permanent')
      out.push(`${at}: FDB ${p.mac} should be dst ${p.publicIP} permanent, is ${JSON.stringify(fdb)}`)
    const route = k.routes.filter((x) => x.dst === p.subnet)
    if (
      route.length !== 1 ||
      route[0]!.gateway !== gw ||
      route[0]!.dev !== 'flannel.1' ||
      !route[0]!.flags?.includes('onlink')
    ) {
      out.push(`${at}: route ${p.subnet} should be via ${gw} dev flannel.1 onlink, is ${JSON.stringify(route)}`)
    }
  }
  for (const x of k.neighs)
    if (!peers.some((p) => p.subnet.startsWith(`${x.dst}/`))) out.push(`${at}: stray neighbour ${JSON.stringify(x)}`)
  for (const x of k.fdb)
    if (!peers.some((p) => p.mac === x.mac)) out.push(`${at}: stray FDB entry ${JSON.stringify(x)}`)
  for (const x of k.routes)
    if (inNetwork(x.dst) && x.gateway && !peers.some((p) => p.subnet === x.dst))
      out.push(`${at}: stray route ${JSON.stringify(x)}`)
  return out
}

/** Every node programs exactly its peers (the other nodes and the synthetic leases), with no duplicates. */
function converged(): Promise<string[]> {
  return Promise.all(nodes.map(async (n) => problems(n, await readKernel(n), peersOf(n)))).then((p) => p.flat())
}

const alive = (node: Node) => node.agent !== null && node.agent.exit === null

function assertAllAlive(pids: number[], when: string): void {
  for (const [i, n] of nodes.entries()) {
    assert.ok(alive(n), `${when}: the agent on node ${n.n} exited: ${JSON.stringify(n.agent?.exit)}`)
    assert.equal(n.agent!.pid, pids[i], `${when}: node ${n.n} runs another agent process`)
  }
}

// ---------------------------------------------------------------------------------------------------------------

describe(
  'flannelctl agent end to end (3 nodes, real etcd, real kernel)',
  {skip: ok ? false : 'needs root and ip netns', timeout: 240_000},
  () => {
    before(async () => {
      await topo.init()
      for (const n of [1, 2, 3]) await topo.addNode(n, `198.18.0.${n}`)
      await topo.startEtcd(CONFIG)
      for (const n of nodes) startAgent(n)
      await waitFor('every agent ready', 30_000, () => ready(nodes), 100)
      for (const n of nodes) {
        n.x = await topo.subnetX(n)
        n.mac = (await linkOf(n)).address
        topo.wirePod(n)
      }
      await waitFor('every node programs its two peers', 10_000, converged)
    })

    after(async () => {
      await topo.teardown() // the agents, etcd, the namespaces and the temp dir
    })
    test('pod-to-pod ping across every pair of nodes', async () => {
      const failures = await pingPairs(allPairs(), 3)
      assert.deepEqual(failures, [], await logs())
    })

    test("lease values and subnet.env are byte-identical to flanneld's; the device is flanneld's; /healthz and /readyz answer 200", async () => {
      const kvs = await listSubnets()
      assert.deepEqual(
        kvs.map((kv) => kv.key).sort(),
        nodes.map((n) => keyOf(subnetOf(n))).sort(),
        'one key per node, nothing else',
      )
      assert.equal(new Set(nodes.map((n) => n.x)).size, 3, 'three distinct subnets')
      for (const n of nodes) {
        const kv = kvs.find((k) => k.key === keyOf(subnetOf(n)))!
        assert.equal(
          kv.value,
          `{"PublicIP":"${n.ip}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${n.mac}"}}`,
        )
        assert.notEqual(kv.lease, '0', 'created with an etcd lease')
        const ttl = await ctl('lease', 'timetolive', BigInt(kv.lease).toString(16))
        assert.match(ttl, /granted with TTL\(86400s\)/, 'a 24 h lease, as flanneld grants')

        assert.equal(
          await readSubnetEnv(n),
          `FLANNEL_NETWORK=198.19.0.0/16\nFLANNEL_SUBNET=198.19.${n.x}.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n`,
        )
        assert.equal(statSync(n.subnetFile).mode & 0o777, 0o644)

        const link = await linkOf(n)
        assert.equal(link.mtu, 1450)
        assert.ok(link.flags.includes('UP'))
        assert.deepEqual(
          link.addr_info.filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`),
          [`198.19.${n.x}.0/32`],
        )
        assert.equal(link.linkinfo?.info_kind, 'vxlan')
        assert.equal(link.linkinfo?.info_data?.id, 1)
        assert.equal(link.linkinfo?.info_data?.local, n.ip)
        assert.equal(link.linkinfo?.info_data?.learning, false)
        assert.match(n.mac, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/)
        assert.equal(Number.parseInt(n.mac.slice(0, 2), 16) & 0x03, 0x02, 'a locally administered unicast MAC')

        const healthz = await httpGet(n, '/healthz')
        assert.equal(healthz.code, 200, healthz.body)
        const readyz = await httpGet(n, '/readyz')
        assert.equal(readyz.code, 200, readyz.body)
        const s = JSON.parse(readyz.body) as Record<string, unknown>
        assert.equal(s.ready, true)
        assert.equal(s.subnet, subnetOf(n))
        assert.equal(s.publicIP, n.ip)
        assert.equal(s.key, kv.key)
        assert.equal(s.leaseId, kv.lease, 'the lease /readyz reports is the one on the key')
        assert.equal(s.peers, 2)
        assert.equal(s.subnetEnvWritten, true)
        assert.equal(s.deviceUp, true)
        assert.equal(s.lastSyncOk, true)
        const expires = Date.parse(String(s.expiresAt)) - Date.now()
        assert.ok(expires > 86_000_000 && expires <= 86_400_000, `expiresAt ${String(s.expiresAt)} is about 24 h away`)
      }
    })

    test('SIGKILL one agent and start it again: same subnet, same MAC, no duplicate entries anywhere', async () => {
      const node = nodes[1]!
      const marks = logMarks()
      const key = keyOf(subnetOf(node))
      const before = {env: await readSubnetEnv(node), value: (await listSubnets()).find((k) => k.key === key)!.value}
      const exit = await stopAgent(node, 'SIGKILL')
      assert.equal(exit?.signal, 'SIGKILL')
      startAgent(node)
      await waitFor(`node ${node.n} ready again`, 20_000, () => ready([node]), 100)

      assert.equal(await readSubnetEnv(node), before.env, 'same subnet.env')
      assert.equal((await linkOf(node)).address, node.mac, 'flannel.1 kept its MAC')
      const kvs = await listSubnets()
      assert.deepEqual(
        kvs.filter((kv) => kv.value.includes(`"PublicIP":"${node.ip}"`)).map((kv) => kv.key),
        [key],
        'exactly one key for the node, the same one',
      )
      assert.equal(kvs.find((kv) => kv.key === key)!.value, before.value, 'the same value bytes (same MAC)')
      assert.equal(kvs.length, 3)
      // converged() counts, on every node, the neighbour, FDB and route entries of each peer: exactly one each.
      await waitFor('every node programs exactly its peers', 5000, converged)
      assert.match(await logSince(node, marks), /reusing flannel\.1/, 'the restarted agent reused the device')
      await assertSyncsClean(marks)
      assert.deepEqual(
        await pingPairs(
          allPairs().filter(([a, b]) => a === node || b === node),
          3,
        ),
        [],
        await logs(),
      )
    })

    test('a route and a neighbour entry (and an FDB entry) deleted by hand are back within one resync', async (t) => {
      await waitFor('converged', 5000, converged)
      const marks = logMarks()
      const [n1, n2, n3] = nodes as [Node, Node, Node]
      n1.ns.ip('route', 'del', subnetOf(n2))
      n1.ns.ip('neigh', 'del', `198.19.${n2.x}.0`, 'dev', 'flannel.1')
      n3.ns.bridge('fdb', 'del', n1.mac, 'dev', 'flannel.1', 'dst', n1.ip, 'self')
      // (each deletion throws if the entry was not there)
      const ms = await waitFor('the deleted entries are repaired', RESYNC_MS + 1500, converged, 25)
      t.diagnostic(`repaired after ${Math.round(ms)} ms (resync ${RESYNC_MS} ms)`)
      await assertSyncsClean(marks)
      assert.deepEqual(
        await pingPairs(
          [
            [n1, n2],
            [n3, n1],
          ],
          3,
        ),
        [],
        await logs(),
      )
    })

    test("a node's lease key deleted with etcdctl: the others remove its entries, and the node re-acquires", async () => {
      await waitFor('converged', 5000, converged)
      const node = nodes[2]!
      const marks = logMarks()
      const others = nodes.filter((n) => n !== node)
      const key = keyOf(subnetOf(node))
      const value = (await listSubnets()).find((k) => k.key === key)!.value
      // Freeze the node's agent so that the others' removal is observable before it re-acquires.
      process.kill(node.agent!.pid, 'SIGSTOP')
      try {
        assert.match(await ctl('del', key), /^1$/m)
        await waitFor(`nodes ${others.map((n) => n.n).join(', ')} remove node ${node.n}'s entries`, 5000, () =>
          Promise.all(
            others.map(async (o) =>
              problems(
                o,
                await readKernel(o),
                peersOf(o).filter((p) => p.publicIP !== node.ip),
              ),
            ),
          ).then((p) => p.flat()),
        )
      } finally {
        process.kill(node.agent!.pid, 'SIGCONT')
      }
      await waitFor(`a key with PublicIP ${node.ip} reappears`, 5000, async () =>
        (await listSubnets()).some((kv) => kv.value.includes(`"PublicIP":"${node.ip}"`)) ? [] : ['no key yet'],
      )
      const kvs = await listSubnets()
      const mine = kvs.filter((kv) => kv.value.includes(`"PublicIP":"${node.ip}"`))
      assert.deepEqual(
        mine.map((kv) => kv.key),
        [key],
        'the same subnet again (still free, and the previous one in subnet.env)',
      )
      assert.equal(mine[0]!.value, value, 'same value bytes')
      assert.notEqual(mine[0]!.lease, '0')
      await waitFor('the others program it again', 5000, converged)
      await waitFor(`node ${node.n} ready`, 5000, () => ready([node]), 100)
      assert.match(await logSince(node, marks), /re-acquir/i, 'the node logs the re-acquisition')
      assert.ok(alive(node), 'the agent did not exit (flanneld would)')
      await assertSyncsClean(marks)
      assert.deepEqual(
        await pingPairs(
          [
            [nodes[0]!, node],
            [node, nodes[1]!],
          ],
          3,
        ),
        [],
        await logs(),
      )
    })

    test('etcd down for 10 s: no agent exits, pod traffic keeps flowing, and the watch resumes', async (t) => {
      await waitFor('converged', 5000, converged)
      const marks = logMarks()
      const pids = nodes.map((n) => n.agent!.pid)
      const ring: Array<[Node, Node]> = [
        [nodes[0]!, nodes[1]!],
        [nodes[1]!, nodes[2]!],
        [nodes[2]!, nodes[0]!],
      ]
      await topo.etcd.kill()
      const t0 = performance.now()
      let rounds = 0
      while (performance.now() - t0 < 10_000) {
        const failures = await pingPairs(ring, 1)
        assert.deepEqual(
          failures,
          [],
          `traffic stopped ${Math.round(performance.now() - t0)} ms into the outage\n${await logs()}`,
        )
        assertAllAlive(pids, `${Math.round(performance.now() - t0)} ms into the outage`)
        rounds++
        await sleep(250)
      }
      for (const n of nodes) {
        assert.equal((await httpGet(n, '/healthz')).code, 200, `node ${n.n} /healthz during the outage`)
        const r = await httpGet(n, '/readyz')
        assert.equal(
          r.code,
          200,
          `node ${n.n} /readyz during the outage (lease held, device up, last sync fine): ${r.body}`,
        )
      }
      t.diagnostic(`${rounds} rounds of 3 pings during ${Math.round(performance.now() - t0)} ms of outage`)
      await topo.etcd.restart()
      await putSubnet(topo.etcd, keyOf(SYNTH.outage.subnet), vxlanValue(SYNTH.outage.publicIP, SYNTH.outage.mac))
      synthetic.push(SYNTH.outage)
      const ms = await waitFor('a lease put right after the restart is programmed on every node', 5000, converged)
      t.diagnostic(`lease put after the restart programmed everywhere in ${Math.round(ms)} ms`)
      assertAllAlive(pids, 'after the outage')
      await assertSyncsClean(marks)
      assert.deepEqual(await pingPairs(ring, 3), [], await logs())
    })

    test('etcd compacted past the watch revision: the agents re-list and converge', async (t) => {
      await waitFor('converged', 5000, converged)
      const pids = nodes.map((n) => n.agent!.pid)
      const marks = logMarks()
      // Cut every agent off etcd (new connections fail at once), then drop the live connections by restarting etcd,
      // so every watch is left behind at its last revision while keys change and etcd compacts.
      for (const n of nodes) n.ns.ip('route', 'add', 'prohibit', `${ETCD_IP}/32`)
      try {
        await topo.etcd.kill()
        await topo.etcd.restart()
        assert.match(await ctl('del', keyOf(SYNTH.outage.subnet)), /^1$/m)
        for (let i = 0; i < 4; i++) {
          await Promise.all(
            Array.from({length: 5}, async (_, j) => {
              const key = keyOf(`198.19.${210 + i * 5 + j}.0/24`)
              await putSubnet(
                topo.etcd,
                key,
                vxlanValue(
                  `198.18.1.${i * 5 + j + 1}`,
                  `02:00:00:d2:00:${(i * 5 + j + 1).toString(16).padStart(2, '0')}`,
                ),
              )
              await ctl('del', key)
            }),
          )
        }
        await putSubnet(
          topo.etcd,
          keyOf(SYNTH.compacted.subnet),
          vxlanValue(SYNTH.compacted.publicIP, SYNTH.compacted.mac),
        )
        const rev = await currentRevision(topo.etcd)
        assert.match(await ctl('compact', rev, '--physical'), /compacted revision/)
        t.diagnostic(`compacted at revision ${rev}`)
        synthetic.splice(0, synthetic.length, SYNTH.compacted)
      } finally {
        for (const n of nodes) n.ns.ip('route', 'del', 'prohibit', `${ETCD_IP}/32`)
      }
      const ms = await waitFor('every node drops the deleted lease and programs the new one', 10_000, converged)
      t.diagnostic(`converged ${Math.round(ms)} ms after the agents could reach etcd again`)
      for (const n of nodes) {
        const since = await logSince(n, marks)
        assert.match(since, /listing again|re-?list/i, `node ${n.n} re-listed after the compaction:\n${since}`)
      }
      assertAllAlive(pids, 'after the compaction')
      // The new watch works: a put after the re-list is programmed too, and deletes are removed.
      await putSubnet(
        topo.etcd,
        keyOf(SYNTH.afterRelist.subnet),
        vxlanValue(SYNTH.afterRelist.publicIP, SYNTH.afterRelist.mac),
      )
      synthetic.push(SYNTH.afterRelist)
      await waitFor('a lease put after the re-list is programmed everywhere', 3000, converged)
      await ctl('del', keyOf(SYNTH.compacted.subnet))
      await ctl('del', keyOf(SYNTH.afterRelist.subnet))
      synthetic.length = 0
      await waitFor('deleted leases are removed everywhere', 3000, converged)
      await assertSyncsClean(marks)
      assert.deepEqual(await pingPairs(allPairs(), 3), [], await logs())
    })

    test('SIGTERM: every agent exits 0 and leaves its lease and its dataplane in place', async () => {
      const before = await listSubnets()
      const exits = await Promise.all(nodes.map((n) => stopAgent(n, 'SIGTERM')))
      assert.deepEqual(
        exits.map((e) => e?.code),
        [0, 0, 0],
        await logs(),
      )
      assert.deepEqual(await listSubnets(), before, 'the leases are left in etcd')
      assert.deepEqual(await converged(), [], 'the entries stay in the kernel')
      assert.deepEqual(await pingPairs(allPairs(), 3), [])
    })
  },
)
