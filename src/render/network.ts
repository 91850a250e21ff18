/** Human output of network show / validate / init. */

import type {ChalkInstance} from 'chalk'

import type {Capacity} from '../core/leases.js'
import type {EffectiveJson, InitResult, NetworkShowResult, ValidateResult} from '../services/network.js'
import {escapeTerminal as esc} from './escape.js'

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
    `Config:       ${esc(r.key)} (mod revision ${r.modRevision}, read at revision ${r.revision})`,
    `Stored:       ${esc(r.raw)}`,
  ]
  if (!r.valid)
    lines.push(
      c.red(`Invalid:      ${esc(r.error ?? '')}`) + ' (flanneld refuses this config and retries every second)',
    )
  if (r.effective) lines.push(...renderEffective(r.effective, c))
  if (r.capacity) lines.push(renderCapacity(r.capacity))
  for (const f of r.findings)
    lines.push((f.severity === 'error' ? c.red('error: ') : c.yellow('warning: ')) + esc(f.message))
  return lines.join('\n')
}

export function renderValidate(r: ValidateResult, c: ChalkInstance): string {
  const lines = [
    r.valid ? c.green('valid: flanneld accepts this config') : c.red('invalid: ' + esc(r.errors.join('; '))),
  ]
  if (r.effective) lines.push(...renderEffective(r.effective, c))
  for (const f of r.findings) if (f.severity === 'error') lines.push(c.red('error: ') + esc(f.message))
  for (const w of r.warnings) lines.push(c.yellow('warning: ') + esc(w))
  return lines.join('\n')
}

export function renderInit(r: InitResult, c: ChalkInstance): string {
  const head = r.applied
    ? c.green(`created ${r.key} at revision ${r.revision}`)
    : r.dryRun
      ? `dry run: would create ${r.key} with`
      : `not applied: nothing written to ${r.key}; the config would have been`
  return [head, esc(r.raw), ...renderEffective(r.effective, c)].join('\n')
}
