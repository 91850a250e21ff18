/**
 * flannel's subnet key codec (pkg/subnet/subnet.go): `10.5.34.0-24` and dual-stack `10.12.13.0-24&fd00:12:13::-56`.
 * Parsing reproduces flannel's regular expression exactly, including its quirks: unescaped dots, no start anchor
 * (the full etcd key parses), IPv4 prefix lengths above 31 and IPv6 prefix lengths above 127 rejected.
 */

import {type Cidr4, formatIPv4, parseIPv4} from './ipv4.js'
import {type Cidr6, formatIP6Flannel, parseIPv6} from './ipv6.js'

// flannel's expression: `(\d+\.\d+.\d+.\d+)-(\d+)(?:&([a-f\d:]+)-(\d+))?$`. Run as a regular expression it is
// quadratic (no start anchor: every start position is tried, each scanning to the end; a 100,000-character key took
// seconds), so matchSubnetKey below finds the same match in one pass from the end. test/core/subnet-key.test.ts
// checks it against this expression (JavaScript's and RE2's leftmost match agree on it) on generated inputs.

export interface SubnetKey {
  readonly subnet: Cidr4
  /** null for an IPv4-only key (flannel also treats `::/0` as no IPv6 subnet). */
  readonly ipv6Subnet: Cidr6 | null
}

const isDigit = (c: number) => c >= 0x30 && c <= 0x39
/** `[a-f\d:]` */
const isHexOrColon = (c: number) => isDigit(c) || (c >= 0x61 && c <= 0x66) || c === 0x3a
/** What `.` does not match without the s flag. */
const isLineTerminator = (c: number) => c === 0x0a || c === 0x0d || c === 0x2028 || c === 0x2029

/** The capture groups of flannel's expression: [IPv4, prefix, IPv6 or undefined, IPv6 prefix or undefined]. */
export type SubnetKeyGroups = [string, string, string | undefined, string | undefined]

/**
 * How `\d+.\d+.\d+` (the part of group 1 after its `\.`) splits `s[from, to)`, as a backtracking engine picks it:
 * the longest first run, then the longest second run. Returns the three run lengths, or null when it does not match.
 * `nonDigits` are the positions of the (at most two) non-digits in the range, ascending.
 */
function splitRest(s: string, from: number, to: number, nonDigits: number[]): [number, number, number] | null {
  const len = to - from
  const rel = nonDigits.map((p) => p - from)
  if (rel.some((p) => isLineTerminator(s.charCodeAt(p + from)))) return null
  let j: number // the first `.`, relative to `from`
  let k: number // the second `.`
  if (rel.length === 2) {
    ;[j, k] = rel as [number, number]
    if (j < 1 || k - j < 2 || len - 1 - k < 1) return null
  } else if (rel.length === 1) {
    const p = rel[0]!
    if (p >= 1 && len - 2 >= p + 2) [j, k] = [p, len - 2]
    else if (p - 2 >= 1 && p <= len - 2) [j, k] = [p - 2, p]
    else return null
  } else {
    if (len < 5) return null
    ;[j, k] = [len - 4, len - 2]
  }
  return [j, k - j - 1, len - k - 1]
}

function lexGreater(a: readonly number[], b: readonly number[]): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! > b[i]!
  return false
}

/**
 * The match of flannel's subnet-key expression in `s` (the leftmost one, with the groups a backtracking engine
 * gives), found in time linear in `s.length`; null when the expression does not match.
 *
 * Why this is enough: the match ends at the end of `s`, and its tail after group 1 is fixed by the end of `s`: the
 * trailing digits are group 2 (no IPv6 part) or group 4, and then group 3, the `&` and group 2 are the maximal runs
 * before them. So group 1 ends at one of at most two positions. Group 1 holds digits and at most three other
 * characters (its `\.` and two `.`), so its `\.` is one of the last three non-digits before that end, and it starts
 * where the digit run before its `\.` starts. The leftmost start wins; for one start, the engine's greedy order
 * (longest second, third, fourth run of group 1 first) decides between the two ends.
 */
