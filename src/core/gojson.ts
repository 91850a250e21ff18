/**
 * JSON with Go's encoding/json semantics, which is what flanneld uses to read and write every value in etcd.
 *
 * Decoding: objects keep their members in document order with duplicates, and every value keeps its raw text,
 * because Go hands custom unmarshalers (ip.IP4, json.RawMessage) the raw bytes. The parser is iterative (no
 * recursion), accepts exactly what Go's scanner accepts (nesting up to 10,000 levels) and, on invalid input,
 * reports Go's syntax error text. goUnmarshalStruct applies json.Unmarshal's struct rules: members in document
 * order, exact field name first then Go's case folding, the first type error kept, an unmarshaler error returned
 * at once.
 * Encoding: strings are escaped as Go does (HTML-safe: <, >, & and U+2028/2029 escaped) and raw messages are
 * compacted the way json.Marshal compacts a json.RawMessage.
 */

export type GoValue =
  | {kind: 'object'; members: Array<[string, GoValue]>; raw: string}
  | {kind: 'array'; items: GoValue[]; raw: string}
  | {kind: 'string'; value: string; raw: string}
  | {kind: 'number'; raw: string}
  | {kind: 'bool'; value: boolean; raw: string}
  | {kind: 'null'; raw: string}

export class GoJsonError extends Error {}

/** Go's scanner maxNestingDepth. */
const MAX_DEPTH = 10_000

const WS = new Set([' ', '\t', '\n', '\r'])

/** JSON white space (space, tab, LF, CR) by char code. */
const isWs = (c: number): boolean => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d

const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39

const isHex = (c: number): boolean => (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46)

/** Lone UTF-16 surrogates, which Go's decoder turns into U+FFFD. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g

/** Go's unquote of a string token with escapes: JSON.parse, then a lone surrogate becomes U+FFFD. */
function unquote(raw: string): string {
  const v = JSON.parse(raw) as string
  return v.includes('\\u') || /[\ud800-\udfff]/.test(v) ? v.replace(LONE_SURROGATE, '\ufffd') : v
}

interface Frame {
  readonly start: number
  readonly object: boolean
  readonly members: Array<[string, GoValue]>
  readonly items: GoValue[]
  key: string
}

/**
 * Parses one JSON document. Iterative, with an explicit stack. It scans char codes and slices strings without
 * escapes; on any invalid input it asks goSyntaxError for Go's exact message.
 */
