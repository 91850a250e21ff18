/**
 * etcd's v2 keys API over HTTP(S) with node's http/https: the keyspace flannel <= 0.17 used
 * (docs/flannel.md §1.3, §1.7). The same connection options as the v3 store (endpoints tried in order, TLS with
 * --cacert/--cert/--key, basic auth with --user/--password, --dial-timeout for the first answer and --command-timeout
 * for each read), and failures mapped the same way: unreachable, TLS or credentials refused → exit 69.
 *
 * Reads are quorum reads (flanneld <= 0.17 read with Quorum: true). The revision of a snapshot is the X-Etcd-Index
 * header, the v2 store's own index (unrelated to v3 revisions).
 *
 * Writes are the v2 API's own guarded forms, each on the key's modifiedIndex (checked against etcd 3.4.23):
 * - compare-and-swap: `PUT value=V&prevIndex=N&ttl=T`; with `ttl=` (empty) the key ends with no TTL at all, which is
 *   what `etcdctl set --ttl 0` leaves (a reservation), atomically. The key gets a new modifiedIndex and watchers see a
 *   `compareAndSwap`, so a running flanneld <= 0.17 learns its lease no longer expires (MonitorLease). `refresh=true`
 *   is not used: etcd refuses it without a TTL (error 212), and a refresh is not delivered to watchers;
 * - create: `PUT value=V&prevExist=false` (error 105 when the key exists), as flanneld's createSubnet;
 * - delete: `DELETE ?prevIndex=N` (compareAndDelete).
 * A lost guard (error 101 "Compare failed", or 100 when the key vanished) is a ConflictError (exit 3) saying what the
 * key holds now; nothing else was written. A write is sent to one endpoint only: the next is tried only when the
 * previous one could not be connected to, so a write is never applied twice.
 */

import http from 'node:http'
import https from 'node:https'

import {ConflictError, FlannelctlError, UnavailableError} from '../core/errors.js'
import {type KeyLayout, keyLayout} from '../core/keys.js'
import {classifyKeys, type NetworkSnapshot, type RawKV} from '../core/leases.js'
import {
  type FlatV2,
  flattenV2,
  fromV2Key,
  parseV2Error,
  parseV2Node,
  shellWord,
  toV2Key,
  V2_COMPARE_FAILED,
  V2_KEY_EXISTS,
  V2_KEY_NOT_FOUND,
  v2HasTtl,
  v2KeysPath,
  v2LeaseId,
  v2RemainingTtl,
  type V2Node,
} from '../core/v2-keyspace.js'
import type {SubnetChange} from '../core/lease-events.js'
import type {ConnectionOptions} from './etcd-store.js'
import type {DeleteOutcome, FlannelStore, GuardedKey, WriteOptions, WriteResult} from './port.js'
import {normaliseEndpoint, readPem} from './endpoints.js'
import {tlsCa} from './extra-ca.js'
import {TLS_FAILURE, tlsFailed, unreachable} from './failures.js'
import type {ChangeCallbacks, WatchHandle} from './watch.js'

interface HttpAnswer {
  status: number
  headers: http.IncomingHttpHeaders
  body: string
}

/** A failure to get any HTTP answer from one endpoint. */
class TransportError extends Error {
  constructor(
    message: string,
    readonly endpoint: string,
    readonly tls: boolean,
    /** True once a connection was made: the request may have reached etcd. */
    readonly connected: boolean,
  ) {
    super(message)
  }
}

/**
 * The dial deadline of one v2 request: `onTimeout` runs when no connection (for https, no completed TLS handshake) is
 * made within `ms`. `connected()` (also called when an answer arrives) stops it; `isConnected()` says whether one was
 * made, i.e. whether the request may have reached etcd.
 */
function dialDeadline(
  req: http.ClientRequest,
  tls: boolean,
  ms: number,
  onTimeout: () => void,
): {connected(): void; isConnected(): boolean; cancel(): void} {
  let timer: NodeJS.Timeout | undefined = setTimeout(onTimeout, ms)
  let made = false
  const connected = () => {
    clearTimeout(timer)
    timer = undefined
    made = true
  }
  req.on('socket', (socket) => {
    if (!socket.connecting && !(socket as {pending?: boolean}).pending) connected()
    else socket.once(tls ? 'secureConnect' : 'connect', connected)
  })
  return {connected, isConnected: () => made, cancel: () => clearTimeout(timer)}
}

