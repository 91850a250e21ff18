/**
 * What happened to a subnet key, from the key's previous state and one watch event (`flannelctl leases watch`).
 * Pure: the store delivers changes (v3 watch events with their prev_kv, v2 watch actions with their prevNode), this
 * names them.
 *
 * - `added`: a put of a key that did not exist.
 * - `renewed`: the same value put again with a lease (flanneld's renewal: v3 a put with a new 24 h lease, v2 a set
 *   with a new TTL; docs/flannel.md §1.4, §1.7). A re-put of the same value and the same lease is `renewed` too.
 * - `changed`: anything else on an existing key: the value changed (`changes` names the LeaseAttrs fields, or
 *   `value` when either side does not decode), or the same value lost its lease (`reserved`, what `leases reserve`
 *   does) or got one back (`unreserved`, what flanneld >= 0.18 does to a reservation, flannel-io/flannel#1329).
 * - `deleted`: the key was deleted.
 * - `expired`: the key was deleted because its TTL ran out. v2 says so (action `expire`); v3 does not, so the store
 *   asks etcd for the old lease's TimeToLive: a lease that no longer exists (TTL -1) expired or was revoked (the two
 *   cannot be told apart afterwards; see the README).
 */

import {decodeLeaseAttrs, type LeaseAttrs} from './lease-value.js'
import type {RawKV} from './leases.js'

export const LEASE_EVENT_KINDS = ['added', 'renewed', 'changed', 'deleted', 'expired'] as const
export type LeaseEventKind = (typeof LEASE_EVENT_KINDS)[number]

/** One change of a subnet key as a store delivers it. `prev` is the key's value before it, when the store knows. */
export type SubnetChange =
  | {
      readonly type: 'put'
      readonly kv: RawKV
      readonly prev: RawKV | null
      /** v2: the remaining TTL the event carried (-1 when it ran out); v3 leaves it to a TimeToLive. */
      readonly ttlSeconds?: number
    }
  | {
      readonly type: 'delete'
      readonly key: string
      /** The revision (v2: index) of the deletion. */
      readonly revision: string
      readonly prev: RawKV | null
      /** True when the store knows the key expired (v2 `expire`), false when it knows it was deleted. */
      readonly expired?: boolean
      /** v2: a whole directory was deleted or expired; every known key under `key/` went with it. */
      readonly dir?: boolean
    }

export interface Classified {
  readonly kind: LeaseEventKind
  /** What differs from the previous state (see the file comment); empty for `added`, `deleted`, `expired`. */
  readonly changes: string[]
}

const FIELDS: ReadonlyArray<[name: string, get: (a: LeaseAttrs) => unknown]> = [
  ['PublicIP', (a) => a.publicIP],
  ['PublicIPv6', (a) => a.publicIPv6],
  ['BackendType', (a) => a.backendType],
  ['BackendData', (a) => a.backendData],
  ['BackendV6Data', (a) => a.backendV6Data],
]

/** The LeaseAttrs fields that differ between two values, or ['value'] when either does not decode. */
export function valueChanges(before: string, after: string): string[] {
  if (before === after) return []
  const a = decodeLeaseAttrs(before)
  const b = decodeLeaseAttrs(after)
  if (!a.ok || !b.ok) return ['value']
  const out = FIELDS.filter(([, get]) => get(a.value) !== get(b.value)).map(([name]) => name)
  // Same fields in other bytes (key case, spacing): flanneld reads them alike, but the stored value did change.
  return out.length > 0 ? out : ['value']
}

/**
 * The kind of one change. `prev` is the key's state before it: the change's own `prev` when the store delivered one,
 * else what the caller last knew. `expired` (deletes only) is the store's answer where the change does not carry
 * one: true (its lease is gone), false, or null (unknown: reported as `deleted`).
 */
export function classifyChange(c: SubnetChange, prev: RawKV | null, expired: boolean | null = null): Classified {
  if (c.type === 'delete') return {kind: (c.expired ?? expired) === true ? 'expired' : 'deleted', changes: []}
  if (prev === null) return {kind: 'added', changes: []}
  const kv = c.kv
  if (prev.value !== kv.value) {
    const changes = valueChanges(prev.value, kv.value)
    if ((prev.lease === '0') !== (kv.lease === '0')) changes.push(kv.lease === '0' ? 'reserved' : 'unreserved')
    return {kind: 'changed', changes}
  }
  if (prev.lease !== '0' && kv.lease === '0') return {kind: 'changed', changes: ['reserved']}
  if (prev.lease === '0' && kv.lease !== '0') return {kind: 'changed', changes: ['unreserved']}
  return {kind: 'renewed', changes: prev.lease === kv.lease ? [] : ['lease']}
}

/** The state after a change: `state` (key → current RawKV) updated in place. */
export function applyChange(state: Map<string, RawKV>, c: SubnetChange): void {
  if (c.type === 'put') {
    state.set(c.kv.key, c.kv)
    return
  }
  state.delete(c.key)
  if (c.dir) {
    const under = c.key.endsWith('/') ? c.key : c.key + '/'
    for (const k of [...state.keys()]) if (k.startsWith(under)) state.delete(k)
  }
}

/** A v2 directory deletion as one delete per known key under it (each with its previous value). */
export function expandDirDelete(state: ReadonlyMap<string, RawKV>, c: SubnetChange): SubnetChange[] {
  if (c.type !== 'delete' || !c.dir) return [c]
  const under = c.key.endsWith('/') ? c.key : c.key + '/'
  return [...state.values()]
    .filter((kv) => kv.key.startsWith(under))
    .map((kv) => ({type: 'delete', key: kv.key, revision: c.revision, prev: kv, expired: c.expired}))
}

/**
 * The changes that turn `known` into `listed` (a re-list after the watch was lost, at `revision`): puts for keys
 * that are new or whose value, lease or mod revision moved, deletes for keys that are gone. In key order.
 */
export function diffSubnets(
  known: ReadonlyMap<string, RawKV>,
  listed: readonly RawKV[],
  revision: string,
): SubnetChange[] {
  const out: SubnetChange[] = []
  const seen = new Set<string>()
  for (const kv of listed) {
    seen.add(kv.key)
    const prev = known.get(kv.key) ?? null
    if (prev && prev.modRevision === kv.modRevision && prev.value === kv.value && prev.lease === kv.lease) continue
    out.push({type: 'put', kv, prev})
  }
  for (const [key, prev] of known) if (!seen.has(key)) out.push({type: 'delete', key, revision, prev})
  return out.sort((a, b) => {
    const x = a.type === 'put' ? a.kv.key : a.key
    const y = b.type === 'put' ? b.kv.key : b.key
    return x < y ? -1 : x > y ? 1 : 0
  })
}
