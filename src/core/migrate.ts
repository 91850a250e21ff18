/**
 * `migrate v2-to-v3`, the pure part: which of flannel's v2 keys to create in v3, skip or report as conflicts, and
 * whether the v3 keyspace read back after the copy matches v2. No I/O: snapshots and TTLs are passed in.
 *
 * Only flannel's keys move: <prefix>/config and every key flanneld lists under <prefix>/subnets (malformed ones
 * too, byte for byte, so both keyspaces hold the same thing). Other keys under the prefix are left alone and listed.
 */

import {compareCidr4, formatCidr4} from './ipv4.js'
import type {KeyLayout} from './keys.js'
import type {NetworkSnapshot, RawKV} from './leases.js'
import {decodeLeaseAttrs, decodeVxlanData} from './lease-value.js'
import {parseSubnetKey} from './subnet-key.js'
import {toV2Key} from './v2-keyspace.js'

/**
 * create: absent in v3; skip: v3 already holds it (see MigratePlanItem.match); conflict: v3 holds something else;
 * expired: the v2 key is past its expiration (a dying lease, see v2HasTtl) and is not copied.
 */
export type MigrateAction = 'create' | 'skip' | 'conflict' | 'expired'

/** How a v3 key was found to hold the v2 one: the same bytes, or the same lease in flanneld >= 0.18's bytes. */
export type MigrateMatch = 'bytes' | 'lease'

/** The fields sameLease() compares, as said in messages. */
export const LEASE_IDENTITY = 'subnet key, PublicIP, PublicIPv6, BackendType and vxlan VtepMAC'

/**
 * Whether two values of the same subnet key are the same lease: equal PublicIP, PublicIPv6 (absent = null),
 * BackendType and, for vxlan, VtepMAC. flanneld >= 0.18 rewrites a v0.11 lease
 * `{"PublicIP":"…","BackendType":"vxlan","BackendData":{"VtepMAC":"…"}}` as
 * `{"PublicIP":"…","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"…"}}` when it renews
 * or re-acquires it: other bytes, the same lease. Values flanneld cannot decode are the same only byte for byte.
 */
export function sameLease(a: string, b: string): boolean {
  if (a === b) return true
  const x = decodeLeaseAttrs(a)
  const y = decodeLeaseAttrs(b)
  if (!x.ok || !y.ok) return false
  const p = x.value
  const q = y.value
  if (p.publicIP !== q.publicIP || p.publicIPv6 !== q.publicIPv6 || p.backendType !== q.backendType) return false
  if (p.backendType !== 'vxlan') return true
  const m = decodeVxlanData(p.backendData)
  const n = decodeVxlanData(q.backendData)
  return m.ok && n.ok && m.value.vtepMAC === n.value.vtepMAC
}

function match(kind: 'config' | 'subnet', v2: string, v3: string): MigrateMatch | null {
  if (v2 === v3) return 'bytes'
  return kind === 'subnet' && sameLease(v2, v3) ? 'lease' : null
}

/** The remaining v2 TTL of a key: null for none (a reservation), -1 when it has run out or is unknown. */
function v2Ttl(kv: RawKV, ttls: ReadonlyMap<string, number>): number | null {
  if (kv.lease === '0') return null
  const t = ttls.get(kv.lease)
  return t === undefined || t <= 0 ? -1 : t
}

export interface MigratePlanItem {
  readonly key: string
  readonly kind: 'config' | 'subnet'
  /** create: absent in v3; skip: v3 holds the same value or lease; conflict: v3 holds another; expired: dying in v2. */
  readonly action: MigrateAction
  /** For skip: how v3 was found to hold it. */
  readonly match: MigrateMatch | null
  /**
   * The remaining v2 TTL when planned (the v3 key gets a new etcd lease with it); null: no TTL and no expiration (a
   * reservation, copied without a lease); -1 for an expired key.
   */
  readonly ttlSeconds: number | null
  /** The v2 value, byte for byte. */
  readonly value: string
  /** What v3 holds now (skip and conflict), else null. */
  readonly v3: {value: string; modRevision: string; lease: string} | null
}

export interface MigratePlan {
  /** In write order: subnet keys in numeric order, then the config last (see planMigration). */
  readonly items: MigratePlanItem[]
  /** v2 keys under the prefix that are neither the config nor subnet keys: not copied. */
  readonly ignored: string[]
}

