/**
 * A flanneld-compatible agent, composed of parts with one job each (see README "Architecture" and each file):
 * - lease-keeper.ts: the lease (pending, held, lost, re-acquiring) and its transition function;
 * - subnet-cache.ts: the subnets keyspace, listed, watched, re-listed after compaction;
 * - config-watch.ts + core/config-change.ts: the config key, followed live where flanneld's semantics allow;
 * - backends/: what the node publishes and programs (vxlan, host-gw);
 * - traffic-rules.ts: masquerade and forward rules (iptables or nftables);
 * - status.ts: /readyz;
 * - backoff.ts: the one retry helper, on the injected clock.
 *
 * This file wires them and runs them under one cancellation: when any activity fails, all are aborted and run()
 * rejects with that failure, so that the process exits non-zero. It takes its store, dataplane, clock, randomness,
 * files and abort signal as arguments (ports.ts); the command wires the real ones.
 *
 * Where flanneld is fragile this does better (and README says so): a lost allocation race picks again instead of
 * exiting, a vanished own key is re-acquired instead of exiting, stale FDB entries are removed when a peer's MAC
 * changes, lost routes are repaired on every resync, and readiness reflects the lease, subnet.env, device and sync.
 */

import {judgeConfigChange} from '../core/config-change.js'
import {type EffectiveConfig, type NetworkConfig, resolveNetworkConfig} from '../core/config.js'
import {suspiciousAddress} from '../core/doctor.js'
import {isFatal, UsageError} from '../core/errors.js'
import type {InterfaceChoice} from '../core/iface.js'
import {type Cidr4, formatCidr4, formatIPv4, parseCidr4} from '../core/ipv4.js'
import {isLeaseCompatible, type RawKV} from '../core/leases.js'
import {parseSubnetEnv, renderSubnetEnv} from '../core/subnet-env.js'
import {withBackoff} from './backoff.js'
import type {Backend} from './backends/backend.js'
import {BACKENDS} from './backends/index.js'
import {ConfigWatch} from './config-watch.js'
import {LeaseKeeper, type OwnLease} from './lease-keeper.js'
import {type AgentDataplane, type AgentStore, type Clock, errorText, type Files, type LogFn} from './ports.js'
import {type AgentStatus, StatusBoard} from './status.js'
import {SubnetCache} from './subnet-cache.js'
import {TrafficRules} from './traffic-rules.js'

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

export class Agent {
  private readonly status: StatusBoard
  /** Aborted when the caller's signal aborts or when any of the agent's activities fails: one cancellation for all. */
  private readonly life = new AbortController()
  private readonly signal: AbortSignal
  private iface!: InterfaceChoice
  private config!: NetworkConfig
  private effective!: EffectiveConfig
  private configRevision = '0'
  private backend!: Backend
  private keeper!: LeaseKeeper
  private cache!: SubnetCache
  private configWatch!: ConfigWatch
  private rules!: TrafficRules
  private previousSubnet: Cidr4 | null = null
  private previousEnv: {network: Cidr4; subnet: Cidr4} | null = null
  private syncing: Promise<void> | null = null
  private syncAgain = false
  private syncAgainFull = false
  /** The subnet cache has been listed once. */
  private listed = false

  constructor(
    private readonly o: AgentOptions,
    private readonly d: AgentDeps,
  ) {
    this.signal = AbortSignal.any([d.signal, this.life.signal])
    this.status = new StatusBoard(d.log, () => d.clock.now())
  }

  getStatus(): AgentStatus {
    return this.status.snapshot()
  }

