// `flannelctl agent` end to end for issue 6: the host-gw backend, vxlan with DirectRouting, and --ip-masq with flanneld's
// masquerade and forward rules. The real kernel and a real etcd, in network namespaces this file creates and always
// removes (test/helpers/topology.ts): segment A (br0, underlay 198.18.0.0/24) holds etcd (198.18.0.100) and nodes
// 198.18.0.1-3; segment B (br1, 198.18.1.0/24) holds a fourth node (198.18.1.4) that the others reach only through a
// router namespace (198.18.0.254 / 198.18.1.254). Pods live in 198.19.0.0/16. Only 198.18.0.0/15 addresses are used.
// Every process started here is killed by its own pid; every ping and packet loop is bounded in count and time.

import assert from 'node:assert/strict'
import {execFile} from 'node:child_process'
import {readFile, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {after, before, describe, test} from 'node:test'

import {cleanEnv, putKey, RUN_JS} from '../helpers/cli.js'
import {canUseNetns, type Netns} from '../helpers/netns.js'
import {
  ETCD_IP,
  type Exec,
  type IpLink,
  jsonOf,
  type Kernel,
  keyOf,
  type Node,
  podIP,
  sh,
  shOk,
  subnetOf,
  Topology,
} from '../helpers/topology.js'

const ok = process.getuid?.() === 0 && canUseNetns()

const NETWORK = '198.19.0.0/16'
const RESYNC_MS = 1000
/** One resync plus slack: how long a repair may take. */
const WITHIN_ONE_RESYNC = RESYNC_MS + 1500

// ---------------------------------------------------------------------------------------------------------------
// Building the two-segment cluster

interface Cluster {
  topo: Topology
  router: Netns
  /** Nodes 1-3 on segment A. */
  near: Node[]
  /** Node 4 on segment B, behind the router. */
  far: Node
}

/**
 * Segments A and B joined by a router; nodes 1-3 on A, node 4 on B; etcd on A with `config`. Every agent is ready and
 * every pod wired before this returns. `prepare` runs in each node namespace before its agent starts.
 */
async function buildCluster(
  topo: Topology,
  config: string,
  o: {args?: string[]; prepare?: (n: Node) => void} = {},
): Promise<Cluster> {
  await topo.init()
  topo.addSegment('br1')
  const router = topo.addHost('router', '198.18.0.254', 'urtr0')
  topo.plug(router, '198.18.1.254', 'urtr1', 'br1', 'eth1')
  router.exec('sysctl', '-q', '-w', 'net.ipv4.ip_forward=1')
  const near: Node[] = []
  for (const n of [1, 2, 3]) near.push(await topo.addNode(n, `198.18.0.${n}`, {args: o.args}))
  const far = await topo.addNode(4, '198.18.1.4', {bridge: 'br1', gateway: '198.18.1.254', args: o.args})
  for (const n of topo.nodes) o.prepare?.(n)
  await topo.startEtcd(config)
  topo.etcdNs.ip('route', 'add', '198.18.1.0/24', 'via', '198.18.0.254', 'dev', 'eth0') // so that node 4 reaches etcd too
  for (const n of topo.nodes) topo.startAgent(n)
  await topo.waitFor('every agent ready', 30_000, () => topo.ready(topo.nodes), 100)
  for (const n of topo.nodes) {
    n.x = await topo.subnetX(n)
    topo.wirePod(n)
  }
  return {topo, router, near, far}
}

/** `flannelctl doctor --local --json ...args` run inside the node's namespace; the findings and the exit code. */
function doctorLocal(
  node: Node,
  args: string[],
): Promise<{
  code: number
  findings: Array<{id: string; severity: string; subjects: string[]; message: string}>
  raw: string
}> {
  return new Promise((resolve, reject) => {
    execFile(
      'ip',
      [
        'netns',
        'exec',
        node.ns.name,
        process.execPath,
        RUN_JS,
        'doctor',
        '--local',
        '--subnet-file',
        node.subnetFile,
        '--json',
        ...args,
      ],
      {env: cleanEnv(), encoding: 'utf8', timeout: 30_000, killSignal: 'SIGKILL'},
      (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') return reject(new Error(`doctor: ${err.message}\n${stderr}`))
        try {
          const j = JSON.parse(stdout) as {
            findings: Array<{id: string; severity: string; subjects: string[]; message: string}>
          }
          resolve({code: err ? (err.code as number) : 0, findings: j.findings, raw: stdout})
        } catch {
          reject(new Error(`doctor output is not JSON (exit ${err?.code ?? 0}):\n${stdout}\n${stderr}`))
        }
      },
    )
  })
}

/** `iptables [-t TABLE] -S` inside a node namespace. */
const iptablesS = (node: Node, table: 'nat' | 'filter') =>
  shOk('ip', ['netns', 'exec', node.ns.name, 'iptables', '-w', '-t', table, '-S'])

/** The routes of a node into the pod Network that go through a gateway. */
async function networkRoutes(topo: Topology, node: Node): Promise<Kernel['routes']> {
  return (await topo.routes(node)).filter((r) => r.dst.startsWith('198.19.') && r.gateway !== undefined)
}

/** A bounded ping (`count` probes 0.2 s apart, 1 s wait) from a pod to any address. */
const pingFrom = (pod: Netns, dst: string, count = 2): Promise<Exec> =>
  sh(
    'ip',
    ['netns', 'exec', pod.name, 'ping', '-n', '-q', '-c', String(count), '-i', '0.2', '-W', '1', dst],
    2000 + count * 1000,
  )

const UDP_PORT = 9471
/** Prints "listening" once bound and "from <address>" per datagram; exits by itself after 10 s. */
const LISTENER = `const d=require('dgram').createSocket('udp4');d.on('message',(m,r)=>console.log('from '+r.address));d.bind(${UDP_PORT},()=>console.log('listening'));setTimeout(()=>process.exit(0),10000)`
/** Sends 5 datagrams 100 ms apart to argv[1] and exits. */
const SENDER = `const d=require('dgram').createSocket('udp4');let i=0;const t=setInterval(()=>{d.send('probe',${UDP_PORT},process.argv[1]);if(++i>=5){clearInterval(t);setTimeout(()=>process.exit(0),100)}},100)`

/** Sends UDP from namespace `from` to `dst` with a listener in namespace `at`; the source addresses `at` saw. */
async function udpSources(topo: Topology, from: Netns, at: Netns, dst: string): Promise<string[]> {
  const listener = topo.spawnIn(at, process.execPath, ['-e', LISTENER])
  try {
    await topo.waitFor(`a UDP listener in ${at.name}`, 5000, async () =>
      listener.output().includes('listening') ? [] : [`not listening yet: ${listener.output()}`],
    )
    const sent = await sh('ip', ['netns', 'exec', from.name, process.execPath, '-e', SENDER, dst], 5000, cleanEnv())
    assert.equal(sent.code, 0, `sender in ${from.name}: ${sent.stderr}`)
    await topo.waitFor(`datagrams at ${dst}`, 2000, async () =>
      listener.output().includes('from ') ? [] : [`nothing received: ${listener.output()}`],
    )
  } finally {
    await topo.killHelper(listener)
  }
  return [...new Set([...listener.output().matchAll(/^from (\S+)$/gm)].map((m) => m[1]!))]
}

// ---------------------------------------------------------------------------------------------------------------

describe(
  'host-gw: three nodes on one segment, a fourth behind a router',
  {skip: ok ? false : 'needs root and ip netns', timeout: 90_000},
  () => {
    const topo = new Topology({tag: 'agent-hostgw', resyncMs: RESYNC_MS})
    let c: Cluster

    /** On each of nodes 1-3: exactly one route `<subnet> via <PublicIP> dev eth0` per other near node, nothing else. */
    async function hostGwProblems(): Promise<string[]> {
      const out: string[] = []
      for (const n of c.near) {
        const routes = await networkRoutes(topo, n)
        for (const p of c.near.filter((o) => o !== n)) {
          const r = routes.filter((x) => x.dst === subnetOf(p))
          if (r.length !== 1 || r[0]!.gateway !== p.ip || r[0]!.dev !== 'eth0' || r[0]!.flags?.includes('onlink')) {
            out.push(`node ${n.n}: route ${subnetOf(p)} should be via ${p.ip} dev eth0, is ${JSON.stringify(r)}`)
          }
        }
        for (const r of routes)
          if (!c.near.some((p) => p !== n && subnetOf(p) === r.dst))
            out.push(`node ${n.n}: unexpected route ${JSON.stringify(r)}`)
      }
      const farRoutes = await networkRoutes(topo, c.far)
      if (farRoutes.length > 0) out.push(`node 4 reaches no peer directly, yet has routes ${JSON.stringify(farRoutes)}`)
      return out
    }

    before(async () => {
      c = await buildCluster(topo, '{"Network":"198.19.0.0/16","Backend":{"Type":"host-gw"}}')
      await topo.waitFor('every near node routes to its two near peers', 10_000, hostGwProblems)
    })
    after(() => topo.teardown())

    test('pod-to-pod ping across every pair of the nodes on the segment', async () => {
      assert.deepEqual(await topo.pingPairs(topo.allPairs(c.near), 3), [], await topo.logs())
    })

    test('routes via each peer PublicIP on eth0, no flannel device, no masquerade rules, flanneld lease values and subnet.env', async () => {
      assert.deepEqual(await hostGwProblems(), [])
      const kvs = await topo.listSubnets()
      assert.deepEqual(
        kvs.map((kv) => kv.key).sort(),
        topo.nodes.map((n) => keyOf(subnetOf(n))).sort(),
        'one key per node, nothing else',
      )
      assert.equal(new Set(topo.nodes.map((n) => n.x)).size, 4, 'four distinct subnets')
      for (const n of topo.nodes) {
        const kv = kvs.find((k) => k.key === keyOf(subnetOf(n)))!
        assert.equal(kv.value, `{"PublicIP":"${n.ip}","PublicIPv6":null,"BackendType":"host-gw"}`)
        assert.notEqual(kv.lease, '0', 'created with an etcd lease')
        const links = await jsonOf<IpLink[]>('ip', ['-n', n.ns.name, '-j', 'link', 'show'])
        assert.deepEqual(
          links.map((l) => l.ifname).filter((name) => name.startsWith('flannel')),
          [],
          `node ${n.n} has no flannel device`,
        )
        const eth0 = links.find((l) => l.ifname === 'eth0')!
        assert.equal(eth0.mtu, 1500)
        assert.equal(
          await topo.readSubnetEnv(n),
          `FLANNEL_NETWORK=198.19.0.0/16\nFLANNEL_SUBNET=198.19.${n.x}.1/24\nFLANNEL_MTU=1500\nFLANNEL_IPMASQ=false\n`,
        )
        assert.doesNotMatch(await iptablesS(n, 'nat'), /FLANNEL/, 'no --ip-masq: no masquerade rules')
        assert.match(
          await iptablesS(n, 'filter'),
          /^-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD$/m,
          'forward rules by default',
        )
      }
    })

    test('the node behind the router is reported unreachable: logged once, in /readyz, by doctor --local', async () => {
      const [n1] = c.near as [Node]
      const far = c.far
      const farDesc = `${subnetOf(far)} (${far.ip})`
      // Let a few resyncs pass, so "once" means once and not "not yet twice".
      await new Promise((r) => setTimeout(r, 3 * RESYNC_MS))
      for (const n of c.near) {
        const log = await topo.logTail(n, 10_000)
        const lines = log.split('\n').filter((l) => l.includes(`host-gw cannot reach ${subnetOf(far)}`))
        assert.equal(lines.length, 1, `node ${n.n} logs the unreachable peer exactly once:\n${log}`)
        assert.match(lines[0]!, new RegExp(`${far.ip.replaceAll('.', '\\.')}.*not on a directly connected subnet`))
        const r = await topo.httpGet(n, '/readyz')
        const s = JSON.parse(r.body) as {unreachablePeers: string[]; peers: number}
        assert.deepEqual(s.unreachablePeers, [farDesc], `node ${n.n} /readyz`)
      }
      const farStatus = JSON.parse((await topo.httpGet(far, '/readyz')).body) as {unreachablePeers: string[]}
      assert.deepEqual(
        farStatus.unreachablePeers.sort(),
        c.near.map((p) => `${subnetOf(p)} (${p.ip})`).sort(),
        'node 4 reports every peer as unreachable',
      )
      // Not black-holed through some route: node 1 has none for it, and a ping really fails.
      assert.deepEqual(
        (await networkRoutes(topo, n1)).filter((r) => r.dst === subnetOf(far)),
        [],
      )
      assert.notEqual((await pingFrom(n1.pod, podIP(far), 1)).code, 0, 'pod 4 is in fact unreachable by host-gw')

      const dump = await topo.ctl('get', '--prefix', '/coreos.com/network', '-w', 'json')
      const snapshot = path.join(topo.tmp, 'hostgw-snapshot.json')
      await writeFile(snapshot, dump)
      const d = await doctorLocal(n1, ['--snapshot', snapshot])
      const unreachable = d.findings.filter((f) => f.id === 'hostgw-peer-unreachable')
      assert.deepEqual(
        unreachable.map((f) => f.subjects),
        [[subnetOf(far)]],
        d.raw,
      )
      assert.match(unreachable[0]!.message, new RegExp(far.ip.replaceAll('.', '\\.')))
      assert.deepEqual(
        d.findings.filter((f) => f.id === 'route-missing'),
        [],
        'the routes to the near peers are all there',
      )
      assert.equal(d.code, 5, 'an error-level finding fails doctor')
      const dFar = await doctorLocal(far, ['--snapshot', snapshot])
      assert.deepEqual(
        dFar.findings
          .filter((f) => f.id === 'hostgw-peer-unreachable')
          .map((f) => f.subjects[0])
          .sort(),
        c.near.map(subnetOf).sort(),
        dFar.raw,
      )
    })

    test('a route deleted by hand is back within one resync; a route with a wrong gateway is replaced', async (t) => {
      const [n1, n2, n3] = c.near as [Node, Node, Node]
      const marks = topo.logMarks()
      n1.ns.ip('route', 'del', subnetOf(n2), 'via', n2.ip, 'dev', 'eth0')
      const ms = await topo.waitFor('the deleted route is back', WITHIN_ONE_RESYNC, hostGwProblems, 25)
      t.diagnostic(`route repaired after ${Math.round(ms)} ms (resync ${RESYNC_MS} ms)`)

      n1.ns.ip('route', 'replace', subnetOf(n3), 'via', n2.ip, 'dev', 'eth0')
      assert.deepEqual(
        (await networkRoutes(topo, n1)).filter((r) => r.dst === subnetOf(n3)).map((r) => r.gateway),
        [n2.ip],
      )
      const ms2 = await topo.waitFor('the wrong gateway is replaced', WITHIN_ONE_RESYNC, hostGwProblems, 25)
      t.diagnostic(`wrong gateway replaced after ${Math.round(ms2)} ms`)
      assert.match(
        await topo.logSince(n1, marks),
        new RegExp(
          `replacing existing route to ${subnetOf(n3).replaceAll('.', '\\.')} \\(was via ${n2.ip.replaceAll('.', '\\.')}`,
        ),
      )
      await topo.assertSyncsClean(marks)
      assert.deepEqual(
        await topo.pingPairs(
          [
            [n1, n2],
            [n1, n3],
            [n3, n1],
          ],
          3,
        ),
        [],
        await topo.logs(),
      )
    })

    test("a peer's lease deleted with etcdctl: the others delete its route; it re-acquires and the routes come back", async () => {
      const [n1, n2, n3] = c.near as [Node, Node, Node]
      const marks = topo.logMarks()
      const key = keyOf(subnetOf(n3))
      const value = (await topo.listSubnets()).find((kv) => kv.key === key)!.value
      // Freeze node 3's agent so that the others' removal is observable before it re-acquires.
      process.kill(n3.agent!.pid, 'SIGSTOP')
      try {
        assert.match(await topo.ctl('del', key), /^1$/m)
        await topo.waitFor('nodes 1 and 2 delete their route to node 3', 5000, async () => {
          const left = await Promise.all(
            [n1, n2].map(async (n) =>
              (await networkRoutes(topo, n))
                .filter((r) => r.dst === subnetOf(n3))
                .map((r) => `node ${n.n}: ${JSON.stringify(r)}`),
            ),
          )
          return left.flat()
        })
      } finally {
        process.kill(n3.agent!.pid, 'SIGCONT')
      }
      await topo.waitFor('node 3 re-acquires the same subnet and every route is back', 10_000, async () => {
        const kv = (await topo.listSubnets()).find((k) => k.key === key)
        return kv ? hostGwProblems() : ['no key for node 3 yet']
      })
      assert.equal((await topo.listSubnets()).find((kv) => kv.key === key)!.value, value, 'same value bytes')
      assert.match(await topo.logSince(n3, marks), /re-acquir/i)
      await topo.assertSyncsClean(marks)
      assert.deepEqual(
        await topo.pingPairs(
          [
            [n1, n3],
            [n3, n2],
          ],
          3,
        ),
        [],
        await topo.logs(),
      )
    })

    test("PublicIP other than the interface address (NAT): the agent refuses to start with flanneld's reason, takes no lease", async () => {
      const [n1] = c.near as [Node]
      const subnetFile = path.join(topo.tmp, 'nat-subnet.env')
      const before = await topo.listSubnets()
      const r = await sh(
        'ip',
        [
          'netns',
          'exec',
          n1.ns.name,
          process.execPath,
          RUN_JS,
          'agent',
          '--iface',
          'eth0',
          '--public-ip',
          '198.18.0.77',
          '--subnet-file',
          subnetFile,
          '--healthz-addr',
          '127.0.0.1:8479',
          '--endpoints',
          `http://${ETCD_IP}:2379`,
        ],
        20_000,
        cleanEnv(),
      )
      assert.equal(r.code, 2, `exit code 2 (usage): ${r.stdout}${r.stderr}`)
      assert.match(
        r.stdout + r.stderr,
        /PublicIP 198\.18\.0\.77 differs from the interface address 198\.18\.0\.1.*NAT, which is not supported by host-gw backend/s,
      )
      assert.deepEqual(await topo.listSubnets(), before, 'no lease taken')
      assert.equal(await readFile(subnetFile, 'utf8').catch(() => null), null, 'no subnet.env written')
    })

    test('doctor --local: no route finding while the agent keeps the routes; route-missing once one is deleted (agent stopped)', async () => {
      const [n1, n2] = c.near as [Node, Node]
      const snapshot = path.join(topo.tmp, 'hostgw-snapshot-2.json')
      await writeFile(snapshot, await topo.ctl('get', '--prefix', '/coreos.com/network', '-w', 'json'))
      const healthy = await doctorLocal(n1, ['--snapshot', snapshot])
      assert.deepEqual(
        healthy.findings.filter((f) => f.id === 'route-missing'),
        [],
        healthy.raw,
      )
      assert.equal((await topo.stopAgent(n1, 'SIGTERM'))?.code, 0)
      n1.ns.ip('route', 'del', subnetOf(n2), 'via', n2.ip, 'dev', 'eth0')
      const broken = await doctorLocal(n1, ['--snapshot', snapshot])
      const missing = broken.findings.filter((f) => f.id === 'route-missing')
      assert.deepEqual(
        missing.map((f) => f.subjects),
        [[subnetOf(n2)]],
        broken.raw,
      )
      assert.match(
        missing[0]!.message,
        new RegExp(
          `no route ${subnetOf(n2).replaceAll('.', '\\.')} via ${n2.ip.replaceAll('.', '\\.')} dev eth0 \\(host-gw\\)`,
        ),
      )
    })
  },
)

// ---------------------------------------------------------------------------------------------------------------

describe(
  'vxlan with DirectRouting: plain routes on the segment, vxlan through the router',
  {skip: ok ? false : 'needs root and ip netns', timeout: 90_000},
  () => {
    const topo = new Topology({tag: 'agent-directrouting', resyncMs: RESYNC_MS})
    let c: Cluster

    /**
     * Near peers of a near node: one route `via <PublicIP> dev eth0` and nothing on flannel.1; every other peer: the
     * permanent neighbour, the FDB entry and the onlink route on flannel.1.
     */
    function problems(node: Node, k: Kernel): string[] {
      const out: string[] = []
      const at = `node ${node.n}`
      const peers = topo.nodes.filter((p) => p !== node)
      const direct = (p: Node) => node !== c.far && p !== c.far
      for (const p of peers) {
        const gw = subnetOf(p).split('/')[0]!
        const route = k.routes.filter((x) => x.dst === subnetOf(p))
        const neigh = k.neighs.filter((x) => x.dst === gw)
        const fdb = k.fdb.filter((x) => x.mac === p.mac)
        if (direct(p)) {
          if (route.length !== 1 || route[0]!.gateway !== p.ip || route[0]!.dev !== 'eth0')
            out.push(`${at}: route ${subnetOf(p)} should be via ${p.ip} dev eth0, is ${JSON.stringify(route)}`)
          if (neigh.length + fdb.length > 0)
            out.push(`${at}: a direct peer ${p.n} has vxlan entries ${JSON.stringify({neigh, fdb})}`)
        } else {
          if (neigh.length !== 1 || neigh[0]!.lladdr !== p.mac || !neigh[0]!.state?.includes('PERMANENT'))
            out.push(`${at}: neighbour ${gw} should be ${p.mac} permanent, is ${JSON.stringify(neigh)}`)
          if (fdb.length !== 1 || fdb[0]!.dst !== p.ip || fdb[0]!.state !== 'permanent')
            out.push(`${at}: FDB ${p.mac} should be dst ${p.ip} permanent, is ${JSON.stringify(fdb)}`)
          if (
            route.length !== 1 ||
            route[0]!.gateway !== gw ||
            route[0]!.dev !== 'flannel.1' ||
            !route[0]!.flags?.includes('onlink')
          ) {
            out.push(
              `${at}: route ${subnetOf(p)} should be via ${gw} dev flannel.1 onlink, is ${JSON.stringify(route)}`,
            )
          }
        }
      }
      for (const x of k.routes)
        if (x.dst.startsWith('198.19.') && x.gateway && !peers.some((p) => subnetOf(p) === x.dst))
          out.push(`${at}: stray route ${JSON.stringify(x)}`)
      return out
    }

    const converged = () =>
      Promise.all(topo.nodes.map(async (n) => problems(n, await topo.readKernel(n)))).then((p) => p.flat())

    async function txPackets(node: Node): Promise<number> {
      const links = await jsonOf<IpLink[]>('ip', ['-n', node.ns.name, '-s', '-j', 'link', 'show', 'flannel.1'])
      assert.ok(links[0]?.stats64, `node ${node.n}: no flannel.1 statistics`)
      return links[0].stats64.tx.packets
    }

    before(async () => {
      c = await buildCluster(topo, '{"Network":"198.19.0.0/16","Backend":{"Type":"vxlan","DirectRouting":true}}', {
        // No IPv6 on the nodes: flannel.1 then sends nothing of its own (no DAD, RS or MLD), so its TX counter counts pod traffic only.
        prepare: (n) =>
          n.ns.exec('sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1'),
      })
      for (const n of topo.nodes) n.mac = (await topo.linkOf(n)).address
      await topo.waitFor('every node programs its three peers', 10_000, converged)
    })
    after(() => topo.teardown())

    test('same-segment peers get `via <PublicIP>` routes, the peer behind the router gets neighbour, FDB and onlink route', async () => {
      assert.deepEqual(await converged(), [])
      const kvs = await topo.listSubnets()
      for (const n of topo.nodes) {
        const kv = kvs.find((k) => k.key === keyOf(subnetOf(n)))
        assert.equal(
          kv?.value,
          `{"PublicIP":"${n.ip}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${n.mac}"}}`,
        )
      }
    })

    test('both pairs ping; same-segment traffic bypasses flannel.1, traffic to the far node goes through it', async (t) => {
      const [n1, n2] = c.near as [Node, Node]
      const far = c.far
      assert.deepEqual(await topo.pingPairs(topo.allPairs(), 3), [], await topo.logs())

      const [before1, before2] = [await txPackets(n1), await txPackets(n2)]
      const near = await pingFrom(n1.pod, podIP(n2), 5)
      assert.equal(near.code, 0, `pod 1 -> pod 2: ${near.stdout}${near.stderr}`)
      const afterNear = await txPackets(n1)
      assert.equal(
        afterNear - before1,
        0,
        'no echo request left node 1 through flannel.1 for a same-segment peer (no encapsulation)',
      )
      assert.equal((await txPackets(n2)) - before2, 0, 'no echo reply left node 2 through flannel.1 either')

      const farPing = await pingFrom(n1.pod, podIP(far), 5)
      assert.equal(farPing.code, 0, `pod 1 -> pod 4: ${farPing.stdout}${farPing.stderr}`)
      const afterFar = await txPackets(n1)
      assert.ok(
        afterFar - afterNear >= 5,
        `the 5 echo requests to the far node left through flannel.1 (TX grew by ${afterFar - afterNear})`,
      )
      t.diagnostic(
        `flannel.1 TX on node 1: +${afterNear - before1} during the same-segment ping, +${afterFar - afterNear} during the ping behind the router`,
      )
    })
  },
)

// ---------------------------------------------------------------------------------------------------------------

describe(
  '--ip-masq: masquerade to the world, pod addresses between pods, golden rules',
  {skip: ok ? false : 'needs root and ip netns', timeout: 90_000},
  () => {
    const topo = new Topology({tag: 'agent-masq', resyncMs: RESYNC_MS})
    let world: Netns
    const WORLD_IP = '198.18.0.200'
    const NFT_PREFIX = '/nft.example/network'
    let n1: Node
    let n2: Node
    let n3: Node

    function goldenNat(node: Node): string {
      const s = subnetOf(node)
      const N = NETWORK
      return [
        '-P PREROUTING ACCEPT',
        '-P INPUT ACCEPT',
        '-P OUTPUT ACCEPT',
        '-P POSTROUTING ACCEPT',
        '-N FLANNEL-POSTRTG',
        '-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG',
        '-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment "flanneld masq" -j RETURN',
        `-A FLANNEL-POSTRTG -s ${s} -d ${N} -m comment --comment "flanneld masq" -j RETURN`,
        `-A FLANNEL-POSTRTG -s ${N} -d ${s} -m comment --comment "flanneld masq" -j RETURN`,
        `-A FLANNEL-POSTRTG ! -s ${N} -d ${s} -m comment --comment "flanneld masq" -j RETURN`,
        `-A FLANNEL-POSTRTG -s ${N} ! -d 224.0.0.0/4 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully`,
        `-A FLANNEL-POSTRTG ! -s ${N} -d ${N} -m comment --comment "flanneld masq" -j MASQUERADE --random-fully`,
        '',
      ].join('\n')
    }

    const GOLDEN_FILTER = [
      '-P INPUT ACCEPT',
      '-P FORWARD ACCEPT',
      '-P OUTPUT ACCEPT',
      '-N FLANNEL-FWD',
      '-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD',
      `-A FLANNEL-FWD -s ${NETWORK} -m comment --comment "flanneld forward" -j ACCEPT`,
      `-A FLANNEL-FWD -d ${NETWORK} -m comment --comment "flanneld forward" -j ACCEPT`,
      '',
    ].join('\n')

    async function rulesProblems(nodes: Node[]): Promise<string[]> {
      const out: string[] = []
      for (const n of nodes) {
        const [nat, filter] = await Promise.all([iptablesS(n, 'nat'), iptablesS(n, 'filter')])
        if (nat !== goldenNat(n)) out.push(`node ${n.n}: iptables -t nat -S is\n${nat}\nexpected\n${goldenNat(n)}`)
        if (filter !== GOLDEN_FILTER) out.push(`node ${n.n}: iptables -S is\n${filter}\nexpected\n${GOLDEN_FILTER}`)
      }
      return out
    }

    before(async () => {
      await topo.init()
      world = topo.addHost('world', WORLD_IP, 'uworld') // no route to the pod Network: it can only answer a node address
      n1 = await topo.addNode(1, '198.18.0.1', {args: ['--ip-masq']})
      n2 = await topo.addNode(2, '198.18.0.2', {args: ['--ip-masq']})
      // Node 3 belongs to another flannel network (its own prefix in the same etcd) that asks for nftables.
      n3 = await topo.addNode(3, '198.18.0.3', {args: ['--ip-masq', '--etcd-prefix', NFT_PREFIX]})
      await topo.startEtcd('{"Network":"198.19.0.0/16","Backend":{"Type":"vxlan"}}')
      await putKey(
        topo.etcd,
        `${NFT_PREFIX}/config`,
        '{"Network":"198.19.0.0/16","EnableNFTables":true,"Backend":{"Type":"vxlan"}}',
      )
      for (const n of topo.nodes) topo.startAgent(n)
      await topo.waitFor('every agent ready', 30_000, () => topo.ready(topo.nodes), 100)
      for (const n of topo.nodes) {
        n.x = await topo.subnetX(n)
        topo.wirePod(n)
      }
      await topo.waitFor(
        'pod 1 reaches pod 2',
        10_000,
        async () => ((await topo.pingPairs([[n1, n2]], 1)).length === 0 ? [] : ['no ping yet']),
        100,
      )
    })
    after(() => topo.teardown())

    test("iptables -t nat -S and iptables -S are exactly flanneld's golden rules for the Network and the node's subnet", async () => {
      assert.deepEqual(await rulesProblems([n1, n2]), [])
      for (const n of topo.nodes)
        assert.equal(
          await topo.readSubnetEnv(n),
          `FLANNEL_NETWORK=198.19.0.0/16\nFLANNEL_SUBNET=198.19.${n.x}.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n`,
        )
    })

    test("a pod's traffic to the world leaves with the node's address; pod-to-pod traffic keeps the pod's address", async () => {
      assert.deepEqual(await udpSources(topo, n1.pod, world, WORLD_IP), [n1.ip], 'the world sees node 1, not pod 1')
      assert.deepEqual(await udpSources(topo, n2.pod, world, WORLD_IP), [n2.ip], 'the world sees node 2, not pod 2')
      assert.deepEqual(await udpSources(topo, n1.pod, n2.pod, podIP(n2)), [podIP(n1)], 'pod 2 sees pod 1 itself')
      assert.deepEqual(await udpSources(topo, n2.pod, n1.pod, podIP(n1)), [podIP(n2)], 'pod 1 sees pod 2 itself')
      // The world has no route to 198.19.0.0/16: an echo reply can only come back because the request was masqueraded.
      const r = await pingFrom(n1.pod, WORLD_IP, 2)
      assert.equal(r.code, 0, `pod 1 -> world: ${r.stdout}${r.stderr}`)
    })

    test('a deleted masquerade rule and a deleted forward rule are back within one resync', async (t) => {
      const marks = topo.logMarks()
      n1.ns.exec(
        'iptables',
        '-w',
        '-t',
        'nat',
        '-D',
        'FLANNEL-POSTRTG',
        '-s',
        NETWORK,
        '!',
        '-d',
        '224.0.0.0/4',
        '-m',
        'comment',
        '--comment',
        'flanneld masq',
        '-j',
        'MASQUERADE',
        '--random-fully',
      )
      n2.ns.exec(
        'iptables',
        '-w',
        '-t',
        'filter',
        '-D',
        'FLANNEL-FWD',
        '-d',
        NETWORK,
        '-m',
        'comment',
        '--comment',
        'flanneld forward',
        '-j',
        'ACCEPT',
      )
      assert.notEqual((await rulesProblems([n1, n2])).length, 0, 'the rules were deleted')
      const ms = await topo.waitFor(
        'the rules are back, complete and in order',
        WITHIN_ONE_RESYNC,
        () => rulesProblems([n1, n2]),
        25,
      )
      t.diagnostic(`rules restored after ${Math.round(ms)} ms (resync ${RESYNC_MS} ms)`)
      assert.match(await topo.logSince(n1, marks), /restored masquerade rules \(1 were missing\)/)
      assert.match(await topo.logSince(n2, marks), /restored forward rules \(1 were missing\)/)
      assert.deepEqual(await udpSources(topo, n1.pod, world, WORLD_IP), [n1.ip], 'masquerading again')
    })

    test('doctor --local: no masq finding while the rules are in place; masq-rules-missing once one is deleted (agent stopped)', async () => {
      const endpoints = ['--endpoints', `http://${ETCD_IP}:2379`]
      const masqIds = ['masq-rules-missing', 'masq-rules-stale', 'forward-policy-drop']
      const healthy = await doctorLocal(n1, endpoints)
      assert.deepEqual(
        healthy.findings.filter((f) => masqIds.includes(f.id)),
        [],
        healthy.raw,
      )

      const exit = await topo.stopAgent(n1, 'SIGTERM')
      assert.equal(exit?.code, 0)
      n1.ns.exec(
        'iptables',
        '-w',
        '-t',
        'nat',
        '-D',
        'FLANNEL-POSTRTG',
        '!',
        '-s',
        NETWORK,
        '-d',
        NETWORK,
        '-m',
        'comment',
        '--comment',
        'flanneld masq',
        '-j',
        'MASQUERADE',
        '--random-fully',
      )
      const broken = await doctorLocal(n1, endpoints)
      const missing = broken.findings.filter((f) => f.id === 'masq-rules-missing')
      assert.equal(missing.length, 1, broken.raw)
      assert.match(
        missing[0]!.message,
        /^1 of the 7 masquerade rules flanneld .* installs for 198\.19\.0\.0\/16 are missing/,
      )
      assert.equal(broken.code, 5)

      // The Docker >= 1.13 trap: FORWARD policy DROP is harmless while flannel's ACCEPT rules exist, fatal without them.
      n1.ns.exec('iptables', '-w', '-P', 'FORWARD', 'DROP')
      assert.deepEqual(
        (await doctorLocal(n1, endpoints)).findings.filter((f) => f.id === 'forward-policy-drop'),
        [],
      )
      n1.ns.exec('iptables', '-w', '-F', 'FLANNEL-FWD')
      const dropped = await doctorLocal(n1, endpoints)
      assert.deepEqual(
        dropped.findings.filter((f) => f.id === 'forward-policy-drop').map((f) => f.subjects),
        [['FORWARD']],
        dropped.raw,
      )
    })

    test('rules an earlier run built for another Network (subnet.env says so) are removed on start; doctor says the node still runs the old Network', async () => {
      await topo.stopAgent(n1, 'SIGTERM') // (stopped already by the previous test)
      const OLD = '198.19.0.0/17'
      const s = subnetOf(n1)
      const c = '-m comment --comment "flanneld masq"'
      const old = [
        `-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 ${c} -j RETURN`,
        `-A FLANNEL-POSTRTG -s ${s} -d ${OLD} ${c} -j RETURN`,
        `-A FLANNEL-POSTRTG -s ${OLD} -d ${s} ${c} -j RETURN`,
        `-A FLANNEL-POSTRTG ! -s ${OLD} -d ${s} ${c} -j RETURN`,
        `-A FLANNEL-POSTRTG -s ${OLD} ! -d 224.0.0.0/4 ${c} -j MASQUERADE --random-fully`,
        `-A FLANNEL-POSTRTG ! -s ${OLD} -d ${OLD} ${c} -j MASQUERADE --random-fully`,
      ]
      n1.ns.exec('iptables', '-w', '-P', 'FORWARD', 'ACCEPT')
      const payload = path.join(topo.tmp, 'old-rules.txt')
      await writeFile(payload, ['*nat', '-F FLANNEL-POSTRTG', ...old, 'COMMIT', ''].join('\n'))
      const restore = await sh('ip', ['netns', 'exec', n1.ns.name, 'iptables-restore', '-w', '--noflush', payload])
      assert.equal(restore.code, 0, restore.stderr)
      const env = await topo.readSubnetEnv(n1)
      await writeFile(n1.subnetFile, env.replace('FLANNEL_NETWORK=198.19.0.0/16', `FLANNEL_NETWORK=${OLD}`))
      assert.match(await iptablesS(n1, 'nat'), /-s 198\.19\.0\.0\/17 ! -d 224\.0\.0\.0\/4/)

      const d = await doctorLocal(n1, ['--endpoints', `http://${ETCD_IP}:2379`])
      // The rules match the Network the node's subnet.env names (as after network expand, before a restart): doctor
      // judges them against that Network, so they are neither missing nor stale, and says the node must restart.
      const stale = d.findings.filter((f) => f.id === 'subnet-env-stale-network')
      assert.equal(stale.length, 1, d.raw)
      assert.equal(stale[0]!.severity, 'warning', d.raw)
      assert.match(
        stale[0]!.message,
        /^FLANNEL_NETWORK=198\.19\.0\.0\/17 differs from the config's Network 198\.19\.0\.0\/16/,
      )
      assert.deepEqual(
        d.findings.filter((f) => f.severity === 'error'),
        [],
        d.raw,
      )

      const marks = topo.logMarks()
      topo.startAgent(n1)
      await topo.waitFor('node 1 ready again', 20_000, () => topo.ready([n1]), 100)
      assert.deepEqual(
        await rulesProblems([n1]),
        [],
        'only the rules for 198.19.0.0/16 are left, complete and in order',
      )
      assert.match(
        await topo.logSince(n1, marks),
        new RegExp(`removed \\d+ masquerade rule\\(s\\) built for 198\\.19\\.0\\.0/17 / ${s.replaceAll('.', '\\.')}`),
      )
      assert.equal(await topo.readSubnetEnv(n1), env, 'subnet.env rewritten for the current Network')
      const after = await doctorLocal(n1, ['--endpoints', `http://${ETCD_IP}:2379`])
      assert.deepEqual(
        after.findings.filter(
          (f) => f.severity !== 'info' && (f.id.startsWith('masq-') || f.id === 'forward-policy-drop'),
        ),
        [],
        after.raw,
      )
      assert.deepEqual(await udpSources(topo, n1.pod, world, WORLD_IP), [n1.ip], 'masquerading again')
    })

    test('EnableNFTables: table ip flannel-ipv4 holds the same rule set in nft form, iptables holds none, and it masquerades', async (t) => {
      const s = subnetOf(n3)
      const N = NETWORK
      const expected = [
        'table ip flannel-ipv4 {',
        'chain postrtg {',
        'type nat hook postrouting priority srcnat; policy accept;',
        'meta mark 0x00004000 return',
        `ip saddr ${s} ip daddr ${N} return`,
        `ip saddr ${N} ip daddr ${s} return`,
        `ip saddr != ${s} ip daddr ${N} return`,
        `ip saddr ${N} ip daddr != 224.0.0.0/4 masquerade fully-random`,
        `ip saddr != ${N} ip daddr ${N} masquerade fully-random`,
        '}',
        'chain forward {',
        'type filter hook forward priority filter; policy accept;',
        `ip saddr ${N} accept`,
        `ip daddr ${N} accept`,
        '}',
        '}',
      ]
      const table = async () =>
        (await shOk('ip', ['netns', 'exec', n3.ns.name, 'nft', 'list', 'table', 'ip', 'flannel-ipv4']))
          .split('\n')
          .map((l) => l.trim())
          .filter(Boolean)
      assert.deepEqual(await table(), expected)
      assert.doesNotMatch(await iptablesS(n3, 'nat'), /FLANNEL|flanneld/)
      assert.doesNotMatch(await iptablesS(n3, 'filter'), /FLANNEL|flanneld/)
      assert.deepEqual(await udpSources(topo, n3.pod, world, WORLD_IP), [n3.ip], 'the world sees node 3, not pod 3')

      n3.ns.exec('nft', 'flush', 'chain', 'ip', 'flannel-ipv4', 'postrtg')
      const ms = await topo.waitFor(
        'the flushed chain is rewritten',
        WITHIN_ONE_RESYNC,
        async () => {
          const now = await table()
          return JSON.stringify(now) === JSON.stringify(expected) ? [] : [now.join('\n')]
        },
        25,
      )
      t.diagnostic(`nft chain rewritten after ${Math.round(ms)} ms`)
    })
  },
)
