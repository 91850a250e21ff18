/**
 * doctor --local: the checks run on a node, against its subnet.env and its kernel state as the dataplane layer read
 * them. Pure: the observation is passed in.
 */

import type {ClusterContext, Finding} from './doctor.js'
import {type Cidr4, containsCidr4, formatCidr4, formatIPv4, parseCidr4} from './ipv4.js'
import type {Lease} from './leases.js'
import {hostGwPeers, planHostGw} from './hostgw.js'
import {masqRules, MASQ_CHAIN, missingRules} from './masq.js'
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
}

/** @public (doctor --only/--skip validate against it) */
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
  'forward-policy-drop',
]

interface EnvFacts {
  network: Cidr4 | null
  subnet: Cidr4 | null
}

function envChecks(obs: NodeObservation, ctx: ClusterContext, out: Finding[]): EnvFacts {
  const file = obs.subnetFile
  if (obs.subnetEnvText === null) {
    out.push({
      id: 'subnet-env-missing',
      severity: 'error',
      subjects: [file],
      message: `${file} does not exist: flanneld has not finished starting here, and the CNI plugin cannot configure pods`,
      hint: 'check the flanneld logs (journalctl -u flanneld); it writes the file after taking a lease and setting up the device',
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
      hint: 'restart flanneld to rewrite it, or render the expected file: flannelctl subnet-env --public-ip <this node>',
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

/** The node checks; `ctx` comes from the cluster checks of the same run. */
export function nodeChecks(obs: NodeObservation, ctx: ClusterContext): Finding[] {
  const out: Finding[] = []
  const facts = envChecks(obs, ctx, out)
  const me = obs.publicIP

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
      const base = eff.vxlan.mtu || obs.ifaceMtu
      if (base && d.mtu !== base - 50) {
        out.push({
          id: 'device-mtu',
          severity: 'error',
          subjects: [dev],
          message: `${dev} has MTU ${d.mtu}, expected ${base - 50} (${eff.vxlan.mtu ? 'Backend.MTU' : 'interface MTU'} ${base} minus 50 for vxlan): large packets are dropped`,
          hint: `ip link set ${dev} mtu ${base - 50}, or restart flanneld`,
        })
      }
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
            hint: `ip addr replace ${formatIPv4(want)}/32 dev ${dev} (and remove the others), or restart flanneld`,
          })
        }
      }
      if (me !== null && d.vxlan && d.vxlan.local !== formatIPv4(me)) {
        out.push({
          id: 'device-local-ip',
          severity: 'error',
          subjects: [dev],
          message: `${dev} sends from local ${d.vxlan.local ?? '(none)'}, but this node's PublicIP is ${formatIPv4(me)}: peers answer to an address that is not this node's`,
          hint: 'delete the device (ip link del ' + dev + ') and restart flanneld',
        })
      }
    }
    if (d) {
      const peers = desiredPeers(ctx.leases, own?.subnet ?? null, eff.vxlan.directRouting, obs.routes)
      const wanted = new Set<string>()
      for (const p of peers) {
        const s = formatCidr4(p.subnet)
        wanted.add(s)
        if (!obs.routes.some((r) => routeMatches(r, p, dev))) {
          out.push({
            id: 'route-missing',
            severity: 'error',
            subjects: [s],
            message: p.direct
              ? `no route ${s} via ${formatIPv4(p.publicIP)} (DirectRouting) for ${describePeer(p)}`
              : `no route ${s} via ${formatIPv4(p.subnet.ip)} dev ${dev} onlink for ${describePeer(p)}: pods there are unreachable (routes vanish when a NIC restarts)`,
            hint: p.direct
              ? `ip route replace ${s} via ${formatIPv4(p.publicIP)}`
              : `ip route replace ${s} via ${formatIPv4(p.subnet.ip)} dev ${dev} onlink`,
          })
        }
        if (p.direct) continue
        if (!obs.neighs.some((n) => n.ip === p.subnet.ip && n.mac === p.mac)) {
          out.push({
            id: 'neigh-missing',
            severity: 'error',
            subjects: [s],
            message: `no neighbour entry ${formatIPv4(p.subnet.ip)} lladdr ${p.mac} on ${dev} for ${describePeer(p)}`,
            hint: `ip neigh replace ${formatIPv4(p.subnet.ip)} lladdr ${p.mac} dev ${dev} nud permanent`,
          })
        }
        if (!obs.fdb.some((f) => f.mac === p.mac && f.dst === p.publicIP)) {
          out.push({
            id: 'fdb-missing',
            severity: 'error',
            subjects: [s],
            message: `no FDB entry ${p.mac} dst ${formatIPv4(p.publicIP)} on ${dev} for ${describePeer(p)}`,
            hint: `bridge fdb replace ${p.mac} dev ${dev} dst ${formatIPv4(p.publicIP)} self permanent`,
          })
        }
      }
      for (const r of obs.routes) {
        if (r.dev !== dev || !r.dst || !containsCidr4(eff.ipv4.network, r.dst) || wanted.has(formatCidr4(r.dst)))
          continue
        out.push({
          id: 'route-stale',
          severity: 'warning',
          subjects: [formatCidr4(r.dst)],
          message: `route ${formatCidr4(r.dst)} dev ${dev} points at a subnet nobody leases any more`,
          hint: `ip route del ${formatCidr4(r.dst)} dev ${dev}`,
        })
      }
    }
  }
  if (eff?.backendType === 'host-gw' && eff.ipv4) hostGwChecks(obs, ctx, own, out)
  masqChecks(obs, ctx, facts, out)
  if (obs.ipForward === false) {
    out.push({
      id: 'ip-forward-off',
      severity: 'error',
      subjects: ['net.ipv4.ip_forward'],
      message: 'net.ipv4.ip_forward is 0: this node does not forward pod traffic',
      hint: 'sysctl -w net.ipv4.ip_forward=1 (and persist it in /etc/sysctl.d/)',
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
      hint: `ip route replace ${m[1]} via ${m[2]} dev ${iface}`,
    })
  }
}

