/**
 * Go's net.ParseIP, net.ParseCIDR and net.ParseMAC, and flannel's pkg/ip JSON unmarshalers built on them
 * (ip.IP4, ip.IP6, ip.IP4Net, ip.IP6Net), with flannel's and Go's error texts. Addresses are 16-byte values
 * (bigint), IPv4 as ::ffff:a.b.c.d, the way Go's net.IP holds them.
 */

import {GoUnmarshalerError, trimQuotes} from './gojson.js'
import {parseIPv4} from './ipv4.js'
import {mask6, parseIPv6} from './ipv6.js'

export type Decoded<T> = {ok: true; value: T} | {ok: false; error: string}

const V4_PREFIX = 0xffffn << 32n

/** net.ParseIP: the 16-byte value, or null. (A zone, `%eth0`, is refused, as net.ParseIP refuses it.) */
export function goParseIP(s: string): bigint | null {
  const v4 = parseIPv4(s)
  if (v4 !== null) return V4_PREFIX | BigInt(v4)
  return parseIPv6(s)
}

/** net.IP.To4() != nil for a 16-byte value: an IPv4-mapped address. */
export function isV4Mapped(ip: bigint): boolean {
  return ip >> 32n === 0xffffn
}

/** flannel's ip.ParseIP4. */
export function goParseIP4(s: string): Decoded<number> {
  const v4 = parseIPv4(s)
  if (v4 !== null) return {ok: true, value: v4}
  const ip = parseIPv6(s)
  if (ip === null) return {ok: false, error: 'invalid IP address format'}
  if (!isV4Mapped(ip)) return {ok: false, error: 'invalid IPv4 address format'}
  return {ok: true, value: Number(ip & 0xffffffffn)}
}

/** flannel's ip.ParseIP6 (the value of net.ParseIP's 16 bytes). */
export function goParseIP6(s: string): Decoded<bigint> {
  const ip = goParseIP(s)
  return ip === null ? {ok: false, error: 'invalid IP address format'} : {ok: true, value: ip}
}

export interface GoCidr {
  /** The address as written (16-byte value). */
  readonly written: bigint
  /** The network: the address with the host bits cleared (16-byte value). */
  readonly ip: bigint
  /** Prefix length out of `bits`. */
  readonly prefix: number
  /** 32 when the address was written as IPv4 (a 4-byte mask), else 128. */
  readonly bits: 32 | 128
}

/** net.ParseCIDR; null when Go returns `invalid CIDR address`. */
export function goParseCIDR(s: string): GoCidr | null {
  const slash = s.indexOf('/')
  if (slash < 0) return null
  const addr = s.slice(0, slash)
  const mask = s.slice(slash + 1)
  const v4 = parseIPv4(addr)
  const ip = v4 !== null ? V4_PREFIX | BigInt(v4) : parseIPv6(addr)
  if (ip === null) return null
  // Go's dtoi: decimal digits only (leading zeros allowed), below 0xFFFFFF.
  if (!/^\d+$/.test(mask)) return null
  const digits = mask.replace(/^0+(?=\d)/, '')
  if (digits.length > 8 || Number(digits) >= 0xffffff) return null
  const bits = v4 !== null ? 32 : 128
  const prefix = Number(digits)
  if (prefix > bits) return null
  const m = mask6(bits === 32 ? prefix + 96 : prefix)
  return {written: ip, ip: ip & m, prefix, bits}
}

/** flannel's ip.IP4.UnmarshalJSON on a raw JSON token (IPv4 as a uint32). */
export function unmarshalIP4(raw: string): number {
  const r = goParseIP4(trimQuotes(raw))
  if (!r.ok) throw new GoUnmarshalerError(r.error)
  return r.value
}

/** flannel's ip.IP6.UnmarshalJSON. */
export function unmarshalIP6(raw: string): bigint {
  const r = goParseIP6(trimQuotes(raw))
  if (!r.ok) throw new GoUnmarshalerError(r.error)
  return r.value
}

