// The FlannelStore contract: one suite that every implementation runs (the in-memory twin in the unit tier,
// EtcdStore against a real etcd in the integration tier), so the twin the service tests use behaves as etcd does.

import assert from 'node:assert/strict'
import {describe, test} from 'node:test'

import {ConflictError} from '../../src/core/errors.js'
import type {RawKV} from '../../src/core/leases.js'
import type {FlannelStore} from '../../src/store/port.js'

export interface ContractHarness {
  store: FlannelStore
  /** An unconditional put by another writer (etcdctl put, a flanneld renewal). */
  put: (key: string, value: string) => Promise<void>
  /** An unconditional delete by another writer. */
  del: (key: string) => Promise<void>
}

/** What a store cannot do by design, and the contract does not ask of it. */
export interface ContractLimits {
  /** etcd's v2 store keeps no per-key version: every key reads as version '1'. */
  readonly noVersions?: boolean
}

/** `open(prefix)` gives a store on an empty keyspace under `prefix`. */
export function storeContract(
  name: string,
  open: (prefix: string) => Promise<ContractHarness>,
  limits: ContractLimits = {},
): void {
  let n = 0
  const fresh = () => open(`/contract-${process.pid}-${++n}/network`)
  const conflict = (code: string) => (e: unknown) => {
    assert.ok(e instanceof ConflictError, String(e))
    assert.equal(e.exitCode, 3)
    assert.equal(e.code, code)
    return true
  }
  const detailsOf = async (p: Promise<unknown>) => {
    try {
      await p
    } catch (e) {
      return (e as ConflictError).details as {key: string; expectedModRevision?: string; now: RawKV | null}
    }
    assert.fail('expected a conflict')
  }

  describe(`FlannelStore contract: ${name}`, () => {
    test('readNetwork splits config, subnets and foreign keys at one revision; every write moves the revision on', async () => {
      const {store, put} = await fresh()
      const L = store.layout
      const empty = await store.readNetwork()
      assert.equal(empty.config, null)
      assert.deepEqual(empty.subnets, [])
      assert.match(empty.revision, /^\d+$/)
      const c = await store.createIfAbsent(L.config, '{"Network":"10.5.0.0/16"}')
      await put(L.subnetKey('10.5.1.0-24'), '{"PublicIP":"192.0.2.1"}')
      await put(`${L.prefix}/other`, 'x')
      const snap = await store.readNetwork()
      assert.ok(BigInt(snap.revision) > BigInt(empty.revision))
      assert.equal(snap.config?.value, '{"Network":"10.5.0.0/16"}')
      assert.equal(snap.config?.modRevision, c.revision)
      assert.equal(snap.config?.createRevision, c.revision)
      assert.equal(snap.config?.lease, '0')
      assert.deepEqual(
        snap.subnets.map((kv) => kv.key),
        [L.subnetKey('10.5.1.0-24')],
      )
      assert.deepEqual(
        snap.foreign.map((kv) => kv.key),
        [`${L.prefix}/other`],
      )
      assert.ok(BigInt(snap.subnets[0]!.modRevision) <= BigInt(snap.revision))
    })

    test('createIfAbsent creates once; a second create is ALREADY_EXISTS with what the key holds, and writes nothing', async () => {
      const {store} = await fresh()
      const key = store.layout.config
      const r = await store.createIfAbsent(key, 'one')
      assert.equal(r.leaseId, '0')
      const kv = await store.getKey(key)
      assert.equal(kv?.value, 'one')
      assert.equal(kv?.modRevision, r.revision)
      assert.equal(kv?.version, '1')
      await assert.rejects(store.createIfAbsent(key, 'two'), conflict('ALREADY_EXISTS'))
      const d = await detailsOf(store.createIfAbsent(key, 'two'))
      assert.equal(d.key, key)
      assert.deepEqual(d.now, kv)
      assert.deepEqual(await store.getKey(key), kv)
    })

    test('createIfAbsent with ttlSeconds binds the key to a new lease of that TTL', async () => {
      const {store} = await fresh()
      const key = store.layout.subnetKey('10.5.2.0-24')
      const r = await store.createIfAbsent(key, 'v', {ttlSeconds: 120})
      assert.notEqual(r.leaseId, '0')
      assert.equal((await store.getKey(key))?.lease, r.leaseId)
      const ttl = (await store.leaseTtls([r.leaseId])).get(r.leaseId)!
      assert.ok(ttl <= 120 && ttl >= 115, String(ttl))
    })

    test('putIfUnchanged writes on the current mod revision, and without ttlSeconds leaves the key with no lease', async () => {
      const {store} = await fresh()
      const key = store.layout.subnetKey('10.5.3.0-24')
      const a = await store.createIfAbsent(key, 'v1', {ttlSeconds: 60})
      const b = await store.putIfUnchanged(key, 'v2', a.revision)
      assert.ok(BigInt(b.revision) > BigInt(a.revision))
      assert.equal(b.leaseId, '0')
      const kv = await store.getKey(key)
      assert.equal(kv?.value, 'v2')
      assert.equal(kv?.lease, '0')
      assert.equal(kv?.modRevision, b.revision)
      assert.equal(kv?.createRevision, a.revision)
      assert.equal(kv?.version, limits.noVersions ? '1' : '2')
      const c = await store.putIfUnchanged(key, 'v3', b.revision, {ttlSeconds: 30})
      assert.notEqual(c.leaseId, '0')
      assert.equal((await store.getKey(key))?.lease, c.leaseId)
    })

    test('putIfUnchanged on a moved key is CAS_LOST with the expected revision and what the key holds now; nothing written', async () => {
      const {store, put} = await fresh()
      const key = store.layout.config
      const a = await store.createIfAbsent(key, 'mine')
      await put(key, 'theirs')
      const now = await store.getKey(key)
      await assert.rejects(store.putIfUnchanged(key, 'late', a.revision), conflict('CAS_LOST'))
      const d = await detailsOf(store.putIfUnchanged(key, 'late', a.revision, {ttlSeconds: 60}))
      assert.equal(d.expectedModRevision, a.revision)
      assert.deepEqual(d.now, now)
      assert.deepEqual(await store.getKey(key), now)
    })

    test('putIfUnchanged on a key that no longer exists is CAS_LOST with now null', async () => {
      const {store, del} = await fresh()
      const key = store.layout.config
      const a = await store.createIfAbsent(key, 'mine')
      await del(key)
      const d = await detailsOf(store.putIfUnchanged(key, 'late', a.revision))
      assert.equal(d.now, null)
      assert.equal(await store.getKey(key), null)
    })

    test('deleteGuarded deletes what is unchanged and reports, without deleting, what changed or went away', async () => {
      const {store, put, del} = await fresh()
      const L = store.layout
      const keys = ['10.5.1.0-24', '10.5.2.0-24', '10.5.3.0-24', '10.5.4.0-24'].map((s) => L.subnetKey(s))
      const listed = []
      for (const k of keys) listed.push({key: k, modRevision: (await store.createIfAbsent(k, 'v')).revision})
      await put(keys[1]!, 'renewed')
      await del(keys[2]!)
      const renewed = await store.getKey(keys[1]!)
      const out = await store.deleteGuarded(listed)
      assert.deepEqual(out.deleted.sort(), [keys[0], keys[3]].sort())
      assert.deepEqual(
        out.lost.map((l) => [l.key, l.expectedModRevision, l.now]).sort(),
        [
          [keys[1], listed[1]!.modRevision, renewed],
          [keys[2], listed[2]!.modRevision, null],
        ].sort(),
      )
      assert.deepEqual(
        (await store.readNetwork()).subnets.map((kv) => kv.key),
        [keys[1]],
      )
    })

    test('deleteGuarded handles more keys than one etcd transaction may hold', async () => {
      const {store} = await fresh()
      const L = store.layout
      const keys = Array.from({length: 300}, (_, i) => L.subnetKey(`10.${1 + (i >> 8)}.${i & 255}.0-24`))
      const listed = await Promise.all(
        keys.map(async (key) => ({key, modRevision: (await store.createIfAbsent(key, 'v')).revision})),
      )
      const out = await store.deleteGuarded(listed)
      assert.equal(out.deleted.length, 300)
      assert.deepEqual(out.lost, [])
      assert.equal((await store.readNetwork()).subnets.length, 0)
    })

    test('leaseTtls skips lease 0 and maps a lease that does not exist to -1 (or leaves it out)', async () => {
      const {store} = await fresh()
      const r = await store.createIfAbsent(store.layout.subnetKey('10.5.9.0-24'), 'v', {ttlSeconds: 600})
      const ttls = await store.leaseTtls(['0', r.leaseId, r.leaseId, '7587000000000001'])
      assert.equal(ttls.has('0'), false)
      assert.ok(ttls.get(r.leaseId)! > 590)
      assert.equal(ttls.get('7587000000000001') ?? -1, -1)
    })

    test('getKey of a missing key is null', async () => {
      const {store} = await fresh()
      assert.equal(await store.getKey(store.layout.config), null)
    })
  })
}
