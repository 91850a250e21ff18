/**
 * doctor's cluster checks: every known way a flannel etcd keyspace goes wrong, found from one snapshot in
 * O(n log n). Pure: TTLs and the renew margin are passed in.
 */

import {
  type ConfigFinding,
  extraConfigFindings,
  parseNetworkConfig,
  checkNetworkConfig,
  type EffectiveConfig,
  type NetworkConfig,
  totalSubnets4,
} from './config.js'
import {ExpandRefused, planExpand} from './expand.js'
import {
  type Cidr4,
  contains4,
  formatCidr4,
  formatIPv4,
  isCanonical4,
  isLinkLocal4,
  isLoopback4,
  isMulticast4,
  lastAddress4,
  mask4,
} from './ipv4.js'
import {formatCidr6, mask6} from './ipv6.js'
import type {KeyLayout} from './keys.js'
import {
  capacity,
  decodeLeases,
  incompatibilityReason,
  type Lease,
  type MalformedKey,
  type NetworkSnapshot,
} from './leases.js'
import {goKeyMatches, parseGoJson} from './gojson.js'
import {andThen, etcdctl, flannelctl, type HintContext, NO_HINT_CONTEXT, type Suggestion} from './hints.js'
import {decodeVxlanData} from './lease-value.js'
import {type Keyspace, ownerUndoesReservation} from './reservation.js'
import {NODE_CHECK_IDS} from './node-checks.js'

export type Severity = ConfigFinding['severity']

export interface Finding {
  readonly id: string
  readonly severity: Severity
  readonly subjects: string[]
  readonly message: string
  /** Advice for humans; every command in it is one of `commands`, shell-quoted. */
  readonly hint: string
  /** The suggested commands of the hint, each as argv and as its POSIX shell text. */
  readonly commands?: Suggestion[]
}

/** The areas of the human report, each with a one-word verdict. */
export const AREAS = ['Datastore', 'Config', 'Capacity', 'Leases', 'Identity', 'Node'] as const
export type Area = (typeof AREAS)[number]

/** Which area each check belongs to. */
export const CHECK_AREA: Record<string, Area> = {
  'config-missing': 'Config',
  'config-invalid': 'Config',
  'config-range-inverted': 'Config',
  'config-noncanonical': 'Config',
  'config-ipv6-only': 'Config',
  'backend-udp': 'Config',
  capacity: 'Capacity',
  'duplicate-public-ip': 'Identity',
  'suspicious-public-ip': 'Identity',
  'public-ip-in-network': 'Identity',
  'duplicate-vtep-mac': 'Identity',
  'overlapping-leases': 'Leases',
  'misaligned-lease': 'Leases',
  'incompatible-lease': 'Leases',
  'malformed-lease': 'Leases',
  'backend-mismatch': 'Leases',
  'backend-data-invalid': 'Leases',
  'backend-data-no-mac': 'Leases',
  'vni-mismatch': 'Leases',
  'missed-renewal': 'Leases',
  reservation: 'Leases',
  'foreign-keys': 'Datastore',
  'config-only-in-v2': 'Datastore',
  'config-in-both': 'Datastore',
  'v2-store-going-away': 'Datastore',
}

export interface ClusterCheckInput {
  readonly layout: KeyLayout
  readonly snapshot: NetworkSnapshot
  /** Remaining TTL per lease ID; null for snapshots (TTL checks are skipped). */
  readonly ttls: ReadonlyMap<string, number> | null
  readonly renewMarginSeconds: number
  /** The etcd keyspace read (what flanneld does with a reservation depends on it); unknown means v3. */
  readonly api?: Keyspace
  /** The connection flags to repeat in suggested commands. */
  readonly hints?: HintContext
}

export interface ClusterContext {
  readonly config: NetworkConfig | null
  readonly effective: EffectiveConfig | null
  /** flannel's message when flanneld rejects the stored config (parse or check), else null. */
  readonly configError: string | null
  readonly leases: Lease[]
  readonly malformed: MalformedKey[]
}

const VIRTUALBOX_NAT = (10 << 24) + (2 << 8) + 15 // 10.0.2.15

