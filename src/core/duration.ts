/** Go-style durations for flags (`5s`, `24h`, `1h30m`, `500ms`) and compact TTL display (`23h59m`). */

import {UsageError} from './errors.js'

const UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3, // U+00B5
  μs: 1e-3, // U+03BC
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
}

/** Go's time.Duration limit (2^63-1 ns, about 2562047h), in ms. */
const GO_MAX_MS = 9_223_372_036_854.775
/** The longest timer Node keeps (2^31-1 ms, about 596h); a longer one fires at once with a TimeoutOverflowWarning. */
export const MAX_TIMER_MS = 2 ** 31 - 1
/** etcd's lease.MaxLeaseTTL: a longer grant is refused with OUT_OF_RANGE "too large lease TTL". */
export const MAX_LEASE_TTL_SECONDS = 9_000_000_000

function invalid(flag: string, s: string, why: string): UsageError {
  return new UsageError(`invalid duration for ${flag}: "${s}" ${why}`, 'INVALID_DURATION')
}

/**
 * Parses a duration as Go's time.ParseDuration does (what etcdctl and flanneld accept: `5s`, `1h30m`, `1.5h`,
 * `500ms`, `.5s`, `0`), into milliseconds. Like Go, a number without a unit is refused (`5` is not 5 seconds); unlike
 * Go, a negative duration is too (no flag takes one). Throws a UsageError naming the flag.
 */
export function parseDuration(s: string, flag: string): number {
  const t = s.trim()
  if (t === '0' || t === '+0') return 0
  if (t.startsWith('-')) throw invalid(flag, s, '(must not be negative)')
  const body = t.startsWith('+') ? t.slice(1) : t
  if (/^\d+(\.\d*)?$/.test(body)) throw invalid(flag, s, `has no unit (did you mean ${body}s?)`)
  const re = /(\d+\.?\d*|\.\d+)([^\d.]+)/gy
  let total = 0
  let matched = 0
  let m: RegExpExecArray | null
  while ((m = re.exec(body)) !== null) {
    const unit = UNITS[m[2]!]
    if (unit === undefined) throw invalid(flag, s, `has an unknown unit "${m[2]}" (use ns, us, ms, s, m or h)`)
    total += Number(m[1]) * unit
    matched += m[0].length
  }
  if (body === '' || matched !== body.length) throw invalid(flag, s, '(use e.g. 5s, 500ms, 1h30m)')
  if (total > GO_MAX_MS) throw invalid(flag, s, '(out of range: at most 2562047h)')
  return total
}

/**
 * A timeout or interval a timer waits for: more than 0 and at most MAX_TIMER_MS (Node would fire a longer timer at
 * once, and call a healthy etcd unreachable).
 */
export function parseTimeout(s: string, flag: string): number {
  const ms = parseDuration(s, flag)
  if (ms <= 0) throw invalid(flag, s, '(must be more than 0)')
  if (ms > MAX_TIMER_MS) throw invalid(flag, s, '(too long: at most 596h)')
  return ms
}

/** A remaining TTL in seconds as `23h59m`, `59m30s` or `42s`. */
export function formatTtl(seconds: number): string {
  if (seconds < 0) return 'expired'
  const h = Math.floor(seconds / 3600)
  const m = Math.floor((seconds % 3600) / 60)
  const s = Math.floor(seconds % 60)
  if (h > 0) return `${h}h${String(m).padStart(2, '0')}m`
  if (m > 0) return `${m}m${String(s).padStart(2, '0')}s`
  return `${s}s`
}
