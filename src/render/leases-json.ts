/**
 * One lease of `leases ls --json` as text: exactly `JSON.stringify(lease, null, 2)` with its lines after the first
 * indented by `indent`, written field by field instead of through the generic stringifier (at 65,535 leases this is
 * most of the document). Strings that need no escaping are quoted directly; any other string, and any value of a
 * type LeaseJson does not declare, goes through JSON.stringify, so the bytes cannot differ
 * (test/render/leases-json.test.ts compares both on generated and hostile leases).
 */

import type {RawKV, VxlanLeaseText} from '../core/leases.js'
import type {LeaseJson, LeaseRows} from '../services/leases.js'

// What JSON.stringify escapes in a string: the quote, the backslash, C0 controls and lone surrogates (a pair is
// written raw; testing for any surrogate keeps this a single cheap scan and lets JSON.stringify decide).
// eslint-disable-next-line no-control-regex
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/

/** leaseToJson's fields, in its order (the order JSON.stringify writes them in). */
const FIELDS = [
  'subnet',
  'ipv6Subnet',
  'publicIP',
  'publicIPv6',
  'backendType',
  'backendData',
  'vni',
  'vtepMAC',
  'reserved',
  'ttlSeconds',
  'expiresAt',
  'key',
  'modRevision',
  'createRevision',
  'leaseId',
] as const

const isStr = (v: unknown) => typeof v === 'string'
const isStrOrNull = (v: unknown) => v === null || typeof v === 'string'
const isNumOrNull = (v: unknown) => v === null || typeof v === 'number'

/** A plain object with exactly LeaseJson's fields, in order, of the declared types (backendData any JSON value). */
function isPlainLease(l: LeaseJson): boolean {
  if (typeof l !== 'object' || l === null || Object.getPrototypeOf(l) !== Object.prototype) return false
  let k = 0
  for (const name in l) if (name !== FIELDS[k++]) return false
  const bd = typeof l.backendData
  return (
    k === FIELDS.length &&
    isStr(l.subnet) &&
    isStrOrNull(l.ipv6Subnet) &&
    isStr(l.publicIP) &&
    isStrOrNull(l.publicIPv6) &&
    isStr(l.backendType) &&
    bd !== 'undefined' &&
    bd !== 'function' &&
    bd !== 'symbol' &&
    isNumOrNull(l.vni) &&
    isStrOrNull(l.vtepMAC) &&
    typeof l.reserved === 'boolean' &&
    isNumOrNull(l.ttlSeconds) &&
    isStrOrNull(l.expiresAt) &&
    isStr(l.key) &&
    isStr(l.modRevision) &&
    isStr(l.createRevision) &&
    isStr(l.leaseId)
  )
}

function str(s: string): string {
  return NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : '"' + s + '"'
}

function strOrNull(s: string | null): string {
  return s === null ? 'null' : str(s)
}

function num(n: number | null): string {
  return n === null ? 'null' : JSON.stringify(n)
}

/** Any JSON value as JSON.stringify(v, null, 2) prints it at this indentation. */
function value(v: unknown, indent: string): string {
  const text = JSON.stringify(v, null, 2) ?? 'null' // undefined, a function or a symbol, in an array
  return indent === '' || !text.includes('\n') ? text : text.replaceAll('\n', '\n' + indent)
}

/** backendData: vxlan's `{VNI, VtepMAC}` written directly; anything else through JSON.stringify. */
function backendData(v: unknown, indent: string): string {
  if (v === null) return 'null'
  if (typeof v === 'object' && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype) {
    const o = v as Record<string, unknown>
    let count = 0
    let first = ''
    let second = ''
    for (const k in o) {
      if (count === 0) first = k
      else if (count === 1) second = k
      count++
    }
    if (count === 2 && first === 'VNI' && second === 'VtepMAC' && typeof o.VNI === 'number' && isStr(o.VtepMAC))
      return `{\n${indent}  "VNI": ${JSON.stringify(o.VNI)},\n${indent}  "VtepMAC": ${str(o.VtepMAC)}\n${indent}}`
  }
  return value(v, indent)
}

/**
 * The constant text between a lease's values at one indentation, adjacent constants joined (each fragment closes
 * the value before it and opens the next), so the usual lease is ~25 concatenations instead of ~60.
 */
