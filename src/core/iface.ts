/**
 * Choosing the external interface and the PublicIP as flanneld does (docs/flannel.md §8.1), from the links and
 * routes the dataplane layer read. Pure.
 */

import {type Cidr4, formatIPv4, parseIPv4} from './ipv4.js'
import type {LinkState, RouteEntry} from './vxlan.js'

export interface InterfaceChoice {
  readonly name: string
  readonly mtu: number
  /** The interface's address (first IPv4). */
  readonly address: number
  /** The published address: --public-ip, else the interface address. */
  readonly publicIP: number
  readonly how: string
}

export interface InterfaceRequest {
  readonly ifaces: readonly string[]
  readonly regexes: readonly string[]
  readonly publicIP: number | null
}

function firstV4(l: LinkState): Cidr4 | undefined {
  return l.addresses[0]
}

/** Returns the choice, or an error message naming what was tried. */
export function chooseInterface(
  links: readonly LinkState[],
  routes: readonly RouteEntry[],
  r: InterfaceRequest,
): InterfaceChoice | {error: string} {
  const usable = (l: LinkState | undefined): l is LinkState => l !== undefined && firstV4(l) !== undefined && l.mtu > 0
  const done = (l: LinkState, how: string, address = firstV4(l)!.ip): InterfaceChoice => ({
    name: l.name,
    mtu: l.mtu,
    address,
    publicIP: r.publicIP ?? address,
    how,
  })
  if (r.ifaces.length === 0 && r.regexes.length === 0) {
    if (r.publicIP !== null) {
      const l = links.find((x) => x.addresses.some((a) => a.ip === r.publicIP))
      if (!l)
        return {
          error: `Failed to find any valid interface to use: no interface has ${formatIPv4(r.publicIP)} (for a NAT address, name the interface with --iface)`,
        }
      return done(l, `the interface that has --public-ip ${formatIPv4(r.publicIP)}`, r.publicIP)
    }
    const def = routes.find((x) => x.dst === null && x.dev !== null)
    const l = def ? links.find((x) => x.name === def.dev) : undefined
    if (!usable(l))
      return {error: 'Failed to find any valid interface to use: no default route with an IPv4 interface; pass --iface'}
    return done(l, `the default route's interface ${l.name}`)
  }
  for (const want of r.ifaces) {
    const ip = parseIPv4(want)
    const l = ip !== null ? links.find((x) => x.addresses.some((a) => a.ip === ip)) : links.find((x) => x.name === want)
    if (usable(l)) return done(l, `--iface ${want}`, ip ?? firstV4(l)!.ip)
  }
  for (const re of r.regexes) {
    let rx: RegExp
    try {
      rx = new RegExp(re)
    } catch {
      return {error: `invalid --iface-regex "${re}"`}
    }
    for (const l of links) {
      const a = l.addresses.find((x) => rx.test(formatIPv4(x.ip)))
      if (a && l.mtu > 0) return done(l, `--iface-regex ${re} (address)`, a.ip)
    }
    const l = links.find((x) => rx.test(x.name))
    if (usable(l)) return done(l, `--iface-regex ${re} (name)`)
  }
  return {
    error: `Failed to find any valid interface to use: none of ${[...r.ifaces.map((x) => `--iface ${x}`), ...r.regexes.map((x) => `--iface-regex ${x}`)].join(', ')} matched`,
  }
}
