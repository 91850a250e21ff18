// `flannelctl agent` end to end (issue 5): the real kernel and a real etcd, in network namespaces this file creates
// and always removes. One L2 segment (a bridge in its own namespace, underlay 198.18.0.0/24) joins an etcd namespace
// (198.18.0.100) and three node namespaces (198.18.0.1-3), each running the agent; every node has a pod namespace
// on a veth with an address in the node's subnet of Network 198.19.0.0/16. Only 198.18.0.0/15 addresses are used.
// Every process started here is killed by its own pid (after() and an exit/signal hook); every ping is bounded.

import assert from 'node:assert/strict'
import {type ChildProcess, execFile, spawn} from 'node:child_process'
import {closeSync, openSync, rmSync, statSync} from 'node:fs'
import {mkdir, mkdtemp, readFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {after, before, describe, test} from 'node:test'

import {cleanEnv, currentRevision, putKey, putSubnet, ROOT, RUN_JS, vxlanValue} from '../helpers/cli.js'
import {type EtcdServer, startEtcd} from '../helpers/etcd.js'
import {canUseNetns, createNetns, type Netns} from '../helpers/netns.js'

const ok = process.getuid?.() === 0 && canUseNetns()

const PREFIX = '/coreos.com/network'
const SUBNETS = `${PREFIX}/subnets`
const CONFIG = '{"Network":"198.19.0.0/16","Backend":{"Type":"vxlan"}}'
const ETCD_IP = '198.18.0.100'
const RESYNC_MS = 1000
const HEALTHZ = '127.0.0.1:8471'
/** Made-up peers that exist only in etcd (nothing answers at their PublicIPs). */
const SYNTH = {
  outage: {subnet: '198.19.200.0/24', publicIP: '198.18.0.50', mac: '02:00:00:c8:00:32'},
  compacted: {subnet: '198.19.201.0/24', publicIP: '198.18.0.51', mac: '02:00:00:c9:00:33'},
  afterRelist: {subnet: '198.19.202.0/24', publicIP: '198.18.0.52', mac: '02:00:00:ca:00:34'},
} as const

// ---------------------------------------------------------------------------------------------------------------
// Processes: async exec with a bound, and the agents (tracked, killed by pid on exit or signal)

interface Exec {
  code: number
  stdout: string
  stderr: string
}

function sh(cmd: string, args: string[], timeoutMs = 10_000): Promise<Exec> {
  return new Promise((resolve) => {
    execFile(cmd, args, {encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024}, (err, stdout, stderr) => {
      const code = !err ? 0 : typeof err.code === 'number' ? err.code : -1
      resolve({code, stdout, stderr: stderr || (err && typeof err.code !== 'number' ? String(err.message) : '')})
    })
  })
}

async function shOk(cmd: string, args: string[]): Promise<string> {
  const r = await sh(cmd, args)
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}: ${r.stderr}${r.stdout}`)
  return r.stdout
}

async function jsonOf<T>(cmd: string, args: string[]): Promise<T> {
  const out = (await shOk(cmd, args)).trim()
  return (out === '' ? [] : JSON.parse(out)) as T
}

interface Agent {
  child: ChildProcess
  pid: number
  exit: {code: number | null; signal: NodeJS.Signals | null} | null
  exited: Promise<void>
}

const liveAgents = new Set<Agent>()
const namespaces: Netns[] = []

/** Last resort: SIGKILL every agent by its pid and delete every namespace (also when a signal ends the run). */
function cleanupSync(): void {
  for (const a of liveAgents) {
    try {
      process.kill(a.pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }
  liveAgents.clear()
  for (const ns of namespaces.splice(0).reverse()) {
    try {
      ns.del()
    } catch {
      // already gone
    }
  }
  if (tmp) rmSync(tmp, {recursive: true, force: true})
}
process.once('exit', cleanupSync)
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    cleanupSync()
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal)
  })
}

// ---------------------------------------------------------------------------------------------------------------
// The cluster

interface Node {
  readonly n: number
  readonly ns: Netns
  readonly pod: Netns
  readonly ip: string
  readonly dir: string
  readonly subnetFile: string
  readonly logFile: string
  agent: Agent | null
  /** Known once the agent has its lease. */
  x: number
  mac: string
}

interface Peer {
  subnet: string
  publicIP: string
  mac: string
}

let tmp: string
let br: Netns
let etcdNs: Netns
let etcd: EtcdServer
const nodes: Node[] = []
/** Synthetic leases every node must currently program besides the real nodes. */
const synthetic: Peer[] = []

const subnetOf = (node: Node) => `198.19.${node.x}.0/24`
const podIP = (node: Node) => `198.19.${node.x}.2`
const keyOf = (subnet: string) => `${SUBNETS}/${subnet.replace('/', '-')}`
const asPeer = (node: Node): Peer => ({subnet: subnetOf(node), publicIP: node.ip, mac: node.mac})
const peersOf = (node: Node): Peer[] => [...nodes.filter((o) => o !== node).map(asPeer), ...synthetic]

function track(ns: Netns): Netns {
  namespaces.push(ns)
  return ns
}

/** A veth from the bridge namespace into `ns` (named eth0 there) with `addr`/24, up. */
function plug(ns: Netns, addr: string, port: string): void {
  br.ip('link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns.name)
  br.ip('link', 'set', port, 'master', 'br0')
  br.ip('link', 'set', port, 'up')
  ns.ip('addr', 'add', `${addr}/24`, 'dev', 'eth0')
  ns.ip('link', 'set', 'eth0', 'up')
}

function startAgent(node: Node): Agent {
  const fd = openSync(node.logFile, 'a')
  let child: ChildProcess
  try {
    // `ip netns exec` execs node in place, so child.pid is the agent's own pid.
    child = spawn(
      'ip',
      ['netns', 'exec', node.ns.name, process.execPath, RUN_JS, 'agent', '--subnet-file', node.subnetFile, '--resync', `${RESYNC_MS}ms`, '--healthz-addr', HEALTHZ, '--endpoints', `http://${ETCD_IP}:2379`],
      {cwd: ROOT, env: cleanEnv(), stdio: ['ignore', fd, fd]},
    )
  } finally {
    closeSync(fd)
  }
  const agent: Agent = {child, pid: child.pid!, exit: null, exited: Promise.resolve()}
  agent.exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      agent.exit = {code, signal}
      liveAgents.delete(agent)
      resolve()
    })
  })
  liveAgents.add(agent)
  node.agent = agent
  return agent
}

