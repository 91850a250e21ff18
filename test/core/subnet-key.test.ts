import assert from 'node:assert/strict'
import {describe, test} from 'node:test'

import {formatCidr4} from '../../src/core/ipv4.js'
import {formatCidr6} from '../../src/core/ipv6.js'
import {makeSubnetKey, parseSubnetKey} from '../../src/core/subnet-key.js'

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
