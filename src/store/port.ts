/**
 * The store port: what the services need from a flannel keyspace, and nothing about how it is stored. Implemented by
 * the etcd v3 store (etcd-store.ts), the etcd v2 store (etcd-v2.ts), an offline snapshot (reader.ts, reads only) and
 * an in-memory twin (memory.ts) that every service test runs against.
 *
 * Keyspace-neutral terms:
 * - a *revision* is etcd v3's store revision, or etcd v2's index (X-Etcd-Index); each key's `modRevision` is its v3
 *   mod revision or its v2 modifiedIndex, and every guard compares on it;
 * - a *lease* is an etcd v3 lease, or for v2 a synthetic ID (`v2:<key>`) naming a key's own TTL; `'0'` means none.
 *
 * Every write is guarded. A lost guard is a ConflictError (exit 3) whose details say what the key holds now:
 * `CAS_LOST` with `{key, expectedModRevision, now}`, `ALREADY_EXISTS` with `{key, now}` (see conflicts.ts).
 */

import type {KeyLayout} from '../core/keys.js'
import type {NetworkSnapshot, RawKV} from '../core/leases.js'
import type {ChangeCallbacks, WatchHandle} from './watch.js'

export type {WatchHandle} from './watch.js'

export type Progress = (done: number, total: number) => void

/**
 * The subnet keys of one read, decoded one at a time on demand (the order and the RawKV are exactly those of
 * readNetwork()'s `subnets`). A v3 store keeps the Range answer's bytes (one off-heap buffer) and decodes kv(i) from
 * them, so a listing can wait for 65,535 TTLs without holding 65,535 decoded keys (issue 12); other readers wrap
 * their snapshot (subnetListing).
 */
export interface SubnetListing {
  readonly revision: string
  /** How many subnet keys. */
  readonly count: number
  /** Subnet key `i` (0 <= i < count), a new RawKV each call. */
  kv(i: number): RawKV
  /** kv(i).lease, without decoding the rest. */
  lease(i: number): string
}

/** A listing over a snapshot already decoded (readers without a raw read). */
export function subnetListing(snap: NetworkSnapshot): SubnetListing {
  const kvs = snap.subnets
  return {revision: snap.revision, count: kvs.length, kv: (i) => kvs[i]!, lease: (i) => kvs[i]!.lease}
}

/** Where read commands get their data: a live etcd (v3 or v2 keyspace) or an offline snapshot. */
export interface NetworkReader {
  readonly layout: KeyLayout
  /** 'etcd' for a live cluster, or the snapshot's file name. */
  readonly source: string
  /** Everything under the prefix at one revision: config, subnet keys and foreign keys. */
  readNetwork(): Promise<NetworkSnapshot>
  /**
   * The subnet keys only, as a SubnetListing (leases ls). Readers without it are read through readNetwork()
   * (readSubnets() below).
   */
  readSubnets?(): Promise<SubnetListing>
  /** Remaining TTLs in seconds per lease ID (-1: expired or revoked; absent: unknown); null when the source has none. */
  leaseTtls(ids: Iterable<string>, onProgress?: Progress): Promise<Map<string, number> | null>
  close(): void
  /** The etcd keyspace read: 'v3', or 'v2' (flannel <= 0.17, over the HTTP API); absent for snapshots. */
  readonly api?: 'v2' | 'v3'
  /**
   * The same etcd's other keyspace (v2 for a v3 reader and the reverse), opened on first use for doctor's keyspace
   * checks; null when it does not answer. Absent for snapshots and with an explicit --etcd-api v3.
   */
  readonly otherKeyspace?: () => Promise<NetworkReader | null>
  /** v2 readers: the `ETCDCTL_API=2 etcdctl` connection flags for printed commands. */
  readonly v2EtcdctlFlags?: () => string
  /** v2 readers: false when the last read saw only the config and the subnets directory (v2 auth allowed no more). */
  readonly v2SawWholePrefix?: () => boolean
}

/** What a successful write did. */
export interface WriteResult {
  /** The key's new mod revision (v3: the transaction's revision; v2: the node's modifiedIndex). */
  readonly revision: string
  /** The lease the key is now bound to, '0' for none. */
  readonly leaseId: string
}

export interface WriteOptions {
  /**
   * Bind the key to a new lease of this many seconds (v3: granted first and revoked again when the guard fails, as
   * flanneld's createSubnet does; v2: the key's own TTL). Without it the key has no lease (a reservation).
   */
  readonly ttlSeconds?: number
}

export interface GuardedKey {
  readonly key: string
  readonly modRevision: string
}

export interface LostGuard {
  readonly key: string
  readonly expectedModRevision: string
  /** What the key holds now; null when it no longer exists. */
  readonly now: RawKV | null
}

export interface DeleteOutcome {
  readonly deleted: string[]
  /** Keys whose mod revision moved since they were listed: not deleted, with what they hold now. */
  readonly lost: LostGuard[]
}

/** A live keyspace the services can read and write, every write guarded. */
export interface FlannelStore extends NetworkReader {
  readonly api: 'v2' | 'v3'
  /** Remaining TTLs per lease ID; a live store always knows them (absent: the lookup found nothing). */
  leaseTtls(ids: Iterable<string>, onProgress?: Progress): Promise<Map<string, number>>
  /** One key, or null when it does not exist. */
  getKey(key: string): Promise<RawKV | null>
  /** Puts `value` at `key` only if the key's mod revision is still `modRevision` (CAS_LOST otherwise). */
  putIfUnchanged(key: string, value: string, modRevision: string, opts?: WriteOptions): Promise<WriteResult>
  /** Creates `key` only if it does not exist (ALREADY_EXISTS otherwise). */
  createIfAbsent(key: string, value: string, opts?: WriteOptions): Promise<WriteResult>
  /**
   * Deletes keys, each guarded on the mod revision it was listed at (batched where the store can): every key still
   * as listed is deleted, every key that changed is reported in `lost` and kept. Never throws for a lost guard.
   */
  deleteGuarded(keys: readonly GuardedKey[]): Promise<DeleteOutcome>
}

/**
 * What `leases watch` needs from a live keyspace (v3 or v2): list, watch the subnets with each key's previous value,
 * remaining TTLs, and where a lost watch can start again.
 */
export interface LeaseWatchSource {
  readonly api: 'v2' | 'v3'
  readonly layout: KeyLayout
  /**
   * Whether asking for a deleted key's lease after the fact tells an expiry from a deletion (v3: a TimeToLive of
   * -1 means the lease is gone). v2 says so in the event itself and keeps nothing afterwards.
   */
  readonly leaseTellsExpiry: boolean
  readNetwork(): Promise<NetworkSnapshot>
  leaseTtls(ids: Iterable<string>): Promise<Map<string, number>>
  /** Watches the subnets from the revision (v2: index) after `fromRevision`. */
  watchSubnetChanges(fromRevision: string, cb: ChangeCallbacks): Promise<WatchHandle>
  /**
   * After a watch from `fromRevision` was lost to compaction (v2: a cleared event index): the oldest revision (v2:
   * index) a watch can start from, or null when unknown.
   */
  compactedRevision(fromRevision: string): Promise<string | null>
  close(): void
}

/** The reader's subnet keys: its own readSubnets() where it has one, else readNetwork()'s. */
export async function readSubnets(reader: NetworkReader): Promise<SubnetListing> {
  return reader.readSubnets ? reader.readSubnets() : subnetListing(await reader.readNetwork())
}
