/** Human output of the mutation commands: plans first, results after. */

import type {ChalkInstance} from 'chalk'

import {formatTtl} from '../core/duration.js'
import type {ExpandResult} from '../services/expand.js'
import type {ReleaseResult, ReleaseTarget, ReserveResult, UnreserveResult} from '../services/lease-mutations.js'
import {escapeTerminal as esc} from './escape.js'
import {columnWidths, LAYOUT_MAX_ROWS, layoutRows, paragraph} from './layout.js'
import {renderTable} from './table.js'

/**
 * Plans are laid out to `width` (render/width.ts outputWidth; null: lines whole): sentences wrap under a hanging
 * indent, tables go through cli-table3 (render/layout.ts) with their last column wrapped, and a table of more than
 * LAYOUT_MAX_ROWS rows (a release of thousands of stale leases) through the linear renderer, unwrapped.
 */
function table(head: string[], rows: string[][], width: number | null, indent = 0): string[] {
  if (rows.length > LAYOUT_MAX_ROWS)
    return renderTable(head, rows)
      .split('\n')
      .map((l) => ' '.repeat(indent) + l)
  const all = [head, ...rows]
  const o = {width, indent, gap: 3}
  return layoutRows(all, columnWidths(all, o), o)
}

/** A numbered list, each item wrapped beside its number. */
function numbered(items: string[], width: number | null): string[] {
  const rows = items.map((f, i) => [`${i + 1}.`, esc(f)])
  const o = {width, indent: 2, gap: 1}
  return layoutRows(rows, columnWidths(rows, o), o)
}

function pretty(v: unknown, raw: string): string[] {
  return v === null ? [esc(raw)] : JSON.stringify(v, null, 2).split('\n').map(esc)
}

/** A line diff of two small JSON documents (LCS), `-` old and `+` new. */
export function diffLines(a: string[], b: string[], c: ChalkInstance): string[] {
  const n = a.length
  const m = b.length
  const lcs: number[][] = Array.from({length: n + 1}, () => new Array<number>(m + 1).fill(0))
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--)
      lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!)
  const out: string[] = []
  let i = 0
  let j = 0
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) {
      out.push('  ' + a[i++])
      j++
    } else if (i < n && (j >= m || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) out.push(c.red('- ' + a[i++]))
    else out.push(c.green('+ ' + b[j++]))
  }
  return out
}

export function renderExpandPlan(r: ExpandResult, c: ChalkInstance, width: number | null = null): string {
  const cap = (x: ExpandResult['capacity']['before']) => `${x.total} subnets (${x.used} used, ${x.free} free)`
  const lines = [
    ...paragraph(
      c.bold(`Plan: widen ${r.previous.effective.network} to ${r.next.effective.network}`) +
        ` (config ${esc(r.key)}${r.keyspace === 'v2' ? ` in etcd's v2 keyspace, modifiedIndex` : ', mod revision'} ${r.previous.modRevision})`,
      width,
      2,
    ),
    ...diffLines(pretty(r.previous.config, r.previous.raw), pretty(r.next.config, r.next.raw), c).flatMap((l) =>
      paragraph(l, width, 4),
    ),
    ...paragraph(`Capacity: ${cap(r.capacity.before)} -> ${cap(r.capacity.after)}`, width, 2),
    ...paragraph(
      `Leases checked: ${r.checkedLeases}, all stay compatible (SubnetLen /${r.next.effective.subnetLen} kept).`,
      width,
      2,
    ),
  ]
  if (r.alreadyIncompatible.length > 0) {
    lines.push(
      ...paragraph(
        c.yellow(
          `Already incompatible before this change (re-leased on restart either way): ${r.alreadyIncompatible.map((x) => x.subnet).join(', ')}`,
        ),
        width,
        2,
      ),
    )
  }
  lines.push('Follow-ups, in order:')
  lines.push(...numbered(r.followUps, width))
  if (r.restartOrder.length > 0) {
    lines.push('Nodes to restart one at a time:')
    lines.push(
      ...table(
        ['PUBLIC-IP', 'SUBNET'],
        r.restartOrder.map((x) => [x.publicIP, x.subnet]),
        width,
        2,
      ),
    )
  }
  return lines.join('\n')
}

