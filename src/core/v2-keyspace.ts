/**
 * etcd's v2 keys API as flannel <= 0.17 used it (docs/flannel.md §1.3, §1.5, §1.7), decoded into the same
 * RawKV rows the v3 store yields. Pure: the store fetches, this turns a `GET /v2/keys<prefix>?recursive=true` body
 * into rows.
 *
 * A v2 node has no lease, only a TTL. So that every consumer of RawKV keeps telling leases from reservations by
 * `lease === '0'`, a node with a TTL gets a synthetic, stable lease ID `v2:<key>` (never a number, so it can never be
 * mistaken for a v3 lease) and its TTL is served by the reader's leaseTtls(); a node without a TTL gets lease '0'.
 */

import type {KeyLayout} from './keys.js'
import type {RawKV} from './leases.js'

/** One node of a v2 response: a key with a value, or a directory with child nodes. */
export interface V2Node {
  readonly key: string
  readonly value?: string
  readonly dir?: boolean
  readonly nodes?: readonly V2Node[]
  /** Remaining seconds, rounded up by etcd when it answered; absent for keys without a TTL. */
  readonly ttl?: number
  /** RFC 3339 expiry; absent for keys without a TTL. */
  readonly expiration?: string
  readonly modifiedIndex: number
  readonly createdIndex: number
}

/** The v2 error body, e.g. `{"errorCode":100,"message":"Key not found","cause":"/coreos.com","index":7}`. */
export interface V2Error {
  readonly errorCode: number
  readonly message: string
  readonly cause?: string
  readonly index?: number
}

/** v2 error code 100: the key (or a parent directory) does not exist. */
export const V2_KEY_NOT_FOUND = 100
/** v2 error code 101: a prevIndex/prevValue guard failed ("Compare failed"). */
export const V2_COMPARE_FAILED = 101
/** v2 error code 105: prevExist=false and the key exists ("Key already exists"). */
export const V2_KEY_EXISTS = 105

const LEASE_PREFIX = 'v2:'

/** The synthetic lease ID of a v2 key with a TTL. */
export function v2LeaseId(key: string): string {
  return LEASE_PREFIX + key
}

/**
 * The v2 key of a flannel key. v2 keys are paths, always absolute: flanneld <= 0.17 with a relative --etcd-prefix
 * (`coreos.com/network`) stored `/coreos.com/network/...`.
 */
export function toV2Key(key: string): string {
  return key.startsWith('/') ? key : '/' + key
}

/** The flannel key (in the layout's own form, relative or absolute) of a v2 key. */
export function fromV2Key(v2Key: string, layout: KeyLayout): string {
  return layout.prefix.startsWith('/') ? v2Key : v2Key.replace(/^\/+/, '')
}

/** The request path of a key under /v2/keys, each segment percent-encoded (subnet keys hold `&` and `:`). */
export function v2KeysPath(key: string): string {
  const segs = toV2Key(key)
    .split('/')
    .filter((s) => s !== '')
    .map((s) => encodeURIComponent(s))
  return '/v2/keys/' + segs.join('/')
}

function isNode(x: unknown): x is V2Node {
  if (typeof x !== 'object' || x === null) return false
  const n = x as Record<string, unknown>
  return (
    typeof n.key === 'string' &&
    (n.value === undefined || typeof n.value === 'string') &&
    (n.nodes === undefined || Array.isArray(n.nodes))
  )
}

/** The `node` of a successful v2 response, or an Error saying why the body is not one. */
export function parseV2Node(body: string): V2Node | Error {
  let doc: unknown
  try {
    doc = JSON.parse(body)
  } catch (error) {
    return new Error(`not JSON: ${(error as Error).message}`)
  }
  const node = (doc as {node?: unknown} | null)?.node
  if (!isNode(node)) return new Error('no "node" in the answer')
  return node
}

/** The error of a failed v2 response, or null when the body is not a v2 error (a plain-text 404, for instance). */
export function parseV2Error(body: string): V2Error | null {
  try {
    const doc = JSON.parse(body) as Partial<V2Error> | null
    if (doc && typeof doc.errorCode === 'number')
      return {errorCode: doc.errorCode, message: String(doc.message ?? ''), cause: doc.cause, index: doc.index}
  } catch {
    // not JSON
  }
  return null
}

/**
 * Whether a v2 node has a TTL. A reservation has neither `ttl` nor `expiration`. Checking `ttl` alone is wrong: for
 * about 0.2-0.5 s after a key expires (until the leader's next expiry sweep) etcd 3.4 still returns it with its
 * `expiration` but without `ttl` (its remaining TTL rounds to 0, which `omitempty` drops). flanneld <= 0.17 decides by
 * `expiration` (nodeToLease: `node.Expiration != nil`), and so do we.
 */
export function v2HasTtl(n: Pick<V2Node, 'ttl' | 'expiration'>): boolean {
  return typeof n.ttl === 'number' || (typeof n.expiration === 'string' && n.expiration !== '')
}

/**
 * The remaining TTL in seconds of a node with a TTL, as etcd reported it (rounded up), or -1 when it has run out:
 * no `ttl` next to an `expiration` (the expiry window above), or a `ttl` of 0 or less (etcd sends -1 when its sweep
 * runs late).
 */
export function v2RemainingTtl(n: Pick<V2Node, 'ttl' | 'expiration'>): number {
  return typeof n.ttl === 'number' && n.ttl > 0 ? n.ttl : -1
}

export interface FlatV2 {
  /** Every key with a value under the node, depth first, as RawKV rows (directories are not rows). */
  readonly kvs: RawKV[]
  /** Remaining TTL in seconds per synthetic lease ID, as etcd reported it; -1 for a key past its expiration. */
  readonly ttls: Map<string, number>
}

/**
 * Flattens a (recursive) v2 node into RawKV rows: modRevision = modifiedIndex, createRevision = createdIndex,
 * version '1' (v2 keeps no version), lease '0' without a TTL and `v2:<key>` with one (see v2HasTtl: a key in its
 * expiry window has a TTL, of -1).
 */
export function flattenV2(root: V2Node, layout: KeyLayout): FlatV2 {
  const kvs: RawKV[] = []
  const ttls = new Map<string, number>()
  const visit = (n: V2Node): void => {
    if (n.dir) {
      for (const c of n.nodes ?? []) visit(c)
      return
    }
    const key = fromV2Key(n.key, layout)
    const lease = v2HasTtl(n) ? v2LeaseId(key) : '0'
    if (lease !== '0') ttls.set(lease, v2RemainingTtl(n))
    kvs.push({
      key,
      value: n.value ?? '',
      createRevision: String(n.createdIndex),
      modRevision: String(n.modifiedIndex),
      version: '1',
      lease,
    })
  }
  visit(root)
  return {kvs, ttls}
}

/**
 * One shell word in POSIX single quotes unless it is plain (`'` as `'\\''`), for the v2 commands flannelctl prints.
 * A local stand-in until every hint is built by the shared hint builder.
 */
export function shellWord(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`
}
