// Exit codes that tell the truth, through the built CLI: malformed snapshots exit 2 naming the entry, unknown doctor
// check IDs exit 2 listing the valid ones, and network validate reads a piped stdin but asks for FILE or - at a terminal.

import assert from 'node:assert/strict'
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, test} from 'node:test'

import {json, runCli, show} from '../helpers/cli.js'
import {runCliTty} from '../helpers/tty.js'

let tmp: string

before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'flannelctl-exit-'))
})

after(async () => {
  if (tmp) await rm(tmp, {recursive: true, force: true})
})

const b64 = (s: string) => Buffer.from(s).toString('base64')
const goodKv = {key: b64('/coreos.com/network/config'), value: b64('{"Network":"10.5.0.0/16"}'), mod_revision: 2}

describe('malformed snapshots exit 2 naming the entry', {concurrency: true}, () => {
  const shapes: Array<[string, string, RegExp]> = [
    ['kvs holds null', JSON.stringify({header: {revision: 5}, kvs: [goodKv, null]}), /kvs\[1\] is null/],
    ['kvs holds a string', JSON.stringify({header: {revision: 5}, kvs: ['x']}), /kvs\[0\] is "x"/],
    ['kvs holds an array', JSON.stringify({header: {revision: 5}, kvs: [[]]}), /kvs\[0\] is an array/],
    ['kvs is an object', JSON.stringify({header: {revision: 5}, kvs: {}}), /"kvs" is an object/],
    [
      'a key is missing',
      JSON.stringify({header: {revision: 5}, kvs: [{value: b64('x')}]}),
      /kvs\[0\]\.key is undefined/,
    ],
    ['a key is not base64', JSON.stringify({header: {revision: 5}, kvs: [{key: '%%%'}]}), /kvs\[0\]\.key is "%%%"/],
    [
      'a value is a number',
      JSON.stringify({header: {revision: 5}, kvs: [{key: b64('/k'), value: 7}]}),
      /kvs\[0\]\.value/,
    ],
    [
      'a lease is not an integer',
      JSON.stringify({header: {revision: 5}, kvs: [{...goodKv, lease: 'soon'}]}),
      /kvs\[0\]\.lease is "soon"/,
    ],
    ['the revision is a string', JSON.stringify({header: {revision: 'x'}}), /header\.revision/],
    ['the document is an array', '[]', /the document is an array/],
    ['the document is null', 'null', /the document is null/],
    ['no header', JSON.stringify({kvs: []}), /has no "header"/],
    ['not JSON', '{', /not etcdctl JSON output/],
  ]
  for (const [name, text, message] of shapes) {
    test(name, async () => {
      const file = path.join(tmp, `${name.replaceAll(' ', '-')}.json`)
      await writeFile(file, text)
      for (const cmd of [['leases', 'ls'], ['doctor'], ['network', 'show']]) {
        const r = await runCli([...cmd, '--snapshot', file])
        assert.equal(r.code, 2, `${cmd.join(' ')}: ${show(r)}`)
        assert.match(r.stderr, message)
        assert.doesNotMatch(r.stderr, /bug/)
      }
      const j = json<{error: {code: string; exitCode: number}}>(await runCli(['doctor', '--snapshot', file, '--json']))
      assert.deepEqual([j.error.code, j.error.exitCode], ['INVALID_SNAPSHOT', 2])
    })
  }
})

describe('doctor --only / --skip', {concurrency: true}, () => {
  test('an unknown check ID exits 2 and lists the valid ones; known IDs work', async () => {
    for (const flag of ['--only', '--skip']) {
      const r = await runCli(['doctor', '--snapshot', 'examples/snapshot.json', flag, 'capacity,nosuchcheck'])
      assert.equal(r.code, 2, show(r))
      assert.match(
        r.stderr,
        new RegExp(`unknown check ID in ${flag}: nosuchcheck \\(valid: .*capacity.*duplicate-public-ip`),
      )
    }
    const only = json<{findings: Array<{id: string}>}>(
      await runCli(['doctor', '--snapshot', 'examples/snapshot.json', '--only', 'capacity', '--json']),
    )
    assert.deepEqual([...new Set(only.findings.map((f) => f.id))], ['capacity'])
    const skip = await runCli(['doctor', '--snapshot', 'examples/snapshot.json', '--skip', 'fdb-missing,route-stale'])
    assert.equal(skip.code, 5, show(skip))
  })
})

describe('network validate input', {concurrency: true}, () => {
  test('no FILE with a piped stdin reads it; - reads it too', async () => {
    for (const args of [[], ['-']]) {
      const r = await runCli(['network', 'validate', ...args], {input: '{"Network":"10.0.0.0/23"}'})
      assert.equal(r.code, 0, show(r))
      assert.match(r.stdout, /valid: flanneld accepts this config/)
    }
  })

  test('no FILE at a terminal: exit 2 saying FILE or - is needed', async () => {
    const r = await runCliTty(['network', 'validate'])
    assert.equal(r.code, 2, r.output)
    assert.match(r.output, /Missing argument FILE: give a config file, or - to read the config from stdin/)
    assert.doesNotMatch(r.output, /EAGAIN/)
  })

  test('- at a terminal reads what is typed until Ctrl-D', async () => {
    const r = await runCliTty(['network', 'validate', '-'], {
      keys: [{send: '{"Network":"10.0.0.0/23"}\n'}, {after: /Network/, send: '\u0004'}],
    })
    assert.equal(r.code, 0, r.output)
    assert.match(r.output, /valid: flanneld accepts this config/)
  })
})

describe('doctor output', () => {
  test('repeated findings of one kind are grouped; --json keeps every one', async () => {
    const kvs = [
      {key: b64('/coreos.com/network/config'), value: b64('{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}')},
    ]
    for (let i = 1; i <= 20; i++)
      kvs.push({
        key: b64(`/coreos.com/network/subnets/10.5.${i}.0-24`),
        value: b64(
          `{"PublicIP":"192.168.1.${i}","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:00:00:00:00:${String(i).padStart(2, '0')}"}}`,
        ),
      })
    const file = path.join(tmp, 'reserved.json')
    await writeFile(file, JSON.stringify({header: {revision: 9}, kvs}))
    const r = await runCli(['doctor', '--snapshot', file])
    assert.equal(r.code, 0, show(r))
    assert.equal(r.stdout.match(/\[reservation\]/g)?.length, 3 + 1, r.stdout)
    assert.match(r.stdout, /\.\.\. and 17 more \[reservation\] finding\(s\) like these \(all of them in --json\)/)
    const j = json<{findings: Array<{id: string}>}>(await runCli(['doctor', '--snapshot', file, '--json']))
    assert.equal(j.findings.filter((f) => f.id === 'reservation').length, 20)
  })
})
