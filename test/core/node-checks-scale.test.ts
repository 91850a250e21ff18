// doctor --local's per-peer checks (routes, neighbours, FDB, DirectRouting, host-gw) are indexed: they must find
// exactly what the scanning implementation found, on a damaged node in a cluster of thousands.

import assert from 'node:assert/strict'
import {describe, test} from 'node:test'

import {nodeChecks} from '../../src/core/node-checks.js'
import {comparablePeerFindings, referencePeerFindings, scenario, type Variant} from './node-checks-scenario.js'

describe('doctor --local peer checks: the same findings as the scanning implementation', () => {
  for (const variant of ['vxlan', 'directrouting', 'host-gw'] as Variant[]) {
    test(`${variant}, 3,000 peers`, () => {
      const {obs, ctx} = scenario(3000, variant)
      const got = comparablePeerFindings(nodeChecks(obs, ctx))
      const want = referencePeerFindings(obs, ctx)
      assert.deepEqual(got, want)
      const kinds = new Set(got.map((f) => f.id))
      const expected =
        variant === 'host-gw'
          ? ['route-missing', 'hostgw-peer-unreachable']
          : ['route-missing', 'neigh-missing', 'fdb-missing', 'route-stale']
      for (const id of expected) assert.ok(kinds.has(id), `${variant}: no ${id} finding (scenario too healthy)`)
    })
  }
})
