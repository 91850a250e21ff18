import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {describe, test} from 'node:test'

import {formatCidr4} from '../../src/core/ipv4.js'
import {formatCidr6} from '../../src/core/ipv6.js'
import {makeSubnetKey, matchSubnetKey, parseSubnetKey} from '../../src/core/subnet-key.js'

describe('subnet key codec (flannel pkg/subnet/subnet_test.go vectors)', () => {
  test('IPv4 key round-trips', () => {
    const k = parseSubnetKey('10.12.13.0-24')
    assert.ok(k)
    assert.equal(formatCidr4(k.subnet), '10.12.13.0/24')
    assert.equal(k.ipv6Subnet, null)
    assert.equal(makeSubnetKey(k.subnet, k.ipv6Subnet), '10.12.13.0-24')
  })

  test('dual-stack key round-trips', () => {
    const k = parseSubnetKey('10.12.13.0-24&fd00:12:13::-56')
    assert.ok(k)
    assert.equal(formatCidr4(k.subnet), '10.12.13.0/24')
    assert.ok(k.ipv6Subnet)
    assert.equal(formatCidr6(k.ipv6Subnet), 'fd00:12:13::/56')
    assert.equal(makeSubnetKey(k.subnet, k.ipv6Subnet), '10.12.13.0-24&fd00:12:13::-56')
  })

  test('the full etcd key parses (the regex has no start anchor)', () => {
    const k = parseSubnetKey('/coreos.com/network/subnets/10.5.34.0-24')
    assert.ok(k)
    assert.equal(formatCidr4(k.subnet), '10.5.34.0/24')
  })

  for (const bad of [
    '10',
    '10.12.13.0',
    '10.12.13-24',
    '10.12.13.300-24',
    '10.12.13.0-24hi',
    '&2001::-56',
    '10.12.13.0-24&:12:13:-56',
    '10.12.13.0-24&20011::-56',
    '10.12.13.0-24&2001-56',
    '10.12.13.0-24&2001::',
    '10.12.13.0-24&2001::-56hi',
    '255.255.255.255-32',
    '10.5.1.0-24&FC00::-64',
    '010.5.1.0-24',
  ]) {
    test(`rejects ${JSON.stringify(bad)}`, () => assert.equal(parseSubnetKey(bad), null))
  }

  test('fuzz seeds that flannel accepts', () => {
    assert.ok(parseSubnetKey('10.5.1.0-24'))
    assert.equal(formatCidr6(parseSubnetKey('10.5.1.0-24&fc00::-64')!.ipv6Subnet!), 'fc00::/64')
  })

  test('quirks kept: unescaped dots, leading-zero prefix, IPv6 prefix up to 127', () => {
    assert.equal(parseSubnetKey('10.5x1y0-24'), null) // regex matches, net.ParseIP refuses
    assert.equal(parseSubnetKey('10.5.1.0-024')!.subnet.prefix, 24)
    assert.equal(parseSubnetKey('10.5.1.0-31')!.subnet.prefix, 31)
    assert.equal(parseSubnetKey('10.5.1.0-24&fc00::-127')!.ipv6Subnet!.prefix, 127)
    assert.equal(parseSubnetKey('10.5.1.0-24&fc00::-128'), null)
    // host bits are not rejected by flannel; doctor reports them as misaligned
    assert.equal(formatCidr4(parseSubnetKey('10.5.1.7-24')!.subnet), '10.5.1.7/24')
  })
})

// flannel's expression, run as the regular expression it is (the reference for matchSubnetKey).
const FLANNEL_RE = /(\d+\.\d+.\d+.\d+)-(\d+)(?:&([a-f\d:]+)-(\d+))?$/

function viaRegex(s: string): string {
  const m = FLANNEL_RE.exec(s)
  return m ? JSON.stringify([m[1], m[2], m[3], m[4]]) : 'null'
}