interface Fragments {
  readonly open: string
  readonly ipv6Null: string
  readonly ipv6: string
  readonly publicIP: string
  readonly publicIPv6Null: string
  readonly publicIPv6: string
  readonly backendType: string
  readonly backendData: string
  readonly vni: string
  readonly vniOpen: string
  readonly vtepMACOpen: string
  readonly vxlanClose: string
  readonly vtepMACNull: string
  readonly vtepMAC: string
  readonly vtepMACString: string
  /** `"reserved": false` with no TTL and no expiry (a --no-ttl listing), up to the key's opening quote. */
  readonly unreservedNoTtl: string
  readonly reserved: string
  readonly ttlSeconds: string
  readonly expiresAtNull: string
  readonly expiresAt: string
  readonly key: string
  readonly modRevision: string
  readonly createRevision: string
  readonly leaseId: string
  readonly close: string
}

function fragments(indent: string): Fragments {
  const i = indent + '  '
  const f = (name: string) => ',\n' + i + JSON.stringify(name) + ': '
  return {
    open: '{\n' + i + '"subnet": "',
    ipv6Null: '"' + f('ipv6Subnet') + 'null' + f('publicIP') + '"',
    ipv6: '"' + f('ipv6Subnet') + '"',
    publicIP: '"' + f('publicIP') + '"',
    publicIPv6Null: '"' + f('publicIPv6') + 'null' + f('backendType') + '"',
    publicIPv6: '"' + f('publicIPv6') + '"',
    backendType: '"' + f('backendType') + '"',
    backendData: '"' + f('backendData'),
    vni: f('vni'),
    vniOpen: '{\n' + i + '  "VNI": ',
    vtepMACOpen: ',\n' + i + '  "VtepMAC": "',
    vxlanClose: '"\n' + i + '}',
    vtepMACNull: f('vtepMAC') + 'null',
    vtepMAC: f('vtepMAC') + '"',
    vtepMACString: '"',
    unreservedNoTtl: f('reserved') + 'false' + f('ttlSeconds') + 'null' + f('expiresAt') + 'null' + f('key') + '"',
    reserved: f('reserved'),
    ttlSeconds: f('ttlSeconds'),
    expiresAtNull: f('expiresAt') + 'null' + f('key') + '"',
    expiresAt: f('expiresAt') + '"',
    key: '"' + f('key') + '"',
    modRevision: '"' + f('modRevision') + '"',
    createRevision: '"' + f('createRevision') + '"',
    leaseId: '"' + f('leaseId') + '"',
    close: '"\n' + indent + '}',
  }
}

let fragmentsIndent: string | undefined
let fragmentsMemo: Fragments | undefined

/** A number as JSON.stringify writes it: a finite number as JavaScript prints it, anything else null. */
function numText(n: number | null): string {
  return n !== null && Number.isFinite(n) ? '' + n : 'null'
}

/** BackendData as vxlan's `{VNI: number, VtepMAC: string}`, its two own keys in that order; null otherwise. */
function vxlanData(v: unknown): {VNI: number; VtepMAC: string} | null {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || Object.getPrototypeOf(v) !== Object.prototype)
    return null
  const o = v as Record<string, unknown>
  let count = 0
  for (const k in o) {
    if (k !== (count === 0 ? 'VNI' : 'VtepMAC')) return null
    if (++count > 2) return null
  }
  return count === 2 && typeof o.VNI === 'number' && typeof o.VtepMAC === 'string'
    ? (o as {VNI: number; VtepMAC: string})
    : null
}

export function leaseJsonText(l: LeaseJson, indent: string): string {
  if (!isPlainLease(l)) return value(l, indent)
  const bd = l.backendData
  const vx = bd === null ? null : vxlanData(bd)
  // Every string the lease holds, tested for escapes in one pass (the test is per character, so testing their
  // concatenation answers for each of them); any escape, or BackendData of another shape, takes the general path.
  if ((bd !== null && vx === null) || NEEDS_ESCAPE.test(stringsOf(l, vx))) return leaseJsonTextGeneral(l, indent)
  if (fragmentsIndent !== indent) {
    fragmentsMemo = fragments(indent)
    fragmentsIndent = indent
  }
  const F = fragmentsMemo!
  let t = F.open + l.subnet
  t += l.ipv6Subnet === null ? F.ipv6Null : F.ipv6 + l.ipv6Subnet + F.publicIP
  t += l.publicIP
  t += l.publicIPv6 === null ? F.publicIPv6Null : F.publicIPv6 + l.publicIPv6 + F.backendType
  t += l.backendType + F.backendData
  t += vx === null ? 'null' : F.vniOpen + numText(vx.VNI) + F.vtepMACOpen + vx.VtepMAC + F.vxlanClose
  t += F.vni + numText(l.vni)
  t += l.vtepMAC === null ? F.vtepMACNull : F.vtepMAC + l.vtepMAC + F.vtepMACString
  if (!l.reserved && l.ttlSeconds === null && l.expiresAt === null) t += F.unreservedNoTtl
  else {
    t += F.reserved + (l.reserved ? 'true' : 'false') + F.ttlSeconds + numText(l.ttlSeconds)
    t += l.expiresAt === null ? F.expiresAtNull : F.expiresAt + l.expiresAt + F.key
  }
  return (
    t + l.key + F.modRevision + l.modRevision + F.createRevision + l.createRevision + F.leaseId + l.leaseId + F.close
  )
}

