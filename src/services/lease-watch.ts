/**
 * leases watch: the subnets keyspace as a stream of decoded events (core/lease-events.ts names them).
 *
 * It lists once (etcd unreachable: exit 69, as every command), then watches from the listed revision, or from
 * `--rev`. Each change is classified against the key's previous value (etcd's prev_kv, v2's prevNode, else the last
 * known state, for a resync). When etcd cancels the watch (v3: a compaction while it was catching up, e.g. after a restart; v2: a
 * waitIndex older than the 1000 events the v2 store keeps) it lists again, emits the differences from the last known
 * state as events marked `resynced`, and watches from the new revision. A lost connection is the store's to resume
 * (from the revision after the last event delivered), with a note on stderr when it goes and when it comes back.
 */

import {setTimeout as sleep} from 'node:timers/promises'

import {NotFoundError, UsageError} from '../core/errors.js'
import {formatCidr4} from '../core/ipv4.js'
import {formatCidr6} from '../core/ipv6.js'
import {
  applyChange,
  classifyChange,
  diffSubnets,
  expandDirDelete,
  type LeaseEventKind,
  type SubnetChange,
} from '../core/lease-events.js'
import {decodeLeases, type RawKV} from '../core/leases.js'
import {parseSubnetKey} from '../core/subnet-key.js'
import type {LeaseWatchSource, WatchHandle} from '../store/port.js'
import {isoSeconds, leaseFilter, leaseToJson} from './leases.js'

/** One line of `leases watch --json` (JSON lines; the README documents every field). */
export interface LeaseEventJson {
  type: LeaseEventKind
  /** `watch`: from etcd's watch; `resync`: a difference found by listing again after the watch was lost; `list`: --list. */
  origin: 'watch' | 'resync' | 'list'
  resynced: boolean
  /** The revision (v2: index) of the change; for a resynced deletion, the revision of the list that found it gone. */
  revision: string
  key: string
  /** Decoded from the new value (deletions: from the value that was deleted, when known). */
  subnet: string | null
  ipv6Subnet: string | null
  publicIP: string | null
  publicIPv6: string | null
  backendType: string | null
  vtepMAC: string | null
  /** The key has (deletions: had) no lease; null when unknown. */
  reserved: boolean | null
  /** Remaining seconds of the key's lease, where known (null for reservations, deletions and failed lookups). */
  ttlSeconds: number | null
  leaseId: string | null
  /** The stored value byte for byte (null for deletions). */
  value: string | null
  previous: {value: string; leaseId: string; modRevision: string} | null
  /** What differs from the previous state: LeaseAttrs field names, `value`, `lease`, `reserved`, `unreserved`. */
  changes: string[]
  /** flanneld's reason for ignoring the key or value (it parses neither), else null. */
  malformed: string | null
  /** When flannelctl received it (RFC 3339, UTC). */
  time: string
}

export interface LeaseWatchOptions {
  /** `--rev N`: the first revision (v2: index) to deliver; without it, from the revision listed at the start. */
  fromRevision?: string
  /** `--list`: the current leases first, as `added` events with origin `list`. */
  list: boolean
  publicIP?: string
  subnet?: string
  /** Stop after this many events (listed ones not counted). */
  maxEvents?: number
  signal: AbortSignal
  now: () => number
  onEvent(e: LeaseEventJson): void
  /** After the first list answered, before any event: the revision listed. */
  onStarted?(revision: string): void
  onNote(message: string): void
}

export interface LeaseWatchSummary {
  events: number
  ended: 'max-events' | 'aborted'
  /** The last revision (v2: index) seen. */
  revision: string
}

type Decoded = Pick<
  LeaseEventJson,
  'subnet' | 'ipv6Subnet' | 'publicIP' | 'publicIPv6' | 'backendType' | 'vtepMAC' | 'malformed'
> & {lease: ReturnType<typeof decodeLeases>['leases'][number] | null}

