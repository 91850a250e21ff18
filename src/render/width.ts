/**
 * The one display-width function of every table (string-width: East Asian wide characters and emoji count 2,
 * combining marks 0, ANSI colour codes nothing), with a fast path for printable ASCII, which is almost every cell.
 */

import stringWidth from 'string-width'

const ASCII = /^[\u0020-\u007e]*$/

export function displayWidth(s: string): number {
  return ASCII.test(s) ? s.length : stringWidth(s)
}

/** `s` cut to at most `max` columns, ending in `…` when cut (colour-coded cells are never cut). */
export function truncate(s: string, max: number): string {
  if (displayWidth(s) <= max || s.includes('\u001B')) return s
  let out = ''
  let w = 0
  for (const ch of s) {
    const cw = displayWidth(ch)
    if (w + cw > max - 1) break
    out += ch
    w += cw
  }
  return out + '…'
}
