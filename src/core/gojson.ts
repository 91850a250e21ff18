/**
 * JSON with Go's encoding/json semantics, which is what flanneld uses to read and write every value in etcd.
 *
 * Decoding: objects keep their members in document order with duplicates, and every value keeps its raw text,
 * because Go hands custom unmarshalers (ip.IP4, json.RawMessage) the raw bytes. Struct fields are matched
 * exactly first, then case-insensitively, and the last member for a field wins.
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

const WS = new Set([' ', '\t', '\n', '\r'])

/** JSON white space (space, tab, LF, CR) by char code. */
const isWs = (c: number): boolean => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d

/** A JSON number at lastIndex (sticky, so no copy of the rest of the text is made). */
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y

/** Four hex digits at lastIndex. */
const HEX4 = /[0-9a-fA-F]{4}/y

function describe(ch: string | undefined): string {
  if (ch === undefined) return 'end of JSON input'
  if (ch === "'") return "'\\''"
  return `'${ch}'`
}

/**
 * Parses one JSON document; the error messages follow Go's ("invalid character 'x' looking for beginning of value").
 * It scans char codes (no per-character strings) and decodes a string without escapes by slicing, since it runs
 * once or twice per lease on every `leases ls`.
 */
export function parseGoJson(text: string): GoValue {
  let i = 0
  const n = text.length
  const skipWs = (): void => {
    while (i < n && isWs(text.charCodeAt(i))) i++
  }

  const fail = (context: string): never => {
    if (i >= n) throw new GoJsonError('unexpected end of JSON input')
    throw new GoJsonError(`invalid character ${describe(text[i])} ${context}`)
  }

  const parseString = (): GoValue & {kind: 'string'} => {
    const start = i
    i++ // opening quote
    let escaped = false
    while (i < n) {
      const c = text.charCodeAt(i)
      if (c === 0x22) {
        i++
        const raw = text.slice(start, i)
        // Without escapes the value is the text between the quotes (control characters were rejected below).
        if (!escaped) return {kind: 'string', value: raw.slice(1, -1), raw}
        let value: string
        try {
          value = JSON.parse(raw) as string
        } catch {
          throw new GoJsonError('invalid character in string literal')
        }
        return {kind: 'string', value, raw}
      }
      if (c === 0x5c) {
        escaped = true
        const e = text[i + 1]
        if (e === undefined) break
        if (e === 'u') {
          HEX4.lastIndex = i + 2
          if (!HEX4.test(text)) {
            i += 2
            fail('in \\u hexadecimal character escape')
          }
          i += 6
          continue
        }
        if (!'"\\/bfnrt'.includes(e)) {
          i++
          fail('in string escape code')
        }
        i += 2
        continue
      }
      if (c < 0x20) fail('in string literal')
      i++
    }
    throw new GoJsonError('unexpected end of JSON input')
  }

  const parseNumber = (): GoValue => {
    NUMBER.lastIndex = i
    const m = NUMBER.exec(text)
    if (!m || m[0] === '-') {
      if (text.charCodeAt(i) === 0x2d) i++
      return fail('in numeric literal')
    }
    const raw = m[0]
    i += raw.length
    return {kind: 'number', raw}
  }

  const parseLiteral = (word: 'true' | 'false' | 'null'): GoValue => {
    for (let k = 0; k < word.length; k++, i++) {
      if (text[i] !== word[k]) fail(`in literal ${word} (expecting '${word[k]}')`)
    }
    if (word === 'null') return {kind: 'null', raw: 'null'}
    return {kind: 'bool', value: word === 'true', raw: word}
  }

  const parseValue = (depth: number): GoValue => {
    if (depth > 10_000) throw new GoJsonError('exceeded max depth')
    skipWs()
    const c = text.charCodeAt(i) // NaN at the end
    const start = i
    switch (c) {
      case 0x7b: {
        // {
        i++
        const members: Array<[string, GoValue]> = []
        skipWs()
        if (text.charCodeAt(i) === 0x7d) {
          i++
          return {kind: 'object', members, raw: text.slice(start, i)}
        }
        for (;;) {
          skipWs()
          if (text.charCodeAt(i) !== 0x22) fail('looking for beginning of object key string')
          const key = parseString()
          skipWs()
          if (text.charCodeAt(i) !== 0x3a) fail('after object key')
          i++
          members.push([key.value, parseValue(depth + 1)])
          skipWs()
          const d = text.charCodeAt(i)
          if (d === 0x2c) {
            i++
            continue
          }
          if (d === 0x7d) {
            i++
            return {kind: 'object', members, raw: text.slice(start, i)}
          }
          fail('after object key:value pair')
        }
      }
      case 0x5b: {
        // [
        i++
        const items: GoValue[] = []
        skipWs()
        if (text.charCodeAt(i) === 0x5d) {
          i++
          return {kind: 'array', items, raw: text.slice(start, i)}
        }
        for (;;) {
          items.push(parseValue(depth + 1))
          skipWs()
          const d = text.charCodeAt(i)
          if (d === 0x2c) {
            i++
            continue
          }
          if (d === 0x5d) {
            i++
            return {kind: 'array', items, raw: text.slice(start, i)}
          }
          fail('after array element')
        }
      }
      case 0x22:
        return parseString()
      case 0x74:
        return parseLiteral('true')
      case 0x66:
        return parseLiteral('false')
      case 0x6e:
        return parseLiteral('null')
      default:
        if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return parseNumber()
        return fail('looking for beginning of value')
    }
  }

  const v = parseValue(0)
  skipWs()
  if (i < n) fail('after top-level value')
  return v
}

