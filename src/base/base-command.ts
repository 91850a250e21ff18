/**
 * The base of every flannelctl command: `--json`, the documented exit codes, one-line errors (a JSON envelope under
 * --json), and closing what the command opened in finally(). Flag bundles are in flags.ts; where the data comes from
 * is store/source.ts.
 */

import {format, stripVTControlCharacters} from 'node:util'

import {Command, type Interfaces} from '@oclif/core'

import {ExitCode, FlannelctlError} from '../core/errors.js'
import {type HintContext, hintContext} from '../core/hints.js'
import {wasDeclined} from '../prompts/confirm.js'
import {escapeJsonForTerminal, escapeOutput, escapeTerminal} from '../render/escape.js'
import {writeJson, writeOut} from '../render/output.js'
import {colorEnabled, theme} from '../render/theme.js'
import {outputWidth} from '../render/terminal.js'
import {CONNECTION_ENV, type ConnectionFlags, resolveSetting} from './connection.js'

/**
 * The one-line form of an error message. oclif's parse errors put the actual reason on the lines after a
 * "The following error occurred:" header ("Missing required flag network", "--subnet=... cannot also be provided
 * when using --public-ip"), so for them every line but that header and the "See more help" trailer is kept.
 */
export function oneLineMessage(message: string, fromParser: boolean): string {
  const lines = stripVTControlCharacters(message).split('\n')
  if (!fromParser) return lines[0]!.replace(/^Error: /, '')
  const kept = lines
    .map((l) => l.trim())
    .filter((l) => l !== '' && !/^The following errors? occurred:$/.test(l) && l !== 'See more help with --help')
  return readableUsage(kept).replace(/^Error: /, '')
}

/**
 * oclif's parse errors in the words of the rest of the CLI: `Missing required flag to` becomes `Missing required flag
 * --to`, and `Missing 1 required arg:` followed by `subnet  the subnet, ...` becomes `Missing argument SUBNET (the
 * subnet, ...)`.
 */
function readableUsage(lines: string[]): string {
  const out: string[] = []
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!.replace(/^Error: /, '')
    const flag = /^Missing required flag ([\w-]+)$/.exec(l)
    if (flag) {
      out.push(`Missing required flag --${flag[1]}`)
      continue
    }
    if (/^Missing \d+ required args?:$/.test(l)) {
      const args: string[] = []
      while (i + 1 < lines.length && /^[\w-]+(\s|$)/.test(lines[i + 1]!)) {
        const [, name, desc] = /^([\w-]+)\s*(.*)$/.exec(lines[++i]!)!
        args.push(`${name!.toUpperCase()}${desc ? ` (${desc})` : ''}`)
      }
      out.push(`Missing argument${args.length > 1 ? 's' : ''} ${args.join(', ')}`)
      continue
    }
    out.push(l)
  }
  return out.join('; ')
}

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<T['flags']>
export type BaseArgs<T extends typeof Command> = Interfaces.InferredArgs<T['args']>

export abstract class BaseCommand<T extends typeof Command> extends Command {
  static override enableJsonFlag = true

  protected flags!: BaseFlags<T>
  protected args!: BaseArgs<T>
  /** The positional arguments as parsed (all of them, for commands with `strict = false`). */
  protected argvParsed: string[] = []
  private resources: Array<{close(): void}> = []
  /** JSON lines output (leases watch): the --json error envelope is one line too. */
  protected jsonLines = false

  public override async init(): Promise<void> {
    await super.init()
    const {args, argv, flags} = await this.parse({
      flags: this.ctor.flags,
      baseFlags: (super.ctor as typeof BaseCommand).baseFlags,
      enableJsonFlag: this.ctor.enableJsonFlag,
      args: this.ctor.args,
      strict: this.ctor.strict,
    })
    this.flags = flags as BaseFlags<T>
    this.args = args as BaseArgs<T>
    this.argvParsed = argv.map(String)
  }

  /** A chalk instance that colours only on a TTY and never with NO_COLOR. */
  /** The width human output is laid out to (render/width.ts): the terminal's, or null (no wrapping) on a pipe. */
  protected get width(): number | null {
    return outputWidth(process.stdout)
  }

