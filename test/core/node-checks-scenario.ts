// A node's view of a large cluster for doctor --local's peer checks, and the checks as they were before they were
// indexed (one scan of the kernel's routes, neighbours and FDB per peer: quadratic), kept as the reference the
// indexed checks must agree with. Shared by test/core/node-checks-scale.test.ts and bench/node-checks.ts.

import {clusterContext, type ClusterContext, type Finding} from '../../src/core/doctor.js'
import {type Cidr4, contains4, containsCidr4, formatCidr4, formatIPv4, parseIPv4} from '../../src/core/ipv4.js'
import {keyLayout} from '../../src/core/keys.js'
import {classifyKeys, type RawKV} from '../../src/core/leases.js'
import type {NodeObservation} from '../../src/core/node-checks.js'
import type {FdbEntry, LinkState, NeighEntry, RouteEntry} from '../../src/core/vxlan.js'

export type Variant = 'vxlan' | 'directrouting' | 'host-gw'

/** The finding ids the per-peer scans produce (the ones the reference below computes). */
export const PEER_CHECK_IDS = new Set([
  'route-missing',
  'neigh-missing',
  'fdb-missing',
  'route-stale',
  'hostgw-peer-unreachable',
])

const hex = (b: number) => b.toString(16).padStart(2, '0')
const ip = (s: string) => parseIPv4(s)!

/**
 * `peers + 1` leases in 10.0.0.0/8 (lease 1 is this node), with the kernel state flanneld leaves, damaged in a
 * known pattern: routes, neighbours and FDB entries missing for some peers, wrong gateways, stale routes. PublicIPs
 * 192.168.X.Y are data only (nothing is sent). With DirectRouting and host-gw, peers in the lower half of each
 * 192.168.X.0/24 are on one of the node's connected subnets and the others behind a router.
 */
export function scenario(peers: number, variant: Variant): {obs: NodeObservation; ctx: ClusterContext} {
  const backend =
    variant === 'host-gw'
      ? '{"Type":"host-gw"}'
      : variant === 'directrouting'
        ? '{"Type":"vxlan","DirectRouting":true}'
        : '{"Type":"vxlan"}'
  const kvs: RawKV[] = [
    {
      key: '/coreos.com/network/config',
      value: `{"Network":"10.0.0.0/8","Backend":${backend}}`,
      createRevision: '1',
      modRevision: '1',
      version: '1',
      lease: '0',
    },
  ]
  const routes: RouteEntry[] = [{dst: null, gateway: ip('192.168.255.254'), dev: 'eth0', onlink: false}]
  // The node's connected subnets: the lower half of each 192.168.X.0/24.
  for (let x = 0; x < 256; x++)
    routes.push({dst: {ip: ip(`192.168.${x}.0`), prefix: 25}, gateway: null, dev: 'eth0', onlink: false})
  const neighs: NeighEntry[] = []
  const fdb: FdbEntry[] = []
  const connected = (n: number) => variant !== 'vxlan' && (n & 255) < 128
  for (let n = 1; n <= peers + 1; n++) {
    const x = (n >> 8) & 255
    const y = n & 255
    const subnet: Cidr4 = {ip: ((10 << 24) | (x << 16) | (y << 8)) >>> 0, prefix: 24}
    const pub = ip(`192.168.${x}.${y}`)
    const mac = `c6:d2:32:6f:${hex(x)}:${hex(y)}`
    const value =
      variant === 'host-gw'
        ? `{"PublicIP":"192.168.${x}.${y}","PublicIPv6":null,"BackendType":"host-gw","BackendData":null}`
        : `{"PublicIP":"192.168.${x}.${y}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${mac}"}}`
    kvs.push({
      key: `/coreos.com/network/subnets/10.${x}.${y}.0-24`,
      value,
      createRevision: String(n + 1),
      modRevision: String(n + 1),
      version: '1',
      lease: String(1000 + n),
    })
    if (n === 1) continue // this node
    const direct = connected(n)
    if (n % 97 !== 0) {
      const wrongGw = n % 101 === 0
      if (variant === 'host-gw')
        routes.push({dst: subnet, gateway: wrongGw ? pub + 1 : pub, dev: 'eth0', onlink: false})
      else if (direct) routes.push({dst: subnet, gateway: wrongGw ? pub + 1 : pub, dev: null, onlink: false})
      else routes.push({dst: subnet, gateway: wrongGw ? subnet.ip + 1 : subnet.ip, dev: 'flannel.1', onlink: true})
    }
    if (variant === 'host-gw' || direct) continue
    if (n % 89 !== 0) neighs.push({ip: subnet.ip, mac: n % 103 === 0 ? 'c6:d2:32:6f:ff:fe' : mac, permanent: true})
    if (n % 83 !== 0) fdb.push({mac, dst: n % 107 === 0 ? pub + 1 : pub})
  }
  // Routes to subnets nobody leases (stale) and unrelated routes outside the Network.
  for (let k = 0; k < 64; k++) {
    routes.push({
      dst: {ip: ((11 << 24) | (k << 8)) >>> 0, prefix: 24},
      gateway: ip('192.168.0.1'),
      dev: 'eth0',
      onlink: false,
    })
    const stale: Cidr4 = {ip: ((10 << 24) | (255 << 16) | (k << 8)) >>> 0, prefix: 24}
    if (peers < 65_000)
      routes.push({
        dst: stale,
        gateway: stale.ip,
        dev: variant === 'host-gw' ? 'eth0' : 'flannel.1',
        onlink: variant !== 'host-gw',
      })
  }
  const layout = keyLayout('/coreos.com/network')
  const ctx = clusterContext(classifyKeys(layout, kvs, String(peers + 2)))
  const device: LinkState = {
    name: 'flannel.1',
    mtu: 1450,
    mac: 'c6:d2:32:6f:00:01',
    up: true,
    vxlan: {id: 1, local: '192.168.0.1', port: 8472, learning: false, gbp: false},
    addresses: [{ip: ip('10.0.1.0'), prefix: 32}],
  }
  const obs: NodeObservation = {
    subnetFile: '/run/flannel/subnet.env',
    subnetEnvText: 'FLANNEL_NETWORK=10.0.0.0/8\nFLANNEL_SUBNET=10.0.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n',
    publicIP: ip('192.168.0.1'),
    publicIPSource: 'test',
    ifaceMtu: 1500,
    ifaceName: 'eth0',
    device: variant === 'host-gw' ? null : device,
    routes,
    neighs,
    fdb,
    ipForward: true,
  }
  return {obs, ctx}
}