  /** Runs until the signal aborts. Leaves the lease and the dataplane in place, as flanneld does. */
  async run(): Promise<void> {
    const {store, clock, log} = this.d
    const signal = this.signal
    await this.chooseInterface()
    if (!(await this.loadConfig())) return
    await this.readPrevious()
    this.backend = BACKENDS[this.effective.backendType]!({
      dataplane: this.d.dataplane,
      iface: this.iface,
      effective: () => this.effective,
      log,
      status: this.status,
      clock,
      signal,
    })
    if (!(await this.backend.setup())) return
    this.rules = new TrafficRules(this.d.dataplane.traffic, log, this.o, this.previousEnv)
    await this.rules.init(this.effective.enableNFTables)
    this.keeper = new LeaseKeeper(
      {store, clock, random: this.d.random, log, status: this.status, signal},
      {
        publicIP: this.iface.publicIP,
        renewMarginMs: this.o.renewMarginMs,
        previousSubnet: this.previousSubnet,
        config: () => ({config: this.config, effective: this.effective}),
        leaseValue: () => this.backend.leaseValue(),
        adopt: (lease, previous) => this.adopt(lease, previous),
        // A new lease after a re-acquire: program it (the first one is programmed once the cache is listed).
        onHeld: () => {
          if (this.listed) this.scheduleSync()
        },
      },
    )
    this.cache = new SubnetCache({store, clock, log, status: this.status, signal}, (change) => {
      if (change === 'listed') this.listed = true
      else for (const e of change) this.keeper.onEvent(e)
      // Event-driven: program the difference from what the last sync left; the periodic resync reads the kernel.
      this.scheduleSync(change === 'listed')
    })
    this.configWatch = new ConfigWatch({store, clock, log, signal}, (kv) => this.onConfig(kv))
    // The first lease before anything else, as flanneld; the config is watched meanwhile (an expand ends a wait).
    if (!(await this.configWatch.start(this.configRevision))) return
    const configLoop = this.guard(this.configWatch.run())
    const acquired = await this.guard(this.keeper.acquire()).catch((error: unknown) => ({error}))
    if (acquired !== true) {
      this.life.abort()
      await configLoop.catch(() => undefined)
      await this.configWatch.stop()
      if (typeof acquired === 'object') throw acquired.error
      return
    }
    if (!(await this.cache.start())) {
      await configLoop.catch(() => undefined)
      await this.configWatch.stop()
      return
    }
    const settled = await Promise.allSettled([
      configLoop,
      this.guard(this.keeper.run()),
      this.guard(this.cache.run()),
      this.guard(this.resyncLoop()),
    ])
    await this.syncing
    await this.cache.stop()
    await this.configWatch.stop()
    const failed = settled.find((r) => r.status === 'rejected')
    if (failed) {
      log('error', `stopping: ${errorText(failed.reason)}`)
      throw failed.reason
    }
    log('info', 'stopped; the lease and the dataplane are left in place')
  }

  /** Structured cancellation: an activity that fails aborts all the others (none is left sleeping for hours). */
  private guard<T>(p: Promise<T>): Promise<T> {
    return p.catch((error: unknown) => {
      this.life.abort()
      throw error
    })
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
    this.status.set({publicIP: formatIPv4(c.publicIP)})
    this.d.log(
      'info',
      `using interface ${c.name} (${formatIPv4(c.address)}, MTU ${c.mtu}) from ${c.how}; PublicIP ${formatIPv4(c.publicIP)}`,
    )
  }

  /** A config the agent can run, or the reason it cannot (fatal: a backend or family it does not support). */
  private decodeConfig(text: string): {config: NetworkConfig; effective: EffectiveConfig} | string {
    const r = resolveNetworkConfig(text)
    if (!r.ok) return `invalid network config: ${r.error}`
    const type = r.value.effective.backendType
    if (!BACKENDS[type]) {
      throw new UsageError(
        `backend "${type}" is not supported by flannelctl agent; supported: ${Object.keys(BACKENDS).join(', ')}`,
        'UNSUPPORTED_BACKEND',
      )
    }
    if (r.value.config.enableIPv6 || !r.value.effective.ipv4) {
      throw new UsageError(
        'IPv6 and dual-stack networks are not supported by flannelctl agent yet; supported: IPv4 vxlan',
        'UNSUPPORTED_NETWORK',
      )
    }
    return r.value
  }

