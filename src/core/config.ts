/**
 * flannel's network config (pkg/subnet/config.go): ParseConfig with Go's JSON semantics, then CheckNetworkConfig's
 * defaults and validation with flannel's own messages, plus the findings flanneld lacks (kept apart so that
 * "would flanneld accept it" stays exactly flanneld's answer).
 */

import {goFields, goInt, goUint, type GoValue, parseGoJson, trimQuotes} from './gojson.js'
import {type Cidr4, contains4, formatIPv4, mask4, parseCidr4, size4} from './ipv4.js'
import {type Cidr6, contains6, formatIP6Flannel, mask6, parseCidr6, size6} from './ipv6.js'
import {type Decoded, parseGoIPv4, parseGoIPv6} from './lease-value.js'

/** The config as flanneld's ParseConfig leaves it (zero values where a field is absent). */
export interface NetworkConfig {
  readonly enableIPv4: boolean
  readonly enableIPv6: boolean
  readonly enableNFTables: boolean
  /** null = Go's zero value (absent). */
  readonly network: (Cidr4 & {hostBitsSet: boolean; written: number}) | null
  readonly ipv6Network: (Cidr6 & {hostBitsSet: boolean; written: bigint}) | null
  /** 0 = unset, as in flannel. */
  readonly subnetMin: number
  readonly subnetMax: number
  readonly subnetLen: number
  readonly ipv6SubnetMin: bigint | null
  readonly ipv6SubnetMax: bigint | null
  readonly ipv6SubnetLen: number
  /** Type from Backend, 'udp' when Backend is absent (flannel's parseBackendType). */
  readonly backendType: string
  /** Raw JSON of Backend, or null when absent. */
  readonly backendRaw: string | null
}

export interface VxlanSettings {
  readonly vni: number
  readonly port: number
  /** 0 = the external interface's MTU. */
  readonly mtu: number
  readonly gbp: boolean
  readonly learning: boolean
  readonly directRouting: boolean
}

export interface EffectiveIPv4 {
  readonly network: Cidr4
  readonly subnetLen: number
  readonly subnetMin: number
  readonly subnetMax: number
}

export interface EffectiveIPv6 {
  readonly network: Cidr6
  readonly subnetLen: number
  readonly subnetMin: bigint
  readonly subnetMax: bigint
}

/** The values flanneld runs with after CheckNetworkConfig. */
export interface EffectiveConfig {
  readonly ipv4: EffectiveIPv4 | null
  readonly ipv6: EffectiveIPv6 | null
  /** Lower-cased, as flannel's backend manager looks it up. */
  readonly backendType: string
  readonly vxlan: VxlanSettings | null
  readonly enableNFTables: boolean
  /** Which of subnetLen, subnetMin, subnetMax (and the ipv6 ones) flannel computed. */
  readonly defaulted: readonly string[]
}

export type Severity = 'error' | 'warning' | 'info'

/** A finding flanneld itself does not report. */
export interface ConfigFinding {
  readonly id: string
  readonly severity: Severity
  readonly message: string
}

/** The backends flanneld registers on Linux. */
export const KNOWN_BACKENDS = [
  'alloc',
  'extension',
  'host-gw',
  'ipip',
  'ipsec',
  'tencent-vpc',
  'udp',
  'vxlan',
  'wireguard',
]

/** Overhead subtracted from the MTU per backend (flannel-semantics §5). */
export const BACKEND_MTU_OVERHEAD: Record<string, number> = {vxlan: 50, udp: 28, 'host-gw': 0, ipip: 20, wireguard: 80}

const CONFIG_FIELDS = [
  'EnableIPv4',
  'EnableIPv6',
  'EnableNFTables',
  'Network',
  'IPv6Network',
  'SubnetMin',
  'SubnetMax',
  'IPv6SubnetMin',
  'IPv6SubnetMax',
  'SubnetLen',
  'IPv6SubnetLen',
  'Backend',
] as const

class HardError extends Error {}

function typeError(v: GoValue, field: string, type: string): string {
  const what = v.kind === 'number' ? `number ${v.raw}` : v.kind
  return `json: cannot unmarshal ${what} into Go struct field ${field} of type ${type}`
}

