/** The agent's one retry helper and its one wake-up primitive, both on the injected clock (never real timers). */

import {isFatal} from '../core/errors.js'
import type {Clock} from './ports.js'

/** The longest sleep setTimeout can do (about 24.8 days). */
const MAX_SLEEP_MS = 2 ** 31 - 1

/** A sleep that another activity can cut short: poke() ends the current sleep, or the next one if none is running. */
export class Wake {
  private current: AbortController | null = null
  private poked = false

  poke(): void {
    this.poked = true
    this.current?.abort()
  }

  async sleep(clock: Clock, ms: number, signal: AbortSignal): Promise<void> {
    if (this.poked) {
      this.poked = false
      return
    }
    const c = new AbortController()
    this.current = c
    await clock.sleep(Math.min(Math.max(0, ms), MAX_SLEEP_MS), AbortSignal.any([signal, c.signal]))
    this.current = null
    this.poked = false
  }
}

export interface Backoff {
  readonly clock: Clock
  readonly signal: AbortSignal
  /** First delay and cap; the delay doubles after each failure. */
  readonly initialMs: number
  readonly maxMs: number
  /** Sleeps through this (so that another activity can cut a wait short). */
  readonly wake?: Wake
}

/**
 * Runs `fn` until it succeeds; after each failure calls `onError(error, attempt, delayMs)` and waits. A fatal error
 * (isFatal) is rethrown at once; `onError` returning 'again' retries without waiting (a lost race). Null when the
 * signal aborted first.
 */
export async function withBackoff<T>(
  b: Backoff,
  fn: (attempt: number) => Promise<T>,
  onError: (error: unknown, attempt: number, delayMs: number) => 'again' | void,
): Promise<T | null> {
  let delay = b.initialMs
  for (let attempt = 1; !b.signal.aborted; attempt++) {
    try {
      return await fn(attempt)
    } catch (error) {
      if (isFatal(error)) throw error
      if (b.signal.aborted) return null
      if (onError(error, attempt, delay) === 'again') continue
      if (b.wake) await b.wake.sleep(b.clock, delay, b.signal)
      else await b.clock.sleep(delay, b.signal)
      delay = Math.min(delay * 2, b.maxMs)
    }
  }
  return null
}