export interface GoIP4Net {
  readonly ip: number
  /** flannel takes Mask.Size(): for an IPv4-mapped IPv6 CIDR this is out of 128 (::ffff:10.0.0.0/104 is 104). */
  readonly prefix: number
  /** The address as written, before the host bits were masked off. */
  readonly written: number
  readonly hostBitsSet: boolean
}

/** flannel's ip.IP4Net.UnmarshalJSON: net.ParseCIDR, then the network must be IPv4 (To4() != nil). */
export function unmarshalIP4Net(raw: string): GoIP4Net {
  const s = trimQuotes(raw)
  const c = goParseCIDR(s)
  if (!c) throw new GoUnmarshalerError(`invalid CIDR address: ${s}`)
  if (!isV4Mapped(c.ip)) throw new GoUnmarshalerError('invalid IPv4 CIDR format')
  const ip = Number(c.ip & 0xffffffffn)
  const written = Number(c.written & 0xffffffffn)
  return {ip, prefix: c.prefix, written, hostBitsSet: c.ip !== c.written}
}

export interface GoIP6Net {
  readonly ip: bigint
  readonly prefix: number
  readonly written: bigint
  readonly hostBitsSet: boolean
}

/** flannel's ip.IP6Net.UnmarshalJSON: any CIDR; an IPv4 one becomes ::ffff:a.b.c.d with its IPv4 prefix length. */
export function unmarshalIP6Net(raw: string): GoIP6Net {
  const s = trimQuotes(raw)
  const c = goParseCIDR(s)
  if (!c) throw new GoUnmarshalerError(`invalid CIDR address: ${s}`)
  return {ip: c.ip, prefix: c.prefix, written: c.written, hostBitsSet: c.ip !== c.written}
}

const utf8 = new TextEncoder()

/** Go's xtoi2: two hex digits at s[x], followed by `sep` unless at the end. */
function xtoi2(b: Uint8Array, x: number, sep: number): number | null {
  if (b.length > x + 2 && b[x + 2] !== sep) return null
  let n = 0
  for (let k = 0; k < 2; k++) {
    const c = b[x + k]
    if (c === undefined) return null
    const d =
      c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : c >= 0x41 && c <= 0x46 ? c - 0x37 : -1
    if (d < 0) return null
    n = n * 16 + d
  }
  return n
}

const hex2 = (n: number): string => n.toString(16).padStart(2, '0')

/**
 * Go's net.ParseMAC (EUI-48, EUI-64 and 20-octet InfiniBand addresses; `:`, `-` or `.` separated), as
 * net.HardwareAddr.String() prints it (lower-case, colon separated). Lengths count UTF-8 bytes, as in Go.
 */
export function goParseMAC(s: string): Decoded<string> {
  const fail = (): Decoded<string> => ({
    ok: false,
    error: s === '' ? 'invalid MAC address' : `address ${s}: invalid MAC address`,
  })
  const b = utf8.encode(s)
  if (b.length < 14) return fail()
  const out: number[] = []
  if (b[2] === 0x3a || b[2] === 0x2d) {
    if ((b.length + 1) % 3 !== 0) return fail()
    const n = (b.length + 1) / 3
    if (n !== 6 && n !== 8 && n !== 20) return fail()
    for (let x = 0, i = 0; i < n; i++, x += 3) {
      const v = xtoi2(b, x, b[2])
      if (v === null) return fail()
      out.push(v)
    }
  } else if (b[4] === 0x2e) {
    if ((b.length + 1) % 5 !== 0) return fail()
    const n = (2 * (b.length + 1)) / 5
    if (n !== 6 && n !== 8 && n !== 20) return fail()
    for (let x = 0, i = 0; i < n; i += 2, x += 5) {
      const hi = xtoi2(b.subarray(x, x + 2), 0, 0)
      const lo = xtoi2(b, x + 2, 0x2e)
      if (hi === null || lo === null) return fail()
      out.push(hi, lo)
    }
  } else return fail()
  return {ok: true, value: out.map(hex2).join(':')}
}