/** A key flannelctl leases reserve --public-ip wrote for a node that has not joined: no lease and no BackendData. */
function isPreReservation(l: Lease): boolean {
  return l.reserved && l.attrs.backendData === null
}

function subnetOf(l: Lease): string {
  return formatCidr4(l.subnet)
}

function node(l: Lease): string {
  return `${subnetOf(l)} (${formatIPv4(l.attrs.publicIP)})`
}

/** Whether vxlan BackendData names a VNI (matched as Go matches field names); flanneld <= 0.13 wrote none. */
function hasVniField(raw: string | null): boolean {
  if (raw === null) return false
  try {
    const doc = parseGoJson(raw)
    return doc.kind === 'object' && doc.members.some(([k]) => goKeyMatches(k, 'VNI'))
  } catch {
    return true
  }
}

function groupBy<T, K>(items: readonly T[], key: (t: T) => K | null): Map<K, T[]> {
  const m = new Map<K, T[]>()
  for (const it of items) {
    const k = key(it)
    if (k === null) continue
    const g = m.get(k)
    if (g) g.push(it)
    else m.set(k, [it])
  }
  return m
}

/** Why a PublicIP cannot be a node's address, or null. */
export function suspiciousAddress(ip: number): string | null {
  if (ip === VIRTUALBOX_NAT) return "VirtualBox's NAT address, which every Vagrant VM has"
  if (ip === 0) return 'the unspecified address'
  if (isLoopback4(ip)) return 'a loopback address'
  if (isLinkLocal4(ip)) return 'a link-local address'
  if (isMulticast4(ip)) return 'a multicast address'
  if (ip === 0xffffffff) return 'the broadcast address'
  return null
}

/** Groups of leases whose subnets overlap (sweep over sorted starts: O(n log n)). */
export function overlappingGroups(leases: readonly Lease[]): Lease[][] {
  const items = leases
    .map((l) => {
      const start = (l.subnet.ip & mask4(l.subnet.prefix)) >>> 0
      return {l, start, end: lastAddress4(l.subnet)}
    })
    .sort((a, b) => a.start - b.start || b.end - a.end)
  const groups: Lease[][] = []
  let cur: Lease[] = []
  let curEnd = -1
  for (const it of items) {
    if (it.start <= curEnd) {
      cur.push(it.l)
      curEnd = Math.max(curEnd, it.end)
    } else {
      if (cur.length > 1) groups.push(cur)
      cur = [it.l]
      curEnd = it.end
    }
  }
  if (cur.length > 1) groups.push(cur)
  return groups
}

export function clusterContext(snapshot: NetworkSnapshot): ClusterContext {
  const {leases, malformed} = decodeLeases(snapshot.subnets)
  if (!snapshot.config) return {config: null, effective: null, configError: null, leases, malformed}
  const parsed = parseNetworkConfig(snapshot.config.value)
  if (!parsed.ok) return {config: null, effective: null, configError: parsed.error, leases, malformed}
  const checked = checkNetworkConfig(parsed.value)
  return {
    config: parsed.value,
    effective: checked.ok ? checked.value : null,
    configError: checked.ok ? null : checked.error,
    leases,
    malformed,
  }
}

function configChecks(input: ClusterCheckInput, ctx: ClusterContext): Finding[] {
  const out: Finding[] = []
  const key = input.layout.config
  const h = input.hints ?? NO_HINT_CONTEXT
  if (!input.snapshot.config) {
    const init = flannelctl(h, ['network', 'init', '--network', '10.5.0.0/16', '--dry-run'])
    out.push({
      id: 'config-missing',
      severity: 'error',
      subjects: [key],
      message: `no network config at ${key}: flanneld logs "flannel config not found in etcd store" and retries forever`,
      hint: `create it (your Network in place of 10.5.0.0/16): ${init.shell}, then without --dry-run (a config written with ETCDCTL_API=2 is invisible to flanneld >= 0.18)`,
      commands: [init],
    })
    return out
  }
  if (ctx.configError !== null) {
    out.push({
      id: 'config-invalid',
      severity: 'error',
      subjects: [key],
      message: `flanneld rejects the config: ${ctx.configError}`,
      hint: 'check a fix offline with: flannelctl network validate FILE',
    })
  }
  if (ctx.config) {
    for (const f of extraConfigFindings(ctx.config, ctx.effective)) {
      const hint =
        f.id === 'backend-udp'
          ? 'set "Backend": {"Type": "vxlan"} (every node must restart; do it with all nodes at once)'
          : f.id === 'config-range-inverted'
            ? 'swap or fix SubnetMin/SubnetMax in the config'
            : f.id === 'config-noncanonical'
              ? 'write the network address in the config so every tool agrees on it'
              : 'see flannelctl network show'
      out.push({id: f.id, severity: f.severity, subjects: [key], message: f.message, hint})
    }
  }
  return out
}

