/** The flag bundles commands share: etcd connection, data source, and the mutation pair --dry-run / --yes. */

import {Flags} from '@oclif/core'

import {ETCD_APIS} from '../store/source.js'

/** The etcd connection flags, shared by every command that talks to etcd. */
export const connectionFlags = {
  endpoints: Flags.string({
    aliases: ['etcd-endpoints'],
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
    aliases: ['etcd-cafile'],
    summary: 'CA bundle to verify etcd servers (env ETCDCTL_CACERT, FLANNELD_ETCD_CAFILE).',
    helpGroup: 'ETCD',
  }),
  cert: Flags.string({
    aliases: ['etcd-certfile'],
    summary: 'Client certificate for etcd (env ETCDCTL_CERT, FLANNELD_ETCD_CERTFILE).',
    helpGroup: 'ETCD',
  }),
  key: Flags.string({
    aliases: ['etcd-keyfile'],
    summary: 'Client key for etcd (env ETCDCTL_KEY, FLANNELD_ETCD_KEYFILE).',
    helpGroup: 'ETCD',
  }),
  user: Flags.string({
    aliases: ['etcd-username'],
    summary: 'etcd user, as name or name:password (env ETCDCTL_USER, FLANNELD_ETCD_USERNAME).',
    helpGroup: 'ETCD',
  }),
  password: Flags.string({
    aliases: ['etcd-password'],
    summary: 'etcd password (env ETCDCTL_PASSWORD, FLANNELD_ETCD_PASSWORD).',
    helpGroup: 'ETCD',
  }),
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
  'etcd-api': Flags.option({
    summary: 'etcd keyspace to read: v3, v2 (flannel <= 0.17, over the HTTP API) or auto.',
    description: 'auto reads v3 and falls back to v2 (with a note on stderr) when only the v2 keyspace holds a config.',
    options: ETCD_APIS,
    default: 'auto' as const,
    helpGroup: 'ETCD',
  })(),
}

/** `--etcd-api v2|v3|auto` for mutations: which etcd keyspace to write (see store/keyspaces.ts). */
export const etcdApiWriteFlag = {
  'etcd-api': Flags.option({
    summary: 'etcd keyspace to write: v3, v2 (flannel <= 0.17, over the HTTP API) or auto.',
    description:
      'auto writes only the keyspace flanneld reads: the one holding the config (v3 when neither does). When both hold a config it refuses (exit 2) naming both.',
    options: ETCD_APIS,
    default: 'auto' as const,
    helpGroup: 'ETCD',
  })(),
}

/** `--dry-run` and `--yes`/`-y`, on every command that writes. */
export const mutationFlags = {
  'dry-run': Flags.boolean({default: false, summary: 'Print what would be written; write nothing.'}),
  yes: Flags.boolean({
    default: false,
    char: 'y',
    summary: 'Apply without asking (without a terminal, a mutation refuses unless --yes is given).',
  }),
}
