// Fakes for unit tests of the agent (no root, no etcd): a store with revisions, guards, a watch and compaction; a
// dataplane that records what it is asked to do; a manual clock; in-memory files. Everything is promise-based, so
// `settle()` (a few turns of the event loop) lets the agent run until it waits on the clock again.

import type {
  AgentDataplane,
  AgentStore,
  Clock,
  Files,
  LogFn,
  VxlanDeviceSpec,
  WatchCallbacks,
  WatchEvent,
} from '../../src/agent/ports.js'
import {ConflictError} from '../../src/core/errors.js'
import type {InterfaceChoice} from '../../src/core/iface.js'
import {type Cidr4, formatIPv4, parseIPv4} from '../../src/core/ipv4.js'
import type {NetworkSnapshot, RawKV} from '../../src/core/leases.js'
import type {IptRule} from '../../src/core/masq.js'
import type {ActualState, SyncPlan} from '../../src/core/reconcile.js'
import {makeSubnetKey} from '../../src/core/subnet-key.js'
import type {LinkState, RouteEntry} from '../../src/core/vxlan.js'

export const ip = (s: string): number => {
  const v = parseIPv4(s)
  if (v === null) throw new Error(`bad IPv4 ${s}`)
  return v
}

/** Lets every pending promise chain run until it waits on something external (the clock, a fault). */
export async function settle(rounds = 30): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((resolve) => setImmediate(resolve))
}

// ---------------------------------------------------------------------------------------------------------------

interface Sleeper {
  at: number
  done: () => void
}

export class ManualClock implements Clock {
  t = Date.UTC(2026, 11, 1)
  private sleepers: Sleeper[] = []

  now(): number {
    return this.t
  }

  sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      if (signal.aborted) return resolve()
      const s: Sleeper = {
        at: this.t + ms,
        done: () => {
          signal.removeEventListener('abort', s.done)
          this.sleepers = this.sleepers.filter((x) => x !== s)
          resolve()
        },
      }
      signal.addEventListener('abort', s.done, {once: true})
      this.sleepers.push(s)
    })
  }

  /** Sleeps not yet over (an agent that stopped leaves none). */
  get pending(): number {
    return this.sleepers.length
  }

  /** The earliest wake-up time, or null. */
  get next(): number | null {
    return this.sleepers.length === 0 ? null : Math.min(...this.sleepers.map((s) => s.at))
  }

  /** Moves time forward by `ms`, waking every sleeper on the way in order and letting the agent run after each. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms
    await settle()
    for (;;) {
      const due = this.sleepers.filter((s) => s.at <= end).sort((a, b) => a.at - b.at)[0]
      if (!due) break
      this.t = Math.max(this.t, due.at)
      due.done()
      await settle()
    }
    this.t = end
    await settle()
  }
}

// ---------------------------------------------------------------------------------------------------------------

type Method = 'readNetwork' | 'getKey' | 'createLease' | 'renewLease' | 'deleteKey' | 'watch' | 'watchConfig'

interface Watcher {
  from: bigint
  cb: WatchCallbacks
  live: boolean
  /** Which keys: the subnets prefix, or the config key. */
  config: boolean
}

/** An etcd v3 keyspace in memory: one revision counter, guarded writes, leases, watches and compaction. */
export class FakeStore implements AgentStore {
  readonly prefix = '/coreos.com/network'
  readonly subnetsPrefix = '/coreos.com/network/subnets'
  readonly configKey = '/coreos.com/network/config'
  rev = 1n
  compactedAt = 0n
  readonly kvs = new Map<string, RawKV>()
  readonly grants = new Map<string, number>()
  private nextLease = 7000
  private readonly history: Array<{rev: bigint; event: WatchEvent}> = []
  private readonly watchers = new Set<Watcher>()
  private readonly faults = new Map<Method, Error[]>()
  readonly calls: string[] = []
  /** Called inside a write after it is applied but before it resolves (the watch has already seen it). */
  beforeResolve: ((method: Method, key: string) => void) | null = null

  constructor(config?: string) {
    if (config !== undefined) this.put(this.configKey, config)
  }

  /** The next call of `method` rejects with `error` (queue several by calling again). */
  failNext(method: Method, error: Error): void {
    const q = this.faults.get(method) ?? []
    q.push(error)
    this.faults.set(method, q)
  }

