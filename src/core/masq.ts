/**
 * flanneld's masquerade and forward rules (pkg/trafficmngr/iptables, docs/flannel.md §6.4), as data: the rules,
 * their `iptables -S` form (to compare with the kernel), and the iptables-restore payload that installs them in
 * order. The nftables variant follows pkg/trafficmngr/nftables. Pure.
 */

import {type Cidr4, formatCidr4} from './ipv4.js'
import {compareRelease, parseRelease, type Release, type ReleaseRange} from './release.js'

export interface IptRule {
  readonly table: 'nat' | 'filter'
  readonly chain: string
  readonly spec: readonly string[]
}

export const MASQ_CHAIN = 'FLANNEL-POSTRTG'
export const FWD_CHAIN = 'FLANNEL-FWD'
/** kube-proxy's masquerade mark (trafficmngr.KubeProxyMark). */
export const KUBE_PROXY_MARK = '0x4000/0x4000'

/** flanneld's masqRules for Network N and the node's subnet S, in order (v0.21.0 and later; see MASQ_RULE_SETS). */
export function masqRules(network: Cidr4, subnet: Cidr4, randomFully: boolean): IptRule[] {
  return MASQ_RULE_SETS.at(-1)!.rules(network, subnet, randomFully)
}

/**
 * One release range's IPv4 masquerade rules, as flannel's source of that range builds them (network/ipmasq.go,
 * network/iptables.go, pkg/iptables, pkg/trafficmngr/iptables). `rules` lists the jump (where there is a chain) first.
 */
export interface MasqRuleSet {
  readonly releases: ReleaseRange
  /** Where the rules live: flanneld's own chain (v0.20.0+) or POSTROUTING itself. */
  readonly chain: 'POSTROUTING' | typeof MASQ_CHAIN
  /** How the jump into FLANNEL-POSTRTG is installed: inserted first (-I) or appended (-A); null without a chain. */
  readonly jump: '-I' | '-A' | null
  /** Whether the release uses --random-fully when iptables has it (v0.11.0+). */
  readonly randomFully: boolean
  /** Where the set came from in flannel's history. */
  readonly source: string
  rules(network: Cidr4, subnet: Cidr4, randomFully: boolean): IptRule[]
}

function range(from: string, to: string | null): ReleaseRange {
  return {from: parseRelease(from)!, to: to === null ? null : parseRelease(to)!}
}

/** Builds one set: `shape` gives each rule as [chain, spec without the comment, target...]. */
function ruleSet(
  chainName: 'POSTROUTING' | typeof MASQ_CHAIN,
  comment: string | null,
  body: (n: string, s: string) => Array<{pre: string[]; target: string[]; masq?: boolean; comment?: string}>,
) {
  return (network: Cidr4, subnet: Cidr4, randomFully: boolean): IptRule[] => {
    const n = formatCidr4(network)
    const s = formatCidr4(subnet)
    const out: IptRule[] = []
    const c = (text: string | null): string[] => (text === null ? [] : ['-m', 'comment', '--comment', text])
    if (chainName === MASQ_CHAIN)
      out.push({table: 'nat', chain: 'POSTROUTING', spec: [...c(comment), '-j', MASQ_CHAIN]})
    for (const r of body(n, s)) {
      const target = r.masq && randomFully ? [...r.target, '--random-fully'] : r.target
      const text = r.masq && randomFully && r.comment !== undefined ? r.comment : comment
      out.push({table: 'nat', chain: chainName, spec: [...r.pre, ...c(text), ...target]})
    }
    return out
  }
}

const RETURN = ['-j', 'RETURN']
const MASQ = ['-j', 'MASQUERADE']

/** v0.8.0 … v0.19.2: four rules in POSTROUTING (v0.7 had three: no RETURN for traffic to the node's subnet). */
function classic(n: string, s: string, typoComment?: string) {
  return [
    {pre: ['-s', n, '-d', n], target: RETURN},
    {
      pre: ['-s', n, '!', '-d', '224.0.0.0/4'],
      target: MASQ,
      masq: true,
      ...(typoComment ? {comment: typoComment} : {}),
    },
    {pre: ['!', '-s', n, '-d', s], target: RETURN},
    {pre: ['!', '-s', n, '-d', n], target: MASQ, masq: true},
  ]
}

/**
 * Every IPv4 masquerade rule set flanneld has installed, oldest first, with the releases that install it. Learnt from
 * `git log -- network/ipmasq.go network/iptables.go pkg/iptables pkg/trafficmngr/iptables` and `git show TAG:path`.
 */
