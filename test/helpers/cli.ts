// Runs the built CLI (bin/run.js, which loads dist/) as a real child process, the way an operator would.
// The test script builds first (`npm run build`), so dist/ is assumed to be current.

import {execFile} from 'node:child_process'
import {existsSync, realpathSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
export const RUN_JS = path.join(ROOT, 'bin', 'run.js')

export interface CliResult {
  stdout: string
  stderr: string
  /** The process exit code (128 + signal number when killed by a signal). */
  code: number
  /** Wall time from spawn to exit, in milliseconds. */
  ms: number
}

export interface CliOptions {
  /** Extra environment variables (on top of a cleaned copy of process.env). */
  env?: Record<string, string | undefined>
  /** Written to the child's stdin, which is then closed (stdin is always closed, never inherited). */
  input?: string
  /** Working directory; the repository root by default. */
  cwd?: string
  /** Kill the CLI after this many ms (a hang is a failure, not a stuck suite). Default 30 s. */
  timeoutMs?: number
  /**
   * How the CLI is started: 'bin' (default) executes bin/run.js itself, as the npm bin link and PATH do (its sh
   * launcher re-executes node, see bin/run.js); 'node' runs `node bin/run.js`.
   */
  launch?: 'bin' | 'node'
}

/** [file, args] that start the CLI as `launch` says, and the environment for it (node first on PATH for 'bin'). */
export function cliCommand(
  args: string[],
  launch: 'bin' | 'node' = 'bin',
  env: NodeJS.ProcessEnv = cleanEnv(),
): {file: string; args: string[]; env: NodeJS.ProcessEnv} {
  if (launch === 'node') return {file: process.execPath, args: [RUN_JS, ...args], env}
  // The launcher runs the first `node` on PATH: make it this one (unless it already is).
  const PATH = env.PATH ?? '/usr/bin:/bin'
  const first = PATH.split(':').find((d) => d !== '' && existsSync(path.join(d, 'node')))
  const same = first !== undefined && realpathSync(path.join(first, 'node')) === realpathSync(process.execPath)
  return {file: RUN_JS, args, env: same ? env : {...env, PATH: `${path.dirname(process.execPath)}:${PATH}`}}
}

/** Prefixes of variables that change what the CLI connects to; never inherited from the developer's shell. */
const SCRUBBED = /^(ETCDCTL_|FLANNELD_|FLANNELCTL_)/

/** A copy of process.env without ETCDCTL_*, FLANNELD_*, FLANNELCTL_*, DEBUG or colour forcing, plus NO_COLOR=1. */
export function cleanEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (SCRUBBED.test(k) || k === 'DEBUG' || k === 'FORCE_COLOR' || k === 'NODE_OPTIONS' || k.startsWith('NODE_TEST'))
      continue
    env[k] = v
  }
  env.NO_COLOR = '1'
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k]
    else env[k] = v
  }
  return env
}

/**
 * At most this many CLI processes run at once per test file (each costs ~0.5 s of CPU to start), so tests can fire
 * many runs concurrently without starving each other past the CLI's own timeouts. Queued runs start their clock
 * (`ms`) only when spawned.
 */
const MAX_CONCURRENT = Math.max(2, Number(process.env.FLANNELCTL_TEST_CLI_CONCURRENCY) || os.availableParallelism() + 1)
let running = 0
const waiting: Array<() => void> = []

async function withSlot<T>(fn: () => Promise<T>): Promise<T> {
  if (running < MAX_CONCURRENT) running++
  else await new Promise<void>((resolve) => waiting.push(resolve)) // a finishing run hands its slot over
  try {
    return await fn()
  } finally {
    const next = waiting.shift()
    if (next) next()
    else running--
  }
}

/** `bin/run.js ...args` (or `node bin/run.js ...args`) with a clean environment; resolves (never rejects) with its output and exit code. */
export function runCli(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  return withSlot(() => spawnCli(args, opts))
}

function spawnCli(args: string[], opts: CliOptions): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now()
    const cmd = cliCommand(args, opts.launch, cleanEnv(opts.env))
    const child = execFile(
      cmd.file,
      cmd.args,
      {
        cwd: opts.cwd ?? ROOT,
        env: cmd.env,
        encoding: 'utf8',
        maxBuffer: 64 * 1024 * 1024,
        timeout: opts.timeoutMs ?? 30_000,
        killSignal: 'SIGKILL',
      },
      (err, stdout, stderr) => {
        const ms = performance.now() - t0
        if (err && typeof err.code !== 'number' && !err.signal) return reject(err)
        const code = !err ? 0 : typeof err.code === 'number' ? err.code : 128 + (err.signal === 'SIGKILL' ? 9 : 15)
        resolve({stdout, stderr, code, ms})
      },
    )
    // A CLI that exits without reading stdin (a usage error, found before anything is read) closes the pipe first:
    // EPIPE on our side is its business, not a test failure.
    child.stdin?.on('error', () => {})
    child.stdin?.end(opts.input ?? '')
  })
}

