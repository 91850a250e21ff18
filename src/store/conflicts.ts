/** Conflict errors the store raises, kept apart from the etcd client so commands can build them without loading it. */

import {ConflictError} from '../core/errors.js'
import type {RawKV} from '../core/leases.js'

/** The conflict `network init` reports when a config is already stored. */
export function configExists(key: string, kv: RawKV | null): ConflictError {
  return new ConflictError(
    `a network config already exists at ${key} (mod revision ${kv?.modRevision ?? '?'}): ${kv?.value ?? ''}`,
    'CONFIG_EXISTS',
    'inspect it with: flannelctl network show',
    {
      key,
      value: kv?.value ?? null,
      modRevision: kv?.modRevision ?? null,
    },
  )
}