export function parseGoJson(text: string): GoValue {
  const n = text.length
  const stack: Frame[] = []
  let i = 0
  const bad = (): never => {
    throw new GoJsonError(goSyntaxError(text) ?? 'invalid JSON')
  }
  const skipWs = (): void => {
    while (i < n && isWs(text.charCodeAt(i))) i++
  }
  const scanString = (): GoValue & {kind: 'string'} => {
    const start = i
    i++
    let escaped = false
    for (;;) {
      if (i >= n) return bad()
      const c = text.charCodeAt(i)
      if (c === 0x22) break
      if (c === 0x5c) {
        escaped = true
        const e = text.charCodeAt(i + 1)
        if (e === 0x75) {
          if (!(isHex(text.charCodeAt(i + 2)) && isHex(text.charCodeAt(i + 3)))) bad()
          if (!(isHex(text.charCodeAt(i + 4)) && isHex(text.charCodeAt(i + 5)))) bad()
          i += 6
          continue
        }
        if (
          e === 0x22 ||
          e === 0x5c ||
          e === 0x2f ||
          e === 0x62 ||
          e === 0x66 ||
          e === 0x6e ||
          e === 0x72 ||
          e === 0x74
        ) {
          i += 2
          continue
        }
        return bad()
      }
      if (c < 0x20) bad()
      i++
    }
    i++
    const raw = text.slice(start, i)
    return {kind: 'string', value: escaped ? unquote(raw) : raw.slice(1, -1), raw}
  }
  const scanNumber = (): GoValue => {
    const start = i
    if (text.charCodeAt(i) === 0x2d) i++
    const c = text.charCodeAt(i)
    if (c === 0x30) i++
    else if (c >= 0x31 && c <= 0x39) while (isDigit(text.charCodeAt(i))) i++
    else bad()
    if (text.charCodeAt(i) === 0x2e) {
      i++
      if (!isDigit(text.charCodeAt(i))) bad()
      while (isDigit(text.charCodeAt(i))) i++
    }
    const e = text.charCodeAt(i)
    if (e === 0x65 || e === 0x45) {
      i++
      const s = text.charCodeAt(i)
      if (s === 0x2b || s === 0x2d) i++
      if (!isDigit(text.charCodeAt(i))) bad()
      while (isDigit(text.charCodeAt(i))) i++
    }
    return {kind: 'number', raw: text.slice(start, i)}
  }
  const literal = (word: string): void => {
    if (!text.startsWith(word, i)) bad()
    i += word.length
  }

  for (;;) {
    // Here a value is expected.
    skipWs()
    let value: GoValue
    const c = text.charCodeAt(i)
    if (c === 0x7b || c === 0x5b) {
      if (stack.length >= MAX_DEPTH) bad()
      const object = c === 0x7b
      stack.push({start: i, object, members: [], items: [], key: ''})
      i++
      skipWs()
      const d = text.charCodeAt(i)
      if (object && d === 0x22) {
        stack[stack.length - 1]!.key = scanString().value
        skipWs()
        if (text.charCodeAt(i) !== 0x3a) bad()
        i++
        continue
      }
      if (d !== (object ? 0x7d : 0x5d)) {
        if (object) bad()
        continue
      }
      i++
      const f = stack.pop()!
      const raw = text.slice(f.start, i)
      value = object ? {kind: 'object', members: f.members, raw} : {kind: 'array', items: f.items, raw}
    } else if (c === 0x22) value = scanString()
    else if (c === 0x2d || isDigit(c)) value = scanNumber()
    else if (c === 0x74) {
      literal('true')
      value = {kind: 'bool', value: true, raw: 'true'}
    } else if (c === 0x66) {
      literal('false')
      value = {kind: 'bool', value: false, raw: 'false'}
    } else if (c === 0x6e) {
      literal('null')
      value = {kind: 'null', raw: 'null'}
    } else return bad()

    // A value is complete: attach it to its container, closing containers as far as they end here.
    for (;;) {
      const top = stack[stack.length - 1]
      if (!top) {
        skipWs()
        if (i < n) bad()
        return value
      }
      if (top.object) top.members.push([top.key, value])
      else top.items.push(value)
      skipWs()
      const d = text.charCodeAt(i)
      if (d === 0x2c) {
        i++
        if (top.object) {
          skipWs()
          if (text.charCodeAt(i) !== 0x22) bad()
          top.key = scanString().value
          skipWs()
          if (text.charCodeAt(i) !== 0x3a) bad()
          i++
        }
        break
      }
      if (d !== (top.object ? 0x7d : 0x5d)) return bad()
      i++
      stack.pop()
      const raw = text.slice(top.start, i)
      value = top.object ? {kind: 'object', members: top.members, raw} : {kind: 'array', items: top.items, raw}
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Go's scanner (encoding/json/scanner.go), state for state, used for the text of a syntax error.

const enum St {
  BeginValueOrEmpty,
  BeginValue,
  BeginStringOrEmpty,
  BeginString,
  EndValue,
  EndTop,
  InString,
  InStringEsc,
  EscU,
  EscU1,
  EscU12,
  EscU123,
  Neg,
  One,
  Zero,
  Dot,
  Dot0,
  E,
  ESign,
  E0,
  T,
  Tr,
  Tru,
  F,
  Fa,
  Fal,
  Fals,
  N,
  Nu,
  Nul,
}

const enum Ps {
  ObjectKey,
  ObjectValue,
  ArrayValue,
}

const LITERAL: Partial<Record<St, [number, St, string]>> = {
  [St.T]: [0x72, St.Tr, "in literal true (expecting 'r')"],
  [St.Tr]: [0x75, St.Tru, "in literal true (expecting 'u')"],
  [St.Tru]: [0x65, St.EndValue, "in literal true (expecting 'e')"],
  [St.F]: [0x61, St.Fa, "in literal false (expecting 'a')"],
  [St.Fa]: [0x6c, St.Fal, "in literal false (expecting 'l')"],
  [St.Fal]: [0x73, St.Fals, "in literal false (expecting 's')"],
  [St.Fals]: [0x65, St.EndValue, "in literal false (expecting 'e')"],
  [St.N]: [0x75, St.Nu, "in literal null (expecting 'u')"],
  [St.Nu]: [0x6c, St.Nul, "in literal null (expecting 'l')"],
  [St.Nul]: [0x6c, St.EndValue, "in literal null (expecting 'l')"],
}

/** strconv.Quote's escape of one rune below U+0100, without the quotes (Go's quoteChar after string(byte)). */
function quoteByte(b: number): string {
  if (b === 0x27) return "'\\''"
  if (b === 0x22) return `'"'`
  const short: Record<number, string> = {7: '\\a', 8: '\\b', 12: '\\f', 10: '\\n', 13: '\\r', 9: '\\t', 11: '\\v'}
  if (short[b]) return `'${short[b]}'`
  if (b === 0x5c) return "'\\\\'"
  if (b < 0x20 || b === 0x7f) return `'\\x${b.toString(16).padStart(2, '0')}'`
  // U+0080-U+00A0 and the soft hyphen are not printable to strconv.
  if ((b >= 0x80 && b <= 0xa0) || b === 0xad) return `'\\u00${b.toString(16).padStart(2, '0')}'`
  return `'${String.fromCharCode(b)}'`
}

/** The first UTF-8 byte of the code point at text[i] (a lone surrogate is U+FFFD's EF). */
function firstByte(text: string, i: number): number {
  const cp = text.codePointAt(i)!
  if (cp < 0x80) return cp
  if (cp < 0x800) return 0xc0 | (cp >> 6)
  if (cp < 0x10000) return cp >= 0xd800 && cp <= 0xdfff ? 0xef : 0xe0 | (cp >> 12)
  return 0xf0 | (cp >> 18)
}

/**
 * Go's checkValid: null when Go's scanner accepts the text, else the SyntaxError's message. Code units at or above
 * 0x80 stand for their UTF-8 bytes (all of them valid inside a string, none outside one).
 */
export function goSyntaxError(text: string): string | null {
  const ps: Ps[] = []
  let step: St = St.BeginValue
  let endTop = false
  let err: string | null = null
  const error = (c: number, context: string): void => {
    err = `invalid character ${quoteByte(c)} ${context}`
  }
  const push = (c: number, p: Ps): boolean => {
    ps.push(p)
    if (ps.length <= MAX_DEPTH) return true
    error(c, 'exceeded max depth')
    return false
  }
  const pop = (): void => {
    ps.pop()
    if (ps.length === 0) {
      step = St.EndTop
      endTop = true
    } else step = St.EndValue
  }
  /** One byte through the state machine; false on an error. */
  const feed = (c: number): boolean => {
    for (;;) {
      switch (step) {
        case St.BeginValueOrEmpty:
          if (isWs(c)) return true
          if (c === 0x5d) {
            step = St.EndValue
            continue
          }
          step = St.BeginValue
          continue
        case St.BeginValue:
          if (isWs(c)) return true
          if (c === 0x7b) {
            step = St.BeginStringOrEmpty
            return push(c, Ps.ObjectKey)
          }
          if (c === 0x5b) {
            step = St.BeginValueOrEmpty
            return push(c, Ps.ArrayValue)
          }
          if (c === 0x22) step = St.InString
          else if (c === 0x2d) step = St.Neg
          else if (c === 0x30) step = St.Zero
          else if (c === 0x74) step = St.T
          else if (c === 0x66) step = St.F
          else if (c === 0x6e) step = St.N
          else if (c >= 0x31 && c <= 0x39) step = St.One
          else {
            error(c, 'looking for beginning of value')
            return false
          }
          return true
        case St.BeginStringOrEmpty:
          if (isWs(c)) return true
          if (c === 0x7d) {
            ps[ps.length - 1] = Ps.ObjectValue
            step = St.EndValue
            continue
          }
          step = St.BeginString
          continue
        case St.BeginString:
          if (isWs(c)) return true
          if (c === 0x22) {
            step = St.InString
            return true
          }
          error(c, 'looking for beginning of object key string')
          return false
        case St.EndValue: {
          if (ps.length === 0) {
            step = St.EndTop
            endTop = true
            continue
          }
          if (isWs(c)) return true
          const p = ps[ps.length - 1]
          if (p === Ps.ObjectKey) {
            if (c === 0x3a) {
              ps[ps.length - 1] = Ps.ObjectValue
              step = St.BeginValue
              return true
            }
            error(c, 'after object key')
            return false
          }
          if (p === Ps.ObjectValue) {
            if (c === 0x2c) {
              ps[ps.length - 1] = Ps.ObjectKey
              step = St.BeginString
              return true
            }
            if (c === 0x7d) {
              pop()
              return true
            }
            error(c, 'after object key:value pair')
            return false
          }
          if (c === 0x2c) {
            step = St.BeginValue
            return true
          }
          if (c === 0x5d) {
            pop()
            return true
          }
          error(c, 'after array element')
          return false
        }
        case St.EndTop:
          if (!isWs(c)) {
            error(c, 'after top-level value')
            return false
          }
          return true
        case St.InString:
          if (c === 0x22) step = St.EndValue
          else if (c === 0x5c) step = St.InStringEsc
          else if (c < 0x20) {
            error(c, 'in string literal')
            return false
          }
          return true
        case St.InStringEsc:
          if ([0x62, 0x66, 0x6e, 0x72, 0x74, 0x5c, 0x2f, 0x22].includes(c)) step = St.InString
          else if (c === 0x75) step = St.EscU
          else {
            error(c, 'in string escape code')
            return false
          }
          return true
        case St.EscU:
        case St.EscU1:
        case St.EscU12:
        case St.EscU123:
          if (!isHex(c)) {
            error(c, 'in \\u hexadecimal character escape')
            return false
          }
          step = step === St.EscU123 ? St.InString : step + 1
          return true
        case St.Neg:
          if (c === 0x30) step = St.Zero
          else if (c >= 0x31 && c <= 0x39) step = St.One
          else {
            error(c, 'in numeric literal')
            return false
          }
          return true
        case St.One:
          if (isDigit(c)) return true
          step = St.Zero
          continue
        case St.Zero:
          if (c === 0x2e) step = St.Dot
          else if (c === 0x65 || c === 0x45) step = St.E
          else {
            step = St.EndValue
            continue
          }
          return true
        case St.Dot:
          if (isDigit(c)) {
            step = St.Dot0
            return true
          }
          error(c, 'after decimal point in numeric literal')
          return false
        case St.Dot0:
          if (isDigit(c)) return true
          if (c === 0x65 || c === 0x45) {
            step = St.E
            return true
          }
          step = St.EndValue
          continue
        case St.E:
          if (c === 0x2b || c === 0x2d) {
            step = St.ESign
            return true
          }
          step = St.ESign
          continue
        case St.ESign:
          if (isDigit(c)) {
            step = St.E0
            return true
          }
          error(c, 'in exponent of numeric literal')
          return false
        case St.E0:
          if (isDigit(c)) return true
          step = St.EndValue
          continue
        default: {
          const [want, next, context] = LITERAL[step]!
          if (c === want) {
            step = next
            return true
          }
          error(c, context)
          return false
        }
      }
    }
  }
  for (let i = 0; i < text.length; i++) {
    let c = text.charCodeAt(i)
    if (c >= 0x80) {
      // Inside a string every byte of a multi-byte character is accepted; elsewhere the first byte is the error.
      if ((step as St) === St.InString) {
        if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) i++
        continue
      }
      c = firstByte(text, i)
    }
    if (!feed(c)) return err
  }
  // Go's eof(): a final space, then "unexpected end" unless the top value is complete.
  if (endTop) return null
  if (!feed(0x20)) return err
  if (endTop) return null
  return 'unexpected end of JSON input'
}

// ---------------------------------------------------------------------------------------------------------------
// json.Unmarshal into a struct.

/** Go's foldName for matching a key against ASCII field names: ASCII upper-cased, ſ is S and K (Kelvin) is K. */
function goFold(s: string): string {
  let out = ''
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c >= 0x61 && c <= 0x7a) out += String.fromCharCode(c - 0x20)
    else if (c === 0x17f) out += 'S'
    else if (c === 0x212a) out += 'K'
    else out += s[i]
  }
  return out
}

