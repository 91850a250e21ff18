import assert from 'node:assert/strict'
import {describe, test} from 'node:test'

import {ExpandRefused, planExpand, rewriteConfig, smallestExpansion} from '../../src/core/expand.js'
import {parseCidr4} from '../../src/core/ipv4.js'
import {decodeLeases, type RawKV} from '../../src/core/leases.js'

function leases(entries: Array<[string, string]>) {
  const kvs: RawKV[] = entries.map(([key, ip], i) => ({
    key: `/coreos.com/network/subnets/${key}`,
    value: `{"PublicIP":"${ip}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:0${i}"}}`,
    createRevision: '5',
    modRevision: '5',
    version: '1',
    lease: '100',
  }))
  return decodeLeases(kvs).leases
}

function refused(fn: () => unknown): ExpandRefused {
  try {
    fn()
  } catch (error) {
    assert.ok(error instanceof ExpandRefused, `expected ExpandRefused, got ${String(error)}`)
    return error
  }
  assert.fail('expected a refusal')
}

describe('network expand planning', () => {
  test('/23 -> /22 with an omitted SubnetLen keeps SubnetLen 25 and every lease compatible', () => {
    const p = planExpand({
      configText: '{"Network":"10.0.0.0/23","Backend":{"Type":"vxlan"}}',
      to: '10.0.0.0/22',
      serviceCidrs: [],
      leases: leases([
        ['10.0.0.128-25', '192.168.1.1'],
        ['10.0.1.0-25', '192.168.1.2'],
        ['10.0.1.128-25', '192.168.1.3'],
      ]),
    })
    assert.equal(p.nextText, '{"Network":"10.0.0.0/22","SubnetLen":25,"Backend":{"Type":"vxlan"}}')
    assert.equal(p.next.effective.ipv4!.subnetLen, 25)
    assert.deepEqual(p.incompatible, [])
    assert.equal(p.checkedLeases, 3)
    assert.deepEqual([p.capacity.before.total, p.capacity.after.total], [3, 7])
  })

  test('the seed case 11.0.0.0/16 -> 11.0.0.0/8: capacity 255 -> 65535', () => {
    const p = planExpand({
      configText: '{"Network":"11.0.0.0/16","Backend":{"Type":"vxlan"}}',
      to: '11.0.0.0/8',
      serviceCidrs: [],
      leases: leases([['11.0.1.0-24', '192.168.1.1']]),
    })
    assert.equal(p.capacity.before.total, 255)
    assert.equal(p.capacity.after.total, 65535)
    assert.equal(p.capacity.after.used, 1)
    assert.equal(p.rangeKeptExplicit, false)
  })

  test('every other stored field is kept, including unknown keys and other spellings', () => {
    const text =
      '{"network": "10.5.0.0/16", "Backend": {"Type": "vxlan", "VNI": 4}, "EnableIPv6": false, "Custom": {"a": [1, 2]}, "Network": "10.5.0.0/16"}'
    assert.equal(
      rewriteConfig(text, {network: '10.4.0.0/15', subnetLen: 24}),
      '{"Network":"10.4.0.0/15","SubnetLen":24,"Backend":{"Type":"vxlan","VNI":4},"EnableIPv6":false,"Custom":{"a":[1,2]}}',
    )
  })

  test('explicit SubnetMin/SubnetMax are kept and the plan says capacity will not grow', () => {
    const p = planExpand({
      configText: '{"Network":"10.5.0.0/16","SubnetMin":"10.5.10.0","SubnetMax":"10.5.20.0"}',
      to: '10.4.0.0/15',
      serviceCidrs: [],
      leases: [],
    })
    assert.equal(p.rangeKeptExplicit, true)
    assert.equal(p.capacity.before.total, p.capacity.after.total)
    assert.match(p.followUps[0]!, /capacity does not grow/)
    const wider = planExpand({
      configText: '{"Network":"10.5.0.0/16","SubnetMin":"10.5.10.0","SubnetMax":"10.5.20.0"}',
      to: '10.4.0.0/15',
      serviceCidrs: [],
      subnetMax: '10.5.255.0',
      leases: [],
    })
    assert.equal(wider.capacity.after.total, 246)
  })

  const base = '{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}'
  test('refuses a network that does not strictly contain the old one', () => {
    assert.match(
      refused(() => planExpand({configText: base, to: '10.5.0.0/16', serviceCidrs: [], leases: []})).message,
      /does not strictly contain/,
    )
    assert.match(
      refused(() => planExpand({configText: base, to: '10.6.0.0/15', serviceCidrs: [], leases: []})).message,
      /does not strictly contain/,
    )
  })
  test('refuses another family and host bits', () => {
    assert.match(
      refused(() => planExpand({configText: base, to: 'fd00::/8', serviceCidrs: [], leases: []})).message,
      /family cannot change/,
    )
    assert.match(
      refused(() => planExpand({configText: base, to: '10.5.0.1/15', serviceCidrs: [], leases: []})).message,
      /host bits set; write 10\.4\.0\.0\/15/,
    )
  })
  test('refuses node addresses inside the new network, naming them', () => {
    const e = refused(() =>
      planExpand({
        configText: base,
        to: '10.0.0.0/8',
        serviceCidrs: [],
        leases: leases([['10.5.1.0-24', '10.20.0.5']]),
      }),
    )
    assert.match(e.message, /1 node address\(es\) lie inside 10\.0\.0\.0\/8.*10\.20\.0\.5 \(10\.5\.1\.0\/24\)/)
  })
  test('refuses an overlap with a service range', () => {
    assert.match(
      refused(() => planExpand({configText: base, to: '10.0.0.0/8', serviceCidrs: ['10.96.0.0/12'], leases: []}))
        .message,
      /overlaps the service range 10\.96\.0\.0\/12/,
    )
  })
  test('refuses when a lease would become incompatible, listing it', () => {
    const e = refused(() =>
      planExpand({
        configText: '{"Network":"10.5.0.0/16","SubnetMax":"10.5.200.0"}',
        to: '10.4.0.0/15',
        subnetMax: '10.5.100.0',
        serviceCidrs: [],
        leases: leases([['10.5.150.0-24', '192.168.1.1']]),
      }),
    )
    assert.match(e.message, /1 lease\(s\) would become incompatible.*10\.5\.150\.0\/24 \(192\.168\.1\.1\): outside/)
  })
  test('refuses an invalid stored config', () => {
    assert.match(
      refused(() =>
        planExpand({configText: '{"Network":"10.0.0.0/29"}', to: '10.0.0.0/8', serviceCidrs: [], leases: []}),
      ).message,
      /stored config is invalid/,
    )
  })

  test('smallest expansion that reaches a wanted count', () => {
    const c = smallestExpansion(parseCidr4('10.5.0.0/16')!, 24, 300, () => true)
    assert.deepEqual(c, {ip: parseCidr4('10.4.0.0/15')!.ip, prefix: 15})
  })
})
