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

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

function invalid(source: string, what: string): UsageError {
  return new UsageError(
    `snapshot ${source}: ${what}`,
    'INVALID_SNAPSHOT',
    'create one with: etcdctl get --prefix /coreos.com/network -w json > snapshot.json',
  )
}

function describe(v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'an array'
  if (typeof v === 'string') return v.length > 40 ? `a string of ${v.length} characters` : JSON.stringify(v)
  if (typeof v === 'object') return 'an object'
  return typeof v === 'number' || typeof v === 'boolean' ? `${typeof v} ${v}` : typeof v
}

function b64(s: unknown, where: string, source: string): string {
  if (typeof s !== 'string' || !BASE64.test(s)) throw invalid(source, `${where} is ${describe(s)}, not a base64 string`)
  return Buffer.from(s, 'base64').toString('utf8')
}

/** An integer field (quoted from the text before parsing so int64 stays exact); absent means 0. */
function int(v: unknown, where: string, source: string): string {
  if (v === undefined) return '0'
  if (typeof v === 'string' && /^-?\d+$/.test(v)) return v
  throw invalid(source, `${where} is ${describe(v)}, not an integer`)
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
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw invalid(source, `the document is ${describe(doc)}, not etcdctl's JSON object`)
  const d = doc as {header?: {revision?: unknown}; kvs?: unknown}
  if (typeof d.header !== 'object' || d.header === null || Array.isArray(d.header)) {
    throw new UsageError(
      `snapshot ${source} has no "header": expected the output of etcdctl get --prefix ... -w json`,
      'INVALID_SNAPSHOT',
    )
  }
  const kvs = d.kvs === undefined || d.kvs === null ? [] : d.kvs
  if (!Array.isArray(kvs)) throw invalid(source, `"kvs" is ${describe(kvs)}, not an array`)
  return {
    revision: int(d.header.revision, 'header.revision', source),
    kvs: kvs.map((kv: unknown, i: number) => {
      const at = `kvs[${i}]`
      if (typeof kv !== 'object' || kv === null || Array.isArray(kv))
        throw invalid(source, `${at} is ${describe(kv)}, not a key-value object`)
      const o = kv as Record<string, unknown>
      return {
        key: b64(o.key, `${at}.key`, source),
        value: o.value === undefined ? '' : b64(o.value, `${at}.value`, source),
        createRevision: int(o.create_revision, `${at}.create_revision`, source),
        modRevision: int(o.mod_revision, `${at}.mod_revision`, source),
        version: int(o.version, `${at}.version`, source),
        lease: int(o.lease, `${at}.lease`, source),
      }
    }),
  }
}
