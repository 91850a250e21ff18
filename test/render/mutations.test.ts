/** Mutation plans: up to LAYOUT_MAX_ROWS rows laid out by cli-table3 to the width; more through the linear renderer. */

import assert from 'node:assert/strict'
import {test} from 'node:test'

import {LAYOUT_MAX_ROWS} from '../../src/render/layout.js'
import {renderReleasePlan} from '../../src/render/mutations.js'
import {displayWidth} from '../../src/render/width.js'
import type {ReleaseTarget} from '../../src/services/lease-mutations.js'

const HOSTILE = 7 // this target's key ends in a terminal escape and a newline

function targets(n: number): ReleaseTarget[] {
  return Array.from({length: n}, (_, i) => ({
    key: `/coreos.com/network/subnets/10.${i >> 8}.${i & 255}.0-24` + (i === HOSTILE ? '\u001b[2J\n' : ''),
    subnet: `10.${i >> 8}.${i & 255}.0/24`,
    publicIP: `192.0.2.${i % 250}`,
    modRevision: String(i + 5),
    reserved: i % 3 === 0,
    ttlSeconds: i % 3 === 1 ? 3600 + i : null,
  }))
}

function check(n: number, width: number, wrapped: boolean): void {
  const t = targets(n)
  const lines = renderReleasePlan(t, width).split('\n')
  assert.equal(lines[0], `Will delete ${n} lease key(s):`)
  assert.match(lines[1]!, /^SUBNET +PUBLIC-IP +TTL +KEY$/)
  const keyAt = lines[1]!.indexOf('KEY')
  const rows = lines.slice(2)
  assert.ok(!rows.some((r) => r.includes('\u001b') || r.includes('\n')), 'control characters from etcd are escaped')
  // Every target has its row, in order, with its key in the KEY column; the TTL column says what it knows.
  const starts = rows.map((r, i) => [r, i] as const).filter(([r]) => !r.startsWith(' '))
  assert.equal(starts.length, n)
  for (const [k, [row]] of starts.entries()) {
    assert.ok(row.startsWith(t[k]!.subnet + ' '), row)
    assert.equal(row.indexOf('/coreos.com/'), keyAt, `row ${k} aligned: ${row}`)
    assert.match(row, k % 3 === 0 ? / reserved +\// : k % 3 === 1 ? / \d+h\d\dm +\// : / unknown +\//)
  }
  if (wrapped) {
    // Laid out to the width: every line fits, and the long (escaped) key goes on under its column.
    for (const r of rows) assert.ok(displayWidth(r) <= width, `${displayWidth(r)} > ${width}: ${r}`)
    assert.ok(rows.length > n)
  } else {
    // Beyond LAYOUT_MAX_ROWS: one whole line per lease, not wrapped (linear time for thousands of stale leases).
    assert.equal(rows.length, n)
    assert.ok(rows[HOSTILE]!.endsWith('-24\\x1b[2J\\n'), rows[HOSTILE])
  }
}

test(`a release plan of ${LAYOUT_MAX_ROWS} leases is laid out to the width`, () => check(LAYOUT_MAX_ROWS, 70, true))
test(`a release plan of ${LAYOUT_MAX_ROWS + 1} leases, and of 20,000, has one whole line per lease`, () => {
  check(LAYOUT_MAX_ROWS + 1, 70, false)
  check(20_000, 70, false)
})
