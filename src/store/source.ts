/**
 * Source selection, in one place: `--snapshot FILE`, or a live etcd's v3 or v2 keyspace (`--etcd-api`), or a
 * writable store. Nothing here talks to etcd when called: a live source connects on its first read (and proves etcd
 * answers within --dial-timeout then), so every check a service makes on its input before reading runs first, and a
 * usage error exits 2 whether or not etcd is reachable, by construction. The etcd clients are loaded on first use
 * too: offline commands load none, v3 reads only the lean client (v3-lean.ts), and etcd3 with its gRPC stack (~250 ms
 * of start-up) is loaded by the first write or watch.
 */

import {UsageError} from '../core/errors.js'
import {keyLayout} from '../core/keys.js'
import type {ConnectionOptions, EtcdStore} from './etcd-store.js'
import type {EtcdV2Store} from './etcd-v2.js'
import {type FlannelStore, type LeaseWatchSource, type NetworkReader, readSubnets} from './port.js'
import {snapshotReader} from './reader.js'

export const ETCD_APIS = ['auto', 'v3', 'v2'] as const
export type EtcdApi = (typeof ETCD_APIS)[number]

export interface SourceOptions {
  /** `--snapshot FILE` (`-` for stdin): read that dump instead of etcd. */
  snapshot?: string
  /** `--etcd-api`; commands without the flag read v3 only. */
  api?: EtcdApi
  prefix: string
  /** The connection settings, resolved only when a live etcd is the source. */
  connection: () => ConnectionOptions
  /** Progress and notes for stderr. */
  note: (message: string) => void
}

/** The data source of a read command. Usage errors in the options are thrown here; etcd is reached on first read. */
export function openSource(o: SourceOptions): NetworkReader {
  if (o.snapshot !== undefined) {
    if (o.api === 'v2')
      throw new UsageError(
        '--snapshot is a dump of the v3 keyspace (etcdctl get -w json); it cannot be read with --etcd-api v2',
        'INVALID_FLAGS',
      )
    return snapshotReader(o.snapshot, o.prefix)
  }
  const connection = o.connection()
  const api = o.api ?? 'v3'
  return lazyReader(connection, async () => {
    const {openKeyspaceReader} = await import('./keyspaces.js')
    return openKeyspaceReader(api, connection, o.note)
  })
}

/**
 * The store a mutation writes: the keyspace of --etcd-api (auto: the one flanneld reads, see keyspaces.ts), chosen on
 * its first etcd call, so the service's input checks run before it.
 */
export async function openWriteStore(
  api: EtcdApi | undefined,
  connection: ConnectionOptions,
  note: (message: string) => void,
): Promise<FlannelStore> {
  const {openKeyspaceStore} = await import('./keyspaces.js')
  return openKeyspaceStore(api ?? 'auto', connection, note)
}

/** The v3 store for migrate: without --user when v3 auth is off and --user is meant for v2 (a note says so). */
export async function openMigrationV3(
  connection: ConnectionOptions,
  note: (message: string) => void,
): Promise<EtcdStore> {
  const {openV3AuthAware} = await import('./keyspaces.js')
  return openV3AuthAware(connection, note)
}

/** etcd's v2 keys API on the same endpoints (exit 69 when it does not answer or does not serve v2). */
export async function openV2Store(connection: ConnectionOptions): Promise<EtcdV2Store> {
  const {EtcdV2Store} = await import('./etcd-v2.js')
  return EtcdV2Store.open(connection)
}

/** The keyspace `leases watch` follows (see lease-watch-source.ts); exit 69 when etcd does not answer. */
export async function openLeaseWatch(
  api: EtcdApi,
  connection: ConnectionOptions,
  note: (message: string) => void,
): Promise<LeaseWatchSource> {
  const {openLeaseWatchSource} = await import('./lease-watch-source.js')
  return openLeaseWatchSource(api, connection, note)
}

/** A reader that opens `open()` on its first call; `api` and `otherKeyspace` are those of the opened reader. */
function lazyReader(connection: ConnectionOptions, open: () => Promise<NetworkReader>): NetworkReader {
  let opening: Promise<NetworkReader> | undefined
  let opened: NetworkReader | undefined
  let closed = false
  const get = () =>
    (opening ??= open().then((r) => {
      if (closed) r.close()
      return (opened = r)
    }))
  return {
    layout: keyLayout(connection.prefix),
    source: 'etcd',
    get api() {
      return opened?.api
    },
    readNetwork: async () => (await get()).readNetwork(),
    readSubnets: async () => readSubnets(await get()),
    leaseTtls: async (ids, onProgress) => (await get()).leaseTtls(ids, onProgress),
    otherKeyspace: async () => {
      const r = await get()
      return r.otherKeyspace ? r.otherKeyspace() : null
    },
    v2EtcdctlFlags: () => opened?.v2EtcdctlFlags?.() ?? '',
    v2SawWholePrefix: () => opened?.v2SawWholePrefix?.() ?? true,
    close: () => {
      closed = true
      opened?.close()
    },
  }
}
