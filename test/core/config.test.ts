import assert from 'node:assert/strict'
import {describe, test} from 'node:test'

import {
  checkNetworkConfig,
  extraConfigFindings,
  parseNetworkConfig,
  resolveNetworkConfig,
  totalSubnets4,
} from '../../src/core/config.js'
import {formatIPv4} from '../../src/core/ipv4.js'
import {formatIP6Flannel} from '../../src/core/ipv6.js'

function eff(text: string) {
  const r = resolveNetworkConfig(text)
  assert.ok(r.ok, r.ok ? '' : r.error)
  return r.value.effective
}

function err(text: string): string {
  const r = resolveNetworkConfig(text)
  assert.equal(r.ok, false, `expected ${text} to be rejected`)
  return r.ok ? '' : r.error
}

describe('CheckNetworkConfig: computed defaults (docs/flannel.md §3.3)', () => {
  const rows: Array<[string, number, string, string, number]> = [
    ['{"network":"10.3.0.0/16"}', 24, '10.3.1.0', '10.3.255.0', 255],
    [
      '{"Network":"10.3.0.0/16","SubnetMin":"10.3.5.0","SubnetMax":"10.3.8.0","SubnetLen":28}',
      28,
      '10.3.5.0',
      '10.3.8.0',
      49,
    ],
    ['{"Network":"10.0.0.0/8"}', 24, '10.0.1.0', '10.255.255.0', 65535],
    ['{"Network":"10.244.0.0/16"}', 24, '10.244.1.0', '10.244.255.0', 255],
    ['{"Network":"172.16.0.0/12"}', 24, '172.16.1.0', '172.31.255.0', 4095],
    ['{"Network":"10.0.0.0/22"}', 24, '10.0.1.0', '10.0.3.0', 3],
    ['{"Network":"10.0.0.0/23"}', 25, '10.0.0.128', '10.0.1.128', 3],
    ['{"Network":"10.0.0.0/24"}', 26, '10.0.0.64', '10.0.0.192', 3],
    ['{"Network":"10.0.0.0/28"}', 30, '10.0.0.4', '10.0.0.12', 3],
    ['{"Network":"10.3.0.0/16","SubnetLen":18}', 18, '10.3.64.0', '10.3.192.0', 3],
    [
      '{"Network":"10.0.0.0/8","SubnetLen":20,"SubnetMin":"10.10.0.0","SubnetMax":"10.99.0.0"}',
      20,
      '10.10.0.0',
      '10.99.0.0',
      1425,
    ],
  ]
  for (const [text, len, min, max, n] of rows) {
    test(text, () => {
      const e = eff(text).ipv4!
      assert.equal(e.subnetLen, len)
      assert.equal(formatIPv4(e.subnetMin), min)
      assert.equal(formatIPv4(e.subnetMax), max)
      assert.equal(totalSubnets4(e), n)
    })
  }

  test('defaulted fields are reported', () => {
    assert.deepEqual(eff('{"Network":"10.3.0.0/16","SubnetLen":24}').defaulted, ['subnetMin', 'subnetMax'])
  })

  test('IPv6-only config from config_test.go', () => {
    const e = eff('{"enableIPv6":true,"ipv6Network":"fc00::/48","enableIPv4":false}')
    assert.equal(e.ipv4, null)
    assert.equal(e.ipv6!.subnetLen, 64)
    assert.equal(formatIP6Flannel(e.ipv6!.subnetMin), 'fc00:0:0:1::')
    assert.equal(formatIP6Flannel(e.ipv6!.subnetMax), 'fc00:0:0:ffff::')
  })

  test('IPv6 explicit min/max/len from config_test.go', () => {
    const e = eff(
      '{"EnableIPv6":true,"IPv6Network":"fc00::/48","IPv6SubnetMin":"fc00:0:0:1::","IPv6SubnetMax":"fc00:0:0:f::","IPv6SubnetLen":124,"Network":"10.1.0.0/16"}',
    )
    assert.equal(e.ipv6!.subnetLen, 124)
    assert.equal(formatIP6Flannel(e.ipv6!.subnetMax), 'fc00:0:0:f::')
  })
})

