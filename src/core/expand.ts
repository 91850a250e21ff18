/**
 * Planning a safe widening of the flannel Network (`network expand`): the new config keeps every other stored field,
 * pins SubnetLen, and is refused when any lease, node address or service range would break.
 */

import {resolveNetworkConfig, type EffectiveConfig, type NetworkConfig} from './config.js'
import {UsageError} from './errors.js'
import {goCompact, goKeyMatches, goQuote, type GoValue, parseGoJson} from './gojson.js'
import {
  type Cidr4,
  containsCidr4,
  contains4,
  formatCidr4,
  formatIPv4,
  overlaps4,
  parseCidr4,
  type ParsedCidr4,
} from './ipv4.js'
import {parseCidr6} from './ipv6.js'
import {type Capacity, capacity, incompatibilityReason, isLeaseCompatible, type Lease} from './leases.js'

export interface ExpandRequest {
  readonly configText: string
  readonly to: string
  readonly serviceCidrs: readonly string[]
  readonly subnetMin?: string
  readonly subnetMax?: string
  readonly leases: readonly Lease[]
}

export interface LeaseRef {
  readonly subnet: string
  readonly publicIP: string
  readonly key: string
  readonly reason?: string
}

export interface ExpandPlan {
  readonly previousText: string
  readonly nextText: string
  readonly previous: {config: unknown; effective: EffectiveConfig}
  readonly next: {config: unknown; effective: EffectiveConfig}
  readonly checkedLeases: number
  readonly incompatible: LeaseRef[]
  /** Leases that were already incompatible before the change (flanneld re-leases them on restart either way). */
  readonly alreadyIncompatible: LeaseRef[]
  readonly capacity: {before: Capacity; after: Capacity}
  readonly rangeKeptExplicit: boolean
  readonly followUps: string[]
  /** Nodes to restart one at a time so their subnet.env and masquerade rules pick up the new Network. */
  readonly restartOrder: LeaseRef[]
}

/** Thrown when the plan is refused: exit 2, nothing written. */
export class ExpandRefused extends UsageError {
  constructor(
    message: string,
    public readonly reasons: string[],
    details?: unknown,
  ) {
    super(message, 'EXPAND_REFUSED', undefined, details)
  }
}

const REPLACED = ['Network', 'SubnetLen']

/**
 * Rewrites the stored JSON with Network and SubnetLen replaced (and SubnetMin/SubnetMax when given), keeping every
 * other member, unknown ones included, in its place. Go matches keys with its case folding (ſubnetLen sets
 * SubnetLen), so every spelling of a replaced key is dropped.
 */
export function rewriteConfig(
  text: string,
  set: {network: string; subnetLen: number; subnetMin?: string; subnetMax?: string},
): string {
  const doc = parseGoJson(text)
  const members: Array<[string, GoValue | string]> = doc.kind === 'object' ? [...doc.members] : []
  const drop = [...REPLACED]
  if (set.subnetMin !== undefined) drop.push('SubnetMin')
  if (set.subnetMax !== undefined) drop.push('SubnetMax')
  const dropped = (k: string): boolean => drop.some((f) => goKeyMatches(k, f))
  const firstNetwork = members.findIndex(([k]) => goKeyMatches(k, 'Network'))
  const kept = members.filter(([k]) => !dropped(k))
  const insertAt = firstNetwork < 0 ? 0 : members.slice(0, firstNetwork).filter(([k]) => !dropped(k)).length
  const added: Array<[string, string]> = [
    ['Network', goQuote(set.network)],
    ['SubnetLen', String(set.subnetLen)],
  ]
  if (set.subnetMin !== undefined) added.push(['SubnetMin', goQuote(set.subnetMin)])
  if (set.subnetMax !== undefined) added.push(['SubnetMax', goQuote(set.subnetMax)])
  const all = [...kept.slice(0, insertAt), ...added, ...kept.slice(insertAt)]
  return '{' + all.map(([k, v]) => `${goQuote(k)}:${typeof v === 'string' ? v : goCompact(v.raw)}`).join(',') + '}'
}

