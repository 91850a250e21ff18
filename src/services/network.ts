/**
 * network show / validate / init: the config key with flannel's defaults resolved, and capacity.
 */

import {
  checkNetworkConfig,
  type ConfigFinding,
  type EffectiveConfig,
  extraConfigFindings,
  parseNetworkConfig,
  resolveNetworkConfig,
} from '../core/config.js'
import {ConflictError, NotFoundError, UsageError} from '../core/errors.js'
import {formatCidr4, formatIPv4} from '../core/ipv4.js'
import {formatCidr6, formatIP6Flannel, parseCidr6} from '../core/ipv6.js'
import {type Capacity, capacity, decodeLeases, type RawKV} from '../core/leases.js'
import {configExists} from '../store/conflicts.js'
import type {Confirm} from '../prompts/confirm.js'
import type {FlannelStore, NetworkReader} from '../store/port.js'

export interface EffectiveJson {
  network: string | null
  subnetLen: number | null
  subnetMin: string | null
  subnetMax: string | null
  backendType: string
  backend: {
    type: string
    vni: number | null
    port: number | null
    directRouting: boolean | null
    gbp: boolean | null
    mtu: number | null
  }
  enableNFTables: boolean
  defaulted: string[]
  ipv6: {network: string; subnetLen: number; subnetMin: string; subnetMax: string} | null
}

export function effectiveToJson(e: EffectiveConfig): EffectiveJson {
  return {
    network: e.ipv4 ? formatCidr4(e.ipv4.network) : null,
    subnetLen: e.ipv4?.subnetLen ?? null,
    subnetMin: e.ipv4 ? formatIPv4(e.ipv4.subnetMin) : null,
    subnetMax: e.ipv4 ? formatIPv4(e.ipv4.subnetMax) : null,
    backendType: e.backendType,
    backend: {
      type: e.backendType,
      vni: e.vxlan?.vni ?? null,
      port: e.vxlan ? e.vxlan.port || 8472 : null,
      directRouting: e.vxlan?.directRouting ?? null,
      gbp: e.vxlan?.gbp ?? null,
      mtu: e.vxlan ? e.vxlan.mtu || null : null,
    },
    enableNFTables: e.enableNFTables,
    defaulted: [...e.defaulted],
    ipv6: e.ipv6
      ? {
          network: formatCidr6(e.ipv6.network),
          subnetLen: e.ipv6.subnetLen,
          subnetMin: formatIP6Flannel(e.ipv6.subnetMin),
          subnetMax: formatIP6Flannel(e.ipv6.subnetMax),
        }
      : null,
  }
}

function plainJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return null
  }
}

export interface NetworkShowResult {
  revision: string
  key: string
  config: unknown
  raw: string
  modRevision: string
  valid: boolean
  error: string | null
  effective: EffectiveJson | null
  findings: ConfigFinding[]
  capacity: Capacity | null
  leases: number
  source: string
  /** The etcd keyspace read (null for a snapshot): v2 counts in modifiedIndex and etcd index, not revisions. */
  keyspace: 'v2' | 'v3' | null
}

/** The stored config, its effective values, our extra findings and capacity (exit 4 when there is no config). */
export async function showNetwork(reader: NetworkReader): Promise<NetworkShowResult> {
  const snap = await reader.readNetwork()
  if (!snap.config) {
    throw new NotFoundError(
      `no flannel network config at ${reader.layout.config} (revision ${snap.revision})`,
      'CONFIG_NOT_FOUND',
      'create one with: flannelctl network init --network 10.5.0.0/16',
    )
  }
  const raw = snap.config.value
  const parsed = parseNetworkConfig(raw)
  const checked = parsed.ok ? checkNetworkConfig(parsed.value) : parsed
  const eff = checked.ok ? checked.value : null
  const {leases} = decodeLeases(snap.subnets)
  return {
    revision: snap.revision,
    key: reader.layout.config,
    config: plainJson(raw),
    raw,
    modRevision: snap.config.modRevision,
    valid: checked.ok,
    error: checked.ok ? null : checked.error,
    effective: eff ? effectiveToJson(eff) : null,
    findings: parsed.ok ? extraConfigFindings(parsed.value, eff) : [],
    capacity: eff?.ipv4
      ? capacity(
          eff.ipv4,
          leases.map((l) => l.subnet),
        )
      : null,
    leases: leases.length,
    source: reader.source,
    keyspace: reader.api ?? null,
  }
}

export interface ValidateResult {
  valid: boolean
  effective: EffectiveJson | null
  errors: string[]
  warnings: string[]
  findings: ConfigFinding[]
}

/** Offline validation: what flanneld would say, and what it would not. */
export function validateNetwork(text: string): ValidateResult {
  const parsed = parseNetworkConfig(text)
  const checked = parsed.ok ? checkNetworkConfig(parsed.value) : parsed
  const eff = checked.ok ? checked.value : null
  const findings = parsed.ok ? extraConfigFindings(parsed.value, eff) : []
  // `valid` is flanneld's verdict alone; flannelctl's own findings (an inverted range, host bits) are reported in
  // `findings` with their severity and never change it.
  return {
    valid: checked.ok,
    effective: eff ? effectiveToJson(eff) : null,
    errors: checked.ok ? [] : [checked.error],
    warnings: findings.filter((f) => f.severity === 'warning').map((f) => f.message),
    findings,
  }
}

