/**
 * A flanneld-compatible agent for the vxlan and host-gw backends: the lease loop (acquire, renew, re-acquire), the watch of the
 * subnets keyspace, and a level-triggered dataplane sync with a periodic resync. It takes its store, dataplane,
 * clock, randomness and abort signal as arguments; the command only wires them.
 *
 * Where flanneld is fragile this does better (and README says so): a lost allocation race picks again instead of
 * exiting, a vanished own key is re-acquired instead of exiting, stale FDB entries are removed when a peer's MAC
 * changes, lost routes are repaired on every resync, and readiness reflects the lease, subnet.env, device and sync.
 */

import {planAcquire} from '../core/allocation.js'
import {type EffectiveConfig, type NetworkConfig, resolveNetworkConfig} from '../core/config.js'
import {suspiciousAddress} from '../core/doctor.js'
import {ConflictError, isFatal, UsageError} from '../core/errors.js'
import type {InterfaceChoice, InterfaceRequest} from '../core/iface.js'
import {type Cidr4, formatCidr4, formatIPv4, parseCidr4} from '../core/ipv4.js'
import {decodeLeases, type NetworkSnapshot, type RawKV} from '../core/leases.js'
import {encodeLeaseAttrs, encodeVxlanData} from '../core/lease-value.js'
import {hostGwPeers, planHostGw} from '../core/hostgw.js'
import {forwardRules, type IptRule, masqRules, nftScript} from '../core/masq.js'
import {planSync, programmedState, type ActualState, type SyncPlan} from '../core/reconcile.js'
import {parseSubnetEnv, renderSubnetEnv} from '../core/subnet-env.js'
import {deviceName, desiredPeers, type LinkState, type PeerEntries} from '../core/vxlan.js'

export const SUBNET_TTL_SECONDS = 86_400

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
  watch(
    fromRevision: string,
    cb: {onEvents(events: WatchEvent[]): void; onLost(error: Error): void},
  ): Promise<{cancel(): Promise<void>}>
  subnetKey(subnet: Cidr4): string
}

export type WatchEvent = {type: 'put'; kv: RawKV} | {type: 'delete'; key: string; modRevision: string}

export interface VxlanDeviceSpec {
  name: string
  vni: number
  local: number
  iface: string
  port: number
  gbp: boolean
  mtu: number
  /** Recreate with this MAC when the device has to be created (keeps peers' FDB entries valid). */
  mac?: string
}