function ref(l: Lease, reason?: string): LeaseRef {
  return {
    subnet: formatCidr4(l.subnet),
    publicIP: formatIPv4(l.attrs.publicIP),
    key: l.key,
    ...(reason ? {reason} : {}),
  }
}

function plainJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return null
  }
}

function hasExplicit(cfg: NetworkConfig, which: 'subnetMin' | 'subnetMax'): boolean {
  return cfg[which] !== 0
}

/** The --to value as an IPv4 CIDR; an IPv6 one is refused (the family cannot change), anything else is a usage error. */
export function parseExpandTarget(to: string, current = 'the IPv4 Network'): ParsedCidr4 {
  const target = parseCidr4(to)
  if (target) return target
  if (parseCidr6(to))
    throw new ExpandRefused(`--to ${to} is IPv6 but the Network is IPv4 (${current}): the family cannot change`, [
      'family differs',
    ])
  throw new UsageError(`invalid --to "${to}": not an IPv4 CIDR such as 10.0.0.0/8`, 'INVALID_CIDR')
}

/** Checks the flags of an expand before anything is read. */
export function checkExpandRequest(r: Pick<ExpandRequest, 'to' | 'serviceCidrs'>): void {
  parseExpandTarget(r.to)
  for (const s of r.serviceCidrs)
    if (!parseCidr4(s)) throw new UsageError(`invalid --service-cidr "${s}": not an IPv4 CIDR`, 'INVALID_CIDR')
}

