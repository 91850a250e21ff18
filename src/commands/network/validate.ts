import {readFile} from 'node:fs/promises'

import {Args} from '@oclif/core'

import {BaseCommand} from '../../base/base-command.js'
import {ExitCode, UsageError} from '../../core/errors.js'
import {renderValidate} from '../../render/network.js'
import {type ValidateResult, validateNetwork} from '../../services/network.js'

export default class NetworkValidate extends BaseCommand<typeof NetworkValidate> {
  static override summary = 'Check a network config offline, exactly as flanneld would.'
  static override description =
    "Exit 0 when flanneld accepts the config, 2 otherwise with flannel's message. Prints the effective values."
  static override examples = [
    '<%= config.bin %> <%= command.id %> net-conf.json',
    'echo \'{"Network":"10.5.0.0/16"}\' | <%= config.bin %> <%= command.id %> -',
  ]
  static override args = {
    file: Args.string({
      description: 'config file, or - for stdin (the default when stdin is a pipe)',
      ignoreStdin: true,
    }),
  }

  public async run(): Promise<ValidateResult> {
    const file = this.args.file ?? '-'
    if (this.args.file === undefined && process.stdin.isTTY) {
      throw new UsageError(
        'Missing argument FILE: give a config file, or - to read the config from stdin (stdin is a terminal)',
        'MISSING_FILE',
      )
    }
    let text: string
    try {
      text = file === '-' ? await readStdin() : await readFile(file, 'utf8')
    } catch (error) {
      throw new UsageError(
        `cannot read ${file === '-' ? 'stdin' : file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
        'UNREADABLE_FILE',
      )
    }
    const result = validateNetwork(text)
    // An invalid config is an answer, not a failure of the command: the same result shape, with exit 2.
    if (!result.valid) {
      process.exitCode = ExitCode.usage
      if (!this.jsonEnabled()) process.stderr.write(renderValidate(result, this.color) + '\n')
      return result
    }
    this.log(renderValidate(result, this.color))
    return result
  }
}

/** All of stdin, as a stream (a pipe, a file or a terminal until Ctrl-D; a synchronous read of fd 0 can EAGAIN). */
async function readStdin(): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}
