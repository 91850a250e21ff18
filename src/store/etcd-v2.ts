/**
 * etcd's v2 keys API, read-only, over HTTP(S) with node's http/https: the keyspace flannel <= 0.17 used
 * (flannel-semantics.md §1.3, §1.7). The same connection options as the v3 store (endpoints tried in order, TLS with
 * --cacert/--cert/--key, basic auth with --user/--password, --dial-timeout for the first answer and --command-timeout
 * for each read), and failures mapped the same way: unreachable, TLS or credentials refused → exit 69.
 *
 * Reads are quorum reads (flanneld <= 0.17 read with Quorum: true). The revision of a snapshot is the X-Etcd-Index
 * header, the v2 store's own index (unrelated to v3 revisions).
 */

import http from 'node:http'
import https from 'node:https'

import {FlannelctlError, UnavailableError, UsageError} from '../core/errors.js'
import {type KeyLayout, keyLayout} from '../core/keys.js'
import {classifyKeys, type NetworkSnapshot, type RawKV} from '../core/leases.js'
import {flattenV2, parseV2Error, parseV2Node, toV2Key, V2_KEY_NOT_FOUND, v2KeysPath} from '../core/v2-keyspace.js'
import type {ConnectionOptions} from './etcd-store.js'
import {normaliseEndpoint, readPem} from './endpoints.js'

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
  ) {
    super(message)
  }
}

const TLS_ERROR = /SSL|TLS|CERT|certificate|handshake|self.signed|unable to verify|wrong version number|EPROTO|alert/i

export class EtcdV2Store {
  readonly layout: KeyLayout
  private readonly endpoints: readonly string[]
  private readonly httpAgent: http.Agent
  private readonly httpsAgent: https.Agent | null
  private readonly authorization: string | undefined
  /** TTLs of the last readNetwork() and when they were read, so leaseTtls() can count down from there. */
  private ttls = new Map<string, number>()
  private ttlsReadAt = 0

