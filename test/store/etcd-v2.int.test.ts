// The v2 reader against real etcd 3.4 servers started with --enable-v2: flannel 0.11's keyspace written with
// `ETCDCTL_API=2 etcdctl set`, decoded into the same rows as the v3 store; and its failures (v2 not served,
// unreachable, timeouts, TLS, v2 auth) mapped to exit 69 with a clear message.

import assert from 'node:assert/strict'
import http from 'node:http'
import net from 'node:net'
import {after, before, describe, test} from 'node:test'

import {ExitCode, UnavailableError} from '../../src/core/errors.js'
import {decodeLeases, type NetworkSnapshot} from '../../src/core/leases.js'
import {EtcdStore} from '../../src/store/etcd-store.js'
import {EtcdV2Store} from '../../src/store/etcd-v2.js'
import {json, putKey, putSubnet, runCli, show} from '../helpers/cli.js'
import {type EtcdServer, startEtcd} from '../helpers/etcd.js'
import {enableV2Auth, etcdctlV2, flattenNodes, legacyVxlanValue, v2Get, type V2Node} from '../helpers/etcd-v2.js'

const P = '/coreos.com/network'
const CONFIG = '{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}'
/** flannel 0.11's leases: 24 h TTLs, one lease close to expiry, one TTL-0 reservation, values in the <= 0.13 form. */
const LEASES = [
  {seg: '10.5.2.0-24', value: legacyVxlanValue('192.168.1.2', 'c6:d2:32:6f:8f:02'), ttl: 86_400},
  {seg: '10.5.12.0-24', value: legacyVxlanValue('192.168.1.12', 'c6:d2:32:6f:8f:44'), ttl: 86_400},
  {seg: '10.5.13.0-24', value: legacyVxlanValue('192.168.1.13', 'c6:d2:32:6f:8f:13'), ttl: 1_800},
  {seg: '10.5.20.0-24', value: legacyVxlanValue('192.168.1.20', 'c6:d2:32:6f:8f:20'), ttl: 0},
]

let plain: EtcdServer
let tls: EtcdServer
let noV2: EtcdServer
let authed: EtcdServer
const opened: Array<{close(): void}> = []

const base = {prefix: P, dialTimeoutMs: 5000, commandTimeoutMs: 10_000}

async function openV2(
  etcd: EtcdServer | string[],
  extra: Partial<Parameters<typeof EtcdV2Store.open>[0]> = {},
): Promise<EtcdV2Store> {
  const s = await EtcdV2Store.open({...base, endpoints: Array.isArray(etcd) ? etcd : etcd.endpoints, ...extra})
  opened.push(s)
  return s
}

/** flannel 0.11 writes: `etcdctl set` for the config, `set --ttl 86400` per lease (`--ttl 0`: a reservation). */
async function seedV2(etcd: EtcdServer, prefix = P, o: {user?: string} = {}): Promise<void> {
  await etcdctlV2(etcd, ['set', `${prefix}/config`, CONFIG], o)
  for (const l of LEASES)
    await etcdctlV2(etcd, ['set', '--ttl', String(l.ttl), `${prefix}/subnets/${l.seg}`, l.value], o)
}

/** The rejection of `p`, asserted to be an UnavailableError (exit 69) with this code. */
async function unavailable(p: Promise<unknown>, code: string): Promise<UnavailableError> {
  const err = await p.then(
    () => assert.fail('expected a rejection'),
    (e: unknown) => e,
  )
  assert.ok(err instanceof UnavailableError, `expected UnavailableError, got ${String(err)}`)
  assert.equal(err.code, code, err.message)
  assert.equal(err.exitCode, ExitCode.unavailable)
  return err
}

before(async () => {
  ;[plain, tls, noV2, authed] = await Promise.all([
    startEtcd({enableV2: true}),
    startEtcd({enableV2: true, tls: true}),
    startEtcd(),
    startEtcd({enableV2: true}),
  ])
  await Promise.all([
    (async () => {
      await seedV2(plain)
      // The same data in v3, as flanneld >= 0.18 writes it (a 24 h lease per key, a reservation without one).
      await putKey(plain, `${P}/config`, CONFIG)
      for (const l of LEASES)
        await putSubnet(plain, `${P}/subnets/${l.seg}`, l.value, {lease: l.ttl === 0 ? null : l.ttl})
    })(),
    seedV2(tls),
    (async () => {
      await seedV2(authed)
      await enableV2Auth(authed)
    })(),
  ])
})

after(async () => {
  for (const s of opened) s.close()
  await Promise.all([plain, tls, noV2, authed].map((e) => e?.stop()))
})

