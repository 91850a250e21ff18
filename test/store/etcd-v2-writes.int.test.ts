// The v2 store's guarded writes against a real etcd 3.4 with --enable-v2: the FlannelStore contract, and what the
// v2 API does with them, checked against the raw HTTP answers (a reservation is a compare-and-swap with `ttl=` that
// keeps the value byte for byte, drops `ttl` and `expiration`, moves modifiedIndex and is delivered to watchers as
// flanneld <= 0.17 watches); the expiry window of a dying key; and reads and writes under a v2 role exactly like
// the one flanneld v0.11 needs.

import assert from 'node:assert/strict'
import {after, before, describe, test} from 'node:test'

import {ConflictError, UnavailableError} from '../../src/core/errors.js'
import {EtcdV2Store} from '../../src/store/etcd-v2.js'
import {type EtcdServer, startEtcd} from '../helpers/etcd.js'
import {enableV2Auth, etcdctlV2, legacyVxlanValue, v2Get} from '../helpers/etcd-v2.js'
import {storeContract} from './contract.js'

let etcd: EtcdServer
let authed: EtcdServer
const stores: EtcdV2Store[] = []
const base = {dialTimeoutMs: 5000, commandTimeoutMs: 10_000}

before(async () => {
  ;[etcd, authed] = await Promise.all([startEtcd({enableV2: true}), startEtcd({enableV2: true})])
  await etcdctlV2(authed, ['set', '/coreos.com/network/config', '{"Network":"10.5.0.0/16"}'])
  await etcdctlV2(authed, [
    'set',
    '--ttl',
    '86400',
    '/coreos.com/network/subnets/10.5.1.0-24',
    legacyVxlanValue('192.168.1.1', 'c6:d2:32:6f:8f:01'),
  ])
  await etcdctlV2(authed, ['set', '/coreos.com/network/other', 'x'])
  // flanneld v0.11's documented role: read/write on the prefix and on everything under it.
  await enableV2Auth(authed, ['/coreos.com/network', '/coreos.com/network/*'])
})

after(async () => {
  for (const s of stores) s.close()
  await Promise.all([etcd, authed].map((e) => e?.stop()))
})

async function open(e: EtcdServer, prefix: string, extra: {user?: string; password?: string} = {}) {
  const s = await EtcdV2Store.open({...base, endpoints: e.endpoints, prefix, ...extra})
  stores.push(s)
  return s
}

storeContract(
  'EtcdV2Store (etcd v2 keys API)',
  async (prefix) => ({
    store: await open(etcd, prefix),
    put: async (key, value) => void (await etcdctlV2(etcd, ['set', key, value])),
    del: async (key) => void (await etcdctlV2(etcd, ['rm', key])),
  }),
  {noVersions: true},
)

/** The raw v2 node of a key. */
async function node(e: EtcdServer, key: string) {
  const r = await v2Get(e, key)
  return r.status === 200
    ? (r.body.node as {value: string; ttl?: number; expiration?: string; modifiedIndex: number})
    : null
}

