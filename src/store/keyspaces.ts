/**
 * `--etcd-api v2|v3|auto`: which of one etcd's two keyspaces a read command reads. They are invisible to each other
 * (flannel-semantics.md §1.3): flannel <= 0.17 wrote v2, flannel >= 0.18 reads v3 only.
 *
 * auto reads v3, and falls back to v2 when v3 has no config at <prefix>/config and v2 has one. Either way the reader
 * can open the other keyspace on demand (doctor compares them); with an explicit --etcd-api v3 it never touches v2.
 */

import type {ConnectionOptions, EtcdStore} from './etcd-store.js'
import {EtcdV2Store} from './etcd-v2.js'
import type {NetworkReader} from './port.js'
import {etcdReader, v2Reader} from './reader.js'

export const ETCD_APIS = ['auto', 'v3', 'v2'] as const
export type EtcdApi = (typeof ETCD_APIS)[number]

async function openV3(opts: ConnectionOptions): Promise<EtcdStore> {
  // Loaded on demand, as in BaseCommand.openStore: the gRPC client costs ~200 ms of start-up.
  const {EtcdStore} = await import('./etcd-store.js')
  return EtcdStore.open(opts)
}

/**
 * A reader whose otherKeyspace() opens (once) the other keyspace with `open`, or yields null when it does not
 * answer; closing the reader closes both.
 */
function withOther(reader: NetworkReader, open: () => Promise<NetworkReader>, already?: NetworkReader): NetworkReader {
  let other: Promise<NetworkReader | null> | undefined = already ? Promise.resolve(already) : undefined
  let opened: NetworkReader | undefined = already
  let closed = false
  return {
    ...reader,
    otherKeyspace: () =>
      (other ??= open().then(
        (r) => {
          // Closed meanwhile: a reader still connecting is closed when it arrives.
          if (closed) {
            r.close()
            return null
          }
          return (opened = r)
        },
        () => null,
      )),
    close: () => {
      closed = true
      reader.close()
      opened?.close()
    },
  }
}

/**
 * Opens the reader for `api`. Failures of the chosen keyspace are the command's failures (exit 69 when etcd is
 * unreachable, or does not serve v2 for --etcd-api v2); a v2 keyspace that does not answer in auto mode is not.
 */
export async function openKeyspaceReader(
  api: EtcdApi,
  opts: ConnectionOptions,
  note: (message: string) => void,
): Promise<NetworkReader> {
  const openV2Reader = async () => v2Reader(await EtcdV2Store.open(opts))
  const openV3Reader = async () => etcdReader(await openV3(opts))
  if (api === 'v2') return withOther(await openV2Reader(), openV3Reader)
  const v3 = await openV3(opts)
  const r3 = etcdReader(v3)
  if (api === 'v3') return r3
  let found: boolean
  try {
    found = (await v3.getKey(v3.layout.config)) !== null
  } catch (error) {
    v3.close()
    throw error
  }
  if (found) return withOther(r3, openV2Reader)
  let v2: EtcdV2Store | undefined
  try {
    v2 = await EtcdV2Store.open(opts)
    if ((await v2.getKey(v2.layout.config)) !== null) {
      note(
        `note: no config at ${v3.layout.config} in etcd's v3 keyspace, but there is one in the v2 keyspace (written by flannel <= 0.17): reading v2. ` +
          `flanneld >= 0.18 reads only v3; copy the keys with: flannelctl migrate v2-to-v3 (--etcd-api v3 reads v3 only)`,
      )
      return withOther(v2Reader(v2), openV3Reader, r3)
    }
  } catch {
    // v2 not served, not reachable or not readable: auto means v3, and there is no v2 keyspace to compare with.
    v2?.close()
    return withOther(r3, () => Promise.reject(new Error('the v2 keyspace did not answer')))
  }
  return withOther(r3, openV2Reader, v2Reader(v2))
}
