// Benchmark of `flannelctl leases ls` against etcdctl on the same data, in the same run.
//
//   node --import tsx bench/leases-ls.ts [--sizes 5,5000,65535] [--runs 5] [--sweep-concurrency 64]
//                                        [--child-timeout 120] [--budget 2400] [--cli bin/run.js] [--node-arg OPT]... [--out FILE]
//                                        [--baseline-cli OTHER/bin/run.js] [--skip C,D] [--no-extra-ca]
//
// For each size it starts a fresh etcd (test/helpers/etcd.ts: temp dir, free loopback ports), writes the network
// config and N subnet leases exactly as flanneld does (10.0.0.0/8, SubnetLen 24, subnets 10.0.1.0/24 upwards, each
// key bound to its own 24h etcd lease), then measures, round by round (A, B, C, D) after one untimed warm-up round:
//   A  <cli> leases ls --json --no-ttl --endpoints EP (the bin executed itself, as users run it; `node OPTS <cli>`
//      with --node-arg); with --no-extra-ca, A, A0 and C run without the environment's NODE_EXTRA_CA_CERTS
//   B  etcdctl --endpoints EP get --prefix /coreos.com/network/subnets -w json
//   C  <cli> leases ls --json --endpoints EP
//   D  bench/h2-floor.ts ttl: the floor for TTLs, a minimal node:http2 gRPC client with hand-coded messages
//      sweeping LeaseTimeToLive over the same lease IDs, 64 in flight (sweep time only, connection up)
//   E  bench/h2-floor.ts range: the same client's one Range over the subnets, decoded (range time only)
//   A0 with --baseline-cli: A for another build (the tree before a change), in the same rounds; its output must be
//      byte-identical to A's (checked after the warm-up round)
// --skip drops measures from the rounds (e.g. C,D: the TTL listing and its floor take minutes at 65,535) and their
// targets from the verdicts.
// and checks (issue 12): A <= 6 x B below 1,000 leases, <= 3 x B below 10,000, <= 2 x B above; C <= 1.2 x D at 65,535 leases;
// peak RSS of A and C <= 300 MB at 65,535 leases. (bench/ttl-sweep.ts, the etcd3 sweep, was the old "floor".) stdout of every
// command goes to a file, never through a pipe into this process. A command that does not exit within
// --child-timeout is killed (its own process group), counted as a failure and not run again at that size.
// Needs a built CLI (npm run build). Exit status: 0 all targets met, 1 a target missed, 2 usage, 3 the run failed.

import {execFileSync} from 'node:child_process'
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {performance} from 'node:perf_hooks'
import {fileURLToPath} from 'node:url'

import {Etcd3} from 'etcd3'

import {startEtcd, type EtcdServer} from '../test/helpers/etcd.js'
import {
  cleanEnv,
  cliArgv,
  HAVE_GNU_TIME,
  leaseEntry,
  machine,
  measure,
  type Measured,
  median,
  ms,
  pool,
  table,
  TimeoutError,
  withDeadline,
} from './util.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const FLOOR = path.join(ROOT, 'bench', 'h2-floor.ts')
const ETCDCTL = '/usr/bin/etcdctl'
const PREFIX = '/coreos.com/network'
const CONFIG = '{"Network":"10.0.0.0/8","Backend":{"Type":"vxlan"}}'
const LEASE_TTL_S = 86_400
const LOAD_CONCURRENCY = 256
const RSS_LIMIT_BYTES = 300e6 // 300 MB (decimal)

// --------------------------------------------------------------------------------------------------------------
// Arguments

interface Options {
  sizes: number[]
  runs: number
  sweepConcurrency: number
  childTimeoutS: number
  budgetS: number
  cli: string
  /** Extra node options for A and C (e.g. --max-old-space-size=256), to try launch-time settings. */
  nodeArgs: string[]
  out?: string
  /** Another build whose `leases ls --json --no-ttl` is measured beside A (A0). */
  baselineCli?: string
  skip: Set<string>
  /** A, A0 and C run without the environment's NODE_EXTRA_CA_CERTS. */
  noExtraCa: boolean
}

