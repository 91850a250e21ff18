/** leases ls: the subnets keyspace decoded, with remaining TTLs from one TimeToLive per distinct lease ID. */

import {formatCidr4, formatIPv4, overlaps4, parseCidr4} from '../core/ipv4.js'
import {formatCidr6, formatIP6Flannel} from '../core/ipv6.js'
import {
  compareMalformed,
  decodeLease,
  isMalformed,
  type Lease,
  type MalformedKey,
  type RawKV,
  type VxlanLeaseText,
  vxlanLeaseText,
} from '../core/leases.js'
import {UsageError} from '../core/errors.js'
import {isVxlanDataOf, parseGoIPv4} from '../core/lease-value.js'
import {type NetworkReader, readSubnets, subnetListing} from '../store/port.js'

export interface LeaseJson {
  subnet: string
  ipv6Subnet: string | null
  publicIP: string
  publicIPv6: string | null
  backendType: string
  backendData: unknown
  vni: number | null
  vtepMAC: string | null
  reserved: boolean
  ttlSeconds: number | null
  expiresAt: string | null
  key: string
  modRevision: string
  createRevision: string
  leaseId: string
}

export interface LeasesResult<Row = LeaseJson> {
  revision: string
  source: string
  ttlKnown: boolean
  leases: Row[]
  malformed: MalformedKey[]
  /** Leases under the prefix before --public-ip/--subnet filtered them. */
  total: number
}

export interface ListOptions {
  withTtl: boolean
  publicIP?: string
  subnet?: string
  /** Wall clock in ms, for expiresAt. */
  now: number
  onProgress?: (done: number, total: number) => void
}

/** BackendData as JSON: parsed, or the text when it does not parse. */
function backendDataJson(raw: string | null, vxlan: Lease['vxlan']): unknown {
  if (raw === null) return null
  // flanneld's vxlan bytes `{"VNI":n,"VtepMAC":"m"}` parse to {VNI: n, VtepMAC: m}: built from the decoded lease,
  // which already holds both (one object fewer to parse and keep per lease).
  if (vxlan !== null && isVxlanDataOf(raw, vxlan)) return {VNI: vxlan.vni, VtepMAC: vxlan.vtepMAC}
  try {
    return JSON.parse(raw)
  } catch {
    return raw
  }
}

/** RFC 3339 in UTC without milliseconds, as etcdctl and kubectl print times. */
export function isoSeconds(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z')
}

/**
 * expiresAt for each TTL at a fixed `now`, memoised: leases granted within the same second share a TTL, so a big
 * listing formats a few hundred distinct dates instead of one per lease.
 */
function expiryFormatter(now: number): (ttl: number) => string {
  const memo = new Map<number, string>()
  return (ttl) => {
    let s = memo.get(ttl)
    if (s === undefined) memo.set(ttl, (s = isoSeconds(now + ttl * 1000)))
    return s
  }
}

/**
 * What listLeases makes of each lease: by default its LeaseJson. A caller that only renders the rows (leases ls
 * --json) gives a row of its own from the LeaseJson, and may also make one straight from a lease of flanneld's exact
 * vxlan bytes (vxlanLeaseText) without its Lease and LeaseJson being built: it must then be the row it would make
 * of that LeaseJson (test/services/leases-list.test.ts compares them), or null to be given the LeaseJson.
 */
export interface LeaseRows<Row> {
  fromJson(j: LeaseJson): Row
  fromVxlanText?(kv: RawKV, t: VxlanLeaseText, ttlSeconds: number | null, expiresAt: string | null): Row | null
}

export function leaseToJson(
  l: Lease,
  ttl: number | null,
  now: number,
  expires: (ttl: number) => string = (t) => isoSeconds(now + t * 1000),
): LeaseJson {
  return {
    subnet: formatCidr4(l.subnet),
    ipv6Subnet: l.ipv6Subnet ? formatCidr6(l.ipv6Subnet) : null,
    publicIP: formatIPv4(l.attrs.publicIP),
    publicIPv6: l.attrs.publicIPv6 === null ? null : formatIP6Flannel(l.attrs.publicIPv6),
    backendType: l.attrs.backendType,
    backendData: backendDataJson(l.attrs.backendData, l.vxlan),
    vni: l.vxlan?.vni ?? null,
    vtepMAC: l.vxlan?.vtepMAC ?? null,
    reserved: l.reserved,
    ttlSeconds: l.reserved ? null : ttl,
    expiresAt: l.reserved || ttl === null ? null : expires(ttl),
    key: l.key,
    modRevision: l.modRevision,
    createRevision: l.createRevision,
    leaseId: l.leaseId,
  }
}

export function leaseFilter(o: Pick<ListOptions, 'publicIP' | 'subnet'>): (l: Lease) => boolean {
  let ip: number | null = null
  if (o.publicIP !== undefined) {
    ip = parseGoIPv4(o.publicIP)
    if (ip === null) throw new UsageError(`invalid --public-ip "${o.publicIP}": not an IPv4 address`, 'INVALID_IP')
  }
  const sn = o.subnet === undefined ? null : parseCidr4(o.subnet)
  if (o.subnet !== undefined && !sn)
    throw new UsageError(`invalid --subnet "${o.subnet}": not an IPv4 CIDR such as 10.5.34.0/24`, 'INVALID_CIDR')
  return (l) => (ip === null || l.attrs.publicIP === ip) && (sn === null || overlaps4(sn, l.subnet))
}

