// Shared topology for the agent end-to-end tests (test/agent/*.e2e.test.ts): the real kernel and a real etcd, in network
// namespaces a test creates and always removes. A bridge namespace holds the L2 segments (br0 = underlay 198.18.0.0/24,
// more on request), an etcd namespace sits on br0 at 198.18.0.100, node namespaces run `flannelctl agent`, each with a
// pod namespace on a veth. Only 198.18.0.0/15 addresses are used.
//
// Every process started here is killed by its own pid (teardown() and an exit/signal hook); every ping is bounded.

import assert from 'node:assert/strict'
import {type ChildProcess, execFile, spawn} from 'node:child_process'
import {closeSync, openSync, rmSync, statSync} from 'node:fs'
import {mkdir, mkdtemp, readFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {cleanEnv, putKey, ROOT, RUN_JS} from './cli.js'
import {type EtcdServer, startEtcd} from './etcd.js'
import {createNetns, type Netns} from './netns.js'

export const PREFIX = '/coreos.com/network'
export const SUBNETS = `${PREFIX}/subnets`
export const ETCD_IP = '198.18.0.100'
export const HEALTHZ = '127.0.0.1:8471'

// ---------------------------------------------------------------------------------------------------------------
// Processes: async exec with a bound

export interface Exec {
  code: number
  stdout: string
  stderr: string
}

export function sh(cmd: string, args: string[], timeoutMs = 10_000, env?: NodeJS.ProcessEnv): Promise<Exec> {
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      {encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024, env},
      (err, stdout, stderr) => {
        const code = !err ? 0 : typeof err.code === 'number' ? err.code : -1
        resolve({code, stdout, stderr: stderr || (err && typeof err.code !== 'number' ? String(err.message) : '')})
      },
    )
  })
}

