/** Human output of doctor: one verdict per area, then the findings by severity, each with its hint. */

import type {ChalkInstance} from 'chalk'

import type {DoctorResult} from '../services/doctor.js'
import {escapeTerminal as esc} from './escape.js'

export function renderDoctor(r: DoctorResult, c: ChalkInstance): string {
  const paint = (v: string) => (v === 'ok' ? c.green(v) : v === 'error' ? c.red(v) : c.yellow(v))
  const lines = r.areas.map((a) => `${a.area.padEnd(10)} ${paint(a.verdict)}`)
  lines.push('')
  for (const sev of ['error', 'warning', 'info'] as const) {
    const fs = r.findings.filter((f) => f.severity === sev)
    if (fs.length === 0) continue
    lines.push(c.bold(`${sev === 'error' ? 'Errors' : sev === 'warning' ? 'Warnings' : 'Info'} (${fs.length}):`))
    for (const f of fs) {
      lines.push(`  ${paint(sev)} [${f.id}] ${esc(f.message)}`)
      lines.push(`    ${c.dim('hint:')} ${esc(f.hint)}`)
    }
  }
  const s = r.summary
  lines.push(
    `${s.error} error(s), ${s.warning} warning(s), ${s.info} info; checked ${r.checked.leases} lease(s) at revision ${esc(r.revision)}${r.checked.ttls ? '' : ' (no TTLs: snapshot)'}${r.checked.node ? `; node ${r.checked.node}` : ''}`,
  )
  return lines.join('\n')
}
