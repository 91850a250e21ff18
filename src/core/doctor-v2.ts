/**
 * doctor's keyspace checks: one etcd server, two keyspaces invisible to each other (docs/flannel.md §1.3).
 * flannel <= 0.17 kept its config and leases in v2, flannel >= 0.18 reads only v3, and etcd 3.6 drops the v2 store.
 * Pure: both snapshots are passed in (the v2 one read over the HTTP API).
 */

import type {Finding} from './doctor.js'
import type {KeyLayout} from './keys.js'
import type {NetworkSnapshot} from './leases.js'
import {sameLease, v2DeleteCommand} from './migrate.js'
import {etcdctl, type HintContext, shellLine, type Suggestion} from './hints.js'
import {toV2Key} from './v2-keyspace.js'

/** The IDs of these checks (all in the Datastore area). */
/** @public (doctor --only/--skip validate against it) */
export const KEYSPACE_CHECKS = ['config-only-in-v2', 'config-in-both', 'v2-store-going-away'] as const

export interface KeyspaceCheckInput {
  readonly layout: KeyLayout
  /** The v3 keyspace under the prefix. */
  readonly v3: NetworkSnapshot
  /** The v2 keyspace under the prefix (null when etcd does not serve v2: nothing to check). */
  readonly v2: NetworkSnapshot | null
  /**
   * The flanneld version the nodes run, when known (`0.11.0`, `v0.17.1`). Unknown means a current one: flannelctl
   * follows flanneld >= 0.18, which reads only v3.
   */
  readonly flanneldVersion?: string | null
  /** Remaining TTLs of the v2 keys (synthetic lease IDs), when read: expired ones are not counted as missing from v3. */
  readonly v2Ttls?: ReadonlyMap<string, number> | null
  /**
   * The connection flags of an `ETCDCTL_API=2 etcdctl` command against this etcd (EtcdV2Store.etcdctlFlags), for the
   * exact delete command; '' for the defaults.
   */
  readonly etcdctlV2Flags?: string
  /** False when v2 auth let only flanneld's reads through: other keys under the prefix may exist unseen. */
  readonly v2SawWholePrefix?: boolean
}

/**
 * Whether a flanneld version reads etcd's v3 keyspace (>= 0.18.0); null when the text is not a version.
 * `0.18`, `v0.18.0`, `0.18.0-rc1` and `1.0` are all >= 0.18.
 */
export function flanneldReadsV3(version: string): boolean | null {
  const m = /^v?(\d+)\.(\d+)(?:\.\d+)?(?:[-+].*)?$/.exec(version.trim())
  if (!m) return null
  const major = Number(m[1])
  const minor = Number(m[2])
  return major > 0 || minor >= 18
}

function migrateCommand(layout: KeyLayout): string {
  const prefix = layout.prefix === '/coreos.com/network' ? '' : ` --etcd-prefix ${layout.prefix}`
  return `flannelctl migrate v2-to-v3${prefix}`
}

function keyCount(s: NetworkSnapshot): number {
  return (s.config ? 1 : 0) + s.subnets.length + s.foreign.length
}

/**
 * True when v3 holds every flannel key of v2: the config with the same value, each subnet key as the same lease
 * (sameLease: flanneld >= 0.18 rewrites a v0.11 lease in its own bytes when it renews it). v2 keys past their
 * expiration (dying leases of nodes that moved to v3) do not count.
 */
function v3HoldsV2(v3: NetworkSnapshot, v2: NetworkSnapshot, v2Ttls: ReadonlyMap<string, number> | null): boolean {
  const have = new Map<string, string>()
  for (const kv of v3.subnets) have.set(kv.key, kv.value)
  if (v2.config && v3.config?.value !== v2.config.value) return false
  return v2.subnets.every((kv) => {
    if (kv.lease !== '0' && v2Ttls !== null && (v2Ttls.get(kv.lease) ?? -1) <= 0) return true
    const now = have.get(kv.key)
    return now !== undefined && sameLease(kv.value, now)
  })
}

