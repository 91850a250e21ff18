// Cold-start benchmark: wall time of short flannelctl invocations, each a fresh process started as users start it
// (bin/run.js executed itself, as the npm bin link and PATH do; its launcher starts node).
//
//   node --import tsx bench/cold-start.ts [--runs 15] [--cli bin/run.js] [--baseline-cli OTHER/bin/run.js] [--out FILE]
//
// Target (issue 12; median of --runs after 2 untimed warm-ups): `flannelctl --version` and `flannelctl network
// validate FILE` each <= the median of `node -e 0` + 100 ms, measured in the same run. Every case runs once per
// round, round after round, so drift in the machine's load hits all of them alike; each case runs both with the
// environment's NODE_EXTRA_CA_CERTS (when set: Node reads that CA bundle at every start) and without it. For
// context (no target): `leases ls --json --no-ttl` against an etcd holding only the network config (the start-up
// cost of a command that loads the etcd client), etcdctl on the same data, the same cases started as
// `node bin/run.js` (with NODE_EXTRA_CA_CERTS: what the launcher saves) and for --baseline-cli (e.g. a build of an
// older tree, executed as its own bin). Exit status: 0 targets met, 1 missed, 2 usage, 3 failed.

import {execFileSync} from 'node:child_process'
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {startEtcd, type EtcdServer} from '../test/helpers/etcd.js'
import {cleanEnv, cliArgv, machine, measure, type Measured, median, mib, ms, table, withDeadline} from './util.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const MARGIN_MS = 100
const CHILD_TIMEOUT_MS = 30_000

function parseArgs(argv: string[]) {
  const o = {
    runs: 15,
    cli: path.join(ROOT, 'bin', 'run.js'),
    baseline: undefined as string | undefined,
    out: undefined as string | undefined,
  }
  const usage = (msg: string): never => {
    process.stderr.write(
      `cold-start bench: ${msg}\nusage: node --import tsx bench/cold-start.ts [--runs 15] [--cli bin/run.js] [--baseline-cli PATH] [--out FILE]\n`,
    )
    process.exit(2)
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    const eq = a.indexOf('=')
    const [flag, inline] = a.startsWith('--') && eq > 0 ? [a.slice(0, eq), a.slice(eq + 1)] : [a, undefined]
    const val = () => inline ?? argv[++i] ?? usage(`${flag} needs a value`)
    if (flag === '--runs') o.runs = Number(val())
    else if (flag === '--cli') o.cli = path.resolve(val())
    else if (flag === '--baseline-cli') o.baseline = path.resolve(val())
    else if (flag === '--out') o.out = val()
    else usage(`unknown argument ${a}`)
  }
  if (!Number.isInteger(o.runs) || o.runs < 10 || o.runs > 200) usage('--runs: an integer in [10, 200]')
  return o
}

