// The confirmation prompt on a real terminal (a pseudo-terminal) against a real etcd: Ctrl-C and Ctrl-D cancel
// (exit 130, "cancelled, nothing written"), `n` and Enter decline (exit 6, "declined": true in --json), `y` applies.

import assert from 'node:assert/strict'
import {after, before, describe, test} from 'node:test'

import {getKey} from '../helpers/cli.js'
import {type EtcdServer, startEtcd} from '../helpers/etcd.js'
import {runCliTty} from '../helpers/tty.js'

let etcd: EtcdServer

before(async () => {
  etcd = await startEtcd()
})

after(async () => {
  await etcd?.stop()
})

const PROMPT = /Create the network config/

function init(prefix: string, send: string, json = false) {
  return runCliTty(
    [
      'network',
      'init',
      '--network',
      '10.9.0.0/16',
      '--endpoints',
      etcd.endpoint,
      '--etcd-prefix',
      prefix,
      ...(json ? ['--json'] : []),
    ],
    {keys: [{after: PROMPT, send}], timeoutMs: 20_000},
  )
}

describe('confirmation prompt', {concurrency: true}, () => {
  for (const [name, key] of [
    ['Ctrl-C', '\u0003'],
    ['Ctrl-D', '\u0004'],
  ] as const) {
    test(`${name} cancels: exit 130, "cancelled, nothing written", not a bug`, async () => {
      const prefix = `/cancel-${name}`
      const r = await init(prefix, key)
      assert.equal(r.code, 130, r.output)
      assert.match(r.output, /Error: cancelled, nothing written/)
      assert.doesNotMatch(r.output, /bug|force closed/i)
      assert.equal(await getKey(etcd, `${prefix}/config`), null)
    })
  }

  test('n and Enter decline: exit 6, nothing written; --json says "declined": true', async () => {
    for (const [i, key] of ['n\r', '\r'].entries()) {
      const prefix = `/decline-${i}`
      const r = await init(prefix, key)
      assert.equal(r.code, 6, r.output)
      assert.match(r.output, /not applied: nothing written/)
      assert.equal(await getKey(etcd, `${prefix}/config`), null)
    }
    const r = await init('/decline-json', 'n\r', true)
    assert.equal(r.code, 6, r.output)
    const doc = JSON.parse(r.output.slice(r.output.search(/\{\n {2}"/))) as {applied: boolean; declined?: boolean}
    assert.equal(doc.applied, false)
    assert.equal(doc.declined, true)
  })

  test('y applies: exit 0 and the config exists', async () => {
    const r = await init('/apply', 'y\r')
    assert.equal(r.code, 0, r.output)
    assert.ok(await getKey(etcd, '/apply/config'))
  })
})
