/**
 * The lease keeper: acquires this node's subnet lease as flanneld does, renews it before it expires, and re-acquires
 * it when it is lost. Its state is explicit (as etcd3's Lease has LeaseState and a 'lost' event):
 *
 *   pending --acquired--> held --renewed / rewritten--> held
 *   held --lost (deleted, expired, taken over, outside a new config)--> lost --reacquire--> re-acquiring
 *   re-acquiring --acquired--> held
 *
 * `transition` is the whole machine, pure; the LeaseKeeper class runs it against the store and the clock.
 */

import {planAcquire} from '../core/allocation.js'
import type {EffectiveConfig, NetworkConfig} from '../core/config.js'
import {ConflictError, isFatal} from '../core/errors.js'
import {type Cidr4, formatCidr4, formatIPv4} from '../core/ipv4.js'
import {decodeLeases, type RawKV} from '../core/leases.js'
import {Wake, withBackoff} from './backoff.js'
import {type AgentStore, type Clock, errorText, type LogFn, type WatchEvent} from './ports.js'
import type {StatusBoard} from './status.js'

export const SUBNET_TTL_SECONDS = 86_400

export interface OwnLease {
  readonly subnet: Cidr4
  readonly key: string
  readonly value: string
  readonly modRevision: string
  readonly leaseId: string
  /** Wall-clock ms; meaningless when reserved. */
  readonly expiresAt: number
  /** No etcd lease (an operator reserved the key): no renewals needed. */
  readonly reserved: boolean
}

export type LeaseState =
  | {readonly kind: 'pending'}
  | {readonly kind: 'held'; readonly lease: OwnLease}
  | {readonly kind: 'lost'; readonly lease: OwnLease; readonly why: string}
  | {readonly kind: 're-acquiring'; readonly previous: OwnLease}

export type LeaseEvent =
  | {readonly type: 'acquired'; readonly lease: OwnLease}
  | {
      readonly type: 'renewed'
      readonly modRevision: string
      readonly leaseId: string
      readonly value: string
      readonly expiresAt: number
    }
  | {readonly type: 'rewritten'; readonly kv: RawKV}
  | {readonly type: 'lost'; readonly why: string}
  | {readonly type: 'reacquire'}

/** The lease state machine. An event that does not apply to the state leaves it unchanged. */
export function transition(s: LeaseState, e: LeaseEvent): LeaseState {
  switch (e.type) {
    case 'acquired':
      return s.kind === 'pending' || s.kind === 're-acquiring' ? {kind: 'held', lease: e.lease} : s
    case 'renewed':
      return s.kind === 'held'
        ? {
            kind: 'held',
            lease: {
              ...s.lease,
              modRevision: e.modRevision,
              leaseId: e.leaseId,
              value: e.value,
              expiresAt: e.expiresAt,
              reserved: false,
            },
          }
        : s
    case 'rewritten':
      return s.kind === 'held'
        ? {
            kind: 'held',
            lease: {
              ...s.lease,
              modRevision: e.kv.modRevision,
              leaseId: e.kv.lease,
              value: e.kv.value,
              reserved: e.kv.lease === '0',
            },
          }
        : s
    case 'lost':
      return s.kind === 'held' ? {kind: 'lost', lease: s.lease, why: e.why} : s
    case 'reacquire':
      return s.kind === 'lost' ? {kind: 're-acquiring', previous: s.lease} : s
  }
}

/**
 * How the current value of our key relates to the lease we hold: our own write (our revision, or our lease and
 * value), still ours but rewritten by someone else (same PublicIP: e.g. reserved), deleted, or taken over.
 */
export function judgeOwnKey(
  own: OwnLease,
  kv: RawKV | null,
  publicIP: number,
): 'ours' | 'rewritten' | 'deleted' | 'taken-over' {
  if (kv === null) return 'deleted'
  if (kv.modRevision === own.modRevision || (kv.lease === own.leaseId && kv.value === own.value)) return 'ours'
  const l = decodeLeases([kv]).leases[0]
  return l && l.attrs.publicIP === publicIP ? 'rewritten' : 'taken-over'
}

export interface KeeperDeps {
  readonly store: AgentStore
  readonly clock: Clock
  readonly random: () => number
  readonly log: LogFn
  readonly status: StatusBoard
  readonly signal: AbortSignal
}