// --------------------------------------------------------------------------------------------------------------
// The reference: the per-peer scans as node-checks.ts, vxlan.ts and hostgw.ts did them before they were indexed.

function isDirectlyConnectedScan(routes: readonly RouteEntry[], addr: number): boolean {
  let best: RouteEntry | null = null
  for (const r of routes) {
    const prefix = r.dst ? r.dst.prefix : 0
    if (r.dst && !contains4(r.dst, addr)) continue
    if (!best || prefix > (best.dst ? best.dst.prefix : 0)) best = r
  }
  return best !== null && best.gateway === null && best.dst !== null
}

/** The peer findings (PEER_CHECK_IDS) of the scenario's node, computed by scanning; `own` is lease 1's subnet. */
/**
 * nodeChecks' peer findings in the reference's terms: the reference writes its hints as text, the checks build theirs
 * as argv (`commands`, the same text for plain names), so each command must appear in its hint and is then left out.
 */
export function comparablePeerFindings(found: readonly Finding[]): Finding[] {
  return found
    .filter((f) => PEER_CHECK_IDS.has(f.id))
    .map(({commands, ...f}) => {
      for (const c of commands ?? [])
        if (!f.hint?.includes(c.shell)) throw new Error(`${f.id}: command ${c.shell} is not in its hint ${f.hint}`)
      return f
    })
}

