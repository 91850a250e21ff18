/** leases reserve / unreserve / release: TTL-0 reservations and deletions, each guarded on the revision it read. */

import {resolveNetworkConfig} from '../core/config.js'
import {MAX_LEASE_TTL_SECONDS} from '../core/duration.js'
import {ConflictError, NotFoundError, UsageError} from '../core/errors.js'
import {formatCidr4, formatIPv4, isCanonical4, overlaps4, parseCidr4, type Cidr4} from '../core/ipv4.js'
import {decodeLeases, type Lease} from '../core/leases.js'
import {encodeLeaseAttrs, parseGoIPv4} from '../core/lease-value.js'
import {reservationAdvice, reservationNote, reservationOutcome} from '../core/reservation.js'
import {makeSubnetKey, parseSubnetKey} from '../core/subnet-key.js'
import type {Confirm} from '../prompts/confirm.js'
import type {FlannelStore} from '../store/port.js'
import {isoSeconds} from './leases.js'

/** The same for etcd's v2 keyspace, read by flanneld ≤ v0.17 (tryAcquireLease keeps a TTL-less key TTL-less). */
const V2_RESERVATION_NOTE =
  'After migrate v2-to-v3 and the upgrade to flanneld ≥ v0.18, the first restart of that node re-attaches a 24h lease in v3: re-run reserve with --etcd-api v3 then.'

/** What flanneld does with a reservation, said with every reserve (core/reservation.ts; v2 with the migration caveat). */
function noteFor(store: FlannelStore): string {
  return store.api === 'v2' ? `${reservationNote('v2')} ${V2_RESERVATION_NOTE}` : reservationNote('v3')
}

/** "etcd lease" in v3, "TTL" in v2: the words of prompts and messages. */
function leaseWord(store: FlannelStore): string {
  return store.api === 'v2' ? 'TTL' : 'etcd lease'
}

/**
 * Refuses to act on a lease whose TTL has already run out. In etcd's v2 store such a key is still readable for up to
 * ~0.5 s (until the expiry sweep), and a compare-and-swap on it would succeed and bring it back.
 */
async function refuseExpired(store: FlannelStore, lease: Lease): Promise<void> {
  if (lease.reserved) return
  const ttl = (await store.leaseTtls([lease.leaseId])).get(lease.leaseId)
  if (ttl !== undefined && ttl <= 0) {
    throw new NotFoundError(
      `the ${leaseWord(store)} of ${lease.key} has run out (etcd is removing the key); nothing was written`,
      'LEASE_EXPIRED',
      'list the leases again: flannelctl leases ls',
    )
  }
}

/** Accepts `10.5.34.0/24` or flannel's key form `10.5.34.0-24` (a full key too). */
export function parseSubnetArg(s: string): Cidr4 {
  const c = parseCidr4(s)
  if (c) {
    if (c.hostBitsSet) throw new UsageError(`subnet ${s} has host bits set; write ${formatCidr4(c)}`, 'INVALID_CIDR')
    return c
  }
  // An argument must look like a key (escaped dots, the key alone or after a `/`): flannel's own expression, which
  // parseSubnetKey follows, would also take `x10.5.1.0-24` for a key.
  const k = /^(?:.*\/)?\d+\.\d+\.\d+\.\d+-\d+$/.test(s) ? parseSubnetKey(s) : null
  if (k) return k.subnet
  const shown = s.length > 64 ? `${s.slice(0, 64)}… (${s.length} characters)` : s
  throw new UsageError(`invalid subnet "${shown}": expected a CIDR such as 10.5.34.0/24`, 'INVALID_CIDR')
}

function findBySubnet(leases: readonly Lease[], sn: Cidr4): Lease | undefined {
  return leases.find((l) => l.subnet.ip === sn.ip && l.subnet.prefix === sn.prefix)
}

export interface ReserveOptions {
  subnet?: string
  publicIP?: string
  backendType?: string
  dryRun: boolean
  /** After reserving an existing lease, watch the key this long (ms) for its owner undoing it; 0 does not watch. */
  watchMs?: number
  /** Waits between looks at the key (injected by tests). */
  sleep?: (ms: number) => Promise<void>
}

/** How often the key is looked at while watching a fresh reservation. */
const WATCH_POLL_MS = 100

export interface ReserveResult {
  action: 'reserved' | 'created' | 'unchanged' | 'dry-run'
  key: string
  subnet: string
  publicIP: string
  value: string
  previousModRevision: string | null
  previousLeaseId: string | null
  revision: string | null
  note: string
  /** The etcd keyspace written (or that would be). */
  keyspace: 'v2' | 'v3'
  /** How long the key was watched after the write (ms), and that it was still reserved then; null when not watched. */
  watchedMs: number | null
}

