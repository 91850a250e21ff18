/**
 * The subnets keyspace decoded as flanneld reads it: which keys are leases, which ones flanneld ignores (and why),
 * flannel's compatibility predicate, and capacity.
 */

import type {EffectiveConfig, EffectiveIPv4, NetworkConfig} from './config.js'
import {totalSubnets4} from './config.js'
import {type Cidr4, compareCidr4, mask4, parseIPv4Range, size4} from './ipv4.js'
import type {Cidr6} from './ipv6.js'
import {decodeLeaseAttrs, decodeVxlanData, type LeaseAttrs} from './lease-value.js'
import type {KeyLayout} from './keys.js'
import {parseSubnetKey, type SubnetKey} from './subnet-key.js'

/** One key-value as the store returns it (revisions and lease IDs are decimal strings, as etcd's int64). */
export interface RawKV {
  readonly key: string
  readonly value: string
  readonly createRevision: string
  readonly modRevision: string
  readonly version: string
  /** '0' when the key has no etcd lease. */
  readonly lease: string
}

export interface Lease {
  readonly key: string
  readonly subnet: Cidr4
  readonly ipv6Subnet: Cidr6 | null
  readonly attrs: LeaseAttrs
  /** The stored value, byte for byte. */
  readonly value: string
  readonly vxlan: {vni: number; vtepMAC: string} | null
  readonly createRevision: string
  readonly modRevision: string
  readonly leaseId: string
  /** A key with no etcd lease (a TTL-0 reservation). */
  readonly reserved: boolean
}

export interface MalformedKey {
  readonly key: string
  readonly value: string
  readonly error: string
}

/** Everything under the prefix, read at one revision. */
export interface NetworkSnapshot {
  readonly revision: string
  readonly config: RawKV | null
  readonly subnets: readonly RawKV[]
  /** Keys under the prefix that are neither the config nor listed by flannel's subnets prefix. */
  readonly foreign: readonly RawKV[]
}

/** Splits a range read of `<prefix>/` into config, subnet keys (as flanneld lists them) and foreign keys. */
export function classifyKeys(layout: KeyLayout, kvs: readonly RawKV[], revision: string): NetworkSnapshot {
  let config: RawKV | null = null
  const subnets: RawKV[] = []
  const foreign: RawKV[] = []
  for (const kv of kvs) {
    if (kv.key === layout.config) config = kv
    else if (kv.key.startsWith(layout.subnets)) subnets.push(kv)
    else if (kv.key.startsWith(layout.range)) foreign.push(kv)
  }
  return {revision, config, subnets, foreign}
}

/** Decodes subnet keys with flannel's rules; keys flanneld would skip ("Ignoring bad subnet node") are malformed. */
export function decodeLeases(kvs: readonly RawKV[]): {leases: Lease[]; malformed: MalformedKey[]} {
  const leases: Lease[] = []
  const malformed: MalformedKey[] = []
  for (const kv of kvs) {
    const r = decodeLease(kv)
    if (isMalformed(r)) malformed.push(r)
    else leases.push(r)
  }
  leases.sort(compareLeases)
  malformed.sort(compareMalformed)
  return {leases, malformed}
}

/** One subnet key as decodeLeases decodes it: the lease, or why flanneld skips the key. */
export function decodeLease(kv: RawKV): Lease | MalformedKey {
  const sk = parseSubnetKeyFast(kv.key) ?? parseSubnetKey(kv.key)
  if (!sk) return {key: kv.key, value: kv.value, error: `failed to parse subnet key ${kv.key}`}
  if (VXLAN_VALUE.test(kv.value)) {
    const l = decodeVxlanLease(kv, sk)
    if (l !== null) return l
  }
  const attrs = decodeLeaseAttrs(kv.value)
  if (!attrs.ok) return {key: kv.key, value: kv.value, error: `error decoding subnet lease JSON: ${attrs.error}`}
  const vx = attrs.value.backendType === 'vxlan' ? decodeVxlanData(attrs.value.backendData) : null
  return {
    key: kv.key,
    subnet: sk.subnet,
    ipv6Subnet: sk.ipv6Subnet,
    attrs: attrs.value,
    value: kv.value,
    vxlan: vx?.ok ? vx.value : null,
    createRevision: kv.createRevision,
    modRevision: kv.modRevision,
    leaseId: kv.lease,
    reserved: kv.lease === '0',
  }
}

