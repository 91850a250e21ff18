/**
 * The lease value flanneld stores under each subnet key: Go's `lease.LeaseAttrs`, read with json.Unmarshal and
 * written with json.Marshal. Decoding follows Go (case-insensitive keys, unknown keys ignored, flannel's IP
 * unmarshalers); encoding is byte-identical to flanneld's.
 */

import {
  goCompact,
  goInteger,
  goQuote,
  GoUnmarshalerError,
  goUnmarshalStruct,
  type GoField,
  type GoValue,
  parseGoJson,
} from './gojson.js'
import {goParseIP4, goParseMAC, unmarshalIP4, unmarshalIP6, type Decoded} from './goip.js'
import {formatIPv4, parseIPv4} from './ipv4.js'
import {formatIP6Flannel} from './ipv6.js'

export type {Decoded} from './goip.js'

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

/** flannel's ip.ParseIP4: any address net.ParseIP accepts whose To4() is not nil; null otherwise. */
export function parseGoIPv4(s: string): number | null {
  const v4 = parseIPv4(s)
  if (v4 !== null) return v4
  const r = goParseIP4(s)
  return r.ok ? r.value : null
}

/** lease.LeaseAttrs as json.Unmarshal sees it. */
const ATTR_FIELDS: readonly GoField[] = [
  {name: 'PublicIP', type: {kind: 'unmarshaler', pointer: false, parse: unmarshalIP4}},
  {name: 'PublicIPv6', type: {kind: 'unmarshaler', pointer: true, parse: unmarshalIP6}},
  {name: 'BackendType', type: {kind: 'string'}},
  {name: 'BackendData', type: {kind: 'raw'}},
  {name: 'BackendV6Data', type: {kind: 'raw'}},
]

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
  const t: Record<string, unknown> = {
    PublicIP: 0,
    PublicIPv6: null,
    BackendType: '',
    BackendData: null,
    BackendV6Data: null,
  }
  const error = goUnmarshalStruct(doc, 'lease.LeaseAttrs', 'LeaseAttrs', ATTR_FIELDS, t)
  if (error !== null) return {ok: false, error}
  return {
    ok: true,
    value: {
      publicIP: t.PublicIP as number,
      publicIPv6: t.PublicIPv6 as bigint | null,
      backendType: t.BackendType as string,
      backendData: t.BackendData as string | null,
      backendV6Data: t.BackendV6Data as string | null,
    },
  }
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

/** Go's net.ParseMAC (6, 8 or 20 octets; `:`, `-` or `.` forms), normalised to lower-case colon form; null if invalid. */
export function parseMAC(s: string): string | null {
  if (CANONICAL_MAC.test(s)) return s // already lower-case colon form
  const r = goParseMAC(s)
  return r.ok ? r.value : null
}

/**
 * Decodes vxlan BackendData as flannel's vxlan backend does (json.Unmarshal into vxlanLeaseAttrs{VNI uint32,
 * VtepMAC hardwareAddr}); null is absent BackendData (Go unmarshals an empty RawMessage). An error means vxlan
 * nodes log "error decoding subnet lease JSON" and program nothing for this lease. `{}` and `null` decode (VNI 0,
 * empty MAC), as they do in flanneld.
 */
export function decodeVxlanData(raw: string | null): Decoded<VxlanLeaseData> {
  // Fast path for what flanneld's vxlan backend writes; the general path gives the same answer for this text.
  if (raw !== null) {
    const m = CANONICAL_VXLAN.exec(raw)
    if (m) {
      const vni = goInteger(m[1]!, false, 32)
      if (vni !== null) return {ok: true, value: {vni, vtepMAC: m[2]!}}
    }
  }
  return decodeVxlanDataGeneral(raw)
}

/** The exact bytes flanneld's vxlan backend marshals: `{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}`. */
const CANONICAL_VXLAN = /^\{"VNI":(0|[1-9]\d{0,9}),"VtepMAC":"([0-9a-f]{2}(?::[0-9a-f]{2}){5})"\}$/

/** vxlan's hardwareAddr.UnmarshalJSON: exactly one pair of quotes around what net.ParseMAC reads. */
function unmarshalHardwareAddr(raw: string): string {
  if (raw.length < 2 || !raw.startsWith('"') || !raw.endsWith('"'))
    throw new GoUnmarshalerError('error parsing hardware addr')
  const r = goParseMAC(raw.slice(1, -1))
  if (!r.ok) throw new GoUnmarshalerError(r.error)
  return r.value
}

const VXLAN_FIELDS: readonly GoField[] = [
  {name: 'VNI', type: {kind: 'uint', bits: 32, goType: 'uint32'}},
  {name: 'VtepMAC', type: {kind: 'unmarshaler', pointer: false, parse: unmarshalHardwareAddr}},
]

/** decodeVxlanData without the fast path (exported for tests). */
export function decodeVxlanDataGeneral(raw: string | null): Decoded<VxlanLeaseData> {
  let doc: GoValue
  try {
    doc = parseGoJson(raw ?? '')
  } catch (error) {
    return {ok: false, error: (error as Error).message}
  }
  const t: Record<string, unknown> = {VNI: 0, VtepMAC: ''}
  const error = goUnmarshalStruct(doc, 'vxlan.vxlanLeaseAttrs', 'vxlanLeaseAttrs', VXLAN_FIELDS, t)
  if (error !== null) return {ok: false, error}
  return {ok: true, value: {vni: t.VNI as number, vtepMAC: t.VtepMAC as string}}
}

/** vxlan BackendData exactly as flanneld marshals it. */
export function encodeVxlanData(d: VxlanLeaseData): string {
  return `{"VNI":${d.vni},"VtepMAC":"${d.vtepMAC}"}`
}
