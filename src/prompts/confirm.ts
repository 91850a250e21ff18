/**
 * Confirmation before a write: a prompt on a TTY (on stderr), --yes otherwise.
 *
 * The answers a script can tell apart: applied (exit 0), declined with `n` or Enter (exit 6, `"declined": true` in
 * --json, nothing written), cancelled with Ctrl-C or Ctrl-D (exit 130, "cancelled, nothing written").
 */

import {CancelledError, ExitCode, UsageError} from '../core/errors.js'

export type Confirm = (question: string) => Promise<boolean>

let declined = false

/** Whether a prompt of this process was answered no (the command's --json result then says `"declined": true`). */
export function wasDeclined(): boolean {
  return declined
}

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
    let yes: boolean
    try {
      yes = await confirm({message: question, default: false}, {output: process.stderr})
    } catch (error) {
      // Ctrl-C (SIGINT) and Ctrl-D (stdin closed) reject the prompt: the user's answer, not a bug.
      if ((error as Error).name === 'ExitPromptError' || (error as Error).name === 'AbortPromptError')
        throw new CancelledError()
      throw error
    }
    if (!yes) {
      declined = true
      process.exitCode = ExitCode.declined
    }
    return yes
  }
}
