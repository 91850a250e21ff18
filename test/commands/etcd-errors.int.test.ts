// etcd's answers that are the user's input or the cluster's setup, not flannelctl's bugs (issue 13), through the
// built CLI against a real etcd: each ends in one line naming the offending value, with a documented exit code.

import assert from 'node:assert/strict'
import http from 'node:http'
import net, {type AddressInfo} from 'node:net'
import {after, before, describe, test} from 'node:test'

import {UnavailableError, UsageError} from '../../src/core/errors.js'
import {EtcdStore} from '../../src/store/etcd-store.js'
import {putKey, runCli, show} from '../helpers/cli.js'
import {type EtcdServer, startEtcd} from '../helpers/etcd.js'

let etcd: EtcdServer
let web: http.Server
let webUrl: string
const P = '/coreos.com/network'

before(async () => {
  etcd = await startEtcd()
  await putKey(etcd, `${P}/config`, '{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}')
  // A reservation: unreserve grants it a lease.
  await putKey(etcd, `${P}/subnets/10.5.1.0-24`, '{"PublicIP":"192.0.2.1","PublicIPv6":null,"BackendType":"vxlan"}')
  web = http.createServer((_req, res) => {
    res.writeHead(404, {'content-type': 'text/plain'})
    res.end('404 page not found\n')
  })
  await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve))
  webUrl = `http://127.0.0.1:${(web.address() as AddressInfo).port}`
})

after(async () => {
  web?.close()
  await etcd?.stop()
})

const noWarning = (stderr: string) => assert.doesNotMatch(stderr, /Warning|\(node:\d+\)/)

