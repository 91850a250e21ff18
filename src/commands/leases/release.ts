import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../base/base-command.js'
import {resolveConnection} from '../../base/connection.js'
import {connectionFlags, etcdApiWriteFlag, mutationFlags} from '../../base/flags.js'
import {openWriteStore} from '../../store/source.js'
import {parseDuration} from '../../core/duration.js'
import {confirmer} from '../../prompts/confirm.js'
import {renderReleasePlan, renderReleaseResult} from '../../render/mutations.js'
import {type ReleaseResult, releaseLeases} from '../../services/lease-mutations.js'

export default class LeasesRelease extends BaseCommand<typeof LeasesRelease> {
  static override summary = 'Delete lease keys: named subnets, or every lease whose owner missed its renewal.'
  static override description =
    'Each delete is guarded on the mod revision the key was listed at; a key that changed meanwhile is not deleted and is reported (exit 3). --stale selects leases whose remaining TTL is below --renew-margin. Reservations are refused without --force.'
  static override examples = [
    '<%= config.bin %> <%= command.id %> 10.5.34.0/24 10.5.35.0/24 --yes',
    '<%= config.bin %> <%= command.id %> --stale --dry-run',
    '<%= config.bin %> <%= command.id %> --stale --renew-margin 2h --yes',
  ]
  static override strict = false
  static override args = {
    subnet: Args.string({description: 'subnet(s) to release, e.g. 10.5.34.0/24', ignoreStdin: true}),
  }
  static override flags = {
    ...connectionFlags,
    ...etcdApiWriteFlag,
    stale: Flags.boolean({default: false, summary: 'Select leases whose remaining TTL is below the renew margin.'}),
    'renew-margin': Flags.string({
      summary: "flanneld's --subnet-lease-renew-margin: a live node renews this long before expiry.",
      default: '60m',
    }),
    force: Flags.boolean({default: false, summary: 'Also release reservations.'}),
    ...mutationFlags,
  }

  public async run(): Promise<ReleaseResult> {
    const f = this.flags
    const result = await releaseLeases(
      this.own(await openWriteStore(f['etcd-api'], resolveConnection(f, process.env), (m) => this.note(m))),
      {
        subnets: this.argvParsed,
        stale: f.stale,
        renewMarginSeconds: parseDuration(f['renew-margin'], '--renew-margin') / 1000,
        force: f.force,
        dryRun: f['dry-run'],
      },
      {onPlan: (targets) => this.log(renderReleasePlan(targets, this.width)), confirm: confirmer({yes: f.yes})},
    )
    const tail = renderReleaseResult(result, this.color)
    if (tail) this.log(tail)
    return result
  }
}
