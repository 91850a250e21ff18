/**
 * doctor --local's node checks at scale (issue 12): a node in a cluster of 65,535 peers, its kernel tables as
 * flanneld leaves them with known damage (test/core/node-checks-scenario.ts), for vxlan, vxlan with DirectRouting
 * and host-gw. Times `nodeChecks` (median of --runs, in process; the kernel reads are not part of it) and, in the
 * same run, checks that its peer findings equal those of the scanning implementation it replaced, at --check-size
 * peers (that implementation is quadratic: ~220 s at 65,535; pass --check-size 65535 to compare at full size).
 *
 *   node --import tsx bench/node-checks.ts [--peers 65535] [--runs 5] [--check-size 4000]
 */

import os from 'node:os'
import {performance} from 'node:perf_hooks'

import {nodeChecks} from '../src/core/node-checks.js'
import {
  comparablePeerFindings,
  referencePeerFindings,
  scenario,
  type Variant,
} from '../test/core/node-checks-scenario.js'
import {machine, median, table} from './util.js'

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? Number(process.argv[i + 1]) : def
}
const PEERS = arg('peers', 65_535)
const RUNS = arg('runs', 5)
const CHECK = arg('check-size', 4000)
const TARGET_MS = 1000

const rows = [
  [
    'variant',
    'peers',
    'findings',
    'median',
    'CPU (median)',
    'min-max',
    `check at ${CHECK}: indexed vs scan`,
    'verdict',
  ],
]
let failed = false
for (const variant of ['vxlan', 'directrouting', 'host-gw'] as Variant[]) {
  const small = scenario(Math.min(CHECK, 65_534), variant)
  const t0 = performance.now()
  const want = referencePeerFindings(small.obs, small.ctx)
  const scanMs = performance.now() - t0
  const t1 = performance.now()
  const found = nodeChecks(small.obs, small.ctx)
  const indexedMs = performance.now() - t1
  const got = comparablePeerFindings(found)
  const same = JSON.stringify(got) === JSON.stringify(want)

  const {obs, ctx} = scenario(Math.min(PEERS, 65_534), variant)
  const times: number[] = []
  const cpu: number[] = []
  let findings = 0
  for (let r = 0; r < RUNS; r++) {
    const c = process.cpuUsage()
    const t = performance.now()
    findings = nodeChecks(obs, ctx).length
    times.push(performance.now() - t)
    const d = process.cpuUsage(c)
    cpu.push((d.user + d.system) / 1000)
  }
  const m = median(times)
  const ok = same && m < TARGET_MS
  failed ||= !ok
  rows.push([
    variant,
    String(ctx.leases.length - 1),
    String(findings),
    `${m.toFixed(0)} ms`,
    `${median(cpu).toFixed(0)} ms`,
    `${Math.min(...times).toFixed(0)}-${Math.max(...times).toFixed(0)} ms`,
    `${same ? 'identical' : 'DIFFERENT'} (${want.length} findings; ${indexedMs.toFixed(0)} vs ${scanMs.toFixed(0)} ms)`,
    ok ? 'PASS' : 'FAIL',
  ])
}
const mc = machine()
console.log(
  `doctor --local node checks, median of ${RUNS} (target < ${TARGET_MS} ms; nproc ${mc.nproc}, ${mc.cpu}, node ${mc.node})`,
)
console.log(table(rows))
console.log(
  `loadavg ${os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')} (the machine is shared: wall time includes waiting for a core)`,
)
process.exitCode = failed ? 1 : 0
