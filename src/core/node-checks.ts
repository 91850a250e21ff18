/**
 * doctor --local: the checks run on a node, against its subnet.env and its kernel state as the dataplane layer read
 * them. Pure: the observation is passed in.
 */

import type {ClusterContext, Finding} from './doctor.js'
import {command, flannelctl, type HintContext, NO_HINT_CONTEXT, type Suggestion} from './hints.js'
import {type Cidr4, containsCidr4, formatCidr4, formatIPv4, parseCidr4, parseIPv4} from './ipv4.js'
import type {Lease} from './leases.js'
import {hostGwPeers, planHostGw} from './hostgw.js'
import {judgeNftMasq, MASQ_CHAIN, masqRuleSetFor, matchMasqSet, recogniseMasqRules, ruleLine} from './masq.js'
import {
  atLeast,
  BACKEND_MTU_SINCE,
  describeNodeRelease,
  formatRange,
  formatRelease,
  type NodeRelease,
  type Release,
  type ReleaseRange,
} from './release.js'
import {judgeVxlanLocal} from './vxlan-local.js'
import {parseSubnetEnv} from './subnet-env.js'
import {
  deviceName,
  describePeer,
  desiredPeers,
  type FdbEntry,
  type LinkState,
  type NeighEntry,
  routeMatches,
  type RouteEntry,
  routesByDst,
  cidrKey,
} from './vxlan.js'

export interface NodeObservation {
  readonly subnetFile: string
  /** null when the file does not exist. */
  readonly subnetEnvText: string | null
  /** The node's PublicIP (from --public-ip, --iface, or the default-route interface), or null if unknown. */
  readonly publicIP: number | null
  readonly publicIPSource: string
  /** MTU of the external interface, if known. */
  readonly ifaceMtu: number | null
  /** flannel.<VNI>, or null when it does not exist. */
  readonly device: LinkState | null
  /** The main routing table. */
  readonly routes: readonly RouteEntry[]
  readonly neighs: readonly NeighEntry[]
  readonly fdb: readonly FdbEntry[]
  readonly ipForward: boolean | null
  /** The external interface's name, if known (host-gw routes go through it). */
  readonly ifaceName?: string | null
  /** `iptables -t nat -S` and `iptables -t filter -S` output; null when iptables is missing or unreadable. */
  readonly iptablesNat?: string | null
  readonly iptablesFilter?: string | null
  /** `nft list table ip flannel-ipv4`: '' when the table does not exist; null or absent when nft cannot be read. */
  readonly nftFlannel?: string | null
  /** The external interface's own address (flannel's IfaceAddr), if known. */
  readonly ifaceAddress?: number | null
  /** Every IPv4 address of the host, if known (a vxlan `local` must be one of them). */
  readonly hostAddresses?: readonly number[] | null
}

/** The checks of `doctor --local`, in the Node area (doctor --only/--skip validate against them). */
export const NODE_CHECK_IDS = [
  'subnet-env-missing',
  'subnet-env-invalid',
  'subnet-env-outside-network',
  'subnet-env-stale-network',
  'subnet-env-foreign',
  'subnet-env-no-lease',
  'device-missing',
  'device-mtu',
  'device-address',
  'device-local-ip',
  'route-missing',
  'neigh-missing',
  'fdb-missing',
  'route-stale',
  'ip-forward-off',
  'hostgw-peer-unreachable',
  'masq-rules-missing',
  'masq-rules-stale',
  'masq-rule-set',
  'forward-policy-drop',
]

/**
 * A hint of prose and suggested commands: each argv in `parts` is shell-quoted (core/hints.ts), since interface
 * names, MACs and addresses come from the kernel or etcd (an interface may be named `$(reboot)`), and listed under
 * `commands` (as a built Suggestion is). An argv no command line can pass (a NUL byte) is described instead.
 */
function hinted(...parts: Array<string | readonly string[] | Suggestion>): {hint: string; commands?: Suggestion[]} {
  const commands: Suggestion[] = []
  const text = parts.map((p) => {
    if (typeof p === 'string') return p
    if (!Array.isArray(p)) {
      commands.push(p as Suggestion)
      return (p as Suggestion).shell
    }
    const c = command(p)
    if (c === null) return `${p[0]} ... (an argument holds a NUL byte)`
    commands.push(c)
    return c.shell
  })
  return commands.length > 0 ? {hint: text.join(''), commands} : {hint: text.join('')}
}

