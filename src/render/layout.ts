/**
 * Word-wrapped, borderless tables for doctor's findings and the mutations' plans, laid out by cli-table3 to the
 * terminal width (render/width.ts outputWidth). The cells are wrapped here, with the same display-width function
 * every table uses (string-width; in the bundle cli-table3's own `string-width` is that function too:
 * scripts/bundle.mjs), so cli-table3 only pads and joins lines and never has to cut a cell. Cells are escaped
 * before they get here, so what is measured is what the terminal shows.
 * cli-table3's layout is quadratic in the number of rows: listings of thousands of rows use render/table.ts.
 */

import Table from 'cli-table3'

import {displayWidth, truncate, wrapText} from './width.js'

const BORDERLESS = {
  top: '',
  'top-mid': '',
  'top-left': '',
  'top-right': '',
  bottom: '',
  'bottom-mid': '',
  'bottom-left': '',
  'bottom-right': '',
  left: '',
  'left-mid': '',
  mid: '',
  'mid-mid': '',
  right: '',
  'right-mid': '',
}

/** Rows beyond this many are not given to cli-table3 (quadratic: 1,000 rows take 0.25 s, 5,000 1.5 s). */
export const LAYOUT_MAX_ROWS = 500

/** A cell wider than this is cut with `…` for the terminal (its full value is in --json). */
const MAX_CELL = 2000

export interface LayoutOptions {
  /** Total width (null: no wrapping, every column as wide as its widest cell). */
  width: number | null
  /** Spaces before every line. */
  indent?: number
  /** Spaces between columns. */
  gap?: number
  /** Per column: whether it may be wrapped (default: only the last column). Columns that are not keep their width. */
  wrap?: boolean[]
}

function clip(cell: string): string {
  return displayWidth(cell) > MAX_CELL ? truncate(cell, MAX_CELL) : cell
}

// eslint-disable-next-line no-control-regex
const SGR_G = /\u001b\[([0-9;]*)m/g
const CLOSERS = new Set(['0', '', '22', '23', '24', '27', '28', '29', '39', '49'])

/**
 * Lines of one wrapped cell, each closing the colours it leaves open and the next reopening them, so that padding
 * and the next column are never painted.
 */
function carryColours(lines: string[]): string[] {
  let open: string[] = []
  return lines.map((line) => {
    const out = open.join('') + line
    for (const m of line.matchAll(SGR_G)) {
      if (CLOSERS.has(m[1]!)) open = []
      else open.push(m[0])
    }
    return open.length > 0 ? out + '\u001b[0m' : out
  })
}

/**
 * Column widths for `rows` within `o.width`: every column as wide as its widest cell if that fits; otherwise the
 * wrappable columns share what the others leave (each at least 8 columns), and if that is too little every column
 * shares the width in proportion to its content.
 */
export function columnWidths(rows: readonly string[][], o: LayoutOptions): number[] {
  const n = Math.max(0, ...rows.map((r) => r.length))
  const natural = Array.from({length: n}, (_, i) =>
    Math.max(1, ...rows.map((r) => Math.max(0, ...wrapText(clip(r[i] ?? ''), null).map(displayWidth)))),
  )
  if (o.width === null) return natural
  const avail = o.width - (o.indent ?? 0) - (o.gap ?? 2) * (n - 1)
  if (natural.reduce((a, b) => a + b, 0) <= avail) return natural
  const wrap = natural.map((_, i) => o.wrap?.[i] ?? i === n - 1)
  const fixed = natural.reduce((a, w, i) => a + (wrap[i] ? 0 : w), 0)
  const flexible = natural.filter((_, i) => wrap[i])
  const share = (cols: number[], room: number): number[] => {
    // Columns narrower than an equal share keep their width; the rest split what is left in proportion.
    const out = cols.map(() => 0)
    let left = room
    let open = cols.map((_, i) => i)
    for (;;) {
      const each = Math.floor(left / Math.max(1, open.length))
      const small = open.filter((i) => cols[i]! <= each)
      if (small.length === 0) break
      for (const i of small) {
        out[i] = cols[i]!
        left -= cols[i]!
      }
      open = open.filter((i) => !small.includes(i))
    }
    const total = open.reduce((a, i) => a + cols[i]!, 0)
    for (const i of open) out[i] = Math.max(1, Math.floor((left * cols[i]!) / Math.max(1, total)))
    return out
  }
  if (avail - fixed >= 8 * flexible.length) {
    const widths = share(flexible, avail - fixed)
    let k = 0
    return natural.map((w, i) => (wrap[i] ? widths[k++]! : w))
  }
  return share(natural, Math.max(n, avail))
}

/**
 * `rows` laid out in `widths` (columnWidths): each cell wrapped to its column, the row as tall as its tallest cell.
 * Returns the lines, without trailing blanks. Every line is at most indent + sum(widths) + gaps columns wide.
 */
export function layoutRows(rows: readonly string[][], widths: readonly number[], o: LayoutOptions): string[] {
  if (rows.length === 0) return []
  const table = new Table({
    chars: {...BORDERLESS, middle: ' '.repeat(o.gap ?? 2)},
    style: {head: [], border: [], 'padding-left': 0, 'padding-right': 0},
    colWidths: [...widths],
    wordWrap: false,
  })
  // One table row per line of output: cli-table3 handles a multi-line cell in time quadratic in its length (it cuts
  // a copy of the whole cell character by character for every line it draws); cells of one line are cheap.
  for (const r of rows) {
    const cells = widths.map((w, i) => carryColours(wrapText(clip(r[i] ?? ''), w)))
    const height = Math.max(...cells.map((c) => c.length))
    for (let k = 0; k < height; k++) table.push(cells.map((c) => c[k] ?? ''))
  }
  const pad = ' '.repeat(o.indent ?? 0)
  return table
    .toString()
    .split('\n')
    .map((l) => (pad + l).trimEnd())
}

/** A paragraph wrapped to `width`, its continuation lines indented by `hang` spaces (null width: one line). */
export function paragraph(text: string, width: number | null, hang = 0): string[] {
  if (width === null) return text.split('\n')
  const lines = wrapText(text, width, width - hang)
  return lines.map((l, i) => (i === 0 ? l : ' '.repeat(hang) + l))
}
