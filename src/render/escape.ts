/**
 * Terminal safety for untrusted text. Every string that came from etcd, a snapshot or the kernel is passed through
 * `escapeTerminal` before it reaches a terminal: control characters (C0, DEL, C1) and the invisible Unicode
 * formatting characters that reorder or hide text (bidi overrides and isolates, line/paragraph separators) are shown
 * as visible escapes (`\x1b`, `\n`, `\u202e`), so a key cannot colour, move the cursor, clear the screen or hide
 * part of a line. `--json` keeps exact values (JSON escapes C0 itself; `escapeJsonForTerminal` adds the rest).
 */

// C0 (U+0000-U+001F), DEL and C1 (U+007F-U+009F), line/paragraph separators, bidi embeddings, overrides, isolates.
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/
// eslint-disable-next-line no-control-regex
const UNSAFE_G = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g

const NAMED: Record<string, string> = {'\n': '\\n', '\r': '\\r', '\t': '\\t'}

function visible(ch: string): string {
  const named = NAMED[ch]
  if (named) return named
  const cp = ch.codePointAt(0)!
  return cp <= 0xff ? `\\x${cp.toString(16).padStart(2, '0')}` : `\\u${cp.toString(16).padStart(4, '0')}`
}

/** `s` with every control and invisible formatting character shown as a visible escape (linear; `s` if clean). */
export function escapeTerminal(s: string): string {
  return UNSAFE.test(s) ? s.replace(UNSAFE_G, visible) : s
}

// JSON.stringify already escapes C0; DEL, C1 and the formatting characters pass through raw.
const JSON_UNSAFE_G = /[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g

/** A piece of JSON text with the characters JSON leaves raw written as `\uXXXX`: the same JSON value, safe to show. */
export function escapeJsonForTerminal(text: string): string {
  return text.replace(JSON_UNSAFE_G, (ch) => `\\u${ch.codePointAt(0)!.toString(16).padStart(4, '0')}`)
}

// Our own colours (SGR: ESC [ ... m) and newlines pass; every other control character is escaped.
// eslint-disable-next-line no-control-regex
const OUTPUT_G = /\u001b\[[0-9;]*m|[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g

/**
 * The last line of defence for human output, applied to everything written: newlines and colour codes pass, any
 * other control character is escaped. Renderers escape each untrusted field themselves (so a key's own colour
 * codes are shown as `\x1b[31m`, which this pass cannot tell from ours).
 */
export function escapeOutput(s: string): string {
  return s.replace(OUTPUT_G, (m) => (m.length > 1 ? m : visible(m)))
}
