/**
 * `--etcd-api v2|v3|auto`: which of one etcd's two keyspaces a command reads or writes. They are invisible to each
 * other (docs/flannel.md §1.3): flannel <= 0.17 wrote v2, flannel >= 0.18 reads v3 only.
 *
 * Reads: auto reads v3, and falls back to v2 when v3 has no config at <prefix>/config and v2 has one. Either way the
 * reader can open the other keyspace on demand (doctor compares them); with an explicit --etcd-api v3 it never
 * touches v2.
 *
 * Writes (network init/expand, leases reserve/unreserve/release): auto writes only the keyspace flanneld reads, the
 * one holding the config (or, with no config anywhere, the one holding subnet keys; v3 when neither does). When both
 * keyspaces hold a config, or neither does and both hold subnet keys, a mutation under auto refuses (exit 2, nothing
 * written) naming both: only the operator knows which flanneld runs.
 *
 * etcd's v2 and v3 auth are separate. In the keyspace-choosing paths (auto, migrate), a --user that the v3 API
 * refuses because its auth is off is used for v2 only, with a note.
 */

import {UsageError} from '../core/errors.js'
import {keyLayout} from '../core/keys.js'
import type {ConnectionOptions, EtcdStore} from './etcd-store.js'
import type {EtcdV2Store} from './etcd-v2.js'
import type {FlannelStore, NetworkReader} from './port.js'
import {etcdReader, v2Reader} from './reader.js'
import type {EtcdApi} from './source.js'

async function openV3(opts: ConnectionOptions): Promise<EtcdStore> {
  // Loaded on demand (see source.ts); EtcdStore itself loads etcd3 only for writes and watches.
  const {EtcdStore} = await import('./etcd-store.js')
  return EtcdStore.open(opts)
}

async function openV2(opts: ConnectionOptions): Promise<EtcdV2Store> {
  // Loaded on demand as well: a read of the v3 keyspace never needs the v2 client (nor node:https under it).
  const {EtcdV2Store} = await import('./etcd-v2.js')
  return EtcdV2Store.open(opts)
}

/**
 * The v3 store with --user, or without it when etcd's v3 auth is off (a cluster of flanneld <= 0.17 with only v2 auth
 * on): then `note` says which API has auth and --user goes to the v2 API only.
 */