interface EnvFacts {
  network: Cidr4 | null
  subnet: Cidr4 | null
}

function envChecks(obs: NodeObservation, ctx: ClusterContext, out: Finding[], h: HintContext): EnvFacts {
  const file = obs.subnetFile
  if (obs.subnetEnvText === null) {
    out.push({
      id: 'subnet-env-missing',
      severity: 'error',
      subjects: [file],
      message: `${file} does not exist: flanneld has not finished starting here, and the CNI plugin cannot configure pods`,
      ...hinted(
        'check the flanneld logs (',
        ['journalctl', '-u', 'flanneld'],
        '); it writes the file after taking a lease and setting up the device',
      ),
    })
    return {network: null, subnet: null}
  }
  const env = parseSubnetEnv(obs.subnetEnvText)
  const problems: string[] = []
  const net = env.get('FLANNEL_NETWORK')
  const sub = env.get('FLANNEL_SUBNET')
  const network = net === undefined ? null : parseCidr4(net)
  const subnetAddr = sub === undefined ? null : parseCidr4(sub)
  if (ctx.config?.enableIPv4 !== false) {
    if (network === null)
      problems.push(net === undefined ? 'FLANNEL_NETWORK is missing' : `FLANNEL_NETWORK=${net} is not a CIDR`)
    if (subnetAddr === null)
      problems.push(sub === undefined ? 'FLANNEL_SUBNET is missing' : `FLANNEL_SUBNET=${sub} is not a CIDR`)
  }
  const mtu = env.get('FLANNEL_MTU')
  if (mtu === undefined || !/^\d+$/.test(mtu))
    problems.push(mtu === undefined ? 'FLANNEL_MTU is missing' : `FLANNEL_MTU=${mtu} is not a number`)
  const masq = env.get('FLANNEL_IPMASQ')
  if (masq !== undefined && masq !== 'true' && masq !== 'false')
    problems.push(`FLANNEL_IPMASQ=${masq} is not true or false`)
  if (problems.length > 0) {
    out.push({
      id: 'subnet-env-invalid',
      severity: 'error',
      subjects: [file],
      message: `${file} is not what flanneld writes: ${problems.join('; ')}`,
      ...(obs.publicIP === null
        ? {
            hint: 'restart flanneld to rewrite it, or render the expected file: flannelctl subnet-env --public-ip <this node>',
          }
        : hinted(
            'restart flanneld to rewrite it, or render the expected file: ',
            flannelctl(h, ['subnet-env', '--public-ip', formatIPv4(obs.publicIP)]),
          )),
    })
  }
  const subnet = subnetAddr ? {ip: subnetAddr.ip, prefix: subnetAddr.prefix} : null
  if (network && subnet && !containsCidr4(network, subnet)) {
    out.push({
      id: 'subnet-env-outside-network',
      severity: 'error',
      subjects: [file],
      message: `FLANNEL_SUBNET=${sub} is not inside FLANNEL_NETWORK=${net}`,
      hint: 'the file was edited or mixed from two clusters; restart flanneld to rewrite it',
    })
  }
  const cfgNet = ctx.effective?.ipv4?.network
  if (network && cfgNet && (network.ip !== cfgNet.ip || network.prefix !== cfgNet.prefix)) {
    out.push({
      id: 'subnet-env-stale-network',
      severity: 'warning',
      subjects: [file],
      message: `FLANNEL_NETWORK=${net} differs from the config's Network ${formatCidr4(cfgNet)} (as after network expand): pods here masquerade traffic to the new range`,
      hint: 'restart flanneld on this node; it keeps its subnet and rewrites the file',
    })
  }
  return {network, subnet}
}

function sameSubnet(a: Cidr4, b: Cidr4): boolean {
  return a.ip === b.ip && a.prefix === b.prefix
}

