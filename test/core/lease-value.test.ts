import assert from 'node:assert/strict'
import {describe, test} from 'node:test'

import {formatIPv4} from '../../src/core/ipv4.js'
import {
  decodeLeaseAttrs,
  decodeVxlanData,
  encodeLeaseAttrs,
  encodeVxlanData,
  type LeaseAttrs,
} from '../../src/core/lease-value.js'
import {parseIPv6} from '../../src/core/ipv6.js'

function decode(s: string): LeaseAttrs {
  const d = decodeLeaseAttrs(s)
  assert.ok(d.ok, d.ok ? '' : d.error)
  return d.value
}

describe('lease value codec', () => {
  const exact = [
    '{"PublicIP":"192.168.64.3","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}',
    '{"PublicIP":"192.168.64.3","PublicIPv6":"fd00::10","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"},"BackendV6Data":{"VNI":1,"VtepMAC":"7a:11:02:33:44:55"}}',
    '{"PublicIP":"192.168.1.10","PublicIPv6":null,"BackendType":"host-gw"}',
    '{"PublicIP":"1.2.3.4","PublicIPv6":null}',
    '{"PublicIP":"1.2.3.4","PublicIPv6":null,"BackendType":"wireguard","BackendData":{"PublicKey":"abc+/=","Port":51820}}',
  ]
  for (const s of exact) {
    test(`flanneld bytes round-trip: ${s.slice(0, 60)}`, () => assert.equal(encodeLeaseAttrs(decode(s)), s))
  }

  test('udp lease (only PublicIP set) encodes exactly as registry_test.go asserts', () => {
    assert.equal(
      encodeLeaseAttrs({
        publicIP: 0x01020304,
        publicIPv6: null,
        backendType: '',
        backendData: null,
        backendV6Data: null,
      }),
      '{"PublicIP":"1.2.3.4","PublicIPv6":null}',
    )
  })

  test('vxlan BackendData is a nested object in flanneld order', () => {
    const data = encodeVxlanData({vni: 1, vtepMAC: 'c6:d2:32:6f:8f:44'})
    const v = encodeLeaseAttrs({
      publicIP: 0xc0a8010c,
      publicIPv6: null,
      backendType: 'vxlan',
      backendData: data,
      backendV6Data: null,
    })
    assert.equal(
      v,
      '{"PublicIP":"192.168.1.12","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}',
    )
  })

  test('Go semantics: case-insensitive keys, unknown keys ignored, last duplicate wins', () => {
    const a = decode('{"publicip":"10.0.0.1","backendtype":"vxlan","Extra":1,"PUBLICIP":"10.0.0.2"}')
    assert.equal(formatIPv4(a.publicIP), '10.0.0.2')
    assert.equal(a.backendType, 'vxlan')
  })

  test('BackendData with white space is re-compacted, HTML characters escaped as Go does', () => {
    const a = decode('{"PublicIP":"1.2.3.4","BackendType":"x","BackendData": { "a" : "<&>" , "b" : [ 1, 2 ] }}')
    assert.equal(
      encodeLeaseAttrs(a),
      '{"PublicIP":"1.2.3.4","PublicIPv6":null,"BackendType":"x","BackendData":{"a":"\\u003c\\u0026\\u003e","b":[1,2]}}',
    )
  })

  test('null value decodes to the zero lease (flanneld accepts it as PublicIP 0.0.0.0)', () => {
    assert.equal(decode('null').publicIP, 0)
  })

  test('PublicIPv6 given as IPv4 is stored as ::ffff:a.b.c.d and printed as the IPv4', () => {
    const a = decode('{"PublicIP":"1.2.3.4","PublicIPv6":"5.6.7.8"}')
    assert.equal(a.publicIPv6, (0xffffn << 32n) | 0x05060708n)
    assert.equal(encodeLeaseAttrs(a), '{"PublicIP":"1.2.3.4","PublicIPv6":"5.6.7.8"}')
  })

  for (const [bad, why] of [
    ['', 'unexpected end of JSON input'],
    ['{"PublicIP":"1.2.3"}', 'invalid IP address format'],
    ['{"PublicIP":"fd00::1"}', 'invalid IPv4 address format'],
    ['{"PublicIP":null}', 'invalid IP address format'],
    ['{"PublicIP":"1.2.3.4","PublicIPv6":"nope"}', 'invalid IP address format'],
    [
      '{"PublicIP":"1.2.3.4","BackendType":7}',
      'json: cannot unmarshal number into Go struct field LeaseAttrs.BackendType of type string',
    ],
    ['[1]', 'json: cannot unmarshal array into Go value of type lease.LeaseAttrs'],
    ['{"PublicIP":"1.2.3.4"', 'unexpected end of JSON input'],
    ['{"PublicIP":"1.2.3.4"} x', "invalid character 'x' after top-level value"],
  ] as const) {
    test(`rejects ${JSON.stringify(bad)}`, () => {
      const d = decodeLeaseAttrs(bad)
      assert.equal(d.ok, false)
      assert.equal(d.ok ? '' : d.error, why)
    })
  }

  test('vxlan data: VNI and MAC in any case and form', () => {
    const d = decodeVxlanData('{"vni":4096,"vtepmac":"C6-D2-32-6F-8F-44"}')
    assert.ok(d.ok)
    assert.deepEqual(d.value, {vni: 4096, vtepMAC: 'c6:d2:32:6f:8f:44'})
    assert.equal(decodeVxlanData('"{\\"VNI\\":1}"').ok, false) // a string containing JSON is not an object
    assert.equal(decodeVxlanData('{"VNI":1,"VtepMAC":"zz"}').ok, false)
  })

  test('IPv6 parser agrees with Go on forms', () => {
    assert.equal(parseIPv6('fd00::10'), (0xfd00n << 112n) | 0x10n)
    assert.equal(parseIPv6('::'), 0n)
    assert.equal(parseIPv6('1::2::3'), null)
    assert.equal(parseIPv6('::ffff:1.2.3.4'), (0xffffn << 32n) | 0x01020304n)
  })
})