/** What the key alone tells (its value unknown or undecodable): the subnets, and `malformed` as `why` says. */
function keyOnly(key: string, why: (sk: ReturnType<typeof parseSubnetKey>) => string | null): Decoded {
  const sk = parseSubnetKey(key)
  return {
    subnet: sk ? formatCidr4(sk.subnet) : null,
    ipv6Subnet: sk?.ipv6Subnet ? formatCidr6(sk.ipv6Subnet) : null,
    publicIP: null,
    publicIPv6: null,
    backendType: null,
    vtepMAC: null,
    malformed: why(sk),
    lease: null,
  }
}

/** The decoded fields of a key and its value (null: a deletion whose value is unknown). */
function decoded(key: string, kv: RawKV | null): Decoded {
  if (kv === null) return keyOnly(key, (sk) => (sk ? null : `failed to parse subnet key ${key}`))
  const d = decodeLeases([kv])
  const l = d.leases[0]
  if (!l) return keyOnly(key, () => d.malformed[0]?.error ?? 'malformed')
  // The fields as leases ls shows them (one formatting of subnets and addresses).
  const j = leaseToJson(l, null, 0)
  return {
    subnet: j.subnet,
    ipv6Subnet: j.ipv6Subnet,
    publicIP: j.publicIP,
    publicIPv6: j.publicIPv6,
    backendType: j.backendType,
    vtepMAC: j.vtepMAC,
    malformed: null,
    lease: l,
  }
}

type Item = {kind: 'changes'; changes: SubnetChange[]} | {kind: 'lost'; error: Error}

/** A queue the watch callbacks fill and the event loop drains, in order. */
class Inbox {
  private items: Item[] = []
  private wake: (() => void) | null = null

  push(item: Item): void {
    this.items.push(item)
    this.wake?.()
  }

  /** Whether the next item is a lost watch. */
  peekLost(): boolean {
    return this.items[0]?.kind === 'lost'
  }

  clear(): void {
    this.items = []
  }

  /** The next item, or null once `signal` aborts. */
  async next(signal: AbortSignal): Promise<Item | null> {
    while (this.items.length === 0) {
      if (signal.aborted) return null
      await new Promise<void>((resolve) => {
        const done = () => {
          signal.removeEventListener('abort', done)
          this.wake = null
          resolve()
        }
        this.wake = done
        signal.addEventListener('abort', done)
      })
    }
    return signal.aborted ? null : this.items.shift()!
  }
}

function errorText(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).replace(/\s+/g, ' ').trim()
}

/** Retries `fn` (1 s doubling to 10 s) until it succeeds; null when the signal aborted first. */
async function retrying<T>(
  what: string,
  signal: AbortSignal,
  note: (m: string) => void,
  fn: () => Promise<T>,
): Promise<T | null> {
  let delay = 1000
  // A call in flight (up to --command-timeout against a stalled etcd) does not hold up Ctrl-C.
  const aborted = new Promise<null>((resolve) => {
    if (signal.aborted) resolve(null)
    else signal.addEventListener('abort', () => resolve(null), {once: true})
  })
  for (let attempt = 1; !signal.aborted; attempt++) {
    try {
      const call = fn()
      call.catch(() => undefined)
      const r = await Promise.race([call, aborted])
      if (r === null && signal.aborted) {
        // Whatever the call yields later (a watch handle) is released.
        void call.then((x) => (x as {cancel?: () => Promise<void>} | null)?.cancel?.()).catch(() => undefined)
        return null
      }
      return r
    } catch (error) {
      if (signal.aborted) return null
      note(`note: ${what} failed (attempt ${attempt}): ${errorText(error)}; retrying in ${delay / 1000}s`)
      await sleep(delay, undefined, {signal}).catch(() => undefined)
      delay = Math.min(delay * 2, 10_000)
    }
  }
  return null
}

/**
 * The watch. `open` connects to etcd only after the options are checked, so a usage error exits 2 whether or not etcd
 * answers (as every command's input checks run before their first etcd call).
 */