/** The release range the node's masquerade rule set shows, if any (what nodeChecks infers without --flanneld-version). */
export function inferNodeRelease(obs: NodeObservation, ctx: ClusterContext): NodeRelease | null {
  return masqChecks(obs, ctx, envChecks(obs, ctx, [], NO_HINT_CONTEXT), null, [])
}

/**
 * The node checks; `ctx` comes from the cluster checks of the same run. `release` is the node's flanneld release
 * (--flanneld-version); without it the release is inferred from the masquerade rule set where there is one, and
 * where nothing tells, each release-dependent check accepts what any release would do. `hints`: the connection flags
 * to repeat in suggested flannelctl commands.
 */
export function nodeChecks(
  obs: NodeObservation,
  ctx: ClusterContext,
  release: Release | null = null,
  hints: HintContext = NO_HINT_CONTEXT,
): Finding[] {
  const out: Finding[] = []
  const facts = envChecks(obs, ctx, out, hints)
  const me = obs.publicIP
  // The rule set is read first (it tells the release), its findings reported in their usual place.
  const masqOut: Finding[] = []
  const inferred = masqChecks(obs, ctx, facts, release, masqOut)
  const node: NodeRelease | null = release ? {kind: 'exact', release} : inferred

  let own: Lease | undefined
  if (facts.subnet) {
    const holder = ctx.leases.find((l) => sameSubnet(l.subnet, facts.subnet!))
    if (!holder) {
      out.push({
        id: 'subnet-env-no-lease',
        severity: 'warning',
        subjects: [formatCidr4(facts.subnet)],
        message: `no key holds ${formatCidr4(facts.subnet)}, the subnet in ${obs.subnetFile}: the lease expired or was deleted; flanneld takes it back on restart only if it is still free`,
        hint: 'restart flanneld now, before another node is given this subnet',
      })
    } else if (me !== null && holder.attrs.publicIP !== me) {
      out.push({
        id: 'subnet-env-foreign',
        severity: 'error',
        subjects: [formatCidr4(facts.subnet)],
        message: `${formatCidr4(facts.subnet)} from ${obs.subnetFile} is leased to ${formatIPv4(holder.attrs.publicIP)}, not to this node (${formatIPv4(me)}): pods here collide with pods there`,
        hint: 'stop flanneld here, remove the stale subnet.env, and start it again so it takes a free subnet',
      })
    } else own = holder
  }
  if (!own && me !== null) own = ctx.leases.find((l) => l.attrs.publicIP === me)

  const eff = ctx.effective
  if (eff?.vxlan && eff.ipv4) {
    const dev = deviceName(eff.vxlan.vni)
    const d = obs.device
    if (!d || !d.up) {
      out.push({
        id: 'device-missing',
        severity: 'error',
        subjects: [dev],
        message: d
          ? `${dev} exists but is down`
          : `${dev} does not exist: no vxlan traffic leaves or reaches this node`,
        hint: 'restart flanneld (or flannelctl agent), which recreates the device',
      })
    }
    if (d) {
      deviceMtuCheck(obs, eff.vxlan.mtu, d.mtu, dev, node, out)
      if (own) {
        const want = own.subnet.ip
        const inNet = d.addresses.filter((a) => containsCidr4(eff.ipv4!.network, {ip: a.ip, prefix: 32}))
        const ok = inNet.length === 1 && inNet[0]!.ip === want && inNet[0]!.prefix === 32
        if (!ok) {
          out.push({
            id: 'device-address',
            severity: 'error',
            subjects: [dev],
            message: `${dev} should carry exactly ${formatIPv4(want)}/32 from the Network, has ${inNet.length === 0 ? 'none' : inNet.map(formatCidr4).join(', ')}`,
            ...hinted(
              ['ip', 'addr', 'replace', `${formatIPv4(want)}/32`, 'dev', dev],
              ' (and remove the others), or restart flanneld',
            ),
          })
        }
      }
      if (me !== null && d.vxlan) deviceLocalCheck(obs, me, d.vxlan.local, dev, node, out)
    }
    if (d) {
      const peers = desiredPeers(ctx.leases, own?.subnet ?? null, eff.vxlan.directRouting, obs.routes)
      const wanted = new Set<number>()
      // Indexed once, so each peer costs a lookup, not a scan of the kernel's tables (65,535 peers: ms, not minutes).
      const routesTo = routesByDst(obs.routes)
      const haveNeigh = new Map<number, Array<string | null>>()
      for (const n of obs.neighs) {
        const l = haveNeigh.get(n.ip)
        if (l) l.push(n.mac)
        else haveNeigh.set(n.ip, [n.mac])
      }
      const haveFdb = new Map<string, Array<number | null>>()
      for (const f of obs.fdb) {
        const l = haveFdb.get(f.mac)
        if (l) l.push(f.dst)
        else haveFdb.set(f.mac, [f.dst])
      }
      for (const p of peers) {
        wanted.add(cidrKey(p.subnet))
        if (!(routesTo.get(p.subnet.ip) ?? []).some((r) => routeMatches(r, p, dev))) {
          const s = formatCidr4(p.subnet)
          out.push({
            id: 'route-missing',
            severity: 'error',
            subjects: [s],
            message: p.direct
              ? `no route ${s} via ${formatIPv4(p.publicIP)} (DirectRouting) for ${describePeer(p)}`
              : `no route ${s} via ${formatIPv4(p.subnet.ip)} dev ${dev} onlink for ${describePeer(p)}: pods there are unreachable (routes vanish when a NIC restarts)`,
            ...hinted(
              p.direct
                ? ['ip', 'route', 'replace', s, 'via', formatIPv4(p.publicIP)]
                : ['ip', 'route', 'replace', s, 'via', formatIPv4(p.subnet.ip), 'dev', dev, 'onlink'],
            ),
          })
        }
        if (p.direct) continue
        if (!haveNeigh.get(p.subnet.ip)?.includes(p.mac)) {
          const s = formatCidr4(p.subnet)
          out.push({
            id: 'neigh-missing',
            severity: 'error',
            subjects: [s],
            message: `no neighbour entry ${formatIPv4(p.subnet.ip)} lladdr ${p.mac} on ${dev} for ${describePeer(p)}`,
            ...hinted([
              'ip',
              'neigh',
              'replace',
              formatIPv4(p.subnet.ip),
              'lladdr',
              p.mac,
              'dev',
              dev,
              'nud',
              'permanent',
            ]),
          })
        }
        if (!haveFdb.get(p.mac)?.includes(p.publicIP)) {
          const s = formatCidr4(p.subnet)
          out.push({
            id: 'fdb-missing',
            severity: 'error',
            subjects: [s],
            message: `no FDB entry ${p.mac} dst ${formatIPv4(p.publicIP)} on ${dev} for ${describePeer(p)}`,
            ...hinted([
              'bridge',
              'fdb',
              'replace',
              p.mac,
              'dev',
              dev,
              'dst',
              formatIPv4(p.publicIP),
              'self',
              'permanent',
            ]),
          })
        }
      }
      for (const r of obs.routes) {
        if (r.dev !== dev || !r.dst || !containsCidr4(eff.ipv4.network, r.dst) || wanted.has(cidrKey(r.dst))) continue
        out.push({
          id: 'route-stale',
          severity: 'warning',
          subjects: [formatCidr4(r.dst)],
          message: `route ${formatCidr4(r.dst)} dev ${dev} points at a subnet nobody leases any more`,
          ...hinted(['ip', 'route', 'del', formatCidr4(r.dst), 'dev', dev]),
        })
      }
    }
  }
  if (eff?.backendType === 'host-gw' && eff.ipv4) hostGwChecks(obs, ctx, own, out)
  out.push(...masqOut)
  if (obs.ipForward === false) {
    out.push({
      id: 'ip-forward-off',
      severity: 'error',
      subjects: ['net.ipv4.ip_forward'],
      message: 'net.ipv4.ip_forward is 0: this node does not forward pod traffic',
      ...hinted(['sysctl', '-w', 'net.ipv4.ip_forward=1'], ' (and persist it in /etc/sysctl.d/)'),
    })
  }
  return out
}

