import {readFileSync} from 'node:fs'

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
    file: Args.string({description: 'config file, or - for stdin', default: '-', ignoreStdin: true}),
  }

  public async run(): Promise<ValidateResult> {
    const file = this.args.file
    let text: string
    try {
      text = readFileSync(file === '-' ? 0 : file, 'utf8')
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
