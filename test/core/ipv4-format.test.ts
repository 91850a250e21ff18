// formatIPv4 and formatCidr4 read their text from tables (leases ls formats two addresses per lease): they must
// print exactly what the template literals they replaced printed, for every number they can be given.

import assert from 'node:assert/strict'
import {test} from 'node:test'

import {formatCidr4, formatIPv4} from '../../src/core/ipv4.js'

const reference = (ip: number) => `${ip >>> 24}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}`

test('formatIPv4 and formatCidr4 print what the templates printed', () => {
  const ips = [0, 1, 255, 256, 0x0a000000, 0x7fffffff, 0x80000000, 0xc0a80001, 0xffffffff, -1, 2 ** 32, 1.5, NaN]
  let s = 7
  for (let i = 0; i < 20_000; i++) ips.push((s = (Math.imul(s, 1_103_515_245) + 12_345) >>> 0))
  for (const ip of ips) {
    assert.equal(formatIPv4(ip), reference(ip), String(ip))
    for (const prefix of [0, 8, 24, 31, 32, -0, -1, 33, 64, 1.5, NaN])
      assert.equal(formatCidr4({ip, prefix}), `${reference(ip)}/${prefix}`, `${ip}/${prefix}`)
  }
})
