/**
 * What flanneld's vxlan backend programs on a node (flannel-semantics §6.1, §6.2), as data: the kernel state the
 * dataplane layer reads, and the entries that should exist for a set of leases. Shared by doctor and the agent.
 */

import {type Cidr4, contains4, formatCidr4, formatIPv4} from './ipv4.js'
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
 * flannel's ip.DirectRouting: the route the kernel would use to reach `ip` has no gateway (a directly connected
 * subnet). Longest-prefix match over the main table.
 */
export function isDirectlyConnected(routes: readonly RouteEntry[], ip: number): boolean {
  let best: RouteEntry | null = null
  for (const r of routes) {
    const prefix = r.dst ? r.dst.prefix : 0
    if (r.dst && !contains4(r.dst, ip)) continue
    if (!best || prefix > (best.dst ? best.dst.prefix : 0)) best = r
  }
  return best !== null && best.gateway === null && best.dst !== null
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
 * The remote vxlan leases a node programs: every lease with BackendType exactly "vxlan" and decodable BackendData,
 * except the node's own subnet (flannel's LeaseWatcher drops it).
 */
export function desiredPeers(
  leases: readonly Lease[],
  own: Cidr4 | null,
  directRouting: boolean,
  routes: readonly RouteEntry[],
): PeerEntries[] {
  const out: PeerEntries[] = []
  for (const l of leases) {
    if (l.attrs.backendType !== 'vxlan' || l.vxlan === null) continue
    if (own && l.subnet.ip === own.ip && l.subnet.prefix === own.prefix) continue
    out.push({
      lease: l,
      subnet: l.subnet,
      publicIP: l.attrs.publicIP,
      mac: l.vxlan.vtepMAC,
      direct: directRouting && isDirectlyConnected(routes, l.attrs.publicIP),
    })
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
