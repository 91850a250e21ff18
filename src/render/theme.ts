/** Colour only on a TTY, never with NO_COLOR; FORCE_COLOR forces it (for tests of the coloured output). */

import {Chalk, type ChalkInstance} from 'chalk'

export function colorEnabled(
  stream: {isTTY?: boolean},
  env: Record<string, string | undefined> = process.env,
): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '0') return true
  return stream.isTTY === true && env.TERM !== 'dumb'
}

export function theme(enabled: boolean): ChalkInstance {
  return new Chalk({level: enabled ? 1 : 0})
}