function compareKeys(a: string, b: string): number {
  const x = parseSubnetKey(a)
  const y = parseSubnetKey(b)
  if (x && y) {
    const c = compareCidr4(x.subnet, y.subnet)
    if (c !== 0) return c
  } else if (x || y) return x ? -1 : 1
  return a < b ? -1 : a > b ? 1 : 0
}

/**
 * The plan. The config comes last: flanneld >= 0.18 nodes waiting for a config start allocating the moment it
 * appears in v3, and by then every existing lease must already be there, or one could take a subnet the copy is
 * about to create.
 */
export function planMigration(i: {
  v2: NetworkSnapshot
  v2Ttls: ReadonlyMap<string, number>
  v3: NetworkSnapshot
}): MigratePlan {
  const inV3 = new Map<string, RawKV>()
  for (const kv of [...(i.v3.config ? [i.v3.config] : []), ...i.v3.subnets, ...i.v3.foreign]) inV3.set(kv.key, kv)
  const item = (kv: RawKV, kind: MigratePlanItem['kind']): MigratePlanItem => {
    const now = inV3.get(kv.key)
    const ttl = v2Ttl(kv, i.v2Ttls)
    const m = now ? match(kind, kv.value, now.value) : null
    return {
      key: kv.key,
      kind,
      action: ttl === -1 ? 'expired' : !now ? 'create' : m ? 'skip' : 'conflict',
      match: ttl === -1 ? null : m,
      ttlSeconds: ttl,
      value: kv.value,
      v3: now ? {value: now.value, modRevision: now.modRevision, lease: now.lease} : null,
    }
  }
  const subnets = [...i.v2.subnets].sort((a, b) => compareKeys(a.key, b.key)).map((kv) => item(kv, 'subnet'))
  const items = i.v2.config ? [...subnets, item(i.v2.config, 'config')] : subnets
  return {items, ignored: i.v2.foreign.map((kv) => kv.key)}
}

export interface MigrateDifference {
  readonly key: string
  readonly problem: string
}

export interface VerifyInput {
  readonly v2: NetworkSnapshot
  readonly v2Ttls: ReadonlyMap<string, number>
  readonly v3: NetworkSnapshot
  readonly v3Ttls: ReadonlyMap<string, number>
  /** Keys this run created: their TTL (or its absence) is checked too. */
  readonly created: ReadonlySet<string>
  /** Conflicting keys whose v3 value --force kept: not differences. */
  readonly kept: ReadonlySet<string>
  /** How far a created key's remaining TTL may be from its v2 one (v2 rounds up, v3 down, and time passes). */
  readonly toleranceSeconds: number
}

/** What verification compared, in counts, so the result can say exactly that. */
export interface MigrateComparison {
  /** v2 keys (config and subnet keys) compared with v3. */
  readonly keys: number
  /** ... of which v3 holds byte for byte. */
  readonly sameBytes: number
  /** ... of which v3 holds as the same lease in other bytes (LEASE_IDENTITY). */
  readonly sameLease: number
  /** Keys whose lease-ness was compared: a v2 TTL must be a v3 lease, a v2 key without TTL a key without lease. */
  readonly leaseNess: number
  /** Keys created by this run whose remaining v3 TTL was compared with the v2 one. */
  readonly ttls: number
  /** v2 keys past their expiration when read back: not compared. */
  readonly expired: number
  /** Keys kept with their v3 value by --force: not compared. */
  readonly kept: number
}

export interface MigrateVerification {
  /** Empty means verified. */
  readonly differences: MigrateDifference[]
  /** What is worth knowing but not a failure (a reservation flanneld >= 0.18 has put back under a lease). */
  readonly notes: MigrateDifference[]
  readonly compared: MigrateComparison
}

/**
 * Compares the keyspaces read back after the copy, for flannel's keys in v2. For every v2 key still alive: v3 holds
 * it byte for byte, or (subnet keys) as the same lease (sameLease); and with the same lease-ness: a key with a v2 TTL
 * is bound to an etcd lease in v3 (a v3 key without one would never expire: a lease turned into a reservation), a
 * v2 key without TTL has no lease in v3 when this run created it. A key this run created also has the v2 TTL within
 * the tolerance. A key this run created without a lease that has since vanished from v2 is a difference too (v3 would
 * keep forever what v2 dropped). Keys that vanished from v2 otherwise, or are past their expiration, are not compared.
 */
