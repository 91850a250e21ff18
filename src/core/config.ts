/**
 * flannel's network config (pkg/subnet/config.go): ParseConfig with Go's JSON semantics, then CheckNetworkConfig's
 * defaults and validation with flannel's own messages, plus the findings flanneld lacks (kept apart so that
 * "would flanneld accept it" stays exactly flanneld's answer).
 */

import {goToLower, goUnmarshalStruct, type GoField, type GoValue, parseGoJson} from './gojson.js'
import {
  type Decoded,
  type GoIP4Net,
  type GoIP6Net,
  unmarshalIP4,
  unmarshalIP4Net,
  unmarshalIP6,
  unmarshalIP6Net,
} from './goip.js'
import {type Cidr4, contains4, formatIPv4, mask4, size4} from './ipv4.js'
import {type Cidr6, contains6, formatIP6Flannel, mask6, size6} from './ipv6.js'

/** The config as flanneld's ParseConfig leaves it (zero values where a field is absent). */
export interface NetworkConfig {
  readonly enableIPv4: boolean
  readonly enableIPv6: boolean
  readonly enableNFTables: boolean
  /**
   * null = Go's zero value (absent). The prefix is flannel's Mask.Size(): out of 128 for an IPv4-mapped IPv6 CIDR
   * (accepted by the decoder, refused by CheckNetworkConfig).
   */
  readonly network: GoIP4Net | null
  readonly ipv6Network: GoIP6Net | null
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

/** Overhead subtracted from the MTU per backend (docs/flannel.md §5). */
export const BACKEND_MTU_OVERHEAD: Record<string, number> = {vxlan: 50, udp: 28, 'host-gw': 0, ipip: 20, wireguard: 80}

/** subnet.Config as json.Unmarshal sees it (BackendType is `json:"-"`, so a BackendType key is ignored). */
const CONFIG_FIELDS: readonly GoField[] = [
  {name: 'EnableIPv4', type: {kind: 'bool'}},
  {name: 'EnableIPv6', type: {kind: 'bool'}},
  {name: 'EnableNFTables', type: {kind: 'bool'}},
  {name: 'Network', type: {kind: 'unmarshaler', pointer: false, parse: unmarshalIP4Net}},
  {name: 'IPv6Network', type: {kind: 'unmarshaler', pointer: false, parse: unmarshalIP6Net}},
  {name: 'SubnetMin', type: {kind: 'unmarshaler', pointer: false, parse: unmarshalIP4}},
  {name: 'SubnetMax', type: {kind: 'unmarshaler', pointer: false, parse: unmarshalIP4}},
  {name: 'IPv6SubnetMin', type: {kind: 'unmarshaler', pointer: true, parse: unmarshalIP6}},
  {name: 'IPv6SubnetMax', type: {kind: 'unmarshaler', pointer: true, parse: unmarshalIP6}},
  {name: 'SubnetLen', type: {kind: 'uint', bits: 64, goType: 'uint'}},
  {name: 'IPv6SubnetLen', type: {kind: 'uint', bits: 64, goType: 'uint'}},
  {name: 'Backend', type: {kind: 'raw'}},
]

class HardError extends Error {}

/** flannel's ParseConfig: json.Unmarshal into subnet.Config (EnableIPv4 preset to true), then parseBackendType. */
export function parseNetworkConfig(text: string): Decoded<NetworkConfig> {
  let doc: GoValue
  try {
    doc = parseGoJson(text)
  } catch (error) {
    return {ok: false, error: (error as Error).message}
  }
  const t: Record<string, unknown> = {
    EnableIPv4: true,
    EnableIPv6: false,
    EnableNFTables: false,
    Network: null,
    IPv6Network: null,
    SubnetMin: 0,
    SubnetMax: 0,
    IPv6SubnetMin: null,
    IPv6SubnetMax: null,
    SubnetLen: 0,
    IPv6SubnetLen: 0,
    Backend: null,
  }
  const error = goUnmarshalStruct(doc, 'subnet.Config', 'Config', CONFIG_FIELDS, t)
  if (error !== null) return {ok: false, error}
  const backendRaw = t.Backend as string | null
  let backendType = 'udp'
  if (backendRaw !== null) {
    // parseBackendType: json.Unmarshal(be, &struct{ Type string }).
    const bt: Record<string, unknown> = {Type: ''}
    const err = goUnmarshalStruct(parseGoJson(backendRaw), 'struct { Type string }', '', BACKEND_TYPE_FIELDS, bt)
    if (err !== null) return {ok: false, error: `error decoding Backend property of config: ${err}`}
    backendType = bt.Type as string
  }
  return {
    ok: true,
    value: {
      enableIPv4: t.EnableIPv4 as boolean,
      enableIPv6: t.EnableIPv6 as boolean,
      enableNFTables: t.EnableNFTables as boolean,
      network: t.Network as GoIP4Net | null,
      ipv6Network: t.IPv6Network as GoIP6Net | null,
      subnetMin: t.SubnetMin as number,
      subnetMax: t.SubnetMax as number,
      subnetLen: t.SubnetLen as number,
      ipv6SubnetMin: t.IPv6SubnetMin as bigint | null,
      ipv6SubnetMax: t.IPv6SubnetMax as bigint | null,
      ipv6SubnetLen: t.IPv6SubnetLen as number,
      backendType,
      backendRaw,
    },
  }
}

const BACKEND_TYPE_FIELDS: readonly GoField[] = [{name: 'Type', type: {kind: 'string'}}]

/** vxlan.VXLANConfig's fields by their JSON tags (Go prints these names in type errors: VXLANConfig.gbp). */
const VXLAN_CONFIG_FIELDS: readonly GoField[] = [
  {name: 'vni', type: {kind: 'int', bits: 64, goType: 'int'}},
  {name: 'port', type: {kind: 'int', bits: 64, goType: 'int'}},
  {name: 'mtu', type: {kind: 'int', bits: 64, goType: 'int'}},
  {name: 'gbp', type: {kind: 'bool'}},
  {name: 'learning', type: {kind: 'bool'}},
  {name: 'directRouting', type: {kind: 'bool'}},
]

/** flannel's parseVXLANConfig (VNI default 1, MTU default = interface MTU, shown here as 0). */
export function parseVxlanSettings(backendRaw: string | null): Decoded<VxlanSettings> {
  const t: Record<string, unknown> = {vni: 1, port: 0, mtu: 0, gbp: false, learning: false, directRouting: false}
  if (backendRaw !== null && backendRaw !== '') {
    const err = goUnmarshalStruct(parseGoJson(backendRaw), 'vxlan.VXLANConfig', 'VXLANConfig', VXLAN_CONFIG_FIELDS, t)
    if (err !== null) return {ok: false, error: `error decoding VXLAN backend config: ${err}`}
  }
  return {
    ok: true,
    value: {
      vni: t.vni as number,
      port: t.port as number,
      mtu: t.mtu as number,
      gbp: t.gbp as boolean,
      learning: t.learning as boolean,
      directRouting: t.directRouting as boolean,
    },
  }
}

/**
 * The other backends' RegisterNetwork decodes Backend into an anonymous struct (flannel v0.28.9), and ipsec and
 * wireguard then check a value: the error flanneld stops with, or null. (wireguard's PSK is parsed later, after its
 * key file is read, and is not checked here.)
 */
const OTHER_BACKENDS: Record<string, {prefix: string; goType: string; fields: GoField[]}> = {
  ipip: {
    prefix: 'error decoding IPIP backend config',
    goType: 'struct { DirectRouting bool }',
    fields: [{name: 'DirectRouting', type: {kind: 'bool'}}],
  },
  udp: {
    prefix: 'error decoding UDP backend config',
    goType: 'struct { Port int }',
    fields: [{name: 'Port', type: {kind: 'int', bits: 64, goType: 'int'}}],
  },
  ipsec: {
    prefix: 'error decoding IPSEC backend config',
    goType: 'struct { UDPEncap bool; ESPProposal string; PSK string }',
    fields: [
      {name: 'UDPEncap', type: {kind: 'bool'}},
      {name: 'ESPProposal', type: {kind: 'string'}},
      {name: 'PSK', type: {kind: 'string'}},
    ],
  },
  extension: {
    prefix: 'error decoding backend config',
    goType:
      'struct { PreStartupCommand string; PostStartupCommand string; SubnetAddCommand string; SubnetRemoveCommand string }',
    fields: ['PreStartupCommand', 'PostStartupCommand', 'SubnetAddCommand', 'SubnetRemoveCommand'].map((name) => ({
      name,
      type: {kind: 'string'},
    })),
  },
  'tencent-vpc': {
    prefix: 'error decoding VPC backend config',
    goType: 'struct { AccessKeyID string; AccessKeySecret string }',
    fields: [
      {name: 'AccessKeyID', type: {kind: 'string'}},
      {name: 'AccessKeySecret', type: {kind: 'string'}},
    ],
  },
  wireguard: {
    prefix: 'error decoding backend config',
    goType:
      'struct { ListenPort int; ListenPortV6 int; MTU int; PSK string; PersistentKeepaliveInterval time.Duration; Mode wireguard.Mode }',
    fields: [
      {name: 'ListenPort', type: {kind: 'int', bits: 64, goType: 'int'}},
      {name: 'ListenPortV6', type: {kind: 'int', bits: 64, goType: 'int'}},
      {name: 'MTU', type: {kind: 'int', bits: 64, goType: 'int'}},
      {name: 'PSK', type: {kind: 'string'}},
      {name: 'PersistentKeepaliveInterval', type: {kind: 'int', bits: 64, goType: 'time.Duration'}},
      {name: 'Mode', type: {kind: 'string', goType: 'wireguard.Mode'}},
    ],
  },
}

const WIREGUARD_MODES = ['separate', 'auto', 'ipv4', 'ipv6']

function backendConfigError(backendType: string, raw: string | null): string | null {
  const b = OTHER_BACKENDS[backendType]
  if (!b) return null
  const t: Record<string, unknown> = {PSK: '', Mode: 'separate'}
  if (raw !== null && raw !== '') {
    const err = goUnmarshalStruct(parseGoJson(raw), b.goType, '', b.fields, t)
    if (err !== null) return `${b.prefix}: ${err}`
  }
  // len(cfg.PSK) counts UTF-8 bytes.
  if (backendType === 'ipsec' && new TextEncoder().encode(t.PSK as string).length < 96)
    return 'config error, password is too short'
  if (backendType === 'wireguard' && !WIREGUARD_MODES.includes(t.Mode as string)) return 'no valid Mode configured'
  return null
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
  // The backend manager looks the type up with strings.ToLower and prints the lower-cased name.
  const backendType = goToLower(cfg.backendType)
  if (!KNOWN_BACKENDS.includes(backendType)) return {ok: false, error: `unknown backend type: ${backendType}`}
  let vxlan: VxlanSettings | null = null
  if (backendType === 'vxlan') {
    const v = parseVxlanSettings(cfg.backendRaw)
    if (!v.ok) return v
    vxlan = v.value
  } else {
    const e = backendConfigError(backendType, cfg.backendRaw)
    if (e !== null) return {ok: false, error: e}
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