export interface AgentDataplane {
  selectInterface(r: InterfaceRequest): Promise<InterfaceChoice | {error: string}>
  ensureDevice(spec: VxlanDeviceSpec): Promise<{link: LinkState; created: boolean; recreated: boolean}>
  configureAddress(name: string, address: number, network: Cidr4): Promise<LinkState>
  readLink(name: string): Promise<LinkState | null>
  readActual(dev: string): Promise<ActualState>
  apply(plan: SyncPlan): Promise<{errors: string[]}>
  /** The main routing table (host-gw reads only this). */
  readRoutes(): Promise<ActualState['routes']>
  /** The masquerade/forward rules: ensure a set (returns how many were missing), delete an old set, or nft. */
  traffic: {
    randomFully(): Promise<boolean>
    ensure(rules: IptRule[]): Promise<number>
    remove(rules: IptRule[]): Promise<number>
    nft(script: string): Promise<void>
    /** Removes flannel's nftables table if it exists (what an nftables-mode run left). */
    removeNft(): Promise<void>
  }
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

export interface AgentOptions {
  ifaces: string[]
  ifaceRegexes: string[]
  publicIP: number | null
  subnetFile: string
  ipMasq: boolean
  /** flanneld's --iptables-forward-rules (default true). */
  forwardRules: boolean
  renewMarginMs: number
  resyncMs: number
  allowSuspiciousPublicIP: boolean
}

export interface AgentDeps {
  store: AgentStore
  dataplane: AgentDataplane
  clock: Clock
  random: () => number
  files: Files
  log: LogFn
  signal: AbortSignal
}

/** What /readyz reports. */
export interface AgentStatus {
  ready: boolean
  subnet: string | null
  publicIP: string | null
  key: string | null
  leaseId: string | null
  reserved: boolean
  expiresAt: string | null
  subnetEnvWritten: boolean
  deviceUp: boolean
  peers: number
  lastSyncAt: string | null
  lastSyncOk: boolean
  lastError: string | null
  /** host-gw peers that are not on a directly connected subnet (host-gw cannot reach them). */
  unreachablePeers: string[]
}

interface OwnLease {
  subnet: Cidr4
  key: string
  value: string
  modRevision: string
  leaseId: string
  expiresAt: number
}

const errorText = (e: unknown) => (e instanceof Error ? e.message : String(e))

export class Agent {
  private config!: NetworkConfig
  private effective!: EffectiveConfig
  private iface!: InterfaceChoice
  private dev = ''
  private mac = ''
  private own: OwnLease | null = null
  private previous: Cidr4 | null = null
  private readonly kvs = new Map<string, RawKV>()
  private watchHandle: {cancel(): Promise<void>} | null = null
  private syncing: Promise<void> | null = null
  private syncAgain = false
  private syncAgainFull = false
  /** The vxlan entries the last successful sync left in place, and the main table it read then (for DirectRouting). */
  private applied: PeerEntries[] | null = null
  private underlayRoutes: ActualState['routes'] = []
  private readonly warnedMalformed = new Set<string>()
  private wake: (() => void) | null = null
  private reacquire = false
  private relist = false
  private status: AgentStatus = {
    ready: false,
    subnet: null,
    publicIP: null,
    key: null,
    leaseId: null,
    reserved: false,
    expiresAt: null,
    subnetEnvWritten: false,
    deviceUp: false,
    peers: 0,
    lastSyncAt: null,
    lastSyncOk: false,
    lastError: null,
    unreachablePeers: [],
  }
  private readonly warnedUnreachable = new Set<string>()
  private randomFully = true
  /** FLANNEL_NETWORK / FLANNEL_SUBNET from the subnet.env of an earlier run, for removing its masquerade rules. */
  private previousEnv: {network: Cidr4; subnet: Cidr4} | null = null
  /** A renewal of our key in flight, and the watch events for our key seen meanwhile (held until it resolves). */
  private renewing: {key: string; value: string; echoes: RawKV[]} | null = null
  /** Aborted when the caller's signal aborts or when any of the agent's activities fails: one cancellation for all. */
  private readonly life = new AbortController()
  private readonly signal: AbortSignal

  constructor(
    private readonly o: AgentOptions,
    private readonly d: AgentDeps,
  ) {
    this.signal = AbortSignal.any([d.signal, this.life.signal])
  }

  getStatus(): AgentStatus {
    const s = this.status
    const leaseOk = this.own !== null && (s.reserved || this.own.expiresAt > this.d.clock.now())
    return {...s, ready: leaseOk && s.subnetEnvWritten && s.deviceUp && s.lastSyncOk}
  }

  private get aborted(): boolean {
    return this.signal.aborted
  }

  /** Retries `fn` with a backoff (1 s doubling to 10 s) while it fails, logging each failure; null when aborted. */
  private async retry<T>(what: string, fn: () => Promise<T>): Promise<T | null> {
    let delay = 1000
    for (let attempt = 1; !this.aborted; attempt++) {
      try {
        return await fn()
      } catch (error) {
        if (isFatal(error)) throw error
        this.status.lastError = `${what}: ${errorText(error)}`
        this.d.log('warn', `${what} failed (attempt ${attempt}), retrying in ${delay / 1000}s`, {
          error: errorText(error),
        })
        await this.d.clock.sleep(delay, this.signal)
        delay = Math.min(delay * 2, 10_000)
      }
    }
    return null
  }

  private get hostGw(): boolean {
    return this.effective.backendType === 'host-gw'
  }

