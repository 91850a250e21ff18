/**
 * The subnet cache: every key under the subnets prefix, as flanneld's WatchLeases sees them. It lists once, watches
 * from the listed revision, and lists again (then watches anew) whenever etcd cancels the watch (compaction).
 */

import type {RawKV} from '../core/leases.js'
import {Wake, withBackoff} from './backoff.js'
import {type AgentStore, type Clock, errorText, type LogFn, type WatchEvent} from './ports.js'
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
  private handle: {cancel(): Promise<void>} | null = null
  private readonly lost = new Wake()
  private relist = false

  /** `onChange` gets the events of the watch, or 'listed' after a (re-)list replaced the whole cache. */
  constructor(
    private readonly d: CacheDeps,
    private readonly onChange: (change: WatchEvent[] | 'listed') => void,
  ) {}

  values(): RawKV[] {
    return [...this.kvs.values()]
  }

  private retry<T>(what: string, fn: () => Promise<T>): Promise<T | null> {
    return withBackoff(
      {clock: this.d.clock, signal: this.d.signal, initialMs: 1000, maxMs: 10_000},
      fn,
      (error, attempt, delay) => {
        this.d.status.error(`${what}: ${errorText(error)}`)
        this.d.log('warn', `${what} failed (attempt ${attempt}), retrying in ${delay / 1000}s`, {
          error: errorText(error),
        })
      },
    )
  }

  /** Lists the subnets and watches from that revision. False when the signal aborted first. */
  async start(): Promise<boolean> {
    const snap = await this.retry('listing the subnets', () => this.d.store.readNetwork())
    if (!snap) return false
    this.kvs.clear()
    for (const kv of snap.subnets) this.kvs.set(kv.key, kv)
    this.onChange('listed')
    this.handle = await this.retry('watching the subnets', () =>
      this.d.store.watch(snap.revision, {
        onEvents: (events) => this.onEvents(events),
        onLost: (error) => {
          this.d.log('warn', `the watch was cancelled (${errorText(error)}); listing again`)
          this.relist = true
          this.lost.poke()
        },
      }),
    )
    return this.handle !== null
  }

  private onEvents(events: WatchEvent[]): void {
    for (const e of events) {
      if (e.type === 'delete') this.kvs.delete(e.key)
      else this.kvs.set(e.kv.key, e.kv)
    }
    this.onChange(events)
  }

  /** Lists again whenever the watch is lost; returns when the signal aborts. */
  async run(): Promise<void> {
    while (!this.d.signal.aborted) {
      await this.lost.sleep(this.d.clock, Number.POSITIVE_INFINITY, this.d.signal)
      if (!this.relist || this.d.signal.aborted) continue
      this.relist = false
      await this.handle?.cancel()
      this.handle = null
      if (!(await this.start())) return
    }
  }

  async stop(): Promise<void> {
    await this.handle?.cancel()
    this.handle = null
  }
}
