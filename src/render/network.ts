/** Human output of network show / validate / init. */

import type {ChalkInstance} from 'chalk'

import type {Capacity} from '../core/leases.js'
import type {EffectiveJson, InitResult, NetworkShowResult, ValidateResult} from '../services/network.js'
import {escapeTerminal as esc} from './escape.js'
import {columnWidths, layoutRows, paragraph} from './layout.js'

/**
 * `Label:  value` lines with every value in one column: the labels are padded to the longest one (at least the
 * 14 columns of the IPv4-only layout), so IPv6SubnetLen and friends line up with the rest.
 */
function aligned(lines: string[]): string {
  const re = /^([A-Z][A-Za-z0-9]*:) +/
  const width = Math.max(14, ...lines.map((l) => (re.exec(l)?.[1]!.length ?? 0) + 1))
  return lines.map((l) => l.replace(re, (_, label: string) => label.padEnd(width))).join('\n')
}

/** The stored config on one line: a long one (a 1.2 MB config) is cut, its full text is in --json. */
function storedLine(raw: string): string {
  const max = 200
  if (raw.length <= max) return esc(raw)
  return `${esc(raw.slice(0, max))}… (${Buffer.byteLength(raw)} bytes in all; the whole config is in --json)`
}

function pct(u: number): string {
  return `${(u * 100).toFixed(1)}%`
}

export function renderEffective(e: EffectiveJson, c: ChalkInstance): string[] {
  const d = (name: string) => (e.defaulted.includes(name) ? c.dim(' (default)') : '')
  const lines: string[] = []
  if (e.network) {
    lines.push(`Network:      ${e.network}`)
    lines.push(`SubnetLen:    ${e.subnetLen}${d('subnetLen')}`)
    lines.push(`SubnetMin:    ${e.subnetMin}${d('subnetMin')}`)
    lines.push(`SubnetMax:    ${e.subnetMax}${d('subnetMax')}`)
  }
  if (e.ipv6) {
    lines.push(`IPv6Network:  ${e.ipv6.network}`)
    lines.push(`IPv6SubnetLen: ${e.ipv6.subnetLen}${d('ipv6SubnetLen')}`)
    lines.push(`IPv6SubnetMin: ${e.ipv6.subnetMin}${d('ipv6SubnetMin')}`)
    lines.push(`IPv6SubnetMax: ${e.ipv6.subnetMax}${d('ipv6SubnetMax')}`)
  }
  const b = e.backend
  let backend = b.type
  if (b.vni !== null)
    backend += ` (VNI ${b.vni}, port ${b.port}${b.directRouting ? ', DirectRouting' : ''}${b.gbp ? ', GBP' : ''}${b.mtu ? `, MTU ${b.mtu}` : ''})`
  lines.push(`Backend:      ${backend}`)
  return lines
}

export function renderCapacity(cap: Capacity): string {
  return `Capacity:     ${cap.used} of ${cap.total} subnets used, ${cap.free} free (${pct(cap.utilization)})`
}

export function renderNetworkShow(r: NetworkShowResult, c: ChalkInstance): string {
  const lines = [
    // etcd's v2 API has no revisions: a key's modifiedIndex and the store's etcd index (X-Etcd-Index).
    r.keyspace === 'v2'
      ? `Config:       ${esc(r.key)} (v2 keyspace, modifiedIndex ${r.modRevision}, read at etcd index ${r.revision})`
      : `Config:       ${esc(r.key)} (mod revision ${r.modRevision}, read at revision ${r.revision})`,
    `Stored:       ${storedLine(r.raw)}`,
  ]
  if (!r.valid)
    lines.push(
      c.red(`Invalid:      ${esc(r.error ?? '')}`) + ' (flanneld refuses this config and retries every second)',
    )
  if (r.effective) lines.push(...renderEffective(r.effective, c))
  if (r.capacity) lines.push(renderCapacity(r.capacity))
  for (const f of r.findings)
    lines.push((f.severity === 'error' ? c.red('error: ') : c.yellow('warning: ')) + esc(f.message))
  return aligned(lines)
}

export function renderValidate(r: ValidateResult, c: ChalkInstance): string {
  const lines = [
    r.valid ? c.green('valid: flanneld accepts this config') : c.red('invalid: ' + esc(r.errors.join('; '))),
  ]
  if (r.effective) lines.push(...renderEffective(r.effective, c))
  for (const f of r.findings) if (f.severity === 'error') lines.push(c.red('error: ') + esc(f.message))
  for (const w of r.warnings) lines.push(c.yellow('warning: ') + esc(w))
  return aligned(lines)
}

export function renderInit(r: InitResult, c: ChalkInstance, width: number | null = null): string {
  const head = r.applied
    ? c.green(`created ${esc(r.key)} at ${r.keyspace === 'v2' ? 'modifiedIndex' : 'revision'} ${r.revision}`)
    : r.dryRun
      ? `dry run: would create ${esc(r.key)} with`
      : `not applied: nothing written to ${esc(r.key)}; the config would have been`
  // The plan laid out to the terminal (render/layout.ts): labels in one column, values wrapped beside them.
  const rows = renderEffective(r.effective, c).map((l) => {
    const m = /^([A-Z][A-Za-z0-9]*:) +(.*)$/.exec(l)
    return m ? [m[1]!.padEnd(13), m[2]!] : [l, '']
  })
  const o = {width, gap: 1}
  const widths = columnWidths(rows, o)
  return [...paragraph(head, width, 2), ...paragraph(esc(r.raw), width, 2), ...layoutRows(rows, widths, o)].join('\n')
}