const USAGE =
  'usage: node --import tsx bench/leases-ls.ts [--sizes 5,5000,65535] [--runs 5] [--sweep-concurrency 64] [--child-timeout 120] [--budget 2400] [--cli bin/run.js] [--node-arg OPTION]... [--out FILE] [--baseline-cli OTHER/bin/run.js] [--skip C,D] [--no-extra-ca]'

function usage(msg: string): never {
  process.stderr.write(`leases-ls bench: ${msg}\n${USAGE}\n`)
  process.exit(2)
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    sizes: [5, 5000, 65_535],
    runs: 5,
    sweepConcurrency: 64,
    childTimeoutS: 120,
    budgetS: 2400,
    cli: path.join(ROOT, 'bin', 'run.js'),
    nodeArgs: [],
    skip: new Set(),
    noExtraCa: false,
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    const eq = a.indexOf('=')
    const [flag, inline] = a.startsWith('--') && eq > 0 ? [a.slice(0, eq), a.slice(eq + 1)] : [a, undefined]
    const val = () => inline ?? argv[++i] ?? usage(`${flag} needs a value`)
    if (flag === '--sizes')
      o.sizes = val()
        .split(',')
        .map((s) => Number(s.trim()))
    else if (flag === '--runs') o.runs = Number(val())
    else if (flag === '--sweep-concurrency') o.sweepConcurrency = Number(val())
    else if (flag === '--child-timeout') o.childTimeoutS = Number(val())
    else if (flag === '--budget') o.budgetS = Number(val())
    else if (flag === '--cli') o.cli = path.resolve(val())
    else if (flag === '--node-arg') o.nodeArgs.push(val())
    else if (flag === '--out') o.out = val()
    else if (flag === '--baseline-cli') o.baselineCli = path.resolve(val())
    else if (flag === '--skip')
      o.skip = new Set(
        val()
          .split(',')
          .map((x) => x.trim().toUpperCase()),
      )
    else if (flag === '--no-extra-ca') o.noExtraCa = true
    else if (flag === '--help' || flag === '-h') {
      process.stdout.write(USAGE + '\n')
      process.exit(0)
    } else usage(`unknown argument ${a}`)
  }
  if (o.sizes.length === 0 || o.sizes.some((n) => !Number.isInteger(n) || n < 1 || n > 65_535))
    usage('--sizes: integers in [1, 65535]')
  if (!Number.isInteger(o.runs) || o.runs < 1 || o.runs > 100) usage('--runs: an integer in [1, 100]')
  if (!Number.isInteger(o.sweepConcurrency) || o.sweepConcurrency < 1 || o.sweepConcurrency > 4096)
    usage('--sweep-concurrency: 1..4096')
  if (!(o.childTimeoutS > 0 && o.childTimeoutS <= 3600)) usage('--child-timeout: seconds in (0, 3600]')
  if (!(o.budgetS > 0 && o.budgetS <= 86_400)) usage('--budget: seconds in (0, 86400]')
  if ([...o.skip].some((n) => !['C', 'D', 'E'].includes(n))) usage('--skip: a list of C, D, E')
  return o
}

// --------------------------------------------------------------------------------------------------------------
// Workload

/** Writes the config and `size` leases (one 24h lease grant + one put each, LOAD_CONCURRENCY in flight); returns lease IDs. */
async function loadWorkload(endpoint: string, size: number): Promise<string[]> {
  const client = new Etcd3({
    hosts: endpoint,
    grpcOptions: {'grpc.max_receive_message_length': 1 << 30, 'grpc.max_send_message_length': 1 << 30},
  })
  try {
    await client.kv.put({key: Buffer.from(`${PREFIX}/config`), value: Buffer.from(CONFIG)})
    const ids: string[] = new Array(size)
    const deadline = () => ({deadline: Date.now() + 30_000})
    await pool(size, LOAD_CONCURRENCY, async (i) => {
      const {key, value} = leaseEntry(i + 1)
      const {ID} = await client.leaseClient.leaseGrant({TTL: LEASE_TTL_S}, deadline())
      await client.kv.put({key: Buffer.from(key), value: Buffer.from(value), lease: ID}, deadline())
      ids[i] = ID
    })
    return ids
  } finally {
    client.close()
  }
}

// --------------------------------------------------------------------------------------------------------------
// One size