/**
 * Resolves a Go struct's fields from a JSON object: for each member in order, an exact field-name match,
 * else a case-insensitive one; later members overwrite earlier ones, as json.Unmarshal does.
 */
export function goFields<F extends string>(obj: GoValue & {kind: 'object'}, fields: readonly F[]): Map<F, GoValue> {
  const out = new Map<F, GoValue>()
  for (const [key, value] of obj.members) {
    let field: F | undefined
    for (const f of fields) {
      if (f === key) {
        field = f
        break
      }
    }
    if (field === undefined) {
      // Case-insensitive fallback; like a map built from `fields`, the last field with that folded name wins.
      const folded = key.toLowerCase()
      for (let k = fields.length - 1; k >= 0; k--) {
        if (fields[k]!.toLowerCase() === folded) {
          field = fields[k]
          break
        }
      }
    }
    if (field !== undefined) out.set(field, value)
  }
  return out
}

/** What Go's `bytes.Trim(raw, "\"")` leaves of a raw JSON token, as flannel's IP unmarshalers see it. */
export function trimQuotes(raw: string): string {
  let a = 0
  let b = raw.length
  while (a < b && raw.charCodeAt(a) === 0x22) a++
  while (b > a && raw.charCodeAt(b - 1) === 0x22) b--
  return a === 0 && b === raw.length ? raw : raw.slice(a, b)
}

/** Go's uint decoding of a JSON number (strconv.ParseUint on the literal); null when it does not fit. */
export function goUint(raw: string, bits = 64): number | null {
  if (!/^\d+$/.test(raw)) return null
  // Up to 15 digits is exact as a double; bits <= 32 fits any such value's bound exactly too.
  if (raw.length <= 15 && bits <= 52) return Number(raw) < 2 ** bits ? Number(raw) : null
  const n = BigInt(raw)
  if (n >= 1n << BigInt(bits)) return null
  return n > BigInt(Number.MAX_SAFE_INTEGER) ? null : Number(n)
}

/** Go's int decoding of a JSON number (strconv.ParseInt); null when it does not fit. */
export function goInt(raw: string, bits = 64): number | null {
  if (!/^-?\d+$/.test(raw)) return null
  const n = BigInt(raw)
  const lim = 1n << BigInt(bits - 1)
  if (n >= lim || n < -lim) return null
  return n > BigInt(Number.MAX_SAFE_INTEGER) || n < BigInt(Number.MIN_SAFE_INTEGER) ? null : Number(n)
}

const HEX = '0123456789abcdef'

/** Go's json string encoding (encodeState.string with escapeHTML = true). */
export function goQuote(s: string): string {
  let out = '"'
  for (const ch of s) {
    const c = ch.codePointAt(0)!
    if (ch === '"') out += '\\"'
    else if (ch === '\\') out += '\\\\'
    else if (c === 0x0a) out += '\\n'
    else if (c === 0x0d) out += '\\r'
    else if (c === 0x09) out += '\\t'
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