export async function watchLeases(
  open: () => Promise<LeaseWatchSource>,
  o: LeaseWatchOptions,
): Promise<LeaseWatchSummary> {
  const keep = leaseFilter(o)
  const filtered = o.publicIP !== undefined || o.subnet !== undefined
  let from: bigint | null = null
  if (o.fromRevision !== undefined) {
    if (!/^[1-9]\d{0,18}$/.test(o.fromRevision))
      throw new UsageError(`invalid --rev "${o.fromRevision}": a revision is a whole number >= 1`, 'INVALID_REVISION')
    from = BigInt(o.fromRevision) - 1n
  }
  if (o.maxEvents !== undefined && (!Number.isInteger(o.maxEvents) || o.maxEvents < 1))
    throw new UsageError(`invalid --max-events "${o.maxEvents}": a whole number >= 1`, 'INVALID_FLAGS')

  const source = await open()
  const snap = await source.readNetwork()
  const state = new Map<string, RawKV>(snap.subnets.map((kv) => [kv.key, kv]))
  let revision = from === null ? BigInt(snap.revision) : from
  let delivered = 0
  // v3: a compacted --rev is known before anything is printed (v2 learns it from the first poll, below).
  if (from !== null && source.api === 'v3') {
    const oldest = await source.compactedRevision(String(from + 1n))
    if (oldest !== null) throw compacted(o.fromRevision!, oldest, 'v3')
  }

  /** Emits one classified change; true when --max-events is reached. */
  const emit = (
    c: SubnetChange,
    prev: RawKV | null,
    origin: LeaseEventJson['origin'],
    ttls: Map<string, number>,
    expired: boolean | null,
  ): boolean => {
    const {kind, changes} = classifyChange(c, prev, expired)
    const key = c.type === 'put' ? c.kv.key : c.key
    const shown = c.type === 'put' ? c.kv : prev
    const d = decoded(key, shown)
    if (filtered) {
      const prevLease = c.type === 'put' && prev ? decoded(key, prev).lease : null
      if (!((d.lease && keep(d.lease)) || (prevLease && keep(prevLease)))) return false
    }
    const {lease: _lease, ...fields} = d
    const put = c.type === 'put' ? c : null
    const ttl = put && put.kv.lease !== '0' ? (put.ttlSeconds ?? ttls.get(put.kv.lease) ?? null) : null
    o.onEvent({
      type: kind,
      origin,
      resynced: origin === 'resync',
      revision: put ? put.kv.modRevision : (c as Extract<SubnetChange, {type: 'delete'}>).revision,
      key,
      ...fields,
      reserved: shown ? shown.lease === '0' : null,
      ttlSeconds: ttl,
      leaseId: shown ? shown.lease : null,
      value: put ? put.kv.value : null,
      previous: prev ? {value: prev.value, leaseId: prev.lease, modRevision: prev.modRevision} : null,
      changes,
      time: isoSeconds(o.now()),
    })
    if (origin === 'list') return false
    delivered++
    return o.maxEvents !== undefined && delivered >= o.maxEvents
  }

  /** TTLs of the leases the changes name, and whether each deleted key's lease is gone (v3). */
  const lookups = async (changes: SubnetChange[]): Promise<{ttls: Map<string, number>; gone: Set<string>}> => {
    const ids = new Set<string>()
    for (const c of changes) {
      if (c.type === 'put' && c.kv.lease !== '0' && c.ttlSeconds === undefined) ids.add(c.kv.lease)
      const prev = c.prev
      if (c.type === 'delete' && c.expired === undefined && source.leaseTellsExpiry && prev && prev.lease !== '0')
        ids.add(prev.lease)
    }
    if (ids.size === 0) return {ttls: new Map(), gone: new Set()}
    try {
      const ttls = await source.leaseTtls(ids)
      return {ttls, gone: new Set([...ttls].filter(([, t]) => t < 0).map(([id]) => id))}
    } catch (error) {
      o.onNote(`note: could not read lease TTLs (${errorText(error)}); TTLs and expiries of these events are unknown`)
      return {ttls: new Map(), gone: new Set()}
    }
  }

  /** Classifies and emits a batch, updating the state; true when --max-events is reached. */
  const handleBatch = async (batch: SubnetChange[], origin: LeaseEventJson['origin']): Promise<boolean> => {
    const changes = batch.flatMap((c) => expandDirDelete(state, c))
    const {ttls, gone} = await lookups(changes)
    for (const c of changes) {
      // The change's own previous value is the truth (etcd's prev_kv, v2's prevNode, the state a resync compared
      // with): with --rev the state listed at the start is newer than the events being replayed.
      const prev = c.prev
      const expired =
        c.type === 'delete' && c.expired === undefined && source.leaseTellsExpiry && prev && prev.lease !== '0'
          ? ttls.has(prev.lease)
            ? gone.has(prev.lease)
            : null
          : c.type === 'delete' && prev?.lease === '0'
            ? false
            : null
      applyChange(state, c)
      const r = BigInt(c.type === 'put' ? c.kv.modRevision : c.revision)
      if (origin === 'watch' && r > revision) revision = r
      if (emit(c, prev, origin, ttls, expired)) return true
    }
    return false
  }

  let started = false
  if (o.list) {
    o.onStarted?.(snap.revision)
    started = true
    const ttls = await source.leaseTtls(snap.subnets.map((kv) => kv.lease).filter((l) => l !== '0'))
    for (const kv of [...snap.subnets].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)))
      emit({type: 'put', kv, prev: null}, null, 'list', ttls, null)
  }

  const note = (m: string) => o.onNote(m)
  const inbox = new Inbox()
  let watchAnswered = false
  let outage = false
  const startWatch = (at: bigint): Promise<WatchHandle | null> =>
    retrying('watching the subnets', o.signal, note, () =>
      source.watchSubnetChanges(String(at), {
        onChanges: (changes) => {
          watchAnswered = true
          inbox.push({kind: 'changes', changes})
        },
        onLost: (error) => inbox.push({kind: 'lost', error}),
        onDisconnected: (error) => {
          if (outage) return
          outage = true
          o.onNote(
            `note: lost the connection to etcd (${errorText(error)}); reconnecting, to resume after revision ${revision}`,
          )
        },
        onConnected: () => {
          if (!outage) return
          outage = false
          o.onNote(`note: reconnected to etcd; resuming after revision ${revision}`)
        },
      }),
    )

  let handle = await startWatch(revision)
  try {
    while (handle !== null) {
      // Started once the watch has been answered without being refused: before the first wait or the first event.
      if (!started && !inbox.peekLost()) {
        started = true
        o.onStarted?.(snap.revision)
      }
      const item = await inbox.next(o.signal)
      if (item === null) break
      if (item.kind === 'changes') {
        if (await handleBatch(item.changes, 'watch'))
          return {events: delivered, ended: 'max-events', revision: String(revision)}
        continue
      }
      // The watch was cancelled (compaction) or its history is gone (v2): is it the --rev asked for?
      await handle.cancel()
      handle = null
      if (from !== null && !watchAnswered) {
        const oldest = await source.compactedRevision(String(from + 1n)).catch(() => null)
        if (oldest !== null || source.api === 'v2') throw compacted(o.fromRevision!, oldest, source.api)
      }
      watchAnswered = true
      o.onNote(
        `note: etcd cancelled the watch after revision ${revision} (${errorText(item.error)}); listing again and showing the differences as resynced events`,
      )
      inbox.clear()
      const again = await retrying('listing the subnets', o.signal, note, () => source.readNetwork())
      if (again === null) break
      if (await handleBatch(diffSubnets(state, again.subnets, again.revision), 'resync'))
        return {events: delivered, ended: 'max-events', revision: again.revision}
      revision = BigInt(again.revision)
      handle = await startWatch(revision)
    }
  } finally {
    await handle?.cancel()
  }
  return {events: delivered, ended: 'aborted', revision: String(revision)}
}

function compacted(rev: string, oldest: string | null, api: 'v2' | 'v3'): NotFoundError {
  const message =
    api === 'v3'
      ? `--rev ${rev} has been compacted: etcd keeps history from revision ${oldest ?? '(unknown)'} on; use --rev ${oldest ?? 'N'} or later, or leave out --rev to watch from now`
      : `--rev ${rev} is older than the 1000 events etcd's v2 store keeps${oldest ? ` (the oldest it has is index ${oldest})` : ''}; use a later index, or leave out --rev to watch from now`
  return new NotFoundError(message, 'REVISION_COMPACTED', undefined, {rev, oldest})
}
