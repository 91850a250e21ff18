// The mutation services on etcd's v2 keyspace, in process, so a writer can act between plan and apply (in the
// confirmation hook) as a flanneld v0.11 renewal or another operator would: every guard holds, the loser gets exit 3,
// and nothing else is written.

import assert from 'node:assert/strict'
import {after, before, beforeEach, describe, test} from 'node:test'

import {ConflictError} from '../../src/core/errors.js'
import {expandNetwork} from '../../src/services/expand.js'
import {releaseLeases, reserveLease, unreserveLease} from '../../src/services/lease-mutations.js'
import {initNetwork} from '../../src/services/network.js'
import {EtcdV2Store} from '../../src/store/etcd-v2.js'
import {type EtcdServer, startEtcd} from '../helpers/etcd.js'
import {etcdctlV2, flattenNodes, legacyVxlanValue, v2Get, type V2Node} from '../helpers/etcd-v2.js'

let etcd: EtcdServer
const stores: EtcdV2Store[] = []
const P = '/coreos.com/network'
const CONFIG = '{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}'
const quiet = () => {}

async function open(): Promise<EtcdV2Store> {
  const s = await EtcdV2Store.open({
    endpoints: etcd.endpoints,
    prefix: P,
    dialTimeoutMs: 5000,
    commandTimeoutMs: 10_000,
  })
  stores.push(s)
  return s
}

async function nodes(): Promise<Map<string, V2Node>> {
  const r = await v2Get(etcd, P)
  return r.status === 200 ? flattenNodes(r.body.node as V2Node) : new Map()
}

const lost = (e: unknown) => e instanceof ConflictError && e.exitCode === 3

before(async () => {
  etcd = await startEtcd({enableV2: true})
})

after(async () => {
  for (const s of stores) s.close()
  await etcd?.stop()
})

beforeEach(async () => {
  await etcdctlV2(etcd, ['rm', '--recursive', P]).catch(() => undefined)
  await etcdctlV2(etcd, ['set', `${P}/config`, CONFIG])
  for (const n of [1, 2, 3])
    await etcdctlV2(etcd, [
      'mk',
      '--ttl',
      '86400',
      `${P}/subnets/10.5.${n}.0-24`,
      legacyVxlanValue(`192.168.1.${n}`, `c6:d2:32:6f:8f:0${n}`),
    ])
})

