/**
 * `migrate v2-to-v3`, the pure part: which of flannel's v2 keys to create in v3, skip or report as conflicts, and
 * whether the v3 keyspace read back after the copy matches v2. No I/O: snapshots and TTLs are passed in.
 *
 * Only flannel's keys move: <prefix>/config and every key flanneld lists under <prefix>/subnets (malformed ones
 * too, byte for byte, so both keyspaces hold the same thing). Other keys under the prefix are left alone and listed.
 */

import {compareCidr4} from './ipv4.js'
import type {KeyLayout} from './keys.js'
import type {NetworkSnapshot, RawKV} from './leases.js'
import {parseSubnetKey} from './subnet-key.js'
import {toV2Key} from './v2-keyspace.js'

export type MigrateAction = 'create' | 'skip' | 'conflict'

export interface MigratePlanItem {
  readonly key: string
  readonly kind: 'config' | 'subnet'
  /** create: absent in v3; skip: v3 holds the same value; conflict: v3 holds a different value. */
  readonly action: MigrateAction
  /** The remaining v2 TTL when planned (the v3 key gets a new etcd lease with it); null: no TTL, no lease. */
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
    const ttl = kv.lease === '0' ? null : (i.v2Ttls.get(kv.lease) ?? null)
    return {
      key: kv.key,
      kind,
      action: !now ? 'create' : now.value === kv.value ? 'skip' : 'conflict',
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

/**
 * The differences between the keyspaces read back after the copy, for flannel's keys in v2 (keys that vanished from
 * v2 meanwhile, expired or deleted by a flanneld <= 0.17, are not compared). Empty means verified: every v2 key is
 * in v3 with the same bytes, and every key this run created has a lease with the v2 TTL (within the tolerance) when
 * the v2 key has a TTL, and no lease when it has none.
 */
export function verifyMigration(i: VerifyInput): MigrateDifference[] {
  const inV3 = new Map<string, RawKV>()
  for (const kv of [...(i.v3.config ? [i.v3.config] : []), ...i.v3.subnets, ...i.v3.foreign]) inV3.set(kv.key, kv)
  const out: MigrateDifference[] = []
  for (const kv of [...(i.v2.config ? [i.v2.config] : []), ...i.v2.subnets]) {
    if (i.kept.has(kv.key)) continue
    const now = inV3.get(kv.key)
    if (!now) {
      out.push({
        key: kv.key,
        problem: 'missing in v3 (it appeared in v2 after the plan, or its create failed): run the migration again',
      })
      continue
    }
    if (now.value !== kv.value) {
      out.push({key: kv.key, problem: `value differs: v2 ${JSON.stringify(kv.value)}, v3 ${JSON.stringify(now.value)}`})
      continue
    }
    if (!i.created.has(kv.key)) continue
    const ttl2 = kv.lease === '0' ? null : (i.v2Ttls.get(kv.lease) ?? null)
    if (ttl2 === null) {
      if (now.lease !== '0')
        out.push({key: kv.key, problem: `v2 has no TTL (a reservation) but the v3 key has etcd lease ${now.lease}`})
      continue
    }
    if (now.lease === '0') {
      out.push({key: kv.key, problem: `v2 has a TTL of ${ttl2} s but the v3 key has no lease`})
      continue
    }
    const ttl3 = i.v3Ttls.get(now.lease)
    if (ttl3 === undefined || Math.abs(ttl3 - ttl2) > i.toleranceSeconds) {
      out.push({
        key: kv.key,
        problem: `remaining TTL differs: v2 ${ttl2} s, v3 ${ttl3 === undefined ? 'unknown' : `${ttl3} s`} (lease ${now.lease})`,
      })
    }
  }
  return out
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
