import {Flags} from '@oclif/core'

import {BaseCommand} from '../base/base-command.js'
import {sourceOptions} from '../base/connection.js'
import {connectionFlags, etcdApiFlag, snapshotFlag} from '../base/flags.js'
import {openSource} from '../store/source.js'
import {parseDuration} from '../core/duration.js'
import {ExitCode} from '../core/errors.js'
import {renderDoctor} from '../render/doctor.js'
import {startProgress} from '../render/progress.js'
import {checkDoctorOptions, type DoctorResult, runDoctor} from '../services/doctor.js'

const list = (s: string | undefined) =>
  s
    ? s
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean)
    : []

export default class Doctor extends BaseCommand<typeof Doctor> {
  static override summary = 'Find every known flannel failure in one run, cluster-wide and (with --local) on this node.'
  static override description =
    'Reads the config and every lease at one revision (or a --snapshot) and runs every check. Exit 0 when no finding is at or above --fail-on, 5 otherwise, 69 when etcd is unreachable.'
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --local --iface eth1',
    '<%= config.bin %> <%= command.id %> --snapshot examples/snapshot.json --json',
    '<%= config.bin %> <%= command.id %> --fail-on warning --skip reservation',
  ]
  static override flags = {
    ...connectionFlags,
    ...snapshotFlag,
    ...etcdApiFlag,
    local: Flags.boolean({
      default: false,
      summary: 'Also check this node: subnet.env, flannel.<VNI>, routes, neighbours, FDB, ip_forward.',
    }),
    'fail-on': Flags.option({
      summary: 'Lowest severity that makes the exit code 5.',
      options: ['error', 'warning', 'info'] as const,
      default: 'error' as const,
    })(),
    only: Flags.string({summary: 'Run only these check IDs (comma-separated).'}),
    skip: Flags.string({summary: 'Skip these check IDs (comma-separated).'}),
    'renew-margin': Flags.string({
      summary: "flanneld's --subnet-lease-renew-margin: less TTL than this means a missed renewal.",
      default: '60m',
    }),
    'subnet-file': Flags.string({summary: 'subnet.env to check with --local.', default: '/run/flannel/subnet.env'}),
    'public-ip': Flags.string({
      summary: "This node's PublicIP, for --local (default: the --iface or default-route address).",
    }),
    iface: Flags.string({summary: "This node's external interface (name or address), for --local."}),
    'flanneld-version': Flags.string({
      summary:
        "The flanneld release the nodes run (e.g. 0.20.0): the v2/v3 keyspace checks and, with --local, this node's masquerade rule set, vxlan MTU and local address [default: inferred from the node's rule set, else any release].",
    }),
  }

  public async run(): Promise<DoctorResult> {
    const f = this.flags
    checkDoctorOptions({flanneldVersion: f['flanneld-version'], only: list(f.only), skip: list(f.skip)})
    // A progress line on stderr when the run takes over a second at a terminal (never with --json), erased before
    // the result is printed.
    const progress = startProgress({enabled: process.stderr.isTTY === true && !this.jsonEnabled()})
    const note = (m: string) => {
      progress.clear()
      this.note(m)
    }
    const result = await runDoctor(this.own(openSource(sourceOptions(f, process.env, note))), {
      onProgress: (what) => progress.update(what),
      failOn: f['fail-on'],
      only: list(f.only),
      skip: list(f.skip),
      renewMarginSeconds: parseDuration(f['renew-margin'], '--renew-margin') / 1000,
      local: f.local ? {subnetFile: f['subnet-file'], publicIP: f['public-ip'], iface: f.iface} : undefined,
      flanneldVersion: f['flanneld-version'],
      hints: this.hintContext,
    }).finally(() => progress.end())
    // The human report only when it is shown (with --json, this.log drops it: laying out 65,535 findings costs time).
    if (!this.jsonEnabled()) this.log(renderDoctor(result, this.color, this.width))
    // Findings are the answer, not a failure of the command: the result is printed either way, the exit code says.
    if (result.failed) process.exitCode = ExitCode.findings
    return result
  }
}
