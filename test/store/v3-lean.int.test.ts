// The lean v3 read client (src/store/v3-lean.ts) through EtcdStore, against real etcds and against servers that are
// not etcd: token refresh, failover, deadlines, large answers, TLS without DEP0123, non-gRPC HTTP/2 servers, and
// proof that read-only commands never load etcd3/grpc-js/protobufjs while a write does.

import assert from 'node:assert/strict'
import {once} from 'node:events'
import http2 from 'node:http2'
import net from 'node:net'
import {after, before, describe, test} from 'node:test'

import {UnavailableError} from '../../src/core/errors.js'
import {listLeases} from '../../src/services/leases.js'
import {EtcdStore} from '../../src/store/etcd-store.js'
import type {NetworkReader} from '../../src/store/port.js'
import {etcdReader} from '../../src/store/reader.js'
import {grpcTimeout} from '../../src/store/v3-lean.js'
import {runCli, show} from '../helpers/cli.js'
import {type EtcdCluster, type EtcdServer, startEtcd, startEtcdCluster, waitForLeader} from '../helpers/etcd.js'

const P = '/coreos.com/network'
const CONFIG = '{"Network":"10.0.0.0/8","Backend":{"Type":"vxlan"}}'

function isUnavailable(code: string, message?: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof UnavailableError, String(e))
    assert.equal(e.code, code, e.message)
    if (message) assert.match(e.message, message)
    assert.ok(!e.message.includes('\n'), e.message)
    return true
  }
}

