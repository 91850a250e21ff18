// vxlanLeaseText reads a lease of flanneld's exact vxlan bytes off its text (leases ls --json's fast path): whenever
// it answers, decodeLease and leaseToJson must give the same lease, piece for piece, and it must answer for what
// flanneld writes. Inputs: flanneld's keys and values with random contents, and near misses of each piece (leading
// zeros, out-of-range octets, prefixes and VNIs, other spellings, escapes and odd characters in the key).

import assert from 'node:assert/strict'
import {describe, test} from 'node:test'

import {decodeLease, isMalformed, type RawKV, vxlanLeaseText} from '../../src/core/leases.js'
import {leaseToJson} from '../../src/services/leases.js'

let seed = 4242
const rand = () => (seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0) / 2 ** 32
const int = (n: number) => Math.floor(rand() * n)
const pick = <T>(a: readonly T[]): T => a[int(a.length)]!
const hex2 = (b: number) => b.toString(16).padStart(2, '0')

const octet = () => (rand() < 0.8 ? String(int(256)) : pick(['0', '255', '256', '01', '00', '999', '', '-1', '1a']))
const quad = () => [octet(), octet(), octet(), octet()].join('.')
const prefix = () => (rand() < 0.8 ? String(int(33)) : pick(['0', '00', '08', '024', '31', '32', '33', '99', '', 'x']))
const vni = () =>
  rand() < 0.6
    ? String(int(1 << 24))
    : pick(['0', '1', '4294967295', '4294967296', '9999999999', '1000000000', '01', '-1', '1.0', '12345678901'])
const mac = () =>
  rand() < 0.85
    ? Array.from({length: 6}, () => hex2(int(256))).join(':')
    : pick(['C6:D2:32:6F:8F:44', 'c6-d2-32-6f-8f-44', 'c6:d2:32:6f:8f', 'zz:d2:32:6f:8f:44'])
const dir = () =>
  rand() < 0.85
    ? '/coreos.com/network/subnets/'
    : pick(['/coreos.com/network/subnets/x/', '/a"b/subnets/', '/a\\b/subnets/', '/\u0001/', '/é/', '/\ud800/', '/'])

function kv(i: number): RawKV {
  const key = dir() + quad() + '-' + prefix() + (rand() < 0.05 ? pick(['&fd00::-64', 'x', '-24', '/']) : '')
  const v6 = rand() < 0.5 ? ',"PublicIPv6":null' : rand() < 0.9 ? '' : ',"PublicIPv6":"fd00::1"'
  let value = `{"PublicIP":"${quad()}"${v6},"BackendType":"vxlan","BackendData":{"VNI":${vni()},"VtepMAC":"${mac()}"}}`
  if (rand() < 0.05) value = value.replace(pick(['vxlan', '{"VNI"', '}}']), pick(['host-gw', '{"VNI" ', '} }']))
  const rev = rand() < 0.97 ? String(i + 2) : pick(['"', '\u0000', '12\n'])
  return {
    key,
    value,
    createRevision: rev,
    modRevision: String(i + 3),
    version: '1',
    lease: rand() < 0.1 ? '0' : String(i),
  }
}

describe('vxlanLeaseText', () => {
  test('is what decodeLease and leaseToJson make of the same key-value, whenever it answers', () => {
    let answered = 0
    for (let i = 0; i < 40_000; i++) {
      const x = kv(i)
      const t = vxlanLeaseText(x)
      if (t === null) continue
      answered++
      const l = decodeLease(x)
      assert.ok(!isMalformed(l), JSON.stringify(x))
      const j = leaseToJson(l, null, 0)
      const why = JSON.stringify({x, t})
      assert.equal(t.order, l.subnet.ip * 64 + l.subnet.prefix, why)
      assert.equal(t.subnet, j.subnet, why)
      assert.equal(t.publicIP, j.publicIP, why)
      assert.equal(t.vni, String(j.vni), why)
      assert.equal(t.vtepMAC, j.vtepMAC, why)
      assert.deepStrictEqual(j.backendData, {VNI: Number(t.vni), VtepMAC: t.vtepMAC}, why)
      assert.deepStrictEqual(
        [j.ipv6Subnet, j.publicIPv6, j.backendType, j.reserved],
        [null, null, 'vxlan', x.lease === '0'],
        why,
      )
    }
    // most generated inputs are flanneld's own bytes: the fast path must take them
    assert.ok(answered > 3_000, `answered ${answered}`)
  })

  test("answers for flanneld's bytes, with and without PublicIPv6, and not for near misses", () => {
    const value = (v6: string, v: string, m = 'c6:d2:32:6f:00:01') =>
      `{"PublicIP":"198.18.0.1"${v6},"BackendType":"vxlan","BackendData":{"VNI":${v},"VtepMAC":"${m}"}}`
    const at = (key: string, v: string): RawKV => ({
      key,
      value: v,
      createRevision: '5',
      modRevision: '6',
      version: '1',
      lease: '7587869207405510000',
    })
    const k = '/coreos.com/network/subnets/10.5.1.0-24'
    for (const v of [value(',"PublicIPv6":null', '1'), value('', '1'), value('', '4294967295'), value('', '0')])
      assert.deepStrictEqual(vxlanLeaseText(at(k, v)), {
        order: (10 * 2 ** 24 + 5 * 2 ** 16 + 256) * 64 + 24,
        subnet: '10.5.1.0/24',
        publicIP: '198.18.0.1',
        vni: JSON.parse(v).BackendData.VNI.toString(),
        vtepMAC: 'c6:d2:32:6f:00:01',
      })
    assert.equal(vxlanLeaseText(at('/coreos.com/network/subnets/10.5.1.0-8', value('', '1')))?.subnet, '10.5.1.0/8')
    assert.equal(vxlanLeaseText(at('/coreos.com/network/subnets/10.5.1.0-0', value('', '1')))?.subnet, '10.5.1.0/0')
    for (const key of ['10.5.1.0-08', '10.5.1.0-024', '10.5.1.0-32', '010.5.1.0-24', '10.5.1.0-2a', '10.5.1.0', '-24'])
      assert.equal(vxlanLeaseText(at('/coreos.com/network/subnets/' + key, value('', '1'))), null, key)
    for (const v of [
      value('', '4294967296'),
      value('', '01'),
      value('', '1', 'C6:D2:32:6F:00:01'),
      value(',"PublicIPv6":"fd00::1"', '1'),
    ])
      assert.equal(vxlanLeaseText(at(k, v)), null, v)
  })
})