  /** Runs until the signal aborts. Leaves the lease and the dataplane in place, as flanneld does. */
  async run(): Promise<void> {
    await this.chooseInterface()
    if (!(await this.loadConfig())) return
    await this.readPrevious()
    if (this.hostGw) {
      if (this.iface.publicIP !== this.iface.address) {
        throw new UsageError(
          `your PublicIP ${formatIPv4(this.iface.publicIP)} differs from the interface address ${formatIPv4(this.iface.address)}, meaning that probably you're on a NAT, which is not supported by host-gw backend: other nodes would route to an address this node does not have`,
          'HOSTGW_NAT',
        )
      }
    } else {
      const ensured = await this.retry('setting up the vxlan device', () =>
        this.d.dataplane.ensureDevice(this.deviceSpec()),
      )
      if (!ensured) return
      this.mac = ensured.link.mac
      this.d.log(
        'info',
        `${ensured.created ? 'created' : ensured.recreated ? 'recreated (incompatible)' : 'reusing'} ${this.dev}`,
        {mac: this.mac, mtu: ensured.link.mtu},
      )
    }
    if (this.o.ipMasq && !this.effective.enableNFTables) this.randomFully = await this.d.dataplane.traffic.randomFully()
    if (!(await this.acquire())) return
    await this.startWatch()
    // Structured cancellation: when one activity fails, the others are aborted (not left sleeping for hours), and
    // run() rejects with the first failure so that the process exits non-zero.
    const activities = [this.renewLoop(), this.resyncLoop()].map((p) =>
      p.catch((error: unknown) => {
        this.life.abort()
        throw error
      }),
    )
    const settled = await Promise.allSettled(activities)
    await this.syncing
    await this.watchHandle?.cancel()
    const failed = settled.find((r) => r.status === 'rejected')
    if (failed) {
      this.d.log('error', `stopping: ${errorText(failed.reason)}`)
      throw failed.reason
    }
    this.d.log('info', 'stopped; the lease and the dataplane are left in place')
  }

  private async chooseInterface(): Promise<void> {
    const c = await this.d.dataplane.selectInterface({
      ifaces: this.o.ifaces,
      regexes: this.o.ifaceRegexes,
      publicIP: this.o.publicIP,
    })
    if ('error' in c) throw new UsageError(c.error, 'NO_INTERFACE')
    const why = suspiciousAddress(c.publicIP)
    if (why && !this.o.allowSuspiciousPublicIP) {
      throw new UsageError(
        `refusing PublicIP ${formatIPv4(c.publicIP)} (${why}, chosen from ${c.how}): other nodes could not reach this one, and nodes sharing it share one subnet. Choose the interface other nodes reach with --iface (on Vagrant the host-only NIC, e.g. --iface eth1) or set --public-ip; --allow-suspicious-public-ip overrides`,
        'SUSPICIOUS_PUBLIC_IP',
      )
    }
    this.iface = c
    this.status.publicIP = formatIPv4(c.publicIP)
    this.d.log(
      'info',
      `using interface ${c.name} (${formatIPv4(c.address)}, MTU ${c.mtu}) from ${c.how}; PublicIP ${formatIPv4(c.publicIP)}`,
    )
  }

  /** Waits for a valid vxlan config, logging why and retrying with backoff while it is missing or invalid. */
  private async loadConfig(): Promise<boolean> {
    let delay = 1000
    while (!this.aborted) {
      let problem: string
      try {
        const snap = await this.d.store.readNetwork()
        if (!snap.config) problem = 'flannel config not found in etcd store'
        else {
          const r = resolveNetworkConfig(snap.config.value)
          if (!r.ok) problem = `invalid network config: ${r.error}`
          else if (r.value.effective.backendType !== 'vxlan' && r.value.effective.backendType !== 'host-gw') {
            throw new UsageError(
              `backend "${r.value.effective.backendType}" is not supported by flannelctl agent; supported: vxlan, host-gw`,
              'UNSUPPORTED_BACKEND',
            )
          } else if (r.value.config.enableIPv6 || !r.value.effective.ipv4) {
            throw new UsageError(
              'IPv6 and dual-stack networks are not supported by flannelctl agent yet; supported: IPv4 vxlan',
              'UNSUPPORTED_NETWORK',
            )
          } else {
            this.config = r.value.config
            this.effective = r.value.effective
            this.dev = r.value.effective.vxlan ? deviceName(r.value.effective.vxlan.vni) : ''
            const be = r.value.effective.vxlan
              ? `vxlan VNI ${r.value.effective.vxlan.vni}`
              : r.value.effective.backendType
            this.d.log(
              'info',
              `network ${formatCidr4(r.value.effective.ipv4.network)}, SubnetLen ${r.value.effective.ipv4.subnetLen}, ${be}`,
            )
            return true
          }
        }
      } catch (error) {
        if (isFatal(error)) throw error
        problem = `reading the config: ${errorText(error)}`
      }
      this.status.lastError = problem
      this.d.log('warn', `${problem}; retrying in ${delay / 1000}s`)
      await this.d.clock.sleep(delay, this.signal)
      delay = Math.min(delay * 2, 10_000)
    }
    return false
  }

