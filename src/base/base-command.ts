/**
 * The base of every flannelctl command: `--json`, the documented exit codes, one-line errors (a JSON envelope under
 * --json), and lazily opened etcd connections closed in finally().
 */

import {format, stripVTControlCharacters} from 'node:util'

import {Command, Flags, type Interfaces} from '@oclif/core'

import {ExitCode, FlannelctlError, UsageError} from '../core/errors.js'
import {writeJson, writeOut} from '../render/output.js'
import {colorEnabled, theme} from '../render/theme.js'
import type {EtcdStore} from '../store/etcd-store.js'
import type {EtcdV2Store} from '../store/etcd-v2.js'
import type {EtcdApi} from '../store/keyspaces.js'
import type {FlannelStore, NetworkReader} from '../store/port.js'
import {etcdReader, snapshotReader, v2Reader} from '../store/reader.js'
import {type ConnectionFlags, resolveConnection, resolveSetting} from './connection.js'

/** The etcd connection flags, shared by every command that talks to etcd. */
export const connectionFlags = {
  endpoints: Flags.string({
    summary: 'Comma-separated etcd endpoints [default: http://127.0.0.1:2379].',
    description: 'Env: FLANNELCTL_ENDPOINTS, ETCDCTL_ENDPOINTS, FLANNELD_ETCD_ENDPOINTS.',
    helpGroup: 'ETCD',
  }),
  'etcd-prefix': Flags.string({
    summary: 'Key prefix of the flannel network [default: /coreos.com/network].',
    description: 'Env: FLANNELCTL_ETCD_PREFIX, FLANNELD_ETCD_PREFIX.',
    helpGroup: 'ETCD',
  }),
  cacert: Flags.string({
    summary: 'CA bundle to verify etcd servers (env ETCDCTL_CACERT, FLANNELD_ETCD_CAFILE).',
    helpGroup: 'ETCD',
  }),
  cert: Flags.string({
    summary: 'Client certificate for etcd (env ETCDCTL_CERT, FLANNELD_ETCD_CERTFILE).',
    helpGroup: 'ETCD',
  }),
  key: Flags.string({summary: 'Client key for etcd (env ETCDCTL_KEY, FLANNELD_ETCD_KEYFILE).', helpGroup: 'ETCD'}),
  user: Flags.string({
    summary: 'etcd user, as name or name:password (env ETCDCTL_USER, FLANNELD_ETCD_USERNAME).',
    helpGroup: 'ETCD',
  }),
  password: Flags.string({summary: 'etcd password (env ETCDCTL_PASSWORD, FLANNELD_ETCD_PASSWORD).', helpGroup: 'ETCD'}),
  'dial-timeout': Flags.string({summary: 'Time to wait for etcd to answer [default: 5s].', helpGroup: 'ETCD'}),
  'command-timeout': Flags.string({summary: 'Time allowed for each etcd request [default: 30s].', helpGroup: 'ETCD'}),
}

/** `--snapshot FILE` for read commands. */
export const snapshotFlag = {
  snapshot: Flags.string({
    summary: 'Read from an `etcdctl get --prefix /coreos.com/network -w json` dump instead of etcd.',
    helpGroup: 'ETCD',
  }),
}

/** `--etcd-api v2|v3|auto` for read commands: which etcd keyspace to read (see store/keyspaces.ts). */
export const etcdApiFlag = {
  'etcd-api': Flags.string({
    summary: 'etcd keyspace to read: v3, v2 (flannel <= 0.17, over the HTTP API) or auto [default: auto].',
    description: 'auto reads v3 and falls back to v2 (with a note on stderr) when only the v2 keyspace holds a config.',
    options: ['auto', 'v3', 'v2'],
    helpGroup: 'ETCD',
  }),
}

