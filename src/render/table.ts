/** kubectl-like borderless tables on cli-table3, with no colour of cli-table3's own. */

import Table from 'cli-table3'

export function renderTable(head: string[], rows: string[][]): string {
  const t = new Table({
    head,
    style: {head: [], border: [], 'padding-left': 0, 'padding-right': 0},
    chars: {
      top: '', 'top-mid': '', 'top-left': '', 'top-right': '',
      bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '',
      left: '', 'left-mid': '', mid: '', 'mid-mid': '',
      right: '', 'right-mid': '', middle: '   ',
    },
  })
  t.push(...rows)
  return t
    .toString()
    .split('\n')
    .map((l) => l.trimEnd())
    .join('\n')
}