/** Sends `signal` to the agent's pid and waits (bounded) for it to exit; SIGKILL if it does not. */
async function stopAgent(node: Node, signal: NodeJS.Signals, deadlineMs = 5000): Promise<Agent['exit']> {
  const a = node.agent
  if (!a) return null
  if (a.exit === null) {
    process.kill(a.pid, signal)
    const exited = await Promise.race([a.exited.then(() => true), sleep(deadlineMs, false)])
    if (!exited) {
      process.kill(a.pid, 'SIGKILL')
      await a.exited
    }
  }
  node.agent = null
  return a.exit
}

async function logTail(node: Node, lines = 25): Promise<string> {
  const text = await readFile(node.logFile, 'utf8').catch(() => '')
  return text.split('\n').slice(-lines - 1).join('\n')
}

/** Every agent's recent log lines, for assertion messages. */
async function logs(): Promise<string> {
  const parts = await Promise.all(nodes.map(async (n) => `--- node ${n.n} (${n.ip}) agent log\n${await logTail(n)}`))
  return parts.join('\n')
}

/** Where each agent's log ends now, so that a test can look at what was logged after this point. */
const logMarks = (): number[] => nodes.map((n) => statSync(n.logFile).size)

async function logSince(node: Node, marks: number[]): Promise<string> {
  return (await readFile(node.logFile, 'utf8')).slice(marks[nodes.indexOf(node)])
}

