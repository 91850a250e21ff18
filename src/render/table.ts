/**
 * kubectl-like borderless tables: columns padded to their widest cell, three spaces apart, no trailing blanks.
 * Linear in the number of cells (cli-table3, used before, is quadratic and took minutes at 65,535 rows).
 * Widths are display widths (render/width.ts): wide and combining characters align, colour codes take no room.
 * With `maxCell`, longer cells are cut with an ellipsis (the full value is in -o wide and --json).
 */

import {displayWidth, truncate} from './width.js'

export function renderTable(head: string[], rows: string[][], o: {maxCell?: number} = {}): string {
  const all =
    o.maxCell === undefined ? [head, ...rows] : [head, ...rows.map((r) => r.map((c) => truncate(c, o.maxCell!)))]
  const widths = head.map(() => 0)
  const cellWidths = all.map((r) => r.map(displayWidth))
  for (const r of cellWidths) for (let i = 0; i < widths.length; i++) widths[i] = Math.max(widths[i]!, r[i] ?? 0)
  const last = head.length - 1
  return all
    .map((r, j) =>
      r
        .map((cell, i) => (i === last ? cell : cell + ' '.repeat(widths[i]! - cellWidths[j]![i]!)))
        .join('   ')
        .trimEnd(),
    )
    .join('\n')
}
