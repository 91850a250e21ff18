/**
 * The host-gw backend as flanneld programs it (pkg/backend/hostgw, route_network.go; docs/flannel.md §6.3): one
 * route per remote host-gw lease, `<subnet> via <PublicIP> dev <iface>`, which only works when the peer is on a
 * directly connected subnet. Pure.
 */

import {type Cidr4, containsCidr4, formatCidr4, formatIPv4} from './ipv4.js'
import type {Lease} from './leases.js'
import {cidrKey, directlyConnected, type RouteEntry, routesByDst} from './vxlan.js'

export interface HostGwPeer {
  readonly subnet: Cidr4
  readonly publicIP: number
  /** false: the peer is behind a router, host-gw cannot reach it. */
  readonly reachable: boolean
}

export function hostGwPeers(leases: readonly Lease[], own: Cidr4 | null, routes: readonly RouteEntry[]): HostGwPeer[] {
  const out: HostGwPeer[] = []
  const direct = directlyConnected(routes)
  for (const l of leases) {
    if (l.attrs.backendType !== 'host-gw') continue
    if (own && l.subnet.ip === own.ip && l.subnet.prefix === own.prefix) continue
    out.push({subnet: l.subnet, publicIP: l.attrs.publicIP, reachable: direct(l.attrs.publicIP)})
  }
  return out
}

export interface HostGwPlan {
  readonly ip: string[]
  readonly added: number
  readonly replaced: string[]
  readonly removed: number
  readonly unreachable: HostGwPeer[]
}

/** Routes to add, replace (another gateway or device) and remove; peers behind a router are reported, not routed. */
export function planHostGw(
  peers: readonly HostGwPeer[],
  routes: readonly RouteEntry[],
  iface: string,
  network: Cidr4,
): HostGwPlan {
  const ip: string[] = []
  const replaced: string[] = []
  const want = new Set<number>()
  let added = 0
  let removed = 0
  const unreachable = peers.filter((p) => !p.reachable)
  const routesTo = routesByDst(routes)
  for (const p of peers) {
    if (!p.reachable) continue
    want.add(cidrKey(p.subnet))
    const cur = (routesTo.get(p.subnet.ip) ?? []).filter((r) => r.dst!.prefix === p.subnet.prefix)
    if (cur.some((r) => r.gateway === p.publicIP && r.dev === iface)) continue
    const s = formatCidr4(p.subnet)
    if (cur.length > 0)
      replaced.push(
        `${s} (was via ${cur.map((r) => (r.gateway === null ? 'no gateway' : formatIPv4(r.gateway))).join(', ')} dev ${cur[0]!.dev ?? '?'})`,
      )
    ip.push(`route replace ${s} via ${formatIPv4(p.publicIP)} dev ${iface}`)
    added++
  }
  const dels: string[] = []
  for (const r of routes) {
    if (!r.dst || r.gateway === null || r.dev !== iface || !containsCidr4(network, r.dst)) continue
    if (want.has(cidrKey(r.dst))) continue
    dels.push(`route del ${formatCidr4(r.dst)} via ${formatIPv4(r.gateway)} dev ${iface}`)
    removed++
  }
  // Deletions first, last found first (as when each was put in front); one pass, not an unshift per entry.
  return {ip: [...dels.reverse(), ...ip], added, replaced, removed, unreachable}
}
