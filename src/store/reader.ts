/**
 * Where read commands get their data: a live etcd, or an offline `etcdctl get -w json` snapshot (no TTLs).
 */

import {readFileSync} from 'node:fs'

import {UsageError} from '../core/errors.js'
import {keyLayout, type KeyLayout} from '../core/keys.js'
import {classifyKeys, type NetworkSnapshot} from '../core/leases.js'
import {parseEtcdctlSnapshot} from '../core/snapshot.js'
import type {EtcdStore} from './etcd-store.js'
import type {EtcdV2Store} from './etcd-v2.js'

export interface NetworkReader {
  readonly layout: KeyLayout
  /** 'etcd' for a live cluster, or the snapshot's file name. */
  readonly source: string
  readNetwork(): Promise<NetworkSnapshot>
  /** Remaining TTLs per lease ID; null when the source has none (snapshots). */
  leaseTtls(
    ids: Iterable<string>,
    onProgress?: (done: number, total: number) => void,
  ): Promise<Map<string, number> | null>
  close(): void
  /** The etcd keyspace read: 'v3', or 'v2' (flannel <= 0.17, over the HTTP API); absent for snapshots. */
  readonly api?: 'v2' | 'v3'
  /**
   * The same etcd's other keyspace (v2 for a v3 reader and the reverse), opened on first use for doctor's keyspace
   * checks; null when it does not answer. Absent for snapshots and with an explicit --etcd-api v3.
   */
  readonly otherKeyspace?: () => Promise<NetworkReader | null>
}

export function etcdReader(store: EtcdStore): NetworkReader {
  return {
    layout: store.layout,
    source: 'etcd',
    readNetwork: () => store.readNetwork(),
    leaseTtls: (ids, onProgress) => store.leaseTtls(ids, 64, onProgress),
    close: () => store.close(),
    api: 'v3',
  }
}

/** A reader of etcd's v2 keyspace: TTL keys carry synthetic lease IDs (`v2:<key>`) whose TTLs leaseTtls() serves. */
export function v2Reader(store: EtcdV2Store): NetworkReader {
  return {
    layout: store.layout,
    source: 'etcd',
    readNetwork: () => store.readNetwork(),
    leaseTtls: (ids) => store.leaseTtls(ids),
    close: () => store.close(),
    api: 'v2',
  }
}

export function snapshotReader(file: string, prefix: string): NetworkReader {
  let text: string
  try {
    text = file === '-' ? readFileSync(0, 'utf8') : readFileSync(file, 'utf8')
  } catch (error) {
    throw new UsageError(
      `cannot read --snapshot file ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
      'UNREADABLE_FILE',
    )
  }
  const layout = keyLayout(prefix)
  const parsed = parseEtcdctlSnapshot(text, file)
  return {
    layout,
    source: file,
    readNetwork: async () => classifyKeys(layout, parsed.kvs, parsed.revision),
    leaseTtls: async () => null,
    close: () => {},
  }
}
