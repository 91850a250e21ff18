import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../base/base-command.js'
import {resolveConnection} from '../../base/connection.js'
import {connectionFlags, etcdApiWriteFlag, mutationFlags} from '../../base/flags.js'
import {openWriteStore} from '../../store/source.js'
import {parseDuration} from '../../core/duration.js'
import {confirmer} from '../../prompts/confirm.js'
import {renderUnreserve} from '../../render/mutations.js'
import {type UnreserveResult, unreserveLease} from '../../services/lease-mutations.js'

export default class LeasesUnreserve extends BaseCommand<typeof LeasesUnreserve> {
  static override summary = 'Give a reserved subnet an etcd lease again, so it expires unless renewed.'
  static override description =
    "Grants an etcd lease of --ttl and re-puts the same value with it, guarded on the key's mod revision."
  static override examples = [
    '<%= config.bin %> <%= command.id %> 10.5.34.0/24 --yes',
    '<%= config.bin %> <%= command.id %> 10.5.34.0/24 --ttl 1h --yes',
  ]
  static override args = {
    subnet: Args.string({description: 'the subnet, e.g. 10.5.34.0/24', required: true, ignoreStdin: true}),
  }
  static override flags = {
    ...connectionFlags,
    ...etcdApiWriteFlag,
    ttl: Flags.string({summary: 'TTL of the new etcd lease.', default: '24h'}),
    ...mutationFlags,
  }

  public async run(): Promise<UnreserveResult> {
    const f = this.flags
    const ttl = Math.round(parseDuration(f.ttl, '--ttl') / 1000)
    const result = await unreserveLease(
      this.own(await openWriteStore(f['etcd-api'], resolveConnection(f, process.env), (m) => this.note(m))),
      this.args.subnet,
      ttl,
      f['dry-run'],
      Date.now(),
      confirmer({yes: f.yes}),
    )
    this.log(renderUnreserve(result, this.color, this.width))
    return result
  }
}
