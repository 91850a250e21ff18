/**
 * Human output of doctor: one verdict per area, then the findings by severity, each with its hint. Findings are laid
 * out with cli-table3 (render/layout.ts): the check's label in one column, the message word-wrapped beside it to the
 * terminal width. Hints are lines of their own: their prose wraps, but a suggested command is never broken: it
 * goes on the current line when it fits, else starts a line of its own and is printed whole, however long.
 */

import type {ChalkInstance} from 'chalk'

import type {Finding} from '../core/doctor.js'
import type {DoctorResult} from '../services/doctor.js'
import {escapeTerminal as esc} from './escape.js'
import {columnWidths, layoutRows, paragraph} from './layout.js'
import {breakWord, displayWidth} from './width.js'

/** Findings of one kind beyond this many are grouped: the first SHOWN of them in full, then a count. */
const GROUP_OVER = 5
const SHOWN = 3
/** Below this many columns for the message, it goes under its label instead of beside it. */
const MIN_MESSAGE = 30

interface Token {
  text: string
  width: number
  /** A suggested command: never broken. */
  whole: boolean
  /** Whether a space separated it from the token before. */
  space: boolean
}

/** The hint as tokens: prose words, and each of the finding's commands (escaped as the hint is) as one token. */
function hintTokens(f: Finding): Token[] {
  const hint = esc(f.hint)
  const segments: Array<{text: string; whole: boolean}> = []
  let at = 0
  for (const c of f.commands ?? []) {
    const shell = esc(c.shell)
    const i = hint.indexOf(shell, at)
    if (i < 0) continue
    segments.push({text: hint.slice(at, i), whole: false}, {text: shell, whole: true})
    at = i + shell.length
  }
  segments.push({text: hint.slice(at), whole: false})
  const tokens: Token[] = []
  let space = false
  for (const s of segments) {
    if (s.whole) {
      tokens.push({text: s.text, width: displayWidth(s.text), whole: true, space})
      space = false
      continue
    }
    s.text.split(' ').forEach((word, i) => {
      if (i > 0) space = true
      if (word === '') return
      tokens.push({text: word, width: displayWidth(word), whole: false, space})
      space = false
    })
  }
  return tokens
}

/** `    hint: ...` lines: prose wrapped to `width` under a hanging indent, commands whole. */
export function hintLines(f: Finding, width: number | null, c: ChalkInstance): string[] {
  const lead = '    '
  const hang = lead.length + 'hint: '.length
  const lines: string[] = []
  let cur = `${lead}${c.dim('hint:')}`
  let w = hang - 1
  let empty = true
  const newLine = () => {
    lines.push(cur)
    cur = ' '.repeat(hang - 1)
    w = hang - 1
    empty = true
  }
  let afterCommand = false
  for (const t of hintTokens(f)) {
    const sep = empty || t.space ? 1 : 0
    // Punctuation right after a command (`CMD,`) stays on the command's line.
    const glued = afterCommand && !t.space
    if (width !== null && !empty && !glued && w + sep + t.width > width) newLine()
    afterCommand = t.whole
    if (width !== null && !t.whole && t.width > width - hang) {
      // A word wider than a line (a long key, never a command): cut, on lines of its own.
      const g = empty || t.space ? 1 : 0
      const pieces = breakWord(t.text, width - w - g, width - hang)
      cur += ' '.repeat(g) + pieces[0]
      for (const p of pieces.slice(1)) {
        newLine()
        cur += ' ' + p
      }
      w = (pieces.length > 1 ? hang : w + g) + displayWidth(pieces.at(-1)!)
    } else {
      const g = empty || t.space ? 1 : 0
      cur += ' '.repeat(g) + t.text
      w += g + t.width
    }
    empty = false
  }
  lines.push(cur)
  return lines
}

export function renderDoctor(r: DoctorResult, c: ChalkInstance, width: number | null = null): string {
  // Errors red, warnings yellow, info cyan.
  const paint = (v: string) =>
    v === 'ok' ? c.green(v) : v === 'error' ? c.red(v) : v === 'warning' ? c.yellow(v) : c.cyan(v)
  const lines = r.areas.map((a) => `${a.area.padEnd(10)} ${paint(a.verdict)}`)
  lines.push('')
  const sections: Array<{title: string; items: Array<Finding | {id: string; more: number}>}> = []
  for (const sev of ['error', 'warning', 'info'] as const) {
    const fs = r.findings.filter((f) => f.severity === sev)
    if (fs.length === 0) continue
    const byId = new Map<string, Finding[]>()
    for (const f of fs) {
      const g = byId.get(f.id)
      if (g) g.push(f)
      else byId.set(f.id, [f]) // (a copy per finding was quadratic: 65,535 findings of one kind took minutes)
    }
    const items: Array<Finding | {id: string; more: number}> = []
    for (const [id, group] of byId) {
      const shown = group.length > GROUP_OVER ? group.slice(0, SHOWN) : group
      items.push(...shown)
      if (shown.length < group.length) items.push({id, more: group.length - shown.length})
    }
    sections.push({
      title: `${sev === 'error' ? 'Errors' : sev === 'warning' ? 'Warnings' : 'Info'} (${fs.length}):`,
      items,
    })
  }
  const label = (f: Finding) => `${paint(f.severity)} [${f.id}]`
  const findings = sections.flatMap((s) => s.items.filter((x): x is Finding => 'message' in x))
  const layout = {width, indent: 2, gap: 2}
  // One set of column widths for every finding, so the messages start in one column.
  const widths = columnWidths(
    findings.map((f) => [label(f), esc(f.message)]),
    layout,
  )
  const stacked = width !== null && width - 4 - widths[0]! < MIN_MESSAGE
  for (const s of sections) {
    lines.push(c.bold(s.title))
    for (const f of s.items) {
      if ('more' in f) {
        lines.push(
          ...paragraph(`  ... and ${f.more} more [${f.id}] finding(s) like these (all of them in --json)`, width, 6),
        )
        continue
      }
      if (stacked) {
        lines.push(`  ${label(f)}`, ...paragraph(esc(f.message), width - 4).map((l) => `    ${l}`))
      } else lines.push(...layoutRows([[label(f), esc(f.message)]], widths, layout))
      lines.push(...hintLines(f, width, c))
    }
  }
  const sum = r.summary
  lines.push(
    ...paragraph(
      `${sum.error} error(s), ${sum.warning} warning(s), ${sum.info} info; checked ${r.checked.leases} lease(s) at revision ${esc(r.revision)}${r.checked.ttls ? '' : ' (no TTLs: snapshot)'}${r.checked.node ? `; node ${esc(r.checked.node)}` : ''}`,
      width,
    ),
  )
  return lines.join('\n')
}