/** No agent logged a failed or partial dataplane sync since `marks`. */
async function assertSyncsClean(marks: number[]): Promise<void> {
  for (const n of nodes) {
    const bad = (await logSince(n, marks)).split('\n').filter((l) => /dataplane sync (failed|had errors)/.test(l))
    assert.deepEqual(bad, [], `node ${n.n}: every dataplane sync succeeds`)
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Observing: etcd, the kernel, /healthz and /readyz, ping

interface Kv {
  key: string
  value: string
  lease: string
}

async function listSubnets(): Promise<Kv[]> {
  const r = await etcd.etcdctl(['get', SUBNETS, '--prefix', '-w', 'json'])
  if (r.code !== 0) throw new Error(`etcdctl get: ${r.stderr}`)
  const doc = JSON.parse(r.stdout.replace(/("lease"\s*:\s*)(\d+)/g, '$1"$2"')) as {kvs?: Array<{key: string; value: string; lease?: string}>}
  const b64 = (s: string) => Buffer.from(s, 'base64').toString('utf8')
  return (doc.kvs ?? []).map((kv) => ({key: b64(kv.key), value: b64(kv.value), lease: kv.lease ?? '0'}))
}

async function ctl(...args: string[]): Promise<string> {
  const r = await etcd.etcdctl(args)
  if (r.code !== 0) throw new Error(`etcdctl ${args.join(' ')} exited ${r.code}: ${r.stderr}${r.stdout}`)
  return r.stdout
}

interface Kernel {
  neighs: Array<{dst: string; lladdr?: string; state?: string[]}>
  fdb: Array<{mac: string; dst?: string; state?: string; flags?: string[]}>
  routes: Array<{dst: string; gateway?: string; dev?: string; flags?: string[]}>
}

async function readKernel(node: Node): Promise<Kernel> {
  const [neighs, fdb, routes] = await Promise.all([
    jsonOf<Kernel['neighs']>('ip', ['-n', node.ns.name, '-j', '-4', 'neigh', 'show', 'dev', 'flannel.1']),
    jsonOf<Kernel['fdb']>('ip', ['netns', 'exec', node.ns.name, 'bridge', '-j', 'fdb', 'show', 'dev', 'flannel.1']),
    jsonOf<Kernel['routes']>('ip', ['-n', node.ns.name, '-j', '-4', 'route', 'show', 'table', 'main']),
  ])
  return {neighs, fdb, routes}
}

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
    if (neigh.length !== 1 || neigh[0]!.lladdr !== p.mac || !neigh[0]!.state?.includes('PERMANENT')) out.push(`${at}: neighbour ${gw} should be ${p.mac} permanent, is ${JSON.stringify(neigh)}`)
    const fdb = k.fdb.filter((x) => x.mac === p.mac)
    if (fdb.length !== 1 || fdb[0]!.dst !== p.publicIP || fdb[0]!.state !== 'permanent') out.push(`${at}: FDB ${p.mac} should be dst ${p.publicIP} permanent, is ${JSON.stringify(fdb)}`)
    const route = k.routes.filter((x) => x.dst === p.subnet)
    if (route.length !== 1 || route[0]!.gateway !== gw || route[0]!.dev !== 'flannel.1' || !route[0]!.flags?.includes('onlink')) {
      out.push(`${at}: route ${p.subnet} should be via ${gw} dev flannel.1 onlink, is ${JSON.stringify(route)}`)
    }
  }
  for (const x of k.neighs) if (!peers.some((p) => p.subnet.startsWith(`${x.dst}/`))) out.push(`${at}: stray neighbour ${JSON.stringify(x)}`)
  for (const x of k.fdb) if (!peers.some((p) => p.mac === x.mac)) out.push(`${at}: stray FDB entry ${JSON.stringify(x)}`)
  for (const x of k.routes) if (inNetwork(x.dst) && x.gateway && !peers.some((p) => p.subnet === x.dst)) out.push(`${at}: stray route ${JSON.stringify(x)}`)
  return out
}

