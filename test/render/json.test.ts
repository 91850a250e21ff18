import assert from 'node:assert/strict'
import {describe, test} from 'node:test'

import {jsonPieces} from '../../src/render/json.js'

describe('jsonPieces', () => {
  test('joins to exactly JSON.stringify(value, null, 2)', () => {
    const big = Array.from({length: 2500}, (_, i) => ({
      subnet: `10.0.${i >> 8}.${i & 255}/24`,
      nested: {a: [1, 2, {b: null}]},
      ttlSeconds: i % 2 ? null : i,
      skip: undefined,
    }))
    for (const v of [
      {revision: '1', leases: big, malformed: [], empty: {}, nothing: null},
      big,
      big.slice(0, 1024),
      big.slice(0, 1025),
      {deep: {deeper: big.slice(0, 300)}},
      [undefined, () => 1, ...big.slice(0, 300)],
      [],
      {a: undefined, f: () => 1},
      'text',
      42,
      null,
      {when: new Date(0)},
    ]) {
      assert.equal([...jsonPieces(v)].join(''), JSON.stringify(v, null, 2))
    }
  })
})