/**
 * The value a vxlan flanneld writes, byte for byte (0.15+ with `"PublicIPv6":null`, before without it):
 * `{"PublicIP":"a.b.c.d","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":n,"VtepMAC":"m"}}` with a
 * lower-case colon MAC. One regular expression test (native code, no allocation) instead of the general scans: at
 * 5,000 leases the per-lease code still runs in V8's lower tiers, where a char-by-char scan in JavaScript is what
 * costs. decodeVxlanLease then reads the pieces at their known places.
 */
const VXLAN_VALUE =
  /^\{"PublicIP":"[0-9.]{7,15}"(?:,"PublicIPv6":null)?,"BackendType":"vxlan","BackendData":\{"VNI":(?:0|[1-9][0-9]{0,9}),"VtepMAC":"[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}"\}\}$/

/**
 * The Lease decodeLeaseAttrs and decodeVxlanData give for a value VXLAN_VALUE matched (their fast paths read such
 * text the same way), or null when the address or the VNI is out of range (the caller takes the usual path, which
 * says why). test/core/lease-decode-differential.test.ts compares it with the Go-faithful decoders.
 */
function decodeVxlanLease(kv: RawKV, sk: SubnetKey): Lease | null {
  const t = kv.value
  const n = t.length
  const q = t.indexOf('"', 13)
  const publicIP = parseIPv4Range(t, 13, q)
  if (publicIP === null) return null
  const bd = t.indexOf('{', q) // BackendData's
  let vni = 0
  for (let i = bd + 7, end = n - 32; i < end; i++) vni = vni * 10 + t.charCodeAt(i) - 48 // `,"VtepMAC":"m"}}` follows
  if (vni > 0xffffffff) return null
  return {
    key: kv.key,
    subnet: sk.subnet,
    ipv6Subnet: sk.ipv6Subnet,
    attrs: {publicIP, publicIPv6: null, backendType: 'vxlan', backendData: t.slice(bd, n - 1), backendV6Data: null},
    value: t,
    vxlan: {vni, vtepMAC: t.slice(n - 20, n - 3)},
    createRevision: kv.createRevision,
    modRevision: kv.modRevision,
    leaseId: kv.lease,
    reserved: kv.lease === '0',
  }
}

/**
 * A lease as flanneld writes every vxlan lease (VXLAN_VALUE, under a canonical `A.B.C.D-P` key), in the pieces that
 * `leases ls --json` shows, read off the stored text: what decodeLease and leaseToJson would make of it, without
 * the Lease and its parsed fields (at 5,000 leases, decoding and re-formatting them is most of the listing's work).
 */
export interface VxlanLeaseText {
  /** compareCidr4's order of the subnet, in one number: ip * 64 + prefix. */
  readonly order: number
  /** The subnet as formatCidr4 writes it (the key's last segment, `-` made `/`: its octets are canonical). */
  readonly subnet: string
  /** PublicIP as formatIPv4 writes it (the stored dotted quad: canonical). */
  readonly publicIP: string
  /** The VNI in decimal, as JSON writes the number (the stored digits: no leading zero, at most 4294967295). */
  readonly vni: string
  readonly vtepMAC: string
}

/**
 * The VxlanLeaseText of a key-value, or null when decodeLease would not take its vxlan fast path, or when the key's
 * prefix length is written with a leading zero (`-08`: the same lease, but formatCidr4 writes `/8`).
 * test/core/lease-text.test.ts compares it with decodeLease and leaseToJson.
 */