/** What a v2 key holds now, for conflict messages. */
function describeNow(kv: RawKV | null): string {
  if (!kv) return 'it no longer exists'
  return `it is now at modifiedIndex ${kv.modRevision}${kv.lease === '0' ? ' with no TTL' : ' with a TTL'}: ${kv.value}`
}

/** v2 error code 401: the watch's waitIndex is older than the 1000 events etcd's v2 store keeps. */
const V2_EVENT_INDEX_CLEARED = 401
/** A long poll that got no event is re-issued after this long (so a silently dead connection is noticed). */
const POLL_MS = 60_000
/** Reconnect backoff of the v2 watch, as the v3 client's (100 ms doubling up to 2 s). */
const WATCH_BACKOFF_MS = [100, 2000] as const

/** One long poll's outcome. */
type Poll =
  | {kind: 'event'; action: string; node: V2Node; prevNode: V2Node | null}
  /** No event within POLL_MS; `startIndex` is etcd's index when the poll began (X-Etcd-Index), if it said. */
  | {kind: 'idle'; startIndex: bigint | null}
  | {kind: 'cleared'; error: Error; oldest: string | null}

/** Deletes in flight at once. */
const DELETE_CONCURRENCY = 8
/** The prefix of synthetic v2 lease IDs (`v2:<key>`, see core/v2-keyspace.ts). */
const V2_LEASE_PREFIX = v2LeaseId('')

export class EtcdV2Store implements FlannelStore {
  readonly layout: KeyLayout
  private readonly endpoints: readonly string[]
  private readonly httpAgent: http.Agent
  private readonly httpsAgent: https.Agent | null
  private readonly authorization: string | undefined
  /** TTLs of the last readNetwork() and when they were read, so leaseTtls() can count down from there. */
  private ttls = new Map<string, number>()
  private ttlsReadAt = 0
  private wholePrefixRead = true
  readonly api = 'v2' as const
  readonly source = 'etcd'

  private constructor(private readonly opts: ConnectionOptions) {
    this.layout = keyLayout(opts.prefix)
    this.endpoints = opts.endpoints.map(normaliseEndpoint)
    this.httpAgent = new http.Agent({keepAlive: true, maxSockets: 8})
    const tls = this.endpoints.some((e) => e.startsWith('https://'))
    this.httpsAgent = tls
      ? new https.Agent({
          keepAlive: true,
          maxSockets: 8,
          ca: tlsCa(opts.cacert),
          cert: opts.cert ? readPem(opts.cert, '--cert') : undefined,
          key: opts.key ? readPem(opts.key, '--key') : undefined,
          minVersion: 'TLSv1.2',
        })
      : null
    this.authorization = opts.user
      ? 'Basic ' + Buffer.from(`${opts.user}:${opts.password ?? ''}`, 'utf8').toString('base64')
      : undefined
  }

  /** Connects and proves etcd serves the v2 API within the dial timeout (exit 69 otherwise). */
  static async open(opts: ConnectionOptions): Promise<EtcdV2Store> {
    const store = new EtcdV2Store(opts)
    try {
      await store.getKey(store.layout.config, opts.dialTimeoutMs)
    } catch (error) {
      store.close()
      throw error
    }
    return store
  }

  close(): void {
    this.httpAgent.destroy()
    this.httpsAgent?.destroy()
  }

  get where(): string {
    return this.endpoints.join(',')
  }

  /**
   * The connection flags of an `ETCDCTL_API=2 etcdctl` command against the same etcd (etcdctl v2 spells them
   * --ca-file, --cert-file, --key-file, --username; the password is left for it to prompt for).
   */
  etcdctlFlags(): string {
    const flags: string[] = []
    if (this.where !== 'http://127.0.0.1:2379') flags.push(`--endpoints ${shellWord(this.where)}`)
    if (this.opts.cacert) flags.push(`--ca-file ${shellWord(this.opts.cacert)}`)
    if (this.opts.cert) flags.push(`--cert-file ${shellWord(this.opts.cert)}`)
    if (this.opts.key) flags.push(`--key-file ${shellWord(this.opts.key)}`)
    if (this.opts.user) flags.push(`--username ${shellWord(this.opts.user)}`)
    return flags.join(' ')
  }