/** Bytes of a block of LeaseTexts (a text longer than that gets a block of its own), and of renderArray's pieces. */
const TEXT_BLOCK = 1 << 20

/**
 * listLeases' rows for `leases ls --json`: each lease's text at `indent` (leaseJsonText), made as the lease is read
 * and kept as UTF-8 outside V8's heap until it is written, so that a listing holds no decoded lease and no string
 * per lease (at 65,535 leases, what the collector would otherwise copy from scavenge to scavenge). A lease of
 * flanneld's exact vxlan bytes is written straight from its stored text (vxlanLeaseText: every piece of it is
 * already as the LeaseJson would hold it), with no Lease or LeaseJson built. Each row is the number of its text.
 * For jsonPieces: `renderArray` writes the rows' array, its texts copied out as bytes
 * (renderArrayWith(result.leases, texts.renderArray)); `render` gives one text back as a string.
 */
export class LeaseTexts implements LeaseRows<number> {
  private readonly blocks: Buffer[] = []
  private block = Buffer.alloc(0)
  private used = 0
  // per text: its block, and where in it it starts and ends (small integers: no heap object per lease)
  private readonly blockOf: number[] = []
  private readonly starts: number[] = []
  private readonly ends: number[] = []

  /** What comes before each text in an array at its indentation (renderArray copies runs of texts whole). */
  private readonly sep: string

  constructor(private readonly indent: string) {
    this.sep = ',\n' + indent
  }

  fromJson(j: LeaseJson): number {
    return this.add(leaseJsonText(j, this.indent))
  }

  fromVxlanText(kv: RawKV, t: VxlanLeaseText, ttl: number | null, expiresAt: string | null): number | null {
    const text = vxlanLeaseJsonText(kv, t, ttl, expiresAt, this.indent)
    return text === null ? null : this.add(text)
  }

  /** Text `i` at indentation `at` (moved there from its own if they differ: JSON strings hold no raw newline). */
  readonly render = (i: number, at: string): string => {
    const text = this.blocks[this.blockOf[i]!]!.toString('utf8', this.starts[i]! + this.sep.length, this.ends[i])
    return at === this.indent ? text : text.replaceAll('\n' + this.indent, '\n' + at)
  }

  /**
   * The array of texts `rows` as JSON.stringify writes an array of their values at `indent`, in pieces of up to
   * TEXT_BLOCK bytes, copied from where the texts are kept a run at a time (texts kept one after the other, each after
   * its separator, go out in one copy).
   */
  readonly renderArray = (rows: readonly number[], indent: string): Iterable<string | Uint8Array> => {
    if (rows.length === 0) return ['[]']
    if (indent + '  ' !== this.indent) return this.reindented(rows, indent)
    return this.pieces(rows, '\n' + indent + ']')
  }

  private *pieces(rows: readonly number[], close: string): Generator<string | Uint8Array> {
    const {blocks, blockOf, starts, ends} = this
    yield '[' // then the first text's separator without its comma: `[\n    {...`
    let out = Buffer.allocUnsafe(TEXT_BLOCK)
    let used = 0
    let start = starts[rows[0]!]! + 1
    for (let k = 0; k < rows.length; k++) {
      const i = rows[k]!
      let end = ends[i]!
      for (let j = rows[k + 1]; j !== undefined && blockOf[j] === blockOf[i] && starts[j] === end; j = rows[k + 1]) {
        end = ends[j]!
        k++
      }
      const run = blocks[blockOf[i]!]!.subarray(start, end)
      if (used + run.length > out.length) {
        yield out.subarray(0, used)
        out = Buffer.allocUnsafe(Math.max(TEXT_BLOCK, run.length))
        used = 0
      }
      out.set(run, used)
      used += run.length
      start = starts[rows[k + 1] ?? i]!
    }
    yield out.subarray(0, used)
    yield close
  }

  /** renderArray at another indentation than the texts': as strings, each moved there. */
  private *reindented(rows: readonly number[], indent: string): Generator<string> {
    const inner = indent + '  '
    yield '[\n' + inner + this.render(rows[0]!, inner)
    for (let k = 1; k < rows.length; k++) yield ',\n' + inner + this.render(rows[k]!, inner)
    yield '\n' + indent + ']'
  }