type Name = 'A' | 'A0' | 'B' | 'C' | 'D' | 'E'

interface SizeResult {
  size: number
  loadMs: number
  runs: number
  /** Commands that were killed after --child-timeout (not run again at this size). */
  timedOut: Set<Name>
  A: Measured[]
  A0: Measured[]
  B: Measured[]
  C: Measured[]
  /** TimeToLive sweep times of the node:http2 floor (in-process, connection already up). */
  D: number[]
  /** Range times of the node:http2 floor (in-process, connection already up). */
  E: number[]
  /** Wall time of the sweep child process, for reference. */
  Dproc: Measured[]
  loadavg: {before: string; after: string}
}

function expectOk(what: string, m: Measured): void {
  if (m.code !== 0) throw new Error(`${what} exited ${m.code}: ${m.stderr.slice(0, 2000)}`)
}

const loadavg = () =>
  os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')

/** Checks each finished warm-up output: every lease listed, none malformed, TTLs present exactly where asked for. */
async function checkOutput(name: Name, file: string, size: number): Promise<void> {
  const text = await readFile(file, 'utf8')
  if (name === 'B') {
    const b = JSON.parse(text) as {kvs?: unknown[]}
    if ((b.kvs?.length ?? 0) !== size) throw new Error(`B returned ${b.kvs?.length ?? 0} keys, expected ${size}`)
    return
  }
  if (name === 'D' || name === 'E') {
    const d = JSON.parse(text) as {count: number; errors: number}
    if (d.count !== size || d.errors !== 0)
      throw new Error(`D swept ${d.count} IDs with ${d.errors} errors, expected ${size} and 0`)
    return
  }
  const r = JSON.parse(text) as {leases: Array<{ttlSeconds: number | null}>; malformed: unknown[]}
  if (r.leases.length !== size || r.malformed.length !== 0)
    throw new Error(`${name} listed ${r.leases.length} leases (${r.malformed.length} malformed), expected ${size}`)
  if ((name === 'A' || name === 'A0') && r.leases.some((l) => l.ttlSeconds !== null))
    throw new Error(`${name} (--no-ttl) reported TTLs`)
  if (name === 'C') {
    const bad = r.leases.filter(
      (l) => typeof l.ttlSeconds !== 'number' || l.ttlSeconds <= 0 || l.ttlSeconds > LEASE_TTL_S,
    )
    if (bad.length) throw new Error(`C: ${bad.length} leases without a plausible TTL`)
  }
}

/** The measures of each round, in order. */
function measures(o: Options): Name[] {
  return (['A', ...(o.baselineCli ? ['A0'] : []), 'B', 'C', 'D', 'E'] as Name[]).filter((n) => !o.skip.has(n))
}

