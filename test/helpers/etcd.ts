// Test harness that runs REAL etcd servers (Debian's /usr/bin/etcd 3.4) on
// loopback (or, with `netns`, on an address inside a network namespace) for node:test suites. Every child process this module starts is
// tracked and SIGKILLed by its own pid if the test process exits or is
// signalled, so an aborted run never leaves etcd behind.

import {execFile, spawn, type ChildProcess} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {rmSync} from 'node:fs'
import {mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import http from 'node:http'
import https from 'node:https'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

const ETCD = '/usr/bin/etcd'
const ETCDCTL = '/usr/bin/etcdctl'
const HEALTH_POLL_MS = 25
const HEALTH_DEADLINE_MS = 15_000
const STOP_DEADLINE_MS = 5_000
/** 8 GiB, so benchmarks creating ~65k leases never trip the 2 GiB default quota. */
const QUOTA_BACKEND_BYTES = '8589934592'

export interface StartEtcdOptions {
  /** Pass --enable-v2 so the v2 keys API (/v2/keys) is served. */
  enableV2?: boolean
  /** Serve clients over https with client-certificate auth (peers stay http). */
  tls?: boolean
  /** Create users root/flannel and a flannel-rw role, then `auth enable`. */
  auth?: boolean
  /**
   * Run etcd inside this network namespace (`ip netns exec NAME /usr/bin/etcd ...`); its health is probed and
   * etcdctl is run from inside the namespace too. The namespace must exist and have `host` on an interface.
   */
  netns?: string
  /** Address etcd listens on for clients and peers: 127.0.0.1 by default. */
  host?: string
  /** Client port; a free loopback port by default, 2379 inside a netns. */
  clientPort?: number
  /** Peer port; a free loopback port by default, 2380 inside a netns. */
  peerPort?: number
}

/** Paths of the PEM files generated for a TLS server. */
export interface EtcdTlsFiles {
  /** CA that signed the server and client certificates. */
  ca: string
  /** Client certificate (EKU clientAuth, CN=flannelctl-client). */
  cert: string
  /** Client private key. */
  key: string
  /** An unrelated CA, for tests that need a CA which does not verify the server. */
  wrongCa: string
  /** Directory holding all of the above (plus the server's own cert and key). */
  dir: string
}

export interface EtcdAuthInfo {
  /** Has readwrite on the /coreos.com/network/ prefix only (role flannel-rw). */
  user: string
  password: string
  rootUser: string
  rootPassword: string
}

export interface EtcdctlResult {
  stdout: string
  stderr: string
  code: number
}

export interface EtcdServer {
  /** Client URL, e.g. http://127.0.0.1:PORT (https:// when tls is on). */
  readonly endpoint: string
  /** [endpoint], for APIs that take a list. */
  readonly endpoints: string[]
  readonly clientPort: number
  readonly peerPort: number
  readonly dataDir: string
  /** Pid of the current etcd process (or of the last one, once it has exited). */
  readonly pid: number
  readonly tls?: EtcdTlsFiles
  readonly auth?: EtcdAuthInfo
  /** The network namespace etcd runs in, when started with `netns`. */
  readonly netns?: string
  /** SIGTERM, SIGKILL after 5 s, then remove the temp dir. Idempotent. */
  stop(): Promise<void>
  /** SIGKILL and wait for exit; the data dir is kept so restart() can reuse it. */
  kill(): Promise<void>
  /** Start again on the same ports and data dir (stopping first if running) and wait until healthy. */
  restart(): Promise<void>
  /** Run etcdctl (API v3) against this member, with TLS flags and root credentials as needed. */
  etcdctl(args: string[], input?: string): Promise<EtcdctlResult>
}

export interface EtcdCluster {
  readonly members: EtcdServer[]
  readonly endpoints: string[]
  /** Stop every member (one after another) and remove their temp dirs. */
  stop(): Promise<void>
}

// ---------------------------------------------------------------------------
// Last-resort cleanup

const liveProcesses = new Set<ChildProcess>()
const liveDirs = new Set<string>()

function killEverything(): void {
  for (const child of liveProcesses) {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(child.pid, 'SIGKILL')
      } catch {
        // already gone
      }
    }
  }
  liveProcesses.clear()
  for (const dir of liveDirs) rmSync(dir, {recursive: true, force: true})
  liveDirs.clear()
}