  private async readPrevious(): Promise<void> {
    const text = await this.d.files.read(this.o.subnetFile).catch(() => null)
    const sub = text === null ? undefined : parseSubnetEnv(text).get('FLANNEL_SUBNET')
    const c = sub === undefined || sub.includes(',') ? null : parseCidr4(sub)
    this.previous = c ? {ip: c.ip, prefix: c.prefix} : null
    const net = text === null ? undefined : parseSubnetEnv(text).get('FLANNEL_NETWORK')
    const n = net === undefined ? null : parseCidr4(net)
    this.previousEnv = n && this.previous ? {network: {ip: n.ip, prefix: n.prefix}, subnet: this.previous} : null
    if (this.previous) this.d.log('info', `previous subnet from ${this.o.subnetFile}: ${formatCidr4(this.previous)}`)
  }

  private deviceSpec(): VxlanDeviceSpec {
    const vx = this.effective.vxlan!
    return {
      name: this.dev,
      vni: vx.vni,
      local: this.iface.publicIP,
      iface: this.iface.name,
      port: vx.port,
      gbp: vx.gbp,
      mtu: (vx.mtu || this.iface.mtu) - 50,
      ...(this.mac ? {mac: this.mac} : {}),
    }
  }

  private leaseValue(): string {
    if (this.hostGw)
      return encodeLeaseAttrs({
        publicIP: this.iface.publicIP,
        publicIPv6: null,
        backendType: 'host-gw',
        backendData: null,
        backendV6Data: null,
      })
    return encodeLeaseAttrs({
      publicIP: this.iface.publicIP,
      publicIPv6: null,
      backendType: 'vxlan',
      backendData: encodeVxlanData({vni: this.effective.vxlan!.vni, vtepMAC: this.mac}),
      backendV6Data: null,
    })
  }

  /** flanneld's AcquireLease with a pick-again on lost races; then the device address and subnet.env. */
  private async acquire(): Promise<boolean> {
    const value = this.leaseValue()
    let delay = 1000
    for (let round = 1; !this.aborted; round++) {
      try {
        const snap = await this.d.store.readNetwork()
        const {leases} = decodeLeases(snap.subnets)
        const plan = planAcquire({
          config: this.config,
          effective: this.effective,
          leases,
          publicIP: this.iface.publicIP,
          previous: this.previous,
          random: this.d.random(),
        })
        for (const l of plan.deleted) {
          this.d.log(
            'warn',
            `found lease ${formatCidr4(l.subnet)} for current IP ${formatIPv4(this.iface.publicIP)} but not compatible with current config, deleting`,
          )
          await this.d.store
            .deleteKey(l.key, l.modRevision)
            .catch((e: unknown) => this.d.log('warn', `could not delete ${l.key}: ${errorText(e)}`))
        }
        if (plan.kind === 'exhausted') throw new Error('out of subnets')
        let got: OwnLease
        if (plan.kind === 'reuse') {
          const r = await this.d.store.renewLease(plan.lease.key, value, plan.lease.modRevision, SUBNET_TTL_SECONDS)
          got = {
            subnet: plan.lease.subnet,
            key: plan.lease.key,
            value,
            ...r,
            expiresAt: this.d.clock.now() + SUBNET_TTL_SECONDS * 1000,
          }
          this.d.log(
            'info',
            `found lease ${formatCidr4(plan.lease.subnet)} for current IP ${formatIPv4(this.iface.publicIP)}, reusing`,
          )
        } else {
          const key = this.d.store.subnetKey(plan.subnet)
          const r = await this.d.store.createLease(key, value, SUBNET_TTL_SECONDS)
          got = {subnet: plan.subnet, key, value, ...r, expiresAt: this.d.clock.now() + SUBNET_TTL_SECONDS * 1000}
          this.d.log(
            'info',
            `${plan.why === 'previous' ? 'reusing previously leased subnet' : `allocated (from ${plan.candidates} free)`} ${formatCidr4(plan.subnet)} to this node`,
            {key},
          )
        }
        await this.adopt(got)
        return true
      } catch (error) {
        if (isFatal(error)) throw error
        if (error instanceof ConflictError && round < 10) {
          this.d.log('warn', `lost the race for a subnet, picking again (${errorText(error)})`)
          continue
        }
        this.status.lastError = `acquiring a lease: ${errorText(error)}`
        this.d.log('error', `acquiring a lease failed: ${errorText(error)}; retrying in ${delay / 1000}s`)
        await this.d.clock.sleep(delay, this.signal)
        delay = Math.min(delay * 2, 10_000)
      }
    }
    return false
  }

