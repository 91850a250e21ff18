// network init / expand and doctor in process against the in-memory store twin.

import assert from 'node:assert/strict'
import {describe, test} from 'node:test'

import {ConflictError, UsageError} from '../../src/core/errors.js'
import type {NodeObservation} from '../../src/core/node-checks.js'
import {runDoctor} from '../../src/services/doctor.js'
import {expandNetwork} from '../../src/services/expand.js'
import {initNetwork} from '../../src/services/network.js'
import {MemoryStore} from '../../src/store/memory.js'
import type {NetworkReader} from '../../src/store/port.js'
import {vxlanValue} from '../helpers/cli.js'

const yes = async () => true
const no = async () => false
const quiet = () => {}

describe('network init (in process)', () => {
  const o = {network: '10.8.0.0/16', backend: 'vxlan'}

  test('creates the config only if absent, SubnetLen explicit; a second init is CONFIG_EXISTS with the stored config', async () => {
    const store = new MemoryStore()
    const r = await initNetwork(store, o, {dryRun: false, confirm: yes})
    assert.equal(r.applied, true)
    const kv = (await store.getKey(store.layout.config))!
    assert.equal(kv.value, '{"Network":"10.8.0.0/16","SubnetLen":24,"Backend":{"Type":"vxlan"}}')
    assert.equal(kv.modRevision, r.revision)
    await assert.rejects(initNetwork(store, {...o, network: '10.9.0.0/16'}, {dryRun: false, confirm: yes}), (e) => {
      assert.ok(e instanceof ConflictError)
      assert.equal(e.code, 'CONFIG_EXISTS')
      assert.deepEqual(e.details, {key: kv.key, value: kv.value, modRevision: kv.modRevision})
      return true
    })
    await assert.rejects(initNetwork(store, o, {dryRun: true, confirm: yes}), ConflictError)
    assert.deepEqual(await store.getKey(store.layout.config), kv)
  })

  test('a config created between the check and the write: exit 3, theirs kept', async () => {
    const store = new MemoryStore()
    const confirm = async () => {
      store.put(store.layout.config, '{"Network":"10.1.0.0/16"}')
      return true
    }
    await assert.rejects(
      initNetwork(store, o, {dryRun: false, confirm}),
      (e) => e instanceof ConflictError && e.code === 'CONFIG_EXISTS',
    )
    assert.equal((await store.getKey(store.layout.config))?.value, '{"Network":"10.1.0.0/16"}')
  })

  test('dry run and a declined prompt write nothing; an invalid config is exit 2 before any read', async () => {
    const store = new MemoryStore()
    assert.equal((await initNetwork(store, o, {dryRun: true, confirm: yes})).applied, false)
    assert.equal((await initNetwork(store, o, {dryRun: false, confirm: no})).applied, false)
    assert.equal(await store.getKey(store.layout.config), null)
    const reads = store.calls.getKey
    await assert.rejects(initNetwork(store, {...o, network: '10.0.0.0/29'}, {dryRun: false, confirm: yes}), UsageError)
    assert.equal(store.calls.getKey, reads)
  })
})

describe('network expand (in process)', () => {
  function cluster() {
    const store = new MemoryStore()
    store.put(store.layout.config, '{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}')
    store.put(store.layout.subnetKey('10.5.1.0-24'), vxlanValue('192.0.2.1', '02:00:00:00:00:01'), {ttlSeconds: 600})
    return store
  }

  test('writes the planned config guarded on the mod revision it read', async () => {
    const store = cluster()
    const r = await expandNetwork(
      store,
      {to: '10.4.0.0/15', serviceCidrs: [], dryRun: false},
      {onPlan: quiet, confirm: yes},
    )
    assert.equal(r.applied, true)
    const kv = (await store.getKey(store.layout.config))!
    assert.equal(kv.value, r.next.raw)
    assert.equal(kv.modRevision, r.revision)
    assert.match(r.recover, /--rev=\d+/)
  })

  test('a racing writer between plan and write: exit 3 naming what the config is now; nothing of ours written', async () => {
    const store = cluster()
    const theirs = '{"Network":"10.0.0.0/12","SubnetLen":24,"Backend":{"Type":"vxlan"}}'
    const confirm = async () => {
      store.put(store.layout.config, theirs)
      return true
    }
    await assert.rejects(
      expandNetwork(store, {to: '10.4.0.0/15', serviceCidrs: [], dryRun: false}, {onPlan: quiet, confirm}),
      (e) => {
        assert.ok(e instanceof ConflictError)
        assert.equal(e.exitCode, 3)
        assert.equal((e.details as {now: {value: string}}).now.value, theirs)
        return true
      },
    )
    assert.equal((await store.getKey(store.layout.config))?.value, theirs)
  })

  test('a refused plan and a bad --to are exit 2, dry run writes nothing', async () => {
    const store = cluster()
    await assert.rejects(
      expandNetwork(store, {to: '10.6.0.0/16', serviceCidrs: [], dryRun: false}, {onPlan: quiet, confirm: yes}),
      UsageError,
    )
    await assert.rejects(
      expandNetwork(store, {to: 'garbage', serviceCidrs: [], dryRun: false}, {onPlan: quiet, confirm: yes}),
      UsageError,
    )
    const r = await expandNetwork(
      store,
      {to: '10.4.0.0/15', serviceCidrs: [], dryRun: true},
      {onPlan: quiet, confirm: yes},
    )
    assert.equal(r.applied, false)
    assert.equal(store.calls.putIfUnchanged, 0)
  })
})

describe('doctor (in process)', () => {
  // v3 has no config, v2 has one: the cluster runs flannel <= 0.17's keyspace and flanneld >= 0.18 would find nothing.
  function keyspaces(): NetworkReader {
    const v3 = new MemoryStore()
    const v2 = new MemoryStore()
    v2.put(v2.layout.config, '{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}')
    const reader = (s: MemoryStore, api: 'v2' | 'v3'): NetworkReader => ({
      layout: s.layout,
      source: 'etcd',
      api,
      readNetwork: () => s.readNetwork(),
      leaseTtls: (ids) => s.leaseTtls(ids),
      close: () => s.close(),
    })
    return {...reader(v3, 'v3'), otherKeyspace: async () => reader(v2, 'v2')}
  }

  const node: NodeObservation = {
    subnetFile: '/run/flannel/subnet.env',
    subnetEnvText: null,
    publicIP: 0xc0000201,
    publicIPSource: '--public-ip',
    ifaceMtu: 1500,
    device: null,
    routes: [],
    neighs: [],
    fdb: [],
    ipForward: false,
  }
  const o = {failOn: 'error' as const, only: [], skip: [], renewMarginSeconds: 3600}

  test('--local keeps the keyspace findings next to the node findings (D-3: they were overwritten)', async () => {
    const plain = await runDoctor(keyspaces(), o)
    const ids = plain.findings.map((f) => f.id)
    assert.ok(ids.includes('config-only-in-v2'), ids.join(','))
    const local = await runDoctor(keyspaces(), {...o, local: {subnetFile: node.subnetFile}}, async () => node)
    const localIds = local.findings.map((f) => f.id)
    for (const id of ids) assert.ok(localIds.includes(id), `${id} kept under --local: ${localIds.join(',')}`)
    assert.ok(localIds.includes('subnet-env-missing'), localIds.join(','))
    assert.ok(localIds.includes('ip-forward-off'), localIds.join(','))
    assert.equal(local.checked.node, '192.0.2.1 (--public-ip)')
    assert.deepEqual(local.checked.keyspaces, ['v3', 'v2'])
    assert.equal(local.failed, true)
  })
})
