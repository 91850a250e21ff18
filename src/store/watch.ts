/**
 * Watching the subnets keyspace from a listed revision, as flanneld's WatchLeases does: events from revision+1;
 * when etcd cancels the watch (compaction) the caller re-lists and the watch restarts from the new revision.
 *
 * Reconnects are the client's own (a backoff capped at 2 s), resumed from the revision after the last event
 * delivered here: etcd3 itself resumes from the revision in the last response header (or the create response's,
 * which is etcd's current revision, not the last event seen), which loses events when the connection breaks again
 * while a watch is still catching up. Events at or below the last delivered revision are dropped, so a resume never
 * delivers one twice.
 */

import type {Etcd3, IKeyValue, Watcher} from 'etcd3'

import type {SubnetChange} from '../core/lease-events.js'
import type {RawKV} from '../core/leases.js'
import {trackWatch} from './etcd3-client.js'
import {toRawKV} from './etcd-store.js'

export type WatchEvent = {type: 'put'; kv: RawKV} | {type: 'delete'; key: string; modRevision: string}

export interface WatchHandle {
  cancel(): Promise<void>
}

export interface WatchCallbacks {
  onEvents(events: WatchEvent[], revision: string): void
  /** The watch was cancelled by etcd (usually compaction): list again and call watchSubnets anew. */
  onLost(error: Error): void
  onDisconnected?(error: Error): void
  onConnected?(): void
}

/** For `leases watch`: changes with the previous value of each key (prev_kv). */
export interface ChangeCallbacks {
  onChanges(changes: SubnetChange[], revision: string): void
  /** The watch was cancelled by etcd (usually compaction): list again and watch anew. */
  onLost(error: Error): void
  onDisconnected?(error: Error): void
  onConnected?(): void
}

/** How long cancel() waits for etcd to confirm the cancellation. */
const CANCEL_WAIT_MS = 2000

interface RawEvent {
  type: 'Put' | 'Delete'
  kv: IKeyValue
  prev_kv?: IKeyValue | null
}

interface Hooks {
  onBatch(events: RawEvent[], revision: string): void
  onLost(error: Error): void
  onDisconnected?(error: Error): void
  onConnected?(): void
}

async function openWatch(
  client: Etcd3,
  prefix: string,
  fromRevision: string,
  prevKv: boolean,
  h: Hooks,
): Promise<WatchHandle> {
  let last = BigInt(fromRevision)
  const builder = client
    .watch()
    .prefix(prefix)
    .startRevision(String(last + 1n))
  if (prevKv) builder.withPreviousKV()
  // watcher() attaches at once: listeners go on before any response can arrive (create() resolves a tick later).
  const w: Watcher = builder.watcher()
  let lost = false
  let connected = false
  w.on('data', (res) => {
    // A watch given up on delivers nothing more: its events would race the new watch's after a re-list.
    if (lost) return
    const fresh: RawEvent[] = []
    for (const e of res.events as RawEvent[]) {
      const rev = BigInt(String(e.kv.mod_revision))
      if (rev <= last) continue
      fresh.push(e)
    }
    if (fresh.length === 0) return
    last = BigInt(String(fresh.at(-1)!.kv.mod_revision))
    h.onBatch(fresh, String(res.header.revision))
  })
  w.on('disconnected', (err: Error) => {
    connected = false
    // A watch ended here (cancelled, lost, or its client closed) has no connection to report.
    if (lost) return
    // etcd3 re-sends this request when it reconnects: resume after the last event delivered here.
    w.request.start_revision = Number(last + 1n)
    h.onDisconnected?.(err)
  })
  w.on('connected', () => {
    if (!connected) h.onConnected?.()
    connected = true
  })
  let created = false
  w.on('error', (err: Error) => {
    // Before the watch is created its failure is the caller's (the promise below rejects).
    if (lost || !created) return
    // etcd3 emits 'error' only after etcd cancelled the watch, and it has already dropped the watcher by then.
    // Cancelling it again would wait forever for an 'end' that never comes (and hang the caller's re-list).
    lost = true
    h.onLost(err)
  })
  // Closing the client ends this watch, also while it is being created (the promise below then rejects).
  let abandon = (_err: Error) => {}
  const untrack = trackWatch(client, () => {
    if (lost) return
    abandon(new Error('the etcd client was closed'))
    lost = true
    void w.cancel().catch(() => undefined)
  })
  await new Promise<void>((resolve, reject) => {
    const ok = () => {
      w.off('error', fail)
      created = true
      resolve()
    }
    const fail = (err: Error) => {
      w.off('connected', ok)
      lost = true
      reject(err)
    }
    abandon = fail
    w.once('connected', ok)
    w.once('error', fail)
  }).catch((error: unknown) => {
    untrack()
    throw error
  })
  return {
    cancel: async () => {
      untrack()
      if (lost) return
      lost = true
      // The cancel request is answered by etcd; while etcd is unreachable or stalled, do not wait for it forever.
      let timer: NodeJS.Timeout | undefined
      const bounded = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, CANCEL_WAIT_MS)
      })
      await Promise.race([w.cancel().catch(() => undefined), bounded])
      clearTimeout(timer)
    },
  }
}

/** Used by EtcdStore.watchSubnets, which owns the client. */
export function watchPrefix(
  client: Etcd3,
  prefix: string,
  fromRevision: string,
  cb: WatchCallbacks,
): Promise<WatchHandle> {
  return openWatch(client, prefix, fromRevision, false, {
    onBatch: (raw, revision) => {
      const events: WatchEvent[] = raw.map((e) =>
        e.type === 'Delete'
          ? {type: 'delete', key: e.kv.key.toString('utf8'), modRevision: String(e.kv.mod_revision)}
          : {type: 'put', kv: toRawKV(e.kv)},
      )
      cb.onEvents(events, revision)
    },
    onLost: (e) => cb.onLost(e),
    onDisconnected: cb.onDisconnected && ((e) => cb.onDisconnected!(e)),
    onConnected: cb.onConnected && (() => cb.onConnected!()),
  })
}

/** Used by EtcdStore.watchSubnetChanges: every event with the key's previous value (etcd's prev_kv). */
export function watchChanges(
  client: Etcd3,
  prefix: string,
  fromRevision: string,
  cb: ChangeCallbacks,
): Promise<WatchHandle> {
  return openWatch(client, prefix, fromRevision, true, {
    onBatch: (raw, revision) => {
      const changes: SubnetChange[] = raw.map((e) => {
        const prev = e.prev_kv ? toRawKV(e.prev_kv) : null
        return e.type === 'Delete'
          ? {type: 'delete', key: e.kv.key.toString('utf8'), revision: String(e.kv.mod_revision), prev}
          : {type: 'put', kv: toRawKV(e.kv), prev}
      })
      cb.onChanges(changes, revision)
    },
    onLost: (e) => cb.onLost(e),
    onDisconnected: (e) => cb.onDisconnected?.(e),
    onConnected: () => cb.onConnected?.(),
  })
}
