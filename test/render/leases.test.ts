/** The lease table's words for a listing's revision: etcd's v2 API counts in an etcd index and modifiedIndex. */

import assert from 'node:assert/strict'
import {test} from 'node:test'

import {Chalk} from 'chalk'

import {renderLeases, renderSummary} from '../../src/render/leases.js'
import {renderReserve} from '../../src/render/mutations.js'
import type {LeaseJson, LeasesResult} from '../../src/services/leases.js'

const c = new Chalk({level: 0})

const lease: LeaseJson = {
  subnet: '10.5.1.0/24',
  ipv6Subnet: null,
  publicIP: '192.0.2.1',
  publicIPv6: null,
  backendType: 'vxlan',
  backendData: {VNI: 1, VtepMAC: '02:00:00:00:00:01'},
  vni: 1,
  vtepMAC: '02:00:00:00:00:01',
  reserved: false,
  ttlSeconds: 60,
  expiresAt: '2026-12-02T00:01:00Z',
  key: '/coreos.com/network/subnets/10.5.1.0-24',
  modRevision: '41',
  createRevision: '41',
  leaseId: '7',
}

const result = (leases: LeaseJson[], total = leases.length): LeasesResult => ({
  revision: '42',
  source: 'etcd',
  ttlKnown: true,
  leases,
  malformed: [],
  total,
})

const opts = {wide: true, headers: true, sort: 'subnet', filtered: false} as const

test('v3 and snapshot listings speak of revisions; v2 listings of the etcd index and modifiedIndex', () => {
  for (const keyspace of ['v3', null] as const) {
    assert.equal(renderLeases(result([]), {...opts, keyspace}, c), 'No leases under the subnets prefix (revision 42).')
    assert.match(renderLeases(result([lease]), {...opts, keyspace}, c).split('\n')[0]!, / MOD-REV$/)
    assert.equal(
      renderSummary(result([lease]), 90, keyspace),
      '1 lease(s), 0 reserved, 1 expiring within the 1m30s renew margin, 0 malformed (revision 42)',
    )
  }
  assert.equal(
    renderLeases(result([]), {...opts, keyspace: 'v2'}, c),
    'No leases under the subnets prefix (etcd index 42).',
  )
  assert.equal(
    renderLeases(result([], 3), {...opts, filtered: true, keyspace: 'v2'}, c),
    'No leases match (3 lease(s) under the subnets prefix at etcd index 42).',
  )
  assert.match(renderLeases(result([lease]), {...opts, keyspace: 'v2'}, c).split('\n')[0]!, / MOD-INDEX$/)
  assert.match(renderSummary(result([lease]), 90, 'v2'), /\(etcd index 42\)$/)
})

test('a created reservation names the v2 modifiedIndex or the v3 revision', () => {
  const r = {
    action: 'created',
    key: '/coreos.com/network/subnets/10.5.1.0-24',
    subnet: '10.5.1.0/24',
    publicIP: '192.0.2.1',
    value: '{"PublicIP":"192.0.2.1"}',
    previousModRevision: null,
    previousLeaseId: null,
    revision: '43',
    note: '',
    watchedMs: null,
  } as const
  assert.match(renderReserve({...r, keyspace: 'v3'}, c), /\(revision 43\)/)
  assert.match(renderReserve({...r, keyspace: 'v2'}, c), /\(modifiedIndex 43\)/)
})
