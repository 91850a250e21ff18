/**
 * Resolution of the etcd connection settings: the flag, then FLANNELCTL_<NAME>, then etcdctl's ETCDCTL_<NAME>,
 * then flanneld's FLANNELD_ETCD_<NAME>, then the default. Pure: the environment is passed in.
 */

import {parseTimeout} from '../core/duration.js'
import {UsageError} from '../core/errors.js'
import type {ConnectionOptions} from '../store/etcd-store.js'
import type {EtcdApi, SourceOptions} from '../store/source.js'

export interface ConnectionFlags {
  endpoints?: string
  'etcd-prefix'?: string
  cacert?: string
  cert?: string
  key?: string
  user?: string
  password?: string
  'dial-timeout'?: string
  'command-timeout'?: string
}

/** For each flag, the environment variables consulted in order, and the default. */
export const CONNECTION_ENV: Record<keyof ConnectionFlags, {env: string[]; default?: string}> = {
  endpoints: {
    env: ['FLANNELCTL_ENDPOINTS', 'ETCDCTL_ENDPOINTS', 'FLANNELD_ETCD_ENDPOINTS'],
    default: 'http://127.0.0.1:2379',
  },
  'etcd-prefix': {env: ['FLANNELCTL_ETCD_PREFIX', 'FLANNELD_ETCD_PREFIX'], default: '/coreos.com/network'},
  cacert: {env: ['FLANNELCTL_CACERT', 'ETCDCTL_CACERT', 'FLANNELD_ETCD_CAFILE']},
  cert: {env: ['FLANNELCTL_CERT', 'ETCDCTL_CERT', 'FLANNELD_ETCD_CERTFILE']},
  key: {env: ['FLANNELCTL_KEY', 'ETCDCTL_KEY', 'FLANNELD_ETCD_KEYFILE']},
  user: {env: ['FLANNELCTL_USER', 'ETCDCTL_USER', 'FLANNELD_ETCD_USERNAME']},
  password: {env: ['FLANNELCTL_PASSWORD', 'ETCDCTL_PASSWORD', 'FLANNELD_ETCD_PASSWORD']},
  'dial-timeout': {env: ['FLANNELCTL_DIAL_TIMEOUT', 'ETCDCTL_DIAL_TIMEOUT'], default: '5s'},
  'command-timeout': {env: ['FLANNELCTL_COMMAND_TIMEOUT', 'ETCDCTL_COMMAND_TIMEOUT'], default: '30s'},
}

export function resolveSetting(
  flags: ConnectionFlags,
  env: Record<string, string | undefined>,
  name: keyof ConnectionFlags,
): string | undefined {
  const given = flags[name]
  if (given !== undefined && given !== '') return given
  for (const v of CONNECTION_ENV[name].env) {
    const value = env[v]
    if (value !== undefined && value !== '') return value
  }
  return CONNECTION_ENV[name].default
}

export function resolveConnection(flags: ConnectionFlags, env: Record<string, string | undefined>): ConnectionOptions {
  const get = (n: keyof ConnectionFlags) => resolveSetting(flags, env, n)
  const endpoints = get('endpoints')!
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '')
  if (endpoints.length === 0) throw new UsageError('--endpoints is empty', 'INVALID_ENDPOINTS')
  for (const e of endpoints) {
    if (
      !/^(?:https?:\/\/)?[^\s/:]+(?::\d+)?\/?$/.test(e) &&
      !/^(?:https?:\/\/)?\[[0-9a-fA-F:]+\](?::\d+)?\/?$/.test(e)
    ) {
      throw new UsageError(
        `invalid endpoint "${e}" in --endpoints (expected e.g. http://127.0.0.1:2379)`,
        'INVALID_ENDPOINTS',
      )
    }
    const port = /:(\d+)\/?$/.exec(e)?.[1]
    if (port !== undefined && (Number(port) < 1 || Number(port) > 65_535)) {
      throw new UsageError(
        `invalid endpoint "${e}" in --endpoints: port ${port} is out of range (1-65535)`,
        'INVALID_ENDPOINTS',
      )
    }
  }
  const cert = get('cert')
  const key = get('key')
  if ((cert === undefined) !== (key === undefined)) {
    throw new UsageError(
      `--cert and --key must be given together (got only ${cert === undefined ? `--key ${key}` : `--cert ${cert}`})`,
      'INVALID_TLS_FLAGS',
    )
  }
  let user = get('user')
  let password = get('password')
  if (user !== undefined && user.includes(':') && password === undefined) {
    password = user.slice(user.indexOf(':') + 1)
    user = user.slice(0, user.indexOf(':'))
  }
  return {
    endpoints: endpoints.map((e) => e.replace(/\/$/, '')),
    prefix: get('etcd-prefix')!,
    cacert: get('cacert'),
    cert,
    key,
    user,
    password,
    dialTimeoutMs: parseTimeout(get('dial-timeout')!, '--dial-timeout'),
    commandTimeoutMs: parseTimeout(get('command-timeout')!, '--command-timeout'),
  }
}

export interface SourceFlags extends ConnectionFlags {
  snapshot?: string
  'etcd-api'?: EtcdApi
}

/** What store/source.ts's openSource needs from a read command's flags; the connection is resolved only if used. */
export function sourceOptions(
  flags: SourceFlags,
  env: Record<string, string | undefined>,
  note: (message: string) => void,
): SourceOptions {
  return {
    snapshot: flags.snapshot,
    api: flags['etcd-api'],
    prefix: resolveSetting(flags, env, 'etcd-prefix')!,
    connection: () => resolveConnection(flags, env),
    note,
  }
}