process.once('exit', killEverything)
// 'exit' does not fire when a signal's default action terminates the process
// (e.g. the test runner cancelling a file with SIGTERM), so handle those too.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    killEverything()
    // Keep the default behaviour (die by this signal) unless someone else handles it.
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal)
  })
}

// ---------------------------------------------------------------------------
// Small utilities

/** Run a program (no shell), tracked for cleanup; resolves with its exit code. */
function run(
  file: string,
  args: string[],
  opts: {input?: string; env?: NodeJS.ProcessEnv} = {},
): Promise<EtcdctlResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      {env: opts.env ?? process.env, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024},
      (err, stdout, stderr) => {
        liveProcesses.delete(child)
        // A string code (ENOENT, ...) means it never ran; a signal means no exit code.
        if (err && typeof err.code !== 'number' && !err.signal) return reject(err)
        resolve({stdout, stderr, code: err ? (typeof err.code === 'number' ? err.code : 128) : 0})
      },
    )
    liveProcesses.add(child)
    // A program that exits without reading stdin makes writes fail with EPIPE;
    // that is not an error of ours (the exit code tells the story).
    child.stdin?.on('error', () => {})
    if (opts.input === undefined) child.stdin?.end()
    else child.stdin?.end(opts.input)
  })
}

async function mustRun(
  file: string,
  args: string[],
  opts?: {input?: string; env?: NodeJS.ProcessEnv},
): Promise<string> {
  const res = await run(file, args, opts)
  if (res.code !== 0)
    throw new Error(`${path.basename(file)} ${args.join(' ')} exited ${res.code}: ${res.stderr || res.stdout}`)
  return res.stdout
}

/** Reserve n distinct free loopback ports (all held open at once, then released). */
async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      {length: n},
      () =>
        new Promise<net.Server>((resolve, reject) => {
          const server = net.createServer()
          server.once('error', reject)
          server.listen(0, '127.0.0.1', () => resolve(server))
        }),
    ),
  )
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port)
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))))
  return ports
}

async function makeTempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'flannelctl-etcd-'))
  liveDirs.add(dir)
  return dir
}

// ---------------------------------------------------------------------------
// TLS material

const opensslConfig = (host: string) => `[req]
distinguished_name = dn
prompt = no
[dn]
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost${host === '127.0.0.1' ? '' : `,IP:${host}`}
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
`

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']

interface GeneratedTls extends EtcdTlsFiles {
  serverCert: string
  serverKey: string
}

async function generateTls(dir: string, host = '127.0.0.1'): Promise<GeneratedTls> {
  await mkdir(dir, {recursive: true})
  const cnf = path.join(dir, 'openssl.cnf')
  await writeFile(cnf, opensslConfig(host))
  const f = (name: string) => path.join(dir, name)

  const makeCa = (name: string, cn: string) =>
    mustRun('openssl', [
      'req',
      '-x509',
      '-config',
      cnf,
      '-extensions',
      'ca',
      ...EC_KEY,
      '-keyout',
      f(`${name}.key`),
      '-out',
      f(`${name}.crt`),
      '-subj',
      `/CN=${cn}`,
      '-days',
      '7',
    ])
  const makeLeaf = async (name: string, cn: string) => {
    await mustRun('openssl', [
      'req',
      '-new',
      '-config',
      cnf,
      ...EC_KEY,
      '-keyout',
      f(`${name}.key`),
      '-out',
      f(`${name}.csr`),
      '-subj',
      `/CN=${cn}`,
    ])
    await mustRun('openssl', [
      'x509',
      '-req',
      '-in',
      f(`${name}.csr`),
      '-CA',
      f('ca.crt'),
      '-CAkey',
      f('ca.key'),
      '-set_serial',
      `0x${randomBytes(8).toString('hex')}`,
      '-days',
      '7',
      '-sha256',
      '-extfile',
      cnf,
      '-extensions',
      name,
      '-out',
      f(`${name}.crt`),
    ])
  }

  await Promise.all([makeCa('ca', 'flannelctl-test-ca'), makeCa('wrong-ca', 'flannelctl-wrong-ca')])
  await Promise.all([makeLeaf('server', 'localhost'), makeLeaf('client', 'flannelctl-client')])
  return {
    ca: f('ca.crt'),
    cert: f('client.crt'),
    key: f('client.key'),
    wrongCa: f('wrong-ca.crt'),
    dir,
    serverCert: f('server.crt'),
    serverKey: f('server.key'),
  }
}

