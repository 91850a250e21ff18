/**
 * The keyspace `leases watch` follows, chosen with --etcd-api as read commands choose theirs (store/keyspaces.ts):
 * v3, v2, or auto (v3, unless only the v2 keyspace holds a config: then v2, with a note on stderr).
 */

import type {ConnectionOptions} from './etcd-store.js'
import {EtcdV2Store} from './etcd-v2.js'
import {openV3AuthAware} from './keyspaces.js'
import type {LeaseWatchSource} from './port.js'
import type {EtcdApi} from './source.js'

function v3Source(store: Awaited<ReturnType<typeof openV3AuthAware>>): LeaseWatchSource {
  return {
    api: 'v3',
    layout: store.layout,
    leaseTellsExpiry: true,
    readNetwork: () => store.readNetwork(),
    leaseTtls: (ids) => store.leaseTtls(ids),
    watchSubnetChanges: (from, cb) => store.watchSubnetChanges(from, cb),
    compactedRevision: (from) => store.compactedRevision(from),
    close: () => store.close(),
  }
}

function v2Source(store: EtcdV2Store): LeaseWatchSource {
  return {
    api: 'v2',
    layout: store.layout,
    leaseTellsExpiry: false,
    readNetwork: () => store.readNetwork(),
    leaseTtls: (ids) => store.leaseTtls(ids),
    watchSubnetChanges: (from, cb) => store.watchSubnetChanges(from, cb),
    compactedRevision: () => store.compactedRevision(),
    close: () => store.close(),
  }
}

export async function openLeaseWatchSource(
  api: EtcdApi,
  opts: ConnectionOptions,
  note: (message: string) => void,
): Promise<LeaseWatchSource> {
  if (api === 'v2') return v2Source(await EtcdV2Store.open(opts))
  const {EtcdStore} = await import('./etcd-store.js')
  if (api === 'v3') return v3Source(await EtcdStore.open(opts))
  const v3 = await openV3AuthAware(opts, note)
  try {
    if ((await v3.getKey(v3.layout.config)) !== null) return v3Source(v3)
  } catch (error) {
    v3.close()
    throw error
  }
  let v2: EtcdV2Store | undefined
  try {
    v2 = await EtcdV2Store.open(opts)
    if ((await v2.getKey(v2.layout.config)) !== null) {
      note(
        `note: no config at ${v3.layout.config} in etcd's v3 keyspace, but there is one in the v2 keyspace (written by flannel <= 0.17): watching v2 (--etcd-api v3 watches v3)`,
      )
      v3.close()
      return v2Source(v2)
    }
  } catch {
    // v2 not served or not readable: auto means v3.
  }
  v2?.close()
  return v3Source(v3)
}
