/**
 * One lease of `leases ls --json` as text: exactly `JSON.stringify(lease, null, 2)` with its lines after the first
 * indented by `indent`, written field by field instead of through the generic stringifier (at 65,535 leases this is
 * most of the document). Strings that need no escaping are quoted directly; any other string, and any value of a
 * type LeaseJson does not declare, goes through JSON.stringify, so the bytes cannot differ
 * (test/render/leases-json.test.ts compares both on generated and hostile leases).
 */

import type {LeaseJson} from '../services/leases.js'

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

export function leaseJsonText(l: LeaseJson, indent: string): string {
  if (!isPlainLease(l)) return value(l, indent)
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