function hostGwChecks(obs: NodeObservation, ctx: ClusterContext, own: Lease | undefined, out: Finding[]): void {
  const iface = obs.ifaceName
  if (!iface) return
  const peers = hostGwPeers(ctx.leases, own?.subnet ?? null, obs.routes)
  const plan = planHostGw(peers, obs.routes, iface, ctx.effective!.ipv4!.network)
  for (const p of plan.unreachable) {
    out.push({
      id: 'hostgw-peer-unreachable',
      severity: 'error',
      subjects: [formatCidr4(p.subnet)],
      message: `${formatCidr4(p.subnet)} (${formatIPv4(p.publicIP)}) is not on a directly connected subnet of ${iface}: host-gw cannot route to it and its pods are unreachable from here`,
      hint: 'host-gw needs every node on one L2 segment; use the vxlan backend (DirectRouting keeps plain routes where possible)',
    })
  }
  for (const line of plan.ip) {
    const m = /^route replace (\S+) via (\S+)/.exec(line)
    if (!m) continue
    out.push({
      id: 'route-missing',
      severity: 'error',
      subjects: [m[1]!],
      message: `no route ${m[1]} via ${m[2]} dev ${iface} (host-gw): pods there are unreachable (routes vanish when a NIC restarts)`,
      ...hinted(['ip', 'route', 'replace', m[1]!, 'via', m[2]!, 'dev', iface]),
    })
  }
}

