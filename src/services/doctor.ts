/** doctor: cluster checks from one revision (or a snapshot), plus node checks with --local. */

import {readFile} from 'node:fs/promises'

import {
  type Area,
  AREAS,
  areaVerdicts,
  CHECK_IDS,
  clusterChecks,
  type Finding,
  selectFindings,
  SEVERITY_RANK,
  type Severity,
  summarize,
} from '../core/doctor.js'
import {flanneldReadsV3, keyspaceChecks, v2Findings} from '../core/doctor-v2.js'
import type {NetworkSnapshot} from '../core/leases.js'
import {UsageError} from '../core/errors.js'
import {formatIPv4} from '../core/ipv4.js'
import {type HintContext, NO_HINT_CONTEXT} from '../core/hints.js'
import {parseGoIPv4} from '../core/lease-value.js'
import {inferNodeRelease, nodeChecks, type NodeObservation} from '../core/node-checks.js'
import {formatRelease, parseRelease} from '../core/release.js'
import {deviceName} from '../core/vxlan.js'
import type {NetworkReader} from '../store/port.js'

export interface LocalOptions {
  subnetFile: string
  publicIP?: string
  iface?: string
}

export interface DoctorOptions {
  failOn: Severity
  only: string[]
  skip: string[]
  renewMarginSeconds: number
  local?: LocalOptions
  /** The flanneld version the nodes run, when known (keyspace checks); unknown means >= 0.18. */
  flanneldVersion?: string
  /** The connection flags to repeat in suggested commands. */
  hints?: HintContext
  /** What the run is doing now, for a progress line (render/progress.ts). */
  onProgress?: (what: string) => void
}

export interface DoctorResult {
  revision: string
  source: string
  findings: Finding[]
  summary: Record<Severity, number>
  checked: {leases: number; malformed: number; ttls: boolean; node: string | null; keyspaces: Array<'v2' | 'v3'>}
  areas: Array<{area: Area; verdict: string}>
  failOn: Severity
  failed: boolean
}

