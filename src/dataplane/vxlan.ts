/**
 * The vxlan device and its entries, programmed with iproute2 as flanneld programs them through netlink
 * (docs/flannel.md §6.1, §6.2). Every write of one sync goes through one `bridge -batch` and one `ip -batch` run.
 */

import {randomBytes} from 'node:crypto'
import {readFile, writeFile} from 'node:fs/promises'

import {DataplaneError, EnvironmentError} from '../core/errors.js'
import {type Cidr4, containsCidr4, formatCidr4, formatIPv4} from '../core/ipv4.js'
import type {VxlanDeviceSpec} from '../agent/ports.js'
import type {ActualState, SyncPlan} from '../core/reconcile.js'
import type {LinkState} from '../core/vxlan.js'
import {readFdb, readLink, readNeighs, readRoutes, run} from './iproute2.js'

/** The device to create or reuse (the agent's port type). */
type VxlanSpec = Readonly<VxlanDeviceSpec>

/** A random unicast, locally administered MAC, as flannel's pkg/mac does. */
export function randomMac(): string {
  const b = randomBytes(6)
  b[0] = (b[0]! & 0xfe) | 0x02
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':')
}

async function ipOrThrow(args: string[], what: string): Promise<void> {
  const r = await run('ip', args)
  if (r.code !== 0) throw new DataplaneError(`${what}: ip ${args.join(' ')}: ${r.stderr.trim()}`)
}

/** Whether an existing link can be reused as flanneld would (same VNI, local address and port, vxlan, no GBP change). */
export function compatibleDevice(l: LinkState, s: VxlanSpec): boolean {
  const v = l.vxlan
  if (!v) return false
  return (
    v.id === s.vni &&
    v.local === formatIPv4(s.local) &&
    (v.port ?? 8472) === (s.port || 8472) &&
    v.gbp === s.gbp &&
    !v.learning
  )
}

/** CAP_NET_ADMIN (bit 12) in the effective capability set of this process. */
export async function hasNetAdmin(): Promise<boolean> {
  try {
    const status = await readFile('/proc/self/status', 'utf8')
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)
    return m ? (BigInt(`0x${m[1]}`) & (1n << 12n)) !== 0n : false
  } catch {
    return false
  }
}

export interface EnsuredDevice {
  readonly link: LinkState
  readonly created: boolean
  readonly recreated: boolean
}

/**
 * Creates flannel.<VNI>, or reuses a compatible one (keeping its MAC across restarts); an incompatible one is deleted
 * and recreated with the same MAC. Sets the MTU. The address comes later, once the lease is known.
 */
export async function ensureVxlanDevice(s: VxlanSpec): Promise<EnsuredDevice> {
  const link = await readLink(s.name)
  const reuse = link !== null && compatibleDevice(link, s)
  if (link && !reuse) await ipOrThrow(['link', 'del', s.name], `removing incompatible ${s.name}`)
  if (!reuse) {
    const mac = link?.mac || s.mac || randomMac()
    const args = [
      'link',
      'add',
      s.name,
      'address',
      mac,
      'mtu',
      String(s.mtu),
      // flanneld's netlink.LinkAttrs{} sends TxQLen 0: the device has no queue of its own.
      'txqueuelen',
      '0',
      'type',
      'vxlan',
      'id',
      String(s.vni),
      'local',
      formatIPv4(s.local),
      'dev',
      s.iface,
      'nolearning',
    ]
    if (s.port) args.push('dstport', String(s.port))
    if (s.gbp) args.push('gbp')
    await ipOrThrow(args, `creating ${s.name}`)
  } else {
    const set = ['link', 'set', s.name, 'txqueuelen', '0']
    if (link.mtu !== s.mtu) set.push('mtu', String(s.mtu))
    await ipOrThrow(set, `setting the MTU and txqueuelen of ${s.name}`)
  }
  await disableAcceptRa(s.name)
  const now = await readLink(s.name)
  if (!now) throw new DataplaneError(`${s.name} vanished right after it was set up`)
  return {link: now, created: !link, recreated: link !== null && !reuse}
}

/**
 * net.ipv6.conf.<dev>.accept_ra = 0, as flanneld sets it (pkg/backend/vxlan/device.go). Written through /proc/sys (the
 * network namespace's own), with no dependency on the sysctl binary; absent when IPv6 is disabled, which is fine.
 */
async function disableAcceptRa(dev: string): Promise<void> {
  const path = `/proc/sys/net/ipv6/conf/${dev}/accept_ra`
  const now = await readFile(path, 'utf8').catch(() => null)
  if (now === null || now.trim() === '0') return
  await writeFile(path, '0\n').catch(() => undefined)
}

/** Gives the device exactly `<address>/32` from the Network (flannel's EnsureV4AddressOnLink) and brings it up. */
export async function configureVxlanAddress(name: string, address: number, network: Cidr4): Promise<LinkState> {
  const link = await readLink(name)
  if (!link) throw new DataplaneError(`${name} does not exist`)
  const lines: string[] = []
  for (const a of link.addresses) {
    if (containsCidr4(network, {ip: a.ip, prefix: 32}) && !(a.ip === address && a.prefix === 32))
      lines.push(`addr del ${formatCidr4(a)} dev ${name}`)
  }
  if (!link.addresses.some((a) => a.ip === address && a.prefix === 32))
    lines.push(`addr replace ${formatIPv4(address)}/32 dev ${name}`)
  if (!link.up) lines.push(`link set ${name} up`)
  if (lines.length === 0) return link
  const r = await run('ip', ['-batch', '-'], lines.join('\n') + '\n')
  if (r.code !== 0) throw new DataplaneError(`configuring ${name}: ${r.stderr.trim()}`)
  return (await readLink(name))!
}

export async function readActual(dev: string): Promise<ActualState> {
  const [routes, neighs, fdb] = await Promise.all([readRoutes(), readNeighs(dev), readFdb(dev)])
  return {routes, neighs, fdb}
}

/** Applies one sync: the FDB batch first, then the neighbour and route batch. `-force` keeps going past a bad line. */
export async function applySync(plan: SyncPlan): Promise<{errors: string[]}> {
  const errors: string[] = []
  if (plan.bridge.length > 0) {
    const r = await run('bridge', ['-force', '-batch', '-'], plan.bridge.join('\n') + '\n')
    if (r.code !== 0) errors.push(`bridge -batch: ${r.stderr.trim()}`)
  }
  if (plan.ip.length > 0) {
    const r = await run('ip', ['-force', '-batch', '-'], plan.ip.join('\n') + '\n')
    if (r.code !== 0) errors.push(`ip -batch: ${r.stderr.trim()}`)
  }
  return {errors}
}

export function requireNetAdmin(has: boolean): void {
  if (!has) {
    throw new EnvironmentError(
      'the agent needs CAP_NET_ADMIN to program the vxlan device, routes and FDB: run it as root (or grant cap_net_admin)',
      'MISSING_CAPABILITY',
    )
  }
}