  private enter(method: Method, what: string): void {
    this.calls.push(`${method} ${what}`)
    const q = this.faults.get(method)
    const f = q?.shift()
    if (f) throw f
  }

  get watching(): number {
    return [...this.watchers].filter((w) => w.live).length
  }

  // ------------------------------------------------------------------ writes by "others" (tests) and by the port

  /** An unconditional put (an operator, another node). */
  put(key: string, value: string, lease = '0'): RawKV {
    this.rev += 1n
    const old = this.kvs.get(key)
    const kv: RawKV = {
      key,
      value,
      createRevision: old ? old.createRevision : String(this.rev),
      modRevision: String(this.rev),
      version: String(old ? Number(old.version) + 1 : 1),
      lease,
    }
    this.kvs.set(key, kv)
    this.emit({type: 'put', kv})
    return kv
  }

  delete(key: string): void {
    if (!this.kvs.has(key)) return
    this.rev += 1n
    this.kvs.delete(key)
    this.emit({type: 'delete', key, modRevision: String(this.rev)})
  }

  /** etcd compacts history: every watch is cancelled, and a watch from before `rev` cannot start. */
  compact(): void {
    this.compactedAt = this.rev
    this.history.length = 0
    for (const w of this.watchers) {
      if (!w.live) continue
      w.live = false
      w.cb.onLost(new Error('etcdserver: mvcc: required revision has been compacted'))
    }
    this.watchers.clear()
  }

  /** A lease expires: its keys are deleted. */
  expire(leaseId: string): void {
    this.grants.delete(leaseId)
    for (const kv of [...this.kvs.values()]) if (kv.lease === leaseId) this.delete(kv.key)
  }

  private emit(event: WatchEvent): void {
    const key = event.type === 'put' ? event.kv.key : event.key
    const config = key === this.configKey
    if (!config && !key.startsWith(this.subnetsPrefix)) return
    this.history.push({rev: this.rev, event})
    for (const w of this.watchers) if (w.live && w.config === config && this.rev > w.from) w.cb.onEvents([event])
  }

  /** Replaces the config (as `network expand` or an operator would). */
  setConfig(value: string): void {
    this.put(this.configKey, value)
  }

  private grant(ttl: number): string {
    const id = String(this.nextLease++)
    this.grants.set(id, ttl)
    return id
  }

  // ------------------------------------------------------------------ AgentStore

  readNetwork(): Promise<NetworkSnapshot> {
    try {
      this.enter('readNetwork', '')
    } catch (error) {
      return Promise.reject(error)
    }
    const subnets = [...this.kvs.values()]
      .filter((kv) => kv.key.startsWith(this.subnetsPrefix))
      .sort((a, b) => (a.key < b.key ? -1 : 1))
    return Promise.resolve({
      revision: String(this.rev),
      config: this.kvs.get(this.configKey) ?? null,
      subnets,
      foreign: [],
    })
  }

  async getKey(key: string): Promise<RawKV | null> {
    this.enter('getKey', key)
    await Promise.resolve()
    return this.kvs.get(key) ?? null
  }

  async createLease(key: string, value: string, ttlSeconds: number): Promise<{modRevision: string; leaseId: string}> {
    this.enter('createLease', key)
    await Promise.resolve()
    if (this.kvs.has(key)) throw new ConflictError(`${key} already exists`, 'CAS_LOST')
    const leaseId = this.grant(ttlSeconds)
    const kv = this.put(key, value, leaseId)
    this.beforeResolve?.('createLease', key)
    await Promise.resolve()
    return {modRevision: kv.modRevision, leaseId}
  }

  async renewLease(
    key: string,
    value: string,
    modRevision: string,
    ttlSeconds: number,
  ): Promise<{modRevision: string; leaseId: string}> {
    this.enter('renewLease', key)
    await Promise.resolve()
    const old = this.kvs.get(key)
    if (!old || old.modRevision !== modRevision) throw new ConflictError(`${key} changed`, 'CAS_LOST')
    const leaseId = this.grant(ttlSeconds)
    const kv = this.put(key, value, leaseId)
    if (old.lease !== '0') this.grants.delete(old.lease)
    this.beforeResolve?.('renewLease', key)
    await Promise.resolve()
    return {modRevision: kv.modRevision, leaseId}
  }