/** config-only-in-v2, config-in-both and v2-store-going-away, in that order. */
export function keyspaceChecks(input: KeyspaceCheckInput): Finding[] {
  const {layout, v3, v2} = input
  if (v2 === null) return []
  const out: Finding[] = []
  const key = layout.config
  const version = input.flanneldVersion ?? null
  const readsV3 = version === null ? true : (flanneldReadsV3(version) ?? true)
  if (v2.config && !v3.config) {
    out.push({
      id: 'config-only-in-v2',
      severity: readsV3 ? 'error' : 'warning',
      subjects: [key],
      message: readsV3
        ? `the network config exists only in etcd's v2 keyspace (${key}, written by flannel <= 0.17): flanneld >= 0.18 reads only v3, logs "flannel config not found in etcd store. Did you create your config using etcdv3 API?" and never starts`
        : `the network config exists only in etcd's v2 keyspace (${key}): flanneld ${version} reads it, but flanneld >= 0.18 reads only v3 and will not find it after an upgrade`,
      hint: `copy the config and every lease to v3 (v2 is kept): ${migrateCommand(layout)} --dry-run, then without --dry-run`,
    })
  }
  if (v2.config && v3.config && v2.config.value !== v3.config.value) {
    out.push({
      id: 'config-in-both',
      severity: 'warning',
      subjects: [key],
      message: `${key} differs between etcd's keyspaces: v3 (read by flanneld >= 0.18) holds ${v3.config.value}, v2 (read by flanneld <= 0.17) holds ${v2.config.value}; nodes on either side of the 0.18 upgrade run different networks`,
      hint: `decide which one is right: fix v3 (flannelctl network show --etcd-api v3), then remove the v2 copy once no flanneld <= 0.17 is left (ETCDCTL_API=2 etcdctl rm ${key.startsWith('/') ? key : '/' + key})`,
    })
  }
  const n = keyCount(v2)
  if (n > 0) {
    const copied = v3HoldsV2(v3, v2, input.v2Ttls ?? null)
    const rm = v2DeleteCommand(
      layout,
      v2.foreign.length > 0 || input.v2SawWholePrefix === false,
      input.etcdctlV2Flags ?? '',
    )
    out.push({
      id: 'v2-store-going-away',
      severity: 'info',
      subjects: [layout.prefix],
      message: `etcd's v2 keyspace holds ${n} key(s) under ${layout.prefix}: etcd 3.6 removes the v2 store (and --enable-v2), so they are gone after that upgrade${copied ? '; v3 already holds the same config and every live lease (the same subnet, PublicIP, backend and VtepMAC): the migration is done, do not run it again' : ''}`,
      hint: copied
        ? `once no flanneld <= 0.17 is left, delete the v2 copy: ${rm}`
        : `copy them to v3 before upgrading etcd: ${migrateCommand(layout)} --dry-run`,
    })
  }
  return out
}

export interface V2FindingContext {
  /** The connection flags to repeat in suggested commands (the v2 ones are used). */
  readonly hints: HintContext
  /** The flanneld version the nodes run, when known; a cluster read from v2 runs <= 0.17 unless told otherwise. */
  readonly flanneldVersion?: string | null
}

/** `flannelctl ...` acting on the v2 keyspace: `--etcd-api v2` instead of whatever was given. */
function onV2(c: Suggestion): Suggestion {
  if (c.argv[0] !== 'flannelctl') return c
  const argv: string[] = []
  for (let i = 0; i < c.argv.length; i++) {
    if (c.argv[i] === '--etcd-api') {
      i++
      continue
    }
    argv.push(c.argv[i]!)
  }
  argv.push('--etcd-api', 'v2')
  return {argv, shell: shellLine(argv)}
}

/**
 * The cluster findings of a snapshot of etcd's v2 keyspace, with commands that act on that keyspace: flannelctl
 * commands carry `--etcd-api v2`, etcdctl commands are v2 ones (`ETCDCTL_API=2 etcdctl ... rm`, never a v3 `etcdctl
 * del`, which deletes nothing there and prints 0). A malformed lease also says what it does to flanneld <= 0.17: its
 * watch of the subnets directory (watchSubnets -> parseSubnetWatchResponse) fails on that event and retries it every
 * second, so leases added afterwards get no route, until flanneld restarts, even after the key is deleted.
 */
export function v2Findings(findings: readonly Finding[], ctx: V2FindingContext): Finding[] {
  const version = ctx.flanneldVersion ?? null
  const legacyReaders = version === null || flanneldReadsV3(version) !== true
  return findings.map((f) => {
    const key = f.subjects[0] ?? ''
    if (f.id === 'malformed-lease' || f.id === 'misaligned-lease') {
      const get = etcdctl(ctx.hints, ['get'], [toV2Key(key)], {api: 2})
      const rm = etcdctl(ctx.hints, ['rm'], [toV2Key(key)], {api: 2})
      if (!get || !rm) return f
      const jam = f.id === 'malformed-lease' && legacyReaders
      return {
        ...f,
        message: jam
          ? `${f.message}. Worse for flanneld <= 0.17 (which reads this v2 keyspace): if the key was written while flanneld ran, every node's lease watch fails on it and retries it every second, so leases added afterwards get no route, until flanneld is restarted, even after the key is deleted`
          : f.message,
        hint: jam
          ? `delete it in the v2 keyspace, then restart flanneld on every node (one at a time): ${get.shell}, then ${rm.shell}`
          : `delete it in the v2 keyspace: ${get.shell}, then ${rm.shell}`,
        commands: [get, rm],
      }
    }
    let hint = f.hint.replace(
      '(etcdctl get --rev)',
      "(etcd's v2 store keeps no history: put the previous value back with ETCDCTL_API=2 etcdctl set KEY VALUE)",
    )
    if (!f.commands) return hint === f.hint ? f : {...f, hint}
    const commands = f.commands.map(onV2)
    f.commands.forEach((c, i) => (hint = hint.replace(c.shell, commands[i]!.shell)))
    return {...f, hint, commands}
  })
}