/** `flannelctl leases release` for each subnet (all but the first when `keepFirst`). */
function releaseEach(h: HintContext, leases: readonly Lease[], keepFirst: boolean): Suggestion[] {
  return leases.slice(keepFirst ? 1 : 0).map((l) => flannelctl(h, ['leases', 'release', subnetOf(l), '--dry-run']))
}

function identityChecks(input: ClusterCheckInput, ctx: ClusterContext): Finding[] {
  const out: Finding[] = []
  const h = input.hints ?? NO_HINT_CONTEXT
  for (const [ip, group] of groupBy(ctx.leases, (l) => l.attrs.publicIP)) {
    if (group.length < 2) continue
    const release = releaseEach(h, group, true)
    out.push({
      id: 'duplicate-public-ip',
      severity: 'error',
      subjects: group.map(subnetOf),
      message: `${group.length} leases share PublicIP ${formatIPv4(ip)} (${group.map(subnetOf).join(', ')}): flanneld on each of those nodes reuses the first one, so two nodes run one subnet and traffic to them is black-holed`,
      hint: `start each node's flanneld with --iface=<its own NIC> or --public-ip=<its own address>, then release the leases those nodes left behind (check first, then without --dry-run): ${andThen(...release)}`,
      commands: release,
    })
  }
  for (const l of ctx.leases) {
    const why = suspiciousAddress(l.attrs.publicIP)
    if (why === null) continue
    out.push({
      id: 'suspicious-public-ip',
      severity: 'error',
      subjects: [subnetOf(l)],
      message: `${node(l)}: PublicIP ${formatIPv4(l.attrs.publicIP)} is ${why}; other nodes cannot reach it`,
      hint: 'flanneld picked the default-route interface; give it the right one with --iface=eth1 (Vagrant: the host-only NIC) or --public-ip',
    })
  }
  const net = ctx.effective?.ipv4?.network
  if (net) {
    for (const l of ctx.leases) {
      if (!contains4(net, l.attrs.publicIP)) continue
      out.push({
        id: 'public-ip-in-network',
        severity: 'error',
        subjects: [subnetOf(l)],
        message: `${node(l)}: the node address lies inside the flannel Network ${formatCidr4(net)}, so traffic to it is routed into the overlay`,
        hint: 'choose a flannel Network that does not contain any node address (flannelctl network expand refuses such targets)',
      })
    }
  }
  const vx = ctx.leases.filter((l) => l.vxlan !== null)
  for (const [mac, group] of groupBy(vx, (l) => l.vxlan!.vtepMAC || null)) {
    if (group.length < 2) continue
    out.push({
      id: 'duplicate-vtep-mac',
      severity: 'error',
      subjects: group.map(subnetOf),
      message: `${group.length} vxlan leases share VtepMAC ${mac} (${group.map(node).join(', ')}): FDB entries for them collide on every node`,
      hint: 'delete flannel.<VNI> on the cloned nodes and restart flanneld so each generates its own MAC',
    })
  }
  return out
}