/** Parses stdout as JSON, failing with the whole output (stdout and stderr) when it is not. */
export function json<T = any>(r: CliResult): T {
  try {
    return JSON.parse(r.stdout) as T
  } catch {
    throw new Error(`stdout is not JSON (exit ${r.code}):\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`)
  }
}

/** A one-line summary of a run, for assertion messages. */
export function show(r: CliResult): string {
  return `exit ${r.code} after ${Math.round(r.ms)} ms\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`
}

// ---------------------------------------------------------------------------
// Seeding etcd exactly as flanneld writes it (docs/flannel.md §1.4, §1.8, §2), through the harness's etcdctl.

/** The part of the etcd harness these helpers need (an EtcdServer or one cluster member). */
export interface Etcdctl {
  etcdctl(args: string[], input?: string): Promise<{stdout: string; stderr: string; code: number}>
}

async function ctl(etcd: Etcdctl, args: string[], input?: string): Promise<string> {
  const r = await etcd.etcdctl(args, input)
  if (r.code !== 0) throw new Error(`etcdctl ${args.join(' ')} exited ${r.code}: ${r.stderr}${r.stdout}`)
  return r.stdout
}

/** flanneld's vxlan lease value, byte for byte (json.Marshal of LeaseAttrs). */
export function vxlanValue(publicIP: string, vtepMAC: string, vni = 1): string {
  return `{"PublicIP":"${publicIP}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":${vni},"VtepMAC":"${vtepMAC}"}}`
}

/** flanneld's host-gw lease value (no BackendData). */
export function hostGwValue(publicIP: string): string {
  return `{"PublicIP":"${publicIP}","PublicIPv6":null,"BackendType":"host-gw"}`
}

export interface Granted {
  /** As etcdctl prints it: hex without 0x. */
  hex: string
  /** As etcd's JSON and flannelctl's --json print it: the int64 in decimal. */
  id: string
}

/** `etcdctl lease grant TTL` (flanneld: Grant(ctx, 86400)). */
export async function grantLease(etcd: Etcdctl, ttlSeconds = 86_400): Promise<Granted> {
  const out = await ctl(etcd, ['lease', 'grant', String(ttlSeconds)])
  const m = /lease ([0-9a-f]+) granted with TTL\((\d+)s\)/.exec(out)
  if (!m) throw new Error(`unexpected etcdctl lease grant output: ${out}`)
  return {hex: m[1]!, id: BigInt(`0x${m[1]}`).toString()}
}

/**
 * Writes a subnet key as flanneld does: a fresh 24 h etcd lease and a put with it. `lease: null` writes a
 * reservation (a plain put, no lease). Returns the granted lease, or null for a reservation.
 */
export async function putSubnet(
  etcd: Etcdctl,
  key: string,
  value: string,
  o: {lease?: number | null} = {},
): Promise<Granted | null> {
  if (o.lease === null) {
    await ctl(etcd, ['put', key, value])
    return null
  }
  const lease = await grantLease(etcd, o.lease ?? 86_400)
  await ctl(etcd, ['put', `--lease=${lease.hex}`, key, value])
  return lease
}

/** A plain put (config keys, junk). */
export async function putKey(etcd: Etcdctl, key: string, value: string): Promise<void> {
  await ctl(etcd, ['put', key, value])
}

export interface EtcdctlKv {
  key: string
  value: string
  createRevision: string
  modRevision: string
  version: string
  lease: string
}

/** `etcdctl get KEY -w json`, decoded; null when the key does not exist. Lease IDs are kept exact. */
export async function getKey(etcd: Etcdctl, key: string): Promise<EtcdctlKv | null> {
  const text = await ctl(etcd, ['get', key, '-w', 'json'])
  const safe = text.replace(/("(?:lease|cluster_id|member_id)"\s*:\s*)(\d+)/g, '$1"$2"')
  const doc = JSON.parse(safe) as {kvs?: Array<Record<string, string | number>>}
  const kv = doc.kvs?.[0]
  if (!kv) return null
  const b64 = (s: unknown) => Buffer.from(typeof s === 'string' ? s : '', 'base64').toString('utf8')
  return {
    key: b64(kv.key),
    value: b64(kv.value),
    createRevision: String(kv.create_revision),
    modRevision: String(kv.mod_revision),
    version: String(kv.version),
    lease: String(kv.lease ?? '0'),
  }
}

/** The current revision of the store (`etcdctl get / -w json` header). */
export async function currentRevision(etcd: Etcdctl): Promise<string> {
  const text = await ctl(etcd, ['get', '/', '-w', 'json'])
  const m = /"revision":(\d+)/.exec(text)
  if (!m) throw new Error(`no revision in ${text}`)
  return m[1]!
}