export interface InitOptions {
  network: string
  subnetLen?: number
  subnetMin?: string
  subnetMax?: string
  backend: string
  vni?: number
  port?: number
  directRouting?: boolean
  mtu?: number
  ipv6Network?: string
}

/**
 * The config JSON `network init` writes: Network and SubnetLen always explicit, then the optional fields, then
 * Backend. Key order is fixed so the bytes are predictable.
 */
export function buildInitConfig(given: InitOptions): {text: string; effective: EffectiveConfig} {
  // A prefix length is written without leading zeros (10.0.0.0/08 is stored as 10.0.0.0/8), so every tool reads it.
  const o = {...given, network: given.network.replace(/\/0+(?=\d)/, '/')}
  if (o.ipv6Network !== undefined) {
    if (!o.ipv6Network.includes(':') || parseCidr6(o.ipv6Network) === null)
      throw new UsageError(
        `--ipv6-network ${o.ipv6Network} is not an IPv6 CIDR such as fc00::/48${o.ipv6Network.includes(':') ? '' : ' (the IPv4 range goes in --network)'}`,
        'INVALID_CIDR',
      )
    o.ipv6Network = o.ipv6Network.replace(/\/0+(?=\d)/, '/')
  }
  const probe = resolveNetworkConfig(JSON.stringify({Network: o.network}))
  if (!probe.ok && o.subnetLen === undefined)
    throw new UsageError(`--network ${o.network}: ${probe.error}`, 'INVALID_CONFIG')
  const cfg: Record<string, unknown> = {Network: o.network}
  cfg.SubnetLen = o.subnetLen ?? (probe.ok ? probe.value.effective.ipv4!.subnetLen : undefined)
  if (o.subnetMin !== undefined) cfg.SubnetMin = o.subnetMin
  if (o.subnetMax !== undefined) cfg.SubnetMax = o.subnetMax
  if (o.ipv6Network !== undefined) {
    cfg.EnableIPv6 = true
    cfg.IPv6Network = o.ipv6Network
  }
  const backend: Record<string, unknown> = {Type: o.backend}
  if (o.backend !== 'vxlan' && (o.vni !== undefined || o.port !== undefined || o.directRouting)) {
    throw new UsageError(
      `--vni, --port and --direct-routing apply to the vxlan backend, not ${o.backend}`,
      'INVALID_FLAGS',
    )
  }
  if (o.vni !== undefined) backend.VNI = o.vni
  if (o.port !== undefined) backend.Port = o.port
  if (o.directRouting) backend.DirectRouting = true
  if (o.mtu !== undefined) backend.MTU = o.mtu
  cfg.Backend = backend
  const text = JSON.stringify(cfg)
  const resolved = resolveNetworkConfig(text)
  if (!resolved.ok)
    throw new UsageError(`invalid network config: ${resolved.error}`, 'INVALID_CONFIG', undefined, {config: cfg})
  const extra = extraConfigFindings(resolved.value.config, resolved.value.effective).filter(
    (f) => f.severity === 'error' || f.id === 'config-noncanonical',
  )
  if (extra.length > 0)
    throw new UsageError(`invalid network config: ${extra[0]!.message}`, 'INVALID_CONFIG', undefined, {config: cfg})
  return {text, effective: resolved.value.effective}
}

export interface InitResult {
  applied: boolean
  dryRun: boolean
  key: string
  config: unknown
  raw: string
  revision: string | null
  effective: EffectiveJson
  /** The etcd keyspace written (or that would be). */
  keyspace: 'v2' | 'v3'
}

/** Creates the config key only if it is absent (exit 3 and the existing config otherwise). */
export async function initNetwork(
  store: FlannelStore,
  o: InitOptions,
  hooks: {dryRun: boolean; confirm: Confirm},
): Promise<InitResult> {
  const key = store.layout.config
  const {text, effective} = buildInitConfig(o)
  const base = {key, config: JSON.parse(text) as unknown, raw: text, effective: effectiveToJson(effective)}
  const existing = await store.getKey(key)
  if (existing) throw configExists(key, existing, store.api)
  if (hooks.dryRun) return {applied: false, dryRun: true, revision: null, ...base, keyspace: store.api}
  if (!(await hooks.confirm(`Create the network config ${key}?`)))
    return {applied: false, dryRun: false, revision: null, ...base, keyspace: store.api}
  try {
    const {revision} = await store.createIfAbsent(key, text)
    return {applied: true, dryRun: false, revision, ...base, keyspace: store.api}
  } catch (error) {
    if (error instanceof ConflictError && error.code === 'ALREADY_EXISTS')
      throw configExists(key, (error.details as {now: RawKV | null}).now, store.api)
    throw error
  }
}
