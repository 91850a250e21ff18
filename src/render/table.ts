/**
 * kubectl-like borderless tables: columns padded to their widest cell, three spaces apart, no trailing blanks.
 * Linear in the number of cells (cli-table3, used before, is quadratic and took minutes at 65,535 rows).
 * Widths ignore ANSI colour codes.
 */

import {stripVTControlCharacters} from 'node:util'

export function renderTable(head: string[], rows: string[][]): string {
  const all = [head, ...rows]
  const plain = (s: string) => (s.includes('\u001B') ? stripVTControlCharacters(s).length : s.length)
  const widths = head.map(() => 0)
  for (const r of all) for (let i = 0; i < widths.length; i++) widths[i] = Math.max(widths[i]!, plain(r[i] ?? ''))
  const last = head.length - 1
  return all
    .map((r) =>
      r
        .map((cell, i) => (i === last ? cell : cell + ' '.repeat(widths[i]! - plain(cell))))
        .join('   ')
        .trimEnd(),
    )
    .join('\n')
}
