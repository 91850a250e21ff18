/**
 * A one-line progress indicator on stderr, as `leases ls` shows while it reads TTLs: only on a terminal (the caller
 * passes `enabled`: stderr is a TTY and no --json), only once the operation has run for a second, repainted in
 * place (`\r`, the line cut to the terminal's width so it never wraps), and erased (`\r\x1b[K`) by end(), which the
 * caller runs before it prints results. Timers are unref'd: they never keep the process alive.
 */

/**
 * `line` cut to `max` columns. Progress texts are our own ASCII (never data from etcd), so a cut by characters is a
 * cut by columns; width.ts (and string-width's module) is not loaded for it.
 */
function cut(line: string, max: number): string {
  return line.length <= max ? line : `${line.slice(0, max - 1)}…`
}

export interface Progress {
  /** What is being done now (our own text, never data from etcd). */
  update(text: string): void
  /** Erases the line for a moment (a note is about to be printed on stderr); the next tick paints it again. */
  clear(): void
  /** Stops and erases the line, if it was shown. */
  end(): void
}

const SPINNER = ['|', '/', '-', '\\']

export function startProgress(o: {
  enabled: boolean
  stream?: {write(s: string): unknown; columns?: number}
  delayMs?: number
  now?: () => number
}): Progress {
  if (!o.enabled) return {update: () => {}, clear: () => {}, end: () => {}}
  const stream = o.stream ?? process.stderr
  const now = o.now ?? Date.now
  const started = now()
  const delay = o.delayMs ?? 1000
  let text = ''
  let shown = false
  let frame = 0
  let lastPaint = 0
  let ticker: NodeJS.Timeout | undefined
  const paint = () => {
    lastPaint = now()
    shown = true
    const line = `${SPINNER[frame++ % SPINNER.length]} ${text}`
    stream.write(`\r${cut(line, Math.max(10, (stream.columns ?? 80) - 1))}\u001b[K`)
  }
  const timer = setTimeout(() => {
    paint()
    ticker = setInterval(paint, 250)
    ticker.unref()
  }, delay)
  timer.unref()
  return {
    update(t) {
      text = t
      // Between ticks (or when a long synchronous step follows), paint now, at most ten times a second.
      if (now() - started >= delay && now() - lastPaint >= 100) paint()
    },
    clear() {
      if (shown) stream.write('\r\u001b[K')
    },
    end() {
      clearTimeout(timer)
      if (ticker) clearInterval(ticker)
      if (shown) stream.write('\r\u001b[K')
      shown = false
    },
  }
}
