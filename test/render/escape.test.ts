import assert from 'node:assert/strict'
import {describe, test} from 'node:test'

import {escapeJsonForTerminal, escapeOutput, escapeTerminal} from '../../src/render/escape.js'

describe('terminal escaping', () => {
  test('control and invisible formatting characters become visible escapes', () => {
    assert.equal(
      escapeTerminal('a\u001b[31mb\n\t\r\u0000\u007f\u009b\u202e'),
      'a\\x1b[31mb\\n\\t\\r\\x00\\x7f\\x9b\\u202e',
    )
    assert.equal(escapeTerminal('plain 漢字 é'), 'plain 漢字 é')
  })

  test('the output safety net keeps newlines and colour codes, escapes the rest', () => {
    assert.equal(escapeOutput('\u001b[31mred\u001b[39m\nx\u001b[2J'), '\u001b[31mred\u001b[39m\nx\\x1b[2J')
  })

  test('JSON for a terminal: the same value, C1 and bidi as \\u escapes', () => {
    const v = {k: 'a\u009bb\u202ec\u001b'}
    const text = escapeJsonForTerminal(JSON.stringify(v))
    assert.equal(text, '{"k":"a\\u009bb\\u202ec\\u001b"}')
    assert.deepEqual(JSON.parse(text), v)
  })
})