async function main(): Promise<number> {
  const o = parseArgs(process.argv.slice(2))
  const log = (s: string) => process.stderr.write(`[cold-start] ${s}\n`)
  const dir = await mkdtemp(path.join(os.tmpdir(), 'flannelctl-cold-'))
  let etcd: EtcdServer | undefined
  try {
    const cfg = path.join(dir, 'net-conf.json')
    await writeFile(cfg, '{"Network":"10.0.0.0/8","Backend":{"Type":"vxlan"}}\n')
    etcd = await startEtcd()
    const put = await etcd.etcdctl([
      'put',
      '/coreos.com/network/config',
      '{"Network":"10.0.0.0/8","Backend":{"Type":"vxlan"}}',
    ])
    if (put.code !== 0) throw new Error(`etcdctl put failed: ${put.stderr}`)

    const node = process.execPath
    const ca = process.env.NODE_EXTRA_CA_CERTS
    const envs: Array<[string, NodeJS.ProcessEnv]> = [['', cleanEnv({NODE_EXTRA_CA_CERTS: ''})]]
    if (ca) envs.unshift([' [NODE_EXTRA_CA_CERTS]', cleanEnv({NODE_EXTRA_CA_CERTS: ca})])
    for (const [, e] of envs) if (e.NODE_EXTRA_CA_CERTS === '') delete e.NODE_EXTRA_CA_CERTS
    type Case = {name: string; target: boolean; file: string; args: string[]; env: NodeJS.ProcessEnv; floor: string}
    const cases: Case[] = []
    for (const [tag, env] of envs) {
      const floor = `node -e 0${tag}`
      const cli = (label: string, p: string, target: boolean, launch: 'bin' | 'node' = 'bin') => {
        // As users run it: the bin itself (its launcher starts node); 'node' is `node bin/run.js`, for context.
        const start = (args: string[]): [string, string[]] =>
          launch === 'bin' ? cliArgv(p, args) : [node, [p, ...args]]
        const c = (name: string, args: string[], isTarget: boolean): Case => {
          const [file, argv] = start(args)
          return {name: `${label} ${name}${tag}`, target: isTarget, file, args: argv, env, floor}
        }
        return [
          c('--version', ['--version'], target),
          c('network validate FILE', ['network', 'validate', cfg], target),
          c(
            'leases ls --json --no-ttl, 0 leases',
            ['leases', 'ls', '--json', '--no-ttl', '--endpoints', etcd!.endpoint],
            false,
          ),
        ]
      }
      cases.push({name: floor, target: false, file: node, args: ['-e', '0'], env, floor})
      cases.push(...cli('flannelctl', o.cli, true))
      if (tag) cases.push(...cli('node bin/run.js', o.cli, false, 'node'))
      if (o.baseline) cases.push(...cli('baseline', o.baseline, false))
    }
    cases.push({
      name: 'etcdctl get --prefix .../subnets -w json, 0 leases',
      target: false,
      file: '/usr/bin/etcdctl',
      args: ['--endpoints', etcd.endpoint, 'get', '--prefix', '/coreos.com/network/subnets', '-w', 'json'],
      env: cleanEnv(),
      floor: '',
    })
    const results = new Map<string, Measured[]>(cases.map((c) => [c.name, []]))
    const stdoutFile = path.join(dir, 'stdout')
    for (let i = 0; i < o.runs + 2; i++) {
      for (const c of cases) {
        const m = await measure(c.file, c.args, {stdoutFile, timeoutMs: CHILD_TIMEOUT_MS, env: c.env, cwd: ROOT})
        if (m.code !== 0) throw new Error(`${c.name} exited ${m.code}: ${m.stderr.slice(0, 2000)}`)
        if (i >= 2) results.get(c.name)!.push(m) // two untimed warm-up rounds
      }
      log(`round ${i + 1}/${o.runs + 2} done`)
    }

    const med = (name: string) => median(results.get(name)!.map((m) => m.wallMs))
    const rows = [['command', 'median', 'min', 'max', 'CPU (median)', 'peak RSS', 'target']]
    const verdicts: Array<{name: string; median: number; limit: number; pass: boolean}> = []
    for (const c of cases) {
      const xs = results.get(c.name)!
      const w = xs.map((m) => m.wallMs)
      const limit = c.target ? med(c.floor) + MARGIN_MS : NaN
      const pass = med(c.name) <= limit
      if (c.target) verdicts.push({name: c.name, median: med(c.name), limit, pass})
      const cpu = xs[0]?.cpuMs === null ? 'n/a' : ms(median(xs.map((m) => m.cpuMs!)))
      rows.push([
        c.name,
        ms(med(c.name)),
        ms(Math.min(...w)),
        ms(Math.max(...w)),
        cpu,
        mib(Math.max(...xs.map((m) => m.peakRssKiB ?? NaN))),
        c.target ? `<= ${ms(limit)} (${c.floor} + ${MARGIN_MS}): ${pass ? 'PASS' : 'FAIL'}` : '',
      ])
    }
    const etcdVersion = execFileSync('/usr/bin/etcd', ['--version'], {encoding: 'utf8'})
      .split('\n')[0]!
      .replace('etcd Version: ', '')
    const m = {
      ...machine(),
      etcd: etcdVersion,
      loadavg: os
        .loadavg()
        .map((x) => x.toFixed(2))
        .join(' '),
    }
    process.stdout.write(
      `\nflannelctl cold start, ${o.runs} runs each after 2 warm-ups (${Object.entries(m)
        .map(([k, v]) => `${k}: ${v}`)
        .join('; ')})\n\n`,
    )
    process.stdout.write(table(rows) + '\n')
    const failed = verdicts.filter((v) => !v.pass)
    process.stdout.write(
      `\n${failed.length === 0 ? `ALL ${verdicts.length} TARGETS PASS` : `${failed.length} of ${verdicts.length} targets FAIL`}\n`,
    )
    if (o.out) {
      const raw = Object.fromEntries(
        [...results].map(([k, xs]) => [k, xs.map((x) => ({wallMs: Math.round(x.wallMs), cpuMs: x.cpuMs}))]),
      )
      await writeFile(o.out, JSON.stringify({machine: m, runs: o.runs, verdicts, raw}, null, 2) + '\n')
    }
    return failed.length === 0 ? 0 : 1
  } finally {
    await etcd?.stop()
    await rm(dir, {recursive: true, force: true})
  }
}

try {
  process.exitCode = await withDeadline('cold-start benchmark', 600_000, main())
} catch (error) {
  process.stderr.write(`[cold-start] failed: ${(error as Error).stack ?? error}\n`)
  process.exitCode = 3
}
