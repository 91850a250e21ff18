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

/** Decodes a lease value as flanneld's kvToIPLease does; an error means flanneld ignores the key. */
export function decodeLeaseAttrs(text: string): Decoded<LeaseAttrs> {
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
    if (v === null) return {ok: false, error: parseIPv6(s) === null ? 'invalid IP address format' : 'invalid IPv4 address format'}
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

/** Go's net.ParseMAC for EUI-48 (`:`, `-` or `.` forms), normalised to lower-case colon form. */
export function parseMAC(s: string): string | null {
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
  let doc: GoValue
  try {
    doc = parseGoJson(raw)
  } catch (error) {
    return {ok: false, error: (error as Error).message}
  }
  if (doc.kind === 'null') return {ok: false, error: 'BackendData is null'}
  if (doc.kind !== 'object') return {ok: false, error: `json: cannot unmarshal ${doc.kind} into Go value of type vxlan.vxlanLeaseAttrs`}
  const f = goFields(doc, ['VNI', 'VtepMAC'] as const)
  let vni = 0
  const v = f.get('VNI')
  if (v && v.kind !== 'null') {
    const n = v.kind === 'number' ? goUint(v.raw, 32) : null
    if (n === null) return {ok: false, error: typeError(v, 'vxlanLeaseAttrs.VNI', 'uint32')}
    vni = n
  }
  const m = f.get('VtepMAC')
  if (!m) return {ok: false, error: 'no VtepMAC'}
  if (m.raw.length < 2 || !m.raw.startsWith('"') || !m.raw.endsWith('"')) return {ok: false, error: 'error parsing hardware addr'}
  const mac = parseMAC(m.raw.slice(1, -1))
  if (mac === null) return {ok: false, error: `address ${m.raw.slice(1, -1)}: invalid MAC address`}
  return {ok: true, value: {vni, vtepMAC: mac}}
}

/** vxlan BackendData exactly as flanneld marshals it. */
export function encodeVxlanData(d: VxlanLeaseData): string {
  return `{"VNI":${d.vni},"VtepMAC":"${d.vtepMAC}"}`
}
