/**
 * Where read commands get their data: a live etcd, or an offline `etcdctl get -w json` snapshot (no TTLs).
 */

import {readFileSync} from 'node:fs'

import {UsageError} from '../core/errors.js'
import {keyLayout} from '../core/keys.js'
import {classifyKeys} from '../core/leases.js'
import {parseEtcdctlSnapshot} from '../core/snapshot.js'
import type {EtcdStore} from './etcd-store.js'
import type {EtcdV2Store} from './etcd-v2.js'
import type {NetworkReader} from './port.js'

export function etcdReader(store: EtcdStore): NetworkReader {
  return {
    layout: store.layout,
    source: 'etcd',
    readNetwork: () => store.readNetwork(),
    readSubnets: () => store.readSubnets(),
    leaseTtls: (ids, onProgress) => store.leaseTtls(ids, onProgress),
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
    v2EtcdctlFlags: () => store.etcdctlFlags(),
    v2SawWholePrefix: () => store.sawWholePrefix,
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