  /** One key, or null when it does not exist. */
  async getKey(key: string, timeoutMs = this.opts.commandTimeoutMs): Promise<RawKV | null> {
    const {res} = await this.get(v2KeysPath(key) + '?quorum=true', timeoutMs, key)
    if (res === null) return null
    const node = parseV2Node(res.body)
    if (node instanceof Error) throw this.badAnswer(node)
    const flat = flattenV2(node, this.layout)
    const kv = flat.kvs[0] ?? null
    this.lastKeyTtl = kv ? (flat.ttls.get(kv.lease) ?? -1) : -1
    return kv
  }

  /** The remaining TTL getKey() last saw (-1 for none or expired). */
  private lastKeyTtl = -1

  /**
   * Everything under the prefix: one recursive quorum GET of the prefix (config, subnet keys and foreign keys at one
   * index). When etcd's v2 auth refuses that to --user, the keys are read the way flanneld <= 0.17 reads them
   * (subnet/etcdv2/registry.go): a quorum GET of <prefix>/config and a recursive quorum GET of <prefix>/subnets, which
   * a role with read on `<prefix>` and `<prefix>/*` allows; other keys under the prefix are then not seen
   * (wholePrefixRead is false).
   */
  async readNetwork(): Promise<NetworkSnapshot> {
    const dir = toV2Key(this.layout.prefix)
    let flat: {kvs: RawKV[]; ttls: Map<string, number>; index: string}
    try {
      flat = await this.readTree(dir)
      this.wholePrefixRead = true
    } catch (error) {
      if (!(this.opts.user && error instanceof UnavailableError && error.code === 'ETCD_AUTH_FAILED')) throw error
      const [config, subnets] = [
        await this.getKey(this.layout.config),
        await this.readTree(toV2Key(this.layout.subnets)),
      ]
      flat = {kvs: [...(config ? [config] : []), ...subnets.kvs], ttls: subnets.ttls, index: subnets.index}
      if (config && config.lease !== '0') flat.ttls.set(config.lease, this.lastKeyTtl)
      this.wholePrefixRead = false
    }
    this.ttls = flat.ttls
    this.ttlsReadAt = Date.now()
    return classifyKeys(this.layout, flat.kvs, flat.index)
  }

  /**
   * Whether the last readNetwork() saw every key under the prefix (false: only the config and the subnets directory,
   * because v2 auth allowed no more). A command that would name "everything under the prefix" must not when false.
   */
  get sawWholePrefix(): boolean {
    return this.wholePrefixRead
  }

  /** A recursive quorum GET of a v2 directory, flattened (an absent directory is empty). */
  private async readTree(dir: string): Promise<FlatV2 & {index: string}> {
    const {res, index} = await this.get(
      v2KeysPath(dir) + '?recursive=true&quorum=true',
      this.opts.commandTimeoutMs,
      dir,
    )
    if (res === null) return {kvs: [], ttls: new Map(), index}
    const node = parseV2Node(res.body)
    if (node instanceof Error) throw this.badAnswer(node)
    return {...flattenV2(node, this.layout), index}
  }

  /**
   * Remaining TTL in seconds of each synthetic lease ID of the last readNetwork(), counted down by the time since
   * that read (an expired key maps to -1, as a v3 TimeToLive on an expired lease does). Unknown IDs are absent.
   */
  async leaseTtls(ids: Iterable<string>): Promise<Map<string, number>> {
    const elapsed = Math.floor((Date.now() - this.ttlsReadAt) / 1000)
    const out = new Map<string, number>()
    const unknown: string[] = []
    for (const id of new Set(ids)) {
      const ttl = this.ttls.get(id)
      if (ttl === undefined) {
        if (id.startsWith(V2_LEASE_PREFIX)) unknown.push(id)
        continue
      }
      out.set(id, ttl - elapsed > 0 ? ttl - elapsed : -1)
    }
    // IDs the last read did not see (a key written since): the ID names the key, so read it. A key that is gone or
    // has no TTL any more means the lease no longer exists: -1, as a v3 TimeToLive of a revoked lease.
    for (const id of unknown) {
      const kv = await this.getKey(id.slice(V2_LEASE_PREFIX.length))
      out.set(id, kv !== null && kv.lease === id ? this.lastKeyTtl : -1)
    }
    return out
  }