export async function listLeases(reader: NetworkReader, o: ListOptions): Promise<LeasesResult>
export async function listLeases<Row>(
  reader: NetworkReader,
  o: ListOptions,
  shape: LeaseRows<Row>,
): Promise<LeasesResult<Row>>
export async function listLeases<Row>(
  reader: NetworkReader,
  o: ListOptions,
  shape?: LeaseRows<Row>,
): Promise<LeasesResult<Row | LeaseJson>> {
  const keep = leaseFilter(o)
  // With TTLs, and for rows that keep nothing per lease (leases ls --json's texts), the Range answer's bytes are kept
  // and each key decoded only when it is reached (each RawKV dropped at once: at 65,535 leases 20 MB less RSS and
  // less for the collector to copy). Otherwise the rows hold as much anyway: readNetwork()'s keys, decoded at once,
  // cost no more (the v3 listing reads each key twice).
  const listing =
    o.withTtl || shape?.fromVxlanText !== undefined
      ? await readSubnets(reader)
      : subnetListing(await reader.readNetwork())
  const filtered = o.publicIP !== undefined || o.subnet !== undefined
  // With TTLs the sweep (one TimeToLive per lease: seconds at 65,535) runs before anything is decoded, while the
  // heap holds only the listing (for v3, the Range answer's bytes), so the collections its per-call garbage causes
  // stay cheap (issue 12). Its lease IDs are read without decoding the keys: every subnet key's lease (a malformed
  // key's lease is looked up too, and its TTL not shown). With --public-ip/--subnet only the leases that pass are
  // looked up: a first pass decodes each key to learn that, and drops it.
  let ttls: Map<string, number> | null = null
  if (o.withTtl) {
    const ids: string[] = []
    for (let i = 0; i < listing.count; i++) {
      if (!filtered) {
        const id = listing.lease(i)
        if (id !== '0') ids.push(id)
        continue
      }
      const l = decodeLease(listing.kv(i))
      if (!isMalformed(l) && !l.reserved && keep(l)) ids.push(l.leaseId)
    }
    ttls = await reader.leaseTtls(ids, o.onProgress)
  }
  const expires = expiryFormatter(o.now)
  const fromJson = shape ? (j: LeaseJson) => shape.fromJson(j) : (j: LeaseJson) => j
  // A lease of flanneld's exact vxlan bytes goes straight to the caller's row when it can make one (never with a
  // filter: that needs the decoded lease).
  const fromText = filtered ? undefined : shape?.fromVxlanText?.bind(shape)
  // decodeLease, the filter and leaseToJson one key at a time: each Lease is dropped as soon as its row exists, so a
  // 65,535-lease listing holds one object graph per lease, not two (less for the collector to copy). The order is
  // decodeLeases' (compareLeases), from the numbers kept beside each row.
  const rows: Array<Row | LeaseJson> = []
  const subnet: number[] = [] // ip * 64 + prefix: compareCidr4's order in one number
  const ip6: Array<bigint | null> = []
  const keys: string[] = []
  const malformed: MalformedKey[] = []
  let total = 0
  for (let i = 0; i < listing.count; i++) {
    const kv = listing.kv(i)
    const t = fromText === undefined ? null : vxlanLeaseText(kv)
    if (t !== null) {
      // leaseToJson's TTL fields, for a lease decodeLease would have made of the same key-value
      const ttl = kv.lease === '0' || ttls === null ? null : (ttls.get(kv.lease) ?? null)
      const row = fromText!(kv, t, ttl, ttl === null ? null : expires(ttl))
      if (row !== null) {
        total++
        rows.push(row)
        subnet.push(t.order)
        ip6.push(null)
        keys.push(kv.key)
        continue
      }
    }
    const l = decodeLease(kv)
    if (isMalformed(l)) {
      malformed.push(l)
      continue
    }
    total++
    if (!keep(l)) continue
    const ttl = ttls === null ? null : (ttls.get(l.leaseId) ?? null)
    rows.push(fromJson(leaseToJson(l, ttl, o.now, expires)))
    subnet.push(l.subnet.ip * 64 + l.subnet.prefix)
    ip6.push(l.ipv6Subnet?.ip ?? null)
    keys.push(l.key)
  }
  const order = Array.from(rows, (_, i) => i).sort((a, b) => {
    const c = subnet[a]! - subnet[b]!
    if (c !== 0) return c
    const x = ip6[a] ?? -1n
    const y = ip6[b] ?? -1n
    const ka = keys[a]!
    const kb = keys[b]!
    return x < y ? -1 : x > y ? 1 : ka < kb ? -1 : ka > kb ? 1 : 0
  })
  const leases = order.map((i) => rows[i]!)
  malformed.sort(compareMalformed)
  return {revision: listing.revision, source: reader.source, ttlKnown: ttls !== null, leases, malformed, total}
}