export function vxlanLeaseText(kv: RawKV): VxlanLeaseText | null {
  const key = kv.key
  const n = key.length
  const dash = key.lastIndexOf('-')
  if (dash < 0 || n - dash < 2 || n - dash > 3) return null
  let prefix = key.charCodeAt(dash + 1) - 48
  if (prefix < 0 || prefix > 9) return null
  if (n - dash === 3) {
    const d = key.charCodeAt(dash + 2) - 48
    if (prefix === 0 || d < 0 || d > 9) return null
    prefix = prefix * 10 + d
    if (prefix > 31) return null
  }
  const start = key.lastIndexOf('/', dash) + 1
  const ip = parseIPv4Range(key, start, dash)
  if (ip === null) return null
  const t = kv.value
  if (!VXLAN_VALUE.test(t)) return null
  const q = t.indexOf('"', 13)
  if (parseIPv4Range(t, 13, q) === null) return null
  const vniStart = t.indexOf('{', q) + 7 // BackendData's `{"VNI":`
  const vniEnd = t.length - 32 // `,"VtepMAC":"m"}}` follows
  const vni = t.slice(vniStart, vniEnd)
  if (vni.length === 10 && vni > '4294967295') return null
  return {
    order: ip * 64 + prefix,
    subnet: key.slice(start, dash) + '/' + key.slice(dash + 1),
    publicIP: t.slice(13, q),
    vni,
    vtepMAC: t.slice(vniEnd + 12, t.length - 3),
  }
}

export function isMalformed(r: Lease | MalformedKey): r is MalformedKey {
  return 'error' in r
}

/** The order of decodeLeases' malformed keys. */
export function compareMalformed(a: MalformedKey, b: MalformedKey): number {
  return naturalCompare(a.key, b.key)
}

/**
 * parseSubnetKey for the keys flanneld writes, `.../A.B.C.D-P` with canonical octets and a one- or two-digit prefix
 * below 32 in the last path segment; undefined for anything else (dual stack, odd spellings: the caller asks
 * parseSubnetKey). For such a key flannel's end-anchored regular expression can only match that segment (a match
 * starting earlier would have to take the `/` as one of its two unescaped dots, and what follows it does not fit),
 * so the answer is the same.
 */
function parseSubnetKeyFast(key: string): SubnetKey | undefined {
  const n = key.length
  const dash = key.lastIndexOf('-')
  if (dash < 0 || n - dash < 2 || n - dash > 3) return undefined
  const start = key.lastIndexOf('/', dash) + 1
  let prefix = 0
  for (let i = dash + 1; i < n; i++) {
    const d = key.charCodeAt(i) - 48
    if (d < 0 || d > 9) return undefined
    prefix = prefix * 10 + d
  }
  if (prefix > 31) return undefined
  const ip = parseIPv4Range(key, start, dash)
  return ip === null ? undefined : {subnet: {ip, prefix}, ipv6Subnet: null}
}

/** Keys in numeric order where they hold numbers (`10.5.9.0-24` before `10.5.10.0-24`), else by code point. */
function naturalCompare(a: string, b: string): number {
  const re = /(\d+)|(\D+)/g
  const pa = a.match(re) ?? []
  const pb = b.match(re) ?? []
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const x = pa[i]!
    const y = pb[i]!
    if (x === y) continue
    const nx = /^\d/.test(x)
    const ny = /^\d/.test(y)
    if (nx && ny) return x.length - y.length || (x < y ? -1 : 1)
    return x < y ? -1 : 1
  }
  return pa.length - pb.length
}

export function compareLeases(a: Lease, b: Lease): number {
  const c = compareCidr4(a.subnet, b.subnet)
  if (c !== 0) return c
  const x = a.ipv6Subnet?.ip ?? -1n
  const y = b.ipv6Subnet?.ip ?? -1n
  return x < y ? -1 : x > y ? 1 : a.key < b.key ? -1 : a.key > b.key ? 1 : 0
}

