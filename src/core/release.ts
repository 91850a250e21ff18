/**
 * Which flanneld release a node runs, and what each release does differently, learnt from flannel's git history
 * (flannel-io/flannel tags v0.10.0 … v0.28.9). A node's release comes from `--flanneld-version` when given; otherwise
 * doctor infers a range of releases from what the node shows (its masquerade rule set). Pure.
 */

export interface Release {
  readonly major: number
  readonly minor: number
  readonly patch: number
}

/** `0.20`, `v0.20.0`, `0.20.0-rc1` and `v0.20.1-k3s1.23` all parse; null when the text is not a version. */
export function parseRelease(text: string): Release | null {
  const m = /^v?(\d+)\.(\d+)(?:\.(\d+))?(?:[-+].*)?$/.exec(text.trim())
  if (!m) return null
  return {major: Number(m[1]), minor: Number(m[2]), patch: m[3] === undefined ? 0 : Number(m[3])}
}

export function compareRelease(a: Release, b: Release): number {
  return a.major - b.major || a.minor - b.minor || a.patch - b.patch
}

function rel(text: string): Release {
  return parseRelease(text)!
}

export function formatRelease(r: Release): string {
  return `v${r.major}.${r.minor}.${r.patch}`
}

/** An inclusive range of releases; `to` null means "and every later release". */
export interface ReleaseRange {
  readonly from: Release
  readonly to: Release | null
}

export function formatRange(range: ReleaseRange): string {
  if (range.to === null) return `${formatRelease(range.from)} and later`
  if (compareRelease(range.from, range.to) === 0) return formatRelease(range.from)
  return `${formatRelease(range.from)}–${formatRelease(range.to)}`
}

/**
 * What is known of a node's release: exactly one (from --flanneld-version), a range (inferred), or nothing (null:
 * every judgement then accepts what any release would do).
 */
export type NodeRelease =
  {readonly kind: 'exact'; readonly release: Release} | {readonly kind: 'range'; readonly range: ReleaseRange}

export function describeNodeRelease(node: NodeRelease): string {
  return node.kind === 'exact' ? `flanneld ${formatRelease(node.release)}` : `flanneld ${formatRange(node.range)}`
}

/** Whether every release the node may run is `since` or later (true), none is (false), or it is unknown (null). */
export function atLeast(node: NodeRelease | null, since: Release): boolean | null {
  if (node === null) return null
  if (node.kind === 'exact') return compareRelease(node.release, since) >= 0
  if (compareRelease(node.range.from, since) >= 0) return true
  if (node.range.to !== null && compareRelease(node.range.to, since) < 0) return false
  return null
}

/**
 * `Backend.MTU` of the vxlan and wireguard backends: added by flannel commit bd2e72e3 ("Added MTU config for vxlan and
 * wireguard"), first released in v0.21.3. Older releases ignore the field and use the external interface's MTU.
 */
export const BACKEND_MTU_SINCE = rel('0.21.3')

/**
 * The vxlan device's `local`: up to v0.27.3 flanneld created it with the interface address (`IfaceAddr`); from
 * v0.27.4 (commit 73af8ea7, #2247) with `ExtAddr`, the PublicIP (`--public-ip`, else the interface address).
 */
export const VXLAN_LOCAL_EXTADDR_SINCE = rel('0.27.4')
