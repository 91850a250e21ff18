/**
 * IPv4 addresses as unsigned 32-bit numbers and CIDRs as {ip, prefix}, with flannel's pkg/ip semantics.
 * All arithmetic is kept in [0, 2^32) with `>>> 0`; JavaScript's `<< 32` is `<< 0`, so masks are computed
 * without shifting by 32.
 */

export interface Cidr4 {
  readonly ip: number
  readonly prefix: number
}

/**
 * Parses a dotted quad the way Go's net.ParseIP does for IPv4 (decimal octets 0-255, no leading zeros, exactly
 * four parts). Returns null when it is not one.
 */
export function parseIPv4(s: string): number | null {
  return parseIPv4Range(s, 0, s.length)
}

/**
 * parseIPv4 of `s.slice(from, to)` without making the slice (a char-code scan: `leases ls` parses two addresses
 * per lease). Octets are `0` or `[1-9][0-9]{0,2}` up to 255, four of them, dot-separated, nothing else.
 */
export function parseIPv4Range(s: string, from: number, to: number): number | null {
  if (to - from < 7 || to - from > 15) return null
  let n = 0
  let i = from
  for (let part = 0; ; part++) {
    if (i >= to) return null
    let v = s.charCodeAt(i) - 48
    if (v < 0 || v > 9) return null
    i++
    if (v !== 0) {
      for (let k = 0; k < 2 && i < to; k++) {
        const d = s.charCodeAt(i) - 48
        if (d < 0 || d > 9) break
        v = v * 10 + d
        i++
      }
      if (v > 255) return null
    }
    n = n * 256 + v
    if (part === 3) return i === to ? n : null
    if (i >= to || s.charCodeAt(i) !== 46) return null
    i++
  }
}

/** `0.` to `255.`, `0` to `255` and `/0` to `/32`: formatting is then a few table reads and concatenations. */
const DOTTED = Array.from({length: 256}, (_, i) => `${i}.`)
const OCTET = Array.from({length: 256}, (_, i) => String(i))
const SLASH = Array.from({length: 33}, (_, i) => `/${i}`)

export function formatIPv4(ip: number): string {
  return DOTTED[ip >>> 24]! + DOTTED[(ip >>> 16) & 255]! + DOTTED[(ip >>> 8) & 255]! + OCTET[ip & 255]!
}

/** The netmask of a prefix length as a uint32 (Go's `0xFFFFFFFF << (32 - prefix)`, so /0 gives 0). */
export function mask4(prefix: number): number {
  return prefix <= 0 ? 0 : prefix >= 32 ? 0xffffffff : (0xffffffff << (32 - prefix)) >>> 0
}

/** Number of addresses in a prefix of this length (a float: 2^32 for /0). */
export function size4(prefix: number): number {
  return 2 ** (32 - prefix)
}

export function isCanonical4(c: Cidr4): boolean {
  return (c.ip & mask4(c.prefix)) >>> 0 === c.ip
}

/** flannel's IP4Net.Contains: the address agrees with the network on the prefix bits. */
export function contains4(c: Cidr4, ip: number): boolean {
  const m = mask4(c.prefix)
  return (c.ip & m) >>> 0 === (ip & m) >>> 0
}

/** Whether `outer` contains all of `inner` (flannel's ContainsCIDR). */
export function containsCidr4(outer: Cidr4, inner: Cidr4): boolean {
  return outer.prefix <= inner.prefix && contains4(outer, inner.ip)
}

/** flannel's IP4Net.Overlaps: equal on the shorter of the two prefixes. */
export function overlaps4(a: Cidr4, b: Cidr4): boolean {
  const m = mask4(Math.min(a.prefix, b.prefix))
  return (a.ip & m) >>> 0 === (b.ip & m) >>> 0
}

/** The last address of the block. */
export function lastAddress4(c: Cidr4): number {
  return ((c.ip & mask4(c.prefix)) >>> 0) + size4(c.prefix) - 1
}

export function formatCidr4(c: Cidr4): string {
  return formatIPv4(c.ip) + (SLASH[c.prefix] ?? `/${c.prefix}`)
}

export interface ParsedCidr4 extends Cidr4 {
  /** The address as written, before the host bits were masked off. */
  readonly written: number
  readonly hostBitsSet: boolean
}

/**
 * Parses `a.b.c.d/n` like Go's net.ParseCIDR: the result is the network (host bits masked), and the written address
 * is kept so callers can warn about host bits. Returns null when it is not an IPv4 CIDR.
 */
export function parseCidr4(s: string): ParsedCidr4 | null {
  const slash = s.indexOf('/')
  if (slash < 0) return null
  const ip = parseIPv4(s.slice(0, slash))
  const p = s.slice(slash + 1)
  if (ip === null || !/^\d+$/.test(p)) return null
  const prefix = Number(p.replace(/^0+(?=\d)/, '').slice(0, 4)) // Go's dtoi accepts leading zeros
  if (prefix > 32) return null
  const net = (ip & mask4(prefix)) >>> 0
  return {ip: net, prefix, written: ip, hostBitsSet: net !== ip}
}

export function compareCidr4(a: Cidr4, b: Cidr4): number {
  return a.ip - b.ip || a.prefix - b.prefix
}

/** The first host address of a block (flannel's IncrementIP), used for FLANNEL_SUBNET. */
export function firstHost4(c: Cidr4): number {
  return (c.ip + 1) % 2 ** 32
}

export function isLoopback4(ip: number): boolean {
  return ip >>> 24 === 127
}

export function isLinkLocal4(ip: number): boolean {
  return ip >>> 16 === 0xa9fe
}

export function isMulticast4(ip: number): boolean {
  return ip >>> 28 === 0xe
}
