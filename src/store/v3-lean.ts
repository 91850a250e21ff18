/**
 * The lean v3 read client: etcd's Range, LeaseTimeToLive and Authenticate calls as gRPC over node:http2, with the few
 * protobuf messages they need encoded and decoded by hand (field numbers from etcd's api/etcdserverpb/rpc.proto and
 * api/mvccpb/kv.proto, etcd 3.4). It exists because loading etcd3 + grpc-js + protobufjs costs ~250 ms of CPU per
 * command and their per-call overhead doubles a TimeToLive sweep (issue 12; BENCHMARKS.md has the measurements,
 * including @connectrpc/connect-node, which was measured and was slower than etcd3 for the sweep). EtcdStore reads
 * through it; etcd3 is loaded only for writes, watches and leases.
 *
 * What it does, as the etcd3 path does: TLS with a CA and client certificates (IP-address endpoints verified against
 * the certificate's IP SANs, without Node's DEP0123 warning), user/password (Authenticate, then the token as `token`
 * metadata on every call, authenticated again once when etcd says the token is invalid), several endpoints (a call
 * that finds an endpoint unavailable goes on to the next, within its deadline), a deadline per call (the grpc-timeout
 * header and a local timer), and responses of any size. Failures are raised raw (GrpcError, or Node's socket and TLS
 * errors); EtcdStore.mapError turns them into the same one-line messages as etcd3's.
 */

import http2 from 'node:http2'
import net from 'node:net'
import tls from 'node:tls'

import type {RawKV} from '../core/leases.js'

/**
 * The `n` bytes at `start` of `b` as UTF-8 (invalid UTF-8 becomes U+FFFD), within the message that ends at `limit`:
 * a length that runs past it is a malformed answer. Buffer's own utf8Slice (what toString ends in, without its
 * argument handling: two strings per key at 65,535 keys), which throws a RangeError past the buffer's end.
 */
function utf8(b: Buffer, start: number, n: number, limit: number): string {
  if (start + n > limit) throw new GrpcError(GRPC_UNKNOWN, 'malformed etcd answer (truncated)')
  return (b as Buffer & {utf8Slice(start: number, end: number): string}).utf8Slice(start, start + n)
}

/** A gRPC status other than OK, from etcd (grpc-status/grpc-message) or from this client (deadline, bad answer). */
export class GrpcError extends Error {
  constructor(
    readonly grpcCode: number,
    message: string,
    /** True when etcd itself sent the status (its grpc-status trailer), not when this client concluded it. */
    readonly fromEtcd = false,
  ) {
    super(message)
    this.name = 'GrpcError'
  }
}

export const GRPC_DEADLINE_EXCEEDED = 4
export const GRPC_PERMISSION_DENIED = 7
export const GRPC_OUT_OF_RANGE = 11
export const GRPC_UNAVAILABLE = 14
/** What this client reports for an HTTP/2 answer that is not gRPC (grpc-js uses UNKNOWN/UNIMPLEMENTED alike). */
const GRPC_UNKNOWN = 2

export interface LeanOptions {
  /** Normalised endpoints (http:// or https://). */
  readonly endpoints: readonly string[]
  readonly ca?: Buffer
  readonly cert?: Buffer
  readonly key?: Buffer
  readonly user?: string
  readonly password?: string
  /** Deadline of each Authenticate call. */
  readonly authTimeoutMs: number
}

export interface RangeResult {
  readonly revision: string
  readonly kvs: RawKV[]
}

const RANGE = '/etcdserverpb.KV/Range'
const TIME_TO_LIVE = '/etcdserverpb.Lease/LeaseTimeToLive'
const AUTHENTICATE = '/etcdserverpb.Auth/Authenticate'
/** HTTP/2 flow-control window per stream and per connection: a 12 MB Range arrives without waiting for updates. */
const WINDOW = 32 << 20

// ------------------------------------------------------------------------------------------------------------------
// Protobuf, by hand: varints, length-delimited fields, and the three request messages.

function pushSmall(out: number[], v: number): void {
  while (v > 127) {
    out.push((v & 127) | 128)
    v = Math.floor(v / 128)
  }
  out.push(v)
}

function pushBytes(out: number[], field: number, b: Buffer): void {
  out.push((field << 3) | 2)
  pushSmall(out, b.length)
  for (const x of b) out.push(x)
}