/**
 * The vxlan device's MTU: (Backend.MTU, else the interface MTU) - 50 on releases that honour Backend.MTU (v0.21.3+),
 * the interface MTU - 50 on older ones; either when the release is unknown.
 */
function deviceMtuCheck(
  obs: NodeObservation,
  setting: number,
  actual: number,
  dev: string,
  node: NodeRelease | null,
  out: Finding[],
): void {
  const iface = obs.ifaceMtu
  const honours = setting > 0 ? atLeast(node, BACKEND_MTU_SINCE) : false
  const bases: Array<{base: number; why: string}> = []
  if (setting > 0 && honours !== false) bases.push({base: setting, why: 'Backend.MTU'})
  if (iface && (setting === 0 || honours !== true))
    bases.push({
      base: iface,
      why:
        setting > 0
          ? `interface MTU (flanneld before ${formatRelease(BACKEND_MTU_SINCE)} ignores Backend.MTU)`
          : 'interface MTU',
    })
  if (bases.length === 0 || bases.some((b) => actual === b.base - 50)) {
    if (setting > 0 && honours === null && iface && actual === iface - 50 && actual !== setting - 50) {
      out.push({
        id: 'device-mtu',
        severity: 'info',
        subjects: [dev],
        message: `${dev} has MTU ${actual} from the interface MTU ${iface}, not Backend.MTU ${setting}: this node runs flanneld before ${formatRelease(BACKEND_MTU_SINCE)}, which ignores Backend.MTU`,
        hint: `upgrade flanneld to ${formatRelease(BACKEND_MTU_SINCE)} or later for Backend.MTU to apply; pass --flanneld-version to judge this node by its release`,
      })
    }
    return
  }
  const want = bases[0]!
  const who = node ? ` (${describeNodeRelease(node)})` : ''
  out.push({
    id: 'device-mtu',
    severity: 'error',
    subjects: [dev],
    message: `${dev} has MTU ${actual}, expected ${bases.map((b) => b.base - 50).join(' or ')}${who} (${want.why} ${want.base} minus 50 for vxlan): large packets are dropped`,
    ...hinted(['ip', 'link', 'set', dev, 'mtu', String(want.base - 50)], ', or restart flanneld'),
  })
}

/** The vxlan device's `local`, judged by the node's release (core/vxlan-local.ts, shared with the agent's /readyz). */
function deviceLocalCheck(
  obs: NodeObservation,
  me: number,
  localText: string | null,
  dev: string,
  node: NodeRelease | null,
  out: Finding[],
): void {
  const local = localText === null ? null : parseIPv4(localText)
  const facts = {publicIP: me, ifaceAddress: obs.ifaceAddress ?? me, hostAddresses: obs.hostAddresses ?? null}
  const problem = judgeVxlanLocal(local, localText ?? '(none)', facts, node)
  if (!problem) return
  out.push({
    id: 'device-local-ip',
    severity: 'error',
    subjects: [dev],
    message: `${dev} ${problem.message}`,
    ...(problem.kind === 'not-host-address'
      ? hinted(
          ['ip', 'link', 'del', dev],
          `, then start a node agent that uses the interface address ${formatIPv4(facts.ifaceAddress)} as local (flanneld up to v0.27.3, or flannelctl agent); keep --public-ip so peers still send to the PublicIP`,
        )
      : hinted(['ip', 'link', 'del', dev], ' and restart flanneld')),
  })
}