export function referencePeerFindings(obs: NodeObservation, ctx: ClusterContext): Finding[] {
  const out: Finding[] = []
  const eff = ctx.effective!
  const own = ctx.leases.find((l) => l.attrs.publicIP === obs.publicIP)!.subnet
  const network = eff.ipv4!.network
  if (eff.vxlan) {
    const dev = `flannel.${eff.vxlan.vni}`
    const wanted = new Set<string>()
    for (const l of ctx.leases) {
      if (l.attrs.backendType !== 'vxlan' || l.vxlan === null) continue
      if (l.subnet.ip === own.ip && l.subnet.prefix === own.prefix) continue
      const p = {subnet: l.subnet, publicIP: l.attrs.publicIP, mac: l.vxlan.vtepMAC}
      const direct = eff.vxlan.directRouting && isDirectlyConnectedScan(obs.routes, p.publicIP)
      const s = formatCidr4(p.subnet)
      const desc = `${s} (${formatIPv4(p.publicIP)}, ${p.mac})`
      wanted.add(s)
      const matches = (r: RouteEntry) =>
        !!r.dst &&
        r.dst.ip === p.subnet.ip &&
        r.dst.prefix === p.subnet.prefix &&
        (direct ? r.gateway === p.publicIP : r.gateway === p.subnet.ip && r.dev === dev)
      if (!obs.routes.some(matches))
        out.push({
          id: 'route-missing',
          severity: 'error',
          subjects: [s],
          message: direct
            ? `no route ${s} via ${formatIPv4(p.publicIP)} (DirectRouting) for ${desc}`
            : `no route ${s} via ${formatIPv4(p.subnet.ip)} dev ${dev} onlink for ${desc}: pods there are unreachable (routes vanish when a NIC restarts)`,
          hint: direct
            ? `ip route replace ${s} via ${formatIPv4(p.publicIP)}`
            : `ip route replace ${s} via ${formatIPv4(p.subnet.ip)} dev ${dev} onlink`,
        })
      if (direct) continue
      if (!obs.neighs.some((n) => n.ip === p.subnet.ip && n.mac === p.mac))
        out.push({
          id: 'neigh-missing',
          severity: 'error',
          subjects: [s],
          message: `no neighbour entry ${formatIPv4(p.subnet.ip)} lladdr ${p.mac} on ${dev} for ${desc}`,
          hint: `ip neigh replace ${formatIPv4(p.subnet.ip)} lladdr ${p.mac} dev ${dev} nud permanent`,
        })
      if (!obs.fdb.some((f) => f.mac === p.mac && f.dst === p.publicIP))
        out.push({
          id: 'fdb-missing',
          severity: 'error',
          subjects: [s],
          message: `no FDB entry ${p.mac} dst ${formatIPv4(p.publicIP)} on ${dev} for ${desc}`,
          hint: `bridge fdb replace ${p.mac} dev ${dev} dst ${formatIPv4(p.publicIP)} self permanent`,
        })
    }
    for (const r of obs.routes) {
      if (r.dev !== dev || !r.dst || !containsCidr4(network, r.dst) || wanted.has(formatCidr4(r.dst))) continue
      out.push({
        id: 'route-stale',
        severity: 'warning',
        subjects: [formatCidr4(r.dst)],
        message: `route ${formatCidr4(r.dst)} dev ${dev} points at a subnet nobody leases any more`,
        hint: `ip route del ${formatCidr4(r.dst)} dev ${dev}`,
      })
    }
  }
  if (eff.backendType === 'host-gw' && obs.ifaceName) {
    const iface = obs.ifaceName
    const missing: Finding[] = []
    for (const l of ctx.leases) {
      if (l.attrs.backendType !== 'host-gw') continue
      if (l.subnet.ip === own.ip && l.subnet.prefix === own.prefix) continue
      const s = formatCidr4(l.subnet)
      if (!isDirectlyConnectedScan(obs.routes, l.attrs.publicIP)) {
        out.push({
          id: 'hostgw-peer-unreachable',
          severity: 'error',
          subjects: [s],
          message: `${s} (${formatIPv4(l.attrs.publicIP)}) is not on a directly connected subnet of ${iface}: host-gw cannot route to it and its pods are unreachable from here`,
          hint: 'host-gw needs every node on one L2 segment; use the vxlan backend (DirectRouting keeps plain routes where possible)',
        })
        continue
      }
      const cur = obs.routes.filter((r) => r.dst && r.dst.ip === l.subnet.ip && r.dst.prefix === l.subnet.prefix)
      if (cur.some((r) => r.gateway === l.attrs.publicIP && r.dev === iface)) continue
      const gw = formatIPv4(l.attrs.publicIP)
      missing.push({
        id: 'route-missing',
        severity: 'error',
        subjects: [s],
        message: `no route ${s} via ${gw} dev ${iface} (host-gw): pods there are unreachable (routes vanish when a NIC restarts)`,
        hint: `ip route replace ${s} via ${gw} dev ${iface}`,
      })
    }
    out.push(...missing)
  }
  return out
}
