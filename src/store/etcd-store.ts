/**
 * The store layer: every etcd call flannelctl makes goes through here. It speaks etcd's v3 API with the etcd3
 * client, reads everything under the prefix at one revision, and maps every client failure to a FlannelctlError
 * once (exit 69 for unreachable, TLS or auth failures).
 */

import type {Etcd3, IKeyValue} from 'etcd3'

import {FlannelctlError, UnavailableError, UsageError} from '../core/errors.js'
import {MAX_LEASE_TTL_SECONDS} from '../core/duration.js'
import {type KeyLayout, keyLayout} from '../core/keys.js'
import {classifyKeys, type NetworkSnapshot, type RawKV} from '../core/leases.js'
import {alreadyExists, casLost} from './conflicts.js'
import {notEtcd, TLS_FAILURE, tlsFailed, unreachable} from './failures.js'
import {normaliseEndpoint, readPem} from './endpoints.js'
import {tlsCa} from './extra-ca.js'
import {collectGarbage} from './heap.js'
import type {
  DeleteOutcome,
  FlannelStore,
  GuardedKey,
  LostGuard,
  Progress,
  SubnetListing,
  WriteOptions,
  WriteResult,
} from './port.js'
import {
  GRPC_DEADLINE_EXCEEDED,
  GRPC_OUT_OF_RANGE,
  GRPC_PERMISSION_DENIED,
  GRPC_UNAVAILABLE,
  GrpcError,
  LeanV3Client,
  prefixEnd,
  decodeKvAt,
  kvKeyAt,
  kvLeaseAt,
} from './v3-lean.js'
import type {ChangeCallbacks, WatchCallbacks, WatchHandle} from './watch.js'

/** How mapError sees a failure, whichever client (the lean one or etcd3) raised it. */
export type V3ErrorKind = 'auth-failed' | 'permission-denied' | 'out-of-range' | 'unavailable' | 'etcd'

/** Set once etcd3 has been loaded (only then can an error be one of its classes), with how to close a client. */
let etcd3: {errorKind: (e: unknown) => V3ErrorKind | null; close: (c: Etcd3) => void} | undefined

function leanErrorKind(e: GrpcError): V3ErrorKind {
  if (/authentication failed/i.test(e.message)) return 'auth-failed'
  if (e.grpcCode === GRPC_PERMISSION_DENIED || /permission denied/i.test(e.message)) return 'permission-denied'
  if (e.grpcCode === GRPC_OUT_OF_RANGE) return 'out-of-range'
  if (e.grpcCode === GRPC_UNAVAILABLE || e.grpcCode === GRPC_DEADLINE_EXCEEDED) return 'unavailable'
  return 'etcd'
}

export interface ConnectionOptions {
  readonly endpoints: readonly string[]
  readonly prefix: string
  readonly cacert?: string
  readonly cert?: string
  readonly key?: string
  readonly user?: string
  readonly password?: string
  readonly dialTimeoutMs: number
  readonly commandTimeoutMs: number
}

export function toRawKV(kv: IKeyValue): RawKV {
  return {
    key: kv.key.toString('utf8'),
    value: kv.value.toString('utf8'),
    createRevision: String(kv.create_revision),
    modRevision: String(kv.mod_revision),
    version: String(kv.version),
    lease: String(kv.lease),
  }
}

/** etcd's default --max-txn-ops. */
export const MAX_TXN_OPS = 128
/** TimeToLive calls in flight at once. */
const LEASE_LOOKUPS = 64
/** A full collection every this many TimeToLive answers keeps the per-call garbage from growing the heap (heap.ts).
 * `leases ls --json` at 65,535 leases over the lean client (load ~15): never 348 MB peak RSS (7.4 s CPU), every
 * 8,192 246 MB (6.6 s), every 2,048 210 MB (8.2 s). (Over etcd3 it took every 2,048 to stay under 300 MB.) */
const GC_EVERY = 8192

export class EtcdStore implements FlannelStore {
  readonly layout: KeyLayout
  readonly source = 'etcd'
  readonly api = 'v3'
  /** Every read: Range and LeaseTimeToLive over node:http2 (v3-lean.ts). */
  private readonly lean: LeanV3Client
  /** Writes, watches and leases: etcd3, loaded and connected on the first of them. */
  private legacy: Promise<Etcd3> | undefined
  private legacyClient: Etcd3 | undefined
  private closed = false
  private readonly endpoints: readonly string[]
  private readonly credentials: {ca?: Buffer; cert?: Buffer; key?: Buffer}
  private readonly rangeStart: Buffer
  private readonly rangeEnd: Buffer