// ---------------------------------------------------------------------------
// One etcd member

interface MemberConfig {
  name: string
  dir: string
  clientPort: number
  peerPort: number
  /** `--initial-cluster` value (name=peerURL,...). */
  initialCluster: string
  clusterToken: string
  enableV2: boolean
  tls?: GeneratedTls
  /** Raft timing overrides (ms); etcd's defaults (100/1000) when absent. */
  raftTiming?: {heartbeat: number; election: number}
  /** Listen address for clients and peers (127.0.0.1 unless set). */
  host?: string
  /** Network namespace to run in (`ip netns exec`). */
  netns?: string
}

const ROOT_AUTH = {user: 'flannel', password: 'flpw', rootUser: 'root', rootPassword: 'rootpw'} as const

class EtcdMember implements EtcdServer {
  readonly endpoint: string
  readonly endpoints: string[]
  readonly clientPort: number
  readonly peerPort: number
  readonly dataDir: string
  readonly tls?: EtcdTlsFiles
  readonly netns?: string
  auth?: EtcdAuthInfo

  private child?: ChildProcess
  private exited: Promise<void> = Promise.resolve()
  private lastPid = 0
  private removed = false
  private readonly logFile: string
  private readonly tlsFiles?: {ca: Buffer; cert: Buffer; key: Buffer}

  constructor(
    private readonly cfg: MemberConfig,
    tlsBuffers?: {ca: Buffer; cert: Buffer; key: Buffer},
  ) {
    this.clientPort = cfg.clientPort
    this.peerPort = cfg.peerPort
    this.netns = cfg.netns
    this.endpoint = `${cfg.tls ? 'https' : 'http'}://${this.host}:${cfg.clientPort}`
    this.endpoints = [this.endpoint]
    this.dataDir = path.join(cfg.dir, 'data')
    this.logFile = path.join(cfg.dir, 'etcd.log')
    if (cfg.tls) {
      const {ca, cert, key, wrongCa, dir} = cfg.tls
      this.tls = {ca, cert, key, wrongCa, dir}
    }
    this.tlsFiles = tlsBuffers
  }

  get pid(): number {
    return this.lastPid
  }

  private get host(): string {
    return this.cfg.host ?? '127.0.0.1'
  }

  /** [file, args] to run a program here, through `ip netns exec` when etcd lives in a namespace. */
  private inNetns(file: string, args: string[]): [string, string[]] {
    return this.cfg.netns ? ['ip', ['netns', 'exec', this.cfg.netns, file, ...args]] : [file, args]
  }

