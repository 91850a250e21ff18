/**
 * What the agent's two watches (the subnets and the config key) share: one watch handle, a wake-up when etcd cancels
 * the watch (a compaction, a lost leader), and a loop that starts the watch again, from a fresh read, each time.
 */

import {Wake, withBackoff} from './backoff.js'
import {type Clock, errorText, type LogFn} from './ports.js'

export interface RewatchDeps {
  readonly clock: Clock
  readonly log: LogFn
  readonly signal: AbortSignal
  /** Called with each failure before the retry's wait (the subnet cache reports it on /readyz). */
  readonly onRetry?: (what: string, error: unknown) => void
}

interface Handle {
  cancel(): Promise<void>
}

export class Rewatch {
  private handle: Handle | null = null
  private readonly lost = new Wake()
  private relist = false

  constructor(private readonly d: RewatchDeps) {}

  /** Runs `fn` until it succeeds, with the agent's backoff (1 s doubling to 10 s); null when the signal aborted. */
  retry<T>(what: string, fn: () => Promise<T>): Promise<T | null> {
    return withBackoff(
      {clock: this.d.clock, signal: this.d.signal, initialMs: 1000, maxMs: 10_000},
      fn,
      (error, attempt, delay) => {
        this.d.onRetry?.(what, error)
        this.d.log('warn', `${what} failed (attempt ${attempt}), retrying in ${delay / 1000}s`, {
          error: errorText(error),
        })
      },
    )
  }

  /** Opens the watch with `open` (retried); false when the signal aborted first. */
  async watch(what: string, open: () => Promise<Handle>): Promise<boolean> {
    this.handle = await this.retry(what, open)
    return this.handle !== null
  }

  /** The watch's onLost: logs `message(why)` and wakes run() to start again. */
  onLost(message: (why: string) => string): (error: unknown) => void {
    return (error) => {
      this.d.log('warn', message(errorText(error)))
      this.relist = true
      this.lost.poke()
    }
  }

  /** Each time the watch is lost: cancels it and calls `again` (which reads and watches anew); ends when the signal
   * aborts or `again` returns false. */
  async run(again: () => Promise<boolean>): Promise<void> {
    while (!this.d.signal.aborted) {
      await this.lost.sleep(this.d.clock, Number.POSITIVE_INFINITY, this.d.signal)
      if (!this.relist || this.d.signal.aborted) continue
      this.relist = false
      await this.stop()
      if (!(await again())) return
    }
  }

  async stop(): Promise<void> {
    await this.handle?.cancel()
    this.handle = null
  }
}