/** Masquerade rules (when subnet.env says FLANNEL_IPMASQ=true) and the FORWARD policy trap from flannel's troubleshooting guide. */
function masqChecks(obs: NodeObservation, ctx: ClusterContext, facts: EnvFacts, out: Finding[]): void {
  const net = ctx.effective?.ipv4?.network
  const env = obs.subnetEnvText === null ? null : parseSubnetEnv(obs.subnetEnvText)
  if (obs.iptablesNat && net && facts.subnet && env?.get('FLANNEL_IPMASQ') === 'true') {
    const want = masqRules(net, facts.subnet, true)
    const wantPlain = masqRules(net, facts.subnet, false)
    const missing = missingRules(want, obs.iptablesNat).filter(
      (r) => missingRules([wantPlain[want.indexOf(r)]!], obs.iptablesNat!).length > 0,
    )
    if (missing.length > 0) {
      out.push({
        id: 'masq-rules-missing',
        severity: 'error',
        subjects: [MASQ_CHAIN],
        message: `${missing.length} of flanneld's ${want.length} masquerade rules for ${formatCidr4(net)} are missing from the nat table: pod traffic to the outside world leaves with pod addresses`,
        hint: 'restart flanneld (or run flannelctl agent --ip-masq, which re-checks them every resync)',
      })
    }
    const ours = obs.iptablesNat.split('\n').filter((l) => l.startsWith(`-A ${MASQ_CHAIN} `))
    const cidrs = new Set([formatCidr4(net), formatCidr4(facts.subnet), '224.0.0.0/4'])
    const stale = ours.filter((l) => [...l.matchAll(/(\d+\.\d+\.\d+\.\d+\/\d+)/g)].some((m) => !cidrs.has(m[1]!)))
    if (stale.length > 0) {
      out.push({
        id: 'masq-rules-stale',
        severity: 'warning',
        subjects: [MASQ_CHAIN],
        message: `${stale.length} rule(s) in ${MASQ_CHAIN} were built for another Network or subnet (as after network expand), e.g. ${stale[0]}`,
        hint: 'restart flanneld on this node: it deletes the old rule set and installs the one for the current Network',
      })
    }
  }
  if (obs.iptablesFilter && net) {
    const lines = obs.iptablesFilter.split('\n').map((l) => l.trim())
    const n = formatCidr4(net)
    const accepts = lines.some((l) => l.startsWith('-A FLANNEL-FWD') && l.includes(n) && l.endsWith('-j ACCEPT'))
    if (lines.includes('-P FORWARD DROP') && !accepts) {
      out.push({
        id: 'forward-policy-drop',
        severity: 'error',
        subjects: ['FORWARD'],
        message: `the FORWARD chain's policy is DROP (Docker >= 1.13 sets it) and no flannel ACCEPT rule for ${n} exists: traffic between pods on different nodes is dropped`,
        hint: `iptables -A FORWARD -s ${n} -j ACCEPT && iptables -A FORWARD -d ${n} -j ACCEPT (flanneld adds them with --iptables-forward-rules, the default)`,
      })
    }
  }
}
