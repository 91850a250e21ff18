/**
 * flanneld's masquerade and forward rules (pkg/trafficmngr/iptables, flannel-semantics §6.4), as data: the rules,
 * their `iptables -S` form (to compare with the kernel), and the iptables-restore payload that installs them in
 * order. The nftables variant follows pkg/trafficmngr/nftables. Pure.
 */

import {type Cidr4, formatCidr4} from './ipv4.js'

export interface IptRule {
  readonly table: 'nat' | 'filter'
  readonly chain: string
  readonly spec: readonly string[]
}

export const MASQ_CHAIN = 'FLANNEL-POSTRTG'
export const FWD_CHAIN = 'FLANNEL-FWD'
/** kube-proxy's masquerade mark (trafficmngr.KubeProxyMark). */
export const KUBE_PROXY_MARK = '0x4000/0x4000'

/** flanneld's masqRules for Network N and the node's subnet S, in order. */
export function masqRules(network: Cidr4, subnet: Cidr4, randomFully: boolean): IptRule[] {
  const n = formatCidr4(network)
  const s = formatCidr4(subnet)
  const c = ['-m', 'comment', '--comment', 'flanneld masq']
  const masq = randomFully ? ['-j', 'MASQUERADE', '--random-fully'] : ['-j', 'MASQUERADE']
  const r = (chain: string, spec: string[]): IptRule => ({table: 'nat', chain, spec})
  return [
    r('POSTROUTING', [...c, '-j', MASQ_CHAIN]),
    r(MASQ_CHAIN, ['-m', 'mark', '--mark', KUBE_PROXY_MARK, ...c, '-j', 'RETURN']),
    r(MASQ_CHAIN, ['-s', s, '-d', n, ...c, '-j', 'RETURN']),
    r(MASQ_CHAIN, ['-s', n, '-d', s, ...c, '-j', 'RETURN']),
    r(MASQ_CHAIN, ['!', '-s', n, '-d', s, ...c, '-j', 'RETURN']),
    r(MASQ_CHAIN, ['-s', n, '!', '-d', '224.0.0.0/4', ...c, ...masq]),
    r(MASQ_CHAIN, ['!', '-s', n, '-d', n, ...c, ...masq]),
  ]
}

/** flanneld's forwardRules (--iptables-forward-rules, on by default). */
export function forwardRules(network: Cidr4): IptRule[] {
  const n = formatCidr4(network)
  const c = ['-m', 'comment', '--comment', 'flanneld forward']
  return [
    {table: 'filter', chain: 'FORWARD', spec: [...c, '-j', FWD_CHAIN]},
    {table: 'filter', chain: FWD_CHAIN, spec: ['-s', n, ...c, '-j', 'ACCEPT']},
    {table: 'filter', chain: FWD_CHAIN, spec: ['-d', n, ...c, '-j', 'ACCEPT']},
  ]
}

function quoteSpec(spec: readonly string[]): string {
  return spec.map((x, i) => (i > 0 && spec[i - 1] === '--comment' ? `"${x}"` : x)).join(' ')
}

/** The line `iptables -t TABLE -S` prints for a rule. */
export function ruleLine(r: IptRule): string {
  return `-A ${r.chain} ${quoteSpec(r.spec)}`
}

/** Which rules are missing from `iptables -t TABLE -S` output. */
export function missingRules(rules: readonly IptRule[], saved: string): IptRule[] {
  const lines = new Set(saved.split('\n').map((l) => l.trim()))
  return rules.filter((r) => !lines.has(ruleLine(r)))
}

/**
 * flanneld's ipTablesCleanAndBuild + buildIPTablesRestorePayload: for each rule, `-D` it first if it exists, then
 * `-A` it, so the set ends up complete and in order; one `*table ... COMMIT` block per table, for
 * `iptables-restore --noflush`.
 */
export function restorePayload(rules: readonly IptRule[], existing: ReadonlySet<string>): string {
  const tables = new Map<string, string[]>()
  for (const r of rules) {
    const lines = tables.get(r.table) ?? []
    const line = ruleLine(r)
    if (existing.has(line)) lines.push(`-D ${r.chain} ${quoteSpec(r.spec)}`)
    lines.push(line)
    tables.set(r.table, lines)
  }
  let out = ''
  for (const [table, lines] of tables) out += `*${table}\n${lines.join('\n')}\n` + 'COMMIT\n'
  return out
}

/**
 * The payload that deletes those of `rules` that exist (an old rule set, after the Network or subnet changed). A rule
 * listed twice (the sets with and without --random-fully share five) is deleted once: a second `-D` of the same rule
 * fails, and with it the whole iptables-restore run.
 */
export function deletePayload(rules: readonly IptRule[], existing: ReadonlySet<string>): string | null {
  const tables = new Map<string, string[]>()
  const seen = new Set<string>()
  for (const r of rules) {
    const id = `${r.table} ${ruleLine(r)}`
    if (!existing.has(ruleLine(r)) || seen.has(id)) continue
    seen.add(id)
    const lines = tables.get(r.table) ?? []
    lines.push(`-D ${r.chain} ${quoteSpec(r.spec)}`)
    tables.set(r.table, lines)
  }
  if (tables.size === 0) return null
  let out = ''
  for (const [table, lines] of tables) out += `*${table}\n${lines.join('\n')}\n` + 'COMMIT\n'
  return out
}

/** iptables supports --random-fully from 1.6.2 (what go-iptables' HasRandomFully checks). */
export function supportsRandomFully(versionOutput: string): boolean {
  const m = /v(\d+)\.(\d+)\.(\d+)/.exec(versionOutput)
  if (!m) return false
  const [a, b, c] = [Number(m[1]), Number(m[2]), Number(m[3])]
  return a > 1 || (a === 1 && (b > 6 || (b === 6 && c >= 2)))
}

/**
 * flanneld's nftables rule set (EnableNFTables: true): table `ip flannel-ipv4` with chains postrtg and forward,
 * flushed and rewritten, as one `nft -f` script.
 */
export function nftScript(network: Cidr4, subnet: Cidr4, ipMasq: boolean, forward: boolean): string {
  const n = formatCidr4(network)
  const s = formatCidr4(subnet)
  const lines = ['table ip flannel-ipv4 {}', 'delete table ip flannel-ipv4', 'table ip flannel-ipv4 {']
  if (ipMasq) {
    lines.push(
      '  chain postrtg {',
      '    type nat hook postrouting priority srcnat; policy accept;',
      '    meta mark 0x00004000 return',
      `    ip saddr ${s} ip daddr ${n} return`,
      `    ip saddr ${n} ip daddr ${s} return`,
      `    ip saddr != ${s} ip daddr ${n} return`,
      `    ip saddr ${n} ip daddr != 224.0.0.0/4 masquerade fully-random`,
      `    ip saddr != ${n} ip daddr ${n} masquerade fully-random`,
      '  }',
    )
  }
  if (forward) {
    lines.push(
      '  chain forward {',
      '    type filter hook forward priority filter; policy accept;',
      `    ip saddr ${n} accept`,
      `    ip daddr ${n} accept`,
      '  }',
    )
  }
  lines.push('}')
  return lines.join('\n') + '\n'
}
