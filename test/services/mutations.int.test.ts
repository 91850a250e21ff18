// The mutation services against a real etcd, in process, so a test can act between plan and apply (the
// confirmation hook runs there) and prove the guards: races lose with exit 3 and nothing is lost.

import assert from 'node:assert/strict'
import {after, before, beforeEach, describe, test} from 'node:test'

import {ConflictError} from '../../src/core/errors.js'
import {resolveNetworkConfig} from '../../src/core/config.js'
import {decodeLeases, isLeaseCompatible} from '../../src/core/leases.js'
import {expandNetwork} from '../../src/services/expand.js'
import {releaseLeases, reserveLease} from '../../src/services/lease-mutations.js'
import {EtcdStore} from '../../src/store/etcd-store.js'
import {getKey, putKey, putSubnet, vxlanValue} from '../helpers/cli.js'
import {type EtcdServer, startEtcd} from '../helpers/etcd.js'

let etcd: EtcdServer
const stores: EtcdStore[] = []
const P = '/coreos.com/network'

async function open(): Promise<EtcdStore> {
  const s = await EtcdStore.open({endpoints: etcd.endpoints, prefix: P, dialTimeoutMs: 5000, commandTimeoutMs: 10_000})
  stores.push(s)
  return s
}

/** A promise and the function that resolves it. */
function gate(): {wait: Promise<void>; open: () => void} {
  let open!: () => void
  const wait = new Promise<void>((r) => (open = r))
  return {wait, open}
}

const quiet = () => {}

before(async () => {
  etcd = await startEtcd()
})

after(async () => {
  for (const s of stores) s.close()
  await etcd?.stop()
})

beforeEach(async () => {
  await etcd.etcdctl(['del', '--prefix', P])
})