function leaseChecks(input: ClusterCheckInput, ctx: ClusterContext): Finding[] {
  const out: Finding[] = []
  const h = input.hints ?? NO_HINT_CONTEXT
  for (const g of overlappingGroups(ctx.leases)) {
    const release = releaseEach(h, g, true)
    out.push({
      id: 'overlapping-leases',
      severity: 'error',
      subjects: g.map(subnetOf),
      message: `subnets overlap: ${g.map(node).join(', ')}; pods on those nodes get clashing addresses`,
      hint: `release all but one of them (check first, then without --dry-run): ${andThen(...release)}`,
      commands: release,
    })
  }
  for (const l of ctx.leases) {
    if (isCanonical4(l.subnet) && (!l.ipv6Subnet || (l.ipv6Subnet.ip & mask6(l.ipv6Subnet.prefix)) === l.ipv6Subnet.ip))
      continue
    const del = etcdctl(h, ['del'], [l.key])
    out.push({
      id: 'misaligned-lease',
      severity: 'error',
      subjects: [l.key],
      message: `${l.key}: the subnet has host bits set (${formatCidr4(l.subnet)}${l.ipv6Subnet ? `, ${formatCidr6(l.ipv6Subnet)}` : ''}), which flanneld never writes`,
      hint: del ? `delete the key: ${del.shell}` : 'delete the key with an etcd client (its name holds a NUL byte)',
      ...(del ? {commands: [del]} : {}),
    })
  }
  if (ctx.config && ctx.effective) {
    for (const l of ctx.leases) {
      const why = incompatibilityReason(ctx.config, ctx.effective, l)
      if (why === null) continue
      out.push({
        id: 'incompatible-lease',
        severity: 'warning',
        subjects: [subnetOf(l)],
        message: `${node(l)} ${why}: flanneld on ${formatIPv4(l.attrs.publicIP)} deletes it and takes a new subnet when it restarts`,
        hint: 'expected after a SubnetLen or range change; otherwise restore the previous config (etcdctl get --rev) before that node restarts',
      })
    }
  }
  for (const m of ctx.malformed) {
    const get = etcdctl(h, ['get'], [m.key])
    const del = etcdctl(h, ['del'], [m.key])
    out.push({
      id: 'malformed-lease',
      severity: 'error',
      subjects: [m.key],
      message: `${m.key} is ignored by flanneld (${m.error}), so its subnet can be handed out twice`,
      hint:
        get && del
          ? `inspect and delete it: ${get.shell}, then ${del.shell}`
          : 'inspect and delete it with an etcd client (the key holds a NUL byte, which no command line can pass)',
      ...(get && del ? {commands: [get, del]} : {}),
    })
  }
  const eff = ctx.effective
  if (eff) {
    const expected = eff.backendType === 'udp' ? '' : eff.backendType
    for (const l of ctx.leases) {
      if (l.attrs.backendType === expected) continue
      out.push({
        id: 'backend-mismatch',
        severity: 'error',
        subjects: [subnetOf(l)],
        message: `${node(l)} has BackendType "${l.attrs.backendType}" but the config runs "${eff.backendType}": the other nodes ignore it and program no route to it`,
        hint: 'restart flanneld on that node so it re-registers with the configured backend',
      })
    }
    if (eff.vxlan) {
      for (const l of ctx.leases) {
        if (l.attrs.backendType !== 'vxlan') continue
        // Exactly the vxlan backend's json.Unmarshal(attrs.BackendData, &vxlanLeaseAttrs) (and BackendV6Data for a
        // dual-stack lease on a dual-stack network): where it fails, flanneld logs the error and skips the lease.
        const bad: string[] = []
        if (l.vxlan === null) {
          // A pre-reservation (no lease, no BackendData: no node has joined with it) is reported as a reservation.
          if (isPreReservation(l)) continue
          const d = decodeVxlanData(l.attrs.backendData)
          const absent = l.attrs.backendData === null ? ' (the lease has no BackendData)' : ''
          if (!d.ok) bad.push(`"error decoding subnet lease JSON: ${d.error}"${absent}`)
        }
        if (eff.ipv6 && l.ipv6Subnet) {
          const d6 = decodeVxlanData(l.attrs.backendV6Data)
          const absent = l.attrs.backendV6Data === null ? ' (the lease has no BackendV6Data)' : ''
          if (!d6.ok) bad.push(`"error decoding v6 subnet lease JSON: ${d6.error}"${absent}`)
        }
        if (bad.length > 0) {
          out.push({
            id: 'backend-data-invalid',
            severity: 'error',
            subjects: [subnetOf(l)],
            message: `${node(l)}: vxlan nodes log ${bad.join(' and ')} and program nothing for it`,
            hint: 'restart flanneld on that node, or for a pre-reservation ignore this until the node joins',
          })
        } else if (l.vxlan !== null && l.vxlan.vtepMAC === '') {
          out.push({
            id: 'backend-data-no-mac',
            severity: 'warning',
            subjects: [subnetOf(l)],
            message: `${node(l)}: its BackendData decodes with no VtepMAC, so vxlan nodes fail to add its ARP/FDB entries ("AddARP failed") and reach it only by a DirectRouting route`,
            hint: 'restart flanneld on that node so it writes its VtepMAC',
          })
        } else if (
          l.vxlan !== null &&
          l.vxlan.vni !== eff.vxlan.vni &&
          !(l.vxlan.vni === 0 && !hasVniField(l.attrs.backendData))
        ) {
          // A lease with no VNI field at all was written by flanneld <= 0.13 (VtepMAC only), not by a node on VNI 0.
          out.push({
            id: 'vni-mismatch',
            severity: 'warning',
            subjects: [subnetOf(l)],
            message: `${node(l)} announces VNI ${l.vxlan.vni} but the config says ${eff.vxlan.vni}: that node's flannel.${l.vxlan.vni} does not talk to the others`,
            hint: 'restart flanneld on that node',
          })
        }
      }
    }
  }
  if (input.ttls) {
    for (const l of ctx.leases) {
      if (l.reserved) continue
      const ttl = input.ttls.get(l.leaseId)
      if (ttl === undefined || ttl >= input.renewMarginSeconds) continue
      const stale = flannelctl(h, [
        'leases',
        'release',
        '--stale',
        ...(input.renewMarginSeconds === 3600 ? [] : ['--renew-margin', `${input.renewMarginSeconds}s`]),
        '--dry-run',
      ])
      out.push({
        id: 'missed-renewal',
        severity: 'warning',
        subjects: [subnetOf(l)],
        message: `${node(l)} has ${ttl < 0 ? 'an expired lease' : `${Math.max(0, ttl)} s left`}, below the ${Math.round(input.renewMarginSeconds / 60)} min renew margin: its flanneld did not renew, probably a dead node holding a slot`,
        hint: `free the slots of dead nodes (check first, then without --dry-run): ${stale.shell}`,
        commands: [stale],
      })
    }
  }
  const undoes = ownerUndoesReservation(input.api ?? 'v3')
  for (const l of ctx.leases) {
    if (!l.reserved) continue
    const ip = formatIPv4(l.attrs.publicIP)
    if (isPreReservation(l)) {
      const withdraw = flannelctl(h, ['leases', 'release', subnetOf(l), '--force', '--dry-run'])
      out.push({
        id: 'reservation',
        severity: 'info',
        subjects: [subnetOf(l)],
        message: `${node(l)} is pre-reserved for ${ip}, which has not joined (no BackendData yet): flanneld there reuses it by PublicIP when it starts${undoes ? ' and binds it to a 24h lease' : ''}; the other nodes program nothing for it until then`,
        hint: `start flanneld on ${ip}; to withdraw it: ${withdraw.shell}`,
        commands: [withdraw],
      })
      continue
    }
    const unreserve = flannelctl(h, ['leases', 'unreserve', subnetOf(l), '--dry-run'])
    out.push({
      id: 'reservation',
      severity: undoes ? 'warning' : 'info',
      subjects: [subnetOf(l)],
      message: undoes
        ? `${node(l)} is reserved (no etcd lease), but its owner undoes that: flanneld ≥ v0.18 on ${ip} takes it back as an ordinary 24h lease when it starts (at once if it runs), so it is reserved only while that node is stopped (flannel-io/flannel#1329)`
        : `${node(l)} is reserved (no TTL): flanneld ≤ v0.17 keeps it so, running or restarted`,
      hint: undoes
        ? `keep flanneld on ${ip} stopped for as long as the subnet must stay reserved; after it starts, the subnet is a 24h lease again`
        : `nothing to do; to turn it back into a lease: ${unreserve.shell}`,
      ...(undoes ? {} : {commands: [unreserve]}),
    })
  }
  return out
}

