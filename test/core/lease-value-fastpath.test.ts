// The canonical-form fast paths of the lease value decoders must answer exactly what the general (Go semantics)
// decoders answer, for canonical text and for near misses that have to fall through to the general path.

import assert from 'node:assert/strict'
import {describe, test} from 'node:test'

import {
  decodeLeaseAttrs,
  decodeLeaseAttrsGeneral,
  decodeVxlanData,
  decodeVxlanDataGeneral,
  parseMAC,
} from '../../src/core/lease-value.js'

const IPS = [
  '192.168.1.12',
  '10.0.2.15',
  '0.0.0.0',
  '255.255.255.255',
  '192.168.01.12',
  '256.1.1.1',
  '1.2.3',
  '1.2.3.4.5',
  '1..2.3',
]
const BACKENDS = [
  '',
  ',"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}',
  ',"BackendType":"vxlan","BackendData":{"VNI":4096,"VtepMAC":"C6:D2:32:6F:8F:44"}',
  ',"BackendType":"host-gw"',
  ',"BackendType":"udp","BackendData":null',
  ',"BackendType":""',
  ',"BackendType":"wireguard","BackendData":{"PublicKey":"aGVsbG8+/w==","Port":51820}',
  ',"BackendType":"x","BackendData":{}',
  ',"BackendType":"x","BackendData":{"A":01}', // invalid JSON number
  ',"BackendType":"x","BackendData":{"A":1"B":2}', // missing comma
  ',"BackendType":"x","BackendData":{"A":-0,"B":"s"}',
  ',"BackendType":"x","BackendData":{"A":{"B":1}}', // nested: general path
  ',"BackendType":"a\\u0062"', // escape: general path
  ',"BackendData":{"VNI":1}',
]

describe('lease value fast paths agree with the general decoders', () => {
  test('decodeLeaseAttrs', () => {
    let n = 0
    for (const ip of IPS) {
      for (const b of BACKENDS) {
        for (const v6 of ['null', '"fd00::1"']) {
          const text = `{"PublicIP":"${ip}","PublicIPv6":${v6}${b}}`
          assert.deepEqual(decodeLeaseAttrs(text), decodeLeaseAttrsGeneral(text), text)
          n++
        }
      }
    }
    assert.equal(n, IPS.length * BACKENDS.length * 2)
  })

  test('decodeVxlanData', () => {
    const vnis = ['0', '1', '4096', '16777215', '4294967295', '4294967296', '01', '-1', '1.5', '99999999999']
    const macs = [
      'c6:d2:32:6f:8f:44',
      'C6:D2:32:6F:8F:44',
      'c6-d2-32-6f-8f-44',
      'c6d2.326f.8f44',
      'zz:d2:32:6f:8f:44',
      'c6:d2:32:6f:8f',
    ]
    for (const vni of vnis) {
      for (const mac of macs) {
        const text = `{"VNI":${vni},"VtepMAC":"${mac}"}`
        assert.deepEqual(decodeVxlanData(text), decodeVxlanDataGeneral(text), text)
      }
    }
  })

  test('parseMAC returns canonical text unchanged and normalises the rest', () => {
    assert.equal(parseMAC('c6:d2:32:6f:8f:44'), 'c6:d2:32:6f:8f:44')
    assert.equal(parseMAC('C6-D2-32-6F-8F-44'), 'c6:d2:32:6f:8f:44')
    assert.equal(parseMAC('c6d2.326f.8f44'), 'c6:d2:32:6f:8f:44')
    assert.equal(parseMAC('c6:d2:32:6f:8f'), null)
  })
})