/** `--etcd-api v2|v3|auto` for mutations: which etcd keyspace to write (see store/keyspaces.ts). */
export const etcdApiWriteFlag = {
  'etcd-api': Flags.string({
    summary: 'etcd keyspace to write: v3, v2 (flannel <= 0.17, over the HTTP API) or auto [default: auto].',
    description:
      'auto writes only the keyspace flanneld reads: the one holding the config (v3 when neither does). When both hold a config it refuses (exit 2) naming both.',
    options: ['auto', 'v3', 'v2'],
    helpGroup: 'ETCD',
  }),
}

/**
 * The one-line form of an error message. oclif's parse errors put the actual reason on the lines after a
 * "The following error occurred:" header ("Missing required flag network", "--subnet=... cannot also be provided
 * when using --public-ip"), so for them every line but that header and the "See more help" trailer is kept.
 */
export function oneLineMessage(message: string, fromParser: boolean): string {
  const lines = stripVTControlCharacters(message).split('\n')
  if (!fromParser) return lines[0]!.replace(/^Error: /, '')
  const kept = lines
    .map((l) => l.trim())
    .filter((l) => l !== '' && !/^The following errors? occurred:$/.test(l) && l !== 'See more help with --help')
  return kept.join('; ').replace(/^Error: /, '')
}

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<T['flags']>
export type BaseArgs<T extends typeof Command> = Interfaces.InferredArgs<T['args']>

export abstract class BaseCommand<T extends typeof Command> extends Command {
  static override enableJsonFlag = true

  protected flags!: BaseFlags<T>
  protected args!: BaseArgs<T>
  private readers: NetworkReader[] = []

  public override async init(): Promise<void> {
    await super.init()
    const {args, flags} = await this.parse({
      flags: this.ctor.flags,
      baseFlags: (super.ctor as typeof BaseCommand).baseFlags,
      enableJsonFlag: this.ctor.enableJsonFlag,
      args: this.ctor.args,
      strict: this.ctor.strict,
    })
    this.flags = flags as BaseFlags<T>
    this.args = args as BaseArgs<T>
  }

  /** A chalk instance that colours only on a TTY and never with NO_COLOR. */
  protected get color() {
    return theme(!this.jsonEnabled() && colorEnabled(process.stdout))
  }

  protected get prefix(): string {
    return resolveSetting(this.flags as ConnectionFlags, process.env, 'etcd-prefix')!
  }

  /** Opens a live etcd connection (exit 69 when it does not answer within --dial-timeout). */
  protected async openStore(): Promise<EtcdStore> {
    const options = resolveConnection(this.flags as ConnectionFlags, process.env)
    // Loaded on demand: the etcd client (gRPC) costs ~200 ms of start-up that offline commands never pay.
    const {EtcdStore} = await import('../store/etcd-store.js')
    // Not probed yet: the first etcd call proves etcd answers, so input checked before it still exits 2.
    const store = EtcdStore.create(options)
    this.readers.push(etcdReader(store))
    return store
  }

  /** The data source of a read command: `--snapshot FILE`, or a live etcd's v3 or v2 keyspace (--etcd-api). */
  protected async openReader(): Promise<NetworkReader> {
    const file = (this.flags as {snapshot?: string}).snapshot
    const api = (this.flags as {'etcd-api'?: EtcdApi})['etcd-api']
    if (file !== undefined) {
      if (api === 'v2')
        throw new UsageError(
          '--snapshot is a dump of the v3 keyspace (etcdctl get -w json); it cannot be read with --etcd-api v2',
          'INVALID_FLAGS',
        )
      const r = snapshotReader(file, this.prefix)
      this.readers.push(r)
      return r
    }
    if ('etcd-api' in (this.ctor.flags ?? {})) {
      const {openKeyspaceReader} = await import('../store/keyspaces.js')
      const r = await openKeyspaceReader(
        api ?? 'auto',
        resolveConnection(this.flags as ConnectionFlags, process.env),
        (m) => this.note(m),
      )
      this.readers.push(r)
      return r
    }
    await this.openStore()
    return this.readers.at(-1)!
  }