/** flannel's isSubnetConfigCompat and isIPv6SubnetConfigCompat: would flanneld keep this lease on restart? */
export function isLeaseCompatible(
  cfg: Pick<NetworkConfig, 'enableIPv6'>,
  eff: EffectiveConfig,
  l: Pick<Lease, 'subnet' | 'ipv6Subnet'>,
): boolean {
  if (eff.ipv4) {
    const e = eff.ipv4
    if (l.subnet.ip < e.subnetMin || l.subnet.ip > e.subnetMax || l.subnet.prefix !== e.subnetLen) return false
  }
  if (!cfg.enableIPv6) return l.ipv6Subnet === null
  if (!l.ipv6Subnet || !eff.ipv6) return false
  const e6 = eff.ipv6
  return l.ipv6Subnet.ip >= e6.subnetMin && l.ipv6Subnet.ip <= e6.subnetMax && l.ipv6Subnet.prefix === e6.subnetLen
}

/** Why a lease is incompatible, in words, or null when it is compatible. */
export function incompatibilityReason(
  cfg: Pick<NetworkConfig, 'enableIPv6'>,
  eff: EffectiveConfig,
  l: Pick<Lease, 'subnet' | 'ipv6Subnet'>,
): string | null {
  if (isLeaseCompatible(cfg, eff, l)) return null
  const e = eff.ipv4
  if (e && l.subnet.prefix !== e.subnetLen) return `prefix /${l.subnet.prefix} is not SubnetLen /${e.subnetLen}`
  if (e && (l.subnet.ip < e.subnetMin || l.subnet.ip > e.subnetMax)) return 'outside [SubnetMin, SubnetMax]'
  if (!cfg.enableIPv6) return 'has an IPv6 subnet but EnableIPv6 is off'
  if (!l.ipv6Subnet) return 'has no IPv6 subnet but EnableIPv6 is on'
  return 'IPv6 subnet outside [IPv6SubnetMin, IPv6SubnetMax] or not of IPv6SubnetLen'
}

export interface Capacity {
  readonly total: number
  readonly used: number
  readonly free: number
  readonly utilization: number
}

export type SlotRange = Pick<EffectiveIPv4, 'subnetMin' | 'subnetMax' | 'subnetLen'>

/**
 * The slots (SubnetLen-sized subnets, numbered from SubnetMin) each key overlaps, as [first, last] spans sorted by
 * start, as flannel's allocator sees them: every listed key counts, whatever its prefix length or range (Overlaps
 * compares on the shorter prefix). O(n log n).
 */
export function takenSlotSpans(e: SlotRange, taken: readonly Cidr4[]): Array<[number, number]> {
  const size = size4(e.subnetLen)
  const spans: Array<[number, number]> = []
  for (const s of taken) {
    const p = Math.min(s.prefix, e.subnetLen)
    const start = (s.ip & mask4(p)) >>> 0
    const end = start + size4(p) - 1
    const lo = Math.max(start, e.subnetMin)
    const hi = Math.min(end, e.subnetMax + size - 1)
    if (lo > hi) continue
    spans.push([Math.floor((lo - e.subnetMin) / size), Math.floor((hi - e.subnetMin) / size)])
  }
  return spans.sort((a, b) => a[0] - b[0])
}

/** How many slots in [SubnetMin, SubnetMax] some key overlaps. */
export function occupiedSlots(e: SlotRange, subnets: readonly Cidr4[]): number {
  const total = totalSubnets4(e)
  if (total === 0) return 0
  let used = 0
  let next = 0 // first slot not yet counted
  for (const [a, b] of takenSlotSpans(e, subnets)) {
    const from = Math.max(a, next)
    if (b >= from) used += b - from + 1
    next = Math.max(next, b + 1)
  }
  return Math.min(used, total)
}

export function capacity(e: EffectiveIPv4, subnets: readonly Cidr4[]): Capacity {
  const total = totalSubnets4(e)
  const used = occupiedSlots(e, subnets)
  return {total, used, free: total - used, utilization: total === 0 ? 1 : Math.round((used / total) * 10_000) / 10_000}
}
