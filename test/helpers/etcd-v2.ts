// Writing and reading etcd's v2 keyspace the way flannel <= 0.17 and its operators did: `ETCDCTL_API=2 etcdctl set`
// (the harness's own etcdctl() speaks v3), and the raw v2 HTTP API for what etcdctl v2 cannot show exactly.

import {execFile} from 'node:child_process'
import {readFileSync} from 'node:fs'
import https from 'node:https'

import type {EtcdServer} from './etcd.js'

const ETCDCTL = '/usr/bin/etcdctl'

/** `ETCDCTL_API=2 etcdctl --endpoints <ep> [TLS flags] ...args`; rejects on a non-zero exit. */
export function etcdctlV2(etcd: EtcdServer, args: string[], o: {user?: string} = {}): Promise<string> {
  const flags = [`--endpoints=${etcd.endpoint}`]
  if (etcd.tls) flags.push(`--ca-file=${etcd.tls.ca}`, `--cert-file=${etcd.tls.cert}`, `--key-file=${etcd.tls.key}`)
  if (o.user) flags.push(`--username=${o.user}`)
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ETCDCTL_')) env[k] = v
  env.ETCDCTL_API = '2'
  return new Promise((resolve, reject) => {
    execFile(ETCDCTL, [...flags, ...args], {env, encoding: 'utf8'}, (err, stdout, stderr) => {
      if (err) reject(new Error(`ETCDCTL_API=2 etcdctl ${args.join(' ')} failed: ${stderr || err.message}`))
      else resolve(stdout)
    })
  })
}

/** flanneld <= 0.13's vxlan lease value: no PublicIPv6, no VNI (docs/flannel.md §2). */
export function legacyVxlanValue(publicIP: string, vtepMAC: string): string {
  return `{"PublicIP":"${publicIP}","BackendType":"vxlan","BackendData":{"VtepMAC":"${vtepMAC}"}}`
}

export interface V2Node {
  key: string
  value?: string
  dir?: boolean
  nodes?: V2Node[]
  ttl?: number
  expiration?: string
  modifiedIndex: number
  createdIndex: number
}

/** GET /v2/keys<key>?recursive=true straight from etcd: status, X-Etcd-Index and the parsed body. */
export async function v2Get(
  etcd: EtcdServer,
  key: string,
  headers: Record<string, string> = {},
): Promise<{status: number; index: string | null; body: any}> {
  const url = `${etcd.endpoint}/v2/keys${key}?recursive=true`
  if (!etcd.tls) {
    const res = await fetch(url, {headers})
    return {status: res.status, index: res.headers.get('x-etcd-index'), body: JSON.parse(await res.text())}
  }
  const tls = {ca: readFileSync(etcd.tls.ca), cert: readFileSync(etcd.tls.cert), key: readFileSync(etcd.tls.key)}
  return new Promise((resolve, reject) => {
    https
      .get(url, {...tls, headers}, (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => (text += c))
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            index: (res.headers['x-etcd-index'] as string | undefined) ?? null,
            body: JSON.parse(text),
          }),
        )
      })
      .on('error', reject)
  })
}

/** Every node with a value under a v2 node, by key. */
export function flattenNodes(n: V2Node, out = new Map<string, V2Node>()): Map<string, V2Node> {
  if (n.dir) for (const c of n.nodes ?? []) flattenNodes(c, out)
  else out.set(n.key, n)
  return out
}

/**
 * Turns on etcd's v2 auth (separate from v3's): root/rootpw, flannel/flpw with a role that reads and writes the
 * flannel prefix (`patterns`; by default one glob over it), and the guest role stripped of its default full access.
 */
export async function enableV2Auth(etcd: EtcdServer, patterns: string[] = ['/coreos.com/network*']): Promise<void> {
  const put = async (path: string, body?: unknown, auth?: string) => {
    const headers: Record<string, string> = {'content-type': 'application/json'}
    if (auth) headers.authorization = 'Basic ' + Buffer.from(auth).toString('base64')
    const res = await fetch(etcd.endpoint + path, {
      method: 'PUT',
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    if (res.status >= 300) throw new Error(`PUT ${path}: ${res.status} ${await res.text()}`)
  }
  await put('/v2/auth/users/root', {user: 'root', password: 'rootpw'})
  await put('/v2/auth/users/flannel', {user: 'flannel', password: 'flpw'})
  await put('/v2/auth/roles/flannel-rw', {
    role: 'flannel-rw',
    permissions: {kv: {read: patterns, write: patterns}},
  })
  await put('/v2/auth/users/flannel', {user: 'flannel', grant: ['flannel-rw']})
  await put('/v2/auth/enable')
  await put('/v2/auth/roles/guest', {role: 'guest', revoke: {kv: {read: ['/*'], write: ['/*']}}}, 'root:rootpw')
}