  private constructor(private readonly opts: ConnectionOptions) {
    this.layout = keyLayout(opts.prefix)
    this.endpoints = opts.endpoints.map(normaliseEndpoint)
    const tls = this.endpoints.some((e) => e.startsWith('https://'))
    if (!tls && (opts.cacert || opts.cert || opts.key)) {
      // etcdctl would also talk plain http here; say why the certificates are not used.
      process.emitWarning?.('--cacert/--cert/--key are ignored for http:// endpoints; use https:// endpoints for TLS')
    }
    this.credentials = tls
      ? {
          ca: tlsCa(opts.cacert),
          cert: opts.cert ? readPem(opts.cert, '--cert') : undefined,
          key: opts.key ? readPem(opts.key, '--key') : undefined,
        }
      : {}
    this.lean = new LeanV3Client({
      endpoints: this.endpoints,
      ...this.credentials,
      user: opts.user || undefined,
      password: opts.password,
      authTimeoutMs: opts.dialTimeoutMs,
    })
    this.rangeStart = Buffer.from(this.layout.range, 'utf8')
    this.rangeEnd = prefixEnd(this.rangeStart)
  }

  /** A client that has not talked to etcd yet: the first call proves it answers (see ensureReached). */
  static create(opts: ConnectionOptions): EtcdStore {
    return new EtcdStore(opts)
  }

  /** Connects and proves the cluster answers within the dial timeout. */
  static async open(opts: ConnectionOptions): Promise<EtcdStore> {
    const store = new EtcdStore(opts)
    try {
      await store.ensureReached()
    } catch (error) {
      store.close()
      throw error
    }
    return store
  }

  close(): void {
    this.closed = true
    this.lean.close()
    if (this.legacyClient) etcd3?.close(this.legacyClient)
  }

  /** etcd3, for writes, watches and leases: loaded on the first of them (read-only commands never load it). */
  private client(): Promise<Etcd3> {
    this.legacy ??= import('./etcd3-client.js').then((m) => {
      etcd3 = {errorKind: m.etcd3ErrorKind, close: m.closeEtcd3}
      const c = m.createEtcd3({
        endpoints: this.endpoints,
        ...this.credentials,
        user: this.opts.user,
        password: this.opts.password,
        dialTimeoutMs: this.opts.dialTimeoutMs,
        commandTimeoutMs: this.opts.commandTimeoutMs,
      })
      this.legacyClient = c
      if (this.closed) m.closeEtcd3(c)
      return c
    })
    return this.legacy
  }

  /**
   * The first call of a store proves etcd answers within --dial-timeout (exit 69 naming the endpoints otherwise);
   * a failed probe is tried again on the next call. Commands can therefore open a store before checking their input,
   * and a usage error still exits 2 when etcd is down.
   */
  private reached: Promise<void> | null = null

  private ensureReached(): Promise<void> {
    this.reached ??= this.timed('connect', this.opts.dialTimeoutMs, () =>
      this.lean.range(Buffer.from(this.layout.config, 'utf8'), undefined, this.opts.dialTimeoutMs),
    ).then(
      () => undefined,
      (error: unknown) => {
        this.reached = null
        throw error
      },
    )
    return this.reached
  }