/** Whether a JSON key selects the struct field with this (ASCII) JSON name, as Go's decoder matches keys. */
export function goKeyMatches(key: string, field: string): boolean {
  return key === field || (key.length === field.length && goFold(key) === goFold(field))
}

/** The error an UnmarshalJSON method returns: json.Unmarshal stops at it and returns it as it is. */
export class GoUnmarshalerError extends Error {}

export type GoFieldType =
  | {kind: 'bool'}
  /** `goType` for a named string type (wireguard.Mode), as Go prints it in type errors. */
  | {kind: 'string'; goType?: string}
  /** Go integer types; `goType` as Go prints it (uint, uint32, int). */
  | {kind: 'uint' | 'int'; bits: number; goType: string}
  /** json.RawMessage: the raw text (also for null). */
  | {kind: 'raw'}
  /**
   * A type with an UnmarshalJSON method, given the raw token; `pointer` fields (*ip.IP6) are set to null by a JSON
   * null instead. `parse` throws GoUnmarshalerError.
   */
  | {kind: 'unmarshaler'; pointer: boolean; parse: (raw: string) => unknown}

export interface GoField {
  /** The JSON name (the Go field name, or its tag). */
  readonly name: string
  readonly type: GoFieldType
}

function typeError(what: string, struct: string, field: string, goType: string): string {
  return `json: cannot unmarshal ${what} into Go struct field ${struct}.${field} of type ${goType}`
}