  /** The oldest index the v2 store still had events for when a watch last found its waitIndex cleared (401). */
  private oldestEventIndex: string | null = null

  /**
   * Watches the subnets directory (recursively) from the index after `fromIndex`: one long poll
   * (`?wait=true&recursive=true&waitIndex=N`) per event, the next from the event's modifiedIndex + 1. A poll that
   * gets nothing within POLL_MS is re-issued, from after etcd's index at the time it began when that is later (no
   * event of ours happened up to it). A failed poll (etcd restarting, unreachable) is retried from the same
   * waitIndex with a backoff of 100 ms doubling to 2 s, so nothing is lost or repeated. A waitIndex older than the
   * 1000 events etcd's v2 store keeps (error 401 "The event in requested index is outdated and cleared") ends the
   * watch with onLost: list again and watch anew.
   */
  async watchSubnetChanges(fromIndex: string, cb: ChangeCallbacks): Promise<WatchHandle> {
    let waitIndex = BigInt(fromIndex) + 1n
    let stopped = false
    let abort: (() => void) | undefined
    let down = false
    let delay: number = WATCH_BACKOFF_MS[0]
    const dir = toV2Key(this.layout.subnets)
    // Resolved once the first poll is answered (etcd flushes a watch's headers at once; a cleared index is answered
    // in full, after onLost), or has failed: so a --rev that is too old is known before the watch counts as started.
    let started!: () => void
    const first = new Promise<void>((resolve) => (started = resolve))
    const loop = async (): Promise<void> => {
      while (!stopped) {
        let r: Poll
        try {
          r = await this.poll(
            dir,
            waitIndex,
            (cancel) => (abort = cancel),
            () => {
              if (down) cb.onConnected?.()
              down = false
              started()
            },
          )
        } catch (error) {
          started()
          if (stopped) return
          if (!down) cb.onDisconnected?.(error as Error)
          down = true
          await new Promise((resolve) => setTimeout(resolve, delay))
          delay = Math.min(delay * 2, WATCH_BACKOFF_MS[1])
          continue
        }
        delay = WATCH_BACKOFF_MS[0]
        if (stopped) return
        if (r.kind === 'idle') {
          if (r.startIndex !== null && r.startIndex + 1n > waitIndex) waitIndex = r.startIndex + 1n
          continue
        }
        if (r.kind === 'cleared') {
          stopped = true
          this.oldestEventIndex = r.oldest
          cb.onLost(r.error)
          started()
          return
        }
        waitIndex = BigInt(r.node.modifiedIndex) + 1n
        const change = this.toChange(r.action, r.node, r.prevNode)
        if (change) cb.onChanges([change], String(r.node.modifiedIndex))
      }
    }
    void loop().finally(() => started())
    await first
    return {
      cancel: async () => {
        stopped = true
        abort?.()
      },
    }
  }

  /** The oldest index a v2 watch can start from, as the last cleared watch learned it (null when unknown). */
  async compactedRevision(): Promise<string | null> {
    return this.oldestEventIndex
  }

  /** A v2 watch event as a change of a subnet key (null for what is not one: a directory being created). */
  private toChange(action: string, node: V2Node, prevNode: V2Node | null): SubnetChange | null {
    const kvOf = (n: V2Node | null): RawKV | null => (n && !n.dir ? (flattenV2(n, this.layout).kvs[0] ?? null) : null)
    const key = fromV2Key(node.key, this.layout)
    if (action === 'delete' || action === 'compareAndDelete' || action === 'expire') {
      return {
        type: 'delete',
        key,
        revision: String(node.modifiedIndex),
        prev: kvOf(prevNode),
        expired: action === 'expire',
        dir: node.dir === true || prevNode?.dir === true,
      }
    }
    if (node.dir) return null
    const kv = kvOf(node)!
    return {type: 'put', kv, prev: kvOf(prevNode), ...(kv.lease !== '0' ? {ttlSeconds: v2RemainingTtl(node)} : {})}
  }

