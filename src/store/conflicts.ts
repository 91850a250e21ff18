/**
 * Conflict errors the stores raise when a guard is lost, shared by every FlannelStore implementation (and kept apart
 * from the etcd client so commands can build them without loading it).
 */

import {ConflictError} from '../core/errors.js'
import type {RawKV} from '../core/leases.js'

function describeNow(kv: RawKV | null): string {
  if (!kv) return 'it no longer exists'
  return `it is now at mod revision ${kv.modRevision}${kv.lease === '0' ? ' with no lease' : ` with lease ${kv.lease}`}: ${kv.value}`
}

/** A guarded put lost: `key` is no longer at `modRevision`. */
export function casLost(key: string, modRevision: string, now: RawKV | null): ConflictError {
  return new ConflictError(
    `${key} changed since it was read at mod revision ${modRevision} (${describeNow(now)}); nothing was written`,
    'CAS_LOST',
    'read it again and retry',
    {key, expectedModRevision: modRevision, now},
  )
}

/** A create lost: `key` exists. */
export function alreadyExists(key: string, now: RawKV | null): ConflictError {
  return new ConflictError(
    `${key} already exists (${describeNow(now)}); nothing was written`,
    'ALREADY_EXISTS',
    undefined,
    {
      key,
      now,
    },
  )
}

/** The conflict `network init` reports when a config is already stored (in etcd's v2 keyspace: says so). */
export function configExists(key: string, kv: RawKV | null, keyspace: 'v2' | 'v3' = 'v3'): ConflictError {
  const where =
    keyspace === 'v2'
      ? ` in etcd's v2 keyspace (modifiedIndex ${kv?.modRevision ?? '?'})`
      : ` (mod revision ${kv?.modRevision ?? '?'})`
  return new ConflictError(
    `a network config already exists at ${key}${where}: ${kv?.value ?? ''}`,
    'CONFIG_EXISTS',
    `inspect it with: flannelctl network show${keyspace === 'v2' ? ' --etcd-api v2' : ''}`,
    {
      key,
      value: kv?.value ?? null,
      modRevision: kv?.modRevision ?? null,
    },
  )
}