describe("CheckNetworkConfig: flannel's error messages", () => {
  const rows: Array<[string, string]> = [
    ['{"Network":"10.0.0.0/29"}', 'network is too small. Minimum useful network prefix is /28'],
    ['{"Network":"10.3.0.0/16","SubnetLen":17}', 'network must be able to accommodate at least four subnets'],
    ['{"Network":"10.3.0.0/16","SubnetLen":31}', 'SubnetLen must be less than /31'],
    ['{"Network":"10.3.0.0/16","SubnetMin":"10.3.5.1"}', 'SubnetMin is not on a SubnetLen boundary: 10.3.5.1'],
    ['{"Network":"10.3.0.0/16","SubnetMax":"10.3.5.1"}', 'SubnetMax is not on a SubnetLen boundary: 10.3.5.1'],
    ['{"Network":"10.3.0.0/16","SubnetMin":"10.4.0.0"}', 'SubnetMin is not in the range of the Network'],
    ['{"Network":"10.3.0.0/16","SubnetMax":"10.4.0.0"}', 'SubnetMax is not in the range of the Network'],
    ['{}', 'please define a correct Network parameter in the flannel config'],
    ['{"Network":"10.0.0.0/0"}', 'please define a correct Network parameter in the flannel config'],
    ['{"Network":"fd00::/64"}', 'invalid IPv4 CIDR format'],
    ['{"Network":"10.0.0.0"}', 'invalid CIDR address: 10.0.0.0'],
    [
      '{"Network":"10.3.0.0/16","SubnetLen":"24"}',
      'json: cannot unmarshal string into Go struct field Config.SubnetLen of type uint',
    ],
    [
      '{"Network":"10.3.0.0/16","SubnetLen":-1}',
      'json: cannot unmarshal number -1 into Go struct field Config.SubnetLen of type uint',
    ],
    [
      '{"Network":"10.3.0.0/16","EnableIPv6":true}',
      'please define a correct IPv6Network parameter in the flannel config',
    ],
    ['{"Network":"10.3.0.0/16","EnableIPv4":false}', 'none defined stack'],
    ['{"Network":"10.3.0.0/16","Backend":{"Type":"bogus"}}', 'unknown backend type: bogus'],
    ['{"Network":"10.3.0.0/16","Backend":{}}', 'unknown backend type: '],
    [
      '{"Network":"10.3.0.0/16","Backend":{"Type":"vxlan","VNI":"1"}}',
      'error decoding VXLAN backend config: json: cannot unmarshal string into Go struct field VXLANConfig.vni of type int',
    ],
    ['[]', 'json: cannot unmarshal array into Go value of type subnet.Config'],
    ['{"Network":', 'unexpected end of JSON input'],
  ]
  for (const [text, message] of rows) test(text, () => assert.equal(err(text), message))
})

describe('ParseConfig: Go semantics', () => {
  test('missing Backend means udp; Type is looked up case-insensitively', () => {
    assert.equal(eff('{"Network":"10.3.0.0/16"}').backendType, 'udp')
    assert.equal(eff('{"Network":"10.3.0.0/16","backend":{"type":"VXLAN"}}').backendType, 'vxlan')
  })

  test('host bits in Network are masked silently; we warn', () => {
    const p = parseNetworkConfig('{"Network":"10.5.1.1/16","Backend":{"Type":"vxlan"}}')
    assert.ok(p.ok)
    const c = checkNetworkConfig(p.value)
    assert.ok(c.ok)
    assert.equal(formatIPv4(c.value.ipv4!.network.ip), '10.5.0.0')
    assert.deepEqual(
      extraConfigFindings(p.value, c.value).map((f) => f.id),
      ['config-noncanonical'],
    )
  })

  test('SubnetMin above SubnetMax: flanneld accepts, we report an error', () => {
    const p = parseNetworkConfig(
      '{"Network":"10.3.0.0/16","SubnetMin":"10.3.9.0","SubnetMax":"10.3.2.0","Backend":{"Type":"vxlan"}}',
    )
    assert.ok(p.ok)
    const c = checkNetworkConfig(p.value)
    assert.ok(c.ok)
    assert.equal(totalSubnets4(c.value.ipv4!), 0)
    assert.deepEqual(
      extraConfigFindings(p.value, c.value).map((f) => [f.id, f.severity]),
      [['config-range-inverted', 'error']],
    )
  })

  test('vxlan options with defaults', () => {
    assert.deepEqual(
      eff('{"Network":"10.3.0.0/16","Backend":{"Type":"vxlan","vni":4,"Port":4789,"DirectRouting":true,"MTU":9000}}')
        .vxlan,
      {
        vni: 4,
        port: 4789,
        mtu: 9000,
        gbp: false,
        learning: false,
        directRouting: true,
      },
    )
    assert.equal(eff('{"Network":"10.3.0.0/16","Backend":{"Type":"vxlan"}}').vxlan!.vni, 1)
  })

  test('SubnetMin "0.0.0.0" counts as unset', () => {
    assert.equal(formatIPv4(eff('{"Network":"10.3.0.0/16","SubnetMin":"0.0.0.0"}').ipv4!.subnetMin), '10.3.1.0')
  })
})