export async function openV3AuthAware(opts: ConnectionOptions, note: (message: string) => void): Promise<EtcdStore> {
  try {
    return await openV3(opts)
  } catch (error) {
    if (!opts.user || (error as {code?: string}).code !== 'ETCD_V3_AUTH_DISABLED') throw error
    note(
      `note: etcd at ${opts.endpoints.join(',')} has authentication off on the v3 API (v2 and v3 auth are separate): --user "${opts.user}" is used for the v2 API only`,
    )
    return openV3({...opts, user: undefined, password: undefined})
  }
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
  const openV2Reader = async () => v2Reader(await openV2(opts))
  const openV3Reader = async () => etcdReader(await openV3AuthAware(opts, () => {}))
  if (api === 'v2') return withOther(await openV2Reader(), openV3Reader)
  const v3 = api === 'v3' ? await openV3(opts) : await openV3AuthAware(opts, note)
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
    v2 = await openV2(opts)
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

/** What auto found in each keyspace, to choose where a mutation writes. */
interface KeyspaceProbe {
  readonly config: string | null
  readonly subnets: number
}

/**
 * Which keyspace a mutation under --etcd-api auto writes (see the file comment), or a UsageError (exit 2) naming
 * both when that cannot be told. Pure: the probes are passed in; a null v2 probe means v2 is not served or readable.
 */
export function chooseWriteKeyspace(
  key: string,
  v3: KeyspaceProbe,
  v2: KeyspaceProbe | null,
): {api: 'v2' | 'v3'; why: string | null} {
  const hint =
    'name the keyspace flanneld reads: --etcd-api v3 (flanneld >= 0.18) or --etcd-api v2 (flanneld <= 0.17); flannelctl doctor compares them'
  if (v2 === null) return {api: 'v3', why: null}
  if (v3.config !== null && v2.config !== null) {
    throw new UsageError(
      `both of etcd's keyspaces hold a flannel config at ${key}: v3 (read by flanneld >= 0.18) holds ${v3.config}, v2 (read by flanneld <= 0.17) holds ${v2.config}; --etcd-api auto does not write when it cannot tell which one flanneld reads, nothing was written`,
      'KEYSPACE_AMBIGUOUS',
      hint,
      {v3Config: v3.config, v2Config: v2.config},
    )
  }
  if (v3.config !== null) return {api: 'v3', why: null}
  if (v2.config !== null)
    return {
      api: 'v2',
      why: `the v2 keyspace holds the config at ${key} and v3 holds none (flanneld <= 0.17 reads v2)`,
    }
  if (v3.subnets > 0 && v2.subnets > 0) {
    throw new UsageError(
      `neither of etcd's keyspaces holds a flannel config at ${key}, and both hold subnet keys (v3: ${v3.subnets}, v2: ${v2.subnets}); --etcd-api auto does not write when it cannot tell which one flanneld reads, nothing was written`,
      'KEYSPACE_AMBIGUOUS',
      hint,
    )
  }
  if (v2.subnets > 0)
    return {api: 'v2', why: `no config in either keyspace, and only the v2 keyspace holds subnet keys (${v2.subnets})`}
  return {api: 'v3', why: null}
}

async function probe(store: FlannelStore): Promise<KeyspaceProbe> {
  const snap = await store.readNetwork()
  return {config: snap.config?.value ?? null, subnets: snap.subnets.length}
}

async function openWriteKeyspace(
  api: EtcdApi,
  opts: ConnectionOptions,
  note: (message: string) => void,
): Promise<FlannelStore> {
  if (api === 'v2') return openV2(opts)
  if (api === 'v3') return openV3(opts)
  const v3 = await openV3AuthAware(opts, note)
  let v2: EtcdV2Store | null = null
  try {
    const p3 = await probe(v3)
    let p2: KeyspaceProbe | null = null
    try {
      v2 = await openV2(opts)
      p2 = await probe(v2)
    } catch {
      // v2 not served (etcd 3.6, no --enable-v2), not reachable or not readable: only v3 can be flanneld's.
      v2?.close()
      v2 = null
    }
    const {api: chosen, why} = chooseWriteKeyspace(v3.layout.config, p3, p2)
    if (chosen === 'v2') {
      v3.close()
      note(`note: writing etcd's v2 keyspace: ${why}; --etcd-api v3 writes v3`)
      return v2!
    }
    v2?.close()
    return v3
  } catch (error) {
    v3.close()
    v2?.close()
    throw error
  }
}

/**
 * The store a mutation writes, for --etcd-api `api`. The keyspace is chosen (and etcd first reached) on the store's
 * first call, so input checked before it is still a usage error when etcd is down; `api` is known from then on.
 */
export function openKeyspaceStore(
  api: EtcdApi,
  opts: ConnectionOptions,
  note: (message: string) => void,
): FlannelStore {
  const layout = keyLayout(opts.prefix)
  let chosen: Promise<FlannelStore> | undefined
  let resolved: FlannelStore | undefined
  let closed = false
  const store = (): Promise<FlannelStore> =>
    (chosen ??= openWriteKeyspace(api, opts, note).then((s) => {
      if (closed) s.close()
      return (resolved = s)
    }))
  return {
    layout,
    source: 'etcd',
    get api(): 'v2' | 'v3' {
      if (!resolved) throw new Error('the keyspace of a mutation is known only after its first etcd call')
      return resolved.api
    },
    readNetwork: async () => (await store()).readNetwork(),
    leaseTtls: async (ids, onProgress) => (await store()).leaseTtls(ids, onProgress),
    getKey: async (key) => (await store()).getKey(key),
    putIfUnchanged: async (key, value, modRevision, o) => (await store()).putIfUnchanged(key, value, modRevision, o),
    createIfAbsent: async (key, value, o) => (await store()).createIfAbsent(key, value, o),
    deleteGuarded: async (keys) => (await store()).deleteGuarded(keys),
    close: () => {
      closed = true
      resolved?.close()
    },
  }
}