  /** One long poll on the first endpoint that answers (see watchSubnetChanges). */
  private poll(
    dir: string,
    waitIndex: bigint,
    setAbort: (abort: () => void) => void,
    onAnswer: () => void,
  ): Promise<Poll> {
    const path = `${v2KeysPath(dir)}?wait=true&recursive=true&waitIndex=${waitIndex}`
    const attempt = (i: number): Promise<Poll> =>
      this.pollOne(this.endpoints[i]!, path, setAbort, onAnswer).catch((error: unknown) => {
        if (error instanceof TransportError && i + 1 < this.endpoints.length) return attempt(i + 1)
        throw error
      })
    return attempt(0)
  }

  private pollOne(
    endpoint: string,
    path: string,
    setAbort: (abort: () => void) => void,
    onAnswer: () => void,
  ): Promise<Poll> {
    const tls = endpoint.startsWith('https://')
    const url = new URL(endpoint + path)
    return new Promise((resolve, reject) => {
      const headers: Record<string, string> = {accept: 'application/json'}
      if (this.authorization) headers.authorization = this.authorization
      const options = {method: 'GET', headers, agent: tls ? this.httpsAgent! : this.httpAgent}
      const req = tls ? https.request(url, options) : http.request(url, options)
      let settled = false
      let startIndex: bigint | null = null
      let bodyStarted = false
      const finish = (fn: () => void) => {
        if (settled) return
        settled = true
        clearTimeout(idle)
        dial.cancel()
        fn()
      }
      const fail = (message: string) =>
        finish(() => {
          req.destroy()
          reject(new TransportError(message, endpoint, tls, dial.isConnected()))
        })
      const idle = setTimeout(() => {
        if (bodyStarted) return fail(`no complete answer within ${POLL_MS} ms`)
        finish(() => {
          req.destroy()
          resolve({kind: 'idle', startIndex})
        })
      }, POLL_MS)
      const dial = dialDeadline(req, tls, this.opts.dialTimeoutMs, () =>
        fail(`no connection within ${this.opts.dialTimeoutMs} ms`),
      )
      setAbort(() => finish(() => req.destroy()))
      req.on('error', (error: NodeJS.ErrnoException) =>
        fail(error.code ? `${error.code}: ${error.message}` : error.message),
      )
      req.on('response', (res) => {
        dial.connected()
        if (res.statusCode === 200) onAnswer()
        const h = res.headers['x-etcd-index']
        if (typeof h === 'string' && /^\d+$/.test(h)) startIndex = BigInt(h)
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => {
          bodyStarted = true
          chunks.push(c)
        })
        res.on('error', (error) => fail(error.message))
        res.on('aborted', () => fail('the answer was cut off'))
        res.on('end', () => {
          if (settled) return
          const body = Buffer.concat(chunks).toString('utf8')
          const status = res.statusCode ?? 0
          if (status === 200) {
            let doc: {action?: unknown; node?: unknown; prevNode?: unknown}
            try {
              doc = JSON.parse(body) as typeof doc
            } catch {
              // etcd stopping mid-poll ends the answer early: a transport failure, retried.
              return fail('an incomplete watch answer')
            }
            const node = parseV2Node(JSON.stringify({node: doc.node}))
            if (node instanceof Error || typeof doc.action !== 'string') return fail('an unexpected watch answer')
            const prev = doc.prevNode ? parseV2Node(JSON.stringify({node: doc.prevNode})) : null
            return finish(() =>
              resolve({
                kind: 'event',
                action: doc.action as string,
                node,
                prevNode: prev instanceof Error ? null : prev,
              }),
            )
          }
          const err = parseV2Error(body)
          if (err?.errorCode === V2_EVENT_INDEX_CLEARED) {
            // "the requested history has been cleared [1008/5]": the oldest index kept, then the one asked for.
            const oldest = /\[(\d+)\/\d+\]/.exec(err.cause ?? '')?.[1] ?? null
            return finish(() =>
              resolve({kind: 'cleared', error: new Error(`${err.message} (${err.cause ?? ''})`), oldest}),
            )
          }
          finish(() => reject(this.httpFailure({status, headers: res.headers, body}, err, this.layout.subnets)))
        })
      })
      req.end()
    })
  }

  /**
   * Puts `value` at `key` only if its modifiedIndex is still `modRevision` (compare-and-swap on prevIndex). Without
   * `ttlSeconds` the key ends with no TTL (`ttl=`): a reservation, as `etcdctl set --ttl 0` but atomic. A lost guard
   * is a ConflictError CAS_LOST (exit 3) with what the key holds now.
   */
  async putIfUnchanged(key: string, value: string, modRevision: string, opts: WriteOptions = {}): Promise<WriteResult> {
    if (!/^[1-9]\d*$/.test(modRevision)) {
      // prevIndex=0 is no guard at all for etcd: a plain set.
      throw new Error(`a v2 compare-and-swap needs a modifiedIndex, got "${modRevision}" for ${key}`)
    }
    const form = new URLSearchParams({value, prevIndex: modRevision, ttl: ttlParam(opts.ttlSeconds)})
    const a = await this.write('PUT', key, form)
    if (a.err && (a.err.errorCode === V2_COMPARE_FAILED || a.err.errorCode === V2_KEY_NOT_FOUND)) {
      const now = await this.getKey(key)
      throw new ConflictError(
        `${toV2Key(key)} changed since it was read at modifiedIndex ${modRevision} (${describeNow(now)}); nothing was written`,
        'CAS_LOST',
        'read it again and retry',
        {key, expectedModRevision: modRevision, now},
      )
    }
    return this.written(a, key)
  }

  /** Creates `key` only if it does not exist (`prevExist=false`); ALREADY_EXISTS (exit 3) with what it holds otherwise. */
  async createIfAbsent(key: string, value: string, opts: WriteOptions = {}): Promise<WriteResult> {
    const form = new URLSearchParams({value, prevExist: 'false'})
    if (opts.ttlSeconds !== undefined) form.set('ttl', ttlParam(opts.ttlSeconds))
    const a = await this.write('PUT', key, form)
    if (a.err?.errorCode === V2_KEY_EXISTS) {
      const now = await this.getKey(key)
      throw new ConflictError(
        `${toV2Key(key)} already exists (${describeNow(now)}); nothing was written`,
        'ALREADY_EXISTS',
        undefined,
        {
          key,
          now,
        },
      )
    }
    return this.written(a, key)
  }

  /**
   * Deletes keys, each guarded on the modifiedIndex it was listed at (`DELETE ?prevIndex=N`, one request per key):
   * every key still as listed is deleted, every key that changed or vanished is reported in `lost` and kept.
   */
  async deleteGuarded(keys: readonly GuardedKey[]): Promise<DeleteOutcome> {
    const deleted: string[] = []
    const lost: Array<DeleteOutcome['lost'][number]> = []
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < keys.length) {
        const k = keys[next++]!
        if (!/^[1-9]\d*$/.test(k.modRevision))
          throw new Error(`a v2 guarded delete needs a modifiedIndex, got "${k.modRevision}" for ${k.key}`)
        const a = await this.write('DELETE', k.key, new URLSearchParams({prevIndex: k.modRevision}))
        if (a.err && (a.err.errorCode === V2_COMPARE_FAILED || a.err.errorCode === V2_KEY_NOT_FOUND)) {
          lost.push({key: k.key, expectedModRevision: k.modRevision, now: await this.getKey(k.key)})
          continue
        }
        this.written(a, k.key)
        deleted.push(k.key)
      }
    }
    await Promise.all(Array.from({length: Math.min(DELETE_CONCURRENCY, keys.length)}, worker))
    const order = new Map(keys.map((k, i) => [k.key, i]))
    deleted.sort((a, b) => order.get(a)! - order.get(b)!)
    lost.sort((a, b) => order.get(a.key)! - order.get(b.key)!)
    return {deleted, lost}
  }

  /** The result of a successful write; any other v2 error is exit 69 with etcd's own message. */
  private written(a: {res: HttpAnswer; err: ReturnType<typeof parseV2Error>}, key: string): WriteResult {
    if (a.res.status >= 300) throw this.httpFailure(a.res, a.err, key, 'write')
    const node = parseV2Node(a.res.body)
    if (node instanceof Error) throw this.badAnswer(node)
    return {revision: String(node.modifiedIndex), leaseId: v2HasTtl(node) ? v2LeaseId(key) : '0'}
  }

  /**
   * One v2 write (PUT or DELETE with form parameters) to the first endpoint that can be connected to: an endpoint that
   * took the connection and then gave no answer is not followed by another (the write may have been applied there).
   * Guard failures come back in `err` for the caller; transport failures are exit 69.
   */
  private async write(
    method: 'PUT' | 'DELETE',
    key: string,
    form: URLSearchParams,
  ): Promise<{res: HttpAnswer; err: ReturnType<typeof parseV2Error>}> {
    const timeoutMs = this.opts.commandTimeoutMs
    const deadline = Date.now() + timeoutMs
    const path = v2KeysPath(key)
    let last: TransportError | undefined
    for (const endpoint of this.endpoints) {
      const left = deadline - Date.now()
      if (left <= 0) break
      try {
        const res =
          method === 'PUT'
            ? await this.request(endpoint, path, left, {method, body: form.toString()})
            : await this.request(endpoint, `${path}?${form.toString()}`, left, {method})
        return {res, err: res.status < 300 ? null : parseV2Error(res.body)}
      } catch (error) {
        if (!(error instanceof TransportError)) throw error
        last = error
        if (error.connected) {
          throw new UnavailableError(
            `etcd at ${error.endpoint} gave no answer to a v2 write of ${toV2Key(key)} (${error.message}): it may or may not have been applied`,
            'ETCD_UNAVAILABLE',
            'read the key again before retrying (flannelctl leases ls --etcd-api v2, network show --etcd-api v2)',
          )
        }
      }
    }
    throw this.transportFailure(last, timeoutMs)
  }

  private badAnswer(error: Error): Error {
    return new UnavailableError(`etcd at ${this.where} gave an unexpected v2 answer: ${error.message}`, 'ETCD_V2_ERROR')
  }

  /**
   * GET a /v2/keys path: the answer, or null for "key not found". Endpoints are tried in order until one answers;
   * the whole call gets `timeoutMs`, and connecting to each endpoint at most --dial-timeout.
   */
  private async get(path: string, timeoutMs: number, key: string): Promise<{res: HttpAnswer | null; index: string}> {
    const deadline = Date.now() + timeoutMs
    let last: TransportError | undefined
    let res: HttpAnswer | undefined
    for (const endpoint of this.endpoints) {
      const left = deadline - Date.now()
      if (left <= 0) break
      try {
        res = await this.request(endpoint, path, left)
        break
      } catch (error) {
        if (!(error instanceof TransportError)) throw error
        last = error
      }
    }
    if (!res) throw this.transportFailure(last, timeoutMs)
    const header = res.headers['x-etcd-index']
    const err = res.status === 200 ? null : parseV2Error(res.body)
    const index = typeof header === 'string' && /^\d+$/.test(header) ? header : String(err?.index ?? 0)
    if (res.status === 200) return {res, index}
    if (res.status === 404 && err?.errorCode === V2_KEY_NOT_FOUND) return {res: null, index}
    throw this.httpFailure(res, err, key)
  }

  private request(
    endpoint: string,
    path: string,
    timeoutMs: number,
    o: {method?: 'GET' | 'PUT' | 'DELETE'; body?: string} = {},
  ): Promise<HttpAnswer> {
    const tls = endpoint.startsWith('https://')
    const url = new URL(endpoint + path)
    const dialMs = Math.min(this.opts.dialTimeoutMs, timeoutMs)
    return new Promise((resolve, reject) => {
      const headers: Record<string, string> = {accept: 'application/json'}
      if (this.authorization) headers.authorization = this.authorization
      if (o.body !== undefined) {
        headers['content-type'] = 'application/x-www-form-urlencoded'
        headers['content-length'] = String(Buffer.byteLength(o.body))
      }
      const options = {method: o.method ?? 'GET', headers, agent: tls ? this.httpsAgent! : this.httpAgent}
      const req = tls ? https.request(url, options) : http.request(url, options)
      let settled = false
      const fail = (message: string) => {
        if (settled) return
        settled = true
        clearTimeout(overall)
        dial.cancel()
        req.destroy()
        reject(new TransportError(message, endpoint, tls, dial.isConnected()))
      }
      const overall = setTimeout(() => fail(`no answer within ${timeoutMs} ms`), timeoutMs)
      const dial = dialDeadline(req, tls, dialMs, () => fail(`no connection within ${dialMs} ms`))
      req.on('error', (error: NodeJS.ErrnoException) => {
        // OpenSSL's text ("800C...:error:0A000412:SSL routines:ssl3_read_bytes:sslv3 alert bad certificate:../deps/...") → its reason.
        const msg = /SSL routines:[^:]*:([^:]+):/.exec(error.message)?.[1] ?? error.message
        fail(error.code && !msg.includes(error.code) ? `${error.code}: ${msg}` : msg)
      })
      req.on('response', (res) => {
        dial.connected()
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('error', (error) => fail(error.message))
        res.on('end', () => {
          if (settled) return
          settled = true
          clearTimeout(overall)
          resolve({status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8')})
        })
      })
      req.end(o.body)
    })
  }

  private transportFailure(last: TransportError | undefined, timeoutMs: number): FlannelctlError {
    const msg = last?.message ?? `no answer within ${timeoutMs} ms`
    if (last?.tls && TLS_FAILURE.test(msg)) return tlsFailed(this.where, this.opts, msg)
    // A reset before the handshake completed: a plain-http etcd answers a ClientHello with bytes or with a reset.
    if (last?.tls && !last.connected && /ECONNRESET|socket hang up/i.test(msg))
      return tlsFailed(this.where, this.opts, `${msg} during the TLS handshake`)
    return unreachable(this.where, msg, 'v2')
  }

  private httpFailure(
    res: HttpAnswer,
    err: ReturnType<typeof parseV2Error>,
    key: string,
    op: 'read' | 'write' = 'read',
  ): FlannelctlError {
    if (res.status === 404 && err === null) {
      return new UnavailableError(
        `etcd at ${this.where} does not serve the v2 API (HTTP 404 on /v2/keys): flannel <= 0.17's keyspace is readable only while etcd runs with --enable-v2 (etcd 3.4 and 3.5; 3.6 removed the v2 store)`,
        'ETCD_V2_DISABLED',
        'read the v3 keyspace instead: --etcd-api v3',
      )
    }
    if (res.status === 401 || res.status === 403) {
      if (!this.opts.user) {
        return new UnavailableError(
          `etcd at ${this.where} requires authentication for the v2 API: pass --user (and --password)`,
          'ETCD_AUTH_REQUIRED',
        )
      }
      return new UnavailableError(
        op === 'read'
          ? `etcd at ${this.where} rejected user "${this.opts.user}" on the v2 API: wrong password, or no read permission on ${toV2Key(key)}`
          : `etcd at ${this.where} refused a v2 write of ${toV2Key(key)} to user "${this.opts.user}": no write permission there (or a wrong password)`,
        'ETCD_AUTH_FAILED',
        'v2 users and roles are separate from v3 ones: check them with ETCDCTL_API=2 etcdctl user get / role get',
      )
    }
    const what = err
      ? `error ${err.errorCode}: ${err.message}${err.cause ? ` (${err.cause})` : ''}`
      : res.body.trim().slice(0, 200)
    return new UnavailableError(
      `etcd at ${this.where} failed a v2 ${op} of ${toV2Key(key)} with HTTP ${res.status}: ${what}`,
      'ETCD_V2_ERROR',
    )
  }
}

/** The `ttl` form parameter: seconds, or empty for none (the key ends with no TTL). */
function ttlParam(ttlSeconds: number | undefined): string {
  if (ttlSeconds === undefined) return ''
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1)
    throw new Error(`a v2 TTL must be a whole number of seconds >= 1, got ${ttlSeconds}`)
  return String(ttlSeconds)
}