  /** Makes `l` our lease: device address, subnet.env, status. */
  private async adopt(l: OwnLease): Promise<void> {
    const changed =
      this.own !== null && (this.own.subnet.ip !== l.subnet.ip || this.own.subnet.prefix !== l.subnet.prefix)
    this.own = l
    this.previous = l.subnet
    this.status = {
      ...this.status,
      subnet: formatCidr4(l.subnet),
      key: l.key,
      leaseId: l.leaseId,
      reserved: false,
      expiresAt: new Date(l.expiresAt).toISOString(),
    }
    let mtu = this.iface.mtu
    if (this.hostGw)
      this.status.deviceUp = true // host-gw has no device of its own
    else {
      const link = await this.d.dataplane.configureAddress(this.dev, l.subnet.ip, this.effective.ipv4!.network)
      this.status.deviceUp = link.up
      mtu = link.mtu
    }
    // As flanneld does, a failure to install the rules is logged and retried every resync; it does not cost the lease.
    await this.ensureTrafficRules(l.subnet, true).catch((error: unknown) => {
      if (isFatal(error)) throw error
      this.status.lastError = `traffic rules: ${errorText(error)}`
      this.d.log('error', `installing the masquerade/forward rules failed (retrying every resync): ${errorText(error)}`)
    })
    const content = renderSubnetEnv({
      effective: this.effective,
      subnet: l.subnet,
      ipv6Subnet: null,
      mtu,
      ipMasq: this.o.ipMasq,
    })
    await this.writeSubnetEnv(content)
    if (changed)
      this.d.log(
        'warn',
        `THIS NODE'S SUBNET CHANGED to ${formatCidr4(l.subnet)}: ${this.o.subnetFile} rewritten; restart the pods on this node`,
      )
  }

  /**
   * flanneld's masquerade rules (--ip-masq) and forward rules (--iptables-forward-rules): on the first call the rules
   * built from an earlier subnet.env with another Network or subnet are removed; every call re-checks the set.
   */
  private async ensureTrafficRules(subnet: Cidr4, first: boolean): Promise<void> {
    const net = this.effective.ipv4!.network
    const t = this.d.dataplane.traffic
    if (this.effective.enableNFTables) {
      // On start, remove what an iptables-mode run left for this Network and subnet, as flanneld does.
      if (first)
        await t
          .remove([...masqRules(net, subnet, true), ...masqRules(net, subnet, false), ...forwardRules(net)])
          .catch(() => 0)
      if (this.o.ipMasq || this.o.forwardRules)
        await t.nft(nftScript(net, subnet, this.o.ipMasq, this.o.forwardRules, this.randomFully))
      return
    }
    if (first) await t.removeNft().catch(() => undefined)
    if (this.o.ipMasq) {
      const prev = this.previousEnv
      if (
        first &&
        prev &&
        (prev.network.ip !== net.ip ||
          prev.network.prefix !== net.prefix ||
          prev.subnet.ip !== subnet.ip ||
          prev.subnet.prefix !== subnet.prefix)
      ) {
        const removed = await this.d.dataplane.traffic.remove([
          ...masqRules(prev.network, prev.subnet, this.randomFully),
          ...masqRules(prev.network, prev.subnet, !this.randomFully),
        ])
        if (removed > 0)
          this.d.log(
            'info',
            `removed ${removed} masquerade rule(s) built for ${formatCidr4(prev.network)} / ${formatCidr4(prev.subnet)}`,
          )
      }
      const missing = await this.d.dataplane.traffic.ensure(masqRules(net, subnet, this.randomFully))
      if (missing > 0)
        this.d.log(
          first ? 'info' : 'warn',
          `${first ? 'installed' : 'restored'} masquerade rules (${missing} were missing)`,
        )
    }
    if (this.o.forwardRules) {
      const missing = await this.d.dataplane.traffic.ensure(forwardRules(net))
      if (missing > 0)
        this.d.log(
          first ? 'info' : 'warn',
          `${first ? 'installed' : 'restored'} forward rules (${missing} were missing)`,
        )
    }
  }

