/**
 * The dataplane layer's reader: every `ip`/`bridge` call that reads kernel state goes through here, as JSON
 * (`ip -json`), never through a shell. Shared by doctor --local and the agent.
 */

import {execFile} from 'node:child_process'
import {readFile} from 'node:fs/promises'

import {DataplaneError, EnvironmentError, UsageError} from '../core/errors.js'
import {type Cidr4, parseIPv4} from '../core/ipv4.js'
import {parseMAC} from '../core/lease-value.js'
import {chooseInterface, type InterfaceChoice, type InterfaceRequest} from '../core/iface.js'
import type {FdbEntry, LinkState, NeighEntry, RouteEntry} from '../core/vxlan.js'

export interface ExecResult {
  stdout: string
  stderr: string
  code: number
}

export function run(cmd: string, args: readonly string[], input?: string): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      [...args],
      {maxBuffer: 256 * 1024 * 1024, encoding: 'utf8'},
      (error, stdout, stderr) => {
        if (error && (error as NodeJS.ErrnoException).code === 'ENOENT') {
          reject(new EnvironmentError(`${cmd} not found: install iproute2 (apt-get install iproute2)`, 'MISSING_TOOL'))
          return
        }
        resolve({stdout, stderr, code: error ? ((error as {code?: number}).code ?? 1) : 0})
      },
    )
    if (input !== undefined) child.stdin?.end(input)
  })
}

async function json<T>(cmd: string, args: readonly string[]): Promise<T | null> {
  const r = await run(cmd, args)
  if (r.code !== 0) {
    if (/does not exist|Cannot find device/i.test(r.stderr)) return null
    throw new DataplaneError(`${cmd} ${args.join(' ')} failed: ${r.stderr.trim()}`)
  }
  const text = r.stdout.trim()
  return text === '' ? ([] as unknown as T) : (JSON.parse(text) as T)
}

function cidr(s: string): Cidr4 | null {
  const [a, p] = s.split('/')
  const ip = parseIPv4(a ?? '')
  if (ip === null) return null
  return {ip, prefix: p === undefined ? 32 : Number(p)}
}

interface IpLink {
  ifname: string
  mtu: number
  address?: string
  flags?: string[]
  linkinfo?: {
    info_kind?: string
    info_data?: {id?: number; local?: string; port?: number; learning?: boolean; gbp?: boolean}
  }
  addr_info?: Array<{family: string; local: string; prefixlen: number}>
}

function toLink(l: IpLink): LinkState {
  const d = l.linkinfo?.info_kind === 'vxlan' ? (l.linkinfo.info_data ?? {}) : null
  return {
    name: l.ifname,
    mtu: l.mtu,
    mac: (l.address && parseMAC(l.address)) ?? l.address ?? '',
    up: (l.flags ?? []).includes('UP'),
    vxlan: d
      ? {
          id: d.id ?? 0,
          local: d.local ?? null,
          port: d.port ?? null,
          learning: d.learning ?? false,
          gbp: d.gbp ?? false,
        }
      : null,
    addresses: (l.addr_info ?? [])
      .filter((a) => a.family === 'inet')
      .map((a) => ({ip: parseIPv4(a.local) ?? 0, prefix: a.prefixlen})),
  }
}

/** One link with its details and IPv4 addresses, or null when it does not exist. */
export async function readLink(name: string): Promise<LinkState | null> {
  const links = await json<IpLink[]>('ip', ['-d', '-json', 'addr', 'show', 'dev', name])
  return links && links[0] ? toLink(links[0]) : null
}

export async function readLinks(): Promise<LinkState[]> {
  return ((await json<IpLink[]>('ip', ['-d', '-json', 'addr', 'show'])) ?? []).map(toLink)
}

/** The main routing table (IPv4). */
export async function readRoutes(): Promise<RouteEntry[]> {
  const routes =
    (await json<Array<{dst: string; gateway?: string; dev?: string; flags?: string[]}>>('ip', [
      '-json',
      '-4',
      'route',
      'show',
      'table',
      'main',
    ])) ?? []
  return routes.map((r) => ({
    dst: r.dst === 'default' ? null : cidr(r.dst),
    gateway: r.gateway ? parseIPv4(r.gateway) : null,
    dev: r.dev ?? null,
    onlink: (r.flags ?? []).includes('onlink'),
  }))
}

export async function readNeighs(dev: string): Promise<NeighEntry[]> {
  const ns =
    (await json<Array<{dst: string; lladdr?: string; state?: string[]}>>('ip', [
      '-json',
      '-4',
      'neigh',
      'show',
      'dev',
      dev,
    ])) ?? []
  return ns
    .map((n) => ({
      ip: parseIPv4(n.dst),
      mac: n.lladdr ? parseMAC(n.lladdr) : null,
      permanent: (n.state ?? []).includes('PERMANENT'),
    }))
    .filter((n): n is NeighEntry => n.ip !== null)
}

export async function readFdb(dev: string): Promise<FdbEntry[]> {
  const fs = (await json<Array<{mac: string; dst?: string}>>('bridge', ['-json', 'fdb', 'show', 'dev', dev])) ?? []
  return fs.map((f) => ({mac: parseMAC(f.mac) ?? f.mac, dst: f.dst ? parseIPv4(f.dst) : null}))
}

export async function readIpForward(): Promise<boolean | null> {
  try {
    return (await readFile('/proc/sys/net/ipv4/ip_forward', 'utf8')).trim() === '1'
  } catch {
    return null
  }
}

export interface ExternalInterface {
  readonly name: string | null
  readonly mtu: number | null
  /** The address published as PublicIP (--public-ip, else the interface's). */
  readonly address: number | null
  /** The interface's own address (flannel's IfaceAddr). */
  readonly ifaceAddress: number | null
  /** Every IPv4 address of the host. */
  readonly hostAddresses: readonly number[]
  readonly how: string
}

/** Reads links and routes and chooses the external interface as flanneld does (core/iface.ts). */
export async function selectInterface(r: InterfaceRequest): Promise<InterfaceChoice | {error: string}> {
  const [links, routes] = await Promise.all([readLinks(), readRoutes()])
  return chooseInterface(links, routes, r)
}

/** doctor's lenient form: an unknown interface is reported as unknown rather than failing the run. */
export async function findExternalInterface(o: {iface?: string; publicIP?: number | null}): Promise<ExternalInterface> {
  const [links, routes] = await Promise.all([readLinks(), readRoutes()])
  const hostAddresses = links.flatMap((l) => l.addresses.map((a) => a.ip))
  const c = chooseInterface(links, routes, {
    ifaces: o.iface === undefined ? [] : [o.iface],
    regexes: [],
    publicIP: o.publicIP ?? null,
  })
  if ('error' in c) {
    if (o.iface !== undefined)
      throw new UsageError(`--iface ${o.iface}: no such interface or address on this node`, 'INVALID_IFACE')
    return {name: null, mtu: null, address: o.publicIP ?? null, ifaceAddress: null, hostAddresses, how: c.error}
  }
  return {name: c.name, mtu: c.mtu, address: c.publicIP, ifaceAddress: c.address, hostAddresses, how: c.how}
}