/** flannel's ParseConfig: json.Unmarshal into subnet.Config (EnableIPv4 preset to true), then the backend type. */
export function parseNetworkConfig(text: string): Decoded<NetworkConfig> {
  let doc: GoValue
  try {
    doc = parseGoJson(text)
  } catch (error) {
    return {ok: false, error: (error as Error).message}
  }
  const cfg = {
    enableIPv4: true,
    enableIPv6: false,
    enableNFTables: false,
    network: null as NetworkConfig['network'],
    ipv6Network: null as NetworkConfig['ipv6Network'],
    subnetMin: 0,
    subnetMax: 0,
    subnetLen: 0,
    ipv6SubnetMin: null as bigint | null,
    ipv6SubnetMax: null as bigint | null,
    ipv6SubnetLen: 0,
    backendType: 'udp',
    backendRaw: null as string | null,
  }
  if (doc.kind === 'null') return {ok: true, value: cfg}
  if (doc.kind !== 'object')
    return {ok: false, error: `json: cannot unmarshal ${doc.kind} into Go value of type subnet.Config`}

  let saved: string | undefined
  const bool = (v: GoValue, name: string, cur: boolean): boolean => {
    if (v.kind === 'bool') return v.value
    if (v.kind !== 'null') saved ??= typeError(v, `Config.${name}`, 'bool')
    return cur
  }
  const uint = (v: GoValue, name: string, cur: number): number => {
    if (v.kind === 'null') return cur
    const n = v.kind === 'number' ? goUint(v.raw) : null
    if (n === null) {
      saved ??= typeError(v, `Config.${name}`, 'uint')
      return cur
    }
    return n
  }
  const ip4 = (v: GoValue): number => {
    const s = trimQuotes(v.raw)
    const n = parseGoIPv4(s)
    if (n === null)
      throw new HardError(parseGoIPv6(s) === null ? 'invalid IP address format' : 'invalid IPv4 address format')
    return n
  }
  const ip6 = (v: GoValue): bigint | null => {
    if (v.kind === 'null') return null
    const n = parseGoIPv6(trimQuotes(v.raw))
    if (n === null) throw new HardError('invalid IP address format')
    return n
  }

  try {
    // Go assigns members in document order (exact field name first, then case-insensitive; the last one wins),
    // and a hard (unmarshaler) error stops decoding at once, so walk the members in order.
    for (const [key, value] of doc.members) {
      const name =
        CONFIG_FIELDS.find((n) => n === key) ?? CONFIG_FIELDS.find((n) => n.toLowerCase() === key.toLowerCase())
      if (!name) continue
      switch (name) {
        case 'EnableIPv4':
          cfg.enableIPv4 = bool(value, name, cfg.enableIPv4)
          break
        case 'EnableIPv6':
          cfg.enableIPv6 = bool(value, name, cfg.enableIPv6)
          break
        case 'EnableNFTables':
          cfg.enableNFTables = bool(value, name, cfg.enableNFTables)
          break
        case 'Network': {
          const s = trimQuotes(value.raw)
          const c = parseCidr4(s)
          if (!c) throw new HardError(parseCidr6(s) ? 'invalid IPv4 CIDR format' : `invalid CIDR address: ${s}`)
          cfg.network = c
          break
        }
        case 'IPv6Network': {
          const s = trimQuotes(value.raw)
          const c6 = parseCidr6(s)
          if (c6) cfg.ipv6Network = c6
          else {
            const c4 = parseCidr4(s)
            if (!c4) throw new HardError(`invalid CIDR address: ${s}`)
            const ip = (0xffffn << 32n) | BigInt(c4.ip)
            cfg.ipv6Network = {ip, prefix: c4.prefix, written: ip, hostBitsSet: c4.hostBitsSet}
          }
          break
        }
        case 'SubnetMin':
          cfg.subnetMin = ip4(value)
          break
        case 'SubnetMax':
          cfg.subnetMax = ip4(value)
          break
        case 'IPv6SubnetMin':
          cfg.ipv6SubnetMin = ip6(value)
          break
        case 'IPv6SubnetMax':
          cfg.ipv6SubnetMax = ip6(value)
          break
        case 'SubnetLen':
          cfg.subnetLen = uint(value, name, cfg.subnetLen)
          break
        case 'IPv6SubnetLen':
          cfg.ipv6SubnetLen = uint(value, name, cfg.ipv6SubnetLen)
          break
        case 'Backend':
          cfg.backendRaw = value.raw
          break
      }
    }
  } catch (error) {
    if (error instanceof HardError) return {ok: false, error: error.message}
    throw error
  }
  if (saved) return {ok: false, error: saved}

  if (cfg.backendRaw !== null) {
    const be = parseGoJson(cfg.backendRaw)
    if (be.kind === 'object') {
      const t = goFields(be, ['Type'] as const).get('Type')
      if (t && t.kind === 'string') cfg.backendType = t.value
      else if (t && t.kind !== 'null')
        return {ok: false, error: `error decoding Backend property of config: ${typeError(t, '.Type', 'string')}`}
      else cfg.backendType = ''
    } else if (be.kind === 'null') cfg.backendType = ''
    else
      return {
        ok: false,
        error: `error decoding Backend property of config: json: cannot unmarshal ${be.kind} into Go value of type struct { Type string }`,
      }
  }
  return {ok: true, value: cfg}
}