export function verifyMigration(i: VerifyInput): MigrateVerification {
  const inV3 = new Map<string, RawKV>()
  for (const kv of [...(i.v3.config ? [i.v3.config] : []), ...i.v3.subnets, ...i.v3.foreign]) inV3.set(kv.key, kv)
  const out: MigrateDifference[] = []
  const notes: MigrateDifference[] = []
  const c = {keys: 0, sameBytes: 0, sameLease: 0, leaseNess: 0, ttls: 0, expired: 0, kept: 0}
  const inV2 = new Set<string>()
  const all: Array<[RawKV, 'config' | 'subnet']> = [
    ...(i.v2.config ? [[i.v2.config, 'config'] as [RawKV, 'config']] : []),
    ...i.v2.subnets.map((kv) => [kv, 'subnet'] as [RawKV, 'subnet']),
  ]
  for (const [kv, kind] of all) {
    inV2.add(kv.key)
    if (i.kept.has(kv.key)) {
      c.kept++
      continue
    }
    const ttl2 = v2Ttl(kv, i.v2Ttls)
    if (ttl2 === -1) {
      c.expired++
      continue
    }
    c.keys++
    const now = inV3.get(kv.key)
    if (!now) {
      out.push({
        key: kv.key,
        problem: 'missing in v3 (it appeared in v2 after the plan, or its create failed): run the migration again',
      })
      continue
    }
    const m = match(kind, kv.value, now.value)
    if (m === null) {
      out.push({key: kv.key, problem: `value differs: v2 ${JSON.stringify(kv.value)}, v3 ${JSON.stringify(now.value)}`})
      continue
    }
    if (m === 'bytes') c.sameBytes++
    else c.sameLease++
    c.leaseNess++
    const created = i.created.has(kv.key)
    if (ttl2 !== null && now.lease === '0') {
      out.push({
        key: kv.key,
        problem: `v2 has a TTL of ${ttl2} s but the v3 key has no lease: it would never expire in v3 (give it one: flannelctl leases unreserve ${subnetArg(kv.key)} --etcd-api v3 --ttl ${ttl2}s)`,
      })
      continue
    }
    if (ttl2 === null && now.lease !== '0') {
      if (created)
        out.push({key: kv.key, problem: `v2 has no TTL (a reservation) but the v3 key has etcd lease ${now.lease}`})
      else
        notes.push({
          key: kv.key,
          problem: `a reservation in v2 (no TTL) but bound to etcd lease ${now.lease} in v3 (flanneld >= 0.18 re-attaches a 24h lease when its node restarts): reserve it again with flannelctl leases reserve ${subnetArg(kv.key)} --etcd-api v3`,
        })
      continue
    }
    if (!created || ttl2 === null) continue
    c.ttls++
    const ttl3 = i.v3Ttls.get(now.lease)
    if (ttl3 === undefined || Math.abs(ttl3 - ttl2) > i.toleranceSeconds) {
      out.push({
        key: kv.key,
        problem: `remaining TTL differs: v2 ${ttl2} s, v3 ${ttl3 === undefined ? 'unknown' : `${ttl3} s`} (lease ${now.lease})`,
      })
    }
  }
  for (const key of i.created) {
    if (inV2.has(key)) continue
    const now = inV3.get(key)
    if (now && now.lease === '0')
      out.push({
        key,
        problem: 'copied without a lease, but it has since vanished from v2 (deleted or expired): v3 keeps it forever',
      })
  }
  return {differences: out, notes, compared: c}
}

/** `10.5.34.0/24` for a subnet key, else the key itself. */
function subnetArg(key: string): string {
  const sk = parseSubnetKey(key)
  return sk ? formatCidr4(sk.subnet) : key
}

/**
 * The etcdctl command that would delete the migrated v2 keys (flannelctl never runs it). With other keys under the
 * prefix, only the config and the subnets directory are named, so those keys survive.
 */
export function v2DeleteCommand(layout: KeyLayout, hasForeign: boolean, flags: string): string {
  const cmd = `ETCDCTL_API=2 etcdctl${flags ? ' ' + flags : ''}`
  if (!hasForeign) return `${cmd} rm --recursive ${toV2Key(layout.prefix)}`
  return `${cmd} rm ${toV2Key(layout.config)} && ${cmd} rm --recursive ${toV2Key(layout.subnets)}`
}