/** Polls `check` every `everyMs` until it returns no problems; fails with the last problems and the logs. */
async function waitFor(what: string, deadlineMs: number, check: () => Promise<string[]>, everyMs = 50): Promise<number> {
  const t0 = performance.now()
  let last: string[] = []
  for (;;) {
    last = await check().catch((e: Error) => [`check failed: ${e.message}`])
    if (last.length === 0) return performance.now() - t0
    if (performance.now() - t0 > deadlineMs) break
    await sleep(everyMs)
  }
  assert.fail(`${what}: not true after ${deadlineMs} ms:\n${last.join('\n')}\n${await logs()}`)
}

/** Every node programs exactly its peers (the other nodes and the synthetic leases), with no duplicates. */
function converged(): Promise<string[]> {
  return Promise.all(nodes.map(async (n) => problems(n, await readKernel(n), peersOf(n)))).then((p) => p.flat())
}

async function httpGet(node: Node, urlPath: string): Promise<{code: number; body: string}> {
  const r = await sh('ip', ['netns', 'exec', node.ns.name, 'curl', '-s', '-m', '2', '-w', '\n%{http_code}', `http://${HEALTHZ}${urlPath}`], 5000)
  const i = r.stdout.lastIndexOf('\n')
  return {code: Number(r.stdout.slice(i + 1)) || 0, body: r.stdout.slice(0, Math.max(i, 0))}
}

async function ready(nodesToCheck: Node[]): Promise<string[]> {
  const out: string[] = []
  for (const n of nodesToCheck) {
    if (n.agent?.exit) out.push(`node ${n.n}: agent exited ${JSON.stringify(n.agent.exit)}`)
    const r = await httpGet(n, '/readyz')
    if (r.code !== 200) out.push(`node ${n.n}: /readyz ${r.code} ${r.body}`)
  }
  return out
}

/** One bounded ping (2 probes, 1 s wait each) from `from`'s pod to `to`'s pod. */
async function ping(from: Node, to: Node): Promise<Exec> {
  return sh('ip', ['netns', 'exec', from.pod.name, 'ping', '-n', '-q', '-c', '2', '-i', '0.2', '-W', '1', podIP(to)], 5000)
}

/** Pings every ordered pair (in parallel), each with at most `attempts` tries; returns the failures. */
async function pingPairs(pairs: Array<[Node, Node]>, attempts: number): Promise<string[]> {
  const failures = await Promise.all(
    pairs.map(async ([a, b]) => {
      let r: Exec | undefined
      for (let i = 0; i < attempts; i++) {
        r = await ping(a, b)
        if (r.code === 0) return null
      }
      return `pod ${a.n} (${podIP(a)}) -> pod ${b.n} (${podIP(b)}): ${r!.stdout.trim()} ${r!.stderr.trim()}`
    }),
  )
  return failures.filter((f): f is string => f !== null)
}

const allPairs = (): Array<[Node, Node]> => nodes.flatMap((a) => nodes.filter((b) => b !== a).map((b): [Node, Node] => [a, b]))

interface IpLink {
  address: string
  mtu: number
  flags: string[]
  addr_info: Array<{family: string; local: string; prefixlen: number}>
  linkinfo?: {info_kind?: string; info_data?: Record<string, unknown>}
}

/** flannel.1 as `ip -d -j addr show` reports it. */
async function linkOf(node: Node): Promise<IpLink> {
  const links = await jsonOf<IpLink[]>('ip', ['-n', node.ns.name, '-d', '-j', 'addr', 'show', 'dev', 'flannel.1'])
  assert.ok(links[0], `node ${node.n} has no flannel.1`)
  return links[0]
}

async function readSubnetEnv(node: Node): Promise<string> {
  return readFile(node.subnetFile, 'utf8')
}