function mulberry32(seed: number): () => number {
  let a = seed
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

describe('matchSubnetKey: the same match as flannel regex, in linear time', () => {
  test('every string of up to 9 characters over 1 . - & a (exhaustive)', () => {
    const alphabet = ['1', '.', '-', '&', 'a']
    let n = 0
    const walk = (s: string, depth: number): void => {
      n++
      const got = JSON.stringify(matchSubnetKey(s))
      if (got !== viaRegex(s)) assert.fail(`${JSON.stringify(s)}: regex ${viaRegex(s)}, matchSubnetKey ${got}`)
      if (depth > 0) for (const c of alphabet) walk(s + c, depth - 1)
    }
    walk('', 9)
    assert.equal(n, (5 ** 10 - 1) / 4)
  })

  test('300,000 mutated keys (inserts, deletes, replacements, line terminators), dual-stack among them', () => {
    const rnd = mulberry32(13)
    const templates = [
      '10.5.1.0-24',
      '10.5.1.0-24&fc00::-64',
      '/coreos.com/network/subnets/10.5.1.0-24&fd00:1::-56',
      '1.2.3.4-5&6-7',
      '1.2.3.4-5-6.7.8.9-1&a-2',
      '1.1.1.1.1.1.1-1',
      '12.34.56.78-90&ab:cd-12&ef-3',
    ]
    const chars = '0123456789.-&af:xg/\n\r\u2028\u2029'
    const pick = <T>(xs: ArrayLike<T>): T => xs[Math.floor(rnd() * xs.length)]!
    let matched = 0
    let dual = 0
    for (let i = 0; i < 300_000; i++) {
      let s = pick(templates)
      if (rnd() < 0.3) s = pick(templates) + s
      for (let e = Math.floor(rnd() * 5); e > 0; e--) {
        const p = Math.floor(rnd() * (s.length + 1))
        const c = pick(chars)
        const op = rnd()
        s = op < 0.33 ? s.slice(0, p) + c + s.slice(p) : s.slice(0, p) + (op < 0.66 ? '' : c) + s.slice(p + 1)
      }
      const want = viaRegex(s)
      const got = JSON.stringify(matchSubnetKey(s))
      if (got !== want) assert.fail(`${JSON.stringify(s)}: regex ${want}, matchSubnetKey ${got}`)
      if (want !== 'null') matched++
      if (want !== 'null' && JSON.parse(want)[2] !== undefined) dual++
    }
    // The generator reaches both shapes often (the comparison is not between two nulls).
    assert.ok(matched > 100_000 && dual > 50_000, `${matched} matched, ${dual} dual-stack`)
  })

  test('long inputs the regex can still do (a few thousand characters) agree', () => {
    for (const s of [
      '1'.repeat(3000) + '.' + '2'.repeat(3000) + 'x3y4-5',
      '1.'.repeat(2000) + '1-1',
      '1.1.1.1-'.repeat(500) + '1',
      '1.1.1.1-1&'.repeat(400) + 'a-1',
      '9.9.9.9-9&' + 'a:'.repeat(2000) + '-9',
      '.'.repeat(3000) + '1.2.3.4-5',
    ])
      assert.equal(JSON.stringify(matchSubnetKey(s)), viaRegex(s), s.slice(0, 40))
  })

  test('a 1 MB key is parsed, and a 1 MB non-key rejected, within a bounded child (the regex would take an hour)', () => {
    const script = `
      import {parseSubnetKey} from ${JSON.stringify(new URL('../../src/core/subnet-key.ts', import.meta.url).href)}
      const M = 1 << 20
      const out = [
        parseSubnetKey('x'.repeat(M) + '/10.5.1.0-24'),
        parseSubnetKey('1'.repeat(M)),
        parseSubnetKey('1.'.repeat(M / 2) + '1-1'),
        parseSubnetKey('1.1.1.1-'.repeat(M / 8)),
        parseSubnetKey('1.1.1.1-1&'.repeat(M / 10) + 'fc00::-64'),
        parseSubnetKey('10.5.1.0-24&' + 'a:'.repeat(M / 2) + '-64'),
      ].map((k) => k && [k.subnet.ip, k.subnet.prefix, k.ipv6Subnet ? k.ipv6Subnet.prefix : null])
      process.stdout.write(JSON.stringify(out))`
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 60_000,
    })
    assert.equal(r.signal, null, 'killed: parsing took over 60 s')
    assert.equal(r.status, 0, r.stderr)
    assert.deepEqual(JSON.parse(r.stdout), [
      [0x0a050100, 24, null],
      null,
      [0x01010101, 1, null], // the leftmost match's IPv4 group is the last seven characters before -1
      null,
      [0x01010101, 1, 64],
      null,
    ])
  })
})