/** flannel's parseVXLANConfig (VNI default 1, MTU default = interface MTU, shown here as 0). */
export function parseVxlanSettings(backendRaw: string | null): Decoded<VxlanSettings> {
  const s = {vni: 1, port: 0, mtu: 0, gbp: false, learning: false, directRouting: false}
  if (backendRaw === null || backendRaw === '') return {ok: true, value: s}
  const doc = parseGoJson(backendRaw)
  if (doc.kind === 'null') return {ok: true, value: s}
  if (doc.kind !== 'object') {
    return {
      ok: false,
      error: `error decoding VXLAN backend config: json: cannot unmarshal ${doc.kind} into Go value of type vxlan.VXLANConfig`,
    }
  }
  const f = goFields(doc, ['VNI', 'Port', 'MTU', 'GBP', 'Learning', 'DirectRouting'] as const)
  let err: string | undefined
  const int = (name: 'VNI' | 'Port' | 'MTU', cur: number): number => {
    const v = f.get(name)
    if (!v || v.kind === 'null') return cur
    const n = v.kind === 'number' ? goInt(v.raw) : null
    if (n === null) {
      err ??= typeError(v, `VXLANConfig.${name.toLowerCase()}`, 'int')
      return cur
    }
    return n
  }
  const bool = (name: 'GBP' | 'Learning' | 'DirectRouting'): boolean => {
    const v = f.get(name)
    if (!v || v.kind === 'null') return false
    if (v.kind === 'bool') return v.value
    err ??= typeError(v, `VXLANConfig.${name.charAt(0).toLowerCase() + name.slice(1)}`, 'bool')
    return false
  }
  const value = {
    vni: int('VNI', 1),
    port: int('Port', 0),
    mtu: int('MTU', 0),
    gbp: bool('GBP'),
    learning: bool('Learning'),
    directRouting: bool('DirectRouting'),
  }
  if (err) return {ok: false, error: `error decoding VXLAN backend config: ${err}`}
  return {ok: true, value}
}