function capacityCheck(input: ClusterCheckInput, ctx: ClusterContext, configText: string): Finding[] {
  const e = ctx.effective?.ipv4
  if (!e || totalSubnets4(e) === 0) return []
  const cap = capacity(
    e,
    ctx.leases.map((l) => l.subnet),
  )
  const severity = cap.free === 0 || cap.utilization >= 0.95 ? 'error' : cap.utilization >= 0.8 ? 'warning' : null
  if (severity === null) return []
  const h = input.hints ?? NO_HINT_CONTEXT
  const stale = flannelctl(h, ['leases', 'release', '--stale', '--dry-run'])
  const commands = [stale]
  let hint = `release dead nodes' leases: ${stale.shell}`
  // The smallest wider Network that network expand would accept.
  for (let p = e.network.prefix - 1; p >= 1; p--) {
    const to: Cidr4 = {ip: (e.network.ip & mask4(p)) >>> 0, prefix: p}
    try {
      planExpand({configText, to: formatCidr4(to), serviceCidrs: [], leases: ctx.leases})
      const expand = flannelctl(h, ['network', 'expand', '--to', formatCidr4(to), '--dry-run'])
      commands.unshift(expand)
      hint = `widen the Network: ${expand.shell} (keeps SubnetLen /${e.subnetLen}); or ${hint}`
      break
    } catch (error) {
      if (!(error instanceof ExpandRefused)) throw error
    }
  }
  return [
    {
      id: 'capacity',
      severity,
      subjects: [formatCidr4(e.network)],
      message: `${cap.used} of ${cap.total} subnets used (${(cap.utilization * 100).toFixed(1)}%), ${cap.free} free: new nodes fail with "out of subnets" once none is left`,
      hint,
      commands,
    },
  ]
}