async function benchSize(size: number, o: Options, log: (s: string) => void): Promise<SizeResult> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'flannelctl-bench-'))
  let etcd: EtcdServer | undefined
  try {
    etcd = await startEtcd()
    const ep = etcd.endpoint
    log(`size ${size}: etcd ${ep} (pid ${etcd.pid}); loading...`)
    const t0 = performance.now()
    const ids = await withDeadline(`loading ${size} leases`, 900_000, loadWorkload(ep, size))
    const loadMs = performance.now() - t0
    const count = await etcd.etcdctl(['get', '--prefix', `${PREFIX}/subnets`, '--limit', '1', '-w', 'json'])
    const stored = (JSON.parse(count.stdout) as {count?: number}).count ?? 0
    if (stored !== size) throw new Error(`etcd holds ${stored} subnet keys after loading, expected ${size}`)
    log(`size ${size}: loaded in ${ms(loadMs)} (${Math.round(size / (loadMs / 1000))} leases/s)`)
    const idsFile = path.join(dir, 'ids.txt')
    await writeFile(idsFile, ids.join('\n') + '\n')

    const env = cleanEnv({ETCDCTL_API: '3'})
    const node = process.execPath
    const out = (name: Name) => path.join(dir, `${name}.json`)
    const opt = (name: Name) => ({stdoutFile: out(name), timeoutMs: o.childTimeoutS * 1000, env, cwd: ROOT})
    // The CLI's environment: the machine's, or without NODE_EXTRA_CA_CERTS (--no-extra-ca).
    const cliEnv = {...env}
    if (o.noExtraCa) delete cliEnv.NODE_EXTRA_CA_CERTS
    const cliOpt = (name: Name) => ({...opt(name), env: cliEnv})
    const commands: Record<Name, () => Promise<Measured>> = {
      A: () =>
        measure(...cliArgv(o.cli, ['leases', 'ls', '--json', '--no-ttl', '--endpoints', ep], o.nodeArgs), cliOpt('A')),
      A0: () =>
        measure(
          ...cliArgv(o.baselineCli ?? o.cli, ['leases', 'ls', '--json', '--no-ttl', '--endpoints', ep], o.nodeArgs),
          cliOpt('A0'),
        ),
      B: () => measure(ETCDCTL, ['--endpoints', ep, 'get', '--prefix', `${PREFIX}/subnets`, '-w', 'json'], opt('B')),
      C: () => measure(...cliArgv(o.cli, ['leases', 'ls', '--json', '--endpoints', ep], o.nodeArgs), cliOpt('C')),
      D: () => measure(node, ['--import', 'tsx', FLOOR, 'ttl', ep, idsFile, String(o.sweepConcurrency)], opt('D')),
      E: () => measure(node, ['--import', 'tsx', FLOOR, 'range', ep, `${PREFIX}/subnets/`], opt('E')),
    }
    const r: SizeResult = {
      size,
      loadMs,
      runs: o.runs,
      timedOut: new Set(),
      A: [],
      A0: [],
      B: [],
      C: [],
      D: [],
      E: [],
      Dproc: [],
      loadavg: {before: loadavg(), after: ''},
    }
    /** One command; null when it is (or has just been) killed for exceeding --child-timeout. */
    const run = async (name: Name): Promise<Measured | null> => {
      if (r.timedOut.has(name)) return null
      try {
        const m = await commands[name]()
        expectOk(name, m)
        return m
      } catch (error) {
        if (!(error instanceof TimeoutError)) throw error
        log(`size ${size}: ${name} killed after ${o.childTimeoutS} s; not run again at this size`)
        r.timedOut.add(name)
        return null
      }
    }

    const names = measures(o)
    // Warm-up round (page cache, etcd's own caches): untimed, but each output is checked for correctness.
    for (const name of names) {
      if (await run(name)) await checkOutput(name, out(name), size)
    }
    if (o.baselineCli && !r.timedOut.has('A') && !r.timedOut.has('A0')) {
      // Same revision, same keys, no TTLs: the two builds must print the same bytes.
      const [a, a0] = await Promise.all([readFile(out('A')), readFile(out('A0'))])
      if (!a.equals(a0))
        throw new Error(`A and A0 (the baseline build) printed different output (${a.length} vs ${a0.length} bytes)`)
      log(`size ${size}: A and A0 outputs byte-identical (${a.length} bytes)`)
    }
    log(
      `size ${size}: warm-up done, outputs verified${r.timedOut.size ? ` (timed out: ${[...r.timedOut].join(', ')})` : ''}`,
    )

    for (let i = 0; i < o.runs; i++) {
      const line: string[] = []
      for (const name of names) {
        const m = await run(name)
        if (!m) {
          line.push(`${name} timeout`)
          continue
        }
        if (name === 'D' || name === 'E') {
          const t = (JSON.parse(await readFile(out(name), 'utf8')) as {ms: number}).ms
          r[name].push(t)
          if (name === 'D') r.Dproc.push(m)
          line.push(`${name}-floor ${ms(t)}`)
        } else {
          r[name].push(m)
          line.push(`${name} ${ms(m.wallMs)}`)
        }
      }
      log(`size ${size}: run ${i + 1}/${o.runs}: ${line.join('  ')}`)
    }
    r.loadavg.after = loadavg()
    return r
  } finally {
    await etcd?.stop()
    await rm(dir, {recursive: true, force: true})
  }
}

// --------------------------------------------------------------------------------------------------------------
// Report

interface Verdict {
  size: number
  target: string
  figure: string
  pass: boolean
}