function checkIPv4(cfg: NetworkConfig, defaulted: string[]): EffectiveIPv4 {
  const n = cfg.network
  if (!n || (n.ip === 0 && n.prefix === 0))
    throw new HardError('please define a correct Network parameter in the flannel config')
  const P = n.prefix
  let subnetLen = cfg.subnetLen
  if (subnetLen > 0) {
    if (subnetLen > 30) throw new HardError('SubnetLen must be less than /31')
    if (subnetLen < P + 2) throw new HardError('network must be able to accommodate at least four subnets')
  } else {
    if (P > 28) throw new HardError('network is too small. Minimum useful network prefix is /28')
    subnetLen = P <= 22 ? 24 : P + 2
    defaulted.push('subnetLen')
  }
  const size = size4(subnetLen)
  let subnetMin = cfg.subnetMin
  if (subnetMin === 0) {
    subnetMin = (n.ip + size) % 2 ** 32
    defaulted.push('subnetMin')
  } else if (!contains4(n, subnetMin)) throw new HardError('SubnetMin is not in the range of the Network')
  let subnetMax = cfg.subnetMax
  if (subnetMax === 0) {
    subnetMax = (((n.ip + size4(P)) % 2 ** 32) - size + 2 ** 32) % 2 ** 32
    defaulted.push('subnetMax')
  } else if (!contains4(n, subnetMax)) throw new HardError('SubnetMax is not in the range of the Network')
  const m = mask4(subnetLen)
  if ((subnetMin & m) >>> 0 !== subnetMin)
    throw new HardError(`SubnetMin is not on a SubnetLen boundary: ${formatIPv4(subnetMin)}`)
  if ((subnetMax & m) >>> 0 !== subnetMax)
    throw new HardError(`SubnetMax is not on a SubnetLen boundary: ${formatIPv4(subnetMax)}`)
  return {network: {ip: n.ip, prefix: P}, subnetLen, subnetMin, subnetMax}
}

function checkIPv6(cfg: NetworkConfig, defaulted: string[]): EffectiveIPv6 {
  const n = cfg.ipv6Network
  if (!n || (n.ip === 0n && n.prefix === 0))
    throw new HardError('please define a correct IPv6Network parameter in the flannel config')
  const P = n.prefix
  let subnetLen = cfg.ipv6SubnetLen
  if (subnetLen > 0) {
    if (subnetLen > 126) throw new HardError('SubnetLen must be less than /127')
    if (subnetLen < P + 2) throw new HardError('network must be able to accommodate at least four subnets')
  } else {
    if (P > 124) throw new HardError('IPv6Network is too small. Minimum useful network prefix is /124')
    subnetLen = P <= 62 ? 64 : P + 2
    defaulted.push('ipv6SubnetLen')
  }
  const size = size6(subnetLen)
  let subnetMin = cfg.ipv6SubnetMin
  if (subnetMin === null || subnetMin === 0n) {
    subnetMin = n.ip + size
    defaulted.push('ipv6SubnetMin')
  } else if (!contains6(n, subnetMin)) throw new HardError('IPv6SubnetMin is not in the range of the IPv6Network')
  let subnetMax = cfg.ipv6SubnetMax
  if (subnetMax === null || subnetMax === 0n) {
    subnetMax = n.ip + size6(P) - size
    defaulted.push('ipv6SubnetMax')
  } else if (!contains6(n, subnetMax)) throw new HardError('IPv6SubnetMax is not in the range of the IPv6Network')
  const m = mask6(subnetLen)
  if ((subnetMin & m) !== subnetMin)
    throw new HardError(`IPv6SubnetMin is not on a SubnetLen boundary: ${formatIP6Flannel(subnetMin)}`)
  if ((subnetMax & m) !== subnetMax)
    throw new HardError(`IPv6SubnetMax is not on a SubnetLen boundary: ${formatIP6Flannel(subnetMax)}`)
  return {network: {ip: n.ip, prefix: P}, subnetLen, subnetMin, subnetMax}
}

/**
 * flannel's CheckNetworkConfig, followed by what flanneld checks when it starts (a stack enabled, a known backend,
 * a decodable vxlan config). The error is flannel's message, verbatim.
 */
