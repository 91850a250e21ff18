/**
 * migrate v2-to-v3: copy flannel's keys from etcd's v2 keyspace (flannel <= 0.17) to v3 (flannel >= 0.18) under the
 * same prefix. Plan from one read of each keyspace, stop on conflicts unless --force, confirm, create each key only
 * if absent (a TTL key with a new etcd lease of its remaining TTL, a TTL-less key with none), then read both
 * keyspaces back and compare. v2 is never written.
 */

import {formatTtl} from '../core/duration.js'
import {ConflictError, NotFoundError} from '../core/errors.js'
import {
  LEASE_IDENTITY,
  type MigrateAction,
  type MigrateComparison,
  type MigrateDifference,
  type MigrateMatch,
  type MigratePlanItem,
  planMigration,
  sameLease,
  v2DeleteCommand,
  verifyMigration,
} from '../core/migrate.js'
import type {NetworkSnapshot, RawKV} from '../core/leases.js'
import {v2LeaseId} from '../core/v2-keyspace.js'
import type {Confirm} from '../prompts/confirm.js'
import type {FlannelStore} from '../store/port.js'

/** The v2 keyspace migrate reads, and the etcdctl flags that reach it again (for the delete command). */
export interface V2Source extends Pick<FlannelStore, 'layout' | 'readNetwork' | 'leaseTtls'> {
  etcdctlFlags(): string
  /** False when the last read saw only the config and the subnets directory (v2 auth allowed no more). */
  readonly sawWholePrefix: boolean
}

/** How far a copied key's remaining v3 TTL may be from the v2 one at verification. */
export const TTL_TOLERANCE_SECONDS = 5
/** Keys created at once (each is a lease grant and a transaction). */
const WRITE_CONCURRENCY = 16

export interface MigrateOptions {
  dryRun: boolean
  force: boolean
}

export interface MigratePlanJson {
  key: string
  kind: 'config' | 'subnet'
  action: MigrateAction
  /** For skip: v3 holds the same bytes, or the same lease in other bytes (see `leaseIdentity`). */
  match: MigrateMatch | null
  /** Remaining v2 TTL; null for a reservation; -1 for a key past its expiration (not copied). */
  ttlSeconds: number | null
  value: string
  v3Value: string | null
}

export interface MigrateConflict {
  key: string
  v2Value: string
  v3Value: string | null
  v3ModRevision: string | null
  v3LeaseId: string | null
  /** True when the key appeared in v3 between the plan and its create. */
  afterPlan: boolean
}

export interface MigrateResult {
  applied: boolean
  dryRun: boolean
  force: boolean
  prefix: string
  /** The v2 store's index (X-Etcd-Index) and the v3 revision the plan was made at. */
  v2Index: string
  v3Revision: string
  plan: MigratePlanJson[]
  /** v2 keys under the prefix that are neither the config nor subnet keys: not copied. */
  ignored: string[]
  created: Array<{key: string; leaseId: string | null; ttlSeconds: number | null; revision: string}>
  skipped: string[]
  /** TTL keys past their expiration in v2 when planned, or whose TTL ran out before they were copied: not copied. */
  expired: string[]
  conflicts: MigrateConflict[]
  /** null when nothing was written (dry run, not confirmed). */
  verified: boolean | null
  differences: MigrateDifference[]
  /** Not failures: e.g. a v2 reservation that v3 holds under a lease (flanneld >= 0.18 re-attached one). */
  notes: MigrateDifference[]
  /** What verification compared (null when it did not run). */
  compared: MigrateComparison | null
  /** The fields that make two values of a subnet key the same lease. */
  leaseIdentity: string
  deleteCommand: string
  followUps: string[]
}

async function inPool<T>(items: readonly T[], limit: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!)
  }
  await Promise.all(Array.from({length: Math.min(limit, items.length)}, worker))
}