/**
 * Watches a fresh reservation for `ms`: a running owner on etcd v3 re-leases it within one revision. Throws a
 * ConflictError (exit 3) saying what happened and what works for that release; returns how long it watched.
 */
async function watchReservation(
  store: FlannelStore,
  r: {key: string; subnet: string; publicIP: string; revision: string},
  ms: number,
  sleep: (ms: number) => Promise<void>,
): Promise<number> {
  let waited = 0
  for (;;) {
    const outcome = reservationOutcome(r.revision, await store.getKey(r.key))
    if (outcome.kind !== 'kept') {
      const what =
        outcome.kind === 're-leased'
          ? `re-leased it with etcd lease ${outcome.leaseId} (mod revision ${outcome.modRevision})`
          : outcome.kind === 'deleted'
            ? 'deleted the key'
            : `rewrote it (mod revision ${outcome.modRevision})`
      const who = outcome.kind === 're-leased' && store.api === 'v3' ? `flanneld on ${r.publicIP}` : 'a writer'
      throw new ConflictError(
        `the reservation of ${r.subnet} was undone: ${who} ${what} within ${waited} ms of the write${store.api === 'v3' ? '; flanneld ≥ v0.18 renews a key without a lease at once while it runs (flannel-io/flannel#1329)' : ''}`,
        'RESERVATION_UNDONE',
        reservationAdvice(store.api, r.subnet, r.publicIP),
        {key: r.key, reservedAtRevision: r.revision, outcome},
      )
    }
    if (waited >= ms) return waited
    const step = Math.min(WATCH_POLL_MS, ms - waited)
    await sleep(step)
    waited += step
  }
}

