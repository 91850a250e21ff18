/**
 * The agent's ports: everything it needs from the outside world, as interfaces. The command wires the real ones
 * (src/dataplane/linux.ts, src/store/agent-store.ts, runtime.ts); unit tests pass fakes (test/agent/fakes.ts).
 */

import type {InterfaceChoice, InterfaceRequest} from '../core/iface.js'
import type {Cidr4} from '../core/ipv4.js'
import type {NetworkSnapshot, RawKV} from '../core/leases.js'
import type {IptRule} from '../core/masq.js'
import type {ActualState, SyncPlan} from '../core/reconcile.js'
import type {LinkState} from '../core/vxlan.js'

export type WatchEvent = {type: 'put'; kv: RawKV} | {type: 'delete'; key: string; modRevision: string}

export interface WatchCallbacks {
  onEvents(events: WatchEvent[]): void
  /** The watch was cancelled by etcd (usually compaction): list again and watch anew. */
  onLost(error: Error): void
}

export interface AgentStore {
  readonly subnetsPrefix: string
  readNetwork(): Promise<NetworkSnapshot>
  getKey(key: string): Promise<RawKV | null>
  /** Grant + create only if absent; ConflictError when the key exists. */
  createLease(key: string, value: string, ttlSeconds: number): Promise<{modRevision: string; leaseId: string}>
  /** Grant + put guarded on the mod revision; ConflictError when it moved. */
  renewLease(
    key: string,
    value: string,
    modRevision: string,
    ttlSeconds: number,
  ): Promise<{modRevision: string; leaseId: string}>
  deleteKey(key: string, modRevision: string): Promise<void>
  /** Watches the subnets prefix from `fromRevision` + 1. */
  watch(fromRevision: string, cb: WatchCallbacks): Promise<{cancel(): Promise<void>}>
  /** Watches the config key from `fromRevision` + 1 (events carry the config key only). */
  watchConfig(fromRevision: string, cb: WatchCallbacks): Promise<{cancel(): Promise<void>}>
  subnetKey(subnet: Cidr4): string
}

export interface VxlanDeviceSpec {
  name: string
  vni: number
  /** The device's source address: the PublicIP when it is an address of this host, else the interface's. */
  local: number
  /** The external interface. */
  iface: string
  /** 0 = not set: the kernel's default 8472. */
  port: number
  gbp: boolean
  mtu: number
  /** Recreate with this MAC when the device has to be created (keeps peers' FDB entries valid). */
  mac?: string
}

export interface TrafficPort {
  randomFully(): Promise<boolean>
  /** Ensures a rule set (returns how many were missing). */
  ensure(rules: IptRule[]): Promise<number>
  /** Deletes those of the rules that exist (returns how many did). */
  remove(rules: IptRule[]): Promise<number>
  /** Empties an iptables chain if it exists (flanneld clears FLANNEL-FWD on start). */
  flush(table: string, chain: string): Promise<void>
  nft(script: string): Promise<void>
  /** Removes flannel's nftables table if it exists (what an nftables-mode run left). */
  removeNft(): Promise<void>
}

export interface AgentDataplane {
  selectInterface(r: InterfaceRequest): Promise<InterfaceChoice | {error: string}>
  /** Every link of this host with its IPv4 addresses (for core/iface.ts isHostAddress). */
  readLinks(): Promise<LinkState[]>
  ensureDevice(spec: VxlanDeviceSpec): Promise<{link: LinkState; created: boolean; recreated: boolean}>
  configureAddress(name: string, address: number, network: Cidr4): Promise<LinkState>
  readLink(name: string): Promise<LinkState | null>
  readActual(dev: string): Promise<ActualState>
  apply(plan: SyncPlan): Promise<{errors: string[]}>
  /** The main routing table (host-gw reads only this). */
  readRoutes(): Promise<ActualState['routes']>
  /** The masquerade/forward rules. */
  traffic: TrafficPort
}

export interface Clock {
  now(): number
  /** Resolves after `ms`, or early (without throwing) when the signal aborts. */
  sleep(ms: number, signal: AbortSignal): Promise<void>
}

export interface Files {
  read(path: string): Promise<string | null>
  writeAtomic(path: string, data: string): Promise<void>
}

export type LogFn = (level: 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>) => void

export const errorText = (e: unknown): string => (e instanceof Error ? e.message : String(e))
