import assert from 'node:assert/strict'
import {describe, test} from 'node:test'

import {ConflictError} from '../../src/core/errors.js'
import {ownerUndoesReservation, reservationOutcome} from '../../src/core/reservation.js'
import {reserveLease} from '../../src/services/lease-mutations.js'
import {MemoryStore} from '../../src/store/memory.js'

const KEY = '/coreos.com/network/subnets/10.5.34.0-24'
const VALUE =
  '{"PublicIP":"198.18.0.12","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:00:00:00:00:12"}}'

function store(): MemoryStore {
  const s = new MemoryStore()
  s.put('/coreos.com/network/config', '{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}')
  s.put(KEY, VALUE, {ttlSeconds: 86_400})
  return s
}

describe('leases reserve watches the key for its owner undoing it', () => {
  test('a running flanneld ≥ v0.18 re-leases it: exit 3 (ConflictError) with what happened and what works', async () => {
    const s = store()
    let sleeps = 0
    // flanneld v0.20 sees its key change and renews at once with a new 24h lease (seen with the real binary).
    const sleep = async () => {
      if (++sleeps === 2) s.put(KEY, VALUE, {ttlSeconds: 86_400})
    }
    await assert.rejects(
      reserveLease(s, {subnet: '10.5.34.0/24', dryRun: false, watchMs: 5000, sleep}, async () => true),
      (e: unknown) => {
        assert.ok(e instanceof ConflictError)
        assert.equal(e.code, 'RESERVATION_UNDONE')
        assert.match(e.message, /flanneld on 198\.18\.0\.12 re-leased it with etcd lease \d+ .* within 200 ms/)
        assert.match(e.message, /flannel-io\/flannel#1329/)
        assert.match(
          e.hint!,
          /stop flanneld on 198\.18\.0\.12.*keep it stopped.*takes 10\.5\.34\.0\/24 back as an ordinary 24h lease/,
        )
        return true
      },
    )
    assert.equal(sleeps, 2)
  })

  test('nobody undoes it: reserved after the bounded watch; --watch 0 does not look again', async () => {
    const s = store()
    let slept = 0
    const r = await reserveLease(
      s,
      {subnet: '10.5.34.0/24', dryRun: false, watchMs: 1000, sleep: async (ms) => void (slept += ms)},
      async () => true,
    )
    assert.equal(r.action, 'reserved')
    assert.equal(r.watchedMs, 1000)
    assert.equal(slept, 1000)
    assert.equal((await s.getKey(KEY))!.lease, '0')
    const calls = s.calls.getKey
    const s2 = store()
    const r2 = await reserveLease(s2, {subnet: '10.5.34.0/24', dryRun: false, watchMs: 0}, async () => true)
    assert.equal(r2.watchedMs, null)
    assert.equal(s2.calls.getKey, 0)
    assert.ok(calls >= 11)
  })

  test('outcomes and which keyspace undoes reservations', () => {
    const kv = {key: KEY, value: VALUE, createRevision: '2', modRevision: '5', version: '2', lease: '0'}
    assert.deepEqual(reservationOutcome('5', kv), {kind: 'kept'})
    assert.deepEqual(reservationOutcome('4', {...kv, lease: '7'}), {kind: 're-leased', leaseId: '7', modRevision: '5'})
    assert.deepEqual(reservationOutcome('4', kv), {kind: 'rewritten', modRevision: '5'})
    assert.deepEqual(reservationOutcome('4', null), {kind: 'deleted'})
    assert.equal(ownerUndoesReservation('v3'), true)
    assert.equal(ownerUndoesReservation('v2'), false)
  })
})