  protected get color() {
    return theme(!this.jsonEnabled() && colorEnabled(process.stdout))
  }

  /** The connection flags the user ran with, to repeat in suggested commands (defaults and credentials left out). */
  protected get hintContext(): HintContext {
    const flags = this.flags as ConnectionFlags & {'etcd-api'?: string}
    const given = (name: keyof ConnectionFlags) => {
      const v = resolveSetting(flags, process.env, name)
      return v === CONNECTION_ENV[name].default ? undefined : v
    }
    return hintContext({
      endpoints: given('endpoints'),
      prefix: given('etcd-prefix'),
      cacert: given('cacert'),
      cert: given('cert'),
      key: given('key'),
      etcdApi: flags['etcd-api'],
    })
  }

  /** Closes `resource` (a store, a reader) when the command ends, whatever the outcome. */
  protected own<R extends {close(): void}>(resource: R): R {
    this.resources.push(resource)
    return resource
  }

  /**
   * The --json result: exactly `JSON.stringify(result, null, 2)`, streamed in ~1 MiB chunks through the one stdout
   * writer (render/output.ts), which delivers every byte to a pipe however slowly it is read. oclif's own printer
   * re-tokenises the whole document to colour it, which at 65,535 leases (~35 MB) costs seconds and hundreds of MB.
   */
  public override logJson(json: unknown): void {
    // On a terminal, the characters JSON leaves raw (DEL, C1, bidi controls) are written as \u escapes: same value.
    const result =
      wasDeclined() && typeof json === 'object' && json !== null && !Array.isArray(json)
        ? {...json, declined: true}
        : json
    writeJson(result, process.stdout.isTTY === true ? escapeJsonForTerminal : undefined)
  }

  /** Results for humans, through the same writer as --json (order kept, every byte delivered, EPIPE quiet). */
  public override log(message = '', ...args: unknown[]): void {
    // The terminal safety net (render/escape.ts) over everything written for humans.
    if (!this.jsonEnabled()) writeOut(escapeOutput(format(message, ...args)) + '\n')
  }

  /** Progress and warnings go to stderr, never stdout. */
  protected note(message: string): void {
    process.stderr.write(escapeOutput(message) + '\n')
  }

  protected override async catch(
    err: Error & {exitCode?: number; oclif?: {exit?: number}; code?: string},
  ): Promise<unknown> {
    let exitCode: number
    let code: string
    let hint: string | undefined
    if (err instanceof FlannelctlError) {
      exitCode = err.exitCode
      code = err.code
      hint = err.hint
    } else if (err.oclif?.exit !== undefined) {
      // oclif's own parse and usage errors (unknown flag, missing argument): exit 2.
      exitCode = err.oclif.exit === 0 ? 0 : ExitCode.usage
      code = 'USAGE'
      if (exitCode === 0) return super.catch(err)
    } else {
      exitCode = ExitCode.bug
      code = 'BUG'
      hint = 'this is a bug in flannelctl; run with DEBUG=1 for a stack trace and report it'
    }
    process.exitCode = exitCode
    // Our own errors may quote keys and values from etcd: kept whole (JSON escapes them), escaped on the terminal.
    const message = err instanceof FlannelctlError ? err.message : oneLineMessage(err.message, code === 'USAGE')
    if (this.jsonEnabled()) {
      const details = err instanceof FlannelctlError && err.details !== undefined ? {details: err.details} : {}
      writeOut(
        escapeJsonForTerminal(
          JSON.stringify(
            {error: {code, message, exitCode, ...(hint ? {hint} : {}), ...details}},
            null,
            this.jsonLines ? undefined : 2,
          ),
        ) + '\n',
      )
    } else {
      process.stderr.write(`Error: ${escapeTerminal(message)}\n`)
      if (hint) process.stderr.write(`Hint: ${escapeTerminal(hint)}\n`)
    }
    if (process.env.DEBUG && err.stack) process.stderr.write(err.stack + '\n')
    return undefined
  }

  protected override async finally(err: Error | undefined): Promise<unknown> {
    for (const r of this.resources.splice(0)) r.close()
    return super.finally(err)
  }
}
