/**
 * The lease value flanneld stores under each subnet key: Go's `lease.LeaseAttrs`, read with json.Unmarshal and
 * written with json.Marshal. Decoding follows Go (case-insensitive keys, unknown keys ignored, flannel's IP
 * unmarshalers); encoding is byte-identical to flanneld's.
 */

import {goCompact, goFields, goQuote, goUint, type GoValue, parseGoJson, trimQuotes} from './gojson.js'
import {formatIPv4, parseIPv4} from './ipv4.js'
import {formatIP6Flannel, parseIPv6} from './ipv6.js'

export interface LeaseAttrs {
  /** uint32; 0 is 0.0.0.0 (what Go writes for an unset PublicIP). */
  readonly publicIP: number
  readonly publicIPv6: bigint | null
  /** '' when absent (udp leases carry no BackendType). */
  readonly backendType: string
  /** Raw JSON text of BackendData as stored, or null when absent. */
  readonly backendData: string | null
  readonly backendV6Data: string | null
}

export type Decoded<T> = {ok: true; value: T} | {ok: false; error: string}

const ATTR_FIELDS = ['PublicIP', 'PublicIPv6', 'BackendType', 'BackendData', 'BackendV6Data'] as const

/** flannel's ip.ParseIP4: any address net.ParseIP accepts whose To4() is not nil. */
export function parseGoIPv4(s: string): number | null {
  const v4 = parseIPv4(s)
  if (v4 !== null) return v4
  const v6 = parseIPv6(s)
  return v6 !== null && v6 >> 32n === 0xffffn ? Number(v6 & 0xffffffffn) : null
}

/** flannel's ip.ParseIP6: any address net.ParseIP accepts, as 16 bytes (IPv4 becomes ::ffff:a.b.c.d). */
export function parseGoIPv6(s: string): bigint | null {
  const v4 = parseIPv4(s)
  if (v4 !== null) return (0xffffn << 32n) | BigInt(v4)
  return parseIPv6(s)
}

function typeError(v: GoValue, field: string, type: string): string {
  const what = v.kind === 'number' ? `number ${v.raw}` : v.kind
  return `json: cannot unmarshal ${what} into Go struct field ${field} of type ${type}`
}

/**
 * The exact bytes flanneld's json.Marshal writes for an IPv4 lease whose BackendData is absent, null or a compact
 * object of numbers and plain strings (every vxlan, host-gw, udp and wireguard lease in practice). For such text
 * Go's decoding reduces to: PublicIP = ParseIP4(group 1), PublicIPv6 = nil, BackendType = group 2 (no escapes
 * possible), BackendData = group 3 byte for byte, BackendV6Data absent.
 */
const CANONICAL_MEMBER = String.raw`"[A-Za-z0-9_]+":(?:-?(?:0|[1-9]\d*)|"[A-Za-z0-9_.:/+=-]*")`
const CANONICAL_ATTRS = new RegExp(
  String.raw`^\{"PublicIP":"([0-9.]{7,15})","PublicIPv6":null(?:,"BackendType":"([A-Za-z0-9_.-]*)")?` +
    String.raw`(?:,"BackendData":(null|\{(?:${CANONICAL_MEMBER}(?:,${CANONICAL_MEMBER})*)?\}))?\}$`,
)

/** Decodes a lease value as flanneld's kvToIPLease does; an error means flanneld ignores the key. */
export function decodeLeaseAttrs(text: string): Decoded<LeaseAttrs> {
  // Fast path for the canonical form (one regular expression instead of a full parse: `leases ls` decodes every
  // lease). Anything it does not match, or an address it rejects, takes the general path below.
  const m = CANONICAL_ATTRS.exec(text)
  if (m) {
    const publicIP = parseGoIPv4(m[1]!)
    if (publicIP !== null) {
      return {
        ok: true,
        value: {publicIP, publicIPv6: null, backendType: m[2] ?? '', backendData: m[3] ?? null, backendV6Data: null},
      }
    }
  }
  return decodeLeaseAttrsGeneral(text)
}

/** decodeLeaseAttrs without the fast path: the full Go json.Unmarshal semantics (exported for tests). */
export function decodeLeaseAttrsGeneral(text: string): Decoded<LeaseAttrs> {
  let doc: GoValue
  try {
    doc = parseGoJson(text)
  } catch (error) {
    return {ok: false, error: (error as Error).message}
  }
  if (doc.kind === 'null') {
    return {ok: true, value: {publicIP: 0, publicIPv6: null, backendType: '', backendData: null, backendV6Data: null}}
  }
  if (doc.kind !== 'object') {
    return {ok: false, error: `json: cannot unmarshal ${doc.kind} into Go value of type lease.LeaseAttrs`}
  }
  const f = goFields(doc, ATTR_FIELDS)
  let publicIP = 0
  let publicIPv6: bigint | null = null
  let backendType = ''
  let backendData: string | null = null
  let backendV6Data: string | null = null
  let firstTypeError: string | undefined
  // Go processes members in document order; the order of checks below only matters for which error is reported.
  const pip = f.get('PublicIP')
  if (pip) {
    const s = trimQuotes(pip.raw)
    const v = parseGoIPv4(s)
    if (v === null)
      return {ok: false, error: parseIPv6(s) === null ? 'invalid IP address format' : 'invalid IPv4 address format'}
    publicIP = v
  }
  const pip6 = f.get('PublicIPv6')
  if (pip6 && pip6.kind !== 'null') {
    const v = parseGoIPv6(trimQuotes(pip6.raw))
    if (v === null) return {ok: false, error: 'invalid IP address format'}
    publicIPv6 = v
  }
  const bt = f.get('BackendType')
  if (bt) {
    if (bt.kind === 'string') backendType = bt.value
    else if (bt.kind !== 'null') firstTypeError ??= typeError(bt, 'LeaseAttrs.BackendType', 'string')
  }
  const bd = f.get('BackendData')
  if (bd) backendData = bd.raw
  const bd6 = f.get('BackendV6Data')
  if (bd6) backendV6Data = bd6.raw
  if (firstTypeError) return {ok: false, error: firstTypeError}
  return {ok: true, value: {publicIP, publicIPv6, backendType, backendData, backendV6Data}}
}