  /** Spawn etcd (not waiting for health). */
  spawn(): void {
    const {cfg} = this
    const peerUrl = `http://${this.host}:${cfg.peerPort}`
    const args = [
      '--name',
      cfg.name,
      '--data-dir',
      this.dataDir,
      '--listen-client-urls',
      this.endpoint,
      '--advertise-client-urls',
      this.endpoint,
      '--listen-peer-urls',
      peerUrl,
      '--initial-advertise-peer-urls',
      peerUrl,
      '--initial-cluster',
      cfg.initialCluster,
      '--initial-cluster-state',
      'new',
      '--initial-cluster-token',
      cfg.clusterToken,
      '--quota-backend-bytes',
      QUOTA_BACKEND_BYTES,
      '--logger=zap',
      `--log-outputs=${this.logFile}`,
    ]
    if (cfg.raftTiming) {
      args.push(
        '--heartbeat-interval',
        String(cfg.raftTiming.heartbeat),
        '--election-timeout',
        String(cfg.raftTiming.election),
      )
    }
    if (cfg.enableV2) args.push('--enable-v2')
    if (cfg.tls) {
      args.push(
        '--cert-file',
        cfg.tls.serverCert,
        '--key-file',
        cfg.tls.serverKey,
        '--trusted-ca-file',
        cfg.tls.ca,
        '--client-cert-auth',
      )
    }
    // stdio is ignored (logs go to etcd.log) and the child is unref'd, so a test
    // that forgets stop() cannot hang the runner; the exit hook kills it instead.
    // `ip netns exec` execs etcd in place (no fork), so the pid is etcd's own.
    const child = spawn(...this.inNetns(ETCD, args), {stdio: 'ignore'})
    child.unref()
    liveProcesses.add(child)
    this.child = child
    this.lastPid = child.pid ?? 0
    this.exited = new Promise((resolve) => {
      const done = () => {
        liveProcesses.delete(child)
        if (this.child === child) this.child = undefined
        resolve()
      }
      child.once('exit', done)
      child.once('error', done) // spawn failure: there will be no 'exit'
    })
  }

  /** Poll /health every 25 ms until it reports healthy; fail fast if etcd exits. */
  async waitHealthy(): Promise<void> {
    const deadline = Date.now() + HEALTH_DEADLINE_MS
    const child = this.child
    let exited = false
    void this.exited.then(() => (exited = true))
    while (Date.now() < deadline) {
      if (exited || !child)
        throw new Error(`etcd ${this.cfg.name} exited before becoming healthy\n${await this.logTail()}`)
      if (await this.probe()) return
      await sleep(HEALTH_POLL_MS)
    }
    throw new Error(`etcd ${this.cfg.name} not healthy after ${HEALTH_DEADLINE_MS} ms\n${await this.logTail()}`)
  }