describe('v2 guards raced', () => {
  test("expand: the config rewritten between plan and apply (an operator's etcdctl set) → exit 3, theirs kept", async () => {
    const s = await open()
    const theirs = '{"Network":"10.4.0.0/15","Backend":{"Type":"vxlan"}}'
    const confirm = async () => {
      await etcdctlV2(etcd, ['set', `${P}/config`, theirs])
      return true
    }
    await assert.rejects(
      expandNetwork(s, {to: '10.0.0.0/8', serviceCidrs: [], dryRun: false}, {onPlan: quiet, confirm}),
      (e: unknown) => lost(e) && /changed since it was read at modifiedIndex/.test((e as Error).message),
    )
    assert.equal((await nodes()).get(`${P}/config`)!.value, theirs)
  })

  test("reserve: flanneld v0.11's renewal (set with a fresh 24 h TTL) between plan and apply → exit 3, the renewal stands", async () => {
    const s = await open()
    const key = `${P}/subnets/10.5.2.0-24`
    const value = legacyVxlanValue('192.168.1.2', 'c6:d2:32:6f:8f:02')
    const confirm = async () => {
      await etcdctlV2(etcd, ['set', '--ttl', '86400', key, value])
      return true
    }
    await assert.rejects(reserveLease(s, {subnet: '10.5.2.0/24', dryRun: false}, confirm), lost)
    const n = (await nodes()).get(key)!
    assert.ok(n.ttl! > 86_000, 'still a TTL key: not turned into a reservation behind the renewal')
  })

  test('reserve: the key deleted between plan and apply → exit 3, not re-created', async () => {
    const s = await open()
    const key = `${P}/subnets/10.5.3.0-24`
    const confirm = async () => {
      await etcdctlV2(etcd, ['rm', key])
      return true
    }
    await assert.rejects(reserveLease(s, {subnet: '10.5.3.0/24', dryRun: false}, confirm), lost)
    assert.equal((await nodes()).has(key), false)
  })

  test('unreserve: the reservation rewritten meanwhile → exit 3, no TTL added', async () => {
    const s = await open()
    const key = `${P}/subnets/10.5.9.0-24`
    await etcdctlV2(etcd, ['set', key, legacyVxlanValue('192.168.1.9', 'c6:d2:32:6f:8f:09')])
    const confirm = async () => {
      await etcdctlV2(etcd, ['set', key, legacyVxlanValue('192.168.1.9', 'c6:d2:32:6f:8f:99')])
      return true
    }
    await assert.rejects(unreserveLease(s, '10.5.9.0/24', 3600, false, Date.now(), confirm), lost)
    assert.equal((await nodes()).get(key)!.ttl, undefined)
  })

  test('release: a key renewed and one deleted after listing are reported and kept, the rest deleted', async () => {
    const s = await open()
    const confirm = async () => {
      await etcdctlV2(etcd, [
        'set',
        '--ttl',
        '86400',
        `${P}/subnets/10.5.1.0-24`,
        legacyVxlanValue('192.168.1.1', 'c6:d2:32:6f:8f:01'),
      ])
      await etcdctlV2(etcd, ['rm', `${P}/subnets/10.5.2.0-24`])
      return true
    }
    const err = await releaseLeases(
      s,
      {
        subnets: ['10.5.1.0/24', '10.5.2.0/24', '10.5.3.0/24'],
        stale: false,
        renewMarginSeconds: 3600,
        force: false,
        dryRun: false,
      },
      {onPlan: quiet, confirm},
    ).then(
      () => assert.fail('expected exit 3'),
      (e: unknown) => e,
    )
    assert.ok(lost(err), String(err))
    assert.match(
      (err as Error).message,
      /2 key\(s\) changed since they were listed and were not deleted: .*10\.5\.1\.0-24 \(now modifiedIndex \d+\).*10\.5\.2\.0-24 \(now gone\); 1 deleted/,
    )
    const n = await nodes()
    assert.deepEqual(
      [n.has(`${P}/subnets/10.5.1.0-24`), n.has(`${P}/subnets/10.5.2.0-24`), n.has(`${P}/subnets/10.5.3.0-24`)],
      [true, false, false],
    )
  })

  test("init: a config created (an operator's etcdctl set) between the check and the create → exit 3 naming the v2 keyspace, theirs kept", async () => {
    const s = await open()
    await etcdctlV2(etcd, ['rm', `${P}/config`])
    const confirm = async () => {
      await etcdctlV2(etcd, ['set', `${P}/config`, CONFIG])
      return true
    }
    await assert.rejects(
      initNetwork(s, {network: '10.9.0.0/16', backend: 'vxlan'}, {dryRun: false, confirm}),
      (e: unknown) =>
        lost(e) && /already exists at \/coreos\.com\/network\/config in etcd's v2 keyspace/.test((e as Error).message),
    )
    assert.equal((await nodes()).get(`${P}/config`)!.value, CONFIG)
  })

  test('reserve refuses a lease whose TTL ran out (the expiry window), and writes nothing', async () => {
    const s = await open()
    const key = `${P}/subnets/10.5.50.0-24`
    await etcdctlV2(etcd, ['mk', '--ttl', '1', key, legacyVxlanValue('192.168.1.50', 'c6:d2:32:6f:8f:50')])
    // Poll (bounded) until etcd answers with the dying form: expiration without ttl.
    const deadline = Date.now() + 4000
    let seen = false
    while (Date.now() < deadline && !seen) {
      const n = (await nodes()).get(key)
      if (!n) break
      if (n.ttl === undefined && n.expiration) {
        seen = true
        await assert.rejects(
          reserveLease(s, {subnet: '10.5.50.0/24', dryRun: false}, async () => true),
          (e: unknown) =>
            (e as {code?: string}).code === 'LEASE_EXPIRED' || (e as {code?: string}).code === 'LEASE_NOT_FOUND',
        )
      }
      await new Promise((r) => setTimeout(r, 20))
    }
    // Whether or not the window was caught, the key never became a reservation.
    await new Promise((r) => setTimeout(r, 1200))
    assert.equal((await nodes()).has(key), false)
  })
})
