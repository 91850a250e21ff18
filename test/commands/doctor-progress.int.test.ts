// doctor's (and leases ls's) progress line: through the built CLI against a real etcd behind a proxy on 127.0.0.1 that delays every
// answer (so a run takes seconds): on a pseudo-terminal the line appears on stderr and is erased before the result;
// on pipes, and with --json at a terminal, it never appears.

import assert from 'node:assert/strict'
import net from 'node:net'
import {after, before, describe, test} from 'node:test'

import {putKey, putSubnet, runCli, show, vxlanValue} from '../helpers/cli.js'
import {type EtcdServer, startEtcd} from '../helpers/etcd.js'
import {runCliTty} from '../helpers/tty.js'

let etcd: EtcdServer
let proxy: net.Server
let slow: string
const sockets = new Set<net.Socket>()
const DELAY_MS = 400

/** A TCP proxy to etcd that holds every chunk etcd sends for DELAY_MS (in order). */
function delayingProxy(target: URL): Promise<net.Server> {
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname)
    sockets.add(client).add(upstream)
    let chain = Promise.resolve()
    upstream.on('data', (chunk) => {
      chain = chain.then(
        () =>
          new Promise((resolve) =>
            setTimeout(() => {
              if (!client.destroyed) client.write(chunk)
              resolve()
            }, DELAY_MS),
          ),
      )
    })
    client.pipe(upstream)
    const close = () => {
      client.destroy()
      upstream.destroy()
    }
    client.on('error', close).on('close', close)
    upstream.on('error', close).on('close', () => void chain.then(close))
  })
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)))
}

before(async () => {
  etcd = await startEtcd()
  await putKey(etcd, '/coreos.com/network/config', '{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}')
  for (const n of [1, 2, 3])
    await putSubnet(
      etcd,
      `/coreos.com/network/subnets/10.5.${n}.0-24`,
      vxlanValue(`192.168.1.${n}`, `02:00:00:00:00:0${n}`),
    )
  proxy = await delayingProxy(new URL(etcd.endpoint))
  slow = `http://127.0.0.1:${(proxy.address() as net.AddressInfo).port}`
})

after(async () => {
  for (const s of sockets) s.destroy()
  await new Promise((resolve) => proxy?.close(resolve))
  await etcd?.stop()
})

// eslint-disable-next-line no-control-regex
const ERASE = /\r\u001b\[K/

describe('doctor progress line', () => {
  test('a slow run at a terminal: the line shows on stderr, then is erased before the result', async () => {
    const started = Date.now()
    const r = await runCliTty(['doctor', '--endpoints', slow, '--command-timeout', '60s'], {timeoutMs: 60_000})
    assert.equal(r.code, 0, r.output)
    assert.ok(Date.now() - started > 1500, 'the run was not slow: the proxy does not delay')
    const progress = r.output.search(/[|/\\-] (reading|checking)/)
    assert.ok(progress >= 0, `no progress line: ${JSON.stringify(r.output)}`)
    const result = r.output.indexOf('Datastore')
    assert.ok(result > progress, r.output)
    // The last thing before the result is the erase: no progress text is left on the result's line.
    const between = r.output.slice(progress, result)
    // eslint-disable-next-line no-control-regex
    const lastErase = between.search(/\r\u001b\[K(?![\s\S]*\r\u001b\[K)/)
    assert.ok(lastErase >= 0, `not erased: ${JSON.stringify(between)}`)
    assert.doesNotMatch(between.slice(lastErase + 4), /reading|checking/)
  })

  test('on pipes: no progress line, stderr quiet', async () => {
    const r = await runCli(['doctor', '--endpoints', slow, '--command-timeout', '60s'], {timeoutMs: 60_000})
    assert.equal(r.code, 0, show(r))
    assert.doesNotMatch(r.stderr, /reading|checking|\r/)
    // eslint-disable-next-line no-control-regex
    assert.doesNotMatch(r.stdout, /reading|checking|\r|\u001b/)
    assert.match(r.stdout, /^Datastore\s+ok$/m)
  })

  test('leases ls shares the line: shown and erased at a terminal, absent on pipes', async () => {
    const tty = await runCliTty(['leases', 'ls', '--endpoints', slow, '--command-timeout', '60s'], {timeoutMs: 60_000})
    assert.equal(tty.code, 0, tty.output)
    const at = tty.output.search(/[|/\\-] reading/)
    assert.ok(at >= 0, `no progress line: ${JSON.stringify(tty.output)}`)
    assert.ok(tty.output.indexOf('SUBNET') > at, tty.output)
    assert.match(tty.output.slice(at, tty.output.indexOf('SUBNET')), ERASE)
    const pipe = await runCli(['leases', 'ls', '--endpoints', slow, '--command-timeout', '60s'], {timeoutMs: 60_000})
    assert.equal(pipe.code, 0, show(pipe))
    assert.equal(pipe.stderr, '')
  })

  test('--json at a terminal: no progress line mixed in', async () => {
    const r = await runCliTty(['doctor', '--endpoints', slow, '--command-timeout', '60s', '--json'], {
      timeoutMs: 60_000,
    })
    assert.equal(r.code, 0, r.output)
    assert.doesNotMatch(r.output, ERASE)
    assert.doesNotMatch(r.output, /reading|checking/)
    assert.equal((JSON.parse(r.output) as {summary: {error: number}}).summary.error, 0)
  })
})