/** A local server closed after the test. */
async function listen<T extends net.Server | http2.Http2Server>(server: T): Promise<{server: T; url: string}> {
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {server, url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`}
}

/** A gRPC frame of `msg`. */
function frame(msg: Buffer): Buffer {
  const b = Buffer.alloc(5 + msg.length)
  b.writeUInt32BE(msg.length, 1)
  msg.copy(b, 5)
  return b
}

describe('the lean v3 read client against a real etcd', () => {
  let etcd: EtcdServer
  before(async () => {
    etcd = await startEtcd()
    assert.equal((await etcd.etcdctl(['put', `${P}/config`, CONFIG])).code, 0)
  })
  after(async () => {
    await etcd?.stop()
  })

  test('a range of 13 MB arrives whole (over gRPC’s 4 MB default)', async () => {
    const store = await EtcdStore.open({
      endpoints: etcd.endpoints,
      prefix: '/big',
      dialTimeoutMs: 5000,
      commandTimeoutMs: 30_000,
    })
    try {
      const value = 'x'.repeat(1_000_000)
      for (let i = 0; i < 13; i++) await store.createIfAbsent(`/big/k${String(i).padStart(2, '0')}`, value)
      const snap = await store.readNetwork()
      const all = [...snap.subnets, ...snap.foreign]
      assert.equal(all.length, 13)
      for (const kv of all) assert.equal(kv.value.length, 1_000_000)
    } finally {
      store.close()
    }
  })

  test('readSubnets (the listing kept as the Range answer’s bytes) gives readNetwork()’s subnet keys, and listLeases the same result through either', async () => {
    const R = '/raw-listing'
    const gateway = async (pathname: string, body: unknown) => {
      const res = await fetch(`${etcd.endpoint}${pathname}`, {method: 'POST', body: JSON.stringify(body)})
      assert.equal(res.status, 200, pathname)
      return (await res.json()) as {ID?: string}
    }
    const b64 = (s: string | Buffer) => (typeof s === 'string' ? Buffer.from(s, 'utf8') : s).toString('base64')
    const put = async (key: string | Buffer, value: string | Buffer, ttl?: number) => {
      const lease = ttl === undefined ? undefined : (await gateway('/v3/lease/grant', {TTL: ttl})).ID
      await gateway('/v3/kv/put', {key: b64(key), value: b64(value), ...(lease ? {lease} : {})})
    }
    const vx = (ip: string, n: number) =>
      `{"PublicIP":"${ip}","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:00:00:00:00:${n.toString(16).padStart(2, '0')}"}}`
    await put(`${R}/config`, CONFIG)
    await put(`${R}/aaa-foreign`, 'x') // before the subnets, foreign
    await put(`${R}/subnetsX/10.5.9.0-24`, vx('192.168.1.9', 9), 3600) // listed by flanneld's prefix (no slash)
    await put(`${R}/zzz`, 'y') // after them, foreign
    await put(`${R}-sibling/subnets/10.5.1.0-24`, vx('192.168.1.1', 1), 3600) // outside the prefix
    for (let i = 0; i < 300; i++)
      await put(
        `${R}/subnets/10.5.${i % 250}.${i < 250 ? 0 : 128}-${i < 250 ? 24 : 25}`,
        vx(`192.168.2.${i % 200}`, i % 256),
        i % 7 === 0 ? undefined : 3600,
      )
    await put(`${R}/subnets/10.5.0.0-24&fd00::-64`, vx('192.168.1.2', 2), 3600) // dual stack, a tie on the IPv4 subnet
    await put(
      Buffer.concat([Buffer.from(`${R}/subnets/bad`), Buffer.from([0xff, 0xfe])]),
      Buffer.from([0xc3, 0x28]),
      3600,
    )
    await put(`${R}/subnets/10.5.251.0-24`, 'not json \u0000 \u001b[2J', 3600)
    await put(`${R}/subnets/10.5.252.0-24`, '{"PublicIP":"192.168.1.252"}') // reserved, no backend
    const store = await EtcdStore.open({
      endpoints: etcd.endpoints,
      prefix: R,
      dialTimeoutMs: 5000,
      commandTimeoutMs: 30_000,
    })
    try {
      const snap = await store.readNetwork()
      const listing = await store.readSubnets()
      assert.equal(listing.revision, snap.revision)
      assert.equal(listing.count, snap.subnets.length)
      assert.equal(listing.count, 305)
      for (let i = 0; i < listing.count; i++) {
        assert.deepStrictEqual(listing.kv(i), snap.subnets[i])
        assert.equal(listing.lease(i), snap.subnets[i]!.lease)
      }
      // listLeases through the listing, and through readNetwork() alone (the other readers' way), with the TTLs
      // each asks for served from one lookup (TTLs count down between two lookups).
      const ttls = await store.leaseTtls(snap.subnets.map((kv) => kv.lease))
      const lookup = async (ids: Iterable<string>) =>
        new Map([...ids].flatMap((id) => (ttls.has(id) ? [[id, ttls.get(id)!] as const] : [])))
      const raw: NetworkReader = {...etcdReader(store), leaseTtls: lookup}
      const plain: NetworkReader = {...raw, readSubnets: undefined}
      const now = Date.now()
      for (const o of [
        {},
        {publicIP: '192.168.2.7'},
        {subnet: '10.5.0.0/20'},
        {publicIP: '192.168.1.9', subnet: '10.5.9.0/24'},
      ])
        for (const withTtl of [true, false]) {
          const a = await listLeases(raw, {withTtl, now, ...o})
          const b = await listLeases(plain, {withTtl, now, ...o})
          assert.deepStrictEqual(a, b)
          assert.ok(a.leases.length > 0 && a.malformed.length === 2, JSON.stringify(o))
          if (withTtl) assert.ok(a.leases.some((l) => l.ttlSeconds !== null && l.ttlSeconds > 3000))
        }
    } finally {
      store.close()
    }
  })

  test('several endpoints: calls go on from a refused one to the live one, each time', async () => {
    const store = EtcdStore.create({
      endpoints: ['http://127.0.0.1:1', etcd.endpoint, 'http://127.0.0.1:2'],
      prefix: P,
      dialTimeoutMs: 3000,
      commandTimeoutMs: 3000,
    })
    try {
      for (let i = 0; i < 5; i++) assert.equal((await store.getKey(`${P}/config`))?.value, CONFIG)
      const ttls = await store.leaseTtls(['1', '2'])
      assert.deepEqual(
        [...ttls].sort(([a], [b]) => a.localeCompare(b)),
        [
          ['1', -1],
          ['2', -1],
        ],
      )
    } finally {
      store.close()
    }
  })

  test('an etcd restarted under a store: the next read reconnects', async () => {
    const store = await EtcdStore.open({
      endpoints: etcd.endpoints,
      prefix: P,
      dialTimeoutMs: 5000,
      commandTimeoutMs: 5000,
    })
    try {
      assert.ok(await store.getKey(`${P}/config`))
      await etcd.restart()
      assert.equal((await store.getKey(`${P}/config`))?.value, CONFIG)
    } finally {
      store.close()
    }
  })

  test('read-only commands never load etcd3, grpc-js or protobufjs; a write does', async () => {
    const env = {NODE_DEBUG: 'module'}
    const ep = ['--endpoints', etcd.endpoint]
    const heavy = /REQUEST (etcd3|@grpc\/|protobufjs)|node_modules\/(etcd3|@grpc|protobufjs)\//
    for (const args of [
      ['leases', 'ls', '--json', ...ep],
      ['network', 'show', '--json', ...ep],
      ['network', 'expand', '--to', '10.0.0.0/7', '--dry-run', '--json', ...ep],
      ['doctor', '--json', ...ep],
    ]) {
      const r = await runCli(args, {env})
      assert.ok(r.code === 0 || r.code === 5, show(r))
      assert.match(r.stderr, /MODULE/, 'NODE_DEBUG=module reports module loads')
      assert.doesNotMatch(r.stderr, heavy, args.join(' '))
    }
    const w = await runCli(
      ['network', 'init', '--network', '10.0.0.0/8', '--etcd-prefix', '/w', '--yes', '--json', ...ep],
      {env},
    )
    assert.equal(w.code, 0, show(w))
    assert.match(w.stderr, /REQUEST etcd3/)
  })
})

describe('the lean v3 read client against a 3-member cluster losing its leader', () => {
  let cluster: EtcdCluster
  before(async () => {
    cluster = await startEtcdCluster(3)
  })
  after(async () => {
    await cluster?.stop()
  })

  test('reads made during the election, on one surviving member, wait it out and are answered', async (t) => {
    assert.equal((await cluster.members[0]!.etcdctl(['put', `${P}/config`, CONFIG])).code, 0)
    const leader = await waitForLeader(cluster.members, 10_000)
    const survivor = cluster.members.find((m) => m !== leader)!
    // One endpoint only, so a read cannot go on to another member: it has to ride out the election where it is.
    const store = await EtcdStore.open({
      endpoints: survivor.endpoints,
      prefix: P,
      dialTimeoutMs: 5000,
      commandTimeoutMs: 20_000,
    })
    try {
      assert.equal((await store.getKey(`${P}/config`))?.value, CONFIG) // the connection is up before the kill
      await leader.kill()
      const t0 = performance.now()
      // Reads started 0-600 ms after the kill, all pending while the two left elect a leader (etcd's 1 s election
      // timeout): etcd 3.4 answers the one waiting when the new leader takes over with "etcdserver: leader changed".
      const reads = await Promise.allSettled(
        [0, 150, 300, 450, 600].map((ms) =>
          new Promise((resolve) => setTimeout(resolve, ms)).then(() => store.getKey(`${P}/config`)),
        ),
      )
      t.diagnostic(`5 reads answered ${(performance.now() - t0).toFixed(0)} ms after the kill`)
      assert.deepEqual(
        reads.map((r) => (r.status === 'fulfilled' ? r.value?.value : String(r.reason))),
        Array(5).fill(CONFIG),
      )
    } finally {
      store.close()
    }
  })
})

describe('the lean v3 read client with auth and TLS', () => {
  let etcd: EtcdServer
  before(async () => {
    etcd = await startEtcd({tls: true, auth: true})
  })
  after(async () => {
    await etcd?.stop()
  })

  test('IP endpoint over TLS with client certificates and a user: reads, no DEP0123; after a restart the stale token is renewed', async () => {
    const warnings: string[] = []
    const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`)
    process.on('warning', onWarning)
    const t = etcd.tls!
    const store = await EtcdStore.open({
      endpoints: etcd.endpoints,
      prefix: P,
      cacert: t.ca,
      cert: t.cert,
      key: t.key,
      user: etcd.auth!.user,
      password: etcd.auth!.password,
      dialTimeoutMs: 5000,
      commandTimeoutMs: 5000,
    })
    try {
      assert.equal(await store.getKey(`${P}/config`), null)
      // etcd's simple tokens live in memory: after a restart the token the store holds is invalid.
      await etcd.restart()
      assert.equal(await store.getKey(`${P}/config`), null)
      const snap = await store.readNetwork()
      assert.equal(snap.subnets.length, 0)
      await assert.rejects(store.getKey('/elsewhere'), isUnavailable('ETCD_PERMISSION_DENIED', /permission denied/))
    } finally {
      store.close()
      process.off('warning', onWarning)
    }
    assert.deepEqual(warnings, [])
  })

  test('a wrong password is "authentication failed"', async () => {
    const t = etcd.tls!
    const base = {
      endpoints: etcd.endpoints,
      prefix: P,
      cacert: t.ca,
      cert: t.cert,
      key: t.key,
      dialTimeoutMs: 5000,
      commandTimeoutMs: 5000,
    }
    await assert.rejects(
      EtcdStore.open({...base, user: etcd.auth!.user, password: 'wrong'}),
      isUnavailable('ETCD_AUTH_FAILED'),
    )
  })
})

