import assert from 'node:assert/strict'
import {describe, test} from 'node:test'

import {
  deletePayload,
  forwardRules,
  masqRules,
  missingRules,
  nftScript,
  restorePayload,
  ruleLine,
  supportsRandomFully,
} from '../../src/core/masq.js'
import {parseCidr4} from '../../src/core/ipv4.js'

const N = parseCidr4('10.244.0.0/16')!
const S = parseCidr4('10.244.1.0/24')!

describe("flanneld's masquerade and forward rules (e2e/rules.go golden)", () => {
  test('iptables -t nat -S lines', () => {
    assert.deepEqual(masqRules(N, S, true).map(ruleLine), [
      '-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG',
      '-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment "flanneld masq" -j RETURN',
      '-A FLANNEL-POSTRTG -s 10.244.1.0/24 -d 10.244.0.0/16 -m comment --comment "flanneld masq" -j RETURN',
      '-A FLANNEL-POSTRTG -s 10.244.0.0/16 -d 10.244.1.0/24 -m comment --comment "flanneld masq" -j RETURN',
      '-A FLANNEL-POSTRTG ! -s 10.244.0.0/16 -d 10.244.1.0/24 -m comment --comment "flanneld masq" -j RETURN',
      '-A FLANNEL-POSTRTG -s 10.244.0.0/16 ! -d 224.0.0.0/4 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully',
      '-A FLANNEL-POSTRTG ! -s 10.244.0.0/16 -d 10.244.0.0/16 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully',
    ])
  })

  test('without --random-fully support', () => {
    assert.equal(
      ruleLine(masqRules(N, S, false).at(-1)!),
      '-A FLANNEL-POSTRTG ! -s 10.244.0.0/16 -d 10.244.0.0/16 -m comment --comment "flanneld masq" -j MASQUERADE',
    )
  })

  test('iptables -S forward lines', () => {
    assert.deepEqual(forwardRules(N).map(ruleLine), [
      '-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD',
      '-A FLANNEL-FWD -s 10.244.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT',
      '-A FLANNEL-FWD -d 10.244.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT',
    ])
  })

  test('restore payload: existing rules deleted then appended, comments quoted, one block per table', () => {
    const rules = forwardRules(N)
    const payload = restorePayload(rules, new Set([ruleLine(rules[1]!)]))
    assert.equal(
      payload,
      '*filter\n' +
        '-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD\n' +
        '-D FLANNEL-FWD -s 10.244.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT\n' +
        '-A FLANNEL-FWD -s 10.244.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT\n' +
        '-A FLANNEL-FWD -d 10.244.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT\n' +
        'COMMIT\n',
    )
  })

  test('delete payload: only existing rules, each once even when listed twice (both --random-fully variants)', () => {
    const existing = new Set(masqRules(N, S, true).map(ruleLine))
    const payload = deletePayload([...masqRules(N, S, true), ...masqRules(N, S, false)], existing)!
    const lines = payload.split('\n')
    assert.equal(lines[0], '*nat')
    assert.equal(lines.filter((l) => l.startsWith('-D ')).length, 7, payload)
    assert.equal(new Set(lines).size, lines.length, 'no line twice')
    assert.equal(deletePayload(masqRules(N, S, true), new Set()), null)
  })

  test('missing rules are found from iptables -S output', () => {
    const rules = masqRules(N, S, true)
    const saved = [
      '-P POSTROUTING ACCEPT',
      '-N FLANNEL-POSTRTG',
      ...rules.map(ruleLine).filter((_, i) => i !== 3),
    ].join('\n')
    assert.deepEqual(missingRules(rules, saved), [rules[3]])
  })

  test('random-fully from iptables 1.6.2', () => {
    assert.equal(supportsRandomFully('iptables v1.8.9 (nf_tables)'), true)
    assert.equal(supportsRandomFully('iptables v1.6.1'), false)
    assert.equal(supportsRandomFully('iptables v1.6.2'), true)
  })

  test('nftables rule set (e2e golden, rule 4 differs from iptables)', () => {
    const s = nftScript(N, S, true, true, true)
    // flannel writes the mark as 0x4000 (nft list prints it back as 0x00004000).
    assert.match(s, /meta mark 0x4000 return/)
    assert.match(s, /ip saddr != 10\.244\.1\.0\/24 ip daddr 10\.244\.0\.0\/16 return/)
    assert.match(s, /ip saddr 10\.244\.0\.0\/16 ip daddr != 224\.0\.0\.0\/4 masquerade fully-random/)
    assert.match(s, /ip daddr 10\.244\.0\.0\/16 accept/)
  })

  test('nftables: plain masquerade when the kernel lacks fully-random or --ip-masq-fully-random-disable', () => {
    const s = nftScript(N, S, true, false, false)
    assert.doesNotMatch(s, /fully-random/)
    assert.match(s, /ip saddr 10\.244\.0\.0\/16 ip daddr != 224\.0\.0\.0\/4 masquerade\n/)
    assert.match(s, /ip saddr != 10\.244\.0\.0\/16 ip daddr 10\.244\.0\.0\/16 masquerade\n/)
  })
})
