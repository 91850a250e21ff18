/** Human output of leases ls. */

import type {ChalkInstance} from 'chalk'

import {formatTtl} from '../core/duration.js'
import type {LeaseJson, LeasesResult} from '../services/leases.js'
import {escapeTerminal as esc} from './escape.js'
import {renderTable} from './table.js'

import type {LeaseSort} from './leases-json.js'

export interface LeaseTableOptions {
  wide: boolean
  headers: boolean
  sort: LeaseSort
  /** Whether --subnet/--public-ip/SUBNET narrowed the listing (for the empty message). */
  filtered: boolean
  /** The etcd keyspace read (null for a snapshot): v2 counts in etcd index and modifiedIndex, not revisions. */
  keyspace: 'v2' | 'v3' | null
}

/** What the listing's revision is called: etcd's v2 API has an index (X-Etcd-Index), not revisions. */
const revisionWord = (keyspace: 'v2' | 'v3' | null) => (keyspace === 'v2' ? 'etcd index' : 'revision')

function ipNumber(ip: string): number {
  const p = ip.split('.')
  return p.length === 4 ? ((+p[0]! << 24) >>> 0) + (+p[1]! << 16) + (+p[2]! << 8) + +p[3]! : Number.MAX_SAFE_INTEGER
}

/** Rows in the order asked: subnet keeps the listing's numeric order; ties keep it too (a stable sort). */
function sorted(leases: LeaseJson[], by: LeaseSort): LeaseJson[] {
  if (by === 'subnet') return leases
  // Reservations never expire: after every lease with a TTL; unknown TTLs last.
  const ttl = (l: LeaseJson) => (l.reserved ? Number.MAX_SAFE_INTEGER - 1 : (l.ttlSeconds ?? Number.MAX_SAFE_INTEGER))
  const key = by === 'public-ip' ? (l: LeaseJson) => ipNumber(l.publicIP) : ttl
  return leases
    .map((l, i) => ({l, i, k: key(l)}))
    .sort((a, b) => a.k - b.k || a.i - b.i)
    .map((x) => x.l)
}

export function renderLeases(r: LeasesResult, o: LeaseTableOptions, c: ChalkInstance): string {
  const head = ['SUBNET', 'PUBLIC-IP', 'BACKEND', 'VTEP-MAC', 'TTL', 'EXPIRES']
  if (o.wide) head.push('VNI', 'IPV6-SUBNET', 'PUBLIC-IPV6', 'KEY', o.keyspace === 'v2' ? 'MOD-INDEX' : 'MOD-REV')
  const rows = sorted(r.leases, o.sort).map((l) => {
    const ttl = l.reserved
      ? c.cyan('reserved')
      : !r.ttlKnown || l.ttlSeconds === null
        ? 'unknown'
        : formatTtl(l.ttlSeconds)
    const row = [l.subnet, l.publicIP, esc(l.backendType) || '-', esc(l.vtepMAC ?? '-'), ttl, l.expiresAt ?? '-']
    if (o.wide)
      row.push(
        l.vni === null ? '-' : String(l.vni),
        l.ipv6Subnet ?? '-',
        l.publicIPv6 ?? '-',
        esc(l.key),
        l.modRevision,
      )
    return row
  })
  if (rows.length === 0) {
    return o.filtered && r.total > 0
      ? `No leases match (${r.total} lease(s) under the subnets prefix at ${revisionWord(o.keyspace)} ${r.revision}).`
      : `No leases under the subnets prefix (${revisionWord(o.keyspace)} ${r.revision}).`
  }
  const table = renderTable(head, rows, o.wide ? {} : {maxCell: 32})
  return o.headers ? table : table.slice(table.indexOf('\n') + 1)
}

/** One line for humans: how many, how many reserved, how many expire within the renew margin, how many malformed. */
export function renderSummary(
  r: LeasesResult,
  renewMarginSeconds: number,
  keyspace: LeaseTableOptions['keyspace'],
): string {
  const reserved = r.leases.filter((l) => l.reserved).length
  const parts = [`${r.leases.length} lease(s)`, `${reserved} reserved`]
  if (r.ttlKnown) {
    const soon = r.leases.filter((l) => !l.reserved && l.ttlSeconds !== null && l.ttlSeconds < renewMarginSeconds)
    parts.push(`${soon.length} expiring within the ${formatTtl(renewMarginSeconds)} renew margin`)
  }
  parts.push(`${r.malformed.length} malformed`)
  return `${parts.join(', ')} (${revisionWord(keyspace)} ${r.revision})`
}

/** The stderr warning for keys flanneld ignores. */
export function renderMalformed(r: LeasesResult): string | null {
  if (r.malformed.length === 0) return null
  const lines = [
    `warning: ${r.malformed.length} key(s) under the subnets prefix are ignored by flanneld (their subnets can be handed out twice):`,
  ]
  for (const m of r.malformed) lines.push(`  ${esc(m.key)}: ${esc(m.error)}`)
  return lines.join('\n')
}