  /**
   * The store a mutation writes: the keyspace of --etcd-api (auto: the one flanneld reads), chosen on its first etcd
   * call so that input checked before it still exits 2 when etcd is down.
   */
  protected async openWriteStore(): Promise<FlannelStore> {
    const api = (this.flags as {'etcd-api'?: EtcdApi})['etcd-api'] ?? 'auto'
    const {openKeyspaceStore} = await import('../store/keyspaces.js')
    const store = openKeyspaceStore(api, resolveConnection(this.flags as ConnectionFlags, process.env), (m) =>
      this.note(m),
    )
    this.readers.push(store)
    return store
  }

  /** The v3 store for migrate: without --user when v3 auth is off and --user is meant for v2 (a note says so). */
  protected async openMigrationV3(): Promise<EtcdStore> {
    const {openV3AuthAware} = await import('../store/keyspaces.js')
    const store = await openV3AuthAware(resolveConnection(this.flags as ConnectionFlags, process.env), (m) =>
      this.note(m),
    )
    this.readers.push(store)
    return store
  }

  /** Opens etcd's v2 keys API on the same endpoints (exit 69 when it does not answer or does not serve v2). */
  protected async openV2Store(): Promise<EtcdV2Store> {
    const {EtcdV2Store} = await import('../store/etcd-v2.js')
    const store = await EtcdV2Store.open(resolveConnection(this.flags as ConnectionFlags, process.env))
    this.readers.push(v2Reader(store))
    return store
  }

  /**
   * The --json result: exactly `JSON.stringify(result, null, 2)`, streamed in ~1 MiB chunks through the one stdout
   * writer (render/output.ts), which delivers every byte to a pipe however slowly it is read. oclif's own printer
   * re-tokenises the whole document to colour it, which at 65,535 leases (~35 MB) costs seconds and hundreds of MB.
   */
  public override logJson(json: unknown): void {
    writeJson(json)
  }

  /** Results for humans, through the same writer as --json (order kept, every byte delivered, EPIPE quiet). */
  public override log(message = '', ...args: unknown[]): void {
    if (!this.jsonEnabled()) writeOut(format(message, ...args) + '\n')
  }

  /** Progress and warnings go to stderr, never stdout. */
  protected note(message: string): void {
    process.stderr.write(message + '\n')
  }

  protected override async catch(
    err: Error & {exitCode?: number; oclif?: {exit?: number}; code?: string},
  ): Promise<unknown> {
    let exitCode: number
    let code: string
    let hint: string | undefined
    if (err instanceof FlannelctlError) {
      exitCode = err.exitCode
      code = err.code
      hint = err.hint
    } else if (err.oclif?.exit !== undefined) {
      // oclif's own parse and usage errors (unknown flag, missing argument): exit 2.
      exitCode = err.oclif.exit === 0 ? 0 : ExitCode.usage
      code = 'USAGE'
      if (exitCode === 0) return super.catch(err)
    } else {
      exitCode = ExitCode.bug
      code = 'BUG'
      hint = 'this is a bug in flannelctl; run with DEBUG=1 for a stack trace and report it'
    }
    process.exitCode = exitCode
    const message = oneLineMessage(err.message, code === 'USAGE')
    if (this.jsonEnabled()) {
      const details = err instanceof FlannelctlError && err.details !== undefined ? {details: err.details} : {}
      writeOut(JSON.stringify({error: {code, message, exitCode, ...(hint ? {hint} : {}), ...details}}, null, 2) + '\n')
    } else {
      process.stderr.write(`Error: ${message}\n`)
      if (hint) process.stderr.write(`Hint: ${hint}\n`)
    }
    if (process.env.DEBUG && err.stack) process.stderr.write(err.stack + '\n')
    return undefined
  }

  protected override async finally(err: Error | undefined): Promise<unknown> {
    for (const r of this.readers) r.close()
    this.readers = []
    return super.finally(err)
  }
}