export function checkNetworkConfig(cfg: NetworkConfig): Decoded<EffectiveConfig> {
  const defaulted: string[] = []
  let ipv4: EffectiveIPv4 | null = null
  let ipv6: EffectiveIPv6 | null = null
  try {
    if (cfg.enableIPv4) ipv4 = checkIPv4(cfg, defaulted)
    if (cfg.enableIPv6) ipv6 = checkIPv6(cfg, defaulted)
  } catch (error) {
    if (error instanceof HardError) return {ok: false, error: error.message}
    throw error
  }
  if (!cfg.enableIPv4 && !cfg.enableIPv6) return {ok: false, error: 'none defined stack'}
  const backendType = cfg.backendType.toLowerCase()
  if (!KNOWN_BACKENDS.includes(backendType)) return {ok: false, error: `unknown backend type: ${cfg.backendType}`}
  let vxlan: VxlanSettings | null = null
  if (backendType === 'vxlan') {
    const v = parseVxlanSettings(cfg.backendRaw)
    if (!v.ok) return v
    vxlan = v.value
  }
  return {ok: true, value: {ipv4, ipv6, backendType, vxlan, enableNFTables: cfg.enableNFTables, defaulted}}
}

/** Parse and check in one step; the error is flannel's message. */
export function resolveNetworkConfig(text: string): Decoded<{config: NetworkConfig; effective: EffectiveConfig}> {
  const parsed = parseNetworkConfig(text)
  if (!parsed.ok) return parsed
  const checked = checkNetworkConfig(parsed.value)
  if (!checked.ok) return checked
  return {ok: true, value: {config: parsed.value, effective: checked.value}}
}

/** Findings flanneld does not report; they never change whether flanneld accepts the config. */
export function extraConfigFindings(cfg: NetworkConfig, eff: EffectiveConfig | null): ConfigFinding[] {
  const out: ConfigFinding[] = []
  if (eff?.ipv4 && eff.ipv4.subnetMin > eff.ipv4.subnetMax) {
    out.push({
      id: 'config-range-inverted',
      severity: 'error',
      message: `SubnetMin ${formatIPv4(eff.ipv4.subnetMin)} is above SubnetMax ${formatIPv4(eff.ipv4.subnetMax)}: flanneld accepts this and then fails every allocation with "out of subnets"`,
    })
  }
  if (eff?.ipv6 && eff.ipv6.subnetMin > eff.ipv6.subnetMax) {
    out.push({
      id: 'config-range-inverted',
      severity: 'error',
      message: `IPv6SubnetMin ${formatIP6Flannel(eff.ipv6.subnetMin)} is above IPv6SubnetMax ${formatIP6Flannel(eff.ipv6.subnetMax)}: every IPv6 allocation fails with "out of subnets"`,
    })
  }
  if (cfg.enableIPv4 && cfg.network?.hostBitsSet) {
    out.push({
      id: 'config-noncanonical',
      severity: 'warning',
      message: `Network ${formatIPv4(cfg.network.written)}/${cfg.network.prefix} has host bits set; flanneld silently uses ${formatIPv4(cfg.network.ip)}/${cfg.network.prefix}`,
    })
  }
  if (cfg.enableIPv6 && cfg.ipv6Network?.hostBitsSet) {
    out.push({
      id: 'config-noncanonical',
      severity: 'warning',
      message: `IPv6Network ${formatIP6Flannel(cfg.ipv6Network.written)}/${cfg.ipv6Network.prefix} has host bits set; flanneld silently uses ${formatIP6Flannel(cfg.ipv6Network.ip)}/${cfg.ipv6Network.prefix}`,
    })
  }
  if (cfg.backendRaw === null) {
    out.push({
      id: 'backend-udp',
      severity: 'warning',
      message:
        'no Backend is set, so flanneld runs the udp backend (meant for debugging only); set "Backend": {"Type": "vxlan"}',
    })
  }
  if (!cfg.enableIPv4 && cfg.enableIPv6) {
    out.push({
      id: 'config-ipv6-only',
      severity: 'warning',
      message:
        "IPv6-only networks do not work with flanneld's etcd subnet manager (allocation cannot advance); keep EnableIPv4",
    })
  }
  return out
}

/** Number of SubnetLen-sized subnets in [SubnetMin, SubnetMax] (0 when the range is inverted). */
export function totalSubnets4(e: Pick<EffectiveIPv4, 'subnetMin' | 'subnetMax' | 'subnetLen'>): number {
  if (e.subnetMin > e.subnetMax) return 0
  return Math.floor((e.subnetMax - e.subnetMin) / size4(e.subnetLen)) + 1
}
