import {Flags} from '@oclif/core'

import {BaseCommand} from '../../base/base-command.js'
import {resolveConnection} from '../../base/connection.js'
import {connectionFlags, etcdApiWriteFlag, mutationFlags} from '../../base/flags.js'
import {openWriteStore} from '../../store/source.js'
import {confirmer} from '../../prompts/confirm.js'
import {renderExpandPlan, renderExpandResult} from '../../render/mutations.js'
import {type ExpandResult, expandNetwork} from '../../services/expand.js'

export default class NetworkExpand extends BaseCommand<typeof NetworkExpand> {
  static override summary = 'Widen the Network prefix safely, keeping SubnetLen and every existing lease valid.'
  static override description =
    "Reads the config and every lease at one revision, refuses (exit 2, nothing written) when the new network does not strictly contain the old one, when any lease would become incompatible, when a node address would fall inside it, or when it overlaps a --service-cidr. SubnetLen is written explicitly. The write is guarded on the config's mod revision: if it changed meanwhile, exit 3."
  static override examples = [
    '<%= config.bin %> <%= command.id %> --to 10.4.0.0/15 --dry-run',
    '<%= config.bin %> <%= command.id %> --to 10.0.0.0/12 --service-cidr 10.96.0.0/12 --yes',
  ]
  static override flags = {
    ...connectionFlags,
    ...etcdApiWriteFlag,
    to: Flags.string({summary: 'The new, wider Network (IPv4 CIDR).', required: true}),
    'service-cidr': Flags.string({
      summary: 'A Kubernetes service range the new Network must not overlap (repeatable).',
      multiple: true,
      default: [],
    }),
    'subnet-min': Flags.string({summary: 'Widen an explicit SubnetMin to this subnet.'}),
    'subnet-max': Flags.string({summary: 'Widen an explicit SubnetMax to this subnet.'}),
    ...mutationFlags,
  }

  public async run(): Promise<ExpandResult> {
    const f = this.flags
    const result = await expandNetwork(
      this.own(await openWriteStore(f['etcd-api'], resolveConnection(f, process.env), (m) => this.note(m))),
      {
        to: f.to,
        serviceCidrs: f['service-cidr'],
        subnetMin: f['subnet-min'],
        subnetMax: f['subnet-max'],
        dryRun: f['dry-run'],
        hints: this.hintContext,
      },
      {onPlan: (plan) => this.log(renderExpandPlan(plan, this.color, this.width)), confirm: confirmer({yes: f.yes})},
    )
    this.log(renderExpandResult(result, this.color, this.width))
    return result
  }
}