const wall = (xs: Measured[]) => xs.map((m) => m.wallMs)
const peak = (xs: Measured[]) => (xs.length ? Math.max(...xs.map((m) => m.peakRssKiB ?? NaN)) : NaN)
const mb = (kib: number) => (Number.isFinite(kib) ? `${((kib * 1024) / 1e6).toFixed(1)} MB` : 'n/a')
const cpu = (xs: Measured[]) => (xs.length && xs[0]!.cpuMs !== null ? ms(median(xs.map((m) => m.cpuMs!))) : '')
const range = (xs: number[]) => (xs.length ? `${Math.round(Math.min(...xs))}–${Math.round(Math.max(...xs))}` : '')

function report(r: SizeResult, o: Options) {
  const to = (n: Name) => r.timedOut.has(n)
  const med = (n: Name, xs: number[]) => (to(n) ? Infinity : median(xs))
  const A = med('A', wall(r.A))
  const A0 = med('A0', wall(r.A0))
  const B = med('B', wall(r.B))
  const C = med('C', wall(r.C))
  const D = med('D', r.D)
  const E = med('E', r.E)
  const Dp = med('D', wall(r.Dproc))
  const shown = (n: Name, x: number) => (to(n) ? `>${o.childTimeoutS} s (killed)` : ms(x))
  const rows = [
    ['measure', 'median', 'min–max (ms)', 'peak RSS', 'CPU (median)'],
    ['A  flannelctl leases ls --json --no-ttl', shown('A', A), range(wall(r.A)), mb(peak(r.A)), cpu(r.A)],
    ...(o.baselineCli
      ? [
          [
            'A0 baseline build, leases ls --json --no-ttl',
            shown('A0', A0),
            range(wall(r.A0)),
            mb(peak(r.A0)),
            cpu(r.A0),
          ],
        ]
      : []),
    ['B  etcdctl get --prefix .../subnets -w json', shown('B', B), range(wall(r.B)), mb(peak(r.B)), cpu(r.B)],
    ['C  flannelctl leases ls --json (TTLs)', shown('C', C), range(wall(r.C)), mb(peak(r.C)), cpu(r.C)],
    [
      `D  node:http2 TimeToLive sweep floor, ${o.sweepConcurrency} in flight (sweep only)`,
      shown('D', D),
      range(r.D),
      '',
    ],
    ['   (D process wall, incl. node+tsx start)', shown('D', Dp), range(wall(r.Dproc)), mb(peak(r.Dproc))],
    ['E  node:http2 Range floor, decoded (range only)', shown('E', E), range(r.E), ''],
  ]
  // Measures left out with --skip are not listed.
  const skipped = (label: string) => /^(C|D|E) /.test(label) && o.skip.has(label[0]!)
  const dprocSkipped = o.skip.has('D')
  const listed = rows.filter(
    (row, i) => i === 0 || !(skipped(row[0]!) || (dprocSkipped && row[0]!.includes('(D process'))),
  )
  const ratio = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : Number.isNaN(x) ? 'n/a' : 'inf')
  const k = r.size < 1000 ? 6 : r.size < 10_000 ? 3 : 2
  const verdicts: Verdict[] = [
    // A killed command fails its target; a killed baseline leaves the target unverified, which also fails.
    {
      size: r.size,
      target: `A <= ${k} x B`,
      figure: `A/B = ${ratio(A / B)}`,
      pass: Number.isFinite(A) && Number.isFinite(B) && A <= k * B,
    },
    // Issue 12's TTL target is at 65,535 leases; smaller sizes show C/D for information (start-up dominates them).
    ...(o.skip.has('C') || o.skip.has('D') || r.size !== 65_535
      ? []
      : [
          {
            size: r.size,
            target: 'C <= 1.2 x D',
            figure: `C/D = ${ratio(C / D)}`,
            pass: Number.isFinite(C) && Number.isFinite(D) && C <= 1.2 * D,
          },
        ]),
  ]
  if (r.size === 65_535) {
    for (const [name, xs] of [
      ['A', r.A],
      ['C', r.C],
    ] as const) {
      if (o.skip.has(name)) continue
      const p = to(name) ? NaN : peak(xs)
      verdicts.push({
        size: r.size,
        target: `peak RSS ${name} <= 300 MB`,
        figure: to(name) ? 'n/a (killed)' : mb(p),
        pass: p * 1024 <= RSS_LIMIT_BYTES,
      })
    }
  }
  const text = [
    `== ${r.size} leases: ${r.runs} timed runs each (${measures(o).join(',')} per round), medians; load took ${ms(r.loadMs)}; loadavg ${r.loadavg.before} -> ${r.loadavg.after}`,
    table(listed),
    ...(o.baselineCli
      ? [
          `A/A0 = ${ratio(A / A0)} (this build against the baseline build, same rounds; CPU ${cpu(r.A)} vs ${cpu(r.A0)})`,
        ]
      : []),
    ...(o.skip.has('C') || o.skip.has('D') || r.size === 65_535
      ? []
      : [`C/D = ${ratio(C / D)} (for information: the TTL target, C <= 1.2 x D, is at 65,535 leases)`]),
    '',
    table([['target', 'figure', 'result'], ...verdicts.map((v) => [v.target, v.figure, v.pass ? 'PASS' : 'FAIL'])]),
  ].join('\n')
  const summary = {
    size: r.size,
    loadMs: r.loadMs,
    loadavg: r.loadavg,
    timedOut: [...r.timedOut],
    A,
    A0,
    B,
    C,
    D,
    E,
    Dproc: Dp,
    peakA_KiB: peak(r.A),
    peakB_KiB: peak(r.B),
    peakC_KiB: peak(r.C),
    raw: {A: wall(r.A), A0: wall(r.A0), B: wall(r.B), C: wall(r.C), D: r.D, E: r.E},
  }
  return {text, verdicts, summary}
}