/** A gRPC message frame: no compression, big-endian length, the message. */
function frame(msg: number[]): Buffer {
  const b = Buffer.allocUnsafe(5 + msg.length)
  b[0] = 0
  b.writeUInt32BE(msg.length, 1)
  for (let i = 0; i < msg.length; i++) b[5 + i] = msg[i]!
  return b
}

/** The range_end that makes a Range cover every key starting with `prefix` (etcd's GetPrefixRangeEnd). */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix)
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]!++
      return end.subarray(0, i + 1)
    }
  }
  return Buffer.from([0])
}

function rangeRequest(key: Buffer, rangeEnd?: Buffer): Buffer {
  const m: number[] = []
  pushBytes(m, 1, key)
  if (rangeEnd) pushBytes(m, 2, rangeEnd)
  return frame(m)
}

/**
 * LeaseTimeToLiveRequest{ID: id} framed, written straight into its buffer: the 64-bit varint from two 32-bit halves
 * (one BigInt conversion per call instead of one per 7 bits: the sweep makes 65,535 of these).
 */
function ttlRequest(id: string): Buffer {
  const v = BigInt.asUintN(64, BigInt(id))
  let lo = Number(v & 0xffff_ffffn)
  let hi = Number(v >> 32n)
  const b = Buffer.allocUnsafe(16)
  let p = 6
  while (hi !== 0) {
    b[p++] = (lo & 127) | 128
    lo = ((lo >>> 7) | (hi << 25)) >>> 0
    hi >>>= 7
  }
  while (lo > 127) {
    b[p++] = (lo & 127) | 128
    lo >>>= 7
  }
  b[p++] = lo
  b[0] = 0
  b.writeUInt32BE(p - 5, 1)
  b[5] = 0x08
  return b.subarray(0, p)
}

function authRequest(name: string, password: string): Buffer {
  const m: number[] = []
  pushBytes(m, 1, Buffer.from(name, 'utf8'))
  pushBytes(m, 2, Buffer.from(password, 'utf8'))
  return frame(m)
}

/** A cursor over one decoded message; int64 varints are read as decimal strings (signed, like etcd3's Long). */
class Reader {
  p = 0
  constructor(
    readonly b: Buffer,
    readonly end = b.length,
  ) {}

  /** A varint below 2^53 (lengths, tags); larger ones are read by int64(). */
  small(): number {
    const b = this.b
    let v = 0
    let mul = 1
    for (;;) {
      const x = b[this.p++]!
      v += (x & 127) * mul
      if (x < 128) return v
      mul *= 128
      if (mul > 2 ** 49) throw new GrpcError(GRPC_UNKNOWN, 'malformed etcd answer (varint too long)')
    }
  }

  /** An int64 as a decimal string: below 2^53 without BigInt, the rest (lease IDs, negatives) with one conversion. */
  int64(): string {
    const b = this.b
    const start = this.p
    let v = 0
    let mul = 1
    for (let i = 0; i < 7; i++) {
      const x = b[this.p++]!
      v += (x & 127) * mul
      if (x < 128) return String(v)
      mul *= 128
    }
    // 8 to 10 bytes (lease IDs are ~2^62): the low and high 32 bits as numbers, then one BigInt of the two halves
    // (not one BigInt operation per 7 bits); bits past 64 are dropped, as protobuf does.
    this.p = start
    let lo = 0
    for (let i = 0; i < 4; i++) {
      const x = b[this.p++]!
      lo = (lo | ((x & 127) << (7 * i))) >>> 0
    }
    let x = b[this.p++]!
    lo = (lo | ((x & 127) << 28)) >>> 0
    let hi = (x & 127) >> 4
    for (let i = 0; i < 5 && x >= 128; i++) {
      x = b[this.p++]!
      hi = (hi | ((x & 127) << (7 * i + 3))) >>> 0
    }
    if (x >= 128) throw new GrpcError(GRPC_UNKNOWN, 'malformed etcd answer (varint too long)')
    if (hi < 0x20_0000) return String(hi * 2 ** 32 + lo)
    return String(BigInt.asIntN(64, (BigInt(hi) << 32n) | BigInt(lo)))
  }