  private constructor(private readonly opts: ConnectionOptions) {
    this.layout = keyLayout(opts.prefix)
    this.endpoints = opts.endpoints.map(normaliseEndpoint)
    if ((opts.cert && !opts.key) || (!opts.cert && opts.key)) {
      throw new UsageError('--cert and --key must be given together', 'INVALID_TLS_FLAGS')
    }
    this.httpAgent = new http.Agent({keepAlive: true, maxSockets: 8})
    const tls = this.endpoints.some((e) => e.startsWith('https://'))
    this.httpsAgent = tls
      ? new https.Agent({
          keepAlive: true,
          maxSockets: 8,
          ca: opts.cacert ? readPem(opts.cacert, '--cacert') : undefined,
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
    if (this.where !== 'http://127.0.0.1:2379') flags.push(`--endpoints ${this.where}`)
    if (this.opts.cacert) flags.push(`--ca-file ${this.opts.cacert}`)
    if (this.opts.cert) flags.push(`--cert-file ${this.opts.cert}`)
    if (this.opts.key) flags.push(`--key-file ${this.opts.key}`)
    if (this.opts.user) flags.push(`--username ${this.opts.user}`)
    return flags.join(' ')
  }

  /** One key, or null when it does not exist. */
  async getKey(key: string, timeoutMs = this.opts.commandTimeoutMs): Promise<RawKV | null> {
    const {res} = await this.get(v2KeysPath(key) + '?quorum=true', timeoutMs, key)
    if (res === null) return null
    const node = parseV2Node(res.body)
    if (node instanceof Error) throw this.badAnswer(node)
    return flattenV2(node, this.layout).kvs[0] ?? null
  }

  /** Everything under the prefix (one recursive quorum GET): config, subnet keys and foreign keys. */
  async readNetwork(): Promise<NetworkSnapshot> {
    const dir = toV2Key(this.layout.prefix)
    const {res, index} = await this.get(
      v2KeysPath(dir) + '?recursive=true&quorum=true',
      this.opts.commandTimeoutMs,
      dir,
    )
    this.ttlsReadAt = Date.now()
    if (res === null) {
      // No directory at the prefix: an empty keyspace.
      this.ttls = new Map()
      return classifyKeys(this.layout, [], index)
    }
    const node = parseV2Node(res.body)
    if (node instanceof Error) throw this.badAnswer(node)
    const flat = flattenV2(node, this.layout)
    this.ttls = flat.ttls
    return classifyKeys(this.layout, flat.kvs, index)
  }

  /**
   * Remaining TTL in seconds of each synthetic lease ID of the last readNetwork(), counted down by the time since
   * that read (an expired key maps to -1, as a v3 TimeToLive on an expired lease does). Unknown IDs are absent.
   */
  async leaseTtls(ids: Iterable<string>): Promise<Map<string, number>> {
    const elapsed = Math.floor((Date.now() - this.ttlsReadAt) / 1000)
    const out = new Map<string, number>()
    for (const id of ids) {
      const ttl = this.ttls.get(id)
      if (ttl === undefined) continue
      out.set(id, ttl - elapsed > 0 ? ttl - elapsed : -1)
    }
    return out
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

  private request(endpoint: string, path: string, timeoutMs: number): Promise<HttpAnswer> {
    const tls = endpoint.startsWith('https://')
    const url = new URL(endpoint + path)
    const dialMs = Math.min(this.opts.dialTimeoutMs, timeoutMs)
    return new Promise((resolve, reject) => {
      const headers: Record<string, string> = {accept: 'application/json'}
      if (this.authorization) headers.authorization = this.authorization
      const options = {method: 'GET', headers, agent: tls ? this.httpsAgent! : this.httpAgent}
      const req = tls ? https.request(url, options) : http.request(url, options)
      let settled = false
      const fail = (message: string) => {
        if (settled) return
        settled = true
        clearTimeout(overall)
        clearTimeout(dial)
        req.destroy()
        reject(new TransportError(message, endpoint, tls))
      }
      const overall = setTimeout(() => fail(`no answer within ${timeoutMs} ms`), timeoutMs)
      let dial: NodeJS.Timeout | undefined = setTimeout(() => fail(`no connection within ${dialMs} ms`), dialMs)
      const connected = () => {
        clearTimeout(dial)
        dial = undefined
      }
      req.on('socket', (socket) => {
        if (!socket.connecting && !(socket as {pending?: boolean}).pending) connected()
        else socket.once(tls ? 'secureConnect' : 'connect', connected)
      })
      req.on('error', (error: NodeJS.ErrnoException) => {
        // OpenSSL's text ("800C...:error:0A000412:SSL routines:ssl3_read_bytes:sslv3 alert bad certificate:../deps/...") → its reason.
        const msg = /SSL routines:[^:]*:([^:]+):/.exec(error.message)?.[1] ?? error.message
        fail(error.code && !msg.includes(error.code) ? `${error.code}: ${msg}` : msg)
      })
      req.on('response', (res) => {
        connected()
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
      req.end()
    })
  }

  private transportFailure(last: TransportError | undefined, timeoutMs: number): FlannelctlError {
    const msg = last?.message ?? `no answer within ${timeoutMs} ms`
    if (last?.tls && TLS_ERROR.test(msg)) {
      const which = [this.opts.cacert && `--cacert ${this.opts.cacert}`, this.opts.cert && `--cert ${this.opts.cert}`]
        .filter(Boolean)
        .join(', ')
      return new UnavailableError(
        `TLS handshake with etcd at ${this.where} failed${which ? ` (using ${which})` : ''}: ${msg}`,
        'ETCD_TLS_FAILED',
        'check that --cacert signed the server certificate and that the server trusts --cert',
      )
    }
    return new UnavailableError(
      `etcd unreachable at ${this.where} (v2 API): ${msg}`,
      'ETCD_UNAVAILABLE',
      'check --endpoints (or ETCDCTL_ENDPOINTS / FLANNELD_ETCD_ENDPOINTS)',
    )
  }

  private httpFailure(res: HttpAnswer, err: ReturnType<typeof parseV2Error>, key: string): FlannelctlError {
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
        `etcd at ${this.where} rejected user "${this.opts.user}" on the v2 API: wrong password, or no recursive read permission on ${toV2Key(key)}`,
        'ETCD_AUTH_FAILED',
        'v2 users and roles are separate from v3 ones: check them with ETCDCTL_API=2 etcdctl user get / role get',
      )
    }
    const what = err
      ? `error ${err.errorCode}: ${err.message}${err.cause ? ` (${err.cause})` : ''}`
      : res.body.trim().slice(0, 200)
    return new UnavailableError(
      `etcd at ${this.where} failed a v2 read of ${toV2Key(key)} with HTTP ${res.status}: ${what}`,
      'ETCD_V2_ERROR',
    )
  }
}
