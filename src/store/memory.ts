/**
 * An in-memory FlannelStore with etcd v3's semantics: one store revision that every write moves on, per-key create and
 * mod revisions and versions, leases with TTLs that run on an injected clock (an expired lease deletes its keys, as
 * etcd's lessor does), and the same guards as EtcdStore (a lost guard is the same ConflictError). The service tests
 * run against it in process; test/store/contract.ts proves it and EtcdStore agree.
 *
 * Besides the port it offers what a test needs to play the other writers in the cluster (a flanneld renewing, an
 * operator with etcdctl): unconditional put/delete, grant/revoke, and a hook that runs before each guarded write.
 */

import {type KeyLayout, keyLayout} from '../core/keys.js'
import {classifyKeys, type NetworkSnapshot, type RawKV} from '../core/leases.js'
import {alreadyExists, casLost} from './conflicts.js'
import type {DeleteOutcome, FlannelStore, GuardedKey, LostGuard, WriteOptions, WriteResult} from './port.js'

interface Entry {
  value: string
  createRevision: number
  modRevision: number
  version: number
  lease: string
}

export interface MemoryStoreOptions {
  prefix?: string
  /** The clock leases run on, in ms (default Date.now). */
  now?: () => number
}

/** A write the store is about to apply; the hook may change the store first (a racing writer). */
export type PendingWrite = {op: 'put' | 'create'; key: string} | {op: 'delete'; keys: string[]}

export class MemoryStore implements FlannelStore {
  readonly layout: KeyLayout
  readonly source = 'memory'
  readonly api = 'v3'
  /** The store revision: etcd starts at 1 and moves on with every write. */
  revision = 1
  /** Runs before each guarded write, before its guard is compared. */
  beforeWrite: ((w: PendingWrite) => void | Promise<void>) | undefined
  /** How many times each port method was called (tests assert what was, and was not, written). */
  readonly calls = {readNetwork: 0, getKey: 0, leaseTtls: 0, putIfUnchanged: 0, createIfAbsent: 0, deleteGuarded: 0}
  closed = false

  private readonly kvs = new Map<string, Entry>()
  private readonly leases = new Map<string, {ttlSeconds: number; expiresAt: number}>()
  private nextLease = 0x694d_0000_0000_0001n
  private readonly now: () => number

  constructor(o: MemoryStoreOptions = {}) {
    this.layout = keyLayout(o.prefix ?? '/coreos.com/network')
    this.now = o.now ?? Date.now
  }

  // --- the port

  async readNetwork(): Promise<NetworkSnapshot> {
    this.calls.readNetwork++
    this.expire()
    const kvs = [...this.kvs.keys()]
      .filter((k) => k.startsWith(this.layout.range))
      .sort(byBytes)
      .map((k) => this.raw(k)!)
    return classifyKeys(this.layout, kvs, String(this.revision))
  }

  async getKey(key: string): Promise<RawKV | null> {
    this.calls.getKey++
    this.expire()
    return this.raw(key)
  }

  async leaseTtls(
    ids: Iterable<string>,
    onProgress?: (done: number, total: number) => void,
  ): Promise<Map<string, number>> {
    this.calls.leaseTtls++
    this.expire()
    const unique = [...new Set([...ids].filter((id) => id !== '0'))]
    const out = new Map<string, number>()
    for (const id of unique) {
      const l = this.leases.get(id)
      // etcd's TimeToLive: the remaining seconds truncated; -1 for a lease that expired or never existed.
      out.set(id, l ? Math.floor((l.expiresAt - this.now()) / 1000) : -1)
      onProgress?.(out.size, unique.length)
    }
    return out
  }

  async putIfUnchanged(key: string, value: string, modRevision: string, opts: WriteOptions = {}): Promise<WriteResult> {
    this.calls.putIfUnchanged++
    await this.beforeWrite?.({op: 'put', key})
    this.expire()
    const cur = this.kvs.get(key)
    if (!cur || String(cur.modRevision) !== modRevision) throw casLost(key, modRevision, this.raw(key))
    return this.write(key, value, opts)
  }

