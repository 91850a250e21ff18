/**
 * The lease value flanneld stores under each subnet key: Go's `lease.LeaseAttrs`, read with json.Unmarshal and
 * written with json.Marshal. Decoding follows Go (case-insensitive keys, unknown keys ignored, flannel's IP
 * unmarshalers); encoding is byte-identical to flanneld's.
 */

import {
  goCompact,
  goQuote,
  GoUnmarshalerError,
  goUnmarshalStruct,
  type GoField,
  type GoValue,
  parseGoJson,
} from './gojson.js'
import {goParseIP4, goParseIP6, goParseMAC, unmarshalIP4, unmarshalIP6, type Decoded} from './goip.js'
import {formatIPv4, parseIPv4, parseIPv4Range} from './ipv4.js'
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
 * The exact bytes flanneld's json.Marshal writes, in every release: `{"PublicIP":"a.b.c.d"` then, each only when
 * flanneld writes it, `,"PublicIPv6":null` or `,"PublicIPv6":"<v6>"` (0.15+: always present), `,"BackendType":"..."`
 * (udp writes none), `,"BackendData":<raw>` and `,"BackendV6Data":<raw>` (dual stack), where raw is `null` or a
 * compact object of numbers and plain strings (vxlan's VNI and VtepMAC, wireguard's PublicKey, ...), then `}`.
 * For such text Go's decoding reduces to reading the pieces: PublicIP is the dotted quad, PublicIPv6 what
 * ParseIP6 makes of the address, BackendType has no escapes, BackendData and BackendV6Data are their bytes.
 * Returns null for anything else (and for an address the strict parse rejects): the caller takes the general path.
 * A char-code scan, no regular expression, no intermediate strings beyond the fields themselves.
 */
export function decodeLeaseAttrsFast(t: string): LeaseAttrs | null {
  const n = t.length
  if (!t.startsWith('{"PublicIP":"')) return null
  let i = 13
  const q = t.indexOf('"', i)
  if (q < 0) return null
  const publicIP = parseIPv4Range(t, i, q)
  if (publicIP === null) return null
  i = q + 1
  let publicIPv6: bigint | null = null
  if (t.startsWith(',"PublicIPv6":', i)) {
    i += 14
    if (t.startsWith('null', i)) i += 4
    else {
      if (t.charCodeAt(i) !== 0x22) return null
      const s = i + 1
      let e = s
      while (e < n && isAddrChar(t.charCodeAt(e))) e++
      if (e === s || t.charCodeAt(e) !== 0x22) return null
      const r = goParseIP6(t.slice(s, e))
      if (!r.ok) return null
      publicIPv6 = r.value
      i = e + 1
    }
  }
  let backendType = ''
  if (t.startsWith(',"BackendType":"', i)) {
    i += 16
    const s = i
    while (i < n && isWordChar(t.charCodeAt(i), true)) i++
    if (t.charCodeAt(i) !== 0x22) return null
    // The usual types as the one shared string each (65,535 leases keep one copy, not 65,535).
    backendType = i - s === 5 && t.startsWith('vxlan', s) ? 'vxlan' : t.slice(s, i)
    i++
  }
  let backendData: string | null = null
  if (t.startsWith(',"BackendData":', i)) {
    i += 15
    const e = scanPlainObject(t, i)
    if (e < 0) return null
    backendData = t.slice(i, e)
    i = e
  }
  let backendV6Data: string | null = null
  if (t.startsWith(',"BackendV6Data":', i)) {
    i += 17
    const e = scanPlainObject(t, i)
    if (e < 0) return null
    backendV6Data = t.slice(i, e)
    i = e
  }
  if (i !== n - 1 || t.charCodeAt(i) !== 0x7d) return null
  return {publicIP, publicIPv6, backendType, backendData, backendV6Data}
}

/** [A-Za-z0-9_], with `.` and `-` when `dotDash`. */
function isWordChar(c: number, dotDash: boolean): boolean {
  return (
    (c >= 0x61 && c <= 0x7a) ||
    (c >= 0x41 && c <= 0x5a) ||
    (c >= 0x30 && c <= 0x39) ||
    c === 0x5f ||
    (dotDash && (c === 0x2e || c === 0x2d))
  )
}

/** What an address can hold: hex digits, `:` and `.` (no escapes, no zones). */
function isAddrChar(c: number): boolean {
  return (c >= 0x30 && c <= 0x3a) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46) || c === 0x2e
}

/** [A-Za-z0-9_.:/+=-]: the characters of a plain string value (base64 keys, MACs, addresses), none escaped in JSON. */
function isPlainChar(c: number): boolean {
  return isWordChar(c, true) || c === 0x3a || c === 0x2f || c === 0x2b || c === 0x3d
}

/**
 * The end of `null` or a compact object `{"Name":<number or plain string>,...}` starting at `i` (numbers as JSON
 * writes integers: `-?(0|[1-9][0-9]*)`), or -1 when the text there is anything else.
 */