describe('v2 reader: flannel 0.11 keyspace', () => {
  test('rows carry modifiedIndex/createdIndex, the X-Etcd-Index revision, synthetic leases for TTL keys and none for the reservation', async () => {
    const store = await openV2(plain)
    const snap = await store.readNetwork()
    const raw = await v2Get(plain, P)
    assert.equal(raw.status, 200)
    assert.equal(snap.revision, raw.index)
    const nodes = flattenNodes(raw.body.node as V2Node)
    assert.equal(snap.config?.value, CONFIG)
    assert.equal(snap.subnets.length, LEASES.length)
    assert.deepEqual(snap.foreign, [])
    for (const kv of [snap.config, ...snap.subnets]) {
      const n = nodes.get(kv.key)!
      assert.ok(n, kv.key)
      assert.equal(kv.value, n.value, 'value byte for byte')
      assert.equal(kv.modRevision, String(n.modifiedIndex))
      assert.equal(kv.createRevision, String(n.createdIndex))
      assert.equal(kv.lease, n.ttl === undefined ? '0' : `v2:${kv.key}`)
    }
    const ttls = await store.leaseTtls(snap.subnets.map((kv) => kv.lease))
    for (const l of LEASES) {
      const key = `${P}/subnets/${l.seg}`
      if (l.ttl === 0) assert.equal(ttls.has('0'), false)
      else assert.ok(Math.abs(ttls.get(`v2:${key}`)! - l.ttl) <= 5, `${key}: ${ttls.get(`v2:${key}`)}`)
    }
  })

  test('the same data in the v2 and v3 keyspaces decodes to the same leases (TTLs within a few seconds)', async () => {
    const v2 = await openV2(plain)
    const v3 = await EtcdStore.open({...base, endpoints: plain.endpoints})
    opened.push(v3)
    const [s2, s3] = await Promise.all([v2.readNetwork(), v3.readNetwork()])
    const [t2, t3] = await Promise.all([
      v2.leaseTtls(s2.subnets.map((k) => k.lease)),
      v3.leaseTtls(s3.subnets.map((k) => k.lease)),
    ])
    const view = (s: NetworkSnapshot, ttls: Map<string, number>) =>
      decodeLeases(s.subnets).leases.map((l) => ({
        key: l.key,
        value: l.value,
        reserved: l.reserved,
        vxlan: l.vxlan,
        ttl: l.reserved ? null : ttls.get(l.leaseId)!,
      }))
    const a = view(s2, t2)
    const b = view(s3, t3)
    assert.deepEqual(
      a.map(({ttl: _, ...x}) => x),
      b.map(({ttl: _, ...x}) => x),
    )
    a.forEach((x, i) =>
      assert.ok(
        x.ttl === null ? b[i]!.ttl === null : Math.abs(x.ttl - b[i]!.ttl!) <= 5,
        `${x.key}: ${x.ttl} vs ${b[i]!.ttl}`,
      ),
    )
    assert.equal(s2.config?.value, s3.config?.value)
  })

  test('a missing prefix is an empty snapshot, a missing key null', async () => {
    const store = await openV2(plain, {prefix: '/nothing/here'})
    const snap = await store.readNetwork()
    assert.deepEqual([snap.config, snap.subnets, snap.foreign], [null, [], []])
    assert.match(snap.revision, /^\d+$/)
    assert.equal(await store.getKey('/nothing/here/config'), null)
  })

  test('dual-stack keys (& and :) are read, and a relative prefix maps to the absolute v2 path', async () => {
    const seg = '10.9.1.0-24&fd00:9:1::-64'
    await etcdctlV2(plain, ['set', `/rel/net/subnets/${seg}`, legacyVxlanValue('192.168.9.1', 'c6:d2:32:6f:8f:91')])
    await etcdctlV2(plain, ['set', '/rel/net/junk', 'x'])
    const store = await openV2(plain, {prefix: 'rel/net'})
    const snap = await store.readNetwork()
    assert.deepEqual(
      snap.subnets.map((kv) => kv.key),
      [`rel/net/subnets/${seg}`],
    )
    assert.deepEqual(
      snap.foreign.map((kv) => kv.key),
      ['rel/net/junk'],
    )
    assert.equal(
      (await store.getKey(`rel/net/subnets/${seg}`))?.value,
      legacyVxlanValue('192.168.9.1', 'c6:d2:32:6f:8f:91'),
    )
  })
})

