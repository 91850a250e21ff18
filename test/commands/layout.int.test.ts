// doctor's findings and the mutations' plans laid out to the terminal width (cli-table3 with flannelctl's width
// function), through the built CLI on a pseudo-terminal at a narrow and a wide width, against a real etcd holding
// keys with wide, combining, zero-width and emoji characters and long names: no line is wider than the terminal
// except a line holding a whole suggested command; messages wrap in their column and lose no character; no raw
// control character from the data reaches the terminal; every suggested command is on one line, whole.

import assert from 'node:assert/strict'
import {after, before, describe, test} from 'node:test'

import {escapeTerminal} from '../../src/render/escape.js'
import {displayWidth} from '../../src/render/width.js'
import {json, putKey, putSubnet, runCli, show, vxlanValue} from '../helpers/cli.js'
import {type EtcdServer, startEtcd} from '../helpers/etcd.js'
import {runCliTty} from '../helpers/tty.js'

let etcd: EtcdServer
const P = '/layout'
/** A prefix long enough that every key is wider than a narrow terminal's KEY column. */
const LONG = `/${'p'.repeat(48)}`
// U+200B counts 0 columns for string-width 8 and 1 for cli-table3's own string-width 4: a cell measured with the
// other function would be cut with … or misaligned.
const ODD = '漢字é\u0301🙂👨\u200d👩\u200d👧\u200b\u200b\u200b'
const ep = () => ['--endpoints', etcd.endpoint]

// eslint-disable-next-line no-control-regex
const SGR = /\u001b\[[0-9;]*m/g
const plain = (s: string) => s.replace(SGR, '')

before(async () => {
  etcd = await startEtcd()
  await putKey(etcd, `${P}/config`, '{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}')
  await putSubnet(etcd, `${P}/subnets/10.5.1.0-24`, vxlanValue('192.168.1.1', '02:00:00:00:00:01'))
  await putSubnet(etcd, `${P}/subnets/10.5.2.0-24`, vxlanValue('192.168.1.1', '02:00:00:00:00:02'))
  await putSubnet(etcd, `${P}/subnets/10.5.3.0-24`, vxlanValue('192.168.1.3', '02:00:00:00:00:03'), {lease: 1800})
  for (const [i, name] of [
    `${ODD}${'x'.repeat(120)}`,
    `a ${ODD} b ${ODD} c`,
    `${'w'.repeat(30)}\u001b[2J${ODD}`,
  ].entries())
    await putKey(etcd, `${P}/subnets/${i}-${name}`, 'not json')
  await putKey(etcd, `${LONG}/config`, '{"Network":"10.6.0.0/16","Backend":{"Type":"vxlan"}}')
  for (const n of [1, 2, 3])
    await putSubnet(etcd, `${LONG}/subnets/10.6.${n}.0-24`, vxlanValue(`192.168.2.${n}`, `02:00:00:00:01:0${n}`))
})

after(async () => {
  await etcd?.stop()
})

interface Cmd {
  argv: string[]
  shell: string
}
interface Finding {
  id: string
  message: string
  hint: string
  commands?: Cmd[]
}

/** Lines wider than `width` must hold a whole suggested command (and at most punctuation after it). */
function checkWidths(output: string, width: number, shells: string[]): void {
  for (const line of plain(output).split('\n')) {
    if (displayWidth(line) <= width) continue
    const t = line.trim()
    assert.ok(
      shells.some((s) => t === s || (t.startsWith(s) && /^[,;.)]*$/.test(t.slice(s.length)))),
      `line of ${displayWidth(line)} columns at width ${width}: ${JSON.stringify(line)}`,
    )
  }
}

function checkNoRawControls(output: string): void {
  // eslint-disable-next-line no-control-regex
  const raw = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/.exec(plain(output))
  assert.equal(raw, null, `raw control character ${JSON.stringify(raw?.[0])} on the terminal`)
}

