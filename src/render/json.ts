/**
 * `JSON.stringify(value, null, 2)`, byte for byte, produced in pieces: long arrays are emitted element by element, so
 * a 65,535-lease listing never exists as one 35 MB string (plus its Buffer copy) before it is written.
 * Long arrays go out in slices of 1,024 elements.
 */

const ELEMENTS_PER_PIECE = 1024
/** Characters of rendered elements gathered before a piece is handed on. */
const PIECE_CHARS = 1 << 16

/** Renders one element of an array as `JSON.stringify(element, null, 2)` would, its lines after the first indented. */
export type ElementRenderer<T> = (element: T, indent: string) => string

const elementRenderers = new WeakMap<readonly unknown[], ElementRenderer<never>>()

/**
 * Renders every element of `array` with `render` (which must produce exactly what JSON.stringify would: a fast path
 * for a known shape, such as leases ls's 65,535 leases) whenever jsonPieces meets this array.
 */
export function renderElementsWith<T>(array: readonly T[], render: ElementRenderer<T>): void {
  elementRenderers.set(array, render)
}

/**
 * Writes a whole array as `JSON.stringify(array, null, 2)` would at `indent` (the indentation of the line it starts
 * on), in pieces: strings or UTF-8 bytes (leases ls's texts, kept as bytes, are copied out without being decoded).
 */
export type ArrayRenderer<T> = (array: readonly T[], indent: string) => Iterable<string | Uint8Array>

const arrayRenderers = new WeakMap<readonly unknown[], ArrayRenderer<never>>()

/** Renders `array` with `render` whenever jsonPieces meets it (before any element renderer). */
export function renderArrayWith<T>(array: readonly T[], render: ArrayRenderer<T>): void {
  arrayRenderers.set(array, render)
}

export function* jsonPieces(value: unknown, indent = ''): Generator<string | Uint8Array> {
  const whole = Array.isArray(value) ? (arrayRenderers.get(value) as ArrayRenderer<unknown> | undefined) : undefined
  if (whole !== undefined) {
    yield* whole(value as unknown[], indent)
    return
  }
  const render = Array.isArray(value)
    ? (elementRenderers.get(value) as ElementRenderer<unknown> | undefined)
    : undefined
  if (render !== undefined) {
    const array = value as unknown[]
    if (array.length === 0) {
      yield '[]'
      return
    }
    const inner = indent + '  '
    const sep = ',\n' + inner
    // Elements gathered into pieces of ~64 KiB: one resumption of this generator (and of the writer's) and one
    // encoding call per piece instead of per element.
    let piece = '[\n' + inner + render(array[0], inner)
    for (let i = 1; i < array.length; i++) {
      if (piece.length >= PIECE_CHARS) {
        yield piece
        piece = ''
      }
      piece += sep + render(array[i], inner)
    }
    yield piece + '\n' + indent + ']'
    return
  }
  if (Array.isArray(value) && value.length > 256) {
    // Elements are stringified ELEMENTS_PER_PIECE at a time (one JSON.stringify call and one re-indent per slice,
    // not per element): the slice's own "[\n" and "\n]" are cut off and its lines moved to this depth.
    yield '['
    for (let i = 0; i < value.length; i += ELEMENTS_PER_PIECE) {
      const body = JSON.stringify(value.slice(i, i + ELEMENTS_PER_PIECE), null, 2).slice(2, -2)
      yield (i ? ',\n' : '\n') + (indent ? indent + body.replaceAll('\n', '\n' + indent) : body)
    }
    yield '\n' + indent + ']'
    return
  }
  if (
    value !== null &&
    typeof value === 'object' &&
    !Array.isArray(value) &&
    typeof (value as {toJSON?: unknown}).toJSON !== 'function'
  ) {
    const entries = Object.entries(value).filter(
      ([, x]) => x !== undefined && typeof x !== 'function' && typeof x !== 'symbol',
    )
    if (entries.length === 0) {
      yield '{}'
      return
    }
    const inner = indent + '  '
    yield '{'
    for (let i = 0; i < entries.length; i++) {
      const [k, x] = entries[i]!
      yield (i ? ',\n' : '\n') + inner + JSON.stringify(k) + ': '
      yield* jsonPieces(x, inner)
    }
    yield '\n' + indent + '}'
    return
  }
  yield (JSON.stringify(value, null, 2) ?? 'null').replaceAll('\n', '\n' + indent)
}
