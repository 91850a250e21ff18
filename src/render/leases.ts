/** Human output of leases ls. */

import type {ChalkInstance} from 'chalk'

import {formatTtl} from '../core/duration.js'
import type {LeasesResult} from '../services/leases.js'
import {escapeTerminal as esc} from './escape.js'
import {renderTable} from './table.js'

export function renderLeases(r: LeasesResult, wide: boolean, c: ChalkInstance): string {
  const head = ['SUBNET', 'PUBLIC-IP', 'BACKEND', 'VTEP-MAC', 'TTL', 'EXPIRES']
  if (wide) head.push('VNI', 'IPV6-SUBNET', 'PUBLIC-IPV6', 'KEY', 'MOD-REV')
  const rows = r.leases.map((l) => {
    const ttl = l.reserved
      ? c.cyan('reserved')
      : !r.ttlKnown || l.ttlSeconds === null
        ? 'unknown'
        : formatTtl(l.ttlSeconds)
    const row = [l.subnet, l.publicIP, esc(l.backendType) || '-', esc(l.vtepMAC ?? '-'), ttl, l.expiresAt ?? '-']
    if (wide)
      row.push(
        l.vni === null ? '-' : String(l.vni),
        l.ipv6Subnet ?? '-',
        l.publicIPv6 ?? '-',
        esc(l.key),
        l.modRevision,
      )
    return row
  })
  if (rows.length === 0) return `No leases under the subnets prefix (revision ${r.revision}).`
  return renderTable(head, rows)
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
