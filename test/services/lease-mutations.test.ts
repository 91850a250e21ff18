// leases reserve / unreserve / release in process against the in-memory store twin: plan, confirm, guarded write,
// and what a racing writer between plan and write does to each (exit 3, saying what the key holds now).

import assert from 'node:assert/strict'
import {describe, test} from 'node:test'

import {ConflictError, NotFoundError, UsageError} from '../../src/core/errors.js'
import {releaseLeases, reserveLease, unreserveLease} from '../../src/services/lease-mutations.js'
import {MemoryStore} from '../../src/store/memory.js'
import {hostGwValue, vxlanValue} from '../helpers/cli.js'

const CONFIG = '{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}'
const yes = async () => true
const no = async () => false
const quiet = () => {}

function cluster(now?: () => number) {
  const store = new MemoryStore({now})
  store.put(store.layout.config, CONFIG)
  const key = (s: string) => store.layout.subnetKey(s)
  store.put(key('10.5.1.0-24'), vxlanValue('192.0.2.1', '02:00:00:00:00:01'), {ttlSeconds: 86_400})
  store.put(key('10.5.2.0-24'), vxlanValue('192.0.2.2', '02:00:00:00:00:02'), {ttlSeconds: 86_400})
  store.put(key('10.5.3.0-24'), hostGwValue('192.0.2.3'))
  return {store, key}
}

const written = (s: MemoryStore) => s.calls.putIfUnchanged + s.calls.createIfAbsent + s.calls.deleteGuarded

describe('leases reserve (in process)', () => {
  test('an existing lease keeps its bytes and loses its etcd lease, guarded on the mod revision it read', async () => {
    const {store, key} = cluster()
    const before = (await store.getKey(key('10.5.1.0-24')))!
    const r = await reserveLease(store, {subnet: '10.5.1.0/24', dryRun: false}, yes)
    assert.equal(r.action, 'reserved')
    assert.equal(r.previousModRevision, before.modRevision)
    assert.equal(r.previousLeaseId, before.lease)
    const after = (await store.getKey(key('10.5.1.0-24')))!
    assert.equal(after.value, before.value)
    assert.equal(after.lease, '0')
    assert.equal(after.modRevision, r.revision)
  })

  test('selected by --public-ip; already reserved is unchanged; dry run and a declined prompt write nothing', async () => {
    const {store} = cluster()
    assert.equal((await reserveLease(store, {publicIP: '192.0.2.3', dryRun: false}, yes)).action, 'unchanged')
    assert.equal((await reserveLease(store, {publicIP: '192.0.2.2', dryRun: true}, yes)).action, 'dry-run')
    assert.equal((await reserveLease(store, {publicIP: '192.0.2.2', dryRun: false}, no)).action, 'unchanged')
    assert.equal(written(store), 0)
  })

  test('a renewal between plan and write wins: exit 3 with what the key holds now, the renewal kept', async () => {
    const {store, key} = cluster()
    const k = key('10.5.1.0-24')
    let renewed = ''
    const confirm = async () => {
      // flanneld renews: a new lease, the same value, a new mod revision.
      renewed = store.put(k, vxlanValue('192.0.2.1', '02:00:00:00:00:01'), {ttlSeconds: 86_400}).lease
      return true
    }
    await assert.rejects(reserveLease(store, {subnet: '10.5.1.0/24', dryRun: false}, confirm), (e: unknown) => {
      assert.ok(e instanceof ConflictError)
      assert.equal(e.exitCode, 3)
      assert.equal(e.code, 'CAS_LOST')
      assert.match(e.message, new RegExp(`with lease ${renewed}`))
      return true
    })
    assert.equal((await store.getKey(k))?.lease, renewed)
  })

  test('pre-reserving a free subnet creates flanneld-shaped bytes only if absent; overlaps and other owners refused', async () => {
    const {store, key} = cluster()
    const r = await reserveLease(store, {subnet: '10.5.9.0/24', publicIP: '192.0.2.9', dryRun: false}, yes)
    assert.equal(r.action, 'created')
    assert.deepEqual(await store.getKey(key('10.5.9.0-24')), {
      key: key('10.5.9.0-24'),
      value: '{"PublicIP":"192.0.2.9","PublicIPv6":null,"BackendType":"vxlan"}',
      createRevision: r.revision,
      modRevision: r.revision,
      version: '1',
      lease: '0',
    })
    await assert.rejects(
      reserveLease(store, {subnet: '10.5.1.0/24', publicIP: '192.0.2.7', dryRun: false}, yes),
      (e: unknown) => e instanceof ConflictError && e.code === 'OWNED_BY_OTHER',
    )
    await assert.rejects(
      reserveLease(store, {subnet: '10.5.10.0/24', publicIP: '192.0.2.1', dryRun: false}, yes),
      (e: unknown) => e instanceof ConflictError && e.code === 'ALREADY_EXISTS',
    )
    // Created by someone else between plan and write: exit 3, theirs kept.
    const confirm = async () => {
      store.put(key('10.5.11.0-24'), hostGwValue('192.0.2.99'))
      return true
    }
    await assert.rejects(
      reserveLease(store, {subnet: '10.5.11.0/24', publicIP: '192.0.2.11', dryRun: false}, confirm),
      (e: unknown) => e instanceof ConflictError && e.code === 'ALREADY_EXISTS',
    )
    assert.equal((await store.getKey(key('10.5.11.0-24')))?.value, hostGwValue('192.0.2.99'))
  })

  test('usage errors before any read', async () => {
    const store = new MemoryStore()
    await assert.rejects(reserveLease(store, {dryRun: false}, yes), UsageError)
    await assert.rejects(reserveLease(store, {subnet: '10.5.1.1/24', dryRun: false}, yes), UsageError)
    await assert.rejects(reserveLease(store, {publicIP: '1.2.3', dryRun: false}, yes), UsageError)
    assert.equal(store.calls.readNetwork, 0)
  })
})

