import assert from 'node:assert/strict'
import {describe, test} from 'node:test'

import {freeSubnets, planAcquire} from '../../src/core/allocation.js'
import {resolveNetworkConfig} from '../../src/core/config.js'
import {formatCidr4, formatIPv4, parseCidr4, parseIPv4} from '../../src/core/ipv4.js'
import {decodeLeases, type RawKV} from '../../src/core/leases.js'

function setup(config: string, keys: Array<[string, string]>) {
  const r = resolveNetworkConfig(config)
  assert.ok(r.ok)
  const kvs: RawKV[] = keys.map(([k, ip]) => ({
    key: `/coreos.com/network/subnets/${k}`,
    value: `{"PublicIP":"${ip}","PublicIPv6":null}`,
    createRevision: '1',
    modRevision: '1',
    version: '1',
    lease: '5',
  }))
  return {...r.value, leases: decodeLeases(kvs).leases}
}

// pkg/subnet/etcd/subnet_test.go, docs/flannel.md §4.4
const EXAMPLE = '{ "Network": "10.3.0.0/16", "SubnetMin": "10.3.1.0", "SubnetMax": "10.3.25.0" }'
const EXISTING: Array<[string, string]> = [
  ['10.3.1.0-24', '1.1.1.1'],
  ['10.3.2.0-24', '1.1.1.1'],
  ['10.3.4.0-24', '1.1.1.1'],
  ['10.3.5.0-24', '1.1.1.1'],
  ['10.3.31.0-24', '1.1.1.1'],
]

describe('allocation (flanneld policy, O(n log n))', () => {
  test("flannel's worked example: the bag is 10.3.3.0 and 10.3.6.0 .. 10.3.25.0 (21 subnets)", () => {
    const s = setup(EXAMPLE, EXISTING)
    const bag = freeSubnets(
      s.effective.ipv4!,
      s.leases.map((l) => l.subnet),
    ).map(formatIPv4)
    assert.equal(bag.length, 21)
    assert.equal(bag[0], '10.3.3.0')
    assert.equal(bag[1], '10.3.6.0')
    assert.equal(bag.at(-1), '10.3.25.0')
  })

  test('the pick is uniform over the bag: random 0 picks the first, 0.999 the last', () => {
    const s = setup(EXAMPLE, EXISTING)
    const first = planAcquire({...s, publicIP: parseIPv4('1.2.3.4')!, previous: null, random: 0})
    const last = planAcquire({...s, publicIP: parseIPv4('1.2.3.4')!, previous: null, random: 0.999})
    assert.deepEqual(
      [first.kind === 'create' && formatCidr4(first.subnet), last.kind === 'create' && formatCidr4(last.subnet)],
      ['10.3.3.0/24', '10.3.25.0/24'],
    )
  })

  test('a second acquire with the same PublicIP reuses its lease', () => {
    const s = setup(EXAMPLE, [...EXISTING, ['10.3.9.0-24', '1.2.3.4']])
    const p = planAcquire({...s, publicIP: parseIPv4('1.2.3.4')!, previous: null, random: 0.5})
    assert.equal(p.kind, 'reuse')
    assert.equal(p.kind === 'reuse' && formatCidr4(p.lease.subnet), '10.3.9.0/24')
  })

  test('previous subnet 10.3.6.0/24 is taken exactly; 10.4.1.0/24 (incompatible) is ignored; a held one is ignored', () => {
    const s = setup(EXAMPLE, EXISTING)
    const ip = parseIPv4('1.2.3.4')!
    const p = planAcquire({...s, publicIP: ip, previous: parseCidr4('10.3.6.0/24'), random: 0.5})
    assert.deepEqual(p.kind === 'create' && [formatCidr4(p.subnet), p.why], ['10.3.6.0/24', 'previous'])
    assert.equal(
      planAcquire({...s, publicIP: ip, previous: parseCidr4('10.4.1.0/24'), random: 0}).kind === 'create' &&
        'allocated',
      'allocated',
    )
    const held = planAcquire({...s, publicIP: ip, previous: parseCidr4('10.3.2.0/24'), random: 0})
    assert.deepEqual(held.kind === 'create' && [formatCidr4(held.subnet), held.why], ['10.3.3.0/24', 'allocated'])
  })

  test('an incompatible lease with our PublicIP is deleted and its subnet not picked this round', () => {
    const s = setup(EXAMPLE, [
      ['10.3.3.0-25', '1.2.3.4'],
      ['10.3.1.0-24', '9.9.9.9'],
    ])
    const p = planAcquire({...s, publicIP: parseIPv4('1.2.3.4')!, previous: null, random: 0})
    assert.equal(p.kind, 'create')
    assert.deepEqual(
      p.deleted.map((l) => formatCidr4(l.subnet)),
      ['10.3.3.0/25'],
    )
    assert.equal(p.kind === 'create' && formatCidr4(p.subnet), '10.3.2.0/24')
  })

  test('out of subnets', () => {
    const s = setup('{"Network":"10.0.0.0/22"}', [
      ['10.0.1.0-24', '1.1.1.1'],
      ['10.0.2.0-24', '1.1.1.2'],
      ['10.0.3.0-24', '1.1.1.3'],
    ])
    assert.equal(planAcquire({...s, publicIP: parseIPv4('1.2.3.4')!, previous: null, random: 0}).kind, 'exhausted')
  })

  test('a dense /8: 65,000 of 65,535 taken, the bag holds exactly the 100 lowest free slots', () => {
    const s = setup('{"Network":"10.0.0.0/8"}', [])
    const taken = Array.from({length: 65_000}, (_, i) => ({ip: (10 << 24) + (i + 1) * 256, prefix: 24}))
    const bag = freeSubnets(s.effective.ipv4!, taken)
    assert.equal(bag.length, 100)
    assert.equal(formatIPv4(bag[0]!), formatIPv4((10 << 24) + 65_001 * 256))
  })
})
