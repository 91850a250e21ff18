import assert from 'node:assert/strict'
import {describe, test} from 'node:test'

import {renderWatchEvent, renderWatchHeader} from '../../src/render/lease-events.js'
import {theme} from '../../src/render/theme.js'
import {displayWidth} from '../../src/render/width.js'
import type {LeaseEventJson} from '../../src/services/lease-watch.js'

const S = '/coreos.com/network/subnets'
const base: LeaseEventJson = {
  type: 'added',
  origin: 'watch',
  resynced: false,
  revision: '12',
  key: `${S}/10.5.1.0-24`,
  subnet: '10.5.1.0/24',
  ipv6Subnet: null,
  publicIP: '192.168.1.1',
  publicIPv6: null,
  backendType: 'vxlan',
  vtepMAC: null,
  reserved: false,
  ttlSeconds: 86_399,
  leaseId: '7',
  value: '{}',
  previous: null,
  changes: [],
  malformed: null,
  time: '2026-12-01T00:00:00Z',
}

/** The display column where each header word starts, and where each line's cell after it starts. */
function columns(line: string): number[] {
  const out: number[] = []
  let col = 0
  let prevSpace = true
  for (const ch of line) {
    const space = ch === ' '
    if (!space && prevSpace) out.push(col)
    prevSpace = space
    col += displayWidth(ch)
  }
  return out
}

describe('leases watch lines', () => {
  test('wide characters, escapes and long values keep every column where the header puts it', () => {
    const c = theme(false)
    const head = renderWatchHeader(S)
    const at = columns(head)
    const lines = [
      renderWatchEvent(base, S, c),
      renderWatchEvent({...base, type: 'renewed', backendType: '后端', changes: ['lease']}, S, c),
      renderWatchEvent({...base, type: 'changed', backendType: 'vxlan\u001b[31mRED', revision: '1234567890'}, S, c),
      renderWatchEvent({...base, type: 'expired', key: `${S}/10.5.1.0-24\u001b[2J`, reserved: null}, S, c),
    ]
    for (const l of lines) {
      // eslint-disable-next-line no-control-regex
      assert.equal(/[\u0000-\u001f]/.test(l), false, l)
      const cols = columns(l).slice(0, at.length)
      assert.deepEqual(cols.slice(0, 8), at.slice(0, 8), `${head}\n${l}`)
    }
    assert.match(lines[1]!, /renewed .* 后端 .* new lease$/)
    assert.match(lines[2]!, /vxlan\\x1…/)
    assert.match(lines[3]!, /expired .* - {3,}12 /)
  })

  test('colour only where asked: event kinds coloured, reservations cyan', () => {
    const c = theme(true)
    // eslint-disable-next-line no-control-regex
    assert.match(renderWatchEvent({...base, type: 'deleted'}, S, c), /\u001b\[31mdeleted\u001b\[39m/)
    // eslint-disable-next-line no-control-regex
    assert.match(renderWatchEvent({...base, reserved: true, ttlSeconds: null}, S, c), /\u001b\[36mreserved/)
    // eslint-disable-next-line no-control-regex
    assert.equal(/\u001b/.test(renderWatchEvent(base, S, theme(false))), false)
  })
})
