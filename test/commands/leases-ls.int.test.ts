// leases ls against a real etcd seeded as flanneld writes it, and against etcdctl snapshots, through bin/run.js.

import {after, before, describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {startEtcd, type EtcdServer} from '../helpers/etcd.js'
import {
  currentRevision,
  getKey,
  type Granted,
  hostGwValue,
  json,
  putKey,
  putSubnet,
  runCli,
  show,
  vxlanValue,
} from '../helpers/cli.js'

const P = '/coreos.com/network'
const S = `${P}/subnets`

let etcd: EtcdServer
let tmp: string
let ep: string[]
/** The lease granted for each leased key, by subnet key suffix. */
const granted = new Map<string, Granted>()
/** Wall clock when seeding finished (the leases were granted just before). */
let seededAt: number

/** Keys seeded, in the order flannelctl must list them (numeric, not lexicographic). */
const ORDER = [
  '10.5.2.0/24',
  '10.5.9.0/24',
  '10.5.10.0/24',
  '10.5.34.0/24',
  '10.5.40.0/24',
  '10.5.52.0/24',
  '10.5.97.0/24',
  '10.5.100.0/24',
]

const DUAL_VALUE =
  '{"PublicIP":"192.168.1.40","PublicIPv6":"fd00::40","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:40"},"BackendV6Data":{"VNI":1,"VtepMAC":"7a:11:02:33:44:55"}}'

/** Malformed keys flanneld skips ("Ignoring bad subnet node"), with the reason we expect. */
const MALFORMED: Array<[key: string, value: string, error: RegExp]> = [
  [`${S}/not-a-subnet`, vxlanValue('192.168.1.77', 'c6:d2:32:6f:8f:77'), /failed to parse subnet key/],
  [`${S}/10.5.11.0-24`, 'this is not json', /error decoding subnet lease JSON/],
  [`${S}/10.5.12.0-24`, '{"PublicIP":"fd00::12","PublicIPv6":null,"BackendType":"vxlan"}', /invalid IPv4 address/],
]

before(async () => {
  ;[etcd, tmp] = await Promise.all([startEtcd(), mkdtemp(path.join(os.tmpdir(), 'flannelctl-leases-'))])
  ep = ['--endpoints', etcd.endpoint]
  const leased = async (seg: string, value: string) => {
    const g = await putSubnet(etcd, `${S}/${seg}`, value)
    granted.set(seg, g!)
  }
  await Promise.all([
    putKey(etcd, `${P}/config`, '{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}'),
    leased('10.5.9.0-24', vxlanValue('192.168.1.9', 'c6:d2:32:6f:8f:09')),
    leased('10.5.10.0-24', vxlanValue('192.168.1.10', 'c6:d2:32:6f:8f:10')),
    leased('10.5.34.0-24', vxlanValue('192.168.1.12', 'c6:d2:32:6f:8f:44')),
    leased('10.5.40.0-24&fd00:5:40::-64', DUAL_VALUE),
    // Two Vagrant nodes that both registered VirtualBox's NAT address.
    leased('10.5.52.0-24', vxlanValue('10.0.2.15', 'aa:aa:aa:aa:aa:52')),
    leased('10.5.97.0-24', vxlanValue('10.0.2.15', 'aa:aa:aa:aa:aa:97')),
    // udp leases carry no BackendType.
    leased('10.5.100.0-24', '{"PublicIP":"192.168.1.100","PublicIPv6":null}'),
    // A reservation: put without a lease (TTL 0).
    putSubnet(etcd, `${S}/10.5.2.0-24`, hostGwValue('192.168.1.2'), {lease: null}),
    ...MALFORMED.map(([k, v]) => putKey(etcd, k, v)),
  ])
  seededAt = Date.now()
})

after(async () => {
  await etcd?.stop()
  if (tmp) await rm(tmp, {recursive: true, force: true})
})

/** Runs shared by several tests (the keyspace does not change after seeding), each started at most once. */
function once<T>(fn: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | undefined
  return () => (p ??= fn())
}
const liveTable = once(() => runCli(['leases', 'ls', ...ep]))
const liveJson = once(async () => {
  const t0 = Date.now()
  const r = await runCli(['leases', 'ls', ...ep, '--json'])
  return {r, t0, t1: Date.now()}
})

/** The table's rows (header first), split on runs of 2+ spaces. */
function table(stdout: string): string[][] {
  return stdout
    .trimEnd()
    .split('\n')
    .map((l) => l.split(/\s{2,}/))
}

describe('leases ls (live etcd)', {concurrency: true}, () => {
  test('table: one row per lease, sorted numerically, TTL "23h59m" for a fresh 24 h lease and "reserved" for a lease-less key', async () => {
    const r = await liveTable()
    assert.equal(r.code, 0, show(r))
    const [head, ...rows] = table(r.stdout)
    assert.deepEqual(head, ['SUBNET', 'PUBLIC-IP', 'BACKEND', 'VTEP-MAC', 'TTL', 'EXPIRES'])
    assert.deepEqual(
      rows.map((row) => row[0]),
      ORDER,
    )
    const byCidr = new Map(rows.map((row) => [row[0], row]))
    const leased = byCidr.get('10.5.34.0/24')!
    assert.deepEqual(leased.slice(0, 5), ['10.5.34.0/24', '192.168.1.12', 'vxlan', 'c6:d2:32:6f:8f:44', '23h59m'])
    assert.match(leased[5]!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/)
    assert.deepEqual(byCidr.get('10.5.2.0/24'), ['10.5.2.0/24', '192.168.1.2', 'host-gw', '-', 'reserved', '-'])
    assert.deepEqual(byCidr.get('10.5.100.0/24')!.slice(0, 5), ['10.5.100.0/24', '192.168.1.100', '-', '-', '23h59m'])
    for (const cidr of ORDER.filter((c) => c !== '10.5.2.0/24')) assert.equal(byCidr.get(cidr)![4], '23h59m', cidr)
  })

  test('--json: the documented fields, exact lease IDs, revisions, TTL and expiry', async () => {
    const [{r, t0, t1}, kv34, rev] = await Promise.all([
      liveJson(),
      getKey(etcd, `${S}/10.5.34.0-24`),
      currentRevision(etcd),
    ])
    assert.equal(r.code, 0, show(r))
    assert.equal(r.stderr, '', 'malformed keys are reported in JSON, not as a stderr warning')
    const j = json(r)
    assert.equal(j.revision, rev)
    assert.deepEqual(
      j.leases.map((l: {subnet: string}) => l.subnet),
      ORDER,
    )
    const l34 = j.leases.find((l: {subnet: string}) => l.subnet === '10.5.34.0/24')
    const {ttlSeconds, expiresAt} = l34
    const documented = [
      'subnet',
      'ipv6Subnet',
      'publicIP',
      'publicIPv6',
      'backendType',
      'backendData',
      'vni',
      'vtepMAC',
      'reserved',
      'key',
      'modRevision',
      'leaseId',
    ]
    assert.deepEqual(Object.fromEntries(documented.map((k) => [k, l34[k]])), {
      subnet: '10.5.34.0/24',
      ipv6Subnet: null,
      publicIP: '192.168.1.12',
      publicIPv6: null,
      backendType: 'vxlan',
      backendData: {VNI: 1, VtepMAC: 'c6:d2:32:6f:8f:44'},
      vni: 1,
      vtepMAC: 'c6:d2:32:6f:8f:44',
      reserved: false,
      key: `${S}/10.5.34.0-24`,
      modRevision: kv34!.modRevision,
      leaseId: granted.get('10.5.34.0-24')!.id,
    })
    assert.equal(kv34!.lease, granted.get('10.5.34.0-24')!.id, 'etcd stored the lease we granted')
    // Granted 86400 s moments ago.
    assert.equal(typeof ttlSeconds, 'number')
    assert.ok(
      ttlSeconds <= 86_400 && ttlSeconds >= 86_400 - Math.ceil((t1 - seededAt) / 1000) - 5,
      `ttlSeconds ${ttlSeconds}`,
    )
    assert.match(expiresAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/)
    const exp = Date.parse(expiresAt)
    assert.ok(
      exp >= t0 + ttlSeconds * 1000 - 2000 && exp <= t1 + ttlSeconds * 1000 + 1000,
      `expiresAt ${expiresAt} vs ttl ${ttlSeconds}`,
    )
    // Every leased key carries its own lease ID, in decimal, exactly (they exceed 2^53).
    for (const l of j.leases) {
      if (l.reserved) continue
      const seg = l.key.slice(S.length + 1)
      assert.equal(l.leaseId, granted.get(seg)!.id, l.key)
      assert.equal(typeof l.ttlSeconds, 'number', l.key)
    }
  })

  test('--json: a reservation has reserved true, null TTL and expiry, lease ID "0"', async () => {
    const {r} = await liveJson()
    assert.equal(r.code, 0, show(r))
    const l = json(r).leases.find((x: {subnet: string}) => x.subnet === '10.5.2.0/24')
    assert.equal(l.reserved, true)
    assert.equal(l.ttlSeconds, null)
    assert.equal(l.expiresAt, null)
    assert.equal(l.leaseId, '0')
    assert.equal(l.backendType, 'host-gw')
    assert.equal(l.backendData, null)
    assert.equal(l.vni, null)
    assert.equal(l.vtepMAC, null)
  })

  test('--json: dual-stack key and udp lease decode as flanneld reads them', async () => {
    const {r} = await liveJson()
    assert.equal(r.code, 0, show(r))
    const by = new Map(json(r).leases.map((l: {subnet: string}) => [l.subnet, l]))
    const dual = by.get('10.5.40.0/24') as Record<string, unknown>
    assert.equal(dual.ipv6Subnet, 'fd00:5:40::/64')
    assert.equal(dual.publicIPv6, 'fd00::40')
    assert.equal(dual.key, `${S}/10.5.40.0-24&fd00:5:40::-64`)
    const udp = by.get('10.5.100.0/24') as Record<string, unknown>
    assert.equal(udp.backendType, '')
    assert.equal(udp.backendData, null)
    assert.equal(udp.vni, null)
  })

  test('--no-ttl: no TTL lookups, so TTLs are unknown (reservations stay reserved)', async () => {
    const [t, j] = await Promise.all([
      runCli(['leases', 'ls', ...ep, '--no-ttl']),
      runCli(['leases', 'ls', ...ep, '--no-ttl', '--json']),
    ])
    assert.equal(t.code, 0, show(t))
    const rows = table(t.stdout).slice(1)
    assert.deepEqual(
      rows.map((row) => row[0]),
      ORDER,
    )
    for (const row of rows)
      assert.deepEqual(row.slice(4), row[0] === '10.5.2.0/24' ? ['reserved', '-'] : ['unknown', '-'], row[0])
    assert.equal(j.code, 0, show(j))
    for (const l of json(j).leases) {
      assert.equal(l.ttlSeconds, null, l.key)
      assert.equal(l.expiresAt, null, l.key)
      assert.equal(l.reserved, l.subnet === '10.5.2.0/24', l.key)
      assert.notEqual(l.leaseId, undefined)
    }
  })

  test('--public-ip and --subnet filter; invalid filter values → exit 2', async () => {
    const [ip, shared, sub, both, none, badIp, badSub] = await Promise.all([
      runCli(['leases', 'ls', ...ep, '--json', '--public-ip', '192.168.1.12']),
      runCli(['leases', 'ls', ...ep, '--json', '--public-ip', '10.0.2.15']),
      runCli(['leases', 'ls', ...ep, '--json', '--subnet', '10.5.8.0/21']),
      runCli(['leases', 'ls', ...ep, '--json', '--subnet', '10.5.0.0/16', '--public-ip', '10.0.2.15']),
      runCli(['leases', 'ls', ...ep, '--public-ip', '1.2.3.4']),
      runCli(['leases', 'ls', ...ep, '--public-ip', 'nope']),
      runCli(['leases', 'ls', ...ep, '--subnet', '10.5.0.0/33']),
    ])
    const subnets = (r: typeof ip) => {
      assert.equal(r.code, 0, show(r))
      return json(r).leases.map((l: {subnet: string}) => l.subnet)
    }
    assert.deepEqual(subnets(ip), ['10.5.34.0/24'])
    assert.deepEqual(subnets(shared), ['10.5.52.0/24', '10.5.97.0/24'])
    assert.deepEqual(subnets(sub), ['10.5.9.0/24', '10.5.10.0/24'])
    assert.deepEqual(subnets(both), ['10.5.52.0/24', '10.5.97.0/24'])
    assert.equal(none.code, 0, show(none))
    assert.doesNotMatch(none.stdout, /10\.5\./)
    assert.equal(badIp.code, 2, show(badIp))
    assert.match(badIp.stderr, /--public-ip "nope"/)
    assert.equal(badSub.code, 2, show(badSub))
    assert.match(badSub.stderr, /--subnet "10\.5\.0\.0\/33"/)
  })

  test('-o wide adds VNI, the IPv6 subnet and public IP, the key and its mod revision', async () => {
    const [r, kv] = await Promise.all([
      runCli(['leases', 'ls', ...ep, '-o', 'wide']),
      getKey(etcd, `${S}/10.5.40.0-24&fd00:5:40::-64`),
    ])
    assert.equal(r.code, 0, show(r))
    const [head, ...rows] = table(r.stdout)
    assert.deepEqual(head, [
      'SUBNET',
      'PUBLIC-IP',
      'BACKEND',
      'VTEP-MAC',
      'TTL',
      'EXPIRES',
      'VNI',
      'IPV6-SUBNET',
      'PUBLIC-IPV6',
      'KEY',
      'MOD-REV',
    ])
    const dual = rows.find((row) => row[0] === '10.5.40.0/24')!
    assert.deepEqual(dual.slice(6), [
      '1',
      'fd00:5:40::/64',
      'fd00::40',
      `${S}/10.5.40.0-24&fd00:5:40::-64`,
      kv!.modRevision,
    ])
    const reserved = rows.find((row) => row[0] === '10.5.2.0/24')!
    assert.deepEqual(reserved.slice(4, 9), ['reserved', '-', '-', '-', '-'])
  })

  test('malformed keys/values: a stderr warning in table mode, "malformed" in JSON, exit 0', async () => {
    const [t, {r: j}] = await Promise.all([liveTable(), liveJson()])
    assert.equal(t.code, 0, show(t))
    assert.match(t.stderr, /^warning: 3 key\(s\) under the subnets prefix are ignored by flanneld/)
    for (const [key, , error] of MALFORMED) {
      const line = t.stderr.split('\n').find((l) => l.includes(key))
      assert.ok(line, `${key} named on stderr:\n${t.stderr}`)
      assert.match(line, error)
      assert.ok(!t.stdout.includes(key), `${key} not in the table`)
    }
    assert.doesNotMatch(t.stdout, /10\.5\.1[12]\.0/)
    assert.doesNotMatch(t.stderr, /\n\s+at /, 'no stack trace')
    assert.equal(j.code, 0, show(j))
    const malformed = json(j).malformed as Array<{key: string; value: string; error: string}>
    assert.deepEqual(malformed.map((m) => m.key).sort(), MALFORMED.map(([k]) => k).sort())
    for (const [key, value, error] of MALFORMED) {
      const m = malformed.find((x) => x.key === key)!
      assert.equal(m.value, value)
      assert.match(m.error, error)
    }
  })

  test('an empty subnets prefix → a friendly line, exit 0', async () => {
    const r = await runCli(['leases', 'ls', ...ep, '--etcd-prefix', '/empty/network'])
    assert.equal(r.code, 0, show(r))
    assert.match(r.stdout, /^No leases under the subnets prefix/)
    const rj = await runCli(['leases', 'ls', ...ep, '--etcd-prefix', '/empty/network', '--json'])
    assert.deepEqual(json(rj).leases, [])
    assert.deepEqual(json(rj).malformed, [])
  })
})

describe('leases ls --snapshot', {concurrency: true}, () => {
  // Prove the snapshot path never dials etcd: every endpoint setting points at a closed port.
  const offline = {ETCDCTL_ENDPOINTS: 'http://127.0.0.1:1', FLANNELD_ETCD_ENDPOINTS: 'http://127.0.0.1:1'}

  test('the output of `etcdctl get --prefix /coreos.com/network -w json` lists the same leases (TTL unknown)', async () => {
    const dump = await etcd.etcdctl(['get', '--prefix', P, '-w', 'json'])
    assert.equal(dump.code, 0, dump.stderr)
    const file = path.join(tmp, 'snapshot.json')
    await writeFile(file, dump.stdout)
    const [{r: live}, snap, snapTable] = await Promise.all([
      liveJson(),
      runCli(['leases', 'ls', '--snapshot', file, '--json'], {env: offline}),
      runCli(['leases', 'ls', '--snapshot', file], {env: offline}),
    ])
    assert.equal(live.code, 0, show(live))
    assert.equal(snap.code, 0, show(snap))
    const L = json(live)
    const S2 = json(snap)
    assert.equal(S2.revision, /"revision":(\d+)/.exec(dump.stdout)![1])
    const strip = (l: Record<string, unknown>) => ({...l, ttlSeconds: null, expiresAt: null})
    assert.deepEqual(S2.leases, L.leases.map(strip))
    for (const l of S2.leases) {
      assert.equal(l.ttlSeconds, null)
      assert.equal(l.expiresAt, null)
    }
    assert.deepEqual(S2.malformed, L.malformed)
    assert.equal(snapTable.code, 0, show(snapTable))
    const rows = table(snapTable.stdout).slice(1)
    assert.deepEqual(
      rows.map((row) => row[0]),
      ORDER,
    )
    for (const row of rows) assert.equal(row[4], row[0] === '10.5.2.0/24' ? 'reserved' : 'unknown', row[0])
  })

  test('the bundled examples/snapshot.json works (a nearly full /16, two nodes sharing 10.0.2.15, one reservation)', async () => {
    const [all, shared, showNet] = await Promise.all([
      runCli(['leases', 'ls', '--snapshot', 'examples/snapshot.json', '--json'], {env: offline}),
      runCli(['leases', 'ls', '--snapshot', 'examples/snapshot.json', '--public-ip', '10.0.2.15'], {env: offline}),
      runCli(['network', 'show', '--snapshot', 'examples/snapshot.json', '--json'], {env: offline}),
    ])
    assert.equal(all.code, 0, show(all))
    const j = json(all)
    assert.equal(j.revision, '1245')
    assert.equal(j.leases.length, 243)
    assert.deepEqual(j.malformed, [])
    assert.equal(j.leases[0].subnet, '10.5.1.0/24')
    assert.equal(j.leases[9].subnet, '10.5.10.0/24')
    assert.equal(j.leases.filter((l: {reserved: boolean}) => l.reserved).length, 1)
    assert.ok(j.leases.every((l: {ttlSeconds: unknown}) => l.ttlSeconds === null))
    // Lease IDs above 2^53 survive exactly.
    assert.equal(j.leases[0].leaseId, '7587869207405510097')
    assert.equal(shared.code, 0, show(shared))
    assert.deepEqual(
      table(shared.stdout)
        .slice(1)
        .map((row) => [row[0], row[1]]),
      [
        ['10.5.52.0/24', '10.0.2.15'],
        ['10.5.97.0/24', '10.0.2.15'],
      ],
    )
    assert.equal(showNet.code, 0, show(showNet))
    assert.deepEqual(json(showNet).capacity, {total: 255, used: 243, free: 12, utilization: 0.9529})
  })

  test('a missing or non-etcdctl snapshot → exit 2 naming the file', async () => {
    const bad = path.join(tmp, 'not-a-snapshot.json')
    await writeFile(bad, 'hello')
    const missing = path.join(tmp, 'missing.json')
    const [a, b] = await Promise.all([
      runCli(['leases', 'ls', '--snapshot', missing], {env: offline}),
      runCli(['leases', 'ls', '--snapshot', bad], {env: offline}),
    ])
    assert.equal(a.code, 2, show(a))
    assert.match(a.stderr, new RegExp(`${missing}.*ENOENT`))
    assert.equal(b.code, 2, show(b))
    assert.ok(b.stderr.includes(bad), b.stderr)
  })
})
