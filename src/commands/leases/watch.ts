import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../base/base-command.js'
import {resolveConnection} from '../../base/connection.js'
import {connectionFlags, etcdApiFlag} from '../../base/flags.js'
import {parseDuration} from '../../core/duration.js'
import {ExitCode, FlannelctlError, UsageError} from '../../core/errors.js'
import {keyLayout} from '../../core/keys.js'
import {escapeJsonForTerminal} from '../../render/escape.js'
import {renderWatchEvent, renderWatchHeader} from '../../render/lease-events.js'
import {onOutputClosed, writeOut} from '../../render/output.js'
import {type LeaseEventJson, watchLeases} from '../../services/lease-watch.js'
import {openLeaseWatch} from '../../store/source.js'

export default class LeasesWatch extends BaseCommand<typeof LeasesWatch> {
  static override summary =
    'Watch subnet leases: added, renewed, changed, deleted and expired, decoded, as they happen.'
  static override description =
    'What `etcdctl watch --prefix /coreos.com/network/subnets` shows, decoded: one line per event (one JSON object per line with --json). From now, or from --rev N; a compaction (the watch is re-listed, differences marked resynced) and an etcd restart (resumed after the last revision seen) do not end it. Ctrl-C, SIGTERM, --max-events and --timeout end it with exit 0.'
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --public-ip 192.168.1.12',
    '<%= config.bin %> <%= command.id %> --json | jq -c \'select(.type == "expired")\'',
    '<%= config.bin %> <%= command.id %> --rev 1234 --max-events 10',
    '<%= config.bin %> <%= command.id %> 10.5.34.0/24 --max-events 1 --timeout 2h',
    '<%= config.bin %> <%= command.id %> --list',
  ]
  static override args = {
    subnet: Args.string({
      description: 'only events of leases overlapping this CIDR (the same as --subnet)',
      ignoreStdin: true,
    }),
  }
  static override flags = {
    ...connectionFlags,
    ...etcdApiFlag,
    'public-ip': Flags.string({summary: 'Only events of leases with this PublicIP (before or after the change).'}),
    subnet: Flags.string({summary: 'Only events of leases overlapping this CIDR.'}),
    rev: Flags.string({
      summary: 'Start at this revision (v2: index), as etcdctl watch --rev; without it, from now.',
      description: 'A revision etcd has compacted away is exit 4, naming the oldest one it still has.',
    }),
    list: Flags.boolean({
      summary: 'First print the current leases (as added events marked listed), as kubectl get -w does.',
      default: false,
    }),
    'max-events': Flags.integer({summary: 'Exit 0 after this many events (listed ones not counted).', min: 1}),
    timeout: Flags.string({
      summary: 'Exit after this long (0 without --max-events; 124 when fewer than --max-events came).',
    }),
    'no-headers': Flags.boolean({summary: 'Print no header line (for scripts).', default: false}),
  }

  protected override jsonLines = true

  public async run(): Promise<void> {
    const f = this.flags
    if (this.args.subnet !== undefined && f.subnet !== undefined && this.args.subnet !== f.subnet)
      throw new UsageError(
        `SUBNET ${this.args.subnet} and --subnet ${f.subnet} disagree: give one of them`,
        'INVALID_FLAGS',
      )
    const timeoutMs = f.timeout === undefined ? undefined : parseDuration(f.timeout, '--timeout')
    if (timeoutMs === 0)
      throw new UsageError(
        `invalid --timeout "${f.timeout}": it must be longer than 0 (leave it out to watch until Ctrl-C)`,
        'INVALID_DURATION',
      )
    const connection = resolveConnection(f, process.env)
    const stop = new AbortController()
    let timedOut = false
    const end = () => stop.abort()
    process.once('SIGINT', end)
    process.once('SIGTERM', end)
    onOutputClosed(end)
    const timer =
      timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true
            stop.abort()
          }, timeoutMs)
    const json = this.jsonEnabled()
    const tty = process.stdout.isTTY === true
    const color = this.color
    try {
      const prefix = keyLayout(connection.prefix).subnets
      // Each event is written as it comes (stdout is not buffered by us: a pipe gets every line at once).
      const onEvent = (e: LeaseEventJson) => {
        if (json) {
          const line = JSON.stringify(e)
          writeOut((tty ? escapeJsonForTerminal(line) : line) + '\n')
        } else writeOut(renderWatchEvent(e, prefix, color) + '\n')
      }
      const open = async () => this.own(await openLeaseWatch(f['etcd-api'], connection, (m) => this.note(m)))
      const summary = await watchLeases(open, {
        fromRevision: f.rev,
        list: f.list,
        publicIP: f['public-ip'],
        subnet: this.args.subnet ?? f.subnet,
        maxEvents: f['max-events'],
        signal: stop.signal,
        now: () => Date.now(),
        onEvent,
        // The header once the first list has answered (so that exit 69 prints nothing on stdout), before any event.
        onStarted: (revision) => {
          if (!json && !f['no-headers']) writeOut(renderWatchHeader(prefix) + '\n')
          if (process.stderr.isTTY && !json)
            this.note(
              `watching ${prefix} ${f.rev === undefined ? `after revision ${revision}` : `from revision ${f.rev}`} (Ctrl-C ends it)`,
            )
        },
        onNote: (m) => this.note(m),
      })
      if (timedOut && f['max-events'] !== undefined && summary.events < f['max-events'])
        throw new FlannelctlError(
          `--timeout ${f.timeout}: ${summary.events} of --max-events ${f['max-events']} event(s) came (watched up to revision ${summary.revision})`,
          'WATCH_TIMEOUT',
          ExitCode.timedOut,
          undefined,
          {events: summary.events, revision: summary.revision},
        )
    } finally {
      clearTimeout(timer)
      process.off('SIGINT', end)
      process.off('SIGTERM', end)
    }
  }
}
