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

function describe(ch: string | undefined): string {
  if (ch === undefined) return 'end of JSON input'
  if (ch === "'") return "'\\''"
  return `'${ch}'`
}

/** Parses one JSON document; the error messages follow Go's ("invalid character 'x' looking for beginning of value"). */
export function parseGoJson(text: string): GoValue {
  let i = 0
  const skipWs = (): void => {
    while (i < text.length && WS.has(text[i]!)) i++
  }

  const fail = (context: string): never => {
    if (i >= text.length) throw new GoJsonError('unexpected end of JSON input')
    throw new GoJsonError(`invalid character ${describe(text[i])} ${context}`)
  }

  const parseString = (): GoValue => {
    const start = i
    i++ // opening quote
    while (i < text.length) {
      const c = text[i]!
      if (c === '"') {
        i++
        const raw = text.slice(start, i)
        let value: string
        try {
          value = JSON.parse(raw) as string
        } catch {
          throw new GoJsonError('invalid character in string literal')
        }
        return {kind: 'string', value, raw}
      }
      if (c === '\\') {
        const e = text[i + 1]
        if (e === undefined) break
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) {
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
      if (c.charCodeAt(0) < 0x20) fail('in string literal')
      i++
    }
    throw new GoJsonError('unexpected end of JSON input')
  }

  const parseNumber = (): GoValue => {
    const m = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(text.slice(i))
    if (!m || m[0] === '-') {
      if (text[i] === '-') i++
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
    const c = text[i]
    const start = i
    switch (c) {
      case '{': {
        i++
        const members: Array<[string, GoValue]> = []
        skipWs()
        if (text[i] === '}') {
          i++
          return {kind: 'object', members, raw: text.slice(start, i)}
        }
        for (;;) {
          skipWs()
          if (text[i] !== '"') fail('looking for beginning of object key string')
          const key = parseString() as {value: string}
          skipWs()
          if (text[i] !== ':') fail('after object key')
          i++
          members.push([key.value, parseValue(depth + 1)])
          skipWs()
          if (text[i] === ',') {
            i++
            continue
          }
          if (text[i] === '}') {
            i++
            return {kind: 'object', members, raw: text.slice(start, i)}
          }
          fail('after object key:value pair')
        }
      }
      case '[': {
        i++
        const items: GoValue[] = []
        skipWs()
        if (text[i] === ']') {
          i++
          return {kind: 'array', items, raw: text.slice(start, i)}
        }
        for (;;) {
          items.push(parseValue(depth + 1))
          skipWs()
          if (text[i] === ',') {
            i++
            continue
          }
          if (text[i] === ']') {
            i++
            return {kind: 'array', items, raw: text.slice(start, i)}
          }
          fail('after array element')
        }
      }
      case '"':
        return parseString()
      case 't':
        return parseLiteral('true')
      case 'f':
        return parseLiteral('false')
      case 'n':
        return parseLiteral('null')
      default:
        if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return parseNumber()
        return fail('looking for beginning of value')
    }
  }

  const v = parseValue(0)
  skipWs()
  if (i < text.length) fail('after top-level value')
  return v
}

/** The word Go's UnmarshalTypeError uses for a JSON value ("string", "number", "number -1", "object", ...). */
export function goKindWord(v: GoValue): string {
  return v.kind === 'bool' ? 'bool' : v.kind
}

/**
 * Resolves a Go struct's fields from a JSON object: for each member in order, an exact field-name match,
 * else a case-insensitive one; later members overwrite earlier ones, as json.Unmarshal does.
 */
export function goFields<F extends string>(obj: GoValue & {kind: 'object'}, fields: readonly F[]): Map<F, GoValue> {
  const exact = new Map<string, F>(fields.map((f) => [f, f]))
  const folded = new Map<string, F>(fields.map((f) => [f.toLowerCase(), f]))
  const out = new Map<F, GoValue>()
  for (const [key, value] of obj.members) {
    const field = exact.get(key) ?? folded.get(key.toLowerCase())
    if (field !== undefined) out.set(field, value)
  }
  return out
}

/** What Go's `bytes.Trim(raw, "\"")` leaves of a raw JSON token, as flannel's IP unmarshalers see it. */
export function trimQuotes(raw: string): string {
  return raw.replace(/^"+/, '').replace(/"+$/, '')
}

/** Go's uint decoding of a JSON number (strconv.ParseUint on the literal); null when it does not fit. */
export function goUint(raw: string, bits = 64): number | null {
  if (!/^\d+$/.test(raw)) return null
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
    else if (c >= 0xd800 && c <= 0xdfff) out += '\\ufffd' // a lone surrogate is invalid UTF-8 to Go
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
      if (ch === '<' || ch === '>' || ch === '&') out += '\\u00' + HEX[ch.charCodeAt(0) >> 4] + HEX[ch.charCodeAt(0) & 0xf]
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