describe('network expand against etcd', () => {
  test("two expands racing on one config: exactly one applies, the other gets exit 3; the stored config is the winner's", async () => {
    await putKey(etcd, `${P}/config`, '{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}')
    await putSubnet(etcd, `${P}/subnets/10.5.1.0-24`, vxlanValue('192.168.1.1', '02:00:00:00:00:01'))
    const [a, b] = [await open(), await open()]
    const bothPlanned = gate()
    let planned = 0
    const confirm = async () => {
      if (++planned === 2) bothPlanned.open()
      await bothPlanned.wait
      return true
    }
    const results = await Promise.allSettled([
      expandNetwork(a, {to: '10.4.0.0/15', serviceCidrs: [], dryRun: false}, {onPlan: quiet, confirm}),
      expandNetwork(b, {to: '10.0.0.0/12', serviceCidrs: [], dryRun: false}, {onPlan: quiet, confirm}),
    ])
    const won = results.filter((r) => r.status === 'fulfilled')
    const lost = results.filter((r) => r.status === 'rejected')
    assert.equal(won.length, 1)
    assert.equal(lost.length, 1)
    const err = (lost[0] as PromiseRejectedResult).reason
    assert.ok(err instanceof ConflictError, String(err))
    assert.equal(err.exitCode, 3)
    const winner = (won[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof expandNetwork>>>).value
    assert.equal(winner.applied, true)
    const stored = await getKey(etcd, `${P}/config`)
    assert.equal(stored!.value, winner.next.raw)
    assert.ok(resolveNetworkConfig(stored!.value).ok)
  })

  test('a lease created between plan and apply is not lost and stays compatible', async () => {
    await putKey(etcd, `${P}/config`, '{"Network":"10.0.0.0/23","Backend":{"Type":"vxlan"}}')
    await putSubnet(etcd, `${P}/subnets/10.0.0.128-25`, vxlanValue('192.168.1.1', '02:00:00:00:00:01'))
    const s = await open()
    const r = await expandNetwork(
      s,
      {to: '10.0.0.0/22', serviceCidrs: [], dryRun: false},
      {
        onPlan: quiet,
        confirm: async () => {
          await putSubnet(etcd, `${P}/subnets/10.0.1.0-25`, vxlanValue('192.168.1.2', '02:00:00:00:00:02'))
          return true
        },
      },
    )
    assert.equal(r.applied, true)
    assert.equal(r.next.raw, '{"Network":"10.0.0.0/22","SubnetLen":25,"Backend":{"Type":"vxlan"}}')
    const snap = await s.readNetwork()
    const resolved = resolveNetworkConfig(snap.config!.value)
    assert.ok(resolved.ok)
    const leases = decodeLeases(snap.subnets).leases
    assert.deepEqual(
      leases.map((l) => l.key.split('/').pop()),
      ['10.0.0.128-25', '10.0.1.0-25'],
    )
    for (const l of leases) assert.ok(isLeaseCompatible(resolved.value.config, resolved.value.effective, l), l.key)
  })

  test('a dry run writes nothing', async () => {
    await putKey(etcd, `${P}/config`, '{"Network":"11.0.0.0/16","Backend":{"Type":"vxlan"}}')
    const before = await getKey(etcd, `${P}/config`)
    const r = await expandNetwork(
      await open(),
      {to: '11.0.0.0/8', serviceCidrs: [], dryRun: true},
      {onPlan: quiet, confirm: async () => assert.fail('no prompt on a dry run')},
    )
    assert.equal(r.applied, false)
    assert.deepEqual([r.capacity.before.total, r.capacity.after.total], [255, 65535])
    assert.deepEqual(await getKey(etcd, `${P}/config`), before)
  })
})

describe('leases reserve against etcd', () => {
  test('reserve racing with a renewal that re-puts the key with a new lease: exit 3, the renewal is not lost', async () => {
    await putKey(etcd, `${P}/config`, '{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}')
    const key = `${P}/subnets/10.5.34.0-24`
    await putSubnet(etcd, key, vxlanValue('192.168.1.12', 'c6:d2:32:6f:8f:44'))
    const renewed = vxlanValue('192.168.1.12', 'c6:d2:32:6f:8f:45')
    let renewal: {id: string} | null = null
    await assert.rejects(
      reserveLease(await open(), {subnet: '10.5.34.0/24', dryRun: false}, async () => {
        renewal = await putSubnet(etcd, key, renewed) // flanneld's renewal: new grant + plain put
        return true
      }),
      (e: unknown) => e instanceof ConflictError && e.exitCode === 3 && /changed since it was read/.test(e.message),
    )
    const now = await getKey(etcd, key)
    assert.equal(now!.value, renewed)
    assert.equal(now!.lease, renewal!.id)
  })

  test('reserving an existing lease keeps its bytes and drops the etcd lease', async () => {
    await putKey(etcd, `${P}/config`, '{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}')
    const key = `${P}/subnets/10.5.35.0-24`
    const value = vxlanValue('192.168.1.13', 'c6:d2:32:6f:8f:46')
    await putSubnet(etcd, key, value)
    const r = await reserveLease(await open(), {publicIP: '192.168.1.13', dryRun: false}, async () => true)
    assert.equal(r.action, 'reserved')
    const now = await getKey(etcd, key)
    assert.equal(now!.value, value)
    assert.equal(now!.lease, '0')
    const again = await reserveLease(await open(), {subnet: '10.5.35.0/24', dryRun: false}, async () =>
      assert.fail('nothing to confirm'),
    )
    assert.equal(again.action, 'unchanged')
  })

  test("a pre-reservation is written in flanneld's exact bytes, only if the key is absent", async () => {
    await putKey(etcd, `${P}/config`, '{"Network":"10.5.0.0/16","Backend":{"Type":"host-gw"}}')
    const s = await open()
    const r = await reserveLease(
      s,
      {subnet: '10.5.200.0/24', publicIP: '192.168.1.99', dryRun: false},
      async () => true,
    )
    assert.equal(r.action, 'created')
    const kv = await getKey(etcd, `${P}/subnets/10.5.200.0-24`)
    assert.equal(kv!.value, '{"PublicIP":"192.168.1.99","PublicIPv6":null,"BackendType":"host-gw"}')
    assert.equal(kv!.lease, '0')
    await assert.rejects(
      reserveLease(s, {subnet: '10.5.200.0/24', publicIP: '192.168.1.98', dryRun: false}, async () => true),
      (e: unknown) => e instanceof ConflictError,
    )
    await assert.rejects(
      reserveLease(s, {subnet: '10.5.0.0/24', publicIP: '192.168.1.97', dryRun: false}, async () => true),
      /outside \[SubnetMin 10\.5\.1\.0/,
    )
    await assert.rejects(
      reserveLease(s, {subnet: '10.5.201.0/25', publicIP: '192.168.1.97', dryRun: false}, async () => true),
      /not of SubnetLen \/24/,
    )
  })
})

describe('leases release against etcd', () => {
  test('keys that changed after listing are not deleted and are reported; the rest are deleted', async () => {
    await putKey(etcd, `${P}/config`, '{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}')
    for (const n of [1, 2, 3])
      await putSubnet(etcd, `${P}/subnets/10.5.${n}.0-24`, vxlanValue(`192.168.1.${n}`, `02:00:00:00:00:0${n}`))
    const err = await releaseLeases(
      await open(),
      {
        subnets: ['10.5.1.0/24', '10.5.2.0/24', '10.5.3.0/24'],
        stale: false,
        renewMarginSeconds: 3600,
        force: false,
        dryRun: false,
      },
      {
        onPlan: quiet,
        confirm: async () => {
          await putSubnet(etcd, `${P}/subnets/10.5.2.0-24`, vxlanValue('192.168.1.2', '02:00:00:00:00:22'))
          return true
        },
      },
    ).catch((e: unknown) => e)
    assert.ok(err instanceof ConflictError, String(err))
    const d = err.details as {deleted: string[]; lost: Array<{key: string}>}
    assert.deepEqual(d.deleted.sort(), [`${P}/subnets/10.5.1.0-24`, `${P}/subnets/10.5.3.0-24`])
    assert.deepEqual(
      d.lost.map((x) => x.key),
      [`${P}/subnets/10.5.2.0-24`],
    )
    assert.equal(
      (await getKey(etcd, `${P}/subnets/10.5.2.0-24`))!.value,
      vxlanValue('192.168.1.2', '02:00:00:00:00:22'),
    )
    assert.equal(await getKey(etcd, `${P}/subnets/10.5.1.0-24`), null)
  })

  test('--stale selects leases below the renew margin and never reservations', async () => {
    await putKey(etcd, `${P}/config`, '{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}')
    await putSubnet(etcd, `${P}/subnets/10.5.1.0-24`, vxlanValue('192.168.1.1', '02:00:00:00:00:01'), {lease: 600})
    await putSubnet(etcd, `${P}/subnets/10.5.2.0-24`, vxlanValue('192.168.1.2', '02:00:00:00:00:02'))
    await putSubnet(etcd, `${P}/subnets/10.5.3.0-24`, vxlanValue('192.168.1.3', '02:00:00:00:00:03'), {lease: null})
    const r = await releaseLeases(
      await open(),
      {subnets: [], stale: true, renewMarginSeconds: 3600, force: false, dryRun: false},
      {onPlan: quiet, confirm: async () => true},
    )
    assert.deepEqual(r.deleted, [`${P}/subnets/10.5.1.0-24`])
    assert.ok(await getKey(etcd, `${P}/subnets/10.5.3.0-24`))
  })

  test('more keys than one transaction may hold are all deleted', async () => {
    await putKey(etcd, `${P}/config`, '{"Network":"10.0.0.0/8","Backend":{"Type":"vxlan"}}')
    const subnets = Array.from({length: 300}, (_, i) => `10.${1 + Math.floor(i / 256)}.${i % 256}.0/24`)
    // seed through the client: one etcdctl per key would take seconds
    const s = await open()
    await Promise.all(
      subnets.map((sn, i) =>
        s.createIfAbsent(
          `${P}/subnets/${sn.replace('/', '-')}`,
          vxlanValue(`192.168.${Math.floor(i / 200) + 3}.${(i % 200) + 1}`, '02:00:00:00:00:01'),
        ),
      ),
    )
    const r = await releaseLeases(
      s,
      {subnets, stale: false, renewMarginSeconds: 3600, force: true, dryRun: false},
      {onPlan: quiet, confirm: async () => true},
    )
    assert.equal(r.deleted.length, 300)
    assert.equal((await s.readNetwork()).subnets.length, 0)
  })
})