  /** Skips a field of wire type `wt`. */
  skip(wt: number): void {
    if (wt === 0) {
      while (this.b[this.p++]! >= 128) if (this.p >= this.end) break
    } else if (wt === 2) {
      const n = this.small()
      this.p += n
    } else if (wt === 1) this.p += 8
    else if (wt === 5) this.p += 4
    else throw new GrpcError(GRPC_UNKNOWN, `malformed etcd answer (wire type ${wt})`)
  }
}

/** ResponseHeader.revision (field 3) of the header spanning [r.p, end). */
function headerRevision(r: Reader, end: number): string {
  let revision = '0'
  while (r.p < end) {
    const tag = r.small()
    if (tag === 0x18) revision = r.int64()
    else r.skip(tag & 7)
  }
  return revision
}

/** mvccpb.KeyValue: key 1, create_revision 2, mod_revision 3, version 4, value 5, lease 6. */
function decodeKv(r: Reader, end: number): RawKV {
  const b = r.b
  let key = ''
  let value = ''
  let createRevision = '0'
  let modRevision = '0'
  let version = '0'
  let lease = '0'
  while (r.p < end) {
    const tag = r.small()
    switch (tag) {
      case 0x0a: {
        const n = r.small()
        key = utf8(b, r.p, n, end)
        r.p += n
        break
      }
      case 0x2a: {
        const n = r.small()
        value = utf8(b, r.p, n, end)
        r.p += n
        break
      }
      case 0x10:
        createRevision = r.int64()
        break
      case 0x18:
        modRevision = r.int64()
        break
      case 0x20:
        version = r.int64()
        break
      case 0x30:
        lease = r.int64()
        break
      default:
        r.skip(tag & 7)
    }
  }
  return {key, value, createRevision, modRevision, version, lease}
}

/** RangeResponse: header 1, kvs 2 (repeated KeyValue); more 3 and count 4 are not needed (no limit is sent). */
export function decodeRange(b: Buffer): RangeResult {
  const r = new Reader(b)
  const kvs: RawKV[] = []
  let revision = '0'
  while (r.p < r.end) {
    const tag = r.small()
    if (tag === 0x0a || tag === 0x12) {
      const n = r.small()
      const end = r.p + n
      if (end > r.end) throw new GrpcError(GRPC_UNKNOWN, 'malformed etcd answer (truncated)')
      if (tag === 0x0a) revision = headerRevision(r, end)
      else kvs.push(decodeKv(r, end))
      r.p = end
    } else r.skip(tag & 7)
  }
  return {revision, kvs}
}

/**
 * A RangeResponse kept as its bytes: where each KeyValue message is (kv i spans [start[i], end[i]) of `bytes`), so a
 * listing holds one off-heap buffer instead of six strings per key while it waits for TTLs (issue 12). decodeKvAt
 * decodes one of them exactly as decodeRange does.
 */
export interface RawRange {
  readonly revision: string
  readonly bytes: Buffer
  readonly count: number
  readonly start: Uint32Array
  readonly end: Uint32Array
}

/** RangeResponse as decodeRange reads it, with the KeyValue messages located instead of decoded. */
export function scanRange(b: Buffer): RawRange {
  const r = new Reader(b)
  let start = new Uint32Array(1024)
  let end = new Uint32Array(1024)
  let count = 0
  let revision = '0'
  while (r.p < r.end) {
    const tag = r.small()
    if (tag === 0x0a || tag === 0x12) {
      const n = r.small()
      const e = r.p + n
      if (e > r.end) throw new GrpcError(GRPC_UNKNOWN, 'malformed etcd answer (truncated)')
      if (tag === 0x0a) revision = headerRevision(r, e)
      else {
        if (count === start.length) {
          const s2 = new Uint32Array(count * 2)
          const e2 = new Uint32Array(count * 2)
          s2.set(start)
          e2.set(end)
          start = s2
          end = e2
        }
        start[count] = r.p
        end[count++] = e
      }
      r.p = e
    } else r.skip(tag & 7)
  }
  return {revision, bytes: b, count, start: start.subarray(0, count), end: end.subarray(0, count)}
}

/** The KeyValue message at [start, end) of `b`, decoded as decodeRange decodes it. */
export function decodeKvAt(b: Buffer, start: number, end: number): RawKV {
  const r = new Reader(b)
  r.p = start
  return decodeKv(r, end)
}

