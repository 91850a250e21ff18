/**
 * A backend programs how this node reaches the others: what it publishes in its lease, what it sets up before the
 * lease, and how it turns the peers' leases into kernel entries. The agent's shared code never asks which backend
 * it runs; a new backend is a new file here plus one line in index.ts.
 */

import type {EffectiveConfig} from '../../core/config.js'
import type {InterfaceChoice} from '../../core/iface.js'
import type {Cidr4} from '../../core/ipv4.js'
import type {RawKV} from '../../core/leases.js'
import type {AgentDataplane, Clock, LogFn} from '../ports.js'
import type {StatusBoard} from '../status.js'

export interface BackendContext {
  readonly dataplane: AgentDataplane
  readonly iface: InterfaceChoice
  /** The config in force (its Network can change live). */
  effective(): EffectiveConfig
  readonly log: LogFn
  readonly status: StatusBoard
  readonly clock: Clock
  readonly signal: AbortSignal
}

export type RepairOutcome =
  /** Nothing to repair. */
  | 'ok'
  /** Repaired: the lease's addresses and files must be applied again. */
  | 'repaired'
  /** Repaired, and the published value changed (a new MAC): renew now, then apply again. */
  | 'announce'

export interface Backend {
  /** Before the lease: checks and devices. Throws a fatal error for a setup it cannot run; false when aborted. */
  setup(): Promise<boolean>
  /** The lease value this node publishes (flanneld's bytes). */
  leaseValue(): string
  /** The lease is ours: addresses on the device. Returns the MTU to write into subnet.env. */
  onLease(subnet: Cidr4): Promise<number>
  /** Programs the peers. `full` reads the kernel; otherwise plans against what the last sync programmed. */
  sync(own: Cidr4, kvs: readonly RawKV[], full: boolean): Promise<void>
  /** Every resync: checks (and repairs) what the backend owns. */
  repair(own: Cidr4): Promise<RepairOutcome>
}

export type BackendFactory = (ctx: BackendContext) => Backend