  private add(text: string): number {
    const most = (this.sep.length + text.length) * 3 // UTF-8: at most 3 bytes per UTF-16 code unit (a pair: 4 for 2)
    if (this.used + most > this.block.length) {
      this.block = Buffer.allocUnsafe(Math.max(TEXT_BLOCK, most))
      this.blocks.push(this.block)
      this.used = 0
    }
    const start = this.used
    this.used += this.block.write(this.sep, start, 'latin1') // ASCII
    this.used += this.block.write(text, this.used)
    this.blockOf.push(this.blocks.length - 1)
    this.starts.push(start)
    this.ends.push(this.used)
    return this.blockOf.length - 1
  }
}

/** leaseJsonText of leaseToJson of the lease in `kv`, from its pieces; null when a string of it needs escaping. */
function vxlanLeaseJsonText(
  kv: RawKV,
  t: VxlanLeaseText,
  ttl: number | null,
  expiresAt: string | null,
  indent: string,
): string | null {
  // subnet, publicIP, vni and vtepMAC are digits, dots, a slash, colons and hex (VXLAN_VALUE); the rest may be anything
  if (NEEDS_ESCAPE.test(kv.key + kv.modRevision + kv.createRevision + kv.lease + (expiresAt ?? ''))) return null
  if (fragmentsIndent !== indent) {
    fragmentsMemo = fragments(indent)
    fragmentsIndent = indent
  }
  const F = fragmentsMemo!
  let s = F.open + t.subnet + F.ipv6Null + t.publicIP + F.publicIPv6Null + 'vxlan' + F.backendData + F.vniOpen
  s += t.vni + F.vtepMACOpen + t.vtepMAC + F.vxlanClose + F.vni + t.vni + F.vtepMAC + t.vtepMAC + F.vtepMACString
  const reserved = kv.lease === '0'
  if (!reserved && ttl === null) s += F.unreservedNoTtl
  else {
    s += F.reserved + (reserved ? 'true' : 'false') + F.ttlSeconds + numText(ttl)
    s += expiresAt === null ? F.expiresAtNull : F.expiresAt + expiresAt + F.key
  }
  return (
    s + kv.key + F.modRevision + kv.modRevision + F.createRevision + kv.createRevision + F.leaseId + kv.lease + F.close
  )
}

/** The lease's strings end to end, for one escape test. */
function stringsOf(l: LeaseJson, vx: {VtepMAC: string} | null): string {
  let s = l.subnet + l.publicIP + l.backendType + l.key + l.modRevision + l.createRevision + l.leaseId
  if (l.ipv6Subnet !== null) s += l.ipv6Subnet
  if (l.publicIPv6 !== null) s += l.publicIPv6
  if (vx !== null) s += vx.VtepMAC
  if (l.vtepMAC !== null) s += l.vtepMAC
  if (l.expiresAt !== null) s += l.expiresAt
  return s
}

/** leaseJsonText for a plain lease with strings to escape or BackendData of another shape: field by field. */
function leaseJsonTextGeneral(l: LeaseJson, indent: string): string {
  const i = ',\n' + indent + '  '
  return (
    '{\n' +
    indent +
    '  "subnet": ' +
    str(l.subnet) +
    i +
    '"ipv6Subnet": ' +
    strOrNull(l.ipv6Subnet) +
    i +
    '"publicIP": ' +
    str(l.publicIP) +
    i +
    '"publicIPv6": ' +
    strOrNull(l.publicIPv6) +
    i +
    '"backendType": ' +
    str(l.backendType) +
    i +
    '"backendData": ' +
    backendData(l.backendData, indent + '  ') +
    i +
    '"vni": ' +
    num(l.vni) +
    i +
    '"vtepMAC": ' +
    strOrNull(l.vtepMAC) +
    i +
    '"reserved": ' +
    String(l.reserved) +
    i +
    '"ttlSeconds": ' +
    num(l.ttlSeconds) +
    i +
    '"expiresAt": ' +
    strOrNull(l.expiresAt) +
    i +
    '"key": ' +
    str(l.key) +
    i +
    '"modRevision": ' +
    str(l.modRevision) +
    i +
    '"createRevision": ' +
    str(l.createRevision) +
    i +
    '"leaseId": ' +
    str(l.leaseId) +
    '\n' +
    indent +
    '}'
  )
}

/** leases ls --sort: here, beside the JSON renderer, so that the command's flags do not load the table renderer. */
export const LEASE_SORTS = ['subnet', 'public-ip', 'ttl', 'expires'] as const
export type LeaseSort = (typeof LEASE_SORTS)[number]
