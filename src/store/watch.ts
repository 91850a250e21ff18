/**
 * Watching the subnets keyspace from a listed revision, as flanneld's WatchLeases does: events from revision+1;
 * when etcd cancels the watch (compaction) the caller re-lists and the watch restarts from the new revision.
 * Reconnects are the client's own, with a backoff capped at 2 s.
 */

import type {Etcd3, Watcher} from 'etcd3'

import type {RawKV} from '../core/leases.js'
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

/** How long cancel() waits for etcd to confirm the cancellation. */
const CANCEL_WAIT_MS = 2000

/** Used by EtcdStore.watchSubnets, which owns the client. */
export async function watchPrefix(
  client: Etcd3,
  prefix: string,
  fromRevision: string,
  cb: WatchCallbacks,
): Promise<WatchHandle> {
  const w: Watcher = await client
    .watch()
    .prefix(prefix)
    .startRevision(String(BigInt(fromRevision) + 1n))
    .create()
  let lost = false
  w.on('data', (res) => {
    // A watch given up on delivers nothing more: its events would race the new watch's after a re-list.
    if (lost) return
    const events: WatchEvent[] = []
    for (const e of res.events) {
      const kv = e.kv
      if (e.type === 'Delete')
        events.push({type: 'delete', key: kv.key.toString('utf8'), modRevision: String(kv.mod_revision)})
      else events.push({type: 'put', kv: toRawKV(kv)})
    }
    if (events.length > 0) cb.onEvents(events, String(res.header.revision))
  })
  w.on('disconnected', (err: Error) => cb.onDisconnected?.(err))
  w.on('connected', () => cb.onConnected?.())
  w.on('error', (err: Error) => {
    if (lost) return
    // etcd3 emits 'error' only after etcd cancelled the watch, and it has already dropped the watcher by then.
    // Cancelling it again would wait forever for an 'end' that never comes (and hang the caller's re-list).
    lost = true
    cb.onLost(err)
  })
  return {
    cancel: async () => {
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