  async deleteKey(key: string, modRevision: string): Promise<void> {
    this.enter('deleteKey', key)
    await Promise.resolve()
    const old = this.kvs.get(key)
    if (!old || old.modRevision !== modRevision) throw new ConflictError(`${key} changed`, 'CAS_LOST')
    this.delete(key)
  }

  watch(fromRevision: string, cb: WatchCallbacks): Promise<{cancel(): Promise<void>}> {
    return this.startWatch('watch', fromRevision, cb, false)
  }

  watchConfig(fromRevision: string, cb: WatchCallbacks): Promise<{cancel(): Promise<void>}> {
    return this.startWatch('watchConfig', fromRevision, cb, true)
  }

  private async startWatch(
    method: Method,
    fromRevision: string,
    cb: WatchCallbacks,
    config: boolean,
  ): Promise<{cancel(): Promise<void>}> {
    this.enter(method, fromRevision)
    await Promise.resolve()
    const w: Watcher = {from: BigInt(fromRevision), cb, live: true, config}
    if (w.from < this.compactedAt) {
      w.live = false
      queueMicrotask(() => cb.onLost(new Error('etcdserver: mvcc: required revision has been compacted')))
    } else {
      this.watchers.add(w)
      const missed = this.history
        .filter(
          (h) =>
            h.rev > w.from && ((h.event.type === 'put' ? h.event.kv.key : h.event.key) === this.configKey) === config,
        )
        .map((h) => h.event)
      if (missed.length > 0) cb.onEvents(missed)
    }
    return {
      cancel: () => {
        w.live = false
        this.watchers.delete(w)
        return Promise.resolve()
      },
    }
  }

  subnetKey(subnet: Cidr4): string {
    return `${this.subnetsPrefix}/${makeSubnetKey(subnet)}`
  }

  /** Subnet keys as `subnet -> PublicIP` for assertions. */
  holders(): Record<string, string> {
    const out: Record<string, string> = {}
    for (const kv of this.kvs.values()) {
      if (!kv.key.startsWith(this.subnetsPrefix)) continue
      out[kv.key.slice(this.subnetsPrefix.length + 1)] = (JSON.parse(kv.value) as {PublicIP: string}).PublicIP
    }
    return out
  }
}

// ---------------------------------------------------------------------------------------------------------------

let macSeq = 0x10

/** Records what the agent asks of the kernel; models just enough (links, addresses, routes) to answer reads. */
export class RecordingDataplane implements AgentDataplane {
  readonly links = new Map<string, LinkState>()
  readonly devices: VxlanDeviceSpec[] = []
  readonly plans: SyncPlan[] = []
  readonly log: string[] = []
  routes: RouteEntry[] = []
  kernel: ActualState = {routes: [], neighs: [], fdb: []}
  applyErrors: string[] = []
  /** Faults for the traffic calls, consumed one per call. */
  readonly trafficFaults: Array<Error | null> = []
  randomFullySupported = true
  rules: IptRule[] = []

  constructor(
    readonly iface: InterfaceChoice = {
      name: 'eth0',
      mtu: 1500,
      address: ip('198.18.0.1'),
      publicIP: ip('198.18.0.1'),
      how: '--iface eth0',
    },
  ) {}

  selectInterface(): Promise<InterfaceChoice | {error: string}> {
    return Promise.resolve(this.iface)
  }

  ensureDevice(spec: VxlanDeviceSpec): Promise<{link: LinkState; created: boolean; recreated: boolean}> {
    this.devices.push(spec)
    this.log.push(`ensureDevice ${spec.name} local ${formatIPv4(spec.local)} mtu ${spec.mtu}`)
    const old = this.links.get(spec.name)
    const mac = old?.mac ?? spec.mac ?? `02:00:00:00:00:${(macSeq++).toString(16).padStart(2, '0')}`
    const link: LinkState = {
      name: spec.name,
      mtu: spec.mtu,
      mac,
      up: old?.up ?? false,
      vxlan: {id: spec.vni, local: formatIPv4(spec.local), port: spec.port || null, learning: false, gbp: spec.gbp},
      addresses: old?.addresses ?? [],
    }
    this.links.set(spec.name, link)
    return Promise.resolve({link, created: !old, recreated: false})
  }

  configureAddress(name: string, address: number, _network: Cidr4): Promise<LinkState> {
    this.log.push(`configureAddress ${name} ${formatIPv4(address)}/32`)
    const old = this.links.get(name)
    if (!old) return Promise.reject(new Error(`${name} does not exist`))
    const link = {...old, up: true, addresses: [{ip: address, prefix: 32}]}
    this.links.set(name, link)
    return Promise.resolve(link)
  }