/** The key (field 1, the last one when repeated) of the KeyValue message at [start, end) of `b`. */
export function kvKeyAt(b: Buffer, start: number, end: number): string {
  const r = new Reader(b)
  r.p = start
  let key = ''
  while (r.p < end) {
    const tag = r.small()
    if (tag === 0x0a) {
      const n = r.small()
      key = utf8(b, r.p, n, end)
      r.p += n
    } else r.skip(tag & 7)
  }
  return key
}

/** The lease (field 6, as decodeKv reads it) of the KeyValue message at [start, end) of `b`. */
export function kvLeaseAt(b: Buffer, start: number, end: number): string {
  const r = new Reader(b)
  r.p = start
  let lease = '0'
  while (r.p < end) {
    const tag = r.small()
    if (tag === 0x30) lease = r.int64()
    else r.skip(tag & 7)
  }
  return lease
}

/** LeaseTimeToLiveResponse.TTL (field 3): seconds left, -1 when the lease has expired or was revoked. */
function decodeTtl(b: Buffer): number {
  const r = new Reader(b)
  while (r.p < r.end) {
    const tag = r.small()
    if (tag === 0x18) return Number(r.int64())
    r.skip(tag & 7)
  }
  return 0
}

/** AuthenticateResponse.token (field 2). */
function decodeToken(b: Buffer): string {
  const r = new Reader(b)
  while (r.p < r.end) {
    const tag = r.small()
    if (tag === 0x12) {
      const n = r.small()
      return utf8(b, r.p, n, r.end)
    }
    r.skip(tag & 7)
  }
  return ''
}

// ------------------------------------------------------------------------------------------------------------------
// gRPC over HTTP/2.

/** An error that makes a call go on to the next endpoint: no answer, or etcd saying it cannot serve (no leader). */
function isUnavailable(error: unknown): boolean {
  return error instanceof GrpcError && error.grpcCode === GRPC_UNAVAILABLE
}

/**
 * etcd answering that it cannot serve now: "etcdserver: no leader", "etcdserver: request timed out", and "etcdserver:
 * leader changed", which etcd 3.4 answers to a read that was waiting on a member when a new leader took over. A
 * member that says so is up, and answers the same read once the cluster has a leader again.
 */
function isEtcdBusy(error: unknown): boolean {
  return isUnavailable(error) && (error as GrpcError).fromEtcd
}

/** How long a call waits before trying the endpoints again after etcd answered that it cannot serve. */
const BUSY_RETRY_MS = 50

/** The grpc-timeout header: at most 8 digits, so long deadlines go in seconds or hours. */
export function grpcTimeout(ms: number): string {
  if (ms <= 99_999_999) return `${ms}m`
  const s = Math.ceil(ms / 1000)
  return s <= 99_999_999 ? `${s}S` : `${Math.ceil(s / 3600)}H`
}

const INVALID_TOKEN = /invalid auth token|auth token is expired/i

/** `grpc-message` is percent-encoded (gRPC over HTTP/2, "Responses"). */
function grpcMessage(v: unknown): string {
  const s = typeof v === 'string' ? v : ''
  try {
    return decodeURIComponent(s)
  } catch {
    return s
  }
}

export class LeanV3Client {
  private readonly sessions = new Map<string, http2.ClientHttp2Session>()
  /** The endpoint that answered last: calls start there. */
  private current = 0
  private token: Promise<string> | null = null
  private closed = false

  constructor(private readonly opts: LeanOptions) {}

  /** Every key from `key` (with `rangeEnd`: up to it, else just `key`) at the current revision. */
  async range(key: Buffer, rangeEnd: Buffer | undefined, timeoutMs: number): Promise<RangeResult> {
    return decodeRange(await this.unary(RANGE, rangeRequest(key, rangeEnd), timeoutMs))
  }

  /** range(), with the answer kept as its bytes (scanRange). */
  async rangeRaw(key: Buffer, rangeEnd: Buffer | undefined, timeoutMs: number): Promise<RawRange> {
    return scanRange(await this.unary(RANGE, rangeRequest(key, rangeEnd), timeoutMs))
  }

  /** Remaining TTL in seconds of lease `id` (decimal), -1 when it expired or was revoked. */
  timeToLive(id: string, timeoutMs: number): Promise<number> {
    return this.unary(TIME_TO_LIVE, ttlRequest(id), timeoutMs).then(decodeTtl)
  }

  close(): void {
    this.closed = true
    for (const s of this.sessions.values()) s.destroy()
    this.sessions.clear()
  }

