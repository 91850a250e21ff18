/**
 * The vxlan device's `local` address, by flanneld release, and the one rule that holds for every release: `local` must
 * be an address of the host, or the kernel cannot send from it (1:1 NAT, where the PublicIP is the router's, drops all
 * vxlan traffic that way). Shared by the agent (what to create), its /readyz and doctor --local (what to judge). Pure.
 */

import {formatIPv4} from './ipv4.js'
import {atLeast, describeNodeRelease, type NodeRelease, VXLAN_LOCAL_EXTADDR_SINCE} from './release.js'

export interface VxlanLocalFacts {
  /** The node's PublicIP (--public-ip, else the interface address). */
  readonly publicIP: number
  /** The external interface's own address (flannel's IfaceAddr). */
  readonly ifaceAddress: number
  /** Every IPv4 address of the host; null when unknown. */
  readonly hostAddresses: readonly number[] | null
}

/**
 * What the agent sets: the PublicIP, as flannel does since v0.27.4, when it is an address of this host; otherwise the
 * interface address, as flanneld up to v0.27.3 always did (the PublicIP then only goes into the lease, where peers use
 * it as the FDB `dst`).
 */
export function agentVxlanLocal(f: VxlanLocalFacts): number {
  if (f.hostAddresses === null || f.hostAddresses.includes(f.publicIP)) return f.publicIP
  return f.ifaceAddress
}

/** The `local` a node's release gives its device; both candidates when the release is unknown. */
export function expectedVxlanLocals(f: VxlanLocalFacts, release: NodeRelease | null): number[] {
  const extAddr = atLeast(release, VXLAN_LOCAL_EXTADDR_SINCE)
  if (extAddr === true) return [f.publicIP]
  if (extAddr === false) return [f.ifaceAddress]
  return f.publicIP === f.ifaceAddress ? [f.publicIP] : [f.ifaceAddress, f.publicIP]
}

export type VxlanLocalProblem =
  | {readonly kind: 'not-host-address'; readonly local: string; readonly message: string}
  | {readonly kind: 'unexpected'; readonly local: string; readonly expected: number[]; readonly message: string}

/**
 * Judges a device's `local` (null when the device has none): not an address of the host is an error whatever the
 * release; otherwise it must be what the node's release sets (either candidate when the release is unknown).
 */
export function judgeVxlanLocal(
  local: number | null,
  localText: string,
  f: VxlanLocalFacts,
  release: NodeRelease | null,
): VxlanLocalProblem | null {
  if (local !== null && f.hostAddresses !== null && !f.hostAddresses.includes(local)) {
    return {
      kind: 'not-host-address',
      local: localText,
      message:
        `sends from local ${localText}, which is not an address of this host: the kernel cannot send vxlan packets from it and the node is cut off ` +
        `(behind 1:1 NAT the PublicIP is the router's; flanneld up to v0.27.3 and flannelctl agent use the interface address ${formatIPv4(f.ifaceAddress)} there, ` +
        `flanneld v0.27.4 and later set local to the PublicIP and break the same way)`,
    }
  }
  const expected = expectedVxlanLocals(f, release)
  if (local !== null && expected.includes(local)) return null
  const who = release === null ? 'flanneld' : describeNodeRelease(release)
  return {
    kind: 'unexpected',
    local: localText,
    expected,
    message: `sends from local ${localText}, but ${who} sets ${expected.map(formatIPv4).join(' or ')} (${release === null ? 'the interface address up to v0.27.3, the PublicIP from v0.27.4' : atLeast(release, VXLAN_LOCAL_EXTADDR_SINCE) ? 'the PublicIP' : 'the interface address'}): peers answer to an address that is not this node's`,
  }
}
