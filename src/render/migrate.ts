/** Human output of migrate v2-to-v3: the plan first, the result (and verification) after. */

import type {ChalkInstance} from 'chalk'

import {formatTtl} from '../core/duration.js'
import type {MigrateResult} from '../services/migrate.js'
import {escapeTerminal as esc} from './escape.js'
import {renderTable} from './table.js'

export function renderMigratePlan(r: MigrateResult, c: ChalkInstance): string {
  const lines = [
    c.bold(
      `Plan: copy flannel's keys under ${r.prefix} from etcd's v2 keyspace (index ${r.v2Index}) to v3 (revision ${r.v3Revision})`,
    ),
  ]
  const paint = (a: string) =>
    a === 'create' ? c.green(a) : a === 'conflict' ? c.red(a) : a === 'expired' ? c.yellow(a) : a
  const rows = r.plan.map((p) => {
    const ttl =
      p.action === 'expired'
        ? 'expired in v2'
        : p.ttlSeconds !== null
          ? `${formatTtl(p.ttlSeconds)} (new etcd lease)`
          : p.kind === 'config'
            ? '-'
            : 'reserved (no lease)'
    const note =
      p.action === 'skip'
        ? p.match === 'lease'
          ? 'same lease already in v3 (other bytes)'
          : 'same value already in v3'
        : p.action === 'conflict'
          ? 'v3 holds a different value'
          : p.action === 'expired'
            ? 'past its expiration: not copied'
            : ''
    return [paint(p.action), esc(p.key), ttl, note]
  })
  lines.push(renderTable(['ACTION', 'KEY', 'TTL', 'NOTE'], rows))
  const n = (a: string) => r.plan.filter((p) => p.action === a).length
  lines.push(
    `${n('create')} to create, ${n('skip')} to skip, ${n('conflict')} conflict(s)${n('expired') > 0 ? `, ${n('expired')} expired in v2 (not copied)` : ''}${r.ignored.length > 0 ? `; ${r.ignored.length} other key(s) under the prefix are not copied` : ''}`,
  )
  if (r.conflicts.length > 0) {
    lines.push(
      c.red(
        r.force
          ? 'Conflicts (--force: the v3 values are kept):'
          : 'Conflicts (nothing is written unless --force, which keeps the v3 values):',
      ),
    )
    for (const x of r.conflicts)
      lines.push(`  ${esc(x.key)}`, `    v2: ${esc(x.v2Value)}`, `    v3: ${esc(x.v3Value ?? '(gone)')}`)
  }
  return lines.join('\n')
}

export function renderMigrateResult(r: MigrateResult, c: ChalkInstance): string {
  if (r.dryRun) return 'dry run: nothing written'
  if (!r.applied) return 'not applied: nothing written'
  const leased = r.created.filter((x) => x.leaseId !== null).length
  const lines = [
    c.green(
      `created ${r.created.length} key(s) in v3 (${leased} with a new etcd lease, ${r.created.length - leased} without)`,
    ) +
      `, skipped ${r.skipped.length} (already in v3)${r.expired.length > 0 ? `, ${r.expired.length} expired in v2 (not copied): ${r.expired.join(', ')}` : ''}`,
  ]
  const late = r.conflicts.filter((x) => x.afterPlan)
  if (late.length > 0) {
    lines.push(
      c.red(`${late.length} key(s) appeared in v3 with a different value after the plan and were not written:`),
    )
    for (const x of late)
      lines.push(`  ${esc(x.key)}`, `    v2: ${esc(x.v2Value)}`, `    v3: ${esc(x.v3Value ?? '(gone)')}`)
  }
  const k = r.compared
  const what = k
    ? `compared ${k.keys} v2 key(s) with v3: ${k.sameBytes} byte for byte, ${k.sameLease} as the same lease in other bytes (${r.leaseIdentity}); lease-ness of ${k.leaseNess} (a v2 TTL is an etcd lease, no TTL is no lease); remaining TTLs of ${k.ttls} created key(s) within a few seconds${k.expired > 0 ? `; ${k.expired} expired in v2, not compared` : ''}${k.kept > 0 ? `; ${k.kept} kept with their v3 value (--force), not compared` : ''}`
    : ''
  if (r.verified) {
    lines.push(c.green(`verified: ${what}`))
  } else {
    if (what) lines.push(what)
    lines.push(c.red(`verification failed: ${r.differences.length} difference(s) between the v2 and v3 keyspaces:`))
    for (const d of r.differences) lines.push(`  ${esc(d.key)}: ${esc(d.problem)}`)
  }
  for (const x of r.notes) lines.push(c.yellow(`note: ${esc(x.key)}: ${esc(x.problem)}`))
  lines.push('Follow-ups:')
  r.followUps.forEach((f, i) => lines.push(`  ${i + 1}. ${esc(f)}`))
  return lines.join('\n')
}
