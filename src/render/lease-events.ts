/**
 * Human output of leases watch: a header, then one line per event as it arrives. The lines cannot be measured
 * together (they are printed one by one), so each column has a fixed width (display width, render/width.ts) that
 * fits every well-formed value; longer untrusted cells are cut with `…` (whole in --json).
 */

import type {ChalkInstance} from 'chalk'

import {formatTtl} from '../core/duration.js'
import {decodeLeaseAttrs} from '../core/lease-value.js'
import {formatIPv4} from '../core/ipv4.js'
import type {LeaseEventJson} from '../services/lease-watch.js'
import {escapeTerminal as esc} from './escape.js'
import {displayWidth, truncate} from './width.js'

/** Column widths: an RFC 3339 second, `renewed`, `255.255.255.255/32`, an IPv4 address, `wireguard`, `23h59m`, a 10-digit revision. */
const WIDTHS = {time: 20, event: 7, subnet: 18, publicIP: 15, backend: 9, ttl: 9, revision: 10} as const
const GAP = '   '

function pad(s: string, width: number): string {
  const w = displayWidth(s)
  return w >= width ? s : s + ' '.repeat(width - w)
}

/** The key column: as wide as a subnet key under `subnetsPrefix` (`<prefix>/subnets/255.255.255.255-32`). */
function keyWidth(subnetsPrefix: string): number {
  return displayWidth(esc(subnetsPrefix)) + '/255.255.255.255-32'.length
}

export function renderWatchHeader(subnetsPrefix: string): string {
  return [
    pad('TIME', WIDTHS.time),
    pad('EVENT', WIDTHS.event),
    pad('SUBNET', WIDTHS.subnet),
    pad('PUBLIC-IP', WIDTHS.publicIP),
    pad('BACKEND', WIDTHS.backend),
    pad('TTL', WIDTHS.ttl),
    pad('REVISION', WIDTHS.revision),
    pad('KEY', keyWidth(subnetsPrefix)),
    'DETAIL',
  ].join(GAP)
}

function colourKind(e: LeaseEventJson, c: ChalkInstance): string {
  switch (e.type) {
    case 'added':
      return c.green(e.type)
    case 'changed':
      return c.yellow(e.type)
    case 'deleted':
      return c.red(e.type)
    case 'expired':
      return c.magenta(e.type)
    default:
      return e.type
  }
}

/** What the DETAIL column says: the changed fields (PublicIP with its old value), IPv6 subnet, origin, malformed. */
function detail(e: LeaseEventJson): string {
  const parts: string[] = []
  if (e.origin !== 'watch') parts.push(e.origin === 'resync' ? 'resynced' : 'listed')
  if (e.changes.length > 0) {
    const before = e.previous && e.changes.includes('PublicIP') ? decodeLeaseAttrs(e.previous.value) : null
    parts.push(
      e.changes
        .map((ch) =>
          ch === 'PublicIP' && before?.ok
            ? `PublicIP (was ${formatIPv4(before.value.publicIP)})`
            : ch === 'lease'
              ? 'new lease'
              : ch,
        )
        .join(', '),
    )
  }
  if (e.ipv6Subnet) parts.push(`IPv6 ${e.ipv6Subnet}`)
  if (e.malformed) parts.push(`malformed: ${esc(e.malformed)}`)
  return parts.join('; ')
}

export function renderWatchEvent(e: LeaseEventJson, subnetsPrefix: string, c: ChalkInstance): string {
  const ttl =
    e.type === 'deleted' || e.type === 'expired'
      ? '-'
      : e.reserved
        ? c.cyan('reserved')
        : e.ttlSeconds === null
          ? 'unknown'
          : formatTtl(e.ttlSeconds)
  const kw = keyWidth(subnetsPrefix)
  return [
    pad(e.time, WIDTHS.time),
    pad(colourKind(e, c), WIDTHS.event),
    pad(e.subnet ?? '-', WIDTHS.subnet),
    pad(e.publicIP ?? '-', WIDTHS.publicIP),
    pad(truncate(esc(e.backendType ?? '-') || '-', WIDTHS.backend), WIDTHS.backend),
    pad(ttl, WIDTHS.ttl),
    pad(e.revision, WIDTHS.revision),
    pad(truncate(esc(e.key), Math.max(kw, 64)), kw),
    detail(e),
  ]
    .join(GAP)
    .trimEnd()
}
