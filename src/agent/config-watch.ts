/** Watches the network config key; on every change (and after a lost watch, a re-read) hands the value on. */

import type {RawKV} from '../core/leases.js'
import type {AgentStore, Clock, LogFn} from './ports.js'
import {Rewatch} from './rewatch.js'

export interface ConfigWatchDeps {
  readonly store: AgentStore
  readonly clock: Clock
  readonly log: LogFn
  readonly signal: AbortSignal
}

export class ConfigWatch {
  private readonly w: Rewatch

  /** `onConfig` gets the config key's value after each change (null when it was deleted). */
  constructor(
    private readonly d: ConfigWatchDeps,
    private readonly onConfig: (kv: RawKV | null) => Promise<void>,
  ) {
    this.w = new Rewatch(d)
  }

  /** Watches from `revision` (the revision the running config was read at). */
  start(revision: string): Promise<boolean> {
    // One change at a time, in order: a second event waits for the first one's rules and files.
    let chain = Promise.resolve()
    return this.w.watch('watching the config', () =>
      this.d.store.watchConfig(revision, {
        onEvents: (events) => {
          const last = events.at(-1)
          if (!last) return
          const kv = last.type === 'put' ? last.kv : null
          chain = chain.then(() => this.onConfig(kv)).catch(() => undefined)
        },
        onLost: this.w.onLost((why) => `the config watch was cancelled (${why}); reading the config again`),
      }),
    )
  }

  run(): Promise<void> {
    return this.w.run(async () => {
      const snap = await this.w.retry('reading the config', () => this.d.store.readNetwork())
      if (!snap) return false
      await this.onConfig(snap.config)
      return this.start(snap.revision)
    })
  }

  stop(): Promise<void> {
    return this.w.stop()
  }
}