  /** One GET /health; with TLS it presents the client cert. etcd tolerates missing auth here. */
  private probe(): Promise<boolean> {
    if (this.cfg.netns) return this.probeInNetns()
    return new Promise((resolve) => {
      const options = {host: '127.0.0.1', port: this.clientPort, path: '/health', agent: false, timeout: 1000} as const
      const onResponse = (res: http.IncomingMessage) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => (body += chunk))
        res.on('end', () => {
          try {
            resolve(res.statusCode === 200 && (JSON.parse(body) as {health?: string}).health === 'true')
          } catch {
            resolve(false)
          }
        })
        res.on('error', () => resolve(false))
      }
      const req = this.tlsFiles ? https.get({...options, ...this.tlsFiles}, onResponse) : http.get(options, onResponse)
      req.on('timeout', () => req.destroy())
      req.on('error', () => resolve(false))
    })
  }

  /** The same probe from inside the namespace, with curl (this process cannot open sockets there). */
  private async probeInNetns(): Promise<boolean> {
    const tls = this.cfg.tls
      ? ['--cacert', this.cfg.tls.ca, '--cert', this.cfg.tls.cert, '--key', this.cfg.tls.key]
      : []
    const res = await run(...this.inNetns('curl', ['-s', '-m', '1', ...tls, `${this.endpoint}/health`])).catch(
      () => null,
    )
    if (!res || res.code !== 0) return false
    try {
      return (JSON.parse(res.stdout) as {health?: string}).health === 'true'
    } catch {
      return false
    }
  }

  private async logTail(): Promise<string> {
    const log = await readFile(this.logFile, 'utf8').catch(() => '')
    return log.slice(-4000)
  }

  /** Send a signal to our own child and wait (up to `deadlineMs`, then SIGKILL) for it to exit. */
  private async terminate(signal: NodeJS.Signals, deadlineMs = STOP_DEADLINE_MS): Promise<void> {
    const child = this.child
    if (!child) return
    // The child is unref'd; re-ref it so the event loop stays alive until it has exited.
    child.ref()
    child.kill(signal)
    const timer = new AbortController()
    const timedOut = await Promise.race([
      this.exited.then(() => false),
      sleep(deadlineMs, true, {signal: timer.signal}).catch(() => false),
    ])
    timer.abort()
    if (timedOut) {
      child.kill('SIGKILL')
      await this.exited
    }
  }

  async stop(): Promise<void> {
    await this.terminate('SIGTERM')
    if (this.removed) return
    this.removed = true
    await rm(this.cfg.dir, {recursive: true, force: true})
    liveDirs.delete(this.cfg.dir)
  }

  async kill(): Promise<void> {
    await this.terminate('SIGKILL')
  }

  async restart(): Promise<void> {
    if (this.removed) throw new Error(`etcd ${this.cfg.name} was stopped and its data dir removed`)
    await this.terminate('SIGTERM')
    this.spawn()
    await this.waitHealthy()
  }

  etcdctl(args: string[], input?: string): Promise<EtcdctlResult> {
    const flags = [`--endpoints=${this.endpoint}`]
    if (this.tls) flags.push(`--cacert=${this.tls.ca}`, `--cert=${this.tls.cert}`, `--key=${this.tls.key}`)
    if (this.auth) flags.push(`--user=${this.auth.rootUser}:${this.auth.rootPassword}`)
    return run(...this.inNetns(ETCDCTL, [...flags, ...args]), {input, env: {...process.env, ETCDCTL_API: '3'}})
  }

  /** Create root + flannel users and the flannel-rw role, then enable auth. */
  async enableAuth(): Promise<void> {
    const ctl = async (...args: string[]) => {
      const res = await this.etcdctl(args)
      if (res.code !== 0) throw new Error(`etcdctl ${args.join(' ')} failed: ${res.stderr}`)
    }
    const {user, password, rootUser, rootPassword} = ROOT_AUTH
    // Three rounds of independent etcdctl calls instead of eight sequential ones.
    await Promise.all([
      ctl('role', 'add', 'root'),
      ctl('role', 'add', 'flannel-rw'),
      ctl('user', 'add', `${rootUser}:${rootPassword}`),
      ctl('user', 'add', `${user}:${password}`),
    ])
    await Promise.all([
      ctl('user', 'grant-role', rootUser, 'root'),
      ctl('user', 'grant-role', user, 'flannel-rw'),
      ctl('role', 'grant-permission', 'flannel-rw', '--prefix=true', 'readwrite', '/coreos.com/network/'),
    ])
    await ctl('auth', 'enable')
    this.auth = {...ROOT_AUTH} // from now on etcdctl() authenticates as root
  }
}

// ---------------------------------------------------------------------------
// Public entry points

/** Spawn all members concurrently and wait until every one is healthy; clean up on failure. */
async function launch(members: EtcdMember[]): Promise<void> {
  try {
    for (const m of members) m.spawn()
    await Promise.all(members.map((m) => m.waitHealthy()))
  } catch (err) {
    await Promise.allSettled(members.map((m) => m.stop()))
    throw err
  }
}

/**
 * Even a lone member waits out a randomized election timeout before it serves:
 * up to ~1.1 s on a fresh start and 1-2 s on restart with etcd's defaults. A
 * single voter can never lose leadership, so short timeouts are safe there and
 * bring start/restart down to ~0.1-0.2 s. Clusters keep etcd's defaults so a
 * loaded machine does not cause spurious elections.
 */
const SINGLE_MEMBER_RAFT_TIMING = {heartbeat: 10, election: 100}

const clusterToken = () => `flannelctl-${randomBytes(6).toString('hex')}`