  /** As flanneld: a failed write (a full disk) is logged, not fatal; every resync writes again until it succeeds. */
  private async writeSubnetEnv(content: string): Promise<void> {
    try {
      await this.d.files.writeAtomic(this.o.subnetFile, content)
      this.status.subnetEnvWritten = true
    } catch (error) {
      if (isFatal(error)) throw error
      this.status.subnetEnvWritten = false
      this.status.lastError = `writing ${this.o.subnetFile}: ${errorText(error)}`
      this.d.log('error', `failed to write subnet file (retrying every resync): ${errorText(error)}`)
    }
  }

  private async startWatch(): Promise<void> {
    const snap = await this.retry('listing the subnets', () => this.d.store.readNetwork())
    if (!snap) return
    this.kvs.clear()
    for (const kv of snap.subnets) this.kvs.set(kv.key, kv)
    this.scheduleSync()
    const handle = await this.retry('watching the subnets', () =>
      this.d.store.watch(snap.revision, {
        onEvents: (events) => this.onEvents(events),
        onLost: (error) => {
          this.d.log('warn', `the watch was cancelled (${errorText(error)}); listing again`)
          this.relist = true
          this.poke()
        },
      }),
    )
    this.watchHandle = handle
  }

  private onEvents(events: WatchEvent[]): void {
    for (const e of events) {
      if (e.type === 'delete') {
        this.kvs.delete(e.key)
        if (this.own && e.key === this.own.key) {
          this.d.log('error', `OUR LEASE ${this.own.key} WAS DELETED (expired or removed by an operator); re-acquiring`)
          this.reacquire = true
        }
        continue
      }
      this.kvs.set(e.kv.key, e.kv)
      if (this.own && e.kv.key === this.own.key && !this.isOwnWrite(e.kv)) {
        // The event of our own renewal can arrive before renewLease resolves: judge it once we know what we wrote.
        if (this.renewing?.key === e.kv.key) this.renewing.echoes.push(e.kv)
        else this.ownKeyChanged(e.kv)
      }
    }
    // Event-driven: program the difference from what the last sync left; the periodic resync reads the kernel.
    this.scheduleSync(false)
    if (this.reacquire) this.poke()
  }

  /** The put is one we made: the revision we hold, or the lease and value we hold. */
  private isOwnWrite(kv: RawKV): boolean {
    const own = this.own
    if (!own) return false
    return kv.modRevision === own.modRevision || (kv.lease === own.leaseId && kv.value === own.value)
  }

  /** Another writer changed our key: keep it if it is still ours (e.g. an operator reserved it), else re-acquire. */
  private ownKeyChanged(kv: RawKV): void {
    const {leases} = decodeLeases([kv])
    const l = leases[0]
    if (!l || l.attrs.publicIP !== this.iface.publicIP) {
      this.d.log(
        'error',
        `${kv.key} was taken over by another node (${l ? formatIPv4(l.attrs.publicIP) : 'unreadable value'}); re-acquiring`,
      )
      this.reacquire = true
      return
    }
    this.own = {...this.own!, modRevision: kv.modRevision, leaseId: kv.lease, value: kv.value}
    this.status.leaseId = kv.lease
    this.status.reserved = kv.lease === '0'
    this.d.log(
      'warn',
      `${kv.key} was rewritten by another writer${kv.lease === '0' ? ' and is now a reservation (no renewals needed)' : ''}`,
    )
  }

  private poke(): void {
    this.wake?.()
  }