export async function shOk(cmd: string, args: string[]): Promise<string> {
  const r = await sh(cmd, args)
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}: ${r.stderr}${r.stdout}`)
  return r.stdout
}

export async function jsonOf<T>(cmd: string, args: string[]): Promise<T> {
  const out = (await shOk(cmd, args)).trim()
  return (out === '' ? [] : JSON.parse(out)) as T
}

export interface Agent {
  child: ChildProcess
  pid: number
  exit: {code: number | null; signal: NodeJS.Signals | null} | null
  exited: Promise<void>
}

export interface Node {
  readonly n: number
  readonly ns: Netns
  readonly pod: Netns
  readonly ip: string
  readonly dir: string
  readonly subnetFile: string
  readonly logFile: string
  /** Extra agent flags (e.g. --ip-masq), used on every start. */
  readonly args: string[]
  agent: Agent | null
  /** Known once the agent has its lease. */
  x: number
  mac: string
}

export interface Kv {
  key: string
  value: string
  lease: string
}

export interface Kernel {
  neighs: Array<{dst: string; lladdr?: string; state?: string[]}>
  fdb: Array<{mac: string; dst?: string; state?: string; flags?: string[]}>
  routes: Array<{dst: string; gateway?: string; dev?: string; flags?: string[]}>
}

export interface IpLink {
  ifname: string
  address: string
  mtu: number
  flags: string[]
  addr_info: Array<{family: string; local: string; prefixlen: number}>
  linkinfo?: {info_kind?: string; info_data?: Record<string, unknown>}
  stats64?: {rx: {packets: number; bytes: number}; tx: {packets: number; bytes: number}}
}

// ---------------------------------------------------------------------------------------------------------------
// Last resort: every topology of this process is torn down on exit and on SIGINT/SIGTERM/SIGHUP.

const topologies = new Set<Topology>()

function cleanupAll(): void {
  for (const t of topologies) t.cleanupSync()
}
process.once('exit', cleanupAll)
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    cleanupAll()
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal)
  })
}

export const subnetOf = (node: Node) => `198.19.${node.x}.0/24`
export const podIP = (node: Node) => `198.19.${node.x}.2`
export const keyOf = (subnet: string) => `${SUBNETS}/${subnet.replace('/', '-')}`

export class Topology {
  tmp = ''
  br!: Netns
  etcdNs!: Netns
  etcd!: EtcdServer
  readonly nodes: Node[] = []
  private readonly agents = new Set<Agent>()
  /** Helper processes (listeners and the like) started in the namespaces, killed by pid on teardown. */
  private readonly helpers = new Map<ChildProcess, Promise<void>>()
  private readonly namespaces: Netns[] = []

  constructor(private readonly o: {tag: string; resyncMs: number}) {}

  /** The temp dir and the bridge namespace with br0 (the underlay segment 198.18.0.0/24). */
  async init(): Promise<void> {
    topologies.add(this)
    this.tmp = await mkdtemp(path.join(os.tmpdir(), `flannelctl-${this.o.tag}-`))
    this.br = this.track(createNetns('br'))
    this.addSegment('br0')
  }

  /** Another L2 segment: a bridge in the bridge namespace. */
  addSegment(name: string): void {
    this.br.ip('link', 'add', name, 'type', 'bridge')
    this.br.ip('link', 'set', name, 'up')
  }

  track(ns: Netns): Netns {
    this.namespaces.push(ns)
    return ns
  }

  /** A veth from the bridge namespace (port `port` on `bridge`) into `ns` (named `ifname` there) with `addr`/24, up. */
  plug(ns: Netns, addr: string, port: string, bridge = 'br0', ifname = 'eth0'): void {
    this.br.ip('link', 'add', port, 'type', 'veth', 'peer', 'name', ifname, 'netns', ns.name)
    this.br.ip('link', 'set', port, 'master', bridge)
    this.br.ip('link', 'set', port, 'up')
    ns.ip('addr', 'add', `${addr}/24`, 'dev', ifname)
    ns.ip('link', 'set', ifname, 'up')
  }

  /** A plain host (a router, "the world") on `bridge` at `addr`, with a default route via `gateway` when given. */
  addHost(tag: string, addr: string, port: string, o: {bridge?: string; gateway?: string} = {}): Netns {
    const ns = this.track(createNetns(tag))
    this.plug(ns, addr, port, o.bridge)
    if (o.gateway) ns.ip('route', 'add', 'default', 'via', o.gateway, 'dev', 'eth0')
    return ns
  }

  /**
   * A node namespace at `ip` on `bridge` (default br0) with its pod namespace. The agent picks the default route's
   * interface, as flanneld does; on br0 the gateway is 198.18.0.254 (nothing answers there unless a test puts a router).
   */
  async addNode(n: number, ip: string, o: {bridge?: string; gateway?: string; args?: string[]} = {}): Promise<Node> {
    const ns = this.track(createNetns(`node${n}`))
    const pod = this.track(createNetns(`pod${n}`))
    this.plug(ns, ip, `un${n}`, o.bridge)
    ns.ip('route', 'add', 'default', 'via', o.gateway ?? '198.18.0.254', 'dev', 'eth0')
    ns.exec('sysctl', '-q', '-w', 'net.ipv4.ip_forward=1')
    const dir = path.join(this.tmp, `node${n}`)
    await mkdir(dir)
    const node: Node = {
      n,
      ns,
      pod,
      ip,
      dir,
      subnetFile: path.join(dir, 'subnet.env'),
      logFile: path.join(dir, 'agent.log'),
      args: o.args ?? [],
      agent: null,
      x: 0,
      mac: '',
    }
    this.nodes.push(node)
    return node
  }

  /**
   * etcd in its own namespace on br0 at 198.18.0.100, with `config` as the network config. With `tls`, clients must
   * present a certificate (flanneld v0.20 talks to etcd only that way); etcdArgs() gives flannelctl the files.
   */
  async startEtcd(config: string, o: {tls?: boolean; v2?: boolean} = {}): Promise<void> {
    this.etcdNs = this.track(createNetns('etcd'))
    this.plug(this.etcdNs, ETCD_IP, 'uetcd')
    this.etcd = await startEtcd({netns: this.etcdNs.name, host: ETCD_IP, tls: o.tls, enableV2: o.v2})
    if (!o.v2) {
      await putKey(this.etcd, `${PREFIX}/config`, config)
      return
    }
    // The v2 keyspace (flanneld <= v0.17), written over the v2 HTTP API from inside etcd's namespace.
    const r = await sh('ip', [
      ...['netns', 'exec', this.etcdNs.name, 'curl', '-sf', '-m', '5', '-X', 'PUT'],
      ...[`${this.etcd.endpoint}/v2/keys${PREFIX}/config`, '--data-urlencode', `value=${config}`],
    ])
    if (r.code !== 0) throw new Error(`v2 config put failed: ${r.stderr}${r.stdout}`)
  }

  /** flannelctl's connection flags for this etcd. */
  etcdArgs(): string[] {
    const t = this.etcd.tls
    return ['--endpoints', this.etcd.endpoint, ...(t ? ['--cacert', t.ca, '--cert', t.cert, '--key', t.key] : [])]
  }

  startAgent(node: Node): Agent {
    const fd = openSync(node.logFile, 'a')
    let child: ChildProcess
    try {
      // `ip netns exec` execs node in place, so child.pid is the agent's own pid.
      child = spawn(
        'ip',
        [
          'netns',
          'exec',
          node.ns.name,
          process.execPath,
          RUN_JS,
          'agent',
          '--subnet-file',
          node.subnetFile,
          '--resync',
          `${this.o.resyncMs}ms`,
          '--healthz-addr',
          HEALTHZ,
          ...this.etcdArgs(),
          ...node.args,
        ],
        {cwd: ROOT, env: cleanEnv(), stdio: ['ignore', fd, fd]},
      )
    } finally {
      closeSync(fd)
    }
    const agent: Agent = {child, pid: child.pid!, exit: null, exited: Promise.resolve()}
    agent.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        agent.exit = {code, signal}
        this.agents.delete(agent)
        resolve()
      })
    })
    this.agents.add(agent)
    node.agent = agent
    return agent
  }

  /** Sends `signal` to the agent's pid and waits (bounded) for it to exit; SIGKILL if it does not. */
  async stopAgent(node: Node, signal: NodeJS.Signals, deadlineMs = 5000): Promise<Agent['exit']> {
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

  /** A helper process inside a namespace, tracked and killed by pid on teardown; stdout is collected. */
  spawnIn(ns: Netns, cmd: string, args: string[]): {child: ChildProcess; output: () => string; exited: Promise<void>} {
    const child = spawn('ip', ['netns', 'exec', ns.name, cmd, ...args], {
      env: cleanEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s))
    child.stderr.setEncoding('utf8').on('data', (s: string) => (out += s))
    const exited = new Promise<void>((resolve) => {
      const done = () => {
        this.helpers.delete(child)
        resolve()
      }
      child.once('exit', done)
      child.once('error', done) // spawn failure: there will be no 'exit'
    })
    this.helpers.set(child, exited)
    return {child, output: () => out, exited}
  }

  /** Kills a helper started with spawnIn by its pid (if it is still running) and waits for it. */
  async killHelper(h: {child: ChildProcess; exited: Promise<void>}): Promise<void> {
    if (h.child.exitCode === null && h.child.signalCode === null && h.child.pid) {
      try {
        process.kill(h.child.pid, 'SIGKILL')
      } catch {
        // already gone
      }
    }
    await h.exited
  }

  async logTail(node: Node, lines = 25): Promise<string> {
    const text = await readFile(node.logFile, 'utf8').catch(() => '')
    return text
      .split('\n')
      .slice(-lines - 1)
      .join('\n')
  }

  /** Every agent's recent log lines, for assertion messages. */
  async logs(): Promise<string> {
    const parts = await Promise.all(
      this.nodes.map(async (n) => `--- node ${n.n} (${n.ip}) agent log\n${await this.logTail(n)}`),
    )
    return parts.join('\n')
  }

  /** Where each agent's log ends now, so that a test can look at what was logged after this point. */
  logMarks(): number[] {
    return this.nodes.map((n) => statSync(n.logFile).size)
  }

  async logSince(node: Node, marks: number[]): Promise<string> {
    return (await readFile(node.logFile, 'utf8')).slice(marks[this.nodes.indexOf(node)])
  }

  /** No agent logged a failed or partial dataplane (or route) sync since `marks`. */
  async assertSyncsClean(marks: number[]): Promise<void> {
    for (const n of this.nodes) {
      const bad = (await this.logSince(n, marks))
        .split('\n')
        .filter((l) => /(dataplane|route) sync (failed|had errors)/.test(l))
      assert.deepEqual(bad, [], `node ${n.n}: every dataplane sync succeeds`)
    }
  }

  async listSubnets(): Promise<Kv[]> {
    const r = await this.etcd.etcdctl(['get', SUBNETS, '--prefix', '-w', 'json'])
    if (r.code !== 0) throw new Error(`etcdctl get: ${r.stderr}`)
    const doc = JSON.parse(r.stdout.replace(/("lease"\s*:\s*)(\d+)/g, '$1"$2"')) as {
      kvs?: Array<{key: string; value: string; lease?: string}>
    }
    const b64 = (s: string) => Buffer.from(s, 'base64').toString('utf8')
    return (doc.kvs ?? []).map((kv) => ({key: b64(kv.key), value: b64(kv.value), lease: kv.lease ?? '0'}))
  }

  async ctl(...args: string[]): Promise<string> {
    const r = await this.etcd.etcdctl(args)
    if (r.code !== 0) throw new Error(`etcdctl ${args.join(' ')} exited ${r.code}: ${r.stderr}${r.stdout}`)
    return r.stdout
  }

  /** Polls `check` every `everyMs` until it returns no problems; fails with the last problems and the logs. */
  async waitFor(what: string, deadlineMs: number, check: () => Promise<string[]>, everyMs = 50): Promise<number> {
    const t0 = performance.now()
    let last: string[]
    for (;;) {
      last = await check().catch((e: Error) => [`check failed: ${e.message}`])
      if (last.length === 0) return performance.now() - t0
      if (performance.now() - t0 > deadlineMs) break
      await sleep(everyMs)
    }
    assert.fail(`${what}: not true after ${deadlineMs} ms:\n${last.join('\n')}\n${await this.logs()}`)
  }

  async httpGet(node: Node, urlPath: string): Promise<{code: number; body: string}> {
    const r = await sh(
      'ip',
      ['netns', 'exec', node.ns.name, 'curl', '-s', '-m', '2', '-w', '\n%{http_code}', `http://${HEALTHZ}${urlPath}`],
      5000,
    )
    const i = r.stdout.lastIndexOf('\n')
    return {code: Number(r.stdout.slice(i + 1)) || 0, body: r.stdout.slice(0, Math.max(i, 0))}
  }

  async ready(nodesToCheck: Node[]): Promise<string[]> {
    const out: string[] = []
    for (const n of nodesToCheck) {
      if (n.agent?.exit) out.push(`node ${n.n}: agent exited ${JSON.stringify(n.agent.exit)}`)
      const r = await this.httpGet(n, '/readyz')
      if (r.code !== 200) out.push(`node ${n.n}: /readyz ${r.code} ${r.body}`)
    }
    return out
  }

  /** One bounded ping (2 probes, 1 s wait each) from `from`'s pod to `to`'s pod. */
  ping(from: Node, to: Node): Promise<Exec> {
    return sh(
      'ip',
      ['netns', 'exec', from.pod.name, 'ping', '-n', '-q', '-c', '2', '-i', '0.2', '-W', '1', podIP(to)],
      5000,
    )
  }

  /** Pings every ordered pair (in parallel), each with at most `attempts` tries; returns the failures. */
  async pingPairs(pairs: Array<[Node, Node]>, attempts: number): Promise<string[]> {
    const failures = await Promise.all(
      pairs.map(async ([a, b]) => {
        let r: Exec | undefined
        for (let i = 0; i < attempts; i++) {
          r = await this.ping(a, b)
          if (r.code === 0) return null
        }
        return `pod ${a.n} (${podIP(a)}) -> pod ${b.n} (${podIP(b)}): ${r!.stdout.trim()} ${r!.stderr.trim()}`
      }),
    )
    return failures.filter((f): f is string => f !== null)
  }

  /** Every ordered pair of `among` (all nodes by default). */
  allPairs(among: Node[] = this.nodes): Array<[Node, Node]> {
    return among.flatMap((a) => among.filter((b) => b !== a).map((b): [Node, Node] => [a, b]))
  }

  async readSubnetEnv(node: Node): Promise<string> {
    return readFile(node.subnetFile, 'utf8')
  }

  /** The third octet of FLANNEL_SUBNET in the node's subnet.env. */
  async subnetX(node: Node): Promise<number> {
    const m = /^FLANNEL_SUBNET=198\.19\.(\d+)\.1\/24$/m.exec(await this.readSubnetEnv(node))
    assert.ok(m, `node ${node.n}: no FLANNEL_SUBNET in 198.19.0.0/16 in ${node.subnetFile}`)
    return Number(m[1])
  }

  /** The pod namespace: eth0 198.19.X.2/24, default via 198.19.X.1 on the node's end of the veth. */
  wirePod(node: Node): void {
    node.ns.ip('link', 'add', 'vpod', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', node.pod.name)
    node.ns.ip('addr', 'add', `198.19.${node.x}.1/24`, 'dev', 'vpod')
    node.ns.ip('link', 'set', 'vpod', 'up')
    node.pod.ip('addr', 'add', `198.19.${node.x}.2/24`, 'dev', 'eth0')
    node.pod.ip('link', 'set', 'eth0', 'up')
    node.pod.ip('route', 'add', 'default', 'via', `198.19.${node.x}.1`)
  }

  /** The neighbours and FDB entries on flannel.1 and the main routing table of a node. */
  async readKernel(node: Node): Promise<Kernel> {
    const [neighs, fdb, routes] = await Promise.all([
      jsonOf<Kernel['neighs']>('ip', ['-n', node.ns.name, '-j', '-4', 'neigh', 'show', 'dev', 'flannel.1']),
      jsonOf<Kernel['fdb']>('ip', ['netns', 'exec', node.ns.name, 'bridge', '-j', 'fdb', 'show', 'dev', 'flannel.1']),
      this.routes(node),
    ])
    return {neighs, fdb, routes}
  }

  /** The main routing table of a node (IPv4). */
  routes(node: Node): Promise<Kernel['routes']> {
    return jsonOf<Kernel['routes']>('ip', ['-n', node.ns.name, '-j', '-4', 'route', 'show', 'table', 'main'])
  }

  /** flannel.1 as `ip -d -j addr show` reports it. */
  async linkOf(node: Node): Promise<IpLink> {
    const links = await jsonOf<IpLink[]>('ip', ['-n', node.ns.name, '-d', '-j', 'addr', 'show', 'dev', 'flannel.1'])
    assert.ok(links[0], `node ${node.n} has no flannel.1`)
    return links[0]
  }

  /** Agents (SIGKILL), etcd, helpers, namespaces and the temp dir. */
  async teardown(): Promise<void> {
    await Promise.allSettled(this.nodes.map((n) => this.stopAgent(n, 'SIGKILL')))
    await Promise.allSettled([...this.helpers].map(([child, exited]) => this.killHelper({child, exited})))
    await this.etcd?.stop()
    this.cleanupSync()
  }

  /** Last resort: SIGKILL every agent and helper by its pid and delete every namespace and the temp dir. */
  cleanupSync(): void {
    for (const p of [...[...this.agents].map((a) => a.pid), ...[...this.helpers.keys()].map((c) => c.pid)]) {
      if (!p) continue
      try {
        process.kill(p, 'SIGKILL')
      } catch {
        // already gone
      }
    }
    this.agents.clear()
    this.helpers.clear()
    for (const ns of this.namespaces.splice(0).reverse()) {
      try {
        ns.del()
      } catch {
        // already gone
      }
    }
    if (this.tmp) rmSync(this.tmp, {recursive: true, force: true})
    this.tmp = ''
    topologies.delete(this)
  }
}
