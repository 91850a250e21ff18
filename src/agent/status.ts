/** What /readyz reports, and the one place the agent's parts record into it. */

import {errorText, type LogFn} from './ports.js'

export interface AgentStatus {
  ready: boolean
  /** The lease keeper's state: pending, held, lost, re-acquiring. */
  lease: string
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
  /** A config change the agent could not follow live (restart it to apply), or null. */
  configRefused: string | null
}

export class StatusBoard {
  private s: Omit<AgentStatus, 'ready'> = {
    lease: 'pending',
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
    configRefused: null,
  }

  constructor(
    private readonly log: LogFn,
    private readonly now: () => number,
  ) {}

  set(patch: Partial<Omit<AgentStatus, 'ready'>>): void {
    this.s = {...this.s, ...patch}
  }

  get<K extends keyof Omit<AgentStatus, 'ready'>>(k: K): Omit<AgentStatus, 'ready'>[K] {
    return this.s[k]
  }

  error(text: string): void {
    this.s.lastError = text
  }

  /** Readiness and log lines after one sync. */
  recordSync(what: string, unit: string, errors: string[], added: number, removed: number, peers: number): void {
    this.s.peers = peers
    this.s.lastSyncAt = new Date(this.now()).toISOString()
    this.s.lastSyncOk = errors.length === 0
    if (errors.length > 0) {
      this.s.lastError = errors.join('; ')
      this.log('error', `${what} had errors: ${errors.join('; ')}`)
    } else if (added + removed > 0) {
      this.log('info', `${what}: ${added} ${unit} added or repaired, ${removed} removed`, {peers})
    }
  }

  recordSyncFailure(what: string, error: unknown): void {
    this.s.lastSyncOk = false
    this.s.lastError = `${what}: ${errorText(error)}`
    this.log('error', `${what} failed: ${errorText(error)}`)
  }

  /** Ready: the lease is held and unexpired (or reserved), subnet.env written, the device up, the last sync good. */
  snapshot(): AgentStatus {
    const s = this.s
    const leaseOk = s.lease === 'held' && (s.reserved || (s.expiresAt !== null && Date.parse(s.expiresAt) > this.now()))
    return {...s, ready: leaseOk && s.subnetEnvWritten && s.deviceUp && s.lastSyncOk}
  }
}