  /** Waits for a valid config, logging why and retrying with backoff while it is missing or invalid. */
  private async loadConfig(): Promise<boolean> {
    const got = await withBackoff(
      {clock: this.d.clock, signal: this.signal, initialMs: 1000, maxMs: 10_000},
      async () => {
        let snap
        try {
          snap = await this.d.store.readNetwork()
        } catch (error) {
          if (isFatal(error)) throw error
          throw new Error(`reading the config: ${errorText(error)}`, {cause: error})
        }
        if (!snap.config) throw new Error('flannel config not found in etcd store')
        const c = this.decodeConfig(snap.config.value)
        if (typeof c === 'string') throw new Error(c)
        return {...c, revision: snap.revision}
      },
      (error, _attempt, delay) => {
        this.status.error(errorText(error))
        this.d.log('warn', `${errorText(error)}; retrying in ${delay / 1000}s`)
      },
    )
    if (!got) return false
    this.config = got.config
    this.effective = got.effective
    this.configRevision = got.revision
    const e = got.effective
    const be = e.vxlan ? `vxlan VNI ${e.vxlan.vni}` : e.backendType
    this.d.log('info', `network ${formatCidr4(e.ipv4!.network)}, SubnetLen ${e.ipv4!.subnetLen}, ${be}`)
    return true
  }

  private async readPrevious(): Promise<void> {
    const text = await this.d.files.read(this.o.subnetFile).catch(() => null)
    const env = text === null ? null : parseSubnetEnv(text)
    const sub = env?.get('FLANNEL_SUBNET')
    const c = sub === undefined || sub.includes(',') ? null : parseCidr4(sub)
    this.previousSubnet = c ? {ip: c.ip, prefix: c.prefix} : null
    const net = env?.get('FLANNEL_NETWORK')
    const n = net === undefined ? null : parseCidr4(net)
    this.previousEnv =
      n && this.previousSubnet ? {network: {ip: n.ip, prefix: n.prefix}, subnet: this.previousSubnet} : null
    if (this.previousSubnet)
      this.d.log('info', `previous subnet from ${this.o.subnetFile}: ${formatCidr4(this.previousSubnet)}`)
  }

  /** Makes `l` our lease on this node: the backend's addresses, the traffic rules, subnet.env. */
  private async adopt(l: OwnLease, previous: OwnLease | null): Promise<void> {
    const mtu = await this.backend.onLease(l.subnet)
    // As flanneld does, a failure to install the rules is logged and retried every resync; it does not cost the lease.
    await this.rules
      .ensure(this.effective.enableNFTables, this.effective.ipv4!.network, l.subnet, true)
      .catch((error: unknown) => {
        if (isFatal(error)) throw error
        this.status.error(`traffic rules: ${errorText(error)}`)
        this.d.log(
          'error',
          `installing the masquerade/forward rules failed (retrying every resync): ${errorText(error)}`,
        )
      })
    await this.writeSubnetEnv(l.subnet, mtu)
    if (previous && (previous.subnet.ip !== l.subnet.ip || previous.subnet.prefix !== l.subnet.prefix))
      this.d.log(
        'warn',
        `THIS NODE'S SUBNET CHANGED to ${formatCidr4(l.subnet)}: ${this.o.subnetFile} rewritten; restart the pods on this node`,
      )
  }

  /** As flanneld: a failed write (a full disk) is logged, not fatal; every resync writes again until it succeeds. */
  private async writeSubnetEnv(subnet: Cidr4, mtu: number): Promise<void> {
    const content = renderSubnetEnv({effective: this.effective, subnet, ipv6Subnet: null, mtu, ipMasq: this.o.ipMasq})
    try {
      await this.d.files.writeAtomic(this.o.subnetFile, content)
      this.status.set({subnetEnvWritten: true})
    } catch (error) {
      if (isFatal(error)) throw error
      this.status.set({subnetEnvWritten: false})
      this.status.error(`writing ${this.o.subnetFile}: ${errorText(error)}`)
      this.d.log('error', `failed to write subnet file (retrying every resync): ${errorText(error)}`)
    }
  }