export async function reserveLease(store: FlannelStore, o: ReserveOptions, confirm: Confirm): Promise<ReserveResult> {
  if (o.subnet === undefined && o.publicIP === undefined)
    throw new UsageError('give a SUBNET or --public-ip', 'INVALID_FLAGS')
  const sn = o.subnet === undefined ? null : parseSubnetArg(o.subnet)
  let ip: number | null = null
  if (o.publicIP !== undefined) {
    ip = parseGoIPv4(o.publicIP)
    if (ip === null) throw new UsageError(`invalid --public-ip "${o.publicIP}": not an IPv4 address`, 'INVALID_IP')
  }
  const snap = await store.readNetwork()
  const {leases} = decodeLeases(snap.subnets)
  let lease: Lease | undefined
  if (sn) lease = findBySubnet(leases, sn)
  else {
    const mine = leases.filter((l) => l.attrs.publicIP === ip)
    if (mine.length === 0)
      throw new NotFoundError(
        `no lease with PublicIP ${o.publicIP}`,
        'LEASE_NOT_FOUND',
        'pre-reserve a subnet with: flannelctl leases reserve SUBNET --public-ip IP',
      )
    if (mine.length > 1)
      throw new UsageError(
        `PublicIP ${o.publicIP} holds ${mine.length} leases (${mine.map((l) => formatCidr4(l.subnet)).join(', ')}); name the SUBNET to reserve`,
        'AMBIGUOUS',
      )
    lease = mine[0]
  }

  if (lease) {
    if (ip !== null && lease.attrs.publicIP !== ip) {
      throw new ConflictError(
        `${formatCidr4(lease.subnet)} is leased to ${formatIPv4(lease.attrs.publicIP)}, not ${o.publicIP}`,
        'OWNED_BY_OTHER',
      )
    }
    const base = {
      key: lease.key,
      subnet: formatCidr4(lease.subnet),
      publicIP: formatIPv4(lease.attrs.publicIP),
      value: lease.value,
      previousModRevision: lease.modRevision,
      previousLeaseId: lease.leaseId,
      note: noteFor(store),
      keyspace: store.api,
      watchedMs: null,
    }
    if (lease.reserved) return {action: 'unchanged', revision: null, ...base}
    await refuseExpired(store, lease)
    if (o.dryRun) return {action: 'dry-run', revision: null, ...base}
    if (!(await confirm(`Remove the ${leaseWord(store)} from ${lease.key} so it never expires?`)))
      return {action: 'unchanged', revision: null, ...base}
    // The same bytes, put back without a lease (v2: without a TTL), only if nobody (a renewal) rewrote the key since
    // we read it.
    const {revision} = await store.putIfUnchanged(lease.key, lease.value, lease.modRevision)
    const ms = o.watchMs ?? 0
    const watchedMs =
      ms > 0
        ? await watchReservation(
            store,
            {...base, revision},
            ms,
            o.sleep ?? ((t) => new Promise((r) => setTimeout(r, t))),
          )
        : null
    return {action: 'reserved', revision, ...base, watchedMs}
  }

  if (!sn) throw new NotFoundError(`no lease with PublicIP ${o.publicIP}`, 'LEASE_NOT_FOUND')
  if (ip === null) {
    throw new NotFoundError(
      `no lease for ${formatCidr4(sn)}; to pre-reserve it for a node that has not joined, pass --public-ip`,
      'LEASE_NOT_FOUND',
    )
  }
  // Pre-reserving a subnet for a node that has not joined yet.
  if (!snap.config) throw new NotFoundError(`no flannel network config at ${store.layout.config}`, 'CONFIG_NOT_FOUND')
  const resolved = resolveNetworkConfig(snap.config.value)
  if (!resolved.ok) throw new UsageError(`the stored network config is invalid: ${resolved.error}`, 'INVALID_CONFIG')
  const eff = resolved.value.effective
  if (resolved.value.config.enableIPv6)
    throw new UsageError(
      'pre-reserving dual-stack subnets is not supported: the key would need an IPv6 subnet too',
      'UNSUPPORTED',
    )
  const e = eff.ipv4!
  const where = formatCidr4(sn)
  if (sn.prefix !== e.subnetLen) throw new UsageError(`${where} is not of SubnetLen /${e.subnetLen}`, 'INVALID_SUBNET')
  if (!isCanonical4(sn)) throw new UsageError(`${where} is not aligned`, 'INVALID_SUBNET')
  if (sn.ip < e.subnetMin || sn.ip > e.subnetMax) {
    throw new UsageError(
      `${where} is outside [SubnetMin ${formatIPv4(e.subnetMin)}, SubnetMax ${formatIPv4(e.subnetMax)}]`,
      'INVALID_SUBNET',
    )
  }
  const keySubnets = snap.subnets.map((kv) => ({kv, sk: parseSubnetKey(kv.key)})).filter((x) => x.sk !== null)
  const clash = keySubnets.find((x) => overlaps4(x.sk!.subnet, sn))
  if (clash) throw new ConflictError(`${where} overlaps the existing key ${clash.kv.key}`, 'ALREADY_EXISTS')
  const sameIP = leases.find((l) => l.attrs.publicIP === ip)
  if (sameIP) {
    throw new ConflictError(
      `PublicIP ${o.publicIP} already holds ${formatCidr4(sameIP.subnet)}; reserve that one instead (flanneld reuses the first lease with its PublicIP)`,
      'ALREADY_EXISTS',
    )
  }
  const backendType = o.backendType ?? (eff.backendType === 'udp' ? '' : eff.backendType)
  const value = encodeLeaseAttrs({publicIP: ip, publicIPv6: null, backendType, backendData: null, backendV6Data: null})
  const key = store.layout.subnetKey(makeSubnetKey(sn))
  const base = {
    key,
    subnet: where,
    publicIP: formatIPv4(ip),
    value,
    previousModRevision: null,
    previousLeaseId: null,
    note: noteFor(store),
    keyspace: store.api,
    watchedMs: null,
  }
  if (o.dryRun) return {action: 'dry-run', revision: null, ...base}
  if (!(await confirm(`Create the reservation ${key}?`))) return {action: 'unchanged', revision: null, ...base}
  const {revision} = await store.createIfAbsent(key, value)
  return {action: 'created', revision, ...base}
}

export interface UnreserveResult {
  action: 'unreserved' | 'unchanged' | 'dry-run'
  key: string
  subnet: string
  ttlSeconds: number
  leaseId: string | null
  expiresAt: string | null
  revision: string | null
  keyspace: 'v2' | 'v3'
}

export async function unreserveLease(
  store: FlannelStore,
  subnet: string,
  ttlSeconds: number,
  dryRun: boolean,
  now: number,
  confirm: Confirm,
): Promise<UnreserveResult> {
  const sn = parseSubnetArg(subnet)
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1)
    throw new UsageError(`--ttl must be at least 1s`, 'INVALID_DURATION')
  if (ttlSeconds > MAX_LEASE_TTL_SECONDS)
    throw new UsageError(
      `--ttl ${ttlSeconds}s is longer than etcd allows for a lease (at most ${MAX_LEASE_TTL_SECONDS}s, about 285 years)`,
      'INVALID_DURATION',
    )
  const snap = await store.readNetwork()
  const lease = findBySubnet(decodeLeases(snap.subnets).leases, sn)
  if (!lease) throw new NotFoundError(`no lease for ${formatCidr4(sn)}`, 'LEASE_NOT_FOUND')
  const base = {key: lease.key, subnet: formatCidr4(sn), ttlSeconds, keyspace: store.api}
  if (!lease.reserved) return {action: 'unchanged', leaseId: lease.leaseId, expiresAt: null, revision: null, ...base}
  if (dryRun) return {action: 'dry-run', leaseId: null, expiresAt: null, revision: null, ...base}
  const ask =
    store.api === 'v2'
      ? `Give ${lease.key} a TTL of ${ttlSeconds}s?`
      : `Bind ${lease.key} to a new ${ttlSeconds}s etcd lease?`
  if (!(await confirm(ask))) return {action: 'unchanged', leaseId: null, expiresAt: null, revision: null, ...base}
  const {revision, leaseId} = await store.putIfUnchanged(lease.key, lease.value, lease.modRevision, {
    ttlSeconds,
  })
  return {action: 'unreserved', leaseId, expiresAt: isoSeconds(now + ttlSeconds * 1000), revision, ...base}
}

