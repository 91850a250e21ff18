// Shared helpers for the benchmarks: timed child processes with peak RSS, statistics and table printing.
// Every child is spawned in its own process group and, on timeout, only that group (which we created) is killed.

import {spawn} from 'node:child_process'
import {existsSync, openSync, closeSync, readFileSync, rmSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {performance} from 'node:perf_hooks'

/** GNU time, used for peak RSS (%M, KiB). When absent, VmHWM is sampled from /proc instead. */
export const GNU_TIME = '/usr/bin/time'
export const HAVE_GNU_TIME = existsSync(GNU_TIME)

export interface Measured {
  wallMs: number
  /** Peak resident set size in KiB (GNU time %M, or the last VmHWM sampled from /proc). */
  peakRssKiB: number | null
  /** User + system CPU seconds of the command (GNU time %U + %S), null without GNU time. */
  cpuMs: number | null
  code: number
  stderr: string
}

export interface MeasureOptions {
  /** stdout goes to this file (never through a pipe into this process, which would compete for CPU). */
  stdoutFile: string
  timeoutMs: number
  env?: NodeJS.ProcessEnv
  cwd?: string
}

/**
 * An environment without any etcd connection settings, so only the flags given on the command line count; this node
 * first on PATH (a CLI started as a program, see cliArgv, runs the `node` on PATH).
 */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(FLANNELCTL_|ETCDCTL_|FLANNELD_)/.test(k)) continue
    env[k] = v
  }
  env.NO_COLOR = '1'
  env.PATH = `${path.dirname(process.execPath)}:${env.PATH ?? '/usr/bin:/bin'}`
  return {...env, ...extra}
}

/**
 * [file, args] that start a CLI build (its bin/run.js) as users do: the file itself, as the npm bin link and PATH run
 * it (flannelctl's launcher then decides how node starts; an older build's `#!/usr/bin/env node` runs node on it).
 * With node options (--node-arg) there is no other way than `node OPTIONS bin/run.js`.
 */
export function cliArgv(cli: string, args: string[], nodeArgs: readonly string[] = []): [string, string[]] {
  return nodeArgs.length > 0 ? [process.execPath, [...nodeArgs, cli, ...args]] : [cli, args]
}

function readVmHWM(pid: number): number | null {
  try {
    const m = /VmHWM:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) : null
  } catch {
    return null
  }
}

let seq = 0

/** A measured command that did not exit within its time limit (it was killed). */
export class TimeoutError extends Error {}

/** Runs `file args` once and measures its wall time (spawn to exit) and peak RSS. */
export function measure(file: string, args: string[], o: MeasureOptions): Promise<Measured> {
  const rssFile = path.join(os.tmpdir(), `flannelctl-bench-rss-${process.pid}-${seq++}`)
  const [cmd, argv] = HAVE_GNU_TIME ? [GNU_TIME, ['-f', '%M %U %S', '-o', rssFile, file, ...args]] : [file, args]
  const out = openSync(o.stdoutFile, 'w')
  return new Promise((resolve, reject) => {
    const started = performance.now()
    const child = spawn(cmd, argv, {stdio: ['ignore', out, 'pipe'], env: o.env, cwd: o.cwd, detached: true})
    let stderr = ''
    child.stderr!.setEncoding('utf8')
    child.stderr!.on('data', (d: string) => {
      if (stderr.length < 64 * 1024) stderr += d
    })
    let hwm: number | null = null
    const sampler = HAVE_GNU_TIME
      ? undefined
      : setInterval(() => {
          const v = child.pid === undefined ? null : readVmHWM(child.pid)
          if (v !== null) hwm = Math.max(hwm ?? 0, v)
        }, 10)
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      // Our own process group (detached: true makes the child its leader): the wrapper and the command under it.
      if (child.pid !== undefined) {
        try {
          process.kill(-child.pid, 'SIGKILL')
        } catch {
          // already gone
        }
      }
    }, o.timeoutMs)
    child.once('error', (err) => {
      clearTimeout(timer)
      if (sampler) clearInterval(sampler)
      closeSync(out)
      reject(err)
    })
    child.once('close', (code, signal) => {
      const wallMs = performance.now() - started
      clearTimeout(timer)
      if (sampler) clearInterval(sampler)
      closeSync(out)
      let peak: number | null = hwm
      let cpuMs: number | null = null
      if (HAVE_GNU_TIME) {
        try {
          const lines = readFileSync(rssFile, 'utf8').trim().split('\n')
          const [m, u, sy] = lines.at(-1)!.split(' ').map(Number)
          peak = Number.isFinite(m) ? m! : null
          cpuMs = Number.isFinite(u! + sy!) ? (u! + sy!) * 1000 : null
        } catch {
          peak = null
        }
        rmSync(rssFile, {force: true})
      }
      if (timedOut)
        return reject(
          new TimeoutError(`${path.basename(file)} ${args.join(' ')}: no exit within ${o.timeoutMs} ms (killed)`),
        )
      resolve({wallMs, peakRssKiB: peak, cpuMs, code: code ?? (signal ? 128 : 1), stderr})
    })
  })
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

export const ms = (x: number) => (Number.isFinite(x) ? `${Math.round(x)} ms` : 'n/a')
export const mib = (kib: number | null) => (kib === null ? 'n/a' : `${(kib / 1024).toFixed(1)} MiB`)

/** A plain-text table: first row is the header. */
export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)))
  const line = (r: string[]) =>
    r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ')
  return [line(rows[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n')
}

/** Rejects after `msLimit` (the timer does not keep the process alive). */
export async function withDeadline<T>(what: string, msLimit: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not done within ${Math.round(msLimit / 1000)} s`)), msLimit)
    timer.unref()
  })
  try {
    return await Promise.race([p, deadline])
  } finally {
    clearTimeout(timer)
  }
}

/** Runs `fn(i)` for i in [0, n) with at most `limit` calls in flight. */
export async function pool(n: number, limit: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async () => {
    while (next < n) await fn(next++)
  }
  await Promise.all(Array.from({length: Math.min(limit, n)}, worker))
}

/** The machine, for the report. */
export function machine(): Record<string, string> {
  const mem = os.totalmem() / 1024 ** 3
  return {
    nproc: String(os.availableParallelism?.() ?? os.cpus().length),
    cpu: os.cpus()[0]?.model ?? 'unknown',
    memory: `${mem.toFixed(1)} GiB`,
    node: process.version,
    os: `${os.type()} ${os.release()}`,
  }
}

// --------------------------------------------------------------------------------------------------------------
// The workload

/** Lease number n (1-based, at most 65,535) -> subnet 10.X.Y.0/24 with a distinct public IP and VTEP MAC. */
export function leaseEntry(n: number): {key: string; value: string} {
  const x = (n >> 8) & 255
  const y = n & 255
  const hex = (b: number) => b.toString(16).padStart(2, '0')
  return {
    key: `/coreos.com/network/subnets/10.${x}.${y}.0-24`,
    // Byte-identical to flanneld's json.Marshal of a vxlan node's LeaseAttrs.
    value: `{"PublicIP":"192.168.${x}.${y}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:${hex(x)}:${hex(y)}"}}`,
  }
}
