/**
 * Masquerade and forward rules through iptables-restore (one `--noflush` run per change, as flanneld does) or nft,
 * re-checked against `iptables -S` on every resync. Every iptables/nft call goes through here.
 */

import {DataplaneError, EnvironmentError} from '../core/errors.js'
import {
  deletePayload,
  FWD_CHAIN,
  type IptRule,
  MASQ_CHAIN,
  missingRules,
  restorePayload,
  ruleLine,
  supportsRandomFully,
} from '../core/masq.js'
import {run} from './iproute2.js'

async function tool(
  cmd: string,
  args: string[],
  input?: string,
): Promise<{stdout: string; stderr: string; code: number}> {
  try {
    return await run(cmd, args, input)
  } catch (error) {
    if (error instanceof EnvironmentError && error.code === 'MISSING_TOOL') {
      const pkg = cmd.startsWith('nft') ? 'nftables' : 'iptables'
      throw new EnvironmentError(`${cmd} not found: install it (apt-get install ${pkg})`, 'MISSING_TOOL')
    }
    throw error
  }
}

export async function iptablesRandomFully(): Promise<boolean> {
  const r = await tool('iptables', ['--version'])
  return r.code === 0 && supportsRandomFully(r.stdout)
}

/** `iptables -t TABLE -S` lines, or a clear error when the table cannot be read (module not loaded, no privileges). */
export async function savedRules(table: string): Promise<string> {
  const r = await tool('iptables', ['-w', '-t', table, '-S'])
  if (r.code !== 0)
    throw new DataplaneError(
      `cannot read the iptables ${table} table: ${r.stderr.trim()} (is the ${table === 'nat' ? 'iptable_nat / nf_nat' : 'iptable_filter'} kernel module loaded?)`,
      'IPTABLES_UNAVAILABLE',
    )
  return r.stdout
}

/**
 * Ensures `rules` exist, complete and in order: when any is missing, the chains are created and the whole set is
 * re-applied (existing ones deleted and appended again) in one iptables-restore run. Returns how many were missing.
 */
export async function ensureIptRules(rules: readonly IptRule[]): Promise<number> {
  const tables = [...new Set(rules.map((r) => r.table))]
  const saved = new Map<string, string>()
  for (const t of tables) saved.set(t, await savedRules(t))
  const missing = rules.filter((r) => missingRules([r], saved.get(r.table)!).length > 0)
  if (missing.length === 0) return 0
  for (const t of tables) {
    for (const chain of [MASQ_CHAIN, FWD_CHAIN]) {
      if (!rules.some((r) => r.table === t && (r.chain === chain || r.spec.at(-1) === chain))) continue
      if (!saved.get(t)!.split('\n').includes(`-N ${chain}`)) {
        const r = await tool('iptables', ['-w', '-t', t, '-N', chain])
        if (r.code !== 0 && !/exists/i.test(r.stderr))
          throw new DataplaneError(`iptables -t ${t} -N ${chain}: ${r.stderr.trim()}`)
      }
    }
  }
  const existing = new Set([...saved.values()].flatMap((s) => s.split('\n').map((l) => l.trim())))
  const r = await tool('iptables-restore', ['-w', '--noflush'], restorePayload(rules, existing))
  if (r.code !== 0) throw new DataplaneError(`iptables-restore --noflush: ${r.stderr.trim()}`)
  return missing.length
}

/** Deletes those of `rules` that exist (the set built for an earlier Network or subnet). */
export async function deleteIptRules(rules: readonly IptRule[]): Promise<number> {
  const tables = [...new Set(rules.map((r) => r.table))]
  const existing = new Set<string>()
  for (const t of tables) for (const l of (await savedRules(t)).split('\n')) existing.add(l.trim())
  const payload = deletePayload(rules, existing)
  if (payload === null) return 0
  const r = await tool('iptables-restore', ['-w', '--noflush'], payload)
  if (r.code !== 0) throw new DataplaneError(`iptables-restore --noflush (delete): ${r.stderr.trim()}`)
  return new Set(rules.filter((x) => existing.has(ruleLine(x))).map((x) => `${x.table} ${ruleLine(x)}`)).size
}

/** Empties `chain` in `table` if it exists (flanneld clears FLANNEL-FWD when it sets it up). */
export async function flushChain(table: string, chain: string): Promise<void> {
  const r = await tool('iptables', ['-w', '-t', table, '-F', chain])
  if (r.code !== 0 && !/No chain|does not exist/i.test(r.stderr))
    throw new DataplaneError(`iptables -t ${table} -F ${chain}: ${r.stderr.trim()}`)
}

/** Replaces flannel's nftables table with `script` (from core/masq.ts nftScript). */
export async function applyNft(script: string): Promise<void> {
  const r = await tool('nft', ['-f', '-'], script)
  if (r.code !== 0) throw new DataplaneError(`nft -f: ${r.stderr.trim()}`)
}

/**
 * `nft list table ip flannel-ipv4` (read-only, for doctor --local): its text, '' when the table does not exist,
 * null when nft is missing or the ruleset cannot be read.
 */
export async function nftFlannelTable(): Promise<string | null> {
  const r = await run('nft', ['list', 'table', 'ip', 'flannel-ipv4']).catch(() => null)
  if (r === null) return null
  if (r.code === 0) return r.stdout
  return /No such file or directory/.test(r.stderr) ? '' : null
}

/** Deletes flannel's nftables table, if nft exists and the table does. */
export async function removeNft(): Promise<void> {
  await run('nft', ['delete', 'table', 'ip', 'flannel-ipv4']).catch(() => undefined)
}
