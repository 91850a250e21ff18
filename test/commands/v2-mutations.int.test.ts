// The mutations on etcd's v2 keyspace through the CLI, against a real etcd 3.4 with --enable-v2 holding flannel
// v0.11's data exactly as flanneld v0.11 and its operators write it (`ETCDCTL_API=2 etcdctl set` for the config,
// `mk --ttl 86400` per lease in flanneld <= 0.13's bytes, a TTL-less reservation): the same plans, refusals, dry runs,
// confirmations and JSON as on v3; --etcd-api auto writing only the keyspace flanneld reads and refusing when both
// hold a config; and the seed's own scenario (a /16 widened to a /8, then subnet-env and a reservation).

import assert from 'node:assert/strict'
import {after, before, beforeEach, describe, test} from 'node:test'

import {json, putKey, runCli, show} from '../helpers/cli.js'
import {type EtcdServer, startEtcd} from '../helpers/etcd.js'
import {etcdctlV2, flattenNodes, legacyVxlanValue, v2Get, type V2Node} from '../helpers/etcd-v2.js'

const P = '/coreos.com/network'
const CONFIG = '{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}'
const LEASES = [
  {seg: '10.5.2.0-24', ip: '192.168.1.2', mac: 'c6:d2:32:6f:8f:02', ttl: 86_400},
  {seg: '10.5.12.0-24', ip: '192.168.1.12', mac: 'c6:d2:32:6f:8f:44', ttl: 86_400},
  {seg: '10.5.13.0-24', ip: '192.168.1.13', mac: 'c6:d2:32:6f:8f:13', ttl: 1_800},
  {seg: '10.5.20.0-24', ip: '192.168.1.20', mac: 'c6:d2:32:6f:8f:20', ttl: 0},
]

let etcd: EtcdServer
let ep: string[]

/** flannel 0.11's keyspace: the operator's `etcdctl set` of the config, flanneld's createSubnet per lease. */
async function seedV2(prefix = P): Promise<void> {
  await etcdctlV2(etcd, ['set', `${prefix}/config`, CONFIG])
  for (const l of LEASES) {
    const key = `${prefix}/subnets/${l.seg}`
    const value = legacyVxlanValue(l.ip, l.mac)
    if (l.ttl === 0) await etcdctlV2(etcd, ['set', key, value])
    else await etcdctlV2(etcd, ['mk', '--ttl', String(l.ttl), key, value])
  }
}

/** Every v2 node under the prefix, by key. */
async function v2Nodes(prefix = P): Promise<Map<string, V2Node>> {
  const r = await v2Get(etcd, prefix)
  return r.status === 200 ? flattenNodes(r.body.node as V2Node) : new Map()
}

/** What a write would change (the remaining ttl counts down by itself): key, value, modifiedIndex, expiration. */
async function v2State(prefix = P): Promise<string[][]> {
  const nodes = [...(await v2Nodes(prefix)).values()].sort((a, b) => (a.key < b.key ? -1 : 1))
  return nodes.map((n) => [n.key, n.value ?? '', String(n.modifiedIndex), n.expiration ?? ''])
}

async function v3Count(prefix = P): Promise<number> {
  const r = await etcd.etcdctl(['get', prefix, '--prefix', '--keys-only'])
  assert.equal(r.code, 0, r.stderr)
  return r.stdout.split('\n').filter((l) => l !== '').length
}

before(async () => {
  etcd = await startEtcd({enableV2: true})
  ep = ['--endpoints', etcd.endpoint]
})

after(async () => {
  await etcd?.stop()
})

beforeEach(async () => {
  await etcdctlV2(etcd, ['rm', '--recursive', P]).catch(() => undefined)
  await etcd.etcdctl(['del', '--prefix', P])
  await seedV2()
})

