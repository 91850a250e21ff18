/**
 * What flanneld does with a reservation (a subnet key without a TTL or etcd lease), per keyspace and so per release,
 * from flannel's lease code (docs/flannel.md §1.5; upstream flannel-io/flannel#1329). Pure.
 *
 * - etcd v2 keyspace, flanneld ≤ v0.17 (subnet/etcdv2): a key without a TTL has a zero Expiration. A running owner
 *   sees its key change and computes `time.Until(zero) - renewMargin`, which overflows to ~292 years: it never renews,
 *   so the reservation holds. A starting owner that finds it by PublicIP keeps it TTL-less (`// Not a reservation`).
 * - etcd v3 keyspace, flanneld ≥ v0.18 (subnet/etcd, pkg/subnet/etcd up to v0.28.9): TimeToLive of lease 0 answers
 *   TTL -1, so the Expiration is now - 1 s, never zero. A running owner sees its key change (`Waiting for -1h0m1s to
 *   renew lease`) and re-leases it at once with a new 24 h lease; a starting owner that finds it by PublicIP re-leases it
 *   too (same subnet, 24 h lease). A reservation only holds while its owner is stopped.
 */

import type {RawKV} from './leases.js'

export type Keyspace = 'v2' | 'v3'

/** Whether the flanneld reading this keyspace undoes a reservation of its own subnet while it runs and on start. */
export function ownerUndoesReservation(api: Keyspace): boolean {
  return api === 'v3'
}

/** What happened to a key after we reserved it (wrote `value` without a lease at `revision`). */
export type ReservationOutcome =
  | {readonly kind: 'kept'}
  | {readonly kind: 're-leased'; readonly leaseId: string; readonly modRevision: string}
  | {readonly kind: 'rewritten'; readonly modRevision: string}
  | {readonly kind: 'deleted'}

export function reservationOutcome(revision: string, now: RawKV | null): ReservationOutcome {
  if (now === null) return {kind: 'deleted'}
  if (now.modRevision === revision) return {kind: 'kept'}
  if (now.lease !== '0') return {kind: 're-leased', leaseId: now.lease, modRevision: now.modRevision}
  return {kind: 'rewritten', modRevision: now.modRevision}
}

/** The note said with every reserve: what the owner's flanneld will do with it, per keyspace. */
export function reservationNote(api: Keyspace): string {
  return api === 'v3'
    ? 'flanneld ≥ v0.18 (etcd v3) undoes a reservation of its own subnet: while running at once, and when it starts (it takes the same subnet back with a new 24h lease). The reservation holds only while that node is stopped (flannel-io/flannel#1329).'
    : 'flanneld ≤ v0.17 (etcd v2) keeps a reservation: a running owner never renews a key without a TTL, and a starting one reuses it by PublicIP and leaves it TTL-less.'
}

/** What works instead, for a reservation a running owner undid (shell-quoting is the caller's). */
export function reservationAdvice(api: Keyspace, subnet: string, publicIP: string): string {
  if (api === 'v2')
    return `flanneld ≤ v0.17 keeps reservations; something else rewrote the key: check who writes it (flannelctl leases ls), then run flannelctl leases reserve ${subnet} again`
  return `stop flanneld on ${publicIP}, run flannelctl leases reserve ${subnet} again and keep it stopped: the subnet then stays reserved and never expires; when flanneld starts again it takes ${subnet} back as an ordinary 24h lease (no flanneld ≥ v0.18 keeps a reservation while it runs)`
}