  /**
   * The config key changed. A new Network, SubnetMin or SubnetMax is followed at once (subnet.env, rules, an acquire
   * waiting for a free subnet); a change flanneld cannot follow live is refused loudly and nothing is torn down.
   */
  private async onConfig(kv: RawKV | null): Promise<void> {
    const log = this.d.log
    if (kv === null) {
      log('warn', 'the network config was deleted; running on with the config read earlier')
      return
    }
    let next: {config: NetworkConfig; effective: EffectiveConfig} | string
    try {
      next = this.decodeConfig(kv.value)
    } catch (error) {
      next = errorText(error)
    }
    if (typeof next === 'string') {
      this.status.set({configRefused: next})
      log('error', `REFUSING the new network config (${next}); running on with the config read earlier`)
      return
    }
    const change = judgeConfigChange(this.effective, next.effective)
    if (change.kind === 'refuse') {
      const what = change.changed.join(', ')
      this.status.set({configRefused: `cannot change while running: ${what}`})
      log(
        'error',
        `REFUSING the new network config: ${what} cannot change under a running node (flanneld would not follow it either); nothing was torn down, the node runs on with the config read earlier; restart it to apply the new one`,
      )
      return
    }
    this.status.set({configRefused: null})
    this.config = next.config
    this.effective = next.effective
    if (change.kind === 'same') return
    log('info', `network config changed (${change.changed.join(', ')}); following it`)
    const own = this.keeper.held()
    if (own && !isLeaseCompatible(this.config, this.effective, {subnet: own.subnet, ipv6Subnet: null})) {
      log('warn', `our subnet ${formatCidr4(own.subnet)} is outside the new config; acquiring a new one`)
      this.keeper.lose('outside the new config')
      return
    }
    if (own) {
      try {
        await this.adopt(own, null)
      } catch (error) {
        this.status.error(`following the new config: ${errorText(error)}`)
        log('error', `following the new config failed (retrying every resync): ${errorText(error)}`)
      }
      this.scheduleSync()
    }
    // An acquire waiting for a free subnet tries again now.
    this.keeper.wake.poke()
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
    const loop = async () => {
      let nextFull = full
      do {
        this.syncAgain = false
        this.syncAgainFull = false
        // A re-acquire may be under way: sync only while a lease is held.
        const own = this.keeper.held()
        if (own) await this.backend.sync(own.subnet, this.cache.values(), nextFull)
        nextFull = this.syncAgainFull
      } while (this.syncAgain && !this.signal.aborted)
    }
    // Cleared in a callback, never inside the loop: a loop with nothing to await finishes before this assignment.
    this.syncing = loop().finally(() => {
      this.syncing = null
    })
  }

  /** Every --resync: repair what the backend owns, re-check subnet.env and the traffic rules, and reconcile. */
  private async resyncLoop(): Promise<void> {
    while (!this.signal.aborted) {
      await this.d.clock.sleep(this.o.resyncMs, this.signal)
      const own = this.keeper.held()
      if (this.signal.aborted || !own) continue
      try {
        await this.rules.ensure(this.effective.enableNFTables, this.effective.ipv4!.network, own.subnet, false)
        const repaired = await this.backend.repair(own.subnet)
        // A new MAC must be announced: renew now with the new value.
        if (repaired === 'announce') await this.keeper.renewNow()
        const held = this.keeper.held()
        if (
          held &&
          (repaired !== 'ok' ||
            !this.status.get('subnetEnvWritten') ||
            (await this.d.files.read(this.o.subnetFile)) === null)
        )
          await this.adopt(held, null)
      } catch (error) {
        if (isFatal(error)) throw error
        this.status.error(`resync: ${errorText(error)}`)
        this.d.log('error', `resync repair failed: ${errorText(error)}`)
      }
      this.scheduleSync()
      await this.syncing
    }
  }
}