describe('network expand on v2', () => {
  test('--dry-run plans against the v2 config and writes nothing; JSON has the v3 shape plus keyspace v2', async () => {
    const before = await v2State()
    const [text, j] = await Promise.all([
      runCli(['network', 'expand', '--to', '10.0.0.0/8', '--dry-run', '--etcd-api', 'v2', ...ep]),
      runCli(['network', 'expand', '--to', '10.0.0.0/8', '--dry-run', '--json', ...ep]),
    ])
    assert.equal(text.code, 0, show(text))
    assert.match(
      text.stdout,
      /Plan: widen 10\.5\.0\.0\/16 to 10\.0\.0\.0\/8 \(config \/coreos\.com\/network\/config in etcd's v2 keyspace, modifiedIndex \d+\)/,
    )
    assert.match(text.stdout, /Leases checked: 4, all stay compatible \(SubnetLen \/24 kept\)/)
    assert.match(text.stdout, /dry run: nothing written/)
    // flanneld <= 0.17 keeps its masquerade rules in POSTROUTING (FLANNEL-POSTRTG came with v0.20.0).
    assert.match(text.stdout, /its ip-masq rules \(in POSTROUTING\) treat 10\.0\.0\.0\/8 outside 10\.5\.0\.0\/16/)
    assert.equal(j.code, 0, show(j))
    assert.match(j.stderr, /note: writing etcd's v2 keyspace: the v2 keyspace holds the config/)
    const r = json<{keyspace: string; applied: boolean; next: {raw: string}; previous: {modRevision: string}}>(j)
    assert.deepEqual([r.keyspace, r.applied], ['v2', false])
    assert.equal(r.next.raw, '{"Network":"10.0.0.0/8","SubnetLen":24,"Backend":{"Type":"vxlan"}}')
    assert.equal(r.previous.modRevision, before.find(([k]) => k === `${P}/config`)![2])
    assert.deepEqual(await v2State(), before)
    assert.equal(await v3Count(), 0, 'nothing in v3')
  })

  test('without --yes and no terminal: exit 2, nothing written; --yes writes the v2 config guarded, SubnetLen explicit, no TTL', async () => {
    const before = await v2State()
    const refused = await runCli(['network', 'expand', '--to', '10.0.0.0/8', '--etcd-api', 'v2', ...ep])
    assert.equal(refused.code, 2, show(refused))
    assert.match(refused.stderr, /confirmation needed and stdin is not a terminal/)
    assert.deepEqual(await v2State(), before)
    const r = await runCli(['network', 'expand', '--to', '10.0.0.0/8', '--yes', '--etcd-api', 'v2', '--json', ...ep])
    assert.equal(r.code, 0, show(r))
    const res = json<{
      applied: boolean
      revision: string
      recover: string
      recoverCommand: {argv: string[]; env: Record<string, string>}
    }>(r)
    const cfg = (await v2Nodes()).get(`${P}/config`)!
    assert.equal(cfg.value, '{"Network":"10.0.0.0/8","SubnetLen":24,"Backend":{"Type":"vxlan"}}')
    assert.equal(cfg.ttl, undefined)
    assert.equal(String(cfg.modifiedIndex), res.revision)
    // Quoted, with the endpoints the user gave, also as argv.
    assert.equal(
      res.recover,
      `ETCDCTL_API=2 etcdctl --endpoints ${etcd.endpoint} set /coreos.com/network/config '${CONFIG}'`,
    )
    assert.deepEqual(res.recoverCommand.argv, [
      'etcdctl',
      '--endpoints',
      etcd.endpoint,
      'set',
      '/coreos.com/network/config',
      CONFIG,
    ])
    assert.deepEqual(res.recoverCommand.env, {ETCDCTL_API: '2'})
    // The leases are untouched.
    assert.deepEqual(
      (await v2State()).filter(([k]) => k !== `${P}/config`),
      before.filter(([k]) => k !== `${P}/config`),
    )
    assert.equal(await v3Count(), 0)
  })

  test('refusals are the v3 ones: a target that does not contain the Network is exit 2, nothing written', async () => {
    const before = await v2State()
    const r = await runCli(['network', 'expand', '--to', '10.6.0.0/16', '--yes', '--etcd-api', 'v2', ...ep])
    assert.equal(r.code, 2, show(r))
    assert.deepEqual(await v2State(), before)
  })
})

describe('leases reserve / unreserve / release on v2', () => {
  test("reserve removes the TTL, keeps the bytes (never the guide's key name in the value), and a renewal in between is exit 3", async () => {
    const key = `${P}/subnets/10.5.12.0-24`
    const before = (await v2Nodes()).get(key)!
    const dry = await runCli(['leases', 'reserve', '10.5.12.0/24', '--dry-run', '--etcd-api', 'v2', ...ep])
    assert.equal(dry.code, 0, show(dry))
    assert.match(dry.stdout, /dry run: would reserve \/coreos\.com\/network\/subnets\/10\.5\.12\.0-24 = .* with no TTL/)
    assert.deepEqual(
      [(await v2Nodes()).get(key)!.modifiedIndex, (await v2Nodes()).get(key)!.expiration],
      [before.modifiedIndex, before.expiration],
    )
    const r = await runCli(['leases', 'reserve', '10.5.12.0/24', '--yes', '--json', '--etcd-api', 'v2', ...ep])
    assert.equal(r.code, 0, show(r))
    const res = json<{action: string; keyspace: string; revision: string; note: string}>(r)
    assert.deepEqual([res.action, res.keyspace], ['reserved', 'v2'])
    assert.match(res.note, /flanneld ≤ v0\.17 \(etcd v2\) keeps a reservation/)
    const after = (await v2Nodes()).get(key)!
    assert.equal(after.value, before.value)
    assert.equal(after.ttl, undefined)
    assert.equal(after.expiration, undefined)
    assert.equal(String(after.modifiedIndex), res.revision)
    const ls = json<{leases: Array<{subnet: string; reserved: boolean}>}>(
      await runCli(['leases', 'ls', '--json', '--etcd-api', 'v2', ...ep]),
    )
    assert.equal(ls.leases.find((l) => l.subnet === '10.5.12.0/24')?.reserved, true)
    // For humans, v2 counts in modifiedIndex, not revisions.
    const wide = await runCli(['leases', 'ls', '-o', 'wide', '--etcd-api', 'v2', ...ep])
    assert.match(wide.stdout.split('\n')[0]!, / MOD-INDEX$/, show(wide))
    // Reserving a reservation changes nothing.
    const again = await runCli(['leases', 'reserve', '10.5.12.0/24', '--yes', '--etcd-api', 'v2', ...ep])
    assert.match(again.stdout, /is already reserved: nothing to do/)
    assert.equal((await v2Nodes()).get(key)!.modifiedIndex, after.modifiedIndex)
  })

  test('reserve by --public-ip, and a lease nobody holds is exit 4 (not "no lease" for a lease that exists in v2)', async () => {
    const r = await runCli(['leases', 'reserve', '--public-ip', '192.168.1.2', '--yes', '--etcd-api', 'v2', ...ep])
    assert.equal(r.code, 0, show(r))
    assert.equal((await v2Nodes()).get(`${P}/subnets/10.5.2.0-24`)!.ttl, undefined)
    const none = await runCli(['leases', 'reserve', '10.5.99.0/24', '--yes', '--etcd-api', 'v2', ...ep])
    assert.equal(none.code, 4, show(none))
  })

  test('a pre-reservation is created only if absent, with no TTL', async () => {
    const r = await runCli([
      'leases',
      'reserve',
      '10.5.200.0/24',
      '--public-ip',
      '192.168.1.99',
      '--yes',
      '--json',
      '--etcd-api',
      'v2',
      ...ep,
    ])
    assert.equal(r.code, 0, show(r))
    const n = (await v2Nodes()).get(`${P}/subnets/10.5.200.0-24`)!
    assert.equal(n.value, json<{value: string}>(r).value)
    assert.equal(n.ttl, undefined)
    const clash = await runCli([
      'leases',
      'reserve',
      '10.5.2.0/24',
      '--public-ip',
      '192.168.1.99',
      '--yes',
      '--etcd-api',
      'v2',
      ...ep,
    ])
    assert.equal(clash.code, 3, show(clash))
  })

  test('unreserve gives the reservation a TTL again, same bytes', async () => {
    const key = `${P}/subnets/10.5.20.0-24`
    const before = (await v2Nodes()).get(key)!
    assert.equal(before.ttl, undefined)
    const dry = await runCli([
      'leases',
      'unreserve',
      '10.5.20.0/24',
      '--ttl',
      '1h',
      '--dry-run',
      '--etcd-api',
      'v2',
      ...ep,
    ])
    assert.match(dry.stdout, /dry run: would give .* a TTL of 1h00m/)
    const r = await runCli([
      'leases',
      'unreserve',
      '10.5.20.0/24',
      '--ttl',
      '1h',
      '--yes',
      '--json',
      '--etcd-api',
      'v2',
      ...ep,
    ])
    assert.equal(r.code, 0, show(r))
    const after = (await v2Nodes()).get(key)!
    assert.equal(after.value, before.value)
    assert.ok(after.ttl! > 3590 && after.ttl! <= 3600)
    assert.equal(json<{leaseId: string}>(r).leaseId, `v2:${key}`)
  })

  test('release: reservations refused without --force (exit 2), --stale picks the short TTL, deletes are guarded', async () => {
    const refused = await runCli(['leases', 'release', '10.5.20.0/24', '--yes', '--etcd-api', 'v2', ...ep])
    assert.equal(refused.code, 2, show(refused))
    assert.ok((await v2Nodes()).has(`${P}/subnets/10.5.20.0-24`))
    const stale = await runCli([
      'leases',
      'release',
      '--stale',
      '--renew-margin',
      '1h',
      '--dry-run',
      '--json',
      '--etcd-api',
      'v2',
      ...ep,
    ])
    assert.equal(stale.code, 0, show(stale))
    assert.deepEqual(
      json<{selected: Array<{subnet: string}>}>(stale).selected.map((s) => s.subnet),
      ['10.5.13.0/24'],
    )
    const r = await runCli([
      'leases',
      'release',
      '10.5.13.0/24',
      '10.5.20.0/24',
      '--force',
      '--yes',
      '--json',
      '--etcd-api',
      'v2',
      ...ep,
    ])
    assert.equal(r.code, 0, show(r))
    const nodes = await v2Nodes()
    assert.deepEqual([nodes.has(`${P}/subnets/10.5.13.0-24`), nodes.has(`${P}/subnets/10.5.20.0-24`)], [false, false])
    assert.equal(nodes.size, 3)
  })
})

describe('--etcd-api auto writes only where flanneld reads', () => {
  test('only v2 holds a config: auto writes v2 with a note, and v3 stays empty', async () => {
    const r = await runCli(['leases', 'reserve', '10.5.12.0/24', '--yes', '--json', ...ep])
    assert.equal(r.code, 0, show(r))
    assert.equal(json<{keyspace: string}>(r).keyspace, 'v2')
    assert.match(r.stderr, /note: writing etcd's v2 keyspace/)
    assert.equal(await v3Count(), 0)
  })

  test('network init --dry-run under auto next to a v2 config: exit 3 naming the v2 config, no second config in v3', async () => {
    for (const args of [['--dry-run'], ['--yes']]) {
      const r = await runCli(['network', 'init', '--network', '10.7.0.0/16', ...args, ...ep])
      assert.equal(r.code, 3, show(r))
      assert.match(r.stderr, /a network config already exists at \/coreos\.com\/network\/config in etcd's v2 keyspace/)
      assert.match(r.stderr, /flannelctl network show --etcd-api v2/)
    }
    assert.equal(await v3Count(), 0)
  })

  test('both keyspaces hold a config: every mutation under auto refuses (exit 2) naming both, nothing written; --etcd-api picks one', async () => {
    await putKey(etcd, `${P}/config`, '{"Network":"10.6.0.0/16","Backend":{"Type":"vxlan"}}')
    const before = await v2State()
    const runs = await Promise.all([
      runCli(['network', 'expand', '--to', '10.0.0.0/8', '--yes', ...ep]),
      runCli(['network', 'init', '--network', '10.7.0.0/16', '--dry-run', ...ep]),
      runCli(['leases', 'reserve', '10.5.12.0/24', '--yes', ...ep]),
      runCli(['leases', 'unreserve', '10.5.20.0/24', '--yes', ...ep]),
      runCli(['leases', 'release', '10.5.13.0/24', '--yes', '--json', ...ep]),
    ])
    for (const r of runs) {
      assert.equal(r.code, 2, show(r))
      const text = r.stderr + r.stdout
      assert.match(
        text,
        /both of etcd's keyspaces hold a flannel config at \/coreos\.com\/network\/config: v3 \(read by flanneld >= 0\.18\) holds .*10\.6\.0\.0\/16.*, v2 \(read by flanneld <= 0\.17\) holds .*10\.5\.0\.0\/16/,
      )
      assert.match(text, /--etcd-api v3 \(flanneld >= 0\.18\) or --etcd-api v2/)
    }
    assert.equal(json<{error: {code: string}}>(runs[4]).error.code, 'KEYSPACE_AMBIGUOUS')
    assert.deepEqual(await v2State(), before)
    assert.equal(await v3Count(), 1)
    const v2 = await runCli(['leases', 'reserve', '10.5.12.0/24', '--yes', '--etcd-api', 'v2', ...ep])
    assert.equal(v2.code, 0, show(v2))
  })

  test('no config in v2: auto is v3 (unchanged behaviour); --etcd-api v3 never touches v2', async () => {
    await etcdctlV2(etcd, ['rm', '--recursive', P])
    const r = await runCli(['network', 'init', '--network', '10.8.0.0/16', '--yes', '--json', ...ep])
    assert.equal(r.code, 0, show(r))
    assert.equal(json<{keyspace: string}>(r).keyspace, 'v3')
    assert.equal((await v2Nodes()).size, 0)
  })
})

describe('the seed scenario on v2 (data as flanneld v0.11 writes it)', () => {
  test('a /16 with leases widened to a /8 keeping SubnetLen; subnet-env then shows the new Network; reserve keeps no TTL', async () => {
    const expand = await runCli(['network', 'expand', '--to', '10.0.0.0/8', '--yes', '--etcd-api', 'v2', ...ep])
    assert.equal(expand.code, 0, show(expand))
    const env = await runCli(['subnet-env', '--public-ip', '192.168.1.12', '--etcd-api', 'v2', ...ep])
    assert.equal(env.code, 0, show(env))
    assert.match(env.stdout, /^FLANNEL_NETWORK=10\.0\.0\.0\/8$/m)
    assert.match(env.stdout, /^FLANNEL_SUBNET=10\.5\.12\.1\/24$/m)
    const reserve = await runCli([
      'leases',
      'reserve',
      '--public-ip',
      '192.168.1.12',
      '--yes',
      '--etcd-api',
      'v2',
      ...ep,
    ])
    assert.equal(reserve.code, 0, show(reserve))
    const n = (await v2Nodes()).get(`${P}/subnets/10.5.12.0-24`)!
    assert.equal(n.value, legacyVxlanValue('192.168.1.12', 'c6:d2:32:6f:8f:44'))
    assert.deepEqual([n.ttl, n.expiration], [undefined, undefined])
    const show2 = await runCli(['network', 'show', '--etcd-api', 'v2', ...ep])
    assert.match(show2.stdout, /10\.0\.0\.0\/8/)
    // v2 has no revisions: the config's modifiedIndex and the store's etcd index, named so.
    const cfg = (await v2Nodes()).get(`${P}/config`)!
    assert.match(
      show2.stdout,
      new RegExp(
        `^Config: +${P}/config \\(v2 keyspace, modifiedIndex ${cfg.modifiedIndex}, read at etcd index \\d+\\)$`,
        'm',
      ),
    )
    assert.doesNotMatch(show2.stdout, /revision/)
    assert.equal(
      json<{keyspace: string}>(await runCli(['network', 'show', '--etcd-api', 'v2', '--json', ...ep])).keyspace,
      'v2',
    )
  })
})