function conflictOf(item: MigratePlanItem, now: RawKV | null, afterPlan: boolean): MigrateConflict {
  const v3 = now ?? item.v3
  return {
    key: item.key,
    v2Value: item.value,
    v3Value: v3?.value ?? null,
    v3ModRevision: v3?.modRevision ?? null,
    v3LeaseId: v3?.lease ?? null,
    afterPlan,
  }
}

function followUps(plan: MigratePlanItem[], ignored: string[], deleteCommand: string): string[] {
  const out: string[] = []
  const ttls = plan.filter((p) => p.action === 'create' && p.ttlSeconds !== null).map((p) => p.ttlSeconds!)
  if (ttls.length > 0) {
    out.push(
      `The ${ttls.length} copied lease(s) expire in v3 when their v2 TTL would have (the first in ${formatTtl(Math.min(...ttls))}) unless a flanneld >= 0.18 renews them: upgrade flanneld on every node before then (a flanneld <= 0.17 renews only its v2 key).`,
    )
  }
  if (plan.some((p) => p.kind === 'subnet' && p.ttlSeconds === null)) {
    out.push(
      'Reservations (keys with no TTL) are copied without a lease; flanneld >= 0.18 re-attaches a 24h lease when the owning node restarts (see flannelctl doctor).',
    )
  }
  if (ignored.length > 0)
    out.push(
      `${ignored.length} other key(s) under the prefix were not copied (neither the config nor subnet keys): ${ignored.join(', ')}`,
    )
  out.push(`The v2 keys are left in place. Once every flanneld runs >= 0.18, remove them with: ${deleteCommand}`)
  return out
}