export function planExpand(r: ExpandRequest): ExpandPlan {
  const before = resolveNetworkConfig(r.configText)
  if (!before.ok)
    throw new ExpandRefused(`the stored config is invalid (${before.error}); fix it before expanding`, [before.error])
  const old = before.value.effective.ipv4
  if (!old)
    throw new ExpandRefused('the stored config has EnableIPv4 off; expand widens the IPv4 Network', ['no IPv4 network'])

  const target = parseExpandTarget(r.to, formatCidr4(old.network))
  const reasons: string[] = []
  if (target.hostBitsSet) reasons.push(`--to ${r.to} has host bits set; write ${formatCidr4(target)}`)
  if (!(target.prefix < old.network.prefix && containsCidr4(target, old.network))) {
    reasons.push(`${formatCidr4(target)} does not strictly contain the current Network ${formatCidr4(old.network)}`)
  }
  const services: Cidr4[] = []
  for (const s of r.serviceCidrs) {
    const c = parseCidr4(s)
    if (!c) throw new UsageError(`invalid --service-cidr "${s}": not an IPv4 CIDR`, 'INVALID_CIDR')
    services.push(c)
    if (overlaps4(c, target)) reasons.push(`${formatCidr4(target)} overlaps the service range ${formatCidr4(c)}`)
  }
  const insideNodes = r.leases.filter((l) => contains4(target, l.attrs.publicIP))
  if (insideNodes.length > 0) {
    const list = insideNodes
      .slice(0, 10)
      .map((l) => `${formatIPv4(l.attrs.publicIP)} (${formatCidr4(l.subnet)})`)
      .join(', ')
    reasons.push(
      `${insideNodes.length} node address(es) lie inside ${formatCidr4(target)}, which would route them into the overlay: ${list}${insideNodes.length > 10 ? ', ...' : ''}`,
    )
  }
  if (reasons.length > 0 && (target.hostBitsSet || !containsCidr4(target, old.network))) {
    throw new ExpandRefused(`refusing to expand: ${reasons.join('; ')}`, reasons)
  }

  const nextText = rewriteConfig(r.configText, {
    network: formatCidr4(target),
    subnetLen: old.subnetLen,
    subnetMin: r.subnetMin,
    subnetMax: r.subnetMax,
  })
  const after = resolveNetworkConfig(nextText)
  if (!after.ok) throw new ExpandRefused(`the new config would be invalid: ${after.error}`, [after.error])
  const next = after.value.effective.ipv4!
  if (next.subnetLen !== old.subnetLen)
    reasons.push(`SubnetLen would change from ${old.subnetLen} to ${next.subnetLen}`)
  if (r.subnetMin !== undefined && next.subnetMin > old.subnetMin)
    reasons.push(`--subnet-min ${r.subnetMin} is above the current SubnetMin ${formatIPv4(old.subnetMin)}`)
  if (r.subnetMax !== undefined && next.subnetMax < old.subnetMax)
    reasons.push(`--subnet-max ${r.subnetMax} is below the current SubnetMax ${formatIPv4(old.subnetMax)}`)
  if (next.subnetMin > next.subnetMax)
    reasons.push(`SubnetMin ${formatIPv4(next.subnetMin)} would be above SubnetMax ${formatIPv4(next.subnetMax)}`)

  const incompatible: LeaseRef[] = []
  const alreadyIncompatible: LeaseRef[] = []
  for (const l of r.leases) {
    const wasOk = isLeaseCompatible(before.value.config, before.value.effective, l)
    const why = incompatibilityReason(after.value.config, after.value.effective, l)
    if (why === null) continue
    if (wasOk) incompatible.push(ref(l, why))
    else alreadyIncompatible.push(ref(l, why))
  }
  if (incompatible.length > 0) {
    const list = incompatible
      .slice(0, 10)
      .map((x) => `${x.subnet} (${x.publicIP}): ${x.reason}`)
      .join('; ')
    reasons.push(
      `${incompatible.length} lease(s) would become incompatible and be re-leased on their node's next restart: ${list}${incompatible.length > 10 ? '; ...' : ''}`,
    )
  }
  if (reasons.length > 0) throw new ExpandRefused(`refusing to expand: ${reasons.join('; ')}`, reasons, {incompatible})

  const subnets = r.leases.map((l) => l.subnet)
  const rangeKeptExplicit =
    (hasExplicit(before.value.config, 'subnetMin') && r.subnetMin === undefined) ||
    (hasExplicit(before.value.config, 'subnetMax') && r.subnetMax === undefined)
  const restartOrder = r.leases.filter((l) => !l.reserved).map((l) => ref(l))
  const oldNet = formatCidr4(old.network)
  const newNet = formatCidr4(target)
  const followUps = [
    `Every node keeps FLANNEL_NETWORK=${oldNet} in its subnet.env until its flanneld restarts; its own subnet does not change.`,
    `Until then its ip-masq rules (FLANNEL-POSTRTG) treat ${newNet} outside ${oldNet} as the outside world and masquerade pod traffic to it.`,
    `Widen kube-controller-manager --cluster-cidr and kube-proxy clusterCIDR to ${newNet} (and any firewall rules that name ${oldNet}).`,
    `Restart flanneld on each node, one at a time, checking pod traffic in between (${restartOrder.length} node(s), listed in the plan).`,
  ]
  if (rangeKeptExplicit) {
    followUps.unshift(
      `SubnetMin/SubnetMax are explicit and kept, so capacity does not grow; pass --subnet-min/--subnet-max to widen them.`,
    )
  }
  return {
    previousText: r.configText,
    nextText,
    previous: {config: plainJson(r.configText), effective: before.value.effective},
    next: {config: plainJson(nextText), effective: after.value.effective},
    checkedLeases: r.leases.length,
    incompatible,
    alreadyIncompatible,
    capacity: {before: capacity(old, subnets), after: capacity(next, subnets)},
    rangeKeptExplicit,
    followUps,
    restartOrder,
  }
}

/** The smallest supernet of `network` that keeps SubnetLen and reaches `wantedSubnets` subnets of that length. */
export function smallestExpansion(
  network: Cidr4,
  subnetLen: number,
  wantedSubnets: number,
  isAllowed: (c: Cidr4) => boolean,
): Cidr4 | null {
  for (let p = network.prefix - 1; p >= 1; p--) {
    const c = {ip: (network.ip & (p === 0 ? 0 : (0xffffffff << (32 - p)) >>> 0)) >>> 0, prefix: p}
    const slots = 2 ** (subnetLen - p) - 1 // the first subnet is skipped by the default SubnetMin
    if (slots >= wantedSubnets && isAllowed(c)) return c
  }
  return null
}
