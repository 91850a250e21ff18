import {Flags} from '@oclif/core'

import {BaseCommand} from '../../base/base-command.js'
import {resolveConnection} from '../../base/connection.js'
import {connectionFlags, mutationFlags} from '../../base/flags.js'
import {openMigrationV3, openV2Store} from '../../store/source.js'
import {ExitCode} from '../../core/errors.js'
import {confirmer} from '../../prompts/confirm.js'
import {renderMigratePlan, renderMigrateResult} from '../../render/migrate.js'
import {migrateV2ToV3, type MigrateResult} from '../../services/migrate.js'

export default class MigrateV2ToV3 extends BaseCommand<typeof MigrateV2ToV3> {
  static override summary =
    "Copy flannel's config and leases from etcd's v2 keyspace (flannel <= 0.17) to v3 (flannel >= 0.18)."
  static override description =
    'Reads both keyspaces under the prefix and plans: each v2 key is created in v3 only if absent (a key with a TTL gets a new etcd lease with the remaining TTL, a key without one gets no lease), values byte for byte, the config last. A v3 key with the same value is skipped; with a different value nothing is written (exit 3) unless --force, which keeps the v3 value and copies the rest. Afterwards both keyspaces are read back and compared (exit 3 on any difference). v2 is never written; the etcdctl command that would delete it is printed.'
  static override examples = [
    '<%= config.bin %> <%= command.id %> --dry-run',
    '<%= config.bin %> <%= command.id %> --yes',
    '<%= config.bin %> <%= command.id %> --endpoints https://10.0.0.1:2379 --cacert ca.crt --cert client.crt --key client.key --yes --json',
  ]
  static override flags = {
    ...connectionFlags,
    force: Flags.boolean({
      default: false,
      summary: 'Copy the other keys even when some v3 keys hold a different value (those keep their v3 value).',
    }),
    ...mutationFlags,
  }

  public async run(): Promise<MigrateResult> {
    const f = this.flags
    const connection = resolveConnection(f, process.env)
    const v3 = this.own(await openMigrationV3(connection, (m) => this.note(m)))
    const v2 = this.own(await openV2Store(connection))
    const result = await migrateV2ToV3(
      v3,
      v2,
      {dryRun: f['dry-run'], force: f.force},
      {
        onPlan: (plan) => this.log(renderMigratePlan(plan, this.color)),
        confirm: confirmer({yes: f.yes}),
      },
    )
    this.log(renderMigrateResult(result, this.color))
    // Differences after the copy are the answer, as doctor's findings are: the result is printed, the exit code says.
    if (result.verified === false) process.exitCode = ExitCode.conflict
    return result
  }
}