function scanPlainObject(t: string, i: number): number {
  const n = t.length
  if (t.startsWith('null', i)) return i + 4
  if (t.charCodeAt(i) !== 0x7b) return -1
  i++
  if (t.charCodeAt(i) === 0x7d) return i + 1
  for (;;) {
    if (t.charCodeAt(i) !== 0x22) return -1
    const k = ++i
    while (i < n && isWordChar(t.charCodeAt(i), false)) i++
    if (i === k || t.charCodeAt(i) !== 0x22 || t.charCodeAt(i + 1) !== 0x3a) return -1
    i += 2
    let c = t.charCodeAt(i)
    if (c === 0x22) {
      i++
      while (i < n && isPlainChar(t.charCodeAt(i))) i++
      if (t.charCodeAt(i) !== 0x22) return -1
      i++
    } else {
      if (c === 0x2d) c = t.charCodeAt(++i)
      if (c === 0x30) i++
      else if (c >= 0x31 && c <= 0x39) {
        i++
        while (i < n && (c = t.charCodeAt(i)) >= 0x30 && c <= 0x39) i++
      } else return -1
    }
    c = t.charCodeAt(i)
    if (c === 0x7d) return i + 1
    if (c !== 0x2c) return -1
    i++
  }
}

/** Decodes a lease value as flanneld's kvToIPLease does; an error means flanneld ignores the key. */
export function decodeLeaseAttrs(text: string): Decoded<LeaseAttrs> {
  // Fast path for the bytes flanneld writes (`leases ls` decodes every lease); anything else, or an address the
  // strict parse rejects, takes the general path, which gives the same answer for what the fast path accepts
  // (test/core/lease-value-fastpath.test.ts compares both on generated and hostile values and on the go-vectors).
  const fast = decodeLeaseAttrsFast(text)
  return fast ? {ok: true, value: fast} : decodeLeaseAttrsGeneral(text)
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
  const fast = raw === null ? null : decodeVxlanDataFast(raw)
  return fast ? {ok: true, value: fast} : decodeVxlanDataGeneral(raw)
}

/**
 * The exact bytes flanneld's vxlan backend marshals, `{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}` (0.14+) or
 * `{"VtepMAC":"c6:d2:32:6f:8f:44"}` (before: VNI 0), with a uint32 VNI and a lower-case colon MAC (net.ParseMAC
 * returns it unchanged); null for anything else.
 */
export function decodeVxlanDataFast(raw: string): VxlanLeaseData | null {
  let i: number
  let vni = 0
  if (raw.startsWith('{"VNI":')) {
    i = 7
    let c = raw.charCodeAt(i)
    if (c === 0x30) i++
    else if (c >= 0x31 && c <= 0x39) {
      const s = i
      while (i < raw.length && (c = raw.charCodeAt(i)) >= 0x30 && c <= 0x39) i++
      if (i - s > 10) return null
      vni = Number(raw.slice(s, i))
      if (vni > 0xffffffff) return null
    } else return null
    if (!raw.startsWith(',"VtepMAC":"', i)) return null
    i += 12
  } else if (raw.startsWith('{"VtepMAC":"')) i = 12
  else return null
  if (raw.length !== i + 19 || raw.charCodeAt(i + 17) !== 0x22 || raw.charCodeAt(i + 18) !== 0x7d) return null
  for (let k = i; k < i + 17; k += 3) {
    if (!isLowerHex(raw.charCodeAt(k)) || !isLowerHex(raw.charCodeAt(k + 1))) return null
    if (k < i + 15 && raw.charCodeAt(k + 2) !== 0x3a) return null
  }
  return {vni, vtepMAC: raw.slice(i, i + 17)}
}

function isLowerHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66)
}

/**
 * Whether `raw` is exactly what flanneld's vxlan backend writes for `d`, `{"VNI":<vni>,"VtepMAC":"<mac>"}` with a
 * uint32 VNI and a lower-case colon MAC, so JSON.parse(raw) is {VNI: d.vni, VtepMAC: d.vtepMAC}. Compares in place.
 */
export function isVxlanDataOf(raw: string, d: VxlanLeaseData): boolean {
  const {vni, vtepMAC} = d
  if (!Number.isInteger(vni) || vni < 0 || vni > 0xffffffff || vtepMAC.length !== 17) return false
  const digits = String(vni)
  // The length fixes where the VNI's digits end and the MAC starts; VXLAN_DATA checks the rest in one native pass.
  return (
    raw.length === 38 + digits.length &&
    raw.startsWith(digits, 7) &&
    raw.startsWith(vtepMAC, 19 + digits.length) &&
    VXLAN_DATA.test(raw)
  )
}

/** `{"VNI":<uint, no leading zero>,"VtepMAC":"<lower-case colon MAC>"}`, exactly. */
const VXLAN_DATA = /^\{"VNI":(?:0|[1-9][0-9]{0,9}),"VtepMAC":"[0-9a-f]{2}(?::[0-9a-f]{2}){5}"\}$/

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