describe('the lean v3 read client against servers that are not etcd', () => {
  const closers: Array<() => void> = []
  after(() => {
    for (const c of closers) c()
  })

  test('an HTTP/2 server answering 404, or 200 with HTML, is "not an etcd endpoint"', async () => {
    for (const [status, type] of [
      [404, 'text/plain'],
      [200, 'text/html'],
    ] as const) {
      const {server, url} = await listen(
        http2.createServer((_req, res) => {
          res.writeHead(status, {'content-type': type})
          res.end('<html>hello</html>')
        }),
      )
      closers.push(() => server.close())
      const store = EtcdStore.create({endpoints: [url], prefix: P, dialTimeoutMs: 3000, commandTimeoutMs: 3000})
      await assert.rejects(
        store.readNetwork(),
        isUnavailable('NOT_ETCD', /^not an etcd endpoint: http:\/\/127\.0\.0\.1:\d+ answered/),
      )
      store.close()
    }
  })

  test('a gRPC server that never answers: --command-timeout ends the call (grpc-timeout sent), exit-69 error', async () => {
    let seenTimeout: string | undefined
    let calls = 0
    const {server, url} = await listen(http2.createServer())
    server.on('stream', (stream, headers) => {
      calls++
      // The first call (the probe) is answered with an empty RangeResponse; the next one never.
      if (calls === 1) {
        stream.respond({':status': 200, 'content-type': 'application/grpc'}, {waitForTrailers: true})
        stream.on('wantTrailers', () => stream.sendTrailers({'grpc-status': '0'}))
        stream.end(frame(Buffer.alloc(0)))
        return
      }
      seenTimeout = String(headers['grpc-timeout'])
      stream.on('error', () => {})
    })
    closers.push(() => server.close())
    const store = EtcdStore.create({endpoints: [url], prefix: P, dialTimeoutMs: 3000, commandTimeoutMs: 700})
    const t0 = Date.now()
    await assert.rejects(store.readNetwork(), isUnavailable('ETCD_UNAVAILABLE', /no answer within/))
    assert.ok(Date.now() - t0 < 700 + 1500, `took ${Date.now() - t0} ms`)
    assert.match(seenTimeout ?? '', /^\d{1,8}m$/)
    store.close()
  })

  test('an address that accepts TCP and never answers: --dial-timeout ends the first contact', async () => {
    const sockets: net.Socket[] = []
    const {server, url} = await listen(net.createServer((s) => sockets.push(s)))
    closers.push(() => {
      for (const s of sockets) s.destroy()
      server.close()
    })
    const t0 = Date.now()
    await assert.rejects(
      EtcdStore.open({endpoints: [url], prefix: P, dialTimeoutMs: 600, commandTimeoutMs: 5000}),
      isUnavailable('ETCD_UNAVAILABLE', new RegExp(`^etcd unreachable at ${url}`)),
    )
    assert.ok(Date.now() - t0 < 600 + 1500, `took ${Date.now() - t0} ms`)
  })

  test('an expired token is renewed once and the call made again', async () => {
    const auths: string[] = []
    const tokens: string[] = []
    const {server, url} = await listen(http2.createServer())
    server.on('stream', (stream, headers) => {
      stream.on('error', () => {})
      const path = String(headers[':path'])
      const ok = (msg: Buffer) => {
        stream.respond({':status': 200, 'content-type': 'application/grpc'}, {waitForTrailers: true})
        stream.on('wantTrailers', () => stream.sendTrailers({'grpc-status': '0'}))
        stream.end(frame(msg))
      }
      stream.resume()
      stream.on('end', () => {
        if (path === '/etcdserverpb.Auth/Authenticate') {
          const token = `t${auths.push(path)}`
          return ok(Buffer.concat([Buffer.from([0x12, token.length]), Buffer.from(token)]))
        }
        tokens.push(String(headers.token))
        // The first token expires after the probe.
        if (headers.token === 't1' && tokens.length > 1)
          return stream.respond(
            {
              ':status': 200,
              'content-type': 'application/grpc',
              'grpc-status': '16',
              'grpc-message': 'etcdserver%3A invalid auth token',
            },
            {endStream: true},
          )
        ok(Buffer.alloc(0))
      })
    })
    closers.push(() => server.close())
    const store = await EtcdStore.open({
      endpoints: [url],
      prefix: P,
      user: 'u',
      password: 'p',
      dialTimeoutMs: 3000,
      commandTimeoutMs: 3000,
    })
    try {
      assert.deepEqual((await store.readNetwork()).subnets, [])
      assert.deepEqual(tokens, ['t1', 't1', 't2'])
      assert.equal(auths.length, 2)
    } finally {
      store.close()
    }
  })

  /** A gRPC server answering each call with busy(n) (n counts calls from 1): a grpc-status, or an empty message. */
  async function grpcServer(busy: (n: number) => string | undefined): Promise<{url: string; calls: () => number}> {
    let calls = 0
    const {server, url} = await listen(http2.createServer())
    server.on('stream', (stream) => {
      stream.on('error', () => {})
      const message = busy(++calls)
      if (message !== undefined)
        return stream.respond(
          {':status': 200, 'content-type': 'application/grpc', 'grpc-status': '14', 'grpc-message': message},
          {endStream: true},
        )
      stream.respond({':status': 200, 'content-type': 'application/grpc'}, {waitForTrailers: true})
      stream.on('wantTrailers', () => stream.sendTrailers({'grpc-status': '0'}))
      stream.end(frame(Buffer.alloc(0)))
    })
    closers.push(() => server.close())
    return {url, calls: () => calls}
  }

  test('etcd answering that it cannot serve (an election): the read is asked again until answered, on one endpoint or on several', async () => {
    for (const refusedFirst of [false, true]) {
      const {url, calls} = await grpcServer((n) => (n <= 3 ? 'etcdserver%3A leader changed' : undefined))
      const endpoints = refusedFirst ? ['http://127.0.0.1:1', url] : [url]
      const store = EtcdStore.create({endpoints, prefix: P, dialTimeoutMs: 3000, commandTimeoutMs: 3000})
      try {
        assert.deepEqual((await store.readNetwork()).subnets, [], `endpoints ${endpoints.join(',')}`)
        // Three busy answers, then the probe's and the listing's (readNetwork reads config and subnets in one range).
        assert.ok(calls() >= 4, `${calls()} calls`)
      } finally {
        store.close()
      }
    }
  })

  test('etcd saying "no leader" until the deadline: exit-69 error in etcd’s words, once the deadline has passed', async () => {
    const {url, calls} = await grpcServer(() => 'etcdserver%3A no leader')
    const store = EtcdStore.create({
      endpoints: ['http://127.0.0.1:1', url],
      prefix: P,
      dialTimeoutMs: 600,
      commandTimeoutMs: 600,
    })
    try {
      const t0 = Date.now()
      await assert.rejects(store.readNetwork(), isUnavailable('ETCD_UNAVAILABLE', /etcdserver: no leader/))
      const ms = Date.now() - t0
      assert.ok(ms >= 550 && ms < 600 + 1500, `took ${ms} ms`)
      assert.ok(calls() >= 3, `asked ${calls()} times`)
    } finally {
      store.close()
    }
  })

  test('no member answering at all (refused) ends the call at once, without waiting for the deadline', async () => {
    const store = EtcdStore.create({
      endpoints: ['http://127.0.0.1:1', 'http://127.0.0.1:2'],
      prefix: P,
      dialTimeoutMs: 5000,
      commandTimeoutMs: 5000,
    })
    try {
      const t0 = Date.now()
      await assert.rejects(store.readNetwork(), isUnavailable('ETCD_UNAVAILABLE', /ECONNREFUSED/))
      assert.ok(Date.now() - t0 < 2500, `took ${Date.now() - t0} ms`)
    } finally {
      store.close()
    }
  })

  test('grpc-timeout stays within gRPC’s 8 digits for the longest deadlines', () => {
    assert.equal(grpcTimeout(1500), '1500m')
    assert.equal(grpcTimeout(99_999_999), '99999999m')
    assert.equal(grpcTimeout(596 * 3600 * 1000), '2145600S')
  })
})
