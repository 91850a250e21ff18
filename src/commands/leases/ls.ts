import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../base/base-command.js'
import {sourceOptions} from '../../base/connection.js'
import {connectionFlags, etcdApiFlag, snapshotFlag} from '../../base/flags.js'
import {openSource} from '../../store/source.js'
import {parseDuration} from '../../core/duration.js'
import {UsageError} from '../../core/errors.js'
import {renderArrayWith} from '../../render/json.js'
import {startProgress} from '../../render/progress.js'
import {LEASE_SORTS, LeaseTexts} from '../../render/leases-json.js'
import {type LeaseJson, type LeasesResult, type ListOptions, listLeases} from '../../services/leases.js'

/** Where JSON.stringify(result, null, 2) puts each lease of the result's "leases": two levels in. */
const LEASE_INDENT = '    '

export default class LeasesLs extends BaseCommand<typeof LeasesLs> {
  static override summary = 'List subnet leases, decoded, with their remaining TTL.'
  static override description =
    'One row per subnet key, sorted numerically. TTL is the etcd lease\'s remaining time, or "reserved" for a key with no lease. Keys flanneld cannot parse are reported separately (stderr warning; "malformed" in JSON).'
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> -o wide --public-ip 192.168.1.12',
    '<%= config.bin %> <%= command.id %> 10.5.0.0/20 --sort expires',
    '<%= config.bin %> <%= command.id %> --json --no-ttl',
  ]
  static override args = {
    subnet: Args.string({description: 'only leases overlapping this CIDR (the same as --subnet)', ignoreStdin: true}),
  }
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
    sort: Flags.option({
      summary: 'Order of the rows (subnet: numerically).',
      options: LEASE_SORTS,
      default: 'subnet' as const,
    })(),
    'no-headers': Flags.boolean({summary: 'Print the table without its header line (for scripts).', default: false}),
    'renew-margin': Flags.string({
      summary: "flanneld's --subnet-lease-renew-margin, for the summary's count of leases expiring soon.",
      default: '60m',
    }),
    ttl: Flags.boolean({
      summary: 'Look up remaining TTLs (one TimeToLive per distinct lease).',
      default: true,
      allowNo: true,
    }),
  }

  public async run(): Promise<LeasesResult<LeaseJson> | LeasesResult<number>> {
    const f = this.flags
    // A progress line on stderr at a terminal once the run takes over a second (render/progress.ts, as doctor's).
    const progress = startProgress({enabled: process.stderr.isTTY === true && !this.jsonEnabled()})
    progress.update('reading leases')
    if (this.args.subnet !== undefined && f.subnet !== undefined && this.args.subnet !== f.subnet)
      throw new UsageError(
        `SUBNET ${this.args.subnet} and --subnet ${f.subnet} disagree: give one of them`,
        'INVALID_FLAGS',
      )
    const subnet = this.args.subnet ?? f.subnet
    const marginSeconds = parseDuration(f['renew-margin'], '--renew-margin') / 1000
    const note = (m: string) => {
      progress.clear()
      this.note(m)
    }
    const reader = this.own(openSource(sourceOptions(f, process.env, note)))
    const options: ListOptions = {
      withTtl: f.ttl,
      publicIP: f['public-ip'],
      subnet,
      now: Date.now(),
      onProgress: (done, total) => progress.update(`reading TTLs: ${done}/${total}`),
    }
    if (this.jsonEnabled()) {
      // --json: each of (up to 65,535) leases is its text as soon as it is read (no decoded lease kept), byte for
      // byte what JSON.stringify writes of the LeaseJson.
      const texts = new LeaseTexts(LEASE_INDENT)
      const result = await listLeases(reader, options, texts).finally(() => progress.end())
      renderArrayWith(result.leases, texts.renderArray)
      return result
    }
    const result = await listLeases(reader, options).finally(() => progress.end())
    // Rendering 65,535 rows costs real time: only when the table is shown. The table renderer (and string-width's
    // ~20 ms module) is loaded only then too.
    const {renderLeases, renderMalformed, renderSummary} = await import('../../render/leases.js')
    const warn = renderMalformed(result)
    if (warn) this.note(warn)
    this.log(
      renderLeases(
        result,
        {
          wide: f.output === 'wide',
          headers: !f['no-headers'],
          sort: f.sort,
          filtered: subnet !== undefined || f['public-ip'] !== undefined,
          keyspace: reader.api ?? null,
        },
        this.color,
      ),
    )
    // The summary is for humans: on stderr, and only when stderr is a terminal (like the progress line), so a script
    // or a pipe never sees it.
    if (result.leases.length > 0 && process.stderr.isTTY)
      this.note(renderSummary(result, marginSeconds, reader.api ?? null))
    return result
  }
}