  async createIfAbsent(key: string, value: string, opts: WriteOptions = {}): Promise<WriteResult> {
    this.calls.createIfAbsent++
    await this.beforeWrite?.({op: 'create', key})
    this.expire()
    if (this.kvs.has(key)) throw alreadyExists(key, this.raw(key))
    return this.write(key, value, opts)
  }

  async deleteGuarded(keys: readonly GuardedKey[]): Promise<DeleteOutcome> {
    this.calls.deleteGuarded++
    await this.beforeWrite?.({op: 'delete', keys: keys.map((k) => k.key)})
    this.expire()
    const deleted: string[] = []
    const lost: LostGuard[] = []
    for (const k of keys) {
      const cur = this.kvs.get(k.key)
      if (cur && String(cur.modRevision) === k.modRevision) deleted.push(k.key)
      else lost.push({key: k.key, expectedModRevision: k.modRevision, now: this.raw(k.key)})
    }
    // One transaction for everything that still holds, as EtcdStore's retry without the changed keys ends up.
    if (deleted.length > 0) {
      this.revision++
      for (const key of deleted) this.kvs.delete(key)
    }
    return {deleted, lost}
  }

  close(): void {
    this.closed = true
  }

  // --- the other writers

  /** An unconditional put, as etcdctl put or a flanneld renewal does; returns the key as stored. */
  put(key: string, value: string, o: {ttlSeconds?: number; leaseId?: string} = {}): RawKV {
    this.expire()
    const leaseId = o.leaseId ?? (o.ttlSeconds === undefined ? '0' : this.grant(o.ttlSeconds))
    if (leaseId !== '0' && !this.leases.has(leaseId)) throw new Error(`lease ${leaseId} not found`)
    this.revision++
    this.set(key, value, leaseId)
    return this.raw(key)!
  }

  /** An unconditional delete; true when the key existed. */
  delete(key: string): boolean {
    this.expire()
    if (!this.kvs.has(key)) return false
    this.revision++
    this.kvs.delete(key)
    return true
  }

  grant(ttlSeconds: number): string {
    const id = String(this.nextLease++)
    this.leases.set(id, {ttlSeconds, expiresAt: this.now() + ttlSeconds * 1000})
    return id
  }

  /** Revokes a lease and deletes its keys in one revision, as etcd does. */
  revoke(leaseId: string): void {
    if (!this.leases.delete(leaseId)) return
    const bound = [...this.kvs].filter(([, e]) => e.lease === leaseId).map(([k]) => k)
    if (bound.length === 0) return
    this.revision++
    for (const k of bound) this.kvs.delete(k)
  }

  /** The leases that exist (granted, not yet revoked or expired). */
  leaseIds(): string[] {
    this.expire()
    return [...this.leases.keys()]
  }

  // --- internals

  private write(key: string, value: string, opts: WriteOptions): WriteResult {
    const leaseId = opts.ttlSeconds === undefined ? '0' : this.grant(opts.ttlSeconds)
    this.revision++
    this.set(key, value, leaseId)
    return {revision: String(this.revision), leaseId}
  }

  private set(key: string, value: string, lease: string): void {
    const cur = this.kvs.get(key)
    this.kvs.set(key, {
      value,
      createRevision: cur?.createRevision ?? this.revision,
      modRevision: this.revision,
      version: (cur?.version ?? 0) + 1,
      lease,
    })
  }

  private raw(key: string): RawKV | null {
    const e = this.kvs.get(key)
    if (!e) return null
    return {
      key,
      value: e.value,
      createRevision: String(e.createRevision),
      modRevision: String(e.modRevision),
      version: String(e.version),
      lease: e.lease,
    }
  }

  /** Leases whose time is up are revoked, oldest first. */
  private expire(): void {
    const now = this.now()
    const due = [...this.leases].filter(([, l]) => l.expiresAt <= now).sort((a, b) => a[1].expiresAt - b[1].expiresAt)
    for (const [id] of due) this.revoke(id)
  }
}

/** etcd orders keys by their bytes. */
function byBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b))
}