/**
 * Masquerade rules (when subnet.env says FLANNEL_IPMASQ=true) and the FORWARD policy trap from flannel's
 * troubleshooting guide. The rule set is judged against the node's release when known; otherwise whichever known
 * release's complete set is present is accepted (and named), and missing rules are counted against the closest set.
 * Returns the release range the rule set shows, if any.
 */
function masqChecks(
  obs: NodeObservation,
  ctx: ClusterContext,
  facts: EnvFacts,
  release: Release | null,
  out: Finding[],
): NodeRelease | null {
  const net = ctx.effective?.ipv4?.network
  const env = obs.subnetEnvText === null ? null : parseSubnetEnv(obs.subnetEnvText)
  let inferred: NodeRelease | null = null
  // The running flanneld built its rules for the Network in its subnet.env; after network expand that is the old one
  // until it restarts (subnet-env-stale-network says so), and its rules are judged against it, not reported missing.
  const rulesNet = facts.network ?? net
  // With EnableNFTables (flannel 0.25+) the rules live in nftables (table ip flannel-ipv4), not in iptables: an empty
  // iptables nat table is then healthy, and the table is judged instead (when nft could be read).
  const nft = ctx.effective?.enableNFTables === true
  const nftText = obs.nftFlannel ?? null
  if (nft && env?.get('FLANNEL_IPMASQ') === 'true' && nftText !== null && rulesNet && facts.subnet) {
    nftMasqChecks(rulesNet, facts.subnet, nftText, out)
  } else if (nft && env?.get('FLANNEL_IPMASQ') === 'true') {
    out.push({
      id: 'masq-rule-set',
      severity: 'info',
      subjects: ['flannel-ipv4'],
      message:
        'the config sets EnableNFTables: flanneld keeps its masquerade rules in nftables table ip flannel-ipv4, which doctor could not read here (nft missing or not permitted)',
      ...hinted(['nft', 'list', 'table', 'ip', 'flannel-ipv4']),
    })
  }
  if (!nft && obs.iptablesNat && net && rulesNet && facts.subnet && env?.get('FLANNEL_IPMASQ') === 'true') {
    const saved = obs.iptablesNat
    const {complete, closest} = recogniseMasqRules(rulesNet, facts.subnet, saved)
    const judged = release ? matchMasqSet(masqRuleSetFor(release), rulesNet, facts.subnet, saved) : null
    if (!release && complete.length > 0) {
      const r: ReleaseRange = {from: complete[0]!.set.releases.from, to: complete.at(-1)!.set.releases.to}
      inferred = {kind: 'range', range: r}
      const set = complete.at(-1)!.set
      out.push({
        id: 'masq-rule-set',
        severity: 'info',
        subjects: [set.chain],
        message: `the nat table holds the complete masquerade rule set of flanneld ${formatRange(r)} (${set.rules(rulesNet, facts.subnet, false).length - (set.jump ? 1 : 0)} rules in ${set.chain}${set.jump ? `, jump ${set.jump === '-I' ? 'inserted' : 'appended'}` : ''})`,
        hint: 'other release-dependent checks judge this node as that release; pass --flanneld-version to name it exactly',
      })
    }
    const m = judged ?? (complete.length > 0 ? null : closest)
    if (m && m.missing.length > 0) {
      const who = release
        ? `flanneld ${formatRelease(release)}`
        : `flanneld ${formatRange(m.set.releases)} (the closest known set)`
      out.push({
        id: 'masq-rules-missing',
        severity: 'error',
        subjects: [m.set.chain],
        message: `${m.missing.length} of the ${m.total} masquerade rules ${who} installs for ${formatCidr4(rulesNet)} are missing from the nat table, e.g. ${ruleLine(m.missing[0]!)}: pod traffic to the outside world leaves with pod addresses`,
        hint: 'restart flanneld (or run flannelctl agent --ip-masq, which re-checks them every resync)',
      })
    }
    const cidrs = new Set([formatCidr4(rulesNet), formatCidr4(facts.subnet), '224.0.0.0/4'])
    const ours = saved
      .split('\n')
      .filter((l) => l.startsWith(`-A ${MASQ_CHAIN} `) || (l.startsWith('-A POSTROUTING ') && l.includes('masq"')))
    const stale = ours.filter((l) => [...l.matchAll(/(\d+\.\d+\.\d+\.\d+\/\d+)/g)].some((x) => !cidrs.has(x[1]!)))
    if (stale.length > 0) {
      out.push({
        id: 'masq-rules-stale',
        severity: 'warning',
        subjects: [MASQ_CHAIN],
        message: `${stale.length} flanneld masquerade rule(s) were built for another Network or subnet (as after network expand), e.g. ${stale[0]}`,
        hint: 'restart flanneld on this node: it deletes the old rule set and installs the one for the current Network',
      })
    }
  }
  if (obs.iptablesFilter && net) {
    const lines = obs.iptablesFilter.split('\n').map((l) => l.trim())
    const n = formatCidr4(net)
    // FLANNEL-FWD from v0.20.0; up to v0.19.2 the ACCEPT rules sat in FORWARD itself.
    const accepts = lines.some(
      (l) =>
        (l.startsWith('-A FLANNEL-FWD ') || l.startsWith('-A FORWARD ')) && l.includes(n) && l.endsWith('-j ACCEPT'),
    )
    if (lines.includes('-P FORWARD DROP') && !accepts) {
      out.push({
        id: 'forward-policy-drop',
        severity: 'error',
        subjects: ['FORWARD'],
        message: `the FORWARD chain's policy is DROP (Docker >= 1.13 sets it) and no flannel ACCEPT rule for ${n} exists: traffic between pods on different nodes is dropped`,
        ...hinted(
          ['iptables', '-A', 'FORWARD', '-s', n, '-j', 'ACCEPT'],
          ' && ',
          ['iptables', '-A', 'FORWARD', '-d', n, '-j', 'ACCEPT'],
          ' (flanneld adds them with --iptables-forward-rules, the default)',
        ),
      })
    }
  }
  return inferred
}