// --------------------------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const o = parseArgs(process.argv.slice(2))
  const log = (s: string) => process.stderr.write(`[bench] ${s}\n`)
  const versions = {
    etcd: execFileSync('/usr/bin/etcd', ['--version'], {encoding: 'utf8'})
      .split('\n')[0]!
      .replace('etcd Version: ', ''),
    etcdctl: execFileSync(ETCDCTL, ['version'], {encoding: 'utf8', env: cleanEnv({ETCDCTL_API: '3'})})
      .split('\n')[0]!
      .replace('etcdctl version: ', ''),
  }
  const m = {
    ...machine(),
    ...versions,
    rss: HAVE_GNU_TIME ? 'GNU time %M' : '/proc VmHWM sampling',
    cli:
      (o.cli.startsWith(ROOT + path.sep) ? path.relative(ROOT, o.cli) : o.cli) +
      (o.nodeArgs.length ? ` (node ${o.nodeArgs.join(' ')})` : ' (executed)'),
    NODE_EXTRA_CA_CERTS: o.noExtraCa ? 'removed for the CLI' : (process.env.NODE_EXTRA_CA_CERTS ?? 'unset'),
  }
  log(
    `machine: ${Object.entries(m)
      .map(([k, v]) => `${k}=${v}`)
      .join(', ')}`,
  )
  const results: SizeResult[] = []
  await withDeadline(
    `the whole benchmark (--budget ${o.budgetS})`,
    o.budgetS * 1000,
    (async () => {
      for (const size of o.sizes) results.push(await benchSize(size, o, log))
    })(),
  )
  const reports = results.map((r) => report(r, o))
  process.stdout.write(
    `\nflannelctl leases ls benchmark (${Object.entries(m)
      .map(([k, v]) => `${k}: ${v}`)
      .join('; ')})\n\n`,
  )
  process.stdout.write(reports.map((x) => x.text).join('\n\n') + '\n')
  const all = reports.flatMap((x) => x.verdicts)
  const failed = all.filter((v) => !v.pass)
  process.stdout.write(
    `\n${failed.length === 0 ? `ALL ${all.length} TARGETS PASS` : `${failed.length} of ${all.length} targets FAIL`}\n`,
  )
  if (o.out) {
    await writeFile(
      o.out,
      JSON.stringify(
        {
          machine: m,
          options: {...o, skip: [...o.skip]},
          sizes: reports.map((x) => ({...x.summary, verdicts: x.verdicts})),
        },
        null,
        2,
      ) + '\n',
    )
  }
  return failed.length === 0 ? 0 : 1
}

try {
  process.exitCode = await main()
} catch (error) {
  process.stderr.write(`[bench] failed: ${(error as Error).stack ?? error}\n`)
  process.exitCode = 3
}
