/**
 * flannel's subnet key codec (pkg/subnet/subnet.go): `10.5.34.0-24` and dual-stack `10.12.13.0-24&fd00:12:13::-56`.
 * Parsing reproduces flannel's regular expression exactly, including its quirks: unescaped dots, no start anchor
 * (the full etcd key parses), IPv4 prefix lengths above 31 and IPv6 prefix lengths above 127 rejected.
 */

import {type Cidr4, formatIPv4, parseIPv4} from './ipv4.js'
import {type Cidr6, formatIP6Flannel, parseIPv6} from './ipv6.js'

// Copied from flannel: `(\d+\.\d+.\d+.\d+)-(\d+)(?:&([a-f\d:]+)-(\d+))?$`. RE2 and JavaScript agree on it:
// the leftmost match wins and `$` is the end of the text.
const SUBNET_KEY = /(\d+\.\d+.\d+.\d+)-(\d+)(?:&([a-f\d:]+)-(\d+))?$/

export interface SubnetKey {
  readonly subnet: Cidr4
  /** null for an IPv4-only key (flannel also treats `::/0` as no IPv6 subnet). */
  readonly ipv6Subnet: Cidr6 | null
}

/** strconv.ParseUint(s, 10, bits) */
function parseUintBits(s: string, bits: number): number | null {
  if (!/^\d+$/.test(s)) return null
  const n = BigInt(s)
  return n < 1n << BigInt(bits) ? Number(n) : null
}

/** flannel's ParseSubnetKey. Accepts a full etcd key or just its last segment; null when flannel would not parse it. */
export function parseSubnetKey(s: string): SubnetKey | null {
  const m = SUBNET_KEY.exec(s)
  if (!m) return null
  const ip = parseIPv4(m[1]!)
  const prefix = parseUintBits(m[2]!, 5)
  if (ip === null || prefix === null) return null
  let ipv6Subnet: Cidr6 | null = null
  if (m[3] !== undefined && m[3] !== '') {
    const ip6 = parseIPv6(m[3])
    const prefix6 = parseUintBits(m[4]!, 7)
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
