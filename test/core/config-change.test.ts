import assert from 'node:assert/strict'
import {describe, test} from 'node:test'

import {judgeConfigChange} from '../../src/core/config-change.js'
import {resolveNetworkConfig} from '../../src/core/config.js'

const eff = (text: string) => {
  const r = resolveNetworkConfig(text)
  if (!r.ok) throw new Error(r.error)
  return r.value.effective
}
const base = '{"Network":"198.19.0.0/16","Backend":{"Type":"vxlan"}}'

describe('judgeConfigChange', () => {
  test('the same config (even written differently) is the same', () => {
    assert.deepEqual(
      judgeConfigChange(eff(base), eff('{"Network":"198.19.0.0/16","Backend":{"Type":"VXLAN","VNI":1}}')),
      {
        kind: 'same',
      },
    )
  })
  test('Network, SubnetMin, SubnetMax and DirectRouting are followed', () => {
    const r = judgeConfigChange(eff(base), eff('{"Network":"198.16.0.0/14","Backend":{"Type":"vxlan"}}'))
    assert.equal(r.kind, 'follow')
    // SubnetMax (the last subnet) is 198.19.255.0 in both.
    assert.deepEqual(r.kind === 'follow' && r.changed, [
      'Network 198.19.0.0/16 -> 198.16.0.0/14',
      'SubnetMin 198.19.1.0 -> 198.16.1.0',
    ])
    const d = judgeConfigChange(
      eff(base),
      eff('{"Network":"198.19.0.0/16","Backend":{"Type":"vxlan","DirectRouting":true}}'),
    )
    assert.deepEqual(d, {kind: 'follow', changed: ['Backend.DirectRouting false -> true']})
  })
  test('backend type, VNI, Port, GBP, MTU, SubnetLen, EnableNFTables are refused', () => {
    const cases: Array<[string, string]> = [
      ['{"Network":"198.19.0.0/16","Backend":{"Type":"host-gw"}}', 'Backend.Type vxlan -> host-gw'],
      ['{"Network":"198.19.0.0/16","Backend":{"Type":"vxlan","VNI":7}}', 'Backend.VNI 1 -> 7'],
      ['{"Network":"198.19.0.0/16","Backend":{"Type":"vxlan","Port":4789}}', 'Backend.Port 0 -> 4789'],
      ['{"Network":"198.19.0.0/16","Backend":{"Type":"vxlan","GBP":true}}', 'Backend.GBP false -> true'],
      ['{"Network":"198.19.0.0/16","Backend":{"Type":"vxlan","MTU":1400}}', 'Backend.MTU 0 -> 1400'],
      ['{"Network":"198.19.0.0/16","SubnetLen":26,"Backend":{"Type":"vxlan"}}', 'SubnetLen 24 -> 26'],
      ['{"Network":"198.19.0.0/16","EnableNFTables":true,"Backend":{"Type":"vxlan"}}', 'EnableNFTables false -> true'],
    ]
    for (const [next, why] of cases) {
      const r = judgeConfigChange(eff(base), eff(next))
      assert.equal(r.kind, 'refuse', next)
      assert.ok(r.kind === 'refuse' && r.changed.includes(why), `${next}: ${JSON.stringify(r)}`)
    }
  })
})