/** The third octet of FLANNEL_SUBNET in the node's subnet.env. */
async function subnetX(node: Node): Promise<number> {
  const m = /^FLANNEL_SUBNET=198\.19\.(\d+)\.1\/24$/m.exec(await readSubnetEnv(node))
  assert.ok(m, `node ${node.n}: no FLANNEL_SUBNET in 198.19.0.0/16 in ${node.subnetFile}`)
  return Number(m[1])
}

/** The pod namespace: eth0 198.19.X.2/24, default via 198.19.X.1 on the node's end of the veth. */
function wirePod(node: Node): void {
  node.ns.ip('link', 'add', 'vpod', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', node.pod.name)
  node.ns.ip('addr', 'add', `198.19.${node.x}.1/24`, 'dev', 'vpod')
  node.ns.ip('link', 'set', 'vpod', 'up')
  node.pod.ip('addr', 'add', `198.19.${node.x}.2/24`, 'dev', 'eth0')
  node.pod.ip('link', 'set', 'eth0', 'up')
  node.pod.ip('route', 'add', 'default', 'via', `198.19.${node.x}.1`)
}

const alive = (node: Node) => node.agent !== null && node.agent.exit === null

function assertAllAlive(pids: number[], when: string): void {
  for (const [i, n] of nodes.entries()) {
    assert.ok(alive(n), `${when}: the agent on node ${n.n} exited: ${JSON.stringify(n.agent?.exit)}`)
    assert.equal(n.agent!.pid, pids[i], `${when}: node ${n.n} runs another agent process`)
  }
}

// ---------------------------------------------------------------------------------------------------------------

describe('flannelctl agent end to end (3 nodes, real etcd, real kernel)', {skip: ok ? false : 'needs root and ip netns', timeout: 240_000}, () => {
  before(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'flannelctl-agent-e2e-'))
    br = track(createNetns('br'))
    br.ip('link', 'add', 'br0', 'type', 'bridge')
    br.ip('link', 'set', 'br0', 'up')
    etcdNs = track(createNetns('etcd'))
    plug(etcdNs, ETCD_IP, 'uetcd')
    for (const n of [1, 2, 3]) {
      const ns = track(createNetns(`node${n}`))
      const pod = track(createNetns(`pod${n}`))
      const ip = `198.18.0.${n}`
      plug(ns, ip, `un${n}`)
      // The agent picks the default route's interface, as flanneld does; the gateway itself never answers.
      ns.ip('route', 'add', 'default', 'via', '198.18.0.254', 'dev', 'eth0')
      ns.exec('sysctl', '-q', '-w', 'net.ipv4.ip_forward=1')
      const dir = path.join(tmp, `node${n}`)
      await mkdir(dir)
      nodes.push({n, ns, pod, ip, dir, subnetFile: path.join(dir, 'subnet.env'), logFile: path.join(dir, 'agent.log'), agent: null, x: 0, mac: ''})
    }
    etcd = await startEtcd({netns: etcdNs.name, host: ETCD_IP})
    await putKey(etcd, `${PREFIX}/config`, CONFIG)
    for (const n of nodes) startAgent(n)
    await waitFor('every agent ready', 30_000, () => ready(nodes), 100)
    for (const n of nodes) {
      n.x = await subnetX(n)
      n.mac = (await linkOf(n)).address
      wirePod(n)
    }
    await waitFor('every node programs its two peers', 10_000, converged)
  })

  after(async () => {
    await Promise.allSettled(nodes.map((n) => stopAgent(n, 'SIGKILL')))
    await etcd?.stop()
    cleanupSync() // the namespaces and the temp dir
  })

  test('pod-to-pod ping across every pair of nodes', async () => {
    const failures = await pingPairs(allPairs(), 3)
    assert.deepEqual(failures, [], await logs())
  })

  test("lease values and subnet.env are byte-identical to flanneld's; the device is flanneld's; /healthz and /readyz answer 200", async () => {
    const kvs = await listSubnets()
    assert.deepEqual(kvs.map((kv) => kv.key).sort(), nodes.map((n) => keyOf(subnetOf(n))).sort(), 'one key per node, nothing else')
    assert.equal(new Set(nodes.map((n) => n.x)).size, 3, 'three distinct subnets')
    for (const n of nodes) {
      const kv = kvs.find((k) => k.key === keyOf(subnetOf(n)))!
      assert.equal(kv.value, `{"PublicIP":"${n.ip}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${n.mac}"}}`)
      assert.notEqual(kv.lease, '0', 'created with an etcd lease')
      const ttl = await ctl('lease', 'timetolive', BigInt(kv.lease).toString(16))
      assert.match(ttl, /granted with TTL\(86400s\)/, 'a 24 h lease, as flanneld grants')

      assert.equal(await readSubnetEnv(n), `FLANNEL_NETWORK=198.19.0.0/16\nFLANNEL_SUBNET=198.19.${n.x}.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n`)
      assert.equal(statSync(n.subnetFile).mode & 0o777, 0o644)

      const link = await linkOf(n)
      assert.equal(link.mtu, 1450)
      assert.ok(link.flags.includes('UP'))
      assert.deepEqual(link.addr_info.filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`), [`198.19.${n.x}.0/32`])
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
    assert.deepEqual(await pingPairs(allPairs().filter(([a, b]) => a === node || b === node), 3), [], await logs())
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
    assert.deepEqual(await pingPairs([[n1, n2], [n3, n1]], 3), [], await logs())
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
        Promise.all(others.map(async (o) => problems(o, await readKernel(o), peersOf(o).filter((p) => p.publicIP !== node.ip)))).then((p) => p.flat()),
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
    assert.deepEqual(await pingPairs([[nodes[0]!, node], [node, nodes[1]!]], 3), [], await logs())
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
    await etcd.kill()
    const t0 = performance.now()
    let rounds = 0
    while (performance.now() - t0 < 10_000) {
      const failures = await pingPairs(ring, 1)
      assert.deepEqual(failures, [], `traffic stopped ${Math.round(performance.now() - t0)} ms into the outage\n${await logs()}`)
      assertAllAlive(pids, `${Math.round(performance.now() - t0)} ms into the outage`)
      rounds++
      await sleep(250)
    }
    for (const n of nodes) {
      assert.equal((await httpGet(n, '/healthz')).code, 200, `node ${n.n} /healthz during the outage`)
      const r = await httpGet(n, '/readyz')
      assert.equal(r.code, 200, `node ${n.n} /readyz during the outage (lease held, device up, last sync fine): ${r.body}`)
    }
    t.diagnostic(`${rounds} rounds of 3 pings during ${Math.round(performance.now() - t0)} ms of outage`)
    await etcd.restart()
    await putSubnet(etcd, keyOf(SYNTH.outage.subnet), vxlanValue(SYNTH.outage.publicIP, SYNTH.outage.mac))
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
      await etcd.kill()
      await etcd.restart()
      assert.match(await ctl('del', keyOf(SYNTH.outage.subnet)), /^1$/m)
      for (let i = 0; i < 4; i++) {
        await Promise.all(
          Array.from({length: 5}, async (_, j) => {
            const key = keyOf(`198.19.${210 + i * 5 + j}.0/24`)
            await putSubnet(etcd, key, vxlanValue(`198.18.1.${i * 5 + j + 1}`, `02:00:00:d2:00:${(i * 5 + j + 1).toString(16).padStart(2, '0')}`))
            await ctl('del', key)
          }),
        )
      }
      await putSubnet(etcd, keyOf(SYNTH.compacted.subnet), vxlanValue(SYNTH.compacted.publicIP, SYNTH.compacted.mac))
      const rev = await currentRevision(etcd)
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
    await putSubnet(etcd, keyOf(SYNTH.afterRelist.subnet), vxlanValue(SYNTH.afterRelist.publicIP, SYNTH.afterRelist.mac))
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
})
