/**
 * Watching the subnets keyspace from a listed revision, as flanneld's WatchLeases does: events from revision+1;
 * when etcd cancels the watch (compaction) the caller re-lists and the watch restarts from the new revision.
 * Reconnects are the client's own, with a backoff capped at 2 s.
 */

import type {IKeyValue, Watcher} from 'etcd3'

import type {RawKV} from '../core/leases.js'
import {type EtcdStore, toRawKV} from './etcd-store.js'

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

export async function watchSubnets(store: EtcdStore, fromRevision: string, cb: WatchCallbacks): Promise<WatchHandle> {
  const w: Watcher = await store.raw
    .watch()
    .prefix(store.layout.subnets)
    .startRevision(String(BigInt(fromRevision) + 1n))
    .create()
  let lost = false
  w.on('data', (res) => {
    const events: WatchEvent[] = []
    for (const e of res.events) {
      const kv = e.kv as IKeyValue
      if (e.type === 'Delete') events.push({type: 'delete', key: kv.key.toString('utf8'), modRevision: String(kv.mod_revision)})
      else events.push({type: 'put', kv: toRawKV(kv)})
    }
    if (events.length > 0) cb.onEvents(events, String(res.header.revision))
  })
  w.on('disconnected', (err: Error) => cb.onDisconnected?.(err))
  w.on('connected', () => cb.onConnected?.())
  w.on('error', (err: Error) => {
    if (lost) return
    lost = true
    void w.cancel().catch(() => undefined)
    cb.onLost(err)
  })
  return {
    cancel: async () => {
      lost = true
      await w.cancel().catch(() => undefined)
    },
  }
}
