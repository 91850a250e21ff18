/**
 * Every write flannelctl makes, each a transaction guarded on the revision it was planned from. A lost guard is a
 * ConflictError (exit 3) that says what the key holds now.
 */

import {ConflictError} from '../core/errors.js'
import type {RawKV} from '../core/leases.js'
import {type EtcdStore, toRawKV} from './etcd-store.js'

/** etcd's default --max-txn-ops. */
export const MAX_TXN_OPS = 128

function describeNow(kv: RawKV | null): string {
  if (!kv) return 'it no longer exists'
  return `it is now at mod revision ${kv.modRevision}${kv.lease === '0' ? ' with no lease' : ` with lease ${kv.lease}`}: ${kv.value}`
}

/** Puts `value` at `key` only if the key's mod revision is still `modRevision`. */
export async function putIfUnchanged(
  store: EtcdStore,
  key: string,
  value: string,
  modRevision: string,
  opts: {leaseId?: string} = {},
): Promise<{revision: string}> {
  const c = store.raw
  const put = c.put(key).value(value)
  if (opts.leaseId) put.lease(opts.leaseId)
  const res = await store.call('a guarded write', store.timeoutMs, () =>
    c.if(key, 'Mod', '==', modRevision).then(put).else(c.get(key)).commit(),
  )
  if (!res.succeeded) {
    const kv = res.responses[0]?.response_range?.kvs[0]
    const now = kv ? toRawKV(kv) : null
    throw new ConflictError(
      `${key} changed since it was read at mod revision ${modRevision} (${describeNow(now)}); nothing was written`,
      'CAS_LOST',
      'read it again and retry',
      {key, expectedModRevision: modRevision, now},
    )
  }
  return {revision: String(res.header.revision)}
}

/** Creates `key` only if it does not exist (create revision 0), optionally bound to a lease. */
export async function createIfAbsent(
  store: EtcdStore,
  key: string,
  value: string,
  opts: {leaseId?: string} = {},
): Promise<{revision: string}> {
  const c = store.raw
  const put = c.put(key).value(value)
  if (opts.leaseId) put.lease(opts.leaseId)
  const res = await store.call('a create', store.timeoutMs, () =>
    c.if(key, 'Create', '==', 0).then(put).else(c.get(key)).commit(),
  )
  if (!res.succeeded) {
    const kv = res.responses[0]?.response_range?.kvs[0]
    const now = kv ? toRawKV(kv) : null
    throw new ConflictError(
      `${key} already exists (${describeNow(now)}); nothing was written`,
      'ALREADY_EXISTS',
      undefined,
      {key, now},
    )
  }
  return {revision: String(res.header.revision)}
}

export async function grantLease(store: EtcdStore, ttlSeconds: number): Promise<string> {
  const res = await store.call('a lease grant', store.timeoutMs, () =>
    store.raw.leaseClient.leaseGrant({TTL: ttlSeconds, ID: 0}),
  )
  return String(res.ID)
}

export async function revokeLease(store: EtcdStore, leaseId: string): Promise<void> {
  await store
    .call('a lease revoke', store.timeoutMs, () => store.raw.leaseClient.leaseRevoke({ID: leaseId}))
    .catch(() => undefined)
}

/** Puts `value` bound to a new etcd lease of `ttlSeconds`, guarded on the mod revision; the lease is revoked if the guard fails. */
export async function putWithNewLease(
  store: EtcdStore,
  key: string,
  value: string,
  modRevision: string,
  ttlSeconds: number,
): Promise<{revision: string; leaseId: string}> {
  const leaseId = await grantLease(store, ttlSeconds)
  try {
    const r = await putIfUnchanged(store, key, value, modRevision, {leaseId})
    return {...r, leaseId}
  } catch (error) {
    await revokeLease(store, leaseId)
    throw error
  }
}

export interface GuardedKey {
  readonly key: string
  readonly modRevision: string
}

export interface DeleteOutcome {
  readonly deleted: string[]
  /** Keys whose mod revision moved since they were listed: not deleted, with what they hold now. */
  readonly lost: Array<{key: string; expectedModRevision: string; now: RawKV | null}>
}

/**
 * Deletes keys, each guarded on the mod revision it was listed at. Keys go in transactions of at most
 * MAX_TXN_OPS; a transaction whose guard fails is re-read, and retried without the keys that changed, so every key
 * that is still as listed is deleted and every key that changed is reported (never deleted).
 */
export async function deleteGuarded(store: EtcdStore, keys: readonly GuardedKey[]): Promise<DeleteOutcome> {
  const c = store.raw
  const deleted: string[] = []
  const lost: DeleteOutcome['lost'] = []
  for (let i = 0; i < keys.length; i += MAX_TXN_OPS) {
    let chunk = keys.slice(i, i + MAX_TXN_OPS)
    for (let attempt = 0; chunk.length > 0 && attempt < 3; attempt++) {
      const [first, ...rest] = chunk
      let builder = c.if(first!.key, 'Mod', '==', first!.modRevision)
      for (const k of rest) builder = builder.and(k.key, 'Mod', '==', k.modRevision)
      const ops = chunk.map((k) => c.delete().key(k.key))
      const res = await store.call('a guarded delete', store.timeoutMs, () => builder.then(...ops).commit())
      if (res.succeeded) {
        deleted.push(...chunk.map((k) => k.key))
        chunk = []
        break
      }
      // Find which guards failed, report those keys, retry the rest (their guards still hold).
      const now = await Promise.all(chunk.map(async (k) => ({k, kv: await store.getKey(k.key)})))
      const changed = now.filter(({k, kv}) => kv?.modRevision !== k.modRevision)
      for (const {k, kv} of changed) lost.push({key: k.key, expectedModRevision: k.modRevision, now: kv})
      chunk = now.filter(({k, kv}) => kv?.modRevision === k.modRevision).map(({k}) => k)
    }
    for (const k of chunk) lost.push({key: k.key, expectedModRevision: k.modRevision, now: await store.getKey(k.key)})
  }
  return {deleted, lost}
}

/**
 * Creates `key` only if it does not exist, bound to a new etcd lease of `ttlSeconds` (flanneld's createSubnet:
 * grant, then a transaction on create revision 0); the lease is revoked if the key already exists.
 */
export async function createWithNewLease(
  store: EtcdStore,
  key: string,
  value: string,
  ttlSeconds: number,
): Promise<{revision: string; leaseId: string}> {
  const leaseId = await grantLease(store, ttlSeconds)
  try {
    const r = await createIfAbsent(store, key, value, {leaseId})
    return {...r, leaseId}
  } catch (error) {
    await revokeLease(store, leaseId)
    throw error
  }
}