function foreignKeys(input: ClusterCheckInput): Finding[] {
  if (input.snapshot.foreign.length === 0) return []
  const keys = input.snapshot.foreign.map((k) => k.key)
  return [
    {
      id: 'foreign-keys',
      severity: 'info',
      subjects: keys,
      message: `${keys.length} key(s) under ${input.layout.range} are neither the config nor subnet leases (e.g. ${keys[0]}): flanneld ignores them (a multi-network layout from flannel <= 0.7 looks like this)`,
      hint: 'check what wrote them; delete them if nothing uses them',
    },
  ]
}

/** Every cluster check, in a stable order (config, capacity, identity, leases, datastore). */
export function clusterChecks(input: ClusterCheckInput): {findings: Finding[]; context: ClusterContext} {
  const ctx = clusterContext(input.snapshot)
  const findings = [
    ...configChecks(input, ctx),
    ...capacityCheck(input, ctx, input.snapshot.config?.value ?? ''),
    ...identityChecks(input, ctx),
    ...leaseChecks(input, ctx),
    ...foreignKeys(input),
  ]
  return {findings, context: ctx}
}

/** Every check ID doctor knows, for --only and --skip. */
export const CHECK_IDS: readonly string[] = [...Object.keys(CHECK_AREA), ...NODE_CHECK_IDS].sort()

export const SEVERITY_RANK: Record<Severity, number> = {info: 0, warning: 1, error: 2}

/** --only / --skip filtering. */
export function selectFindings(
  findings: readonly Finding[],
  only: readonly string[],
  skip: readonly string[],
): Finding[] {
  return findings.filter((f) => (only.length === 0 || only.includes(f.id)) && !skip.includes(f.id))
}

export function summarize(findings: readonly Finding[]): Record<Severity, number> {
  const s = {error: 0, warning: 0, info: 0}
  for (const f of findings) s[f.severity]++
  return s
}

/** The verdict of each area: ok, or the worst severity found there. */
export function areaVerdicts(
  findings: readonly Finding[],
  areas: readonly Area[],
): Array<{area: Area; verdict: 'ok' | Severity}> {
  return areas.map((area) => {
    let worst: Severity | null = null
    for (const f of findings) {
      if ((CHECK_AREA[f.id] ?? 'Node') !== area) continue
      if (worst === null || SEVERITY_RANK[f.severity] > SEVERITY_RANK[worst]) worst = f.severity
    }
    return {area, verdict: worst === null || worst === 'info' ? 'ok' : worst}
  })
}
