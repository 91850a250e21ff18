/**
 * The store layer: every etcd call flannelctl makes goes through here. It speaks etcd's v3 API with the etcd3
 * client, reads everything under the prefix at one revision, and maps every client failure to a FlannelctlError
 * once (exit 69 for unreachable, TLS or auth failures).
 */

import {ExponentialBackoff, type IBackoff} from 'cockatiel'

import {
  EtcdAuthenticationFailedError,
  EtcdPermissionDeniedError,
  Etcd3,
  GRPCDeadlineExceededError,
  GRPCUnavailableError,
  type IKeyValue,
  type IOptions,
} from 'etcd3'

import {FlannelctlError, UnavailableError, UsageError} from '../core/errors.js'
import {type KeyLayout, keyLayout} from '../core/keys.js'
import {classifyKeys, type NetworkSnapshot, type RawKV} from '../core/leases.js'
import {configExists} from './conflicts.js'
import {normaliseEndpoint, readPem} from './endpoints.js'

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

export class EtcdStore {
  readonly layout: KeyLayout
  private readonly client: Etcd3
  private readonly endpoints: readonly string[]

  private constructor(private readonly opts: ConnectionOptions) {
    this.layout = keyLayout(opts.prefix)
    this.endpoints = opts.endpoints.map(normaliseEndpoint)
    const tls = this.endpoints.some((e) => e.startsWith('https://'))
    if (!tls && (opts.cacert || opts.cert || opts.key)) {
      // etcdctl would also talk plain http here; say why the certificates are not used.
      process.emitWarning?.('--cacert/--cert/--key are ignored for http:// endpoints; use https:// endpoints for TLS')
    }
    if ((opts.cert && !opts.key) || (!opts.cert && opts.key)) {
      throw new UsageError('--cert and --key must be given together', 'INVALID_TLS_FLAGS')
    }
    const options: IOptions = {
      hosts: [...this.endpoints],
      // The etcd3 client ignores dialTimeout, so every unary call carries its own deadline.
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : {deadline: Date.now() + opts.commandTimeoutMs}),
      // Watch reconnects back off from 100 ms to at most 2 s (the client's default goes up to 30 s). The option is
      // typed as a backoff but used as a factory: the cast is the library's documented workaround.
      faultHandling: {
        watchBackoff: new ExponentialBackoff({initialDelay: 100, maxDelay: 2000}) as unknown as IBackoff<unknown>,
      },
      grpcOptions: {
        // One range over 65,535 leases is ~12 MB, over gRPC's 4 MB default.
        'grpc.max_receive_message_length': 1 << 30,
        'grpc.max_send_message_length': 1 << 30,
        // Notice a silently dead connection (a partition without a reset) within ~15 s, not minutes; etcd accepts pings
        // every 5 s (--grpc-keepalive-min-time).
        'grpc.keepalive_time_ms': 10_000,
        'grpc.keepalive_timeout_ms': 5_000,
      },
    }
    if (tls) {
      // grpc-js passes the endpoint's host as the TLS servername even when it is an IP address, so Node prints a
      // DEP0123 DeprecationWarning on every https://127.0.0.1:2379-style connection. Deprecation warnings are for
      // developers, not for operators reading this CLI's stderr.
      process.noDeprecation = true
      options.credentials = {
        rootCertificate: opts.cacert ? readPem(opts.cacert, '--cacert') : (undefined as unknown as Buffer),
        certChain: opts.cert ? readPem(opts.cert, '--cert') : undefined,
        privateKey: opts.key ? readPem(opts.key, '--key') : undefined,
      }
    }
    if (opts.user) {
      options.auth = {
        username: opts.user,
        password: opts.password ?? '',
        callOptions: () => ({deadline: Date.now() + opts.dialTimeoutMs}),
      }
    }
    this.client = new Etcd3(options)
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
    // etcd3 defers closing a channel that is still connecting by up to 1 s (its workaround for grpc-node#1487), which
    // keeps the process alive for that second after giving up on an endpoint that accepts TCP but never answers.
    // Close those channels now: call() has already abandoned any request still pending on them.
    const pool = (
      this.client as unknown as {pool?: {hosts?: Array<{cachedServices?: Record<string, {close(): void} | undefined>}>}}
    ).pool
    for (const host of pool?.hosts ?? []) {
      for (const service of Object.values(host.cachedServices ?? {})) service?.close()
      host.cachedServices = Object.create(null) as Record<string, undefined>
    }
    this.client.close()
  }

  /** Runs one etcd call with a deadline and maps its failure (used by every store module). */
  /**
   * The first call of a store proves etcd answers within --dial-timeout (exit 69 naming the endpoints otherwise);
   * a failed probe is tried again on the next call. Commands can therefore open a store before checking their input,
   * and a usage error still exits 2 when etcd is down.
   */
  private reached: Promise<void> | null = null

  private ensureReached(): Promise<void> {
    this.reached ??= this.timed('connect', this.opts.dialTimeoutMs, () =>
      this.client.get(this.layout.config).exec(),
    ).then(
      () => undefined,
      (error: unknown) => {
        this.reached = null
        throw error
      },
    )
    return this.reached
  }

  async call<T>(what: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
    await this.ensureReached()
    return this.timed(what, timeoutMs, fn)
  }

  private async timed<T>(what: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new GRPCDeadlineExceededError(`no answer within ${timeoutMs} ms`)),
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
    const where = this.endpoints.join(',')
    let msg = (e?.message ?? String(e)).replace(/\s+/g, ' ').trim()
    // grpc-js buries the cause: "14 UNAVAILABLE: No connection established. Last error: Error: connect ECONNREFUSED ..."
    const cause = /Last error: (?:Error: )?(.*?)\.?(?: Resolution note:.*)?$/.exec(msg)
    if (cause?.[1]) msg = cause[1]
    if (e instanceof EtcdAuthenticationFailedError) {
      return new UnavailableError(
        `etcd at ${where} rejected user "${this.opts.user}": authentication failed`,
        'ETCD_AUTH_FAILED',
        'check --user/--password (or ETCDCTL_USER/ETCDCTL_PASSWORD)',
      )
    }
    if (e instanceof EtcdPermissionDeniedError) {
      return new UnavailableError(
        `etcd at ${where} denied ${what} to user "${this.opts.user ?? '(none)'}": permission denied`,
        'ETCD_PERMISSION_DENIED',
        `grant the user readwrite on ${this.layout.range}`,
      )
    }
    if (/user name is empty|authentication is enabled|invalid auth token/i.test(msg)) {
      return new UnavailableError(
        `etcd at ${where} requires authentication: pass --user (and --password)`,
        'ETCD_AUTH_REQUIRED',
      )
    }
    if (/SSL|TLS|certificate|handshake|self.signed|unable to verify|wrong version number/i.test(msg)) {
      const which = [this.opts.cacert && `--cacert ${this.opts.cacert}`, this.opts.cert && `--cert ${this.opts.cert}`]
        .filter(Boolean)
        .join(', ')
      return new UnavailableError(
        `TLS handshake with etcd at ${where} failed${which ? ` (using ${which})` : ''}: ${msg}`,
        'ETCD_TLS_FAILED',
        'check that --cacert signed the server certificate and that the server trusts --cert',
      )
    }
    if (
      e instanceof GRPCUnavailableError ||
      e instanceof GRPCDeadlineExceededError ||
      /UNAVAILABLE|DEADLINE|No connection established|ECONNREFUSED/i.test(msg)
    ) {
      return new UnavailableError(
        `etcd unreachable at ${where}: ${msg}`,
        'ETCD_UNAVAILABLE',
        'check --endpoints (or ETCDCTL_ENDPOINTS / FLANNELD_ETCD_ENDPOINTS)',
      )
    }
    return e instanceof Error ? e : new Error(msg)
  }

  /** Everything under the prefix at one revision: config, subnet keys and foreign keys. */
  async readNetwork(): Promise<NetworkSnapshot> {
    const res = await this.call('a read', this.opts.commandTimeoutMs, () =>
      this.client.getAll().prefix(this.layout.range).exec(),
    )
    return classifyKeys(this.layout, res.kvs.map(toRawKV), String(res.header.revision))
  }

  /**
   * Remaining TTL in seconds of each distinct lease ID, with at most `concurrency` TimeToLive calls in flight.
   * An expired or revoked lease maps to -1; a lease whose lookup failed is absent from the result.
   */
  async leaseTtls(
    ids: Iterable<string>,
    concurrency = 64,
    onProgress?: (done: number, total: number) => void,
  ): Promise<Map<string, number>> {
    const unique = [...new Set([...ids].filter((id) => id !== '0'))]
    const out = new Map<string, number>()
    let next = 0
    let done = 0
    const worker = async (): Promise<void> => {
      while (next < unique.length) {
        const id = unique[next++]!
        const res = await this.call('a lease TTL lookup', this.opts.commandTimeoutMs, () =>
          this.client.leaseClient.leaseTimeToLive({ID: id}),
        )
        out.set(id, Number(res.TTL))
        done++
        onProgress?.(done, unique.length)
      }
    }
    await Promise.all(Array.from({length: Math.min(concurrency, unique.length)}, worker))
    return out
  }

  /** One key, or null when it does not exist. */
  async getKey(key: string): Promise<RawKV | null> {
    const res = await this.call('a read', this.opts.commandTimeoutMs, () => this.client.get(key).exec())
    const kv = res.kvs[0]
    return kv ? toRawKV(kv) : null
  }

  /** Creates the config key only if it does not exist (a transaction on create revision 0). */
  async createConfig(value: string): Promise<{revision: string}> {
    const key = this.layout.config
    const res = await this.call('a config write', this.opts.commandTimeoutMs, () =>
      this.client
        .if(key, 'Create', '==', 0)
        .then(this.client.put(key).value(value))
        .else(this.client.get(key))
        .commit(),
    )
    if (!res.succeeded) {
      const kv = res.responses[0]?.response_range?.kvs[0]
      throw configExists(key, kv ? toRawKV(kv) : null)
    }
    return {revision: String(res.header.revision)}
  }

  get timeoutMs(): number {
    return this.opts.commandTimeoutMs
  }

  /** The etcd3 client, for the store layer's own modules and tests; nothing outside src/store uses it. */
  get raw(): Etcd3 {
    return this.client
  }
}