  /** Renews at expiry minus the margin; also handles re-acquire and re-list requests from the watch. */
  private async renewLoop(): Promise<void> {
    while (!this.aborted) {
      if (this.relist) {
        this.relist = false
        await this.watchHandle?.cancel()
        await this.startWatch()
        continue
      }
      if (this.reacquire) {
        this.reacquire = false
        this.own = null
        if (!(await this.acquire())) return
        this.scheduleSync()
        continue
      }
      const own = this.own!
      const due = this.status.reserved ? Number.POSITIVE_INFINITY : own.expiresAt - this.o.renewMarginMs
      const wait = Math.max(0, due - this.d.clock.now())
      if (wait > 0) {
        // Sleep until the renewal is due, or until the watch asks for a re-list or a re-acquire.
        const woken = new AbortController()
        this.wake = () => woken.abort()
        await this.d.clock.sleep(Math.min(wait, 2 ** 31 - 1), AbortSignal.any([this.signal, woken.signal]))
        this.wake = null
        continue
      }
      await this.renew(own)
    }
  }

  private async renew(own: OwnLease): Promise<void> {
    const value = this.leaseValue()
    const renewing = {key: own.key, value, echoes: [] as RawKV[]}
    this.renewing = renewing
    try {
      const r = await this.d.store.renewLease(own.key, value, own.modRevision, SUBNET_TTL_SECONDS)
      this.renewing = null
      this.own = {...own, ...r, value, expiresAt: this.d.clock.now() + SUBNET_TTL_SECONDS * 1000}
      this.status.leaseId = r.leaseId
      this.status.expiresAt = new Date(this.own.expiresAt).toISOString()
      this.d.log('info', `renewed ${own.key} until ${this.status.expiresAt}`)
      // Events seen while the renewal was in flight: ours (our lease and value) are dropped, later ones judged.
      for (const kv of renewing.echoes)
        if (!this.isOwnWrite(kv) && BigInt(kv.modRevision) > BigInt(r.modRevision)) this.ownKeyChanged(kv)
    } catch (error) {
      this.renewing = null
      if (isFatal(error)) throw error
      if (error instanceof ConflictError) {
        const now = await this.d.store.getKey(own.key).catch(() => undefined)
        if (now === null) this.reacquire = true
        else if (now) this.ownKeyChanged(now)
        return
      }
      const left = own.expiresAt - this.d.clock.now()
      this.status.lastError = `renewing ${own.key}: ${errorText(error)}`
      this.d.log('error', `renewing ${own.key} failed: ${errorText(error)}; ${Math.round(left / 1000)}s of lease left`)
      await this.d.clock.sleep(Math.max(1000, Math.min(60_000, left / 4)), this.signal)
    }
  }

  /**
   * Runs a sync now, or once more after the running one. A full sync reads the kernel's state; an event-driven one
   * (full = false) plans against what the last successful sync programmed, so a new lease costs no reads.
   */
  private scheduleSync(full = true): void {
    if (this.syncing) {
      this.syncAgain = true
      this.syncAgainFull ||= full
      return
    }
    this.syncing = (async () => {
      let nextFull = full
      do {
        this.syncAgain = false
        this.syncAgainFull = false
        await this.syncOnce(nextFull)
        nextFull = this.syncAgainFull
      } while (this.syncAgain && !this.aborted)
      this.syncing = null
    })()
  }

  /** Compares the entries the current leases need with the kernel's and repairs the difference. */
  private async syncOnce(full: boolean): Promise<void> {
    // A re-acquire clears this.own while a sync may be running: keep the subnet this sync started with.
    const own = this.own
    if (!own) return
    if (this.hostGw) return this.syncHostGw(own.subnet)
    try {
      let actual: ActualState
      if (full || this.applied === null) {
        actual = await this.d.dataplane.readActual(this.dev)
        this.underlayRoutes = actual.routes
      } else actual = programmedState(this.applied, this.dev)
      const {leases, malformed} = decodeLeases([...this.kvs.values()])
      for (const m of malformed) {
        if (this.warnedMalformed.has(m.key)) continue
        this.warnedMalformed.add(m.key)
        this.d.log('warn', `ignoring bad subnet key ${m.key}: ${m.error}`)
      }
      const peers = desiredPeers(leases, own.subnet, this.effective.vxlan!.directRouting, this.underlayRoutes)
      const plan = planSync(peers, actual, this.dev, this.effective.ipv4!.network)
      const {errors} = plan.bridge.length + plan.ip.length > 0 ? await this.d.dataplane.apply(plan) : {errors: []}
      this.applied = errors.length === 0 ? peers : null
      this.recordSync('dataplane sync', 'entries', errors, plan.added, plan.removed, peers.length)
    } catch (error) {
      this.applied = null
      this.recordSyncFailure('dataplane sync', error)
    }
  }

