import {Flags} from '@oclif/core'

import {BaseCommand} from '../../base/base-command.js'
import {sourceOptions} from '../../base/connection.js'
import {connectionFlags, etcdApiFlag, snapshotFlag} from '../../base/flags.js'
import {openSource} from '../../store/source.js'
import {renderLeases, renderMalformed} from '../../render/leases.js'
import {type LeasesResult, listLeases} from '../../services/leases.js'

export default class LeasesLs extends BaseCommand<typeof LeasesLs> {
  static override summary = 'List subnet leases, decoded, with their remaining TTL.'
  static override description =
    'One row per subnet key, sorted numerically. TTL is the etcd lease\'s remaining time, or "reserved" for a key with no lease. Keys flanneld cannot parse are reported separately (stderr warning; "malformed" in JSON).'
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> -o wide --public-ip 192.168.1.12',
    '<%= config.bin %> <%= command.id %> --json --no-ttl',
  ]
  static override aliases = ['leases list']
  static override flags = {
    ...connectionFlags,
    ...snapshotFlag,
    ...etcdApiFlag,
    'public-ip': Flags.string({summary: 'Only leases with this PublicIP.'}),
    subnet: Flags.string({summary: 'Only leases overlapping this CIDR.'}),
    output: Flags.option({
      char: 'o',
      summary: 'Output format for humans.',
      options: ['table', 'wide'] as const,
      default: 'table' as const,
    })(),
    ttl: Flags.boolean({
      summary: 'Look up remaining TTLs (one TimeToLive per distinct lease).',
      default: true,
      allowNo: true,
    }),
  }

  public async run(): Promise<LeasesResult> {
    const f = this.flags
    const started = Date.now()
    let shown = false
    const progress = (done: number, total: number) => {
      if (!process.stderr.isTTY || this.jsonEnabled() || Date.now() - started < 1000) return
      shown = true
      process.stderr.write(`\rreading TTLs: ${done}/${total}`)
    }
    const result = await listLeases(this.own(openSource(sourceOptions(f, process.env, (m) => this.note(m)))), {
      withTtl: f.ttl,
      publicIP: f['public-ip'],
      subnet: f.subnet,
      now: Date.now(),
      onProgress: progress,
    })
    if (shown) process.stderr.write('\r\x1b[K')
    const warn = renderMalformed(result)
    if (warn && !this.jsonEnabled()) this.note(warn)
    // Rendering 65,535 rows costs real time: only when the table is shown.
    if (!this.jsonEnabled()) this.log(renderLeases(result, f.output === 'wide', this.color))
    return result
  }
}