export function matchSubnetKey(s: string): SubnetKeyGroups | null {
  const end = s.length
  let t = end
  while (t > 0 && isDigit(s.charCodeAt(t - 1))) t--
  const dash = t - 1
  if (t === end || dash < 0 || s.charCodeAt(dash) !== 0x2d) return null
  const last = s.slice(t)
  // Where group 1 may end, each with the rest of the groups.
  const tails: Array<{q: number; groups: [string, string | undefined, string | undefined]}> = []
  let u = dash
  while (u > 0 && isHexOrColon(s.charCodeAt(u - 1))) u--
  if (u < dash && u >= 1 && s.charCodeAt(u - 1) === 0x26) {
    const amp = u - 1
    let w = amp
    while (w > 0 && isDigit(s.charCodeAt(w - 1))) w--
    if (w < amp && w >= 1 && s.charCodeAt(w - 1) === 0x2d)
      tails.push({q: w - 1, groups: [s.slice(w, amp), s.slice(u, dash), last]})
  }
  tails.push({q: dash, groups: [last, undefined, undefined]})

  let best: {d: number; runs: [number, number, number]; tail: (typeof tails)[number]} | null = null
  for (const tail of tails) {
    // The last three non-digits before group 1's end: one of them is its `\.`.
    const nonDigits: number[] = []
    for (let p = tail.q - 1; p >= 0 && nonDigits.length < 3; p--) if (!isDigit(s.charCodeAt(p))) nonDigits.push(p)
    for (let n = 0; n < nonDigits.length; n++) {
      const d = nonDigits[n]!
      if (s.charCodeAt(d) !== 0x2e || d < 1 || !isDigit(s.charCodeAt(d - 1))) continue
      const runs = splitRest(s, d + 1, tail.q, nonDigits.slice(0, n).reverse())
      if (runs === null) continue
      if (best === null || d < best.d || (d === best.d && lexGreater(runs, best.runs))) best = {d, runs, tail}
    }
  }
  if (best === null) return null
  let start = best.d - 1
  while (start > 0 && isDigit(s.charCodeAt(start - 1))) start--
  return [s.slice(start, best.tail.q), ...best.tail.groups]
}

/** strconv.ParseUint(s, 10, bits) */
function parseUintBits(s: string, bits: number): number | null {
  if (!/^\d+$/.test(s)) return null
  const n = BigInt(s)
  return n < 1n << BigInt(bits) ? Number(n) : null
}

/** flannel's ParseSubnetKey. Accepts a full etcd key or just its last segment; null when flannel would not parse it. */
export function parseSubnetKey(s: string): SubnetKey | null {
  const m = matchSubnetKey(s)
  if (!m) return null
  const ip = parseIPv4(m[0])
  const prefix = parseUintBits(m[1], 5)
  if (ip === null || prefix === null) return null
  let ipv6Subnet: Cidr6 | null = null
  if (m[2] !== undefined && m[2] !== '') {
    const ip6 = parseIPv6(m[2])
    const prefix6 = parseUintBits(m[3]!, 7)
    if (ip6 === null || prefix6 === null) return null
    if (ip6 !== 0n || prefix6 !== 0) ipv6Subnet = {ip: ip6, prefix: prefix6}
  }
  return {subnet: {ip, prefix}, ipv6Subnet}
}

/** flannel's MakeSubnetKey. */
export function makeSubnetKey(subnet: Cidr4, ipv6Subnet: Cidr6 | null = null): string {
  const v4 = `${formatIPv4(subnet.ip)}-${subnet.prefix}`
  return ipv6Subnet ? `${v4}&${formatIP6Flannel(ipv6Subnet.ip)}-${ipv6Subnet.prefix}` : v4
}
