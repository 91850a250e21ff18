import assert from 'node:assert/strict'
import {describe, test} from 'node:test'

import {renderTable} from '../../src/render/table.js'
import {displayWidth} from '../../src/render/width.js'

describe('tables by display width', () => {
  test('wide, emoji and combining characters align; colour codes take no room', () => {
    const t = renderTable(
      ['A', 'B'],
      [
        ['漢字', 'x'],
        ['🙂', 'x'],
        ['e\u0301e\u0301', 'x'],
        ['\u001b[36mab\u001b[39m', 'x'],
        ['abcd', 'x'],
      ],
    )
    // eslint-disable-next-line no-control-regex
    const cols = t.split('\n').map((l) => displayWidth(l.replace(/\u001b\[[0-9;]*m/g, '').slice(0, -1)))
    assert.deepEqual(new Set(cols).size, 1, t)
  })

  test('maxCell cuts long cells with an ellipsis, by display width', () => {
    const t = renderTable(['K'], [['x'.repeat(50)], ['漢'.repeat(20)]], {maxCell: 10})
    assert.deepEqual(t.split('\n').slice(1), ['xxxxxxxxx…', '漢漢漢漢…'])
  })
})