export interface ReleaseOptions {
  subnets: string[]
  stale: boolean
  renewMarginSeconds: number
  force: boolean
  dryRun: boolean
}

export interface ReleaseTarget {
  key: string
  subnet: string
  publicIP: string
  modRevision: string
  reserved: boolean
  ttlSeconds: number | null
}

export interface ReleaseResult {
  applied: boolean
  dryRun: boolean
  selected: ReleaseTarget[]
  deleted: string[]
  lost: Array<{key: string; expectedModRevision: string; now: unknown}>
  keyspace: 'v2' | 'v3'
}

export async function releaseLeases(
  store: FlannelStore,
  o: ReleaseOptions,
  hooks: {onPlan: (targets: ReleaseTarget[]) => void; confirm: Confirm},
): Promise<ReleaseResult> {
  if (o.stale === o.subnets.length > 0)
    throw new UsageError('give SUBNET arguments or --stale (not both)', 'INVALID_FLAGS')
  const wanted = o.subnets.map(parseSubnetArg)
  const snap = await store.readNetwork()
  const {leases} = decodeLeases(snap.subnets)
  let chosen: Lease[]
  let ttls: Map<string, number> = new Map()
  if (o.stale) {
    ttls = await store.leaseTtls(leases.filter((l) => !l.reserved).map((l) => l.leaseId))
    chosen = leases.filter((l) => !l.reserved && ttls.has(l.leaseId) && ttls.get(l.leaseId)! < o.renewMarginSeconds)
  } else {
    chosen = []
    for (const sn of wanted) {
      const l = findBySubnet(leases, sn)
      if (!l) throw new NotFoundError(`no lease for ${formatCidr4(sn)}; nothing was deleted`, 'LEASE_NOT_FOUND')
      if (!chosen.includes(l)) chosen.push(l)
    }
    ttls = await store.leaseTtls(chosen.filter((l) => !l.reserved).map((l) => l.leaseId))
    const reserved = chosen.filter((l) => l.reserved)
    if (reserved.length > 0 && !o.force) {
      throw new UsageError(
        `${reserved.map((l) => formatCidr4(l.subnet)).join(', ')} ${reserved.length === 1 ? 'is a reservation' : 'are reservations'}; pass --force to release reserved subnets too; nothing was deleted`,
        'RESERVED',
      )
    }
  }
  const selected: ReleaseTarget[] = chosen.map((l) => ({
    key: l.key,
    subnet: formatCidr4(l.subnet),
    publicIP: formatIPv4(l.attrs.publicIP),
    modRevision: l.modRevision,
    reserved: l.reserved,
    ttlSeconds: l.reserved ? null : (ttls.get(l.leaseId) ?? null),
  }))
  hooks.onPlan(selected)
  const result: ReleaseResult = {
    applied: false,
    dryRun: o.dryRun,
    selected,
    deleted: [],
    lost: [],
    keyspace: store.api,
  }
  if (o.dryRun || selected.length === 0) return result
  if (!(await hooks.confirm(`Delete ${selected.length} lease key(s)?`))) return result
  const out = await store.deleteGuarded(selected)
  const final = {...result, applied: true, deleted: out.deleted, lost: out.lost}
  if (out.lost.length > 0) {
    throw new ConflictError(
      `${out.lost.length} key(s) changed since they were listed and were not deleted: ${out.lost.map((x) => `${x.key} (now ${x.now ? `${store.api === 'v2' ? 'modifiedIndex' : 'mod revision'} ${x.now.modRevision}` : 'gone'})`).join(', ')}; ${out.deleted.length} deleted`,
      'CAS_LOST',
      `list again with: flannelctl leases ls${store.api === 'v2' ? ' --etcd-api v2' : ''}`,
      final,
    )
  }
  return final
}