/** flanneld's nftables masquerade set (EnableNFTables, v0.25+), judged in core/masq.ts judgeNftMasq. */
function nftMasqChecks(network: Cidr4, subnet: Cidr4, text: string, out: Finding[]): void {
  const j = judgeNftMasq(network, subnet, text)
  if (j.missing.length > 0) {
    out.push({
      id: 'masq-rules-missing',
      severity: 'error',
      subjects: ['flannel-ipv4'],
      message: `${j.missing.length} of the ${j.total} masquerade rules flanneld (v0.25+, EnableNFTables) installs for ${formatCidr4(network)} are missing from nftables chain postrtg of table ip flannel-ipv4${text === '' ? ' (the table does not exist)' : ''}, e.g. ${j.missing[0]}: pod traffic to the outside world leaves with pod addresses`,
      ...hinted(
        'restart flanneld (or run flannelctl agent --ip-masq, which re-checks them every resync); see the table: ',
        ['nft', 'list', 'table', 'ip', 'flannel-ipv4'],
      ),
    })
  } else {
    out.push({
      id: 'masq-rule-set',
      severity: 'info',
      subjects: ['flannel-ipv4'],
      message: `nftables table ip flannel-ipv4 holds flanneld's complete masquerade set (EnableNFTables, flanneld v0.25+: ${j.total} rules in chain postrtg)`,
      hint: 'nothing to do',
    })
  }
  if (j.stale.length > 0) {
    out.push({
      id: 'masq-rules-stale',
      severity: 'warning',
      subjects: ['flannel-ipv4'],
      message: `${j.stale.length} rule(s) in nftables chain postrtg were built for another Network or subnet (as after network expand), e.g. ${j.stale[0]}`,
      hint: 'restart flanneld on this node: it rewrites table ip flannel-ipv4 for the current Network',
    })
  }
}
