import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../base/base-command.js'
import {resolveConnection} from '../../base/connection.js'
import {connectionFlags, etcdApiWriteFlag, mutationFlags} from '../../base/flags.js'
import {openWriteStore} from '../../store/source.js'
import {parseDuration} from '../../core/duration.js'
import {UsageError} from '../../core/errors.js'
import {confirmer} from '../../prompts/confirm.js'
import {renderReserve} from '../../render/mutations.js'
import {type ReserveResult, reserveLease} from '../../services/lease-mutations.js'

export default class LeasesReserve extends BaseCommand<typeof LeasesReserve> {
  static override summary = 'Make a lease permanent (no etcd lease), or pre-reserve a subnet for a node.'
  static override description =
    'For an existing lease, puts the same value back with no etcd lease, guarded on its mod revision (exit 3 if a renewal got there first), then watches the key (--watch): a running flanneld ≥ v0.18 re-leases it at once, which exits 3 with what works instead (stop the node, reserve, keep it stopped; on start it takes the same subnet back as a 24h lease). flanneld ≤ v0.17 (etcd v2) keeps reservations. With SUBNET and --public-ip for a subnet nobody holds, creates the key (only if absent) for that node: flanneld reuses it by PublicIP when it joins.'
  static override examples = [
    '<%= config.bin %> <%= command.id %> 10.5.34.0/24 --yes',
    '<%= config.bin %> <%= command.id %> --public-ip 192.168.1.12 --yes',
    '<%= config.bin %> <%= command.id %> 10.5.200.0/24 --public-ip 192.168.1.99 --yes',
  ]
  static override args = {subnet: Args.string({description: 'the subnet, e.g. 10.5.34.0/24', ignoreStdin: true})}
  static override flags = {
    ...connectionFlags,
    ...etcdApiWriteFlag,
    'public-ip': Flags.string({summary: "The node's PublicIP: selects its lease, or owns a new reservation."}),
    'backend-type': Flags.string({summary: "BackendType of a new reservation (default: the config's backend)."}),
    ...mutationFlags,
    watch: Flags.string({
      default: '5s',
      summary:
        'After reserving a lease, watch its key this long for the owner undoing it (exit 3 if it does); 0 does not watch (at most 60s).',
    }),
  }

  public async run(): Promise<ReserveResult> {
    const f = this.flags
    const watchMs = parseDuration(f.watch, '--watch')
    if (watchMs > 60_000) throw new UsageError(`--watch ${f.watch} is longer than 60s`, 'INVALID_DURATION')
    const result = await reserveLease(
      this.own(await openWriteStore(f['etcd-api'], resolveConnection(f, process.env), (m) => this.note(m))),
      {
        subnet: this.args.subnet,
        publicIP: f['public-ip'],
        backendType: f['backend-type'],
        dryRun: f['dry-run'],
        watchMs,
      },
      confirmer({yes: f.yes}),
    )
    this.log(renderReserve(result, this.color, this.width))
    if (result.action !== 'unchanged' || result.previousLeaseId === '0') this.note(`note: ${result.note}`)
    return result
  }
}
