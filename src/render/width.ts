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

// Our own colour codes (SGR): zero width, never cut. Untrusted text reaches here escaped (render/escape.ts).
// eslint-disable-next-line no-control-regex
const SGR = /(\u001b\[[0-9;]*m)/

let graphemes: Intl.Segmenter | undefined

/**
 * `word` cut into pieces of at most `first` columns (then `rest`), between graphemes (colour codes kept whole,
 * taking no room).
 */
export function breakWord(word: string, first: number, rest: number = first): string[] {
  graphemes ??= new Intl.Segmenter()
  const out: string[] = []
  let cur = ''
  let w = 0
  for (const part of word.split(SGR)) {
    if (part === '') continue
    if (part.startsWith('\u001b[')) {
      cur += part
      continue
    }
    for (const {segment} of graphemes.segment(part)) {
      const cw = displayWidth(segment)
      if (w + cw > (out.length === 0 ? first : rest) && w > 0) {
        out.push(cur)
        cur = ''
        w = 0
      }
      cur += segment
      w += cw
    }
  }
  out.push(cur)
  return out
}

/**
 * `s` as lines of at most `width` display columns (`next` for every line after the first, e.g. for a hanging
 * indent): broken at spaces, a word wider than its line cut between graphemes; `\n` starts a new line. Linear in
 * `s`. `width` null: `s` split at `\n` only (no wrapping).
 */
export function wrapText(s: string, width: number | null, next: number | null = width): string[] {
  if (width === null || next === null) return s.split('\n')
  const lines: string[] = []
  const max = () => Math.max(1, lines.length === 0 ? width : next)
  for (const para of s.split('\n')) {
    if (displayWidth(para) <= max()) {
      lines.push(para)
      continue
    }
    let cur = ''
    let w = 0
    let started = false
    for (const word of para.split(' ')) {
      const ww = displayWidth(word)
      if (started && w + 1 + ww <= max()) {
        cur += ' ' + word
        w += 1 + ww
        continue
      }
      if (started) lines.push(cur)
      started = true
      if (ww <= max()) {
        cur = word
        w = ww
        continue
      }
      const pieces = breakWord(word, max(), Math.max(1, next))
      for (const piece of pieces.slice(0, -1)) lines.push(piece)
      cur = pieces.at(-1)!
      w = displayWidth(cur)
    }
    lines.push(cur)
  }
  return lines
}