/** strconv.ParseUint/ParseInt of a JSON number literal for a Go integer of `bits`; null when Go rejects it. */
export function goInteger(raw: string, signed: boolean, bits: number): number | null {
  if (!(signed ? /^-?\d+$/ : /^\d+$/).test(raw)) return null
  if (raw.length <= 15) {
    const v = Number(raw)
    if (signed ? v >= -(2 ** (bits - 1)) && v < 2 ** (bits - 1) : v < 2 ** bits) return v === 0 ? 0 : v
    return null
  }
  const v = BigInt(raw)
  const ok = signed ? v >= -(1n << BigInt(bits - 1)) && v < 1n << BigInt(bits - 1) : v < 1n << BigInt(bits)
  return ok ? Number(v) : null
}

const indexes = new WeakMap<readonly GoField[], {byName: Map<string, GoField>; byFold: Map<string, GoField>}>()

/** Go's byExactName and byFoldedName maps of a struct's fields (built once per field list). */
function fieldIndex(fields: readonly GoField[]): {byName: Map<string, GoField>; byFold: Map<string, GoField>} {
  let ix = indexes.get(fields)
  if (!ix) {
    ix = {byName: new Map(), byFold: new Map()}
    for (const f of fields) {
      ix.byName.set(f.name, f)
      const k = goFold(f.name)
      if (!ix.byFold.has(k)) ix.byFold.set(k, f) // for historical reasons the first folded match takes precedence
    }
    indexes.set(fields, ix)
  }
  return ix
}