/**
 * Start a single etcd member on free loopback ports and wait until it is healthy. With `netns` it runs inside that
 * network namespace on `host` (ports 2379/2380 unless given).
 */
export async function startEtcd(opts: StartEtcdOptions = {}): Promise<EtcdServer> {
  const host = opts.host ?? '127.0.0.1'
  const fixed = opts.netns ? [opts.clientPort ?? 2379, opts.peerPort ?? 2380] : [opts.clientPort, opts.peerPort]
  const needFree = fixed.filter((p) => p === undefined).length
  const [dir, free] = await Promise.all([makeTempDir(), needFree > 0 ? freePorts(needFree) : Promise.resolve([])])
  const clientPort = fixed[0] ?? free.shift()
  const peerPort = fixed[1] ?? free.shift()
  let tls: GeneratedTls | undefined
  let tlsBuffers: {ca: Buffer; cert: Buffer; key: Buffer} | undefined
  try {
    if (opts.tls) {
      tls = await generateTls(path.join(dir, 'tls'), host)
      const [ca, cert, key] = await Promise.all([readFile(tls.ca), readFile(tls.cert), readFile(tls.key)])
      tlsBuffers = {ca, cert, key}
    }
  } catch (err) {
    await rm(dir, {recursive: true, force: true})
    liveDirs.delete(dir)
    throw err
  }
  const name = 'etcd0'
  const member = new EtcdMember(
    {
      name,
      dir,
      clientPort: clientPort!,
      peerPort: peerPort!,
      initialCluster: `${name}=http://${host}:${peerPort}`,
      clusterToken: clusterToken(),
      enableV2: opts.enableV2 ?? false,
      tls,
      raftTiming: SINGLE_MEMBER_RAFT_TIMING,
      host,
      netns: opts.netns,
    },
    tlsBuffers,
  )
  await launch([member])
  if (opts.auth) {
    try {
      await member.enableAuth()
    } catch (err) {
      await member.stop()
      throw err
    }
  }
  return member
}

/** Start a `size`-member plain-http cluster on loopback and wait until all members are healthy. */
export async function startEtcdCluster(size = 3): Promise<EtcdCluster> {
  const [ports, dirs] = await Promise.all([
    freePorts(2 * size),
    Promise.all(Array.from({length: size}, () => makeTempDir())),
  ])
  const names = dirs.map((_, i) => `etcd${i}`)
  const initialCluster = names.map((n, i) => `${n}=http://127.0.0.1:${ports[2 * i + 1]}`).join(',')
  const token = clusterToken()
  const members = dirs.map(
    (dir, i) =>
      new EtcdMember({
        name: names[i]!,
        dir,
        clientPort: ports[2 * i]!,
        peerPort: ports[2 * i + 1]!,
        initialCluster,
        clusterToken: token,
        enableV2: false,
      }),
  )
  await launch(members)
  return {
    members,
    endpoints: members.map((m) => m.endpoint),
    async stop() {
      // One at a time: SIGTERMing all members at once makes the leader try to
      // hand leadership to a member that is itself shutting down, which stalls
      // until the 5 s deadline. Sequentially it takes tens of milliseconds.
      for (const m of members) await m.stop()
    },
  }
}

/**
 * The member that says it is the leader (`endpoint status -w simple`: "<endpoint>, <id>, <version>, <db size>,
 * <is leader>, ..."), polled every 100 ms until `ms` has passed.
 */
export async function waitForLeader(members: readonly EtcdServer[], ms: number): Promise<EtcdServer> {
  const deadline = performance.now() + ms
  let last = ''
  while (performance.now() < deadline) {
    const statuses = await Promise.all(members.map((m) => m.etcdctl(['endpoint', 'status', '-w', 'simple'])))
    const i = statuses.findIndex((s) => s.stdout.split(', ')[4] === 'true')
    if (i >= 0) return members[i]!
    last = statuses.map((s) => s.stdout + s.stderr).join('\n')
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`no leader among ${members.length} members after ${ms} ms:\n${last}`)
}
