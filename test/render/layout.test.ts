import assert from 'node:assert/strict'
import {describe, test} from 'node:test'

import {columnWidths, layoutRows, paragraph} from '../../src/render/layout.js'
import {startProgress} from '../../src/render/progress.js'
import {outputWidth} from '../../src/render/terminal.js'
import {displayWidth, wrapText} from '../../src/render/width.js'

// eslint-disable-next-line no-control-regex
const plain = (s: string) => s.replace(/\u001b\[[0-9;]*m/g, '')

describe('wrapText', () => {
  test('breaks at spaces, cuts a word wider than the line between graphemes, keeps every character', () => {
    const s =
      'ab cd 漢字漢字漢字 e\u0301e\u0301e\u0301e\u0301 👨\u200d👩\u200d👧👨\u200d👩\u200d👧👨\u200d👩\u200d👧 xyz'
    for (const w of [1, 2, 3, 5, 8]) {
      const lines = wrapText(s, w)
      for (const l of lines) assert.ok(displayWidth(l) <= Math.max(w, 2), `${JSON.stringify(l)} at ${w}`)
      assert.equal(lines.join('').replaceAll(' ', ''), s.replaceAll(' ', ''))
      // A combining accent never starts a line (graphemes are kept whole).
      assert.ok(lines.every((l) => !l.startsWith('\u0301')))
    }
    assert.deepEqual(wrapText('a b\nc', null), ['a b', 'c'])
  })

  test('a hanging indent: the lines after the first get the narrower width', () => {
    assert.deepEqual(paragraph('aaaa bbbb cccc dddd', 10, 4), ['aaaa bbbb', '    cccc', '    dddd'])
  })
})

describe('layoutRows (cli-table3)', () => {
  test('the last column wraps within the width; colour codes are closed on each line and reopened on the next', () => {
    const rows = [
      ['label', '\u001b[31m' + 'word '.repeat(20) + '\u001b[39m'],
      ['漢字', 'short'],
    ]
    const o = {width: 30, indent: 2, gap: 2}
    const widths = columnWidths(rows, o)
    const lines = layoutRows(rows, widths, o)
    assert.ok(lines.length > 3, lines.join('\n'))
    for (const l of lines) assert.ok(displayWidth(plain(l)) <= 30, l)
    // The message column starts at one display column on every line.
    const col = displayWidth('  label  ')
    for (const l of lines.slice(1, -1)) assert.match(plain(l), new RegExp(`^ {${col}}word`))
    assert.match(plain(lines.at(-1)!), /^ {2}漢字 {3}short$/)
    for (const l of lines.slice(0, -1)) {
      assert.ok(l.includes('\u001b[31m'), `colour reopened: ${JSON.stringify(l)}`)
      assert.ok(l.endsWith('\u001b[0m') || l.endsWith('\u001b[39m'), `colour closed: ${JSON.stringify(l)}`)
    }
  })

  test('without a width nothing wraps; a cell over 2,000 columns is cut with …', () => {
    const long = 'x'.repeat(5000)
    const o = {width: null, gap: 1}
    const lines = layoutRows([['a', long]], columnWidths([['a', long]], o), o)
    assert.equal(lines.length, 1)
    assert.equal(displayWidth(lines[0]!), 2 + 2000)
    assert.ok(lines[0]!.endsWith('…'))
  })
})

describe('outputWidth', () => {
  test("a terminal's columns; COLUMNS when it does not say; no wrapping on pipes unless COLUMNS; at least 40", () => {
    assert.equal(outputWidth({isTTY: true, columns: 132}, {}), 132)
    assert.equal(outputWidth({isTTY: true, columns: 0}, {COLUMNS: '90'}), 90)
    assert.equal(outputWidth({isTTY: true}, {}), 80)
    assert.equal(outputWidth({isTTY: false}, {}), null)
    assert.equal(outputWidth({isTTY: false}, {COLUMNS: '70'}), 70)
    assert.equal(outputWidth({isTTY: true, columns: 20}, {}), 40)
  })
})

describe('startProgress', () => {
  test('nothing before the delay; painted in place after it, cut to the width; end() erases it', async () => {
    let t = 0
    const writes: string[] = []
    const p = startProgress({
      enabled: true,
      delayMs: 50,
      now: () => t,
      stream: {write: (s: string) => writes.push(s), columns: 20},
    })
    p.update('reading TTLs: 1/2')
    assert.deepEqual(writes, [])
    t = 1000
    p.update('reading TTLs: 2/2 and a long tail')
    assert.equal(writes.length, 1)
    // eslint-disable-next-line no-control-regex
    assert.match(writes[0]!, /^\r[|/\\-] reading TTLs: 2\/…\u001b\[K$/)
    // clear(): erased for a note; the next update paints it again
    p.clear()
    assert.equal(writes.at(-1), '\r\u001b[K')
    t = 2000
    p.update('checking')
    assert.match(writes.at(-1)!, /checking/)
    p.end()
    assert.equal(writes.at(-1), '\r\u001b[K')
    const n = writes.length
    await new Promise((r) => setTimeout(r, 80))
    assert.equal(writes.length, n, 'no paint after end()')
  })

  test('disabled (a pipe, --json): never writes', async () => {
    const writes: string[] = []
    const p = startProgress({enabled: false, delayMs: 1, stream: {write: (s: string) => writes.push(s)}})
    p.update('x')
    await new Promise((r) => setTimeout(r, 20))
    p.end()
    assert.deepEqual(writes, [])
  })
})
