/**
 * The etcd3 client (with grpc-js and protobufjs under it) for what the lean read client (v3-lean.ts) does not do:
 * writes, watches and leases. EtcdStore loads this module on its first such call, so read-only commands never pay
 * etcd3's ~250 ms of start-up.
 */

import {ExponentialBackoff, handleWhen, type IBackoff, isBrokenCircuitError, noop, retry} from 'cockatiel'
import {
  EtcdAuthenticationFailedError,
  EtcdError,
  EtcdLeaseInvalidError,
  EtcdPermissionDeniedError,
  Etcd3,
  GRPCDeadlineExceededError,
  GRPCGenericError,
  GRPCOutOfRangeError,
  GRPCUnavailableError,
  isRecoverableError,
  type IOptions,
} from 'etcd3'

import type {V3ErrorKind} from './etcd-store.js'

export interface Etcd3Settings {
  readonly endpoints: readonly string[]
  readonly ca?: Buffer
  readonly cert?: Buffer
  readonly key?: Buffer
  readonly user?: string
  readonly password?: string
  readonly dialTimeoutMs: number
  readonly commandTimeoutMs: number
}

export function createEtcd3(o: Etcd3Settings): Etcd3 {
  const options: IOptions = {
    hosts: [...o.endpoints],
    // The etcd3 client ignores dialTimeout, so every unary call carries its own deadline.
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : {deadline: Date.now() + o.commandTimeoutMs}),
    // Watch reconnects back off from 100 ms to at most 2 s (the client's default goes up to 30 s). The option is
    // typed as a backoff but used as a factory: the cast is the library's documented workaround.
    faultHandling: {
      // No circuit breaker per host: etcd3's default opens for 5 s after three failures and then fails every call
      // at once with BrokenCircuitError, under our own --dial-timeout/--command-timeout deadlines and the agent's
      // backoff (which already decide when to give up and when to try again). What a host does is what we report.
      host: () => noop,
      // One attempt per endpoint: a call that finds an endpoint unavailable goes on to the next one (etcd3 picks a
      // new host for every retry), immediately, within the call's deadline; with one endpoint there is no retry.
      // etcd3's default is three attempts on whichever hosts, stacked under our deadlines.
      global:
        o.endpoints.length > 1 ? retry(handleWhen(isRecoverableError), {maxAttempts: o.endpoints.length - 1}) : noop,
      watchBackoff: new ExponentialBackoff({initialDelay: 100, maxDelay: 2000}) as unknown as IBackoff<unknown>,
    },
    grpcOptions: {
      // One range over 65,535 leases is ~12 MB, over gRPC's 4 MB default.
      'grpc.max_receive_message_length': 1 << 30,
      'grpc.max_send_message_length': 1 << 30,
      // Notice a silently dead connection (a partition without a reset) within ~15 s, not minutes; etcd accepts pings
      // every 5 s (--grpc-keepalive-min-time).
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
    },
  }
  if (o.endpoints.some((e) => e.startsWith('https://'))) {
    // grpc-js passes the endpoint's host as the TLS servername even when it is an IP address, so Node prints a
    // DEP0123 DeprecationWarning on every https://127.0.0.1:2379-style connection. Deprecation warnings are for
    // developers, not for operators reading this CLI's stderr.
    process.noDeprecation = true
    options.credentials = {
      rootCertificate: o.ca ?? (undefined as unknown as Buffer),
      certChain: o.cert,
      privateKey: o.key,
    }
  }
  if (o.user) {
    options.auth = {
      username: o.user,
      password: o.password ?? '',
      callOptions: () => ({deadline: Date.now() + o.dialTimeoutMs}),
    }
  }
  return new Etcd3(options)
}

/**
 * The watches open on each client (store/watch.ts), those still being set up included: closing the client ends them
 * first. A watch whose creation is still pending when its client closes would otherwise take the closed channel for a
 * lost connection and retry for ever, keeping the process alive (`leases watch` hung on a Ctrl-C during set-up).
 */
const openWatches = new WeakMap<Etcd3, Set<() => void>>()

/** Registers `stop` as ending a watch on `client`; returns what unregisters it. */
export function trackWatch(client: Etcd3, stop: () => void): () => void {
  let set = openWatches.get(client)
  if (!set) openWatches.set(client, (set = new Set()))
  set.add(stop)
  return () => set.delete(stop)
}

export function closeEtcd3(client: Etcd3): void {
  for (const stop of openWatches.get(client) ?? []) stop()
  openWatches.delete(client)
  // etcd3 defers closing a channel that is still connecting by up to 1 s (its workaround for grpc-node#1487), which
  // keeps the process alive for that second after giving up on an endpoint that accepts TCP but never answers.
  // Close those channels now: call() has already abandoned any request still pending on them. This reads etcd3
  // 1.1.2's private pool; test/store/etcd3-pin.test.ts fails on an upgrade so that it is checked again.
  const pool = (
    client as unknown as {pool?: {hosts?: Array<{cachedServices?: Record<string, {close(): void} | undefined>}>}}
  ).pool
  for (const host of pool?.hosts ?? []) {
    for (const service of Object.values(host.cachedServices ?? {})) service?.close()
    host.cachedServices = Object.create(null) as Record<string, undefined>
  }
  client.close()
}

/** What kind of failure an error raised by etcd3 is, for EtcdStore.mapError; null when it is not etcd3's. */
export function etcd3ErrorKind(e: unknown): V3ErrorKind | null {
  if (e instanceof EtcdAuthenticationFailedError) return 'auth-failed'
  if (e instanceof EtcdPermissionDeniedError) return 'permission-denied'
  if (e instanceof GRPCOutOfRangeError) return 'out-of-range'
  if (e instanceof GRPCUnavailableError || e instanceof GRPCDeadlineExceededError || isBrokenCircuitError(e))
    return 'unavailable'
  if (e instanceof GRPCGenericError || e instanceof EtcdError || e instanceof EtcdLeaseInvalidError) return 'etcd'
  return null
}