  /**
   * One call, with auth when a user is set. Without one it adds no promise of its own (plain functions, not async
   * ones, on this path: a TimeToLive sweep makes 65,535 calls).
   */
  private unary(path: string, body: Buffer, timeoutMs: number): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs
    if (this.opts.user === undefined) return this.failover(path, body, deadline, undefined)
    return this.unaryAuthenticated(path, body, deadline)
  }

  /** The token first (once), and the call once more after etcd says the token is no longer valid. */
  private async unaryAuthenticated(path: string, body: Buffer, deadline: number): Promise<Buffer> {
    const token = await this.authToken()
    try {
      return await this.failover(path, body, deadline, token)
    } catch (error) {
      if (!(error instanceof GrpcError) || !INVALID_TOKEN.test(error.message)) throw error
      if (this.token && (await this.token.catch(() => null)) === token) this.token = null
      return this.failover(path, body, deadline, await this.authToken())
    }
  }

  private authToken(): Promise<string> {
    this.token ??= this.failover(
      AUTHENTICATE,
      authRequest(this.opts.user ?? '', this.opts.password ?? ''),
      Date.now() + this.opts.authTimeoutMs,
      undefined,
    ).then(decodeToken, (error: unknown) => {
      this.token = null
      throw error
    })
    return this.token
  }

  /** The call on the current endpoint, then on each next one while they are unavailable and the deadline allows. */
  private failover(path: string, body: Buffer, deadline: number, token: string | undefined): Promise<Buffer> {
    const first = this.current
    return this.once(this.opts.endpoints[first]!, path, body, deadline, token).then(
      (res) => {
        this.current = first
        return res
      },
      (error: unknown) => this.failoverFrom(first, error, path, body, deadline, token),
    )
  }

  /**
   * failover() after the call on endpoint `first` failed with `error`: the next endpoints, in turn. After a round of
   * every endpoint in which some member answered that it cannot serve (isEtcdBusy: a leader election), the round is
   * made again, BUSY_RETRY_MS later, until the deadline, as etcdctl's client retries its reads on such answers. A
   * round in which no member answered (refused, reset, no answer) ends the call with the last failure.
   */
  private async failoverFrom(
    first: number,
    error: unknown,
    path: string,
    body: Buffer,
    deadline: number,
    token: string | undefined,
  ): Promise<Buffer> {
    const n = this.opts.endpoints.length
    let last = error
    // What the call ends with once it gives up: etcd's own answer, when one came, over a refused connection.
    let busy = isEtcdBusy(error) ? error : undefined
    let busyThisRound = busy !== undefined
    for (let i = 1; ; i++) {
      if (!isUnavailable(last)) throw last
      if (Date.now() >= deadline) throw busy ?? last
      if (i % n === 0) {
        if (!busyThisRound) throw last
        busyThisRound = false
        await new Promise((resolve) => setTimeout(resolve, Math.min(BUSY_RETRY_MS, deadline - Date.now())))
        if (Date.now() >= deadline) throw busy
      }
      const at = (first + i) % n
      try {
        const res = await this.once(this.opts.endpoints[at]!, path, body, deadline, token)
        this.current = at
        return res
      } catch (e) {
        last = e
        if (isEtcdBusy(e)) {
          busy = e
          busyThisRound = true
        }
      }
    }
  }

  private session(endpoint: string): http2.ClientHttp2Session {
    const cached = this.sessions.get(endpoint)
    if (cached && !cached.closed && !cached.destroyed) return cached
    const url = new URL(endpoint)
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1')
    const options: http2.SecureClientSessionOptions = {settings: {initialWindowSize: WINDOW}}
    if (url.protocol === 'https:') {
      const port = Number(url.port || 443)
      // Our own TLS socket: Node's http2.connect would pass an IP address as the SNI servername (DEP0123). Without
      // a servername, an IP endpoint is checked against the certificate's IP SANs.
      options.createConnection = () => {
        const socket = tls.connect({
          host,
          port,
          ca: this.opts.ca,
          cert: this.opts.cert,
          key: this.opts.key,
          ALPNProtocols: ['h2'],
          ...(net.isIP(host) ? {} : {servername: host}),
        })
        // A reset after connecting and before the handshake completed (a plain-http etcd answers a ClientHello with
        // bytes or with a reset, as it happens) is a refused handshake, not a lost connection: say so in the error
        // every stream gets (failures.ts reads it). Refused connections stay unreachable. Registered before http2's
        // own listener, so it runs first.
        let secure = false
        socket.once('secureConnect', () => (secure = true))
        socket.once('error', (error: NodeJS.ErrnoException) => {
          if (!secure && error.code === 'ECONNRESET') error.message += ' during the TLS handshake'
        })
        return socket
      }
    }
    const s = http2.connect(endpoint, options)
    // The deadline timers keep the process alive while calls are pending; an idle connection does not.
    s.unref()
    s.on('error', () => {}) // reported through each pending stream
    s.once('connect', () => s.setLocalWindowSize(WINDOW))
    const forget = () => {
      if (this.sessions.get(endpoint) === s) this.sessions.delete(endpoint)
    }
    s.once('close', forget)
    s.once('goaway', forget)
    this.sessions.set(endpoint, s)
    return s
  }

  private once(
    endpoint: string,
    path: string,
    body: Buffer,
    deadline: number,
    token: string | undefined,
  ): Promise<Buffer> {
    if (this.closed) return Promise.reject(new Error('the etcd client is closed'))
    return new Promise<Buffer>((resolve, reject) => {
      const left = Math.max(1, deadline - Date.now())
      const s = this.session(endpoint)
      const headers: http2.OutgoingHttpHeaders = {
        ':method': 'POST',
        ':path': path,
        'content-type': 'application/grpc',
        te: 'trailers',
        'grpc-timeout': grpcTimeout(left),
      }
      if (token !== undefined) headers.token = token
      const req = s.request(headers)
      let settled = false
      const fail = (error: Error) => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        reject(error)
      }
      // A session's failure (refused, reset, TLS) reaches every stream on it as the stream's 'error'.
      const timer = setTimeout(() => {
        // No answer by the deadline: the connection is given up (an address that never answers, or a connection
        // that died silently), and the next call connects again.
        req.close(http2.constants.NGHTTP2_CANCEL)
        s.destroy()
        fail(new GrpcError(GRPC_DEADLINE_EXCEEDED, `no answer within ${left} ms`))
      }, left)
      const chunks: Buffer[] = []
      let status: string | undefined
      let message = ''
      const statusFrom = (h: http2.IncomingHttpHeaders) => {
        if (h['grpc-status'] !== undefined) {
          status = String(h['grpc-status'])
          message = grpcMessage(h['grpc-message'])
        }
      }
      req.on('response', (h) => {
        const code = h[':status']
        const type = String(h['content-type'] ?? '')
        if (code !== 200) fail(new GrpcError(GRPC_UNKNOWN, `Received HTTP status code ${code}`))
        else if (!type.startsWith('application/grpc'))
          fail(new GrpcError(GRPC_UNKNOWN, `Received an answer with content-type "${type}", not gRPC`))
        else statusFrom(h)
        if (settled) req.close(http2.constants.NGHTTP2_CANCEL)
      })
      req.on('trailers', statusFrom)
      req.on('data', (c: Buffer) => chunks.push(c))
      // Socket, TLS and HTTP/2 failures: nothing etcd said, so the endpoint is unavailable (mapError still reads the
      // message for TLS and not-HTTP/2 causes).
      req.on('error', (error: Error) =>
        fail(error instanceof GrpcError ? error : new GrpcError(GRPC_UNAVAILABLE, error.message)),
      )
      req.on('close', () => {
        if (settled) return
        if (status === undefined) {
          const code = req.rstCode
          return fail(
            code && code !== http2.constants.NGHTTP2_NO_ERROR
              ? new GrpcError(GRPC_UNAVAILABLE, `stream closed with RST_STREAM with code ${code}`)
              : new GrpcError(GRPC_UNKNOWN, 'malformed answer: no grpc-status'),
          )
        }
        if (status !== '0') return fail(new GrpcError(Number(status), message || `gRPC status ${status}`, true))
        const all = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)
        if (all.length < 5 || all[0] !== 0 || all.readUInt32BE(1) !== all.length - 5)
          return fail(new GrpcError(GRPC_UNKNOWN, 'malformed answer: not one uncompressed gRPC message'))
        settled = true
        clearTimeout(timer)
        resolve(all.subarray(5))
      })
      req.end(body)
    })
  }
}