describe('leases unreserve (in process)', () => {
  test('a reservation gets a new lease of --ttl, guarded; a leased key is unchanged; a missing one is exit 4', async () => {
    let now = 5_000_000
    const {store, key} = cluster(() => now)
    const r = await unreserveLease(store, '10.5.3.0/24', 3600, false, Date.UTC(2026, 0, 1), yes)
    assert.equal(r.action, 'unreserved')
    assert.equal(r.expiresAt, '2026-01-01T01:00:00Z')
    const kv = (await store.getKey(key('10.5.3.0-24')))!
    assert.equal(kv.lease, r.leaseId)
    assert.equal(kv.value, hostGwValue('192.0.2.3'))
    now += 3_600_000
    assert.equal(await store.getKey(key('10.5.3.0-24')), null, 'the key expires with its new lease')
    assert.equal((await unreserveLease(store, '10.5.1.0/24', 60, false, 0, yes)).action, 'unchanged')
    await assert.rejects(unreserveLease(store, '10.5.200.0/24', 60, false, 0, yes), NotFoundError)
  })
})

describe('leases release (in process)', () => {
  test('a guard lost mid-way: the unchanged keys are deleted, the changed one kept and reported (exit 3) with what it holds now', async () => {
    const {store, key} = cluster()
    const k2 = key('10.5.2.0-24')
    let now: unknown
    store.beforeWrite = (w) => {
      if (w.op !== 'delete') return
      store.beforeWrite = undefined
      const kv = store.put(k2, vxlanValue('192.0.2.2', '02:00:00:00:00:22'), {ttlSeconds: 86_400})
      now = kv
    }
    const plans: string[][] = []
    await assert.rejects(
      releaseLeases(
        store,
        {subnets: ['10.5.1.0/24', '10.5.2.0/24'], stale: false, renewMarginSeconds: 3600, force: false, dryRun: false},
        {onPlan: (t) => plans.push(t.map((x) => x.subnet)), confirm: yes},
      ),
      (e: unknown) => {
        assert.ok(e instanceof ConflictError, String(e))
        assert.equal(e.exitCode, 3)
        assert.equal(e.code, 'CAS_LOST')
        const d = e.details as {
          applied: boolean
          deleted: string[]
          lost: Array<{key: string; expectedModRevision: string; now: unknown}>
        }
        assert.equal(d.applied, true)
        assert.deepEqual(d.deleted, [key('10.5.1.0-24')])
        assert.deepEqual(d.lost, [{key: k2, expectedModRevision: d.lost[0]!.expectedModRevision, now}])
        assert.match(e.message, /1 key\(s\) changed since they were listed/)
        return true
      },
    )
    assert.deepEqual(plans, [['10.5.1.0/24', '10.5.2.0/24']])
    assert.equal(await store.getKey(key('10.5.1.0-24')), null)
    assert.deepEqual(await store.getKey(k2), now)
  })

  test('--stale selects leases below the renew margin, never reservations; reservations by name need --force', async () => {
    let t = 0
    const {store, key} = cluster(() => t)
    store.put(key('10.5.4.0-24'), vxlanValue('192.0.2.4', '02:00:00:00:00:04'), {ttlSeconds: 600})
    t += 10_000
    const stale = await releaseLeases(
      store,
      {subnets: [], stale: true, renewMarginSeconds: 3600, force: false, dryRun: false},
      {onPlan: quiet, confirm: yes},
    )
    assert.deepEqual(stale.deleted, [key('10.5.4.0-24')])
    assert.equal(stale.selected[0]!.ttlSeconds, 590)
    await assert.rejects(
      releaseLeases(
        store,
        {subnets: ['10.5.3.0/24'], stale: false, renewMarginSeconds: 3600, force: false, dryRun: false},
        {onPlan: quiet, confirm: yes},
      ),
      (e: unknown) => e instanceof UsageError && e.code === 'RESERVED',
    )
    const forced = await releaseLeases(
      store,
      {subnets: ['10.5.3.0/24'], stale: false, renewMarginSeconds: 3600, force: true, dryRun: false},
      {onPlan: quiet, confirm: yes},
    )
    assert.deepEqual(forced.deleted, [key('10.5.3.0-24')])
  })

  test('dry run and a declined prompt delete nothing; an unknown subnet is exit 4 before anything is deleted', async () => {
    const {store} = cluster()
    const o = {subnets: ['10.5.1.0/24'], stale: false, renewMarginSeconds: 3600, force: false}
    assert.equal((await releaseLeases(store, {...o, dryRun: true}, {onPlan: quiet, confirm: yes})).applied, false)
    assert.equal((await releaseLeases(store, {...o, dryRun: false}, {onPlan: quiet, confirm: no})).applied, false)
    await assert.rejects(
      releaseLeases(
        store,
        {...o, subnets: ['10.5.1.0/24', '10.5.77.0/24'], dryRun: false},
        {onPlan: quiet, confirm: yes},
      ),
      NotFoundError,
    )
    assert.equal(written(store), 0)
  })
})