export const MASQ_RULE_SETS: readonly MasqRuleSet[] = [
  {
    releases: range('0.7.0', '0.7.1'),
    chain: 'POSTROUTING',
    jump: null,
    randomFully: false,
    source: 'v0.7.1:network/ipmasq.go (three rules)',
    rules: ruleSet('POSTROUTING', null, (n) => [
      {pre: ['-s', n, '-d', n], target: RETURN},
      {pre: ['-s', n, '!', '-d', '224.0.0.0/4'], target: MASQ},
      {pre: ['!', '-s', n, '-d', n], target: MASQ},
    ]),
  },
  {
    releases: range('0.8.0', '0.10.0'),
    chain: 'POSTROUTING',
    jump: null,
    randomFully: false,
    source: 'v0.8.0:network/ipmasq.go, v0.10.0:network/iptables.go (RETURN for traffic to the node subnet added)',
    rules: ruleSet('POSTROUTING', null, (n, s) => classic(n, s)),
  },
  {
    releases: range('0.11.0', '0.16.1'),
    chain: 'POSTROUTING',
    jump: null,
    randomFully: true,
    source: 'commit 0d7b9946 "Use iptables --random-fully when available" (v0.11.0)',
    rules: ruleSet('POSTROUTING', null, (n, s) => classic(n, s)),
  },
  {
    releases: range('0.16.2', '0.16.3'),
    chain: 'POSTROUTING',
    jump: null,
    randomFully: true,
    source:
      'commit bd0da0fa "Add comment to the created iptable rules" (v0.16.2; the --random-fully MASQUERADE rule says "flannel masq")',
    rules: ruleSet('POSTROUTING', 'flanneld masq', (n, s) => classic(n, s, 'flannel masq')),
  },
  {
    releases: range('0.17.0', '0.19.2'),
    chain: 'POSTROUTING',
    jump: null,
    randomFully: true,
    source: 'commit 1bd3d93a "Fix comment typo" (v0.17.0)',
    rules: ruleSet('POSTROUTING', 'flanneld masq', (n, s) => classic(n, s)),
  },
  {
    releases: range('0.20.0', '0.20.1'),
    chain: MASQ_CHAIN,
    jump: '-I',
    randomFully: true,
    source: 'commits 4950b7ac "Added a different chain for iptables rules", 78c6ddf7 (v0.20.0)',
    rules: ruleSet(MASQ_CHAIN, 'flanneld masq', (n, s) => classic(n, s)),
  },
  {
    releases: range('0.20.2', '0.20.2'),
    chain: MASQ_CHAIN,
    jump: '-I',
    randomFully: true,
    source: 'commit 21e6bead "Fixed masquerade rule to avoid double NAT bug" (v0.20.2: kube-proxy mark RETURN)',
    rules: ruleSet(MASQ_CHAIN, 'flanneld masq', (n, s) => [
      {pre: ['-m', 'mark', '--mark', KUBE_PROXY_MARK], target: RETURN},
      ...classic(n, s),
    ]),
  },
  {
    releases: range('0.21.0', null),
    chain: MASQ_CHAIN,
    jump: '-A',
    randomFully: true,
    source:
      'commit 243cf7ed (v0.21.0: RETURNs scoped to the node subnet), jump appended from v0.21.3 (commit 8d04ac3d "Reordered iptables rules"), pkg/trafficmngr/iptables through v0.28.9 (--ip-masq-fully-random-disable from v0.27.4, commit 93558a76)',
    rules: ruleSet(MASQ_CHAIN, 'flanneld masq', (n, s) => [
      {pre: ['-m', 'mark', '--mark', KUBE_PROXY_MARK], target: RETURN},
      {pre: ['-s', s, '-d', n], target: RETURN},
      {pre: ['-s', n, '-d', s], target: RETURN},
      {pre: ['!', '-s', n, '-d', s], target: RETURN},
      {pre: ['-s', n, '!', '-d', '224.0.0.0/4'], target: MASQ, masq: true},
      {pre: ['!', '-s', n, '-d', n], target: MASQ, masq: true},
    ]),
  },
]

/** The rule set a release installs (releases before v0.7.0 map to the oldest known set). */
export function masqRuleSetFor(r: Release): MasqRuleSet {
  for (let i = MASQ_RULE_SETS.length - 1; i >= 0; i--) {
    const set = MASQ_RULE_SETS[i]!
    if (compareRelease(r, set.releases.from) >= 0) return set
  }
  return MASQ_RULE_SETS[0]!
}

export interface MasqMatch {
  readonly set: MasqRuleSet
  /** The set's rules, with and without --random-fully where it differs, and which of them are absent. */
  readonly total: number
  readonly missing: IptRule[]
}

/**
 * Matches `iptables -t nat -S` output against one set: a rule counts as present in either its --random-fully or its
 * plain form (flanneld picks one by what iptables supports; --ip-masq-fully-random-disable picks plain).
 */
export function matchMasqSet(set: MasqRuleSet, network: Cidr4, subnet: Cidr4, saved: string): MasqMatch {
  const rf = set.rules(network, subnet, set.randomFully)
  const plain = set.rules(network, subnet, false)
  const lines = new Set(saved.split('\n').map((l) => l.trim()))
  const missing = rf.filter((r, i) => !lines.has(ruleLine(r)) && !lines.has(ruleLine(plain[i]!)))
  return {set, total: rf.length, missing}
}

/**
 * Which releases' rule sets are complete in the nat table (the recognised release range, oldest first), and the
 * closest set when none is: most rules present, newest on a tie.
 */
