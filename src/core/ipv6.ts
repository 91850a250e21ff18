/**
 * Enough IPv6 for flannel's dual-stack keys and config: 128-bit addresses as bigint, Go-compatible parsing
 * (net.ParseIP) and formatting (net.IP.String, RFC 5952).
 */

export interface Cidr6 {
  readonly ip: bigint
  readonly prefix: number
}

const MAX = (1n << 128n) - 1n

/** Parses an IPv6 address like Go's net.ParseIP (IPv4 dotted quads are not accepted here). */
export function parseIPv6(s: string): bigint | null {
  if (!s.includes(':') || s.includes('%')) return null
  let head = s
  let tail4: number[] | null = null
  const lastColon = s.lastIndexOf(':')
  if (s.slice(lastColon + 1).includes('.')) {
    const parts = s.slice(lastColon + 1).split('.')
    if (parts.length !== 4 || parts.some((p) => !/^(?:0|[1-9]\d{0,2})$/.test(p) || Number(p) > 255)) return null
    tail4 = parts.map(Number)
    head = s.slice(0, lastColon + 1)
    if (!head.endsWith('::')) head = head.slice(0, -1) // drop the colon before the dotted quad
  }
  const groupsNeeded = tail4 ? 6 : 8
  const dbl = head.indexOf('::')
  if (dbl !== head.lastIndexOf('::')) return null
  const parseGroups = (t: string): number[] | null => {
    if (t === '') return []
    const gs = t.split(':')
    const out: number[] = []
    for (const g of gs) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null
      out.push(parseInt(g, 16))
    }
    return out
  }
  let groups: number[]
  if (dbl >= 0) {
    const left = parseGroups(head.slice(0, dbl))
    const right = parseGroups(head.slice(dbl + 2))
    if (!left || !right || left.length + right.length >= groupsNeeded) return null
    groups = [...left, ...new Array<number>(groupsNeeded - left.length - right.length).fill(0), ...right]
  } else {
    const all = parseGroups(head)
    if (!all || all.length !== groupsNeeded) return null
    groups = all
  }
  let n = 0n
  for (const g of groups) n = (n << 16n) | BigInt(g)
  if (tail4) for (const o of tail4) n = (n << 8n) | BigInt(o)
  return n
}

/** Go's net.IP.String for a 16-byte address: IPv4-mapped addresses print as dotted quads, others per RFC 5952. */
export function formatIPv6(ip: bigint): string {
  if (ip >> 32n === 0xffffn) {
    const v = Number(ip & 0xffffffffn)
    return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`
  }
  const g: number[] = []
  for (let i = 7; i >= 0; i--) g.push(Number((ip >> BigInt(i * 16)) & 0xffffn))
  let zs = -1
  let ze = -1
  for (let i = 0; i < 8; i++) {
    let j = i
    while (j < 8 && g[j] === 0) j++
    if (j - i >= 2 && j - i > ze - zs) {
      zs = i
      ze = j
    }
  }
  if (zs < 0) return g.map((x) => x.toString(16)).join(':')
  return (
    g
      .slice(0, zs)
      .map((x) => x.toString(16))
      .join(':') +
    '::' +
    g
      .slice(ze)
      .map((x) => x.toString(16))
      .join(':')
  )
}

/**
 * flannel's ip.IP6.String(): the value goes through big.Int.Bytes(), so an address whose value needs exactly
 * four bytes (2^24 .. 2^32-1) prints as an IPv4 dotted quad. Used where flannel formats a stored IP6.
 */
export function formatIP6Flannel(ip: bigint): string {
  if (ip >= 1n << 24n && ip < 1n << 32n) {
    const v = Number(ip)
    return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`
  }
  return formatIPv6(ip)
}

export function mask6(prefix: number): bigint {
  if (prefix <= 0) return 0n
  if (prefix >= 128) return MAX
  return (MAX << BigInt(128 - prefix)) & MAX
}

export function size6(prefix: number): bigint {
  return 1n << BigInt(128 - prefix)
}

export function contains6(c: Cidr6, ip: bigint): boolean {
  const m = mask6(c.prefix)
  return (c.ip & m) === (ip & m)
}

export function formatCidr6(c: Cidr6): string {
  return `${formatIP6Flannel(c.ip)}/${c.prefix}`
}

export interface ParsedCidr6 extends Cidr6 {
  readonly written: bigint
  readonly hostBitsSet: boolean
}

/** Parses an IPv6 CIDR like net.ParseCIDR (host bits masked). */
export function parseCidr6(s: string): ParsedCidr6 | null {
  const slash = s.indexOf('/')
  if (slash < 0) return null
  const ip = parseIPv6(s.slice(0, slash))
  const p = s.slice(slash + 1)
  if (ip === null || !/^\d+$/.test(p)) return null
  const prefix = Number(p.replace(/^0+(?=\d)/, '').slice(0, 4)) // Go's dtoi accepts leading zeros
  if (prefix > 128) return null
  const net = ip & mask6(prefix)
  return {ip: net, prefix, written: ip, hostBitsSet: net !== ip}
}