/**
 * json.Unmarshal of a document into a struct value: `target` holds the fields' current values and is updated in
 * place. Returns null or the error json.Unmarshal returns (Go's text). `goType` names the struct as Go prints it
 * (subnet.Config); `structName` is its bare name used in field errors (Config, or '' for an anonymous struct).
 */
export function goUnmarshalStruct(
  doc: GoValue,
  goType: string,
  structName: string,
  fields: readonly GoField[],
  target: Record<string, unknown>,
): string | null {
  if (doc.kind === 'null') return null
  if (doc.kind !== 'object') return `json: cannot unmarshal ${doc.kind} into Go value of type ${goType}`
  let saved: string | null = null
  const {byName, byFold} = fieldIndex(fields)
  for (const [key, v] of doc.members) {
    const f = byName.get(key) ?? byFold.get(goFold(key))
    if (!f) continue
    const t = f.type
    switch (t.kind) {
      case 'raw':
        target[f.name] = v.raw
        break
      case 'unmarshaler':
        if (t.pointer && v.kind === 'null') target[f.name] = null
        else {
          try {
            target[f.name] = t.parse(v.raw)
          } catch (error) {
            if (error instanceof GoUnmarshalerError) return error.message
            throw error
          }
        }
        break
      case 'bool':
        if (v.kind === 'bool') target[f.name] = v.value
        else if (v.kind !== 'null') saved ??= typeError(v.kind, structName, f.name, 'bool')
        break
      case 'string':
        if (v.kind === 'string') target[f.name] = v.value
        else if (v.kind !== 'null') saved ??= typeError(v.kind, structName, f.name, t.goType ?? 'string')
        break
      case 'uint':
      case 'int': {
        if (v.kind === 'null') break
        if (v.kind !== 'number') {
          saved ??= typeError(v.kind, structName, f.name, t.goType)
          break
        }
        const x = goInteger(v.raw, t.kind === 'int', t.bits)
        if (x === null) saved ??= typeError(`number ${v.raw}`, structName, f.name, t.goType)
        else target[f.name] = x
        break
      }
    }
  }
  return saved
}

