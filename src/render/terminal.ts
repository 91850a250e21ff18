/**
 * The terminal's width for human output, without the display-width machinery of width.ts (string-width's module
 * costs ~20 ms to evaluate, which commands printing JSON never need).
 */

/** The smallest width output is laid out to (narrower terminals get lines of this width). */
export const MIN_WIDTH = 40

/**
 * The width human output is laid out to: the terminal's width when stdout is a terminal (COLUMNS when the terminal
 * does not say, else 80); on a pipe or file no wrapping (null: lines stay whole for grep and scripts) unless
 * COLUMNS is set. Never below MIN_WIDTH.
 */
export function outputWidth(
  stream: {isTTY?: boolean; columns?: number} = process.stdout,
  env: Record<string, string | undefined> = process.env,
): number | null {
  const fromEnv = /^\d+$/.test(env.COLUMNS ?? '') ? Number(env.COLUMNS) : 0
  const cols = stream.isTTY ? stream.columns || fromEnv || 80 : fromEnv
  return cols > 0 ? Math.max(MIN_WIDTH, cols) : null
}
