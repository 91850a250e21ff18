/** Watches the network config key; on every change (and after a lost watch, a re-read) hands the value on. */

import type {RawKV} from '../core/leases.js'
import {Wake, withBackoff} from './backoff.js'
import {type AgentStore, type Clock, errorText, type LogFn} from './ports.js'

export interface ConfigWatchDeps {
  readonly store: AgentStore
  readonly clock: Clock
  readonly log: LogFn
  readonly signal: AbortSignal
}

export class ConfigWatch {
  private handle: {cancel(): Promise<void>} | null = null
  private readonly lost = new Wake()
  private relist = false

  /** `onConfig` gets the config key's value after each change (null when it was deleted). */
  constructor(
    private readonly d: ConfigWatchDeps,
    private readonly onConfig: (kv: RawKV | null) => Promise<void>,
  ) {}

  private retry<T>(what: string, fn: () => Promise<T>): Promise<T | null> {
    return withBackoff(
      {clock: this.d.clock, signal: this.d.signal, initialMs: 1000, maxMs: 10_000},
      fn,
      (e, n, delay) =>
        this.d.log('warn', `${what} failed (attempt ${n}), retrying in ${delay / 1000}s`, {error: errorText(e)}),
    )
  }

  /** Watches from `revision` (the revision the running config was read at). */
  async start(revision: string): Promise<boolean> {
    // One change at a time, in order: a second event waits for the first one's rules and files.
    let chain = Promise.resolve()
    this.handle = await this.retry('watching the config', () =>
      this.d.store.watchConfig(revision, {
        onEvents: (events) => {
          const last = events.at(-1)
          if (!last) return
          const kv = last.type === 'put' ? last.kv : null
          chain = chain.then(() => this.onConfig(kv)).catch(() => undefined)
        },
        onLost: (error) => {
          this.d.log('warn', `the config watch was cancelled (${errorText(error)}); reading the config again`)
          this.relist = true
          this.lost.poke()
        },
      }),
    )
    return this.handle !== null
  }

  async run(): Promise<void> {
    while (!this.d.signal.aborted) {
      await this.lost.sleep(this.d.clock, Number.POSITIVE_INFINITY, this.d.signal)
      if (!this.relist || this.d.signal.aborted) continue
      this.relist = false
      await this.handle?.cancel()
      this.handle = null
      const snap = await this.retry('reading the config', () => this.d.store.readNetwork())
      if (!snap) return
      await this.onConfig(snap.config)
      if (!(await this.start(snap.revision))) return
    }
  }

  async stop(): Promise<void> {
    await this.handle?.cancel()
    this.handle = null
  }
}
