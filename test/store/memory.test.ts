// The in-memory twin: the shared FlannelStore contract, and what only a manual clock can show (lease expiry).

import assert from 'node:assert/strict'
import {describe, test} from 'node:test'

import {MemoryStore} from '../../src/store/memory.js'
import {storeContract} from './contract.js'

storeContract('MemoryStore', async (prefix) => {
  const store = new MemoryStore({prefix})
  return {
    store,
    put: async (key, value) => void store.put(key, value),
    del: async (key) => void store.delete(key),
  }
})

describe('MemoryStore leases on an injected clock', () => {
  test('TTLs count down; an expired lease deletes its keys in one new revision and reads -1', async () => {
    let now = 1_000_000
    const store = new MemoryStore({now: () => now})
    const a = await store.createIfAbsent(store.layout.subnetKey('10.5.1.0-24'), 'a', {ttlSeconds: 10})
    const b = await store.createIfAbsent(store.layout.subnetKey('10.5.2.0-24'), 'b', {ttlSeconds: 100})
    now += 4_500
    assert.deepEqual(
      await store.leaseTtls([a.leaseId, b.leaseId]),
      new Map([
        [a.leaseId, 5],
        [b.leaseId, 95],
      ]),
    )
    const before = store.revision
    now += 5_500
    const snap = await store.readNetwork()
    assert.deepEqual(
      snap.subnets.map((kv) => kv.value),
      ['b'],
    )
    assert.equal(store.revision, before + 1)
    assert.equal((await store.leaseTtls([a.leaseId])).get(a.leaseId), -1)
    assert.deepEqual(store.leaseIds(), [b.leaseId])
  })

  test('a failed guarded write under a new lease leaves no lease behind', async () => {
    const store = new MemoryStore()
    const key = store.layout.config
    await store.createIfAbsent(key, 'x')
    await assert.rejects(store.createIfAbsent(key, 'y', {ttlSeconds: 60}))
    await assert.rejects(store.putIfUnchanged(key, 'y', '1', {ttlSeconds: 60}))
    assert.deepEqual(store.leaseIds(), [])
  })

  test('beforeWrite runs before the guard is compared, so a racing writer there wins', async () => {
    const store = new MemoryStore()
    const key = store.layout.config
    const r = await store.createIfAbsent(key, 'mine')
    store.beforeWrite = () => {
      store.beforeWrite = undefined
      store.put(key, 'theirs')
    }
    await assert.rejects(store.putIfUnchanged(key, 'late', r.revision), {code: 'CAS_LOST'})
    assert.equal((await store.getKey(key))?.value, 'theirs')
  })
})
