/** Human output of doctor: one verdict per area, then the findings by severity, each with its hint. */

import type {ChalkInstance} from 'chalk'

import type {DoctorResult} from '../services/doctor.js'
import {escapeTerminal as esc} from './escape.js'

/** Findings of one kind beyond this many are grouped: the first SHOWN of them in full, then a count. */
const GROUP_OVER = 5
const SHOWN = 3

export function renderDoctor(r: DoctorResult, c: ChalkInstance): string {
  // Errors red, warnings yellow, info cyan.
  const paint = (v: string) =>
    v === 'ok' ? c.green(v) : v === 'error' ? c.red(v) : v === 'warning' ? c.yellow(v) : c.cyan(v)
  const lines = r.areas.map((a) => `${a.area.padEnd(10)} ${paint(a.verdict)}`)
  lines.push('')
  for (const sev of ['error', 'warning', 'info'] as const) {
    const fs = r.findings.filter((f) => f.severity === sev)
    if (fs.length === 0) continue
    lines.push(c.bold(`${sev === 'error' ? 'Errors' : sev === 'warning' ? 'Warnings' : 'Info'} (${fs.length}):`))
    const byId = new Map<string, typeof fs>()
    for (const f of fs) byId.set(f.id, [...(byId.get(f.id) ?? []), f])
    for (const [id, group] of byId) {
      const shown = group.length > GROUP_OVER ? group.slice(0, SHOWN) : group
      for (const f of shown) {
        lines.push(`  ${paint(sev)} [${f.id}] ${esc(f.message)}`)
        lines.push(`    ${c.dim('hint:')} ${esc(f.hint)}`)
      }
      if (shown.length < group.length)
        lines.push(
          `  ... and ${group.length - shown.length} more [${id}] finding(s) like these (all of them in --json)`,
        )
    }
  }
  const s = r.summary
  lines.push(
    `${s.error} error(s), ${s.warning} warning(s), ${s.info} info; checked ${r.checked.leases} lease(s) at revision ${esc(r.revision)}${r.checked.ttls ? '' : ' (no TTLs: snapshot)'}${r.checked.node ? `; node ${r.checked.node}` : ''}`,
  )
  return lines.join('\n')
}