export interface KeeperPolicy {
  readonly publicIP: number
  readonly renewMarginMs: number
  /** FLANNEL_SUBNET from an earlier subnet.env. */
  readonly previousSubnet: Cidr4 | null
  /** The config to allocate in, read on every attempt (a config change applies to the next one). */
  config(): {config: NetworkConfig; effective: EffectiveConfig}
  /** The value to publish. */
  leaseValue(): string
  /** Makes a lease ours on the node (device address, rules, subnet.env) before the keeper calls it held. */
  adopt(lease: OwnLease, previous: OwnLease | null): Promise<void>
  /** Called once the keeper holds a (new) lease. */
  onHeld(lease: OwnLease): void
}

export class LeaseKeeper {
  state: LeaseState = {kind: 'pending'}
  /** Cuts the keeper's waits short: a lost lease, a config change, a stop. */
  readonly wake = new Wake()
  private previousSubnet: Cidr4 | null
  /** A renewal in flight, and the watch events for our key seen meanwhile (judged once it resolves). */
  private renewing: {key: string; echoes: RawKV[]} | null = null

  constructor(
    private readonly d: KeeperDeps,
    private readonly p: KeeperPolicy,
  ) {
    this.previousSubnet = p.previousSubnet
  }

  held(): OwnLease | null {
    return this.state.kind === 'held' ? this.state.lease : null
  }

  private apply(e: LeaseEvent): void {
    this.state = transition(this.state, e)
    const s = this.state
    if (s.kind === 'held') {
      const l = s.lease
      this.d.status.set({
        lease: 'held',
        subnet: formatCidr4(l.subnet),
        key: l.key,
        leaseId: l.leaseId,
        reserved: l.reserved,
        expiresAt: l.reserved ? null : new Date(l.expiresAt).toISOString(),
      })
    } else this.d.status.set({lease: s.kind})
  }

  /** Gives the lease up (its key is gone or no longer ours); run() re-acquires. */
  lose(why: string): void {
    if (this.state.kind !== 'held') return
    this.apply({type: 'lost', why})
    this.wake.poke()
  }

  /** flanneld's AcquireLease, with a pick-again on lost races and a backoff on everything else. */
  async acquire(): Promise<boolean> {
    const previous = this.state.kind === 're-acquiring' ? this.state.previous : null
    const got = await withBackoff(
      {clock: this.d.clock, signal: this.d.signal, initialMs: 1000, maxMs: 10_000, wake: this.wake},
      async () => {
        const lease = await this.tryAcquire()
        await this.p.adopt(lease, previous)
        return lease
      },
      (error, attempt, delay) => {
        if (error instanceof ConflictError && attempt < 10) {
          this.d.log('warn', `lost the race for a subnet, picking again (${errorText(error)})`)
          return 'again'
        }
        this.d.status.error(`acquiring a lease: ${errorText(error)}`)
        this.d.log('error', `acquiring a lease failed: ${errorText(error)}; retrying in ${delay / 1000}s`)
      },
    )
    if (!got) return false
    this.previousSubnet = got.subnet
    this.apply({type: 'acquired', lease: got})
    this.p.onHeld(got)
    return true
  }

  private async tryAcquire(): Promise<OwnLease> {
    const {store, clock, log} = this.d
    const {config, effective} = this.p.config()
    const value = this.p.leaseValue()
    const publicIP = this.p.publicIP
    const snap = await store.readNetwork()
    const {leases} = decodeLeases(snap.subnets)
    const plan = planAcquire({
      config,
      effective,
      leases,
      publicIP,
      previous: this.previousSubnet,
      random: this.d.random(),
    })
    for (const l of plan.deleted) {
      log(
        'warn',
        `found lease ${formatCidr4(l.subnet)} for current IP ${formatIPv4(publicIP)} but not compatible with current config, deleting`,
      )
      await store
        .deleteKey(l.key, l.modRevision)
        .catch((e: unknown) => log('warn', `could not delete ${l.key}: ${errorText(e)}`))
    }
    if (plan.kind === 'exhausted') throw new Error('out of subnets')
    const expiresAt = () => clock.now() + SUBNET_TTL_SECONDS * 1000
    if (plan.kind === 'reuse') {
      const r = await store.renewLease(plan.lease.key, value, plan.lease.modRevision, SUBNET_TTL_SECONDS)
      log('info', `found lease ${formatCidr4(plan.lease.subnet)} for current IP ${formatIPv4(publicIP)}, reusing`)
      return {subnet: plan.lease.subnet, key: plan.lease.key, value, ...r, expiresAt: expiresAt(), reserved: false}
    }
    const key = store.subnetKey(plan.subnet)
    const r = await store.createLease(key, value, SUBNET_TTL_SECONDS)
    log(
      'info',
      `${plan.why === 'previous' ? 'reusing previously leased subnet' : `allocated (from ${plan.candidates} free)`} ${formatCidr4(plan.subnet)} to this node`,
      {key},
    )
    return {subnet: plan.subnet, key, value, ...r, expiresAt: expiresAt(), reserved: false}
  }