export async function migrateV2ToV3(
  v3: FlannelStore,
  v2: V2Source,
  o: MigrateOptions,
  hooks: {onPlan: (r: MigrateResult) => void; confirm: Confirm},
): Promise<MigrateResult> {
  const layout = v3.layout
  const [s2, s3] = await Promise.all([v2.readNetwork(), v3.readNetwork()])
  const leasesOf = (snap: NetworkSnapshot) =>
    [...(snap.config ? [snap.config] : []), ...snap.subnets].map((kv) => kv.lease)
  const v2Ttls = await v2.leaseTtls(leasesOf(s2))
  const plan = planMigration({v2: s2, v2Ttls, v3: s3})
  if (plan.items.length === 0) {
    throw new NotFoundError(
      `no flannel keys in etcd's v2 keyspace under ${layout.prefix} (v2 index ${s2.revision}): nothing to migrate`,
      'V2_EMPTY',
      plan.ignored.length > 0
        ? `the v2 keyspace holds only other keys there: ${plan.ignored.join(', ')}`
        : 'check --etcd-prefix (flanneld --etcd-prefix) and --endpoints',
    )
  }
  // Without a read of the whole prefix (v2 auth allowed only flanneld's reads) other keys may exist there unseen.
  const deleteCommand = v2DeleteCommand(layout, plan.ignored.length > 0 || !v2.sawWholePrefix, v2.etcdctlFlags())
  const result: MigrateResult = {
    applied: false,
    dryRun: o.dryRun === true,
    force: o.force === true,
    prefix: layout.prefix,
    v2Index: s2.revision,
    v3Revision: s3.revision,
    plan: plan.items.map((p) => ({
      key: p.key,
      kind: p.kind,
      action: p.action,
      match: p.match,
      ttlSeconds: p.ttlSeconds,
      value: p.value,
      v3Value: p.v3?.value ?? null,
    })),
    ignored: plan.ignored,
    created: [],
    skipped: plan.items.filter((p) => p.action === 'skip').map((p) => p.key),
    expired: plan.items.filter((p) => p.action === 'expired').map((p) => p.key),
    conflicts: plan.items.filter((p) => p.action === 'conflict').map((p) => conflictOf(p, null, false)),
    verified: null,
    differences: [],
    notes: [],
    compared: null,
    leaseIdentity: LEASE_IDENTITY,
    deleteCommand,
    followUps: followUps(plan.items, plan.ignored, deleteCommand),
  }
  hooks.onPlan(result)
  if (result.conflicts.length > 0 && !o.force) {
    throw new ConflictError(
      `${result.conflicts.length} key(s) already exist in etcd's v3 keyspace with a different value: ${result.conflicts.map((c) => c.key).join(', ')}; nothing was written`,
      'MIGRATE_CONFLICT',
      'compare them (flannelctl leases ls --etcd-api v2, and --etcd-api v3); --force copies every other key and keeps the v3 values of these',
      result,
    )
  }
  const toCreate = plan.items.filter((p) => p.action === 'create')
  if (o.dryRun) return result
  if (
    toCreate.length > 0 &&
    !(await hooks.confirm(`Create ${toCreate.length} key(s) in etcd's v3 keyspace under ${layout.prefix}?`))
  )
    return result

  // TTLs count down from the plan's read (the prompt may have waited): each key gets what is left of its own.
  const ttlsNow = await v2.leaseTtls(toCreate.filter((p) => p.ttlSeconds !== null).map((p) => v2LeaseId(p.key)))
  const created: MigrateResult['created'] = []
  const skipped = [...result.skipped]
  const expired: string[] = [...result.expired]
  const conflicts = [...result.conflicts]
  const create = async (p: MigratePlanItem): Promise<void> => {
    const ttl = p.ttlSeconds === null ? null : (ttlsNow.get(v2LeaseId(p.key)) ?? -1)
    if (ttl !== null && ttl <= 0) {
      expired.push(p.key)
      return
    }
    try {
      if (ttl === null) {
        const {revision} = await v3.createIfAbsent(p.key, p.value)
        created.push({key: p.key, leaseId: null, ttlSeconds: null, revision})
      } else {
        const {revision, leaseId} = await v3.createIfAbsent(p.key, p.value, {ttlSeconds: ttl})
        created.push({key: p.key, leaseId, ttlSeconds: ttl, revision})
      }
    } catch (error) {
      if (!(error instanceof ConflictError) || error.code !== 'ALREADY_EXISTS') throw error
      // Created by someone else since the plan (a flanneld >= 0.18, another migrate run).
      const now = (error.details as {now?: RawKV | null} | undefined)?.now ?? null
      if (now && (now.value === p.value || (p.kind === 'subnet' && sameLease(p.value, now.value)))) skipped.push(p.key)
      else conflicts.push(conflictOf(p, now, true))
    }
  }
  // Subnet keys first, the config last (see planMigration).
  await inPool(
    toCreate.filter((p) => p.kind === 'subnet'),
    WRITE_CONCURRENCY,
    create,
  )
  for (const p of toCreate.filter((x) => x.kind === 'config')) await create(p)

  // Read both keyspaces back and compare.
  const [a2, a3] = await Promise.all([v2.readNetwork(), v3.readNetwork()])
  const createdKeys = new Set(created.map((c) => c.key))
  const [t2, t3] = await Promise.all([
    v2.leaseTtls(leasesOf(a2)),
    v3.leaseTtls(
      [...(a3.config ? [a3.config] : []), ...a3.subnets].filter((kv) => createdKeys.has(kv.key)).map((kv) => kv.lease),
    ),
  ])
  const verification = verifyMigration({
    v2: a2,
    v2Ttls: t2,
    v3: a3,
    v3Ttls: t3,
    created: createdKeys,
    kept: new Set(o.force ? conflicts.map((c) => c.key) : []),
    toleranceSeconds: TTL_TOLERANCE_SECONDS,
  })
  const order = new Map(plan.items.map((p, n) => [p.key, n]))
  const byPlan = (a: string, b: string) => order.get(a)! - order.get(b)!
  return {
    ...result,
    applied: true,
    created: created.sort((a, b) => byPlan(a.key, b.key)),
    skipped: skipped.sort(byPlan),
    expired: expired.sort(byPlan),
    conflicts,
    verified: verification.differences.length === 0,
    differences: verification.differences,
    notes: verification.notes,
    compared: verification.compared,
  }
}