async function observeNode(o: LocalOptions, vni: number | null): Promise<NodeObservation> {
  // The dataplane layer is loaded only for --local.
  const dp = await import('../dataplane/iproute2.js')
  let publicIP: number | null = null
  if (o.publicIP !== undefined) {
    publicIP = parseGoIPv4(o.publicIP)
    if (publicIP === null)
      throw new UsageError(`invalid --public-ip "${o.publicIP}": not an IPv4 address`, 'INVALID_IP')
  }
  const ext = await dp.findExternalInterface({iface: o.iface, publicIP})
  let text: string | null = null
  try {
    text = await readFile(o.subnetFile, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT')
      throw new UsageError(`cannot read ${o.subnetFile}: ${(error as NodeJS.ErrnoException).code}`, 'UNREADABLE_FILE')
  }
  const dev = vni === null ? null : deviceName(vni)
  const ipt = await import('../dataplane/iptables.js')
  const [device, routes, neighs, fdb, ipForward, iptablesNat, iptablesFilter, nftFlannel] = await Promise.all([
    dev ? dp.readLink(dev) : Promise.resolve(null),
    dp.readRoutes(),
    dev ? dp.readNeighs(dev).catch(() => []) : Promise.resolve([]),
    dev ? dp.readFdb(dev).catch(() => []) : Promise.resolve([]),
    dp.readIpForward(),
    ipt.savedRules('nat').catch(() => null),
    ipt.savedRules('filter').catch(() => null),
    ipt.nftFlannelTable(),
  ])
  return {
    subnetFile: o.subnetFile,
    subnetEnvText: text,
    publicIP: publicIP ?? ext.address,
    publicIPSource: ext.how,
    ifaceMtu: ext.mtu,
    ifaceName: ext.name,
    device,
    routes,
    neighs,
    fdb,
    ipForward,
    iptablesNat,
    iptablesFilter,
    nftFlannel,
    ifaceAddress: ext.ifaceAddress,
    hostAddresses: ext.hostAddresses,
  }
}

/** Usage errors in the options, found before anything is read: exit 2 whether or not etcd is reachable. */
export function checkDoctorOptions(o: Pick<DoctorOptions, 'flanneldVersion' | 'only' | 'skip'>): void {
  for (const [flag, ids] of [
    ['--only', o.only],
    ['--skip', o.skip],
  ] as const) {
    const unknown = ids.filter((id) => !CHECK_IDS.includes(id))
    if (unknown.length > 0) {
      throw new UsageError(
        `unknown check ID${unknown.length > 1 ? 's' : ''} in ${flag}: ${unknown.join(', ')} (valid: ${CHECK_IDS.join(', ')})`,
        'UNKNOWN_CHECK',
      )
    }
  }
  if (o.flanneldVersion !== undefined && flanneldReadsV3(o.flanneldVersion) === null) {
    throw new UsageError(
      `invalid --flanneld-version "${o.flanneldVersion}": expected a version such as 0.11.0 or v0.26.1`,
      'INVALID_VERSION',
    )
  }
}

/**
 * Both keyspaces of a live etcd, when the reader can reach the other one (v2 for a v3 reader in auto mode, v3 for a
 * v2 reader); v2 is null when etcd does not serve it. Snapshots and --etcd-api v3 read one keyspace only.
 */
async function readKeyspaces(
  reader: NetworkReader,
  snapshot: NetworkSnapshot,
): Promise<{
  v3: NetworkSnapshot | null
  v2: NetworkSnapshot | null
  v2Reader: NetworkReader | null
  read: Array<'v2' | 'v3'>
}> {
  const own = reader.api
  if (own === undefined) return {v3: null, v2: null, v2Reader: null, read: []}
  const other = reader.otherKeyspace ? await reader.otherKeyspace() : null
  const otherSnap = other ? await other.readNetwork().catch(() => null) : null
  const read: Array<'v2' | 'v3'> = otherSnap ? [own, own === 'v3' ? 'v2' : 'v3'] : [own]
  if (own === 'v3') return {v3: snapshot, v2: otherSnap, v2Reader: otherSnap ? other : null, read}
  return {v3: otherSnap, v2: snapshot, v2Reader: reader, read}
}

/** What keyspaceChecks needs to know of the v2 reader: remaining TTLs, printed-command flags, read coverage. */
async function v2Context(r: NetworkReader | null, v2: NetworkSnapshot | null) {
  if (!r || !v2) return {}
  const ttls = await r.leaseTtls(v2.subnets.map((kv) => kv.lease)).catch(() => null)
  return {v2Ttls: ttls, etcdctlV2Flags: r.v2EtcdctlFlags?.() ?? '', v2SawWholePrefix: r.v2SawWholePrefix?.() ?? true}
}

/** How doctor --local looks at this node; tests pass a fixed observation. */
export type ObserveNode = (o: LocalOptions, vni: number | null) => Promise<NodeObservation>

export async function runDoctor(
  reader: NetworkReader,
  o: DoctorOptions,
  observe: ObserveNode = observeNode,
): Promise<DoctorResult> {
  const progress = o.onProgress ?? (() => {})
  progress('reading the config and leases')
  const snapshot = await reader.readNetwork()
  const subnetLeaseIds = snapshot.subnets.map((kv) => kv.lease)
  progress(`reading TTLs of ${snapshot.subnets.length} lease(s)`)
  const ttls = await reader.leaseTtls(subnetLeaseIds, (done, total) => progress(`reading TTLs: ${done}/${total}`))
  progress(`checking ${snapshot.subnets.length} lease(s)`)
  const checked = clusterChecks({
    layout: reader.layout,
    snapshot,
    ttls,
    renewMarginSeconds: o.renewMarginSeconds,
    api: reader.api,
    hints: o.hints,
  })
  const context = checked.context
  // Findings about etcd's v2 keyspace get hints that act on it (v2 commands), never v3 ones that do nothing there.
  const cluster =
    reader.api === 'v2'
      ? v2Findings(checked.findings, {hints: o.hints ?? NO_HINT_CONTEXT, flanneldVersion: o.flanneldVersion})
      : checked.findings
  progress("reading etcd's other keyspace")
  const keyspaces = await readKeyspaces(reader, snapshot)
  let node: string | null = null
  let nodeFindings: Finding[] = []
  // Without --flanneld-version, the node's rule set may tell its release (an old one changes the keyspace verdict).
  let version = o.flanneldVersion
  if (o.local) {
    progress("reading this node's routes, neighbours, FDB and rules")
    const obs = await observe(o.local, context.effective?.vxlan?.vni ?? null)
    node = `${obs.publicIP === null ? 'unknown' : formatIPv4(obs.publicIP)} (${obs.publicIPSource})`
    const release = o.flanneldVersion === undefined ? null : parseRelease(o.flanneldVersion)
    nodeFindings = nodeChecks(obs, context, release, o.hints)
    const inferred = release ? null : inferNodeRelease(obs, context)
    if (inferred?.kind === 'range' && inferred.range.to) version = formatRelease(inferred.range.to)
  }
  const all = [
    ...cluster,
    ...(keyspaces.v3
      ? keyspaceChecks({
          layout: reader.layout,
          v3: keyspaces.v3,
          v2: keyspaces.v2,
          flanneldVersion: version,
          ...(await v2Context(keyspaces.v2Reader, keyspaces.v2)),
        })
      : []),
    ...nodeFindings,
  ]
  const findings = selectFindings(all, o.only, o.skip)
  const summary = summarize(findings)
  const areas = areaVerdicts(findings, o.local ? AREAS : AREAS.filter((a) => a !== 'Node'))
  return {
    revision: snapshot.revision,
    source: reader.source,
    findings,
    summary,
    checked: {
      leases: context.leases.length,
      malformed: context.malformed.length,
      ttls: ttls !== null,
      node,
      keyspaces: keyspaces.read,
    },
    areas,
    failOn: o.failOn,
    failed: findings.some((f) => SEVERITY_RANK[f.severity] >= SEVERITY_RANK[o.failOn]),
  }
}