  /** Renews at expiry minus the margin; re-acquires a lost lease. Returns when the signal aborts. */
  async run(): Promise<void> {
    const {clock, signal} = this.d
    while (!signal.aborted) {
      const s = this.state
      if (s.kind === 'lost') {
        this.apply({type: 'reacquire'})
        continue
      }
      if (s.kind === 'pending' || s.kind === 're-acquiring') {
        if (!(await this.acquire())) return
        continue
      }
      const own = s.lease
      const due = own.reserved ? Number.POSITIVE_INFINITY : own.expiresAt - this.p.renewMarginMs
      const wait = due - clock.now()
      if (wait > 0) {
        await this.wake.sleep(clock, wait, signal)
        continue
      }
      await this.renew(own)
    }
  }

  /** Renews now (a new MAC must be announced), unless the lease is not held. */
  async renewNow(): Promise<void> {
    const own = this.held()
    if (own) await this.renew(own)
  }

  private async renew(own: OwnLease): Promise<void> {
    const {store, clock, log} = this.d
    const value = this.p.leaseValue()
    const renewing = {key: own.key, echoes: [] as RawKV[]}
    this.renewing = renewing
    try {
      const r = await store.renewLease(own.key, value, own.modRevision, SUBNET_TTL_SECONDS)
      this.renewing = null
      this.apply({type: 'renewed', ...r, value, expiresAt: clock.now() + SUBNET_TTL_SECONDS * 1000})
      log('info', `renewed ${own.key} until ${this.d.status.get('expiresAt')}`)
      // Events seen while the renewal was in flight: ours (our lease and value) are dropped, later ones judged.
      for (const kv of renewing.echoes) if (BigInt(kv.modRevision) > BigInt(r.modRevision)) this.onOwnKey(kv)
    } catch (error) {
      this.renewing = null
      if (isFatal(error)) throw error
      if (error instanceof ConflictError) {
        const now = await store.getKey(own.key).catch(() => undefined)
        if (now !== undefined) this.onOwnKey(now, own.key)
        return
      }
      const left = own.expiresAt - clock.now()
      this.d.status.error(`renewing ${own.key}: ${errorText(error)}`)
      log('error', `renewing ${own.key} failed: ${errorText(error)}; ${Math.round(left / 1000)}s of lease left`)
      await this.wake.sleep(clock, Math.max(1000, Math.min(60_000, left / 4)), this.d.signal)
    }
  }

  /** A watch event from the subnets keyspace: only those on our key matter here. */
  onEvent(e: WatchEvent): void {
    const own = this.held()
    if (!own) return
    if (e.type === 'delete') {
      if (e.key === own.key) this.onOwnKey(null, e.key)
      return
    }
    if (e.kv.key !== own.key) return
    // The event of our own renewal can arrive before renewLease resolves: judge it once we know what we wrote.
    if (this.renewing?.key === e.kv.key && judgeOwnKey(own, e.kv, this.p.publicIP) !== 'ours') {
      this.renewing.echoes.push(e.kv)
      return
    }
    this.onOwnKey(e.kv)
  }

  private onOwnKey(kv: RawKV | null, key = kv?.key ?? ''): void {
    const own = this.held()
    if (!own) return
    const verdict = judgeOwnKey(own, kv, this.p.publicIP)
    if (verdict === 'ours') return
    if (verdict === 'deleted') {
      this.d.log('error', `OUR LEASE ${key} WAS DELETED (expired or removed by an operator); re-acquiring`)
      this.lose('deleted')
    } else if (verdict === 'taken-over') {
      const l = decodeLeases([kv!]).leases[0]
      this.d.log(
        'error',
        `${key} was taken over by another node (${l ? formatIPv4(l.attrs.publicIP) : 'unreadable value'}); re-acquiring`,
      )
      this.lose('taken over')
    } else {
      this.apply({type: 'rewritten', kv: kv!})
      this.d.log(
        'warn',
        `${key} was rewritten by another writer${kv!.lease === '0' ? ' and is now a reservation (no renewals needed)' : ''}`,
      )
    }
  }
}