describe('v2 writes, as the v2 API sees them', () => {
  const P = `/w-${process.pid}/network`

  test('a reservation: CAS with ttl= keeps the value byte for byte, leaves no ttl and no expiration, moves modifiedIndex, and a v2 watcher sees compareAndSwap', async () => {
    const s = await open(etcd, P)
    const key = `${P}/subnets/10.5.34.0-24`
    // flanneld v0.11's bytes, with a 24 h TTL, as its createSubnet leaves them.
    const value = legacyVxlanValue('192.168.1.34', 'c6:d2:32:6f:8f:34')
    await etcdctlV2(etcd, ['mk', '--ttl', '86400', key, value])
    const before = (await node(etcd, key))!
    assert.ok(before.ttl! > 86_000 && before.expiration)
    // A flanneld <= 0.17 watches its own key with waitIndex = the index it read.
    const watch = fetch(`${etcd.endpoint}/v2/keys${key}?wait=true&waitIndex=${before.modifiedIndex + 1}`).then(
      async (r) => JSON.parse(await r.text()) as {action: string; node: {value: string; expiration?: string}},
    )
    const r = await s.putIfUnchanged(key, value, String(before.modifiedIndex))
    const after = (await node(etcd, key))!
    assert.equal(after.value, value)
    assert.equal(after.ttl, undefined)
    assert.equal(after.expiration, undefined)
    assert.equal(String(after.modifiedIndex), r.revision)
    assert.ok(after.modifiedIndex > before.modifiedIndex)
    assert.equal(r.leaseId, '0')
    const ev = await watch
    assert.equal(ev.action, 'compareAndSwap')
    assert.equal(ev.node.value, value)
    assert.equal(ev.node.expiration, undefined, 'flanneld reads a nil Expiration: its renew timer never fires')
    // Read back through the store: a reservation.
    assert.equal((await s.getKey(key))?.lease, '0')
  })

  test('a writer between read and write: CAS_LOST (exit 3) naming what the key holds, and nothing else written', async () => {
    const s = await open(etcd, P)
    const key = `${P}/subnets/10.5.35.0-24`
    await etcdctlV2(etcd, ['set', '--ttl', '600', key, legacyVxlanValue('192.168.1.35', 'c6:d2:32:6f:8f:35')])
    const read = (await s.getKey(key))!
    // flanneld v0.11's renewal: an unconditional set with a fresh TTL.
    const renewed = legacyVxlanValue('192.168.1.35', 'c6:d2:32:6f:8f:35')
    await etcdctlV2(etcd, ['set', '--ttl', '86400', key, renewed])
    const now = (await node(etcd, key))!
    const err = await s.putIfUnchanged(key, read.value, read.modRevision).then(
      () => assert.fail('expected CAS_LOST'),
      (e: unknown) => e,
    )
    assert.ok(err instanceof ConflictError && err.code === 'CAS_LOST' && err.exitCode === 3, String(err))
    assert.match(
      err.message,
      new RegExp(
        `changed since it was read at modifiedIndex ${read.modRevision} \\(it is now at modifiedIndex ${now.modifiedIndex} with a TTL`,
      ),
    )
    const after = (await node(etcd, key))!
    assert.deepEqual([after.modifiedIndex, after.value], [now.modifiedIndex, renewed])
    assert.ok(after.ttl! > 86_000, 'the renewal stays as it was: still a TTL key')
  })

  test('unreserve: CAS with ttl=N gives the key that TTL, same bytes', async () => {
    const s = await open(etcd, P)
    const key = `${P}/subnets/10.5.36.0-24`
    const value = legacyVxlanValue('192.168.1.36', 'c6:d2:32:6f:8f:36')
    await etcdctlV2(etcd, ['set', key, value])
    const kv = (await s.getKey(key))!
    const r = await s.putIfUnchanged(key, value, kv.modRevision, {ttlSeconds: 3600})
    assert.equal(r.leaseId, `v2:${key}`)
    const after = (await node(etcd, key))!
    assert.equal(after.value, value)
    assert.ok(after.ttl! <= 3600 && after.ttl! > 3590)
  })

  test('create-only is prevExist=false; a guarded delete of a renewed key keeps it', async () => {
    const s = await open(etcd, P)
    const key = `${P}/subnets/10.5.37.0-24`
    const r = await s.createIfAbsent(key, 'v', {ttlSeconds: 300})
    assert.ok((await node(etcd, key))!.ttl! > 290)
    await assert.rejects(
      s.createIfAbsent(key, 'w'),
      (e: unknown) => e instanceof ConflictError && e.code === 'ALREADY_EXISTS',
    )
    assert.equal((await node(etcd, key))!.value, 'v')
    await etcdctlV2(etcd, ['set', '--ttl', '300', key, 'v'])
    const out = await s.deleteGuarded([{key, modRevision: r.revision}])
    assert.deepEqual(out.deleted, [])
    assert.equal(out.lost[0]?.now?.value, 'v')
    assert.ok(await node(etcd, key))
  })

  test('a guard of modifiedIndex 0 is refused before anything is sent (prevIndex=0 is no guard for etcd)', async () => {
    const s = await open(etcd, P)
    await assert.rejects(s.putIfUnchanged(`${P}/subnets/10.5.38.0-24`, 'v', '0'), /needs a modifiedIndex/)
    assert.equal(await node(etcd, `${P}/subnets/10.5.38.0-24`), null)
  })
})

describe('the expiry window of a v2 key', () => {
  test('a key past its TTL but not yet swept reads as a lease with TTL -1, never as a reservation (bounded, repeated)', async () => {
    const P = `/exp-${process.pid}/network`
    const s = await open(etcd, P)
    let windowSeen = 0
    for (let round = 0; round < 3; round++) {
      const key = `${P}/subnets/10.5.${round}.0-24`
      await etcdctlV2(etcd, ['set', '--ttl', '1', key, 'v'])
      const deadline = Date.now() + 4000
      for (;;) {
        assert.ok(Date.now() < deadline, 'the key neither expired nor was swept within 4 s')
        const [raw, kv] = await Promise.all([node(etcd, key), s.getKey(key)])
        if (raw === null && kv === null) break
        if (kv) assert.equal(kv.lease, `v2:${key}`, `read as ${kv.lease}: a dying key must not be a reservation`)
        if (raw && raw.ttl === undefined && raw.expiration) {
          windowSeen++
          const ttls = await s.leaseTtls([`v2:${key}`])
          assert.equal(ttls.get(`v2:${key}`) ?? -1, -1)
        }
        await new Promise((r) => setTimeout(r, 20))
      }
    }
    // etcd's sweep runs every 500 ms, so the window is seen in practice; it is asserted only when observed.
    process.stderr.write(`expiry window observed in ${windowSeen} reads over 3 keys\n`)
  })
})

describe("v2 auth with flanneld v0.11's role (read/write on <prefix> and <prefix>/*)", () => {
  test('reads the way flanneld does when the recursive read of the prefix is refused, and writes', async () => {
    const s = await open(authed, '/coreos.com/network', {user: 'flannel', password: 'flpw'})
    const snap = await s.readNetwork()
    assert.equal(snap.config?.value, '{"Network":"10.5.0.0/16"}')
    assert.deepEqual(
      snap.subnets.map((kv) => kv.key),
      ['/coreos.com/network/subnets/10.5.1.0-24'],
    )
    assert.equal(s.sawWholePrefix, false)
    const kv = snap.subnets[0]!
    const r = await s.putIfUnchanged(kv.key, kv.value, kv.modRevision)
    assert.equal(r.leaseId, '0')
    const created = await s.createIfAbsent('/coreos.com/network/subnets/10.5.9.0-24', 'v', {ttlSeconds: 60})
    const out = await s.deleteGuarded([{key: '/coreos.com/network/subnets/10.5.9.0-24', modRevision: created.revision}])
    assert.deepEqual(out.deleted, ['/coreos.com/network/subnets/10.5.9.0-24'])
  })

  test('a wrong password is still exit 69 naming the user', async () => {
    await assert.rejects(
      open(authed, '/coreos.com/network', {user: 'flannel', password: 'nope'}),
      (e: unknown) => e instanceof UnavailableError && /rejected user "flannel" on the v2 API/.test(e.message),
    )
  })
})
