// The lease state machine as a table, and how an event on our key is judged (pure).

import assert from 'node:assert/strict'
import {describe, test} from 'node:test'

import {judgeOwnKey, type LeaseEvent, type LeaseState, type OwnLease, transition} from '../../src/agent/lease-keeper.js'
import type {RawKV} from '../../src/core/leases.js'
import {ip, vxlanValue} from './fakes.js'

const lease: OwnLease = {
  subnet: {ip: ip('198.19.1.0'), prefix: 24},
  key: '/coreos.com/network/subnets/198.19.1.0-24',
  value: vxlanValue('198.18.0.1', '02:00:00:00:00:01'),
  modRevision: '10',
  leaseId: '700',
  expiresAt: 1000,
  reserved: false,
}
const kv = (o: Partial<RawKV>): RawKV => ({
  key: lease.key,
  value: lease.value,
  createRevision: '10',
  modRevision: '10',
  version: '1',
  lease: '700',
  ...o,
})

const pending: LeaseState = {kind: 'pending'}
const held: LeaseState = {kind: 'held', lease}
const lost: LeaseState = {kind: 'lost', lease, why: 'deleted'}
const reacq: LeaseState = {kind: 're-acquiring', previous: lease}
const acquired: LeaseEvent = {type: 'acquired', lease}
const renewed: LeaseEvent = {type: 'renewed', modRevision: '20', leaseId: '701', value: lease.value, expiresAt: 2000}

describe('transition', () => {
  const table: Array<[LeaseState, LeaseEvent, string]> = [
    [pending, acquired, 'held'],
    [pending, renewed, 'pending'],
    [pending, {type: 'lost', why: 'x'}, 'pending'],
    [held, renewed, 'held'],
    [held, {type: 'rewritten', kv: kv({modRevision: '11', lease: '0'})}, 'held'],
    [held, {type: 'lost', why: 'deleted'}, 'lost'],
    [held, acquired, 'held'],
    [held, {type: 'reacquire'}, 'held'],
    [lost, {type: 'reacquire'}, 're-acquiring'],
    [lost, renewed, 'lost'],
    [lost, acquired, 'lost'],
    [reacq, acquired, 'held'],
    [reacq, {type: 'lost', why: 'x'}, 're-acquiring'],
  ]
  for (const [s, e, want] of table)
    test(`${s.kind} --${e.type}--> ${want}`, () => assert.equal(transition(s, e).kind, want))

  test('renewed carries the new revision, lease and expiry; rewritten with no lease is a reservation', () => {
    const r = transition(held, renewed)
    assert.deepEqual(r.kind === 'held' && [r.lease.modRevision, r.lease.leaseId, r.lease.expiresAt], [
      '20',
      '701',
      2000,
    ])
    const w = transition(held, {type: 'rewritten', kv: kv({modRevision: '11', lease: '0'})})
    assert.equal(w.kind === 'held' && w.lease.reserved, true)
    const back = transition(w, renewed)
    assert.equal(back.kind === 'held' && back.lease.reserved, false)
  })

  test('re-acquiring remembers the lease it lost (to report a subnet change)', () => {
    const r = transition(lost, {type: 'reacquire'})
    assert.equal(r.kind === 're-acquiring' && r.previous, lease)
  })
})

describe('judgeOwnKey', () => {
  const me = ip('198.18.0.1')
  test('our revision, or our lease and value, is ours', () => {
    assert.equal(judgeOwnKey(lease, kv({}), me), 'ours')
    assert.equal(judgeOwnKey(lease, kv({modRevision: '12'}), me), 'ours')
  })
  test('a new lease or no lease with our PublicIP is a rewrite; another PublicIP a takeover; null a deletion', () => {
    assert.equal(judgeOwnKey(lease, kv({modRevision: '12', lease: '0'}), me), 'rewritten')
    assert.equal(judgeOwnKey(lease, kv({modRevision: '12', lease: '777'}), me), 'rewritten')
    assert.equal(
      judgeOwnKey(lease, kv({modRevision: '12', value: vxlanValue('198.18.0.9', '02:00:00:00:00:09')}), me),
      'taken-over',
    )
    assert.equal(judgeOwnKey(lease, kv({modRevision: '12', value: 'garbage'}), me), 'taken-over')
    assert.equal(judgeOwnKey(lease, null, me), 'deleted')
  })
})
