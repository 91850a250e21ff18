/**
 * Suggested commands (doctor hints, follow-ups, error hints), built as argv arrays and rendered as POSIX shell text in
 * which every argument that is not a plain word is single-quoted. Keys and values come from etcd and are untrusted:
 * a key named `x; touch PWNED #` or holding `$(...)` stays one argument. Each suggestion carries the connection flags
 * the user ran with (endpoints, prefix, TLS files, keyspace), so pasting it acts on the same cluster and keyspace.
 * Credentials are never carried: a hint is printed, logged and pasted; `--user`/`--password` stay in the environment.
 * Pure.
 */

/** One suggested command: exact argv (argv[0] is the program), environment assignments, and its shell text. */
export interface Suggestion {
  readonly argv: string[]
  readonly env?: Record<string, string>
  readonly shell: string
}

/** The connection the user ran with, as the flags to repeat in suggested commands. */
export interface HintContext {
  readonly flannelctl: readonly string[]
  readonly etcdctl: readonly string[]
  readonly etcdctlV2: readonly string[]
}

export const NO_HINT_CONTEXT: HintContext = {flannelctl: [], etcdctl: [], etcdctlV2: []}

/** Settings the user ran with; a value is given only when it differs from the default (or was set explicitly). */
export interface HintSettings {
  endpoints?: string
  prefix?: string
  cacert?: string
  cert?: string
  key?: string
  /** `v2` or `v3` when the user chose a keyspace; `auto` and undefined are not repeated. */
  etcdApi?: string
}

export function hintContext(s: HintSettings): HintContext {
  const flannelctl: string[] = []
  const etcdctl: string[] = []
  const etcdctlV2: string[] = []
  if (s.endpoints !== undefined) {
    flannelctl.push('--endpoints', s.endpoints)
    etcdctl.push('--endpoints', s.endpoints)
    etcdctlV2.push('--endpoints', s.endpoints)
  }
  if (s.prefix !== undefined) flannelctl.push('--etcd-prefix', s.prefix)
  for (const [name, v2Name, value] of [
    ['cacert', 'ca-file', s.cacert],
    ['cert', 'cert-file', s.cert],
    ['key', 'key-file', s.key],
  ] as const) {
    if (value === undefined) continue
    flannelctl.push(`--${name}`, value)
    etcdctl.push(`--${name}`, value)
    etcdctlV2.push(`--${v2Name}`, value)
  }
  if (s.etcdApi === 'v2' || s.etcdApi === 'v3') flannelctl.push('--etcd-api', s.etcdApi)
  return {flannelctl, etcdctl, etcdctlV2}
}

const PLAIN = /^[A-Za-z0-9_@%+=:,./-]+$/

/** One argument as POSIX shell text: plain words as they are, anything else in single quotes (`'` as `'\''`). */
export function shellQuote(arg: string): string {
  if (PLAIN.test(arg)) return arg
  return `'${arg.replaceAll("'", `'\\''`)}'`
}

/** argv (and environment assignments) as one line of POSIX shell. */
export function shellLine(argv: readonly string[], env: Record<string, string> = {}): string {
  const assignments = Object.entries(env).map(([k, v]) => `${k}=${shellQuote(v)}`)
  return [...assignments, ...argv.map(shellQuote)].join(' ')
}

/** Whether an argument can be passed on a command line at all (no shell and no exec passes a NUL byte). */
function passable(args: readonly string[]): boolean {
  return args.every((a) => !a.includes('\0'))
}

/** Any command (`ip`, `bridge`, `sysctl`, ...), quoted; null when an argument holds a NUL byte. */
export function command(argv: readonly string[], env?: Record<string, string>): Suggestion | null {
  if (!passable(argv)) return null
  return env === undefined
    ? {argv: [...argv], shell: shellLine(argv)}
    : {argv: [...argv], env: {...env}, shell: shellLine(argv, env)}
}

/** `flannelctl ARGS` with the user's connection flags. */
export function flannelctl(ctx: HintContext, args: readonly string[]): Suggestion {
  const argv = ['flannelctl', ...args, ...ctx.flannelctl]
  return {argv, shell: shellLine(argv)}
}

/**
 * `etcdctl SUBCOMMAND ... KEYS` with the user's endpoints and TLS files; `api: 2` for etcd's v2 keyspace
 * (`ETCDCTL_API=2`, v2 flag names). `--` is put before positional arguments that look like flags. Null when an
 * argument holds a NUL byte (the caller says so in words instead).
 */
export function etcdctl(
  ctx: HintContext,
  subcommand: readonly string[],
  positional: readonly string[],
  o: {api?: 2} = {},
): Suggestion | null {
  const flags = o.api === 2 ? ctx.etcdctlV2 : ctx.etcdctl
  const rest = positional.some((p) => p.startsWith('-')) ? ['--', ...positional] : positional
  const argv = ['etcdctl', ...flags, ...subcommand, ...rest]
  return command(argv, o.api === 2 ? {ETCDCTL_API: '2'} : undefined)
}

/** The shell text of suggestions joined by ` && ` (each still a complete command). */
export function andThen(...s: Suggestion[]): string {
  return s.map((x) => x.shell).join(' && ')
}
