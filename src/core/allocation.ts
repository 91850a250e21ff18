/**
 * Subnet allocation with flanneld's policy (docs/flannel.md §4.1, §4.2), computed in O(n log n): reuse the lease
 * with our PublicIP, else the previous subnet from subnet.env, else a uniform pick among the first 100 free
 * subnets from SubnetMin. The randomness is passed in.
 */

import type {EffectiveConfig, NetworkConfig} from './config.js'
import {totalSubnets4} from './config.js'
import {type Cidr4, size4} from './ipv4.js'
import {isLeaseCompatible, type Lease, type SlotRange, takenSlotSpans} from './leases.js'

/** flanneld's bag size: the first this-many free subnets from SubnetMin. */
export const BAG_SIZE = 100

/**
 * The first `limit` free subnets (network addresses) in [SubnetMin, SubnetMax], ascending. A slot is taken when
 * any key overlaps it (flannel's IP4Net.Overlaps), whatever the key's prefix or range.
 */
export function freeSubnets(e: SlotRange, taken: readonly Cidr4[], limit = BAG_SIZE): number[] {
  const total = totalSubnets4(e)
  if (total === 0 || limit <= 0) return []
  const size = size4(e.subnetLen)
  const out: number[] = []
  let slot = 0
  const take = (upTo: number) => {
    for (; slot < upTo && out.length < limit; slot++) out.push(e.subnetMin + slot * size)
  }
  for (const [a, b] of takenSlotSpans(e, taken)) {
    take(a)
    if (out.length >= limit) return out
    slot = Math.max(slot, b + 1)
  }
  take(total)
  return out
}

export type AcquirePlan =
  | {kind: 'reuse'; lease: Lease; deleted: Lease[]}
  | {kind: 'create'; subnet: Cidr4; why: 'previous' | 'allocated'; deleted: Lease[]; candidates: number}
  | {kind: 'exhausted'; deleted: Lease[]}

export interface AcquireInput {
  readonly config: NetworkConfig
  readonly effective: EffectiveConfig
  /** Every lease listed, in any order. */
  readonly leases: readonly Lease[]
  readonly publicIP: number
  /** FLANNEL_SUBNET from an earlier subnet.env, as a network. */
  readonly previous: Cidr4 | null
  /** A number in [0, 1). */
  readonly random: number
}

/**
 * flanneld's tryAcquireLease as a decision: the first lease in etcd key order with our PublicIP is reused if it is
 * compatible, and deleted if not (its subnet stays blocked for this round, as in flannel); then the previous subnet
 * if no key holds it and it is compatible; then a pick from the bag.
 */
export function planAcquire(i: AcquireInput): AcquirePlan {
  const deleted: Lease[] = []
  // The first lease in etcd key order with our PublicIP (a scan, not a sort: usually there are none or one).
  let mine: Lease | undefined
  for (const l of i.leases) if (l.attrs.publicIP === i.publicIP && (mine === undefined || l.key < mine.key)) mine = l
  if (mine) {
    if (isLeaseCompatible(i.config, i.effective, mine)) return {kind: 'reuse', lease: mine, deleted}
    deleted.push(mine)
  }
  const e = i.effective.ipv4!
  const prev = i.previous
  if (
    prev &&
    !i.leases.some((l) => l.subnet.ip === prev.ip && l.subnet.prefix === prev.prefix) &&
    isLeaseCompatible(i.config, i.effective, {subnet: prev, ipv6Subnet: null})
  ) {
    return {kind: 'create', subnet: prev, why: 'previous', deleted, candidates: 1}
  }
  const bag = freeSubnets(
    e,
    i.leases.map((l) => l.subnet),
  )
  if (bag.length === 0) return {kind: 'exhausted', deleted}
  const pick = bag[Math.min(bag.length - 1, Math.floor(i.random * bag.length))]!
  return {kind: 'create', subnet: {ip: pick, prefix: e.subnetLen}, why: 'allocated', deleted, candidates: bag.length}
}