export function renderExpandResult(r: ExpandResult, c: ChalkInstance, width: number | null = null): string {
  if (r.dryRun) return 'dry run: nothing written'
  if (!r.applied) return 'not applied: nothing written'
  return [
    ...paragraph(
      c.green(
        `applied: ${esc(r.key)} now holds Network ${r.next.effective.network} (${r.keyspace === 'v2' ? 'modifiedIndex' : 'revision'} ${r.revision}).`,
      ),
      width,
      2,
    ),
    ...paragraph(
      r.keyspace === 'v2'
        ? 'The v2 store keeps no history; to put the previous config back:'
        : `The previous config was at mod revision ${r.previous.modRevision}; to see it:`,
      width,
      2,
    ),
    // A command: one whole line, never wrapped.
    `  ${esc(r.recover)}`,
  ].join('\n')
}

export function renderReserve(r: ReserveResult, c: ChalkInstance, width: number | null = null): string {
  return paragraph(reserveText(r, c), width, 2).join('\n')
}

function reserveText(r: ReserveResult, c: ChalkInstance): string {
  switch (r.action) {
    case 'unchanged':
      return r.previousLeaseId === '0'
        ? `${r.subnet} (${r.publicIP}) is already reserved: nothing to do`
        : `not applied: nothing written`
    case 'dry-run':
      return `dry run: would ${r.previousModRevision === null ? 'create' : 'reserve'} ${esc(r.key)} = ${esc(r.value)} with no ${r.keyspace === 'v2' ? 'TTL' : 'etcd lease'}`
    case 'reserved':
      return c.green(
        `reserved ${r.subnet} (${r.publicIP}): ${esc(r.key)} has no ${r.keyspace === 'v2' ? 'TTL' : 'etcd lease'} now (${r.keyspace === 'v2' ? 'modifiedIndex' : 'revision'} ${r.revision}${r.watchedMs === null ? '' : `; still reserved after ${r.watchedMs / 1000}s`})`,
      )
    case 'created':
      return c.green(
        `created reservation ${esc(r.key)} = ${esc(r.value)} (${r.keyspace === 'v2' ? 'modifiedIndex' : 'revision'} ${r.revision})`,
      )
  }
}

export function renderUnreserve(r: UnreserveResult, c: ChalkInstance, width: number | null = null): string {
  return paragraph(unreserveText(r, c), width, 2).join('\n')
}

function unreserveText(r: UnreserveResult, c: ChalkInstance): string {
  switch (r.action) {
    case 'unchanged':
      return r.leaseId !== null && r.leaseId !== '0'
        ? `${r.subnet} is not reserved (it has ${r.keyspace === 'v2' ? 'a TTL' : `etcd lease ${r.leaseId}`}): nothing to do`
        : 'not applied: nothing written'
    case 'dry-run':
      return r.keyspace === 'v2'
        ? `dry run: would give ${esc(r.key)} a TTL of ${formatTtl(r.ttlSeconds)}`
        : `dry run: would bind ${esc(r.key)} to a new ${formatTtl(r.ttlSeconds)} etcd lease`
    case 'unreserved':
      return c.green(
        `${r.subnet} now expires at ${r.expiresAt} unless its node renews it (${r.keyspace === 'v2' ? `v2 TTL, modifiedIndex ${r.revision}` : `etcd lease ${r.leaseId}, revision ${r.revision}`})`,
      )
  }
}

export function renderReleasePlan(targets: ReleaseTarget[], width: number | null = null): string {
  if (targets.length === 0) return 'Nothing to release.'
  const rows = targets.map((t) => [
    t.subnet,
    t.publicIP,
    t.reserved ? 'reserved' : t.ttlSeconds === null ? 'unknown' : formatTtl(t.ttlSeconds),
    esc(t.key),
  ])
  return [
    `Will delete ${targets.length} lease key(s):`,
    ...table(['SUBNET', 'PUBLIC-IP', 'TTL', 'KEY'], rows, width),
  ].join('\n')
}

export function renderReleaseResult(r: ReleaseResult, c: ChalkInstance): string {
  if (r.dryRun) return 'dry run: nothing deleted'
  if (!r.applied) return r.selected.length === 0 ? '' : 'not applied: nothing deleted'
  return c.green(`deleted ${r.deleted.length} key(s)`)
}