  /** Runs one etcd call with the --command-timeout deadline and maps its failure. */
  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    await this.ensureReached()
    return this.timed(what, this.opts.commandTimeoutMs, fn)
  }

  private async timed<T>(what: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new GrpcError(GRPC_DEADLINE_EXCEEDED, `no answer within ${timeoutMs} ms`)),
        timeoutMs + 250,
      )
    })
    try {
      return await Promise.race([fn(), deadline])
    } catch (error) {
      throw this.mapError(error, what)
    } finally {
      clearTimeout(timer)
    }
  }

  mapError(error: unknown, what: string): Error {
    if (error instanceof FlannelctlError) return error
    const e = error as Error
    const kind = e instanceof GrpcError ? leanErrorKind(e) : (etcd3?.errorKind(e) ?? null)
    const where = this.endpoints.join(',')
    let msg = (e?.message ?? String(e)).replace(/\s+/g, ' ').trim()
    // grpc-js buries the cause: "14 UNAVAILABLE: No connection established. Last error: Error: connect ECONNREFUSED ..."
    const cause = /Last error: (?:Error: )?(.*?)\.?(?: Resolution note:.*)?$/.exec(msg)
    if (cause?.[1]) msg = cause[1]
    // and stamps some errors with the time: "Protocol error (2026-12-01T21:12:21.973Z)".
    msg = msg.replace(/ \(\d{4}-\d\d-\d\dT[\d:.]+Z\)/g, '')
    if (kind === 'auth-failed') {
      return new UnavailableError(
        `etcd at ${where} rejected user "${this.opts.user}": authentication failed`,
        'ETCD_AUTH_FAILED',
        'check --user/--password (or ETCDCTL_USER/ETCDCTL_PASSWORD)',
      )
    }
    if (kind === 'permission-denied') {
      return new UnavailableError(
        `etcd at ${where} denied ${what} to user "${this.opts.user ?? '(none)'}": permission denied`,
        'ETCD_PERMISSION_DENIED',
        `grant the user readwrite on ${this.layout.range}`,
      )
    }
    if (/authentication is not enabled/i.test(msg)) {
      // etcd's v2 and v3 auth are separate: a flanneld <= 0.17 cluster may have v2 auth on and v3 auth off.
      return new UnavailableError(
        `etcd at ${where} has authentication off on the v3 API, but --user "${this.opts.user ?? ''}" was given (v2 and v3 auth are separate; see ETCDCTL_API=3 etcdctl auth status)`,
        'ETCD_V3_AUTH_DISABLED',
        'leave out --user for the v3 API; --etcd-api v2 (and migrate v2-to-v3) use it for the v2 API only',
      )
    }
    if (/user name is empty|authentication is enabled|invalid auth token/i.test(msg)) {
      return new UnavailableError(
        `etcd at ${where} requires authentication: pass --user (and --password)`,
        'ETCD_AUTH_REQUIRED',
      )
    }
    if (kind === 'out-of-range' && /too large lease TTL/i.test(msg)) {
      return new UsageError(
        `etcd refused ${what}: the lease TTL is larger than etcd allows (${MAX_LEASE_TTL_SECONDS}s)`,
        'INVALID_TTL',
      )
    }
    if (this.endpoints.some((x) => x.startsWith('https://')) && TLS_FAILURE.test(msg))
      return tlsFailed(where, this.opts, msg)
    // grpc-js: an HTTP/1 server (or anything that is not HTTP/2) on the port gives "Protocol error"; an HTTP/2 server
    // that is not gRPC gives "Received HTTP status code ..." or a bad content-type.
    if (/^Protocol error|Received HTTP status code|content-type|malformed|RST_STREAM with code 1\b/i.test(msg))
      return notEtcd(where, msg)
    if (
      kind === 'unavailable' ||
      /UNAVAILABLE|DEADLINE|No connection established|ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN/i.test(
        msg,
      )
    ) {
      return unreachable(where, msg)
    }
    // Anything else etcd or its client raised (resource exhausted, a lease gone, an internal error) is the cluster's
    // answer, not a flaw in flannelctl: exit 69 with etcd's words. Only an error from elsewhere is reported as a bug.
    if (kind !== null) {
      return new UnavailableError(`etcd at ${where} failed ${what}: ${msg}`, 'ETCD_ERROR')
    }
    return e instanceof Error ? e : new Error(msg)
  }

  /** Everything under the prefix at one revision: config, subnet keys and foreign keys. */
  async readNetwork(): Promise<NetworkSnapshot> {
    const res = await this.call('a read', () =>
      this.lean.range(this.rangeStart, this.rangeEnd, this.opts.commandTimeoutMs),
    )
    return classifyKeys(this.layout, res.kvs, res.revision)
  }

  /**
   * The subnet keys, kept as the Range answer's bytes: classified as classifyKeys does (by each key, decoded and
   * dropped), each subnet kv decoded again only when asked for (SubnetListing).
   */
  async readSubnets(): Promise<SubnetListing> {
    const raw = await this.call('a read', () =>
      this.lean.rangeRaw(this.rangeStart, this.rangeEnd, this.opts.commandTimeoutMs),
    )
    const {bytes, start, end} = raw
    const at = new Uint32Array(raw.count)
    let count = 0
    const {config, subnets} = this.layout
    for (let i = 0; i < raw.count; i++) {
      const key = kvKeyAt(bytes, start[i]!, end[i]!)
      if (key !== config && key.startsWith(subnets)) at[count++] = i
    }
    return {
      revision: raw.revision,
      count,
      kv: (i) => decodeKvAt(bytes, start[at[i]!]!, end[at[i]!]!),
      lease: (i) => kvLeaseAt(bytes, start[at[i]!]!, end[at[i]!]!),
    }
  }

  /**
   * Remaining TTL in seconds of each distinct lease ID, with at most LEASE_LOOKUPS TimeToLive calls in flight.
   * An expired or revoked lease maps to -1; a lease whose lookup failed is absent from the result.
   */
  async leaseTtls(ids: Iterable<string>, onProgress?: Progress): Promise<Map<string, number>> {
    const unique = [...new Set([...ids].filter((id) => id !== '0'))]
    const out = new Map<string, number>()
    if (unique.length > 0) await this.ensureReached()
    let next = 0
    let done = 0
    const worker = async (): Promise<void> => {
      while (next < unique.length) {
        const id = unique[next++]!
        // The lean client enforces the deadline itself: no second timer per call on this hot path.
        let ttl: number
        try {
          ttl = await this.lean.timeToLive(id, this.opts.commandTimeoutMs)
        } catch (error) {
          throw this.mapError(error, 'a lease TTL lookup')
        }
        out.set(id, ttl)
        done++
        if (done % GC_EVERY === 0) collectGarbage()
        onProgress?.(done, unique.length)
      }
    }
    await Promise.all(Array.from({length: Math.min(LEASE_LOOKUPS, unique.length)}, worker))
    return out
  }

  /** One key, or null when it does not exist. */
  async getKey(key: string): Promise<RawKV | null> {
    const res = await this.call('a read', () =>
      this.lean.range(Buffer.from(key, 'utf8'), undefined, this.opts.commandTimeoutMs),
    )
    return res.kvs[0] ?? null
  }

  /** A transaction: put when `key`'s `field` revision equals `expected`, else read the key back. */
  private async txnPut(
    what: string,
    key: string,
    field: 'Mod' | 'Create',
    expected: string | number,
    value: string,
    leaseId: string,
  ): Promise<Txn> {
    const c = await this.client()
    const put = c.put(key).value(value)
    if (leaseId !== '0') put.lease(leaseId)
    const res = await this.call(what, () => c.if(key, field, '==', expected).then(put).else(c.get(key)).commit())
    if (res.succeeded) return {ok: true, revision: String(res.header.revision)}
    const kv = res.responses[0]?.response_range?.kvs[0]
    const now = kv ? toRawKV(kv) : null
    // The key holds this value under the lease granted for this very write: the write was applied by an earlier
    // attempt whose answer was lost (etcd answers "request timed out" or "leader changed" to a proposal it may still
    // apply, and etcd3 makes the transaction again on the next endpoint), so its guard now fails on the write itself.
    // etcd grants a lease ID once, so no other writer can have put it there; this is our write, not a conflict (and
    // withLease must not revoke the lease, which would delete the key).
    if (now && leaseId !== '0' && now.lease === leaseId && now.value === value)
      return {ok: true, revision: now.modRevision}
    return {ok: false, now}
  }

  /**
   * A write, under a new lease when `ttlSeconds` is given: grant first, then the guarded transaction, and revoke the
   * grant again when the guard fails (flanneld's createSubnet: Grant, then a Txn on create revision 0). This is the
   * one create-with-new-lease path, shared by the services and the agent.
   */
  private async withLease(
    ttlSeconds: number | undefined,
    write: (leaseId: string) => Promise<Txn>,
    lost: (now: RawKV | null) => Error,
  ): Promise<WriteResult> {
    const leaseId = ttlSeconds === undefined ? '0' : await this.grantLease(ttlSeconds)
    let r: Txn
    try {
      r = await write(leaseId)
    } catch (error) {
      if (leaseId !== '0') await this.revokeLease(leaseId)
      throw error
    }
    if (r.ok) return {revision: r.revision, leaseId}
    if (leaseId !== '0') await this.revokeLease(leaseId)
    throw lost(r.now)
  }

  async putIfUnchanged(key: string, value: string, modRevision: string, opts: WriteOptions = {}): Promise<WriteResult> {
    return this.withLease(
      opts.ttlSeconds,
      (leaseId) => this.txnPut('a guarded write', key, 'Mod', modRevision, value, leaseId),
      (now) => casLost(key, modRevision, now),
    )
  }

  async createIfAbsent(key: string, value: string, opts: WriteOptions = {}): Promise<WriteResult> {
    return this.withLease(
      opts.ttlSeconds,
      (leaseId) => this.txnPut('a create', key, 'Create', 0, value, leaseId),
      (now) => alreadyExists(key, now),
    )
  }

  /**
   * Keys go in transactions of at most MAX_TXN_OPS; a transaction whose guard fails is re-read, and retried without
   * the keys that changed, so every key that is still as listed is deleted and every key that changed is reported.
   */
  async deleteGuarded(keys: readonly GuardedKey[]): Promise<DeleteOutcome> {
    const c = await this.client()
    const deleted: string[] = []
    const lost: LostGuard[] = []
    for (let i = 0; i < keys.length; i += MAX_TXN_OPS) {
      let chunk = keys.slice(i, i + MAX_TXN_OPS)
      for (let attempt = 0; chunk.length > 0 && attempt < 3; attempt++) {
        const [first, ...rest] = chunk
        let builder = c.if(first!.key, 'Mod', '==', first!.modRevision)
        for (const k of rest) builder = builder.and(k.key, 'Mod', '==', k.modRevision)
        const ops = chunk.map((k) => c.delete().key(k.key))
        const res = await this.call('a guarded delete', () => builder.then(...ops).commit())
        if (res.succeeded) {
          deleted.push(...chunk.map((k) => k.key))
          chunk = []
          break
        }
        // Find which guards failed, report those keys, retry the rest (their guards still hold).
        const now = await Promise.all(chunk.map(async (k) => ({k, kv: await this.getKey(k.key)})))
        const changed = now.filter(({k, kv}) => kv?.modRevision !== k.modRevision)
        for (const {k, kv} of changed) lost.push({key: k.key, expectedModRevision: k.modRevision, now: kv})
        chunk = now.filter(({k, kv}) => kv?.modRevision === k.modRevision).map(({k}) => k)
      }
      for (const k of chunk) lost.push({key: k.key, expectedModRevision: k.modRevision, now: await this.getKey(k.key)})
    }
    return {deleted, lost}
  }

  private async grantLease(ttlSeconds: number): Promise<string> {
    const c = await this.client()
    const res = await this.call('a lease grant', () => c.leaseClient.leaseGrant({TTL: ttlSeconds, ID: 0}))
    return String(res.ID)
  }

  /** Revokes a lease (etcd deletes the keys still bound to it); best effort: a failure is ignored. */
  async revokeLease(leaseId: string): Promise<void> {
    const c = await this.client()
    await this.call('a lease revoke', () => c.leaseClient.leaseRevoke({ID: leaseId})).catch(() => undefined)
  }

  /** Watches the subnets keyspace from the revision after `fromRevision` (see watch.ts). */
  async watchSubnets(fromRevision: string, cb: WatchCallbacks): Promise<WatchHandle> {
    const [c, {watchPrefix}] = await Promise.all([this.client(), import('./watch.js')])
    return watchPrefix(c, this.layout.subnets, fromRevision, cb)
  }

  /** Watches the subnets keyspace from the revision after `fromRevision`, each event with its prev_kv (leases watch). */
  async watchSubnetChanges(fromRevision: string, cb: ChangeCallbacks): Promise<WatchHandle> {
    const [c, {watchChanges}] = await Promise.all([this.client(), import('./watch.js')])
    return watchChanges(c, this.layout.subnets, fromRevision, cb)
  }

  /**
   * The oldest revision etcd still keeps history for (its last compaction), given a revision `compacted` known to
   * be compacted away: the first revision after it that a read at that revision accepts (a binary search of about
   * log2(current - compacted) reads of one key). Null when etcd reports no compaction there after all.
   */
  async compactedRevision(compacted: string): Promise<string | null> {
    const c = await this.client()
    const readableAt = async (rev: bigint): Promise<boolean> => {
      try {
        await this.call('a read at a revision', () => c.get(this.layout.config).revision(String(rev)).exec())
        return true
      } catch (error) {
        if (/compacted/i.test((error as Error).message)) return false
        throw error
      }
    }
    const current = BigInt((await this.readNetwork()).revision)
    let lo = BigInt(compacted)
    if (lo < 1n || lo > current || (await readableAt(lo))) return null
    let hi = current
    while (hi - lo > 1n) {
      const mid = (lo + hi) / 2n
      if (await readableAt(mid)) hi = mid
      else lo = mid
    }
    return String(hi)
  }

  /** Watches the config key (as a prefix: callers keep only the key itself) from the revision after `fromRevision`. */
  async watchConfig(fromRevision: string, cb: WatchCallbacks): Promise<WatchHandle> {
    const [c, {watchPrefix}] = await Promise.all([this.client(), import('./watch.js')])
    return watchPrefix(c, this.layout.config, fromRevision, cb)
  }
}

type Txn = {ok: true; revision: string} | {ok: false; now: RawKV | null}
