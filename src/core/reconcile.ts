/**
 * Level-triggered dataplane sync for the vxlan backend: compare the entries flanneld would program for the current
 * leases with what the kernel holds, and produce the `bridge -batch` and `ip -batch` lines that repair the
 * difference. Adds follow flanneld's order (neighbour, FDB, route; the FDB batch runs first, then neighbours before
 * routes in one ip batch, so the kernel never ARPs). Pure.
 */

import {type Cidr4, containsCidr4, formatCidr4, formatIPv4} from './ipv4.js'
import type {FdbEntry, NeighEntry, PeerEntries, RouteEntry} from './vxlan.js'
import {routeMatches, routesByDst} from './vxlan.js'

export interface SyncPlan {
  /** Lines for `bridge -batch -`. */
  readonly bridge: string[]
  /** Lines for `ip -batch -`. */
  readonly ip: string[]
  /** Counts, for logs and metrics. */
  readonly added: number
  readonly removed: number
}

export interface ActualState {
  readonly routes: readonly RouteEntry[]
  readonly neighs: readonly NeighEntry[]
  readonly fdb: readonly FdbEntry[]
}

export function planSync(peers: readonly PeerEntries[], actual: ActualState, dev: string, network: Cidr4): SyncPlan {
  const bridge: string[] = []
  const neighLines: string[] = []
  const routeLines: string[] = []
  const removeLines: string[] = []
  let added = 0
  let removed = 0
  const wantNeigh = new Map<number, string>()
  const wantFdb = new Set<string>()
  const wantRoute = new Set<string>()
  // Index the kernel's state once: the comparisons below are then O(1) per peer, not O(entries).
  const haveNeigh = new Set(actual.neighs.filter((n) => n.permanent).map((n) => `${n.ip} ${n.mac}`))
  const haveFdb = new Set(actual.fdb.map((f) => `${f.mac} ${f.dst}`))
  const routesTo = routesByDst(actual.routes)
  for (const p of peers) {
    const s = formatCidr4(p.subnet)
    wantRoute.add(s)
    if (!p.direct) {
      wantNeigh.set(p.subnet.ip, p.mac)
      wantFdb.add(`${p.mac} ${p.publicIP}`)
      if (!haveNeigh.has(`${p.subnet.ip} ${p.mac}`)) {
        neighLines.push(`neigh replace ${formatIPv4(p.subnet.ip)} lladdr ${p.mac} dev ${dev} nud permanent`)
        added++
      }
      if (!haveFdb.has(`${p.mac} ${p.publicIP}`)) {
        bridge.push(`fdb replace ${p.mac} dev ${dev} dst ${formatIPv4(p.publicIP)} self permanent`)
        added++
      }
    }
    if (!(routesTo.get(p.subnet.ip) ?? []).some((r) => routeMatches(r, p, dev))) {
      routeLines.push(
        p.direct
          ? `route replace ${s} via ${formatIPv4(p.publicIP)}`
          : `route replace ${s} via ${formatIPv4(p.subnet.ip)} dev ${dev} onlink`,
      )
      added++
    }
  }
  // Removals: routes into the flannel Network through a gateway (ours: via a subnet IP onlink, or DirectRouting via a
  // PublicIP) and neighbour entries on our device that no lease asks for any more.
  for (const r of actual.routes) {
    if (!r.dst || r.gateway === null || !containsCidr4(network, r.dst)) continue
    const s = formatCidr4(r.dst)
    if (wantRoute.has(s)) continue
    removeLines.push(`route del ${s} via ${formatIPv4(r.gateway)}${r.dev ? ` dev ${r.dev}` : ''}`)
    removed++
  }
  for (const n of actual.neighs) {
    if (wantNeigh.has(n.ip)) continue
    removeLines.push(`neigh del ${formatIPv4(n.ip)} dev ${dev}`)
    removed++
  }
  const fdbDels: string[] = []
  for (const f of actual.fdb) {
    if (f.dst === null || wantFdb.has(`${f.mac} ${f.dst}`)) continue
    fdbDels.push(`fdb del ${f.mac} dev ${dev} dst ${formatIPv4(f.dst)} self`)
    removed++
  }
  // Deletions first, last found first (as when each was put in front); one pass, not an unshift per entry.
  return {bridge: [...fdbDels.reverse(), ...bridge], ip: [...removeLines, ...neighLines, ...routeLines], added, removed}
}

/** The kernel state a set of peers leaves on the node when programmed (what planSync compares against). */
export function programmedState(peers: readonly PeerEntries[], dev: string): ActualState {
  return {
    routes: peers.map((p) => ({
      dst: p.subnet,
      gateway: p.direct ? p.publicIP : p.subnet.ip,
      dev: p.direct ? null : dev,
      onlink: !p.direct,
    })),
    neighs: peers.filter((p) => !p.direct).map((p) => ({ip: p.subnet.ip, mac: p.mac, permanent: true})),
    fdb: peers.filter((p) => !p.direct).map((p) => ({mac: p.mac, dst: p.publicIP})),
  }
}
