/**
 * The error taxonomy of flannelctl. Every expected failure is a FlannelctlError carrying a stable
 * machine code, the documented process exit code, and an optional hint. Anything else is a bug (exit 1).
 */

export const ExitCode = {
  ok: 0,
  bug: 1,
  usage: 2,
  conflict: 3,
  notFound: 4,
  findings: 5,
  unavailable: 69,
} as const

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode]

export class FlannelctlError extends Error {
  constructor(
    message: string,
    public readonly code: string,
    public readonly exitCode: ExitCodeValue,
    public readonly hint?: string,
    public readonly details?: unknown,
  ) {
    super(message)
    this.name = new.target.name
  }
}

/** Bad flags, bad arguments, invalid input files or configs: exit 2. */
export class UsageError extends FlannelctlError {
  constructor(message: string, code = 'INVALID_INPUT', hint?: string, details?: unknown) {
    super(message, code, ExitCode.usage, hint, details)
  }
}

/** A compare-and-swap lost its race, or the thing to create already exists: exit 3. */
export class ConflictError extends FlannelctlError {
  constructor(message: string, code = 'CONFLICT', hint?: string, details?: unknown) {
    super(message, code, ExitCode.conflict, hint, details)
  }
}

/** The config, the lease or the file asked for does not exist: exit 4. */
export class NotFoundError extends FlannelctlError {
  constructor(message: string, code = 'NOT_FOUND', hint?: string, details?: unknown) {
    super(message, code, ExitCode.notFound, hint, details)
  }
}

/** etcd cannot be reached, or refused our credentials or certificates: exit 69. */
export class UnavailableError extends FlannelctlError {
  constructor(message: string, code = 'ETCD_UNAVAILABLE', hint?: string, details?: unknown) {
    super(message, code, ExitCode.unavailable, hint, details)
  }
}