describe('v2 reader: failures', () => {
  test('etcd without --enable-v2: a clear message, exit 69', async () => {
    const err = await unavailable(openV2(noV2), 'ETCD_V2_DISABLED')
    assert.match(err.message, /does not serve the v2 API/)
    assert.match(err.message, /--enable-v2/)
    assert.ok(err.message.includes(noV2.endpoint))
  })

  test('unreachable: names the endpoints and gives up within the dial timeout', async () => {
    const t0 = Date.now()
    const err = await unavailable(openV2(['http://127.0.0.1:1'], {dialTimeoutMs: 1000}), 'ETCD_UNAVAILABLE')
    assert.match(err.message, /^etcd unreachable at http:\/\/127\.0\.0\.1:1 \(v2 API\): .*ECONNREFUSED/)
    assert.ok(Date.now() - t0 < 2000)
  })

  test('a dead endpoint first: the next one answers', async () => {
    const store = await openV2(['http://127.0.0.1:1', plain.endpoint])
    assert.equal((await store.readNetwork()).config?.value, CONFIG)
  })

  test('--dial-timeout bounds the first answer, --command-timeout each read', async () => {
    // A server that accepts connections and never answers.
    const silent = net.createServer(() => {})
    // One that answers the open() probe like etcd and then never answers the recursive read.
    const stalling = http.createServer((req, res) => {
      if (req.url?.includes('recursive=true')) return
      res.writeHead(404, {'content-type': 'application/json', 'x-etcd-index': '9'})
      res.end('{"errorCode":100,"message":"Key not found","cause":"/coreos.com","index":9}')
    })
    await Promise.all([
      new Promise<void>((r) => silent.listen(0, '127.0.0.1', r)),
      new Promise<void>((r) => stalling.listen(0, '127.0.0.1', r)),
    ])
    try {
      const at = (s: net.Server) => `http://127.0.0.1:${(s.address() as net.AddressInfo).port}`
      let t0 = Date.now()
      const err = await unavailable(openV2([at(silent)], {dialTimeoutMs: 300}), 'ETCD_UNAVAILABLE')
      assert.match(err.message, /no answer within 300 ms/)
      assert.ok(Date.now() - t0 < 1500, `took ${Date.now() - t0} ms`)
      const store = await openV2([at(stalling)], {commandTimeoutMs: 400})
      t0 = Date.now()
      await unavailable(store.readNetwork(), 'ETCD_UNAVAILABLE')
      assert.ok(Date.now() - t0 < 1500, `took ${Date.now() - t0} ms`)
      store.close()
    } finally {
      stalling.closeAllConnections()
      silent.close()
      stalling.close()
    }
  })

  test('TLS: --cacert/--cert/--key read; a CA that did not sign the server fails the handshake; no client cert is refused', async () => {
    const t = tls.tls!
    const store = await openV2(tls, {cacert: t.ca, cert: t.cert, key: t.key})
    assert.equal((await store.readNetwork()).subnets.length, LEASES.length)
    const err = await unavailable(openV2(tls, {cacert: t.wrongCa, cert: t.cert, key: t.key}), 'ETCD_TLS_FAILED')
    assert.match(
      err.message,
      /TLS handshake with etcd at https:\/\/127\.0\.0\.1:\d+ failed \(using --cacert .*wrong-ca\.crt/,
    )
    await assert.rejects(
      openV2(tls, {cacert: t.ca}),
      (e: unknown) => e instanceof UnavailableError && e.exitCode === 69,
    )
  })

  test('v2 auth (separate from v3 auth): none, a wrong password, then the right one', async () => {
    const none = await unavailable(openV2(authed), 'ETCD_AUTH_REQUIRED')
    assert.match(none.message, /requires authentication for the v2 API: pass --user/)
    const bad = await unavailable(openV2(authed, {user: 'flannel', password: 'nope'}), 'ETCD_AUTH_FAILED')
    assert.match(bad.message, /rejected user "flannel" on the v2 API/)
    const store = await openV2(authed, {user: 'flannel', password: 'flpw'})
    const snap = await store.readNetwork()
    assert.equal(snap.config?.value, CONFIG)
    assert.equal(snap.subnets.length, LEASES.length)
  })
})

describe('--etcd-api v2 through the CLI, with TLS and auth flags', () => {
  test('leases ls over TLS and with --user name:password read the v2 keyspace', async () => {
    const t = tls.tls!
    const [overTls, withAuth, refused] = await Promise.all([
      runCli([
        'leases',
        'ls',
        '--etcd-api',
        'v2',
        '--json',
        '--endpoints',
        tls.endpoint,
        '--cacert',
        t.ca,
        '--cert',
        t.cert,
        '--key',
        t.key,
      ]),
      runCli(['leases', 'ls', '--etcd-api', 'v2', '--json', '--endpoints', authed.endpoint, '--user', 'flannel:flpw']),
      runCli(['leases', 'ls', '--etcd-api', 'v2', '--endpoints', authed.endpoint, '--user', 'flannel:nope']),
    ])
    for (const r of [overTls, withAuth]) {
      assert.equal(r.code, 0, show(r))
      const j = json<{leases: Array<{subnet: string; reserved: boolean}>}>(r)
      assert.deepEqual(
        j.leases.map((l) => [l.subnet, l.reserved]),
        [
          ['10.5.2.0/24', false],
          ['10.5.12.0/24', false],
          ['10.5.13.0/24', false],
          ['10.5.20.0/24', true],
        ],
      )
    }
    assert.equal(refused.code, 69, show(refused))
    assert.match(refused.stderr, /rejected user "flannel" on the v2 API/)
  })
})
