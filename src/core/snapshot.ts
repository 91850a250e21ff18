/**
 * Offline snapshots: the output of `etcdctl get --prefix /coreos.com/network -w json` (base64 keys and values,
 * decimal revisions and lease IDs; no TTLs).
 */

import {UsageError} from './errors.js'
import type {RawKV} from './leases.js'

export interface ParsedSnapshot {
  readonly revision: string
  readonly kvs: RawKV[]
}

function b64(s: unknown, what: string, source: string): string {
  if (typeof s !== 'string')
    throw new UsageError(`snapshot ${source}: ${what} is not a base64 string`, 'INVALID_SNAPSHOT')
  return Buffer.from(s, 'base64').toString('utf8')
}

function num(v: unknown): string {
  if (typeof v === 'number' || typeof v === 'string' || typeof v === 'bigint') return String(v)
  return '0'
}

/** Parses an etcdctl JSON dump. Large integers (lease IDs) are kept exact by reading them from the text. */
export function parseEtcdctlSnapshot(text: string, source: string): ParsedSnapshot {
  // Lease IDs exceed 2^53: quote every integer that follows "lease": before JSON.parse rounds it.
  const safe = text.replace(
    /("(?:lease|revision|create_revision|mod_revision|version|cluster_id|member_id|raft_term)"\s*:\s*)(-?\d+)/g,
    '$1"$2"',
  )
  let doc: unknown
  try {
    doc = JSON.parse(safe)
  } catch (error) {
    throw new UsageError(
      `snapshot ${source} is not etcdctl JSON output: ${(error as Error).message}`,
      'INVALID_SNAPSHOT',
      'create one with: etcdctl get --prefix /coreos.com/network -w json > snapshot.json',
    )
  }
  const d = doc as {header?: {revision?: unknown}; kvs?: unknown}
  if (typeof d !== 'object' || d === null || typeof d.header !== 'object' || d.header === null) {
    throw new UsageError(
      `snapshot ${source} has no "header": expected the output of etcdctl get --prefix ... -w json`,
      'INVALID_SNAPSHOT',
    )
  }
  const kvs = d.kvs === undefined ? [] : d.kvs
  if (!Array.isArray(kvs)) throw new UsageError(`snapshot ${source}: "kvs" is not an array`, 'INVALID_SNAPSHOT')
  return {
    revision: num(d.header.revision),
    kvs: kvs.map((kv: Record<string, unknown>) => ({
      key: b64(kv.key, 'a key', source),
      value: kv.value === undefined ? '' : b64(kv.value, 'a value', source),
      createRevision: num(kv.create_revision),
      modRevision: num(kv.mod_revision),
      version: num(kv.version),
      lease: num(kv.lease ?? 0),
    })),
  }
}