/** What Go's `bytes.Trim(raw, "\"")` leaves of a raw JSON token, as flannel's IP unmarshalers see it. */
export function trimQuotes(raw: string): string {
  let a = 0
  let b = raw.length
  while (a < b && raw.charCodeAt(a) === 0x22) a++
  while (b > a && raw.charCodeAt(b - 1) === 0x22) b--
  return a === 0 && b === raw.length ? raw : raw.slice(a, b)
}

/** Go's strings.ToLower: each code point by its simple lower-case mapping (İ is i, a final Σ stays σ). */
export function goToLower(s: string): string {
  // eslint-disable-next-line no-control-regex
  if (/^[\x00-\x7f]*$/.test(s)) return s.toLowerCase()
  let out = ''
  for (const ch of s) out += ch === '\u0130' ? 'i' : ch.toLowerCase()
  return out.replace(LONE_SURROGATE, '\ufffd')
}

const HEX = '0123456789abcdef'

/** Go's json string encoding (appendString with escapeHTML = true, as Go 1.22 and later write it). */
export function goQuote(s: string): string {
  let out = '"'
  for (const ch of s) {
    const c = ch.codePointAt(0)!
    if (ch === '"') out += '\\"'
    else if (ch === '\\') out += '\\\\'
    else if (c === 0x0a) out += '\\n'
    else if (c === 0x0d) out += '\\r'
    else if (c === 0x09) out += '\\t'
    else if (c === 0x08)
      out += '\\b' // Go 1.22+ writes \b and \f short
    else if (c === 0x0c) out += '\\f'
    else if (c < 0x20 || ch === '<' || ch === '>' || ch === '&') out += '\\u00' + HEX[c >> 4] + HEX[c & 0xf]
    else if (c === 0x2028 || c === 0x2029) out += '\\u202' + HEX[c & 0xf]
    else if (c >= 0xd800 && c <= 0xdfff)
      out += '\\ufffd' // a lone surrogate is invalid UTF-8 to Go
    else out += ch
  }
  return out + '"'
}

/**
 * Go's json.Compact with HTML escaping, as json.Marshal applies it to a json.RawMessage: insignificant
 * white space removed, and <, >, & and U+2028/2029 inside strings escaped. The input must be valid JSON.
 */
export function goCompact(raw: string): string {
  let out = ''
  let inString = false
  for (let i = 0; i < raw.length; i++) {
    const ch = raw[i]!
    if (inString) {
      if (ch === '\\') {
        out += ch + raw[i + 1]
        i++
        continue
      }
      if (ch === '"') inString = false
      if (ch === '<' || ch === '>' || ch === '&')
        out += '\\u00' + HEX[ch.charCodeAt(0) >> 4] + HEX[ch.charCodeAt(0) & 0xf]
      else if (ch === '\u2028' || ch === '\u2029') out += '\\u202' + HEX[ch.charCodeAt(0) & 0xf]
      else out += ch
      continue
    }
    if (WS.has(ch)) continue
    if (ch === '"') inString = true
    out += ch
  }
  return out
}