describe('doctor findings laid out to the terminal', () => {
  for (const width of [60, 120]) {
    test(`at ${width} columns`, async () => {
      const j = await runCli(['doctor', '--etcd-prefix', P, ...ep(), '--json'])
      assert.equal(j.code, 5, show(j))
      const findings = json<{findings: Finding[]}>(j).findings
      for (const id of ['malformed-lease', 'duplicate-public-ip', 'missed-renewal'])
        assert.ok(
          findings.some((f) => f.id === id),
          id,
        )
      const shells = findings.flatMap((f) => (f.commands ?? []).map((c) => escapeTerminal(c.shell)))
      const r = await runCliTty(['doctor', '--etcd-prefix', P, ...ep()], {columns: width})
      assert.equal(r.code, 5, r.output)
      checkNoRawControls(r.output)
      checkWidths(r.output, width, shells)
      const lines = plain(r.output).split('\n')
      // Every suggested command is on one line, whole.
      for (const s of shells)
        assert.ok(
          lines.some((l) => l.includes(s)),
          `no line holds ${s}`,
        )
      // Each message: beside its label (wide) or under it (narrow), every continuation line starting in the
      // message's column, and no character lost to wrapping (the lines put together give the escaped message).
      for (const f of findings.filter((x) => x.id === 'malformed-lease')) {
        const at = lines.findIndex((l) => /^ {2}error \[malformed-lease\]/.test(l) && lines.indexOf(l) >= 0)
        assert.ok(at >= 0, r.output)
        const want = escapeTerminal(f.message).replaceAll(' ', '')
        const starts = lines.flatMap((l, i) => (/^ {2}error \[malformed-lease\]/.test(l) ? [i] : []))
        const blocks = starts.map((i) => {
          const label = lines[i]!
          const body: string[] = []
          const first = label.replace(/^ {2}error \[malformed-lease\] */, '')
          const column = displayWidth(label) - displayWidth(first)
          if (first !== '') body.push(first)
          for (let k = i + 1; k < lines.length && !/^ {4}hint:/.test(lines[k]!); k++) {
            const l = lines[k]!
            const indent = first === '' ? 4 : column
            assert.match(l, new RegExp(`^ {${indent}}\\S`), `continuation line out of its column: ${JSON.stringify(l)}`)
            body.push(l.trim())
          }
          return body.join('').replaceAll(' ', '')
        })
        assert.ok(blocks.includes(want), `message lost characters:\n${blocks.join('\n')}\nwant\n${want}`)
      }
      if (width === 60)
        assert.ok(
          lines.some((l) => /^ {4}\S/.test(l) && !l.includes('hint:')),
          'stacked layout',
        )
    })
  }

  test('on a pipe nothing is wrapped: one line per message and per hint', async () => {
    const r = await runCli(['doctor', '--etcd-prefix', P, ...ep()])
    assert.equal(r.code, 5, show(r))
    const findings = json<{findings: Finding[]}>(
      await runCli(['doctor', '--etcd-prefix', P, ...ep(), '--json']),
    ).findings
    // (a remaining TTL counts down between the two runs)
    const ttl = (x: string) => x.replace(/\d+ s left/g, 'N s left')
    const lines = ttl(r.stdout).split('\n')
    for (const f of findings) {
      assert.ok(
        lines.some((l) => l.endsWith(ttl(escapeTerminal(f.message)))),
        f.message,
      )
      assert.ok(
        lines.some((l) => l === `    hint: ${ttl(escapeTerminal(f.hint))}`),
        f.hint,
      )
    }
  })
})

describe('mutation plans laid out to the terminal', () => {
  test('leases release: the KEY column wraps within 60 columns, the other columns align', async () => {
    const subnets = ['10.6.1.0/24', '10.6.2.0/24', '10.6.3.0/24']
    const r = await runCliTty(['leases', 'release', ...subnets, '--etcd-prefix', LONG, ...ep(), '--dry-run'], {
      columns: 60,
    })
    assert.equal(r.code, 0, r.output)
    checkWidths(r.output, 60, [])
    const lines = plain(r.output).split('\n')
    const head = lines.findIndex((l) => l.startsWith('SUBNET'))
    assert.ok(head >= 0, r.output)
    const keyColumn = lines[head]!.indexOf('KEY')
    const rows = lines.slice(head + 1).filter((l) => l.trim() !== '' && !l.startsWith('dry run'))
    // Each key is wider than its column: a row's first line, then continuation lines in the KEY column.
    assert.ok(rows.length > subnets.length, r.output)
    let keys = ''
    for (const l of rows) {
      if (/^10\.6\.\d\.0\/24/.test(l)) keys += '\n'
      else assert.match(l, new RegExp(`^ {${keyColumn}}\\S`), `continuation out of the KEY column: ${l}`)
      keys += l.slice(keyColumn).trim()
    }
    assert.deepEqual(
      keys.trim().split('\n'),
      subnets.map((s) => `${LONG}/subnets/${s.replace('/', '-')}`),
    )
  })

  test('network expand: the plan and its follow-ups wrap within 60 columns', async () => {
    const wide = await runCliTty(['network', 'expand', '--to', '10.4.0.0/15', '--etcd-prefix', P, ...ep(), '--dry-run'])
    const r = await runCliTty(['network', 'expand', '--to', '10.4.0.0/15', '--etcd-prefix', P, ...ep(), '--dry-run'], {
      columns: 60,
    })
    assert.equal(r.code, 0, r.output)
    checkWidths(r.output, 60, [])
    checkNoRawControls(r.output)
    // The same words as at 120 columns, only wrapped.
    const words = (s: string) => plain(s).split(/\s+/).filter(Boolean)
    assert.deepEqual(words(r.output), words(wide.output))
    assert.match(plain(r.output), /^ {2}1\. \S/m)
    assert.match(plain(r.output), /^ {5}\S/m) // a follow-up's continuation, beside its number
  })
})
