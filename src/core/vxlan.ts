/**
 * What flanneld's vxlan backend programs on a node (docs/flannel.md §6.1, §6.2), as data: the kernel state the
 * dataplane layer reads, and the entries that should exist for a set of leases. Shared by doctor and the agent.
 */

import {type Cidr4, formatCidr4, formatIPv4, mask4} from './ipv4.js'
import type {Lease} from './leases.js'

export interface LinkState {
  readonly name: string
  readonly mtu: number
  readonly mac: string
  readonly up: boolean
  readonly vxlan: {id: number; local: string | null; port: number | null; learning: boolean; gbp: boolean} | null
  /** IPv4 addresses on the link. */
  readonly addresses: Cidr4[]
}

export interface RouteEntry {
  /** null for the default route. */
  readonly dst: Cidr4 | null
  readonly gateway: number | null
  readonly dev: string | null
  readonly onlink: boolean
}

export interface NeighEntry {
  readonly ip: number
  readonly mac: string | null
  readonly permanent: boolean
}

export interface FdbEntry {
  readonly mac: string
  readonly dst: number | null
}

export function deviceName(vni: number): string {
  return `flannel.${vni}`
}

/**
 * flannel's ip.DirectRouting: the route the kernel would use to reach an IP has no gateway (a directly connected
 * subnet). Longest-prefix match over the main table; among routes of the same prefix length the first listed wins.
 * Indexed once (one map per prefix length in use), so asking for every peer is linear, not peers x routes.
 */
export function directlyConnected(routes: readonly RouteEntry[]): (ip: number) => boolean {
  const byPrefix = new Map<number, Map<number, RouteEntry>>()
  for (const r of routes) {
    const prefix = r.dst ? r.dst.prefix : 0
    const key = r.dst ? (r.dst.ip & mask4(prefix)) >>> 0 : 0
    let m = byPrefix.get(prefix)
    if (!m) byPrefix.set(prefix, (m = new Map()))
    if (!m.has(key)) m.set(key, r)
  }
  const prefixes = [...byPrefix.keys()].sort((a, b) => b - a)
  return (ip) => {
    for (const prefix of prefixes) {
      const best = byPrefix.get(prefix)!.get((ip & mask4(prefix)) >>> 0)
      if (best) return best.gateway === null && best.dst !== null
    }
    return false
  }
}

/** Routes by destination address (dst.ip; the prefix is compared by the caller): a lookup per peer, not a scan. */
export function routesByDst(routes: readonly RouteEntry[]): Map<number, RouteEntry[]> {
  const routesTo = new Map<number, RouteEntry[]>()
  for (const r of routes) {
    if (!r.dst) continue
    const list = routesTo.get(r.dst.ip)
    if (list) list.push(r)
    else routesTo.set(r.dst.ip, [r])
  }
  return routesTo
}

/** A number naming a CIDR (ip and prefix), for sets of subnets without building strings. */
export function cidrKey(c: Cidr4): number {
  return c.ip * 64 + c.prefix
}

export interface PeerEntries {
  readonly lease: Lease
  readonly subnet: Cidr4
  readonly publicIP: number
  readonly mac: string
  /** DirectRouting to a peer on a connected subnet: one plain route via its PublicIP, nothing on the device. */
  readonly direct: boolean
}

/**
 * The remote vxlan leases a node programs: every lease with BackendType exactly "vxlan" and decodable BackendData
 * (with a VtepMAC, unless direct), except the node's own subnet (flannel's LeaseWatcher drops it).
 */
export function desiredPeers(
  leases: readonly Lease[],
  own: Cidr4 | null,
  directRouting: boolean,
  routes: readonly RouteEntry[],
): PeerEntries[] {
  const out: PeerEntries[] = []
  const direct = directRouting ? directlyConnected(routes) : () => false
  for (const l of leases) {
    if (l.attrs.backendType !== 'vxlan' || l.vxlan === null) continue
    if (own && l.subnet.ip === own.ip && l.subnet.prefix === own.prefix) continue
    const isDirect = direct(l.attrs.publicIP)
    // BackendData `{}` or `null` decodes with no VtepMAC: flanneld's AddARP then fails (the kernel refuses a new
    // neighbour without an address) and it programs nothing, unless the peer is reached by a direct route.
    if (!isDirect && l.vxlan.vtepMAC === '') continue
    out.push({lease: l, subnet: l.subnet, publicIP: l.attrs.publicIP, mac: l.vxlan.vtepMAC, direct: isDirect})
  }
  return out
}

export function routeMatches(r: RouteEntry, p: PeerEntries, dev: string): boolean {
  if (!r.dst || r.dst.ip !== p.subnet.ip || r.dst.prefix !== p.subnet.prefix) return false
  return p.direct ? r.gateway === p.publicIP : r.gateway === p.subnet.ip && r.dev === dev
}

export function describePeer(p: PeerEntries): string {
  return `${formatCidr4(p.subnet)} (${formatIPv4(p.publicIP)}, ${p.mac})`
}