  /** Readiness and log lines after one sync. */
  private recordSync(
    what: string,
    unit: string,
    errors: string[],
    added: number,
    removed: number,
    peers: number,
  ): void {
    this.status.peers = peers
    this.status.lastSyncAt = new Date(this.d.clock.now()).toISOString()
    this.status.lastSyncOk = errors.length === 0
    if (errors.length > 0) {
      this.status.lastError = errors.join('; ')
      this.d.log('error', `${what} had errors: ${errors.join('; ')}`)
    } else if (added + removed > 0) {
      this.d.log('info', `${what}: ${added} ${unit} added or repaired, ${removed} removed`, {peers})
    }
  }

  private recordSyncFailure(what: string, error: unknown): void {
    this.status.lastSyncOk = false
    this.status.lastError = `${what}: ${errorText(error)}`
    this.d.log('error', `${what} failed: ${errorText(error)}`)
  }

  /** host-gw: a route per remote host-gw lease on a connected subnet; peers behind a router are reported once. */
  private async syncHostGw(own: Cidr4): Promise<void> {
    try {
      const routes = await this.d.dataplane.readRoutes()
      const {leases} = decodeLeases([...this.kvs.values()])
      const peers = hostGwPeers(leases, own, routes)
      const plan = planHostGw(peers, routes, this.iface.name, this.effective.ipv4!.network)
      for (const r of plan.replaced) this.d.log('warn', `replacing existing route to ${r}`)
      for (const p of plan.unreachable) {
        const s = formatCidr4(p.subnet)
        if (this.warnedUnreachable.has(s)) continue
        this.warnedUnreachable.add(s)
        this.d.log(
          'error',
          `host-gw cannot reach ${s}: its node ${formatIPv4(p.publicIP)} is not on a directly connected subnet of ${this.iface.name}`,
        )
      }
      this.status.unreachablePeers = plan.unreachable.map((p) => `${formatCidr4(p.subnet)} (${formatIPv4(p.publicIP)})`)
      const {errors} =
        plan.ip.length > 0
          ? await this.d.dataplane.apply({bridge: [], ip: plan.ip, added: plan.added, removed: plan.removed})
          : {errors: []}
      this.recordSync('route sync', 'routes', errors, plan.added, plan.removed, peers.length)
    } catch (error) {
      this.recordSyncFailure('route sync', error)
    }
  }

  /** Every --resync: recreate the device if it vanished, re-check subnet.env and the traffic rules, and reconcile. */
  private async resyncLoop(): Promise<void> {
    while (!this.aborted) {
      await this.d.clock.sleep(this.o.resyncMs, this.signal)
      if (this.aborted || !this.own) continue
      try {
        await this.ensureTrafficRules(this.own.subnet, false)
        const link = this.hostGw ? null : await this.d.dataplane.readLink(this.dev)
        if (
          !this.hostGw &&
          (!link || !link.up || !link.addresses.some((a) => a.ip === this.own!.subnet.ip && a.prefix === 32))
        ) {
          this.d.log('warn', `${this.dev} is ${link ? 'misconfigured' : 'gone'}; repairing it`)
          const ensured = await this.d.dataplane.ensureDevice(this.deviceSpec())
          if (ensured.link.mac !== this.mac) {
            // A new MAC must be announced: renew now with the new value.
            this.mac = ensured.link.mac
            await this.renew(this.own)
          }
          await this.adopt(this.own)
        }
        if (!this.status.subnetEnvWritten || (await this.d.files.read(this.o.subnetFile)) === null)
          await this.adopt(this.own)
      } catch (error) {
        if (isFatal(error)) throw error
        if (!this.hostGw) this.status.deviceUp = false
        this.status.lastError = `resync: ${errorText(error)}`
        this.d.log('error', `resync repair failed: ${errorText(error)}`)
      }
      this.scheduleSync()
      await this.syncing
    }
  }
}