/** json.Marshal(&attrs) as flanneld writes it: field order fixed, compact, PublicIPv6 always present. */
export function encodeLeaseAttrs(a: LeaseAttrs): string {
  let out = `{"PublicIP":"${formatIPv4(a.publicIP)}","PublicIPv6":`
  out += a.publicIPv6 === null ? 'null' : `"${formatIP6Flannel(a.publicIPv6)}"`
  if (a.backendType !== '') out += `,"BackendType":${goQuote(a.backendType)}`
  if (a.backendData !== null && a.backendData !== '') out += `,"BackendData":${goCompact(a.backendData)}`
  if (a.backendV6Data !== null && a.backendV6Data !== '') out += `,"BackendV6Data":${goCompact(a.backendV6Data)}`
  return out + '}'
}

export interface VxlanLeaseData {
  readonly vni: number
  readonly vtepMAC: string
}

const CANONICAL_MAC = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/

/** Go's net.ParseMAC for EUI-48 (`:`, `-` or `.` forms), normalised to lower-case colon form. */
export function parseMAC(s: string): string | null {
  if (CANONICAL_MAC.test(s)) return s // already lower-case colon form
  let hex: string | null = null
  if (/^[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(\1[0-9a-fA-F]{2}){4}$/.test(s)) hex = s.replace(/[:-]/g, '')
  else if (/^[0-9a-fA-F]{4}\.[0-9a-fA-F]{4}\.[0-9a-fA-F]{4}$/.test(s)) hex = s.replace(/\./g, '')
  if (hex === null) return null
  return hex.toLowerCase().match(/../g)!.join(':')
}

/**
 * Decodes vxlan BackendData as flannel's vxlan backend does (vxlanLeaseAttrs{VNI uint32, VtepMAC}); an error
 * means vxlan nodes log "error decoding subnet lease JSON" and program nothing for this lease.
 */
export function decodeVxlanData(raw: string | null): Decoded<VxlanLeaseData> {
  if (raw === null) return {ok: false, error: 'no BackendData'}
  // Fast path for what flanneld's vxlan backend writes; the general path gives the same answer for this text.
  const m = CANONICAL_VXLAN.exec(raw)
  if (m) {
    const vni = goUint(m[1]!, 32)
    if (vni !== null) return {ok: true, value: {vni, vtepMAC: m[2]!}}
  }
  return decodeVxlanDataGeneral(raw)
}

/** The exact bytes flanneld's vxlan backend marshals: `{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}`. */
const CANONICAL_VXLAN = /^\{"VNI":(0|[1-9]\d{0,9}),"VtepMAC":"([0-9a-f]{2}(?::[0-9a-f]{2}){5})"\}$/

const VXLAN_FIELDS = ['VNI', 'VtepMAC'] as const

/** decodeVxlanData without the fast path (exported for tests). */
export function decodeVxlanDataGeneral(raw: string): Decoded<VxlanLeaseData> {
  let doc: GoValue
  try {
    doc = parseGoJson(raw)
  } catch (error) {
    return {ok: false, error: (error as Error).message}
  }
  if (doc.kind === 'null') return {ok: false, error: 'BackendData is null'}
  if (doc.kind !== 'object')
    return {ok: false, error: `json: cannot unmarshal ${doc.kind} into Go value of type vxlan.vxlanLeaseAttrs`}
  const f = goFields(doc, VXLAN_FIELDS)
  let vni = 0
  const v = f.get('VNI')
  if (v && v.kind !== 'null') {
    const n = v.kind === 'number' ? goUint(v.raw, 32) : null
    if (n === null) return {ok: false, error: typeError(v, 'vxlanLeaseAttrs.VNI', 'uint32')}
    vni = n
  }
  const m = f.get('VtepMAC')
  if (!m) return {ok: false, error: 'no VtepMAC'}
  if (m.raw.length < 2 || !m.raw.startsWith('"') || !m.raw.endsWith('"'))
    return {ok: false, error: 'error parsing hardware addr'}
  const mac = parseMAC(m.raw.slice(1, -1))
  if (mac === null) return {ok: false, error: `address ${m.raw.slice(1, -1)}: invalid MAC address`}
  return {ok: true, value: {vni, vtepMAC: mac}}
}

/** vxlan BackendData exactly as flanneld marshals it. */
export function encodeVxlanData(d: VxlanLeaseData): string {
  return `{"VNI":${d.vni},"VtepMAC":"${d.vtepMAC}"}`
}
