/**
 * The error taxonomy of flannelctl. Every expected failure is a FlannelctlError carrying a stable machine code, the
 * documented process exit code, an optional hint, and whether it is `recoverable`. Anything else is a bug (exit 1).
 *
 * Two questions are kept apart (as etcd3's RecoverableError does):
 * - the exit code says what kind of failure ended a command (usage, conflict, not found, etcd, environment);
 * - `recoverable` says whether a long-running loop (the agent) may log it and try again later. A full disk while
 *   writing subnet.env is recoverable (flanneld logs and carries on); a missing `ip` binary or CAP_NET_ADMIN is not.
 *
 * Exit codes: 0 ok, 1 bug, 2 usage or invalid input, 3 conflict, 4 not found, 5 doctor found errors, 69 etcd
 * unreachable (sysexits EX_UNAVAILABLE), 71 the environment failed us: a file that cannot be written, a tool that is
 * missing, a capability we lack, an address we cannot listen on, a dataplane command the kernel refused (sysexits
 * EX_OSERR), 6 declined at the confirmation prompt (nothing written), 130 cancelled (Ctrl-C or Ctrl-D at a prompt,
 * nothing written), 124 `leases watch --max-events N --timeout T` saw fewer than N events within T (as timeout(1)).
 *
 * `leases watch` ends normally with 0: after --max-events, at --timeout without --max-events, on SIGINT (Ctrl-C, its
 * usual end) or SIGTERM, and when stdout's reader goes away (`| head`). A watch is not a prompt: 130 is not used.
 */

export const ExitCode = {
  ok: 0,
  bug: 1,
  usage: 2,
  conflict: 3,
  notFound: 4,
  findings: 5,
  /** A confirmation prompt was answered no (`n`, Enter): nothing written; `"declined": true` in --json. */
  declined: 6,
  unavailable: 69,
  environment: 71,
  /** leases watch --max-events N --timeout T: fewer than N events came within T. */
  timedOut: 124,
  /** Ctrl-C or Ctrl-D at a prompt: nothing written. */
  cancelled: 130,
} as const

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode]

export class FlannelctlError extends Error {
  /** Whether a long-running loop may log this and retry (true), or must stop (false). Independent of the exit code. */
  public readonly recoverable: boolean

  constructor(
    message: string,
    public readonly code: string,
    public readonly exitCode: ExitCodeValue,
    public readonly hint?: string,
    public readonly details?: unknown,
    recoverable = false,
  ) {
    super(message)
    this.name = new.target.name
    this.recoverable = recoverable
  }
}

/**
 * Whether a loop must stop on `error`: a FlannelctlError that is not recoverable. Anything else (etcd errors, a
 * failed `ip` run, a lost race) is logged and retried by the agent.
 */
export function isFatal(error: unknown): boolean {
  return error instanceof FlannelctlError && !error.recoverable
}

/** Bad flags, bad arguments, invalid input files or configs: exit 2. Never recoverable. */
export class UsageError extends FlannelctlError {
  constructor(message: string, code = 'INVALID_INPUT', hint?: string, details?: unknown) {
    super(message, code, ExitCode.usage, hint, details, false)
  }
}

/** A compare-and-swap lost its race, or the thing to create already exists: exit 3. Recoverable (read and retry). */
export class ConflictError extends FlannelctlError {
  constructor(message: string, code = 'CONFLICT', hint?: string, details?: unknown) {
    super(message, code, ExitCode.conflict, hint, details, true)
  }
}

/** The config, the lease or the file asked for does not exist: exit 4. */
export class NotFoundError extends FlannelctlError {
  constructor(message: string, code = 'NOT_FOUND', hint?: string, details?: unknown) {
    super(message, code, ExitCode.notFound, hint, details, true)
  }
}

/** etcd cannot be reached, or refused our credentials or certificates: exit 69. Recoverable (etcd may come back). */
export class UnavailableError extends FlannelctlError {
  constructor(message: string, code = 'ETCD_UNAVAILABLE', hint?: string, details?: unknown) {
    super(message, code, ExitCode.unavailable, hint, details, true)
  }
}

export interface EnvironmentErrorOptions {
  hint?: string
  details?: unknown
  /** Default false: a missing tool or capability does not come back by retrying. */
  recoverable?: boolean
}

/**
 * The machine failed us, not the user: a file that cannot be written (ENOSPC, EROFS, EACCES), a missing tool, a
 * missing capability, an address we cannot listen on. Exit 71 (sysexits EX_OSERR).
 */
export class EnvironmentError extends FlannelctlError {
  constructor(message: string, code: string, o: EnvironmentErrorOptions = {}) {
    super(message, code, ExitCode.environment, o.hint, o.details, o.recoverable ?? false)
  }
}

/**
 * An `ip`, `bridge`, `iptables` or `nft` run the kernel refused, or kernel state we could not read. Exit 71 like any
 * environment failure, recoverable by default (the agent retries every resync); never reported as a bug.
 */
export class DataplaneError extends EnvironmentError {
  constructor(message: string, code = 'DATAPLANE_FAILED', o: EnvironmentErrorOptions = {}) {
    super(message, code, {...o, recoverable: o.recoverable ?? true})
  }
}

/** The user cancelled at a prompt (Ctrl-C, Ctrl-D): nothing was written. Exit 130. */
export class CancelledError extends FlannelctlError {
  constructor(message = 'cancelled, nothing written') {
    super(message, 'CANCELLED', ExitCode.cancelled, undefined, undefined, false)
  }
}
