/** Confirmation before a write: a prompt on a TTY (on stderr), --yes otherwise. */

import {UsageError} from '../core/errors.js'

export type Confirm = (question: string) => Promise<boolean>

export function confirmer(opts: {yes: boolean}): Confirm {
  return async (question) => {
    if (opts.yes) return true
    if (!process.stdin.isTTY) {
      throw new UsageError(
        `not applied: confirmation needed and stdin is not a terminal; pass --yes to apply (or --dry-run to only look)`,
        'CONFIRMATION_REQUIRED',
      )
    }
    const {confirm} = await import('@inquirer/prompts')
    return confirm({message: question, default: false}, {output: process.stderr})
  }
}
