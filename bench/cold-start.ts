// Cold-start benchmark: wall time of short flannelctl invocations, each a fresh `node` process.
//
//   node --import tsx bench/cold-start.ts [--runs 15] [--cli bin/run.js] [--out FILE]
//
// Targets (median of --runs, after 2 untimed warm-up runs each): `flannelctl --version` <= 300 ms and
// `flannelctl network validate FILE` <= 300 ms. For context (no target) it also times bare `node -e 0`, and
// `leases ls --json --no-ttl` against an etcd that the harness starts with only the network config in it, i.e.
// the start-up cost of a command that loads the etcd client. Exit status: 0 targets met, 1 missed, 2 usage, 3 failed.

import {execFileSync} from 'node:child_process'
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {startEtcd, type EtcdServer} from '../test/helpers/etcd.js'
import {cleanEnv, machine, measure, type Measured, median, mib, ms, table, withDeadline} from './util.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const TARGET_MS = 300
const CHILD_TIMEOUT_MS = 30_000

function parseArgs(argv: string[]) {
  const o = {runs: 15, cli: path.join(ROOT, 'bin', 'run.js'), out: undefined as string | undefined}
  const usage = (msg: string): never => {
    process.stderr.write(
      `cold-start bench: ${msg}\nusage: node --import tsx bench/cold-start.ts [--runs 15] [--cli bin/run.js] [--out FILE]\n`,
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

    const env = cleanEnv()
    const node = process.execPath
    const cases: Array<{name: string; target: boolean; file: string; args: string[]}> = [
      {name: 'flannelctl --version', target: true, file: node, args: [o.cli, '--version']},
      {name: 'flannelctl network validate FILE', target: true, file: node, args: [o.cli, 'network', 'validate', cfg]},
      {name: 'node -e 0 (floor, no target)', target: false, file: node, args: ['-e', '0']},
      {
        name: 'flannelctl leases ls --json --no-ttl, 0 leases (no target)',
        target: false,
        file: node,
        args: [o.cli, 'leases', 'ls', '--json', '--no-ttl', '--endpoints', etcd.endpoint],
      },
      {
        name: 'etcdctl get --prefix .../subnets -w json, 0 leases (no target)',
        target: false,
        file: '/usr/bin/etcdctl',
        args: ['--endpoints', etcd.endpoint, 'get', '--prefix', '/coreos.com/network/subnets', '-w', 'json'],
      },
    ]
    const results = new Map<string, Measured[]>()
    const stdoutFile = path.join(dir, 'stdout')
    for (const c of cases) {
      const xs: Measured[] = []
      for (let i = 0; i < o.runs + 2; i++) {
        const m = await measure(c.file, c.args, {stdoutFile, timeoutMs: CHILD_TIMEOUT_MS, env, cwd: ROOT})
        if (m.code !== 0) throw new Error(`${c.name} exited ${m.code}: ${m.stderr.slice(0, 2000)}`)
        if (i >= 2) xs.push(m) // two untimed warm-ups
      }
      results.set(c.name, xs)
      log(`${c.name}: median ${ms(median(xs.map((m) => m.wallMs)))}`)
    }

    const rows = [['command', 'median', 'min', 'max', 'peak RSS', 'target']]
    const verdicts: Array<{name: string; median: number; pass: boolean}> = []
    for (const c of cases) {
      const w = results.get(c.name)!.map((m) => m.wallMs)
      const med = median(w)
      const rss = Math.max(...results.get(c.name)!.map((m) => m.peakRssKiB ?? NaN))
      const pass = med <= TARGET_MS
      if (c.target) verdicts.push({name: c.name, median: med, pass})
      rows.push([
        c.name,
        ms(med),
        ms(Math.min(...w)),
        ms(Math.max(...w)),
        mib(rss),
        c.target ? `<= ${TARGET_MS} ms: ${pass ? 'PASS' : 'FAIL'}` : '',
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
      const raw = Object.fromEntries([...results].map(([k, xs]) => [k, xs.map((x) => Math.round(x.wallMs))]))
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
