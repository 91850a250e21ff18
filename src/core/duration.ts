/** Go-style durations for flags (`5s`, `24h`, `1h30m`, `500ms`) and compact TTL display (`23h59m`). */

import {UsageError} from './errors.js'

const UNITS: Record<string, number> = {ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000}

/** Parses a Go duration into milliseconds; a bare number means seconds. Throws a UsageError naming the flag. */
export function parseDuration(s: string, flag: string): number {
  const t = s.trim()
  if (/^\d+(\.\d+)?$/.test(t)) return Number(t) * 1000
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy
  let total = 0
  let matched = 0
  let m: RegExpExecArray | null
  while ((m = re.exec(t)) !== null) {
    total += Number(m[1]) * UNITS[m[2]!]!
    matched += m[0].length
  }
  if (t === '' || matched !== t.length) {
    throw new UsageError(`invalid duration for ${flag}: "${s}" (use e.g. 5s, 500ms, 1h30m)`, 'INVALID_DURATION')
  }
  return total
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
