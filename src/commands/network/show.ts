import {BaseCommand} from '../../base/base-command.js'
import {sourceOptions} from '../../base/connection.js'
import {connectionFlags, etcdApiFlag, snapshotFlag} from '../../base/flags.js'
import {openSource} from '../../store/source.js'
import {renderNetworkShow} from '../../render/network.js'
import {type NetworkShowResult, showNetwork} from '../../services/network.js'

export default class NetworkShow extends BaseCommand<typeof NetworkShow> {
  static override summary = "Show the network config with flannel's defaults resolved, and capacity."
  static override description =
    "Reads <prefix>/config and every subnet key at one revision. Exit 4 when there is no config. An invalid config is shown with flannel's own error message."
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --json',
    '<%= config.bin %> <%= command.id %> --snapshot examples/snapshot.json',
  ]
  static override flags = {...connectionFlags, ...snapshotFlag, ...etcdApiFlag}

  public async run(): Promise<NetworkShowResult> {
    const f = this.flags
    const result = await showNetwork(this.own(openSource(sourceOptions(f, process.env, (m) => this.note(m)))))
    this.log(renderNetworkShow(result, this.color))
    return result
  }
}
