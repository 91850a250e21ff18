/**
 * The subnet cache: every key under the subnets prefix, as flanneld's WatchLeases sees them. It lists once, watches
 * from the listed revision, and lists again (then watches anew) whenever etcd cancels the watch (compaction).
 */

import type {RawKV} from '../core/leases.js'
import {type AgentStore, type Clock, errorText, type LogFn, type WatchEvent} from './ports.js'
import {Rewatch} from './rewatch.js'
import type {StatusBoard} from './status.js'

export interface CacheDeps {
  readonly store: AgentStore
  readonly clock: Clock
  readonly log: LogFn
  readonly status: StatusBoard
  readonly signal: AbortSignal
}

export class SubnetCache {
  private readonly kvs = new Map<string, RawKV>()
  private readonly w: Rewatch

  /** `onChange` gets the events of the watch, or 'listed' after a (re-)list replaced the whole cache. */
  constructor(
    private readonly d: CacheDeps,
    private readonly onChange: (change: WatchEvent[] | 'listed') => void,
  ) {
    this.w = new Rewatch({...d, onRetry: (what, error) => d.status.error(`${what}: ${errorText(error)}`)})
  }

  values(): RawKV[] {
    return [...this.kvs.values()]
  }

  /** Lists the subnets and watches from that revision. False when the signal aborted first. */
  async start(): Promise<boolean> {
    const snap = await this.w.retry('listing the subnets', () => this.d.store.readNetwork())
    if (!snap) return false
    this.kvs.clear()
    for (const kv of snap.subnets) this.kvs.set(kv.key, kv)
    this.onChange('listed')
    return this.w.watch('watching the subnets', () =>
      this.d.store.watch(snap.revision, {
        onEvents: (events) => this.onEvents(events),
        onLost: this.w.onLost((why) => `the watch was cancelled (${why}); listing again`),
      }),
    )
  }

  private onEvents(events: WatchEvent[]): void {
    for (const e of events) {
      if (e.type === 'delete') this.kvs.delete(e.key)
      else this.kvs.set(e.kv.key, e.kv)
    }
    this.onChange(events)
  }

  /** Lists again whenever the watch is lost; returns when the signal aborts. */
  run(): Promise<void> {
    return this.w.run(() => this.start())
  }

  stop(): Promise<void> {
    return this.w.stop()
  }
}