describe('etcd errors through the CLI', {concurrency: true}, () => {
  test('--ttl 2500001h (etcd: OUT_OF_RANGE too large lease TTL) → exit 2 naming --ttl; nothing written', async () => {
    const r = await runCli([
      'leases',
      'unreserve',
      '10.5.1.0/24',
      '--endpoints',
      etcd.endpoint,
      '--ttl',
      '2500001h',
      '--yes',
    ])
    assert.equal(r.code, 2, show(r))
    assert.match(r.stderr, /^Error: --ttl 9000003600s is longer than etcd allows for a lease \(at most 9000000000s/)
    const kv = await etcd.etcdctl(['get', `${P}/subnets/10.5.1.0-24`, '-w', 'json'])
    assert.doesNotMatch(kv.stdout, /"lease"/)
  })

  test('--user against an etcd without auth → exit 69 saying authentication is off', async () => {
    const r = await runCli(['network', 'show', '--endpoints', etcd.endpoint, '--etcd-api', 'v3', '--user', 'root:x'])
    assert.equal(r.code, 69, show(r))
    assert.match(r.stderr, /has authentication off on the v3 API, but --user "root" was given/)
  })

  test('port 99999 → exit 2 naming the endpoint, before any connection', async () => {
    const r = await runCli(['network', 'show', '--endpoints', 'http://127.0.0.1:99999'])
    assert.equal(r.code, 2, show(r))
    assert.equal(
      r.stderr,
      'Error: invalid endpoint "http://127.0.0.1:99999" in --endpoints: port 99999 is out of range (1-65535)\n',
    )
  })

  test('a plain HTTP server that is not etcd → exit 69 "not an etcd endpoint"', async () => {
    const r = await runCli(['network', 'show', '--endpoints', webUrl, '--etcd-api', 'v3', '--dial-timeout', '3s'])
    assert.equal(r.code, 69, show(r))
    assert.match(r.stderr, new RegExp(`^Error: not an etcd endpoint: ${webUrl} answered, but not with etcd's API`))
    assert.doesNotMatch(r.stderr, /\d{4}-\d\d-\d\dT/, 'no grpc timestamp')
  })

  test('https:// against a plain-http etcd → exit 69 saying TLS was refused (v3 and v2)', async () => {
    const https = etcd.endpoint.replace('http://', 'https://')
    for (const api of ['v3', 'v2']) {
      const r = await runCli(['network', 'show', '--endpoints', https, '--etcd-api', api, '--dial-timeout', '3s'])
      assert.equal(r.code, 69, show(r))
      assert.match(r.stderr, new RegExp(`^Error: TLS was refused by etcd at ${https}`), api)
      assert.match(r.stderr, /Hint: if etcd listens without TLS, use an http:\/\/ endpoint/)
    }
  })

  test('https:// to a port that resets the connection during the handshake → exit 69 saying TLS was refused (v3 and v2)', async () => {
    // A plain-http etcd sometimes answers a ClientHello with a reset instead of bytes (the other half of the test
    // above, which it made flaky): the handshake never completed, so TLS was refused, whatever the socket error says.
    const resetter = net.createServer((socket) => socket.once('data', () => socket.resetAndDestroy()))
    await new Promise<void>((resolve) => resetter.listen(0, '127.0.0.1', resolve))
    const https = `https://127.0.0.1:${(resetter.address() as AddressInfo).port}`
    try {
      for (const api of ['v3', 'v2']) {
        const r = await runCli(['network', 'show', '--endpoints', https, '--etcd-api', api, '--dial-timeout', '3s'])
        assert.equal(r.code, 69, show(r))
        assert.match(r.stderr, new RegExp(`^Error: TLS was refused by etcd at ${https}`), `${api}: ${r.stderr}`)
      }
    } finally {
      resetter.close()
    }
  })

  test('--command-timeout 0 and a bare --dial-timeout 5 → exit 2 naming the flag', async () => {
    const [zero, bare] = await Promise.all([
      runCli(['network', 'show', '--endpoints', etcd.endpoint, '--command-timeout', '0']),
      runCli(['network', 'show', '--endpoints', etcd.endpoint, '--dial-timeout', '5']),
    ])
    assert.equal(zero.code, 2, show(zero))
    assert.match(zero.stderr, /invalid duration for --command-timeout: "0" \(must be more than 0\)/)
    assert.equal(bare.code, 2, show(bare))
    assert.match(bare.stderr, /invalid duration for --dial-timeout: "5" has no unit \(did you mean 5s\?\)/)
  })

  test('--dial-timeout 99999h → exit 2 without a TimeoutOverflowWarning; the longest allowed reads a healthy etcd', async () => {
    const [long, max] = await Promise.all([
      runCli(['network', 'show', '--endpoints', etcd.endpoint, '--dial-timeout', '99999h']),
      runCli(['network', 'show', '--endpoints', etcd.endpoint, '--dial-timeout', '596h', '--command-timeout', '596h']),
    ])
    assert.equal(long.code, 2, show(long))
    assert.match(long.stderr, /--dial-timeout: "99999h" \(too long: at most 596h\)/)
    noWarning(long.stderr)
    assert.equal(max.code, 0, show(max))
    noWarning(max.stderr)
  })
})

describe('etcd3 fault handling (D-4)', () => {
  test('repeated calls to a dead endpoint each report the endpoint, never an open circuit breaker', async () => {
    const store = EtcdStore.create({
      endpoints: ['http://127.0.0.1:1'],
      prefix: P,
      dialTimeoutMs: 1000,
      commandTimeoutMs: 1000,
    })
    try {
      for (let i = 0; i < 5; i++) {
        await assert.rejects(store.getKey(`${P}/config`), (e: unknown) => {
          assert.ok(e instanceof UnavailableError, String(e))
          assert.equal(e.code, 'ETCD_UNAVAILABLE')
          assert.match(e.message, /etcd unreachable at http:\/\/127\.0\.0\.1:1: .*ECONNREFUSED/)
          return true
        })
      }
    } finally {
      store.close()
    }
  })

  test('two endpoints, the first dead: every call goes on to the live one (one attempt per endpoint)', async () => {
    const store = EtcdStore.create({
      endpoints: ['http://127.0.0.1:1', etcd.endpoint],
      prefix: P,
      dialTimeoutMs: 3000,
      commandTimeoutMs: 3000,
    })
    try {
      for (let i = 0; i < 6; i++) assert.ok(await store.getKey(`${P}/config`))
    } finally {
      store.close()
    }
  })

  test("etcd's own refusal of a lease TTL is a usage error, not a bug", async () => {
    const store = await EtcdStore.open({
      endpoints: etcd.endpoints,
      prefix: P,
      dialTimeoutMs: 3000,
      commandTimeoutMs: 3000,
    })
    try {
      await assert.rejects(store.createIfAbsent(`${P}/x`, 'v', {ttlSeconds: 9_000_000_001}), (e: unknown) => {
        assert.ok(e instanceof UsageError, String(e))
        assert.equal(e.code, 'INVALID_TTL')
        return true
      })
      assert.equal(await store.getKey(`${P}/x`), null)
    } finally {
      store.close()
    }
  })
})