  /** The host's links besides the vxlan devices: the external interface with its address. */
  hostLinks: LinkState[] = []

  readLinks(): Promise<LinkState[]> {
    const ext: LinkState = {
      name: this.iface.name,
      mtu: this.iface.mtu,
      mac: '02:00:00:00:00:01',
      up: true,
      vxlan: null,
      addresses: [{ip: this.iface.address, prefix: 24}],
    }
    return Promise.resolve([ext, ...this.hostLinks, ...this.links.values()])
  }

  readLink(name: string): Promise<LinkState | null> {
    return Promise.resolve(this.links.get(name) ?? null)
  }

  readActual(_dev: string): Promise<ActualState> {
    this.log.push('readActual')
    return Promise.resolve(this.kernel)
  }

  apply(plan: SyncPlan): Promise<{errors: string[]}> {
    this.plans.push(plan)
    return Promise.resolve({errors: this.applyErrors})
  }

  readRoutes(): Promise<RouteEntry[]> {
    this.log.push('readRoutes')
    return Promise.resolve(this.routes)
  }

  private fault(): void {
    const f = this.trafficFaults.shift()
    if (f) throw f
  }

  readonly traffic = {
    randomFully: (): Promise<boolean> => Promise.resolve(this.randomFullySupported),
    ensure: (rules: IptRule[]): Promise<number> => {
      try {
        this.fault()
      } catch (error) {
        return Promise.reject(error)
      }
      const have = new Set(this.rules.map((r) => JSON.stringify(r)))
      const missing = rules.filter((r) => !have.has(JSON.stringify(r)))
      this.rules.push(...missing)
      this.log.push(`ensure ${rules.length} rules (${missing.length} missing)`)
      return Promise.resolve(missing.length)
    },
    remove: (rules: IptRule[]): Promise<number> => {
      const drop = new Set(rules.map((r) => JSON.stringify(r)))
      const before = this.rules.length
      this.rules = this.rules.filter((r) => !drop.has(JSON.stringify(r)))
      this.log.push(`remove ${rules.length} rules (${before - this.rules.length} existed)`)
      return Promise.resolve(before - this.rules.length)
    },
    flush: (table: string, chain: string): Promise<void> => {
      this.log.push(`flush ${table} ${chain}`)
      this.rules = this.rules.filter((r) => !(r.table === table && r.chain === chain))
      return Promise.resolve()
    },
    nft: (script: string): Promise<void> => {
      this.log.push(`nft ${script.length} bytes`)
      return Promise.resolve()
    },
    removeNft: (): Promise<void> => {
      this.log.push('removeNft')
      return Promise.resolve()
    },
  }

  /** Every `bridge -batch` / `ip -batch` line applied so far. */
  lines(): string[] {
    return this.plans.flatMap((p) => [...p.bridge, ...p.ip])
  }
}

// ---------------------------------------------------------------------------------------------------------------

export class MemFiles implements Files {
  readonly files = new Map<string, string>()
  /** Faults for writes, consumed one per write. */
  readonly writeFaults: unknown[] = []
  writes = 0

  read(path: string): Promise<string | null> {
    return Promise.resolve(this.files.get(path) ?? null)
  }

  writeAtomic(path: string, data: string): Promise<void> {
    this.writes++
    const f = this.writeFaults.shift()
    if (f !== undefined) return Promise.reject(f)
    this.files.set(path, data)
    return Promise.resolve()
  }
}

export interface LogLine {
  level: 'info' | 'warn' | 'error'
  message: string
}

export function recordingLog(): {log: LogFn; lines: LogLine[]; text(): string} {
  const lines: LogLine[] = []
  return {
    log: (level, message) => lines.push({level, message}),
    lines,
    text: () => lines.map((l) => `${l.level} ${l.message}`).join('\n'),
  }
}

export const vxlanValue = (publicIP: string, mac: string, vni = 1): string =>
  `{"PublicIP":"${publicIP}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":${vni},"VtepMAC":"${mac}"}}`

export const hostGwValue = (publicIP: string): string =>
  `{"PublicIP":"${publicIP}","PublicIPv6":null,"BackendType":"host-gw"}`