export function recogniseMasqRules(
  network: Cidr4,
  subnet: Cidr4,
  saved: string,
): {complete: MasqMatch[]; closest: MasqMatch} {
  const all = MASQ_RULE_SETS.map((set) => matchMasqSet(set, network, subnet, saved))
  const lineSet = (m: MasqMatch): Set<string> =>
    new Set([
      ...m.set.rules(network, subnet, m.set.randomFully).map(ruleLine),
      ...m.set.rules(network, subnet, false).map(ruleLine),
    ])
  // A complete set contained in a larger complete one (v0.20.0's in v0.20.2's) is that larger set's, not its own.
  const full = all.filter((m) => m.missing.length === 0)
  const complete = full.filter((a) => {
    const la = lineSet(a)
    return !full.some((b) => b !== a && b.total > a.total && [...la].every((l) => lineSet(b).has(l)))
  })
  let closest = all.at(-1)!
  for (const m of all) {
    const present = m.total - m.missing.length
    if (present > closest.total - closest.missing.length) closest = m
  }
  return {complete, closest}
}

/**
 * flanneld's forwardRules (--iptables-forward-rules, on by default), v0.20.0 and later: a FLANNEL-FWD chain. Up to
 * v0.19.2 the two ACCEPT rules sat in FORWARD itself (with the "flanneld forward" comment from v0.16.2).
 */
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
 * flushed and rewritten, as one `nft -f` script. `randomFully`: flanneld writes `masquerade fully-random` only when
 * the kernel accepts it (its checkRandomfully probe) and --ip-masq-fully-random-disable is not given (v0.27.4+); the
 * kube-proxy mark is written as flannel writes it (`meta mark 0x4000`; `nft list` prints it as 0x00004000).
 */
export function nftScript(
  network: Cidr4,
  subnet: Cidr4,
  ipMasq: boolean,
  forward: boolean,
  randomFully: boolean,
): string {
  const n = formatCidr4(network)
  const s = formatCidr4(subnet)
  const masq = randomFully ? 'masquerade fully-random' : 'masquerade'
  const lines = ['table ip flannel-ipv4 {}', 'delete table ip flannel-ipv4', 'table ip flannel-ipv4 {']
  if (ipMasq) {
    lines.push(
      '  chain postrtg {',
      '    type nat hook postrouting priority srcnat; policy accept;',
      '    meta mark 0x4000 return',
      `    ip saddr ${s} ip daddr ${n} return`,
      `    ip saddr ${n} ip daddr ${s} return`,
      `    ip saddr != ${s} ip daddr ${n} return`,
      `    ip saddr ${n} ip daddr != 224.0.0.0/4 ${masq}`,
      `    ip saddr != ${n} ip daddr ${n} ${masq}`,
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

/** The masquerade rules of flanneld's nftables chain postrtg, as `nft list` prints them (mark in 8 hex digits). */
function nftMasqRules(network: Cidr4, subnet: Cidr4): string[] {
  return nftScript(network, subnet, true, false, false)
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('meta mark') || l.startsWith('ip saddr'))
}

/** A rule line of `nft list` normalised: spaces collapsed, `# handle N` dropped, the mark as flanneld writes it. */
function normaliseNft(line: string): string {
  return line
    .replace(/#.*$/, '')
    .trim()
    .replace(/\s+/g, ' ')
    .replace(/meta mark 0x0*([0-9a-f]+)/, 'meta mark 0x$1')
}

export interface NftMasqJudgement {
  /** flanneld's rules absent from chain postrtg (`masquerade` and `masquerade fully-random` both count). */
  readonly missing: string[]
  readonly total: number
  /** Rules in chain postrtg that name another Network or subnet (built before network expand). */
  readonly stale: string[]
}

/**
 * Judges `nft list table ip flannel-ipv4` against the masquerade set flanneld writes with EnableNFTables (v0.25.0+,
 * pkg/trafficmngr/nftables: six rules in chain postrtg; `fully-random` when the kernel accepts it and, from v0.27.4,
 * unless --ip-masq-fully-random-disable, so either form is accepted). `text` '' is an absent table.
 */
export function judgeNftMasq(network: Cidr4, subnet: Cidr4, text: string): NftMasqJudgement {
  const want = nftMasqRules(network, subnet)
  const chain = /chain postrtg \{([\s\S]*?)\n\s*\}/.exec(text)?.[1] ?? ''
  const have = chain
    .split('\n')
    .map(normaliseNft)
    .filter((l) => l !== '' && !l.startsWith('type '))
  const plainHave = new Set(have.map((l) => l.replace(/ masquerade fully-random$/, ' masquerade')))
  const missing = want.filter((r) => !plainHave.has(r))
  const cidrs = new Set([formatCidr4(network), formatCidr4(subnet), '224.0.0.0/4'])
  const stale = have.filter((l) => [...l.matchAll(/(\d+\.\d+\.\d+\.\d+\/\d+)/g)].some((m) => !cidrs.has(m[1]!)))
  return {missing, total: want.length, stale}
}
