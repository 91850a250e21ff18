// flannel 0.11's etcd v2 keyspace through bin/run.js against real etcd 3.4 (--enable-v2): read identically through
// either API, doctor's keyspace checks, and `migrate v2-to-v3` (plan, prompt, copy, verify, idempotence, conflicts);
// plus the migrate service in process, to race it between plan and write.

import assert from 'node:assert/strict'
import {after, before, describe, test} from 'node:test'

import {migrateV2ToV3, type MigrateResult} from '../../src/services/migrate.js'
import {EtcdStore} from '../../src/store/etcd-store.js'
import {EtcdV2Store} from '../../src/store/etcd-v2.js'
import {type CliResult, currentRevision, getKey, json, putKey, putSubnet, runCli, show} from '../helpers/cli.js'
import {type EtcdServer, startEtcd} from '../helpers/etcd.js'
import {etcdctlV2, flattenNodes, legacyVxlanValue, v2Get, type V2Node} from '../helpers/etcd-v2.js'

const P = '/coreos.com/network'
const CONFIG = '{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}'
/** As flannel 0.11 left them: 24 h TTLs, one lease past its renew margin (a dead node), one `--ttl 0` reservation. */
const LEASES = [
  {seg: '10.5.2.0-24', ip: '192.168.1.2', mac: 'c6:d2:32:6f:8f:02', ttl: 86_400},
  {seg: '10.5.12.0-24', ip: '192.168.1.12', mac: 'c6:d2:32:6f:8f:44', ttl: 86_400},
  {seg: '10.5.13.0-24', ip: '192.168.1.13', mac: 'c6:d2:32:6f:8f:13', ttl: 1_800},
  {seg: '10.5.20.0-24', ip: '192.168.1.20', mac: 'c6:d2:32:6f:8f:20', ttl: 0},
]
const KEYS = [...LEASES.map((l) => `${P}/subnets/${l.seg}`), `${P}/config`]
const KEYSPACE_CHECKS = ['config-only-in-v2', 'config-in-both', 'v2-store-going-away']

/** etcd with flannel 0.11's data in v2 only. */
let legacy: EtcdServer
/** etcd (no v2) with the same data in v3, as flanneld >= 0.18 writes it. */
let current: EtcdServer
/** etcd with v2 over TLS. */
let secure: EtcdServer

async function seedV2(etcd: EtcdServer, prefix = P): Promise<void> {
  await etcdctlV2(etcd, ['set', `${prefix}/config`, CONFIG])
  for (const l of LEASES)
    await etcdctlV2(etcd, ['set', '--ttl', String(l.ttl), `${prefix}/subnets/${l.seg}`, legacyVxlanValue(l.ip, l.mac)])
}

const ep = (e: EtcdServer) => ['--endpoints', e.endpoint]
const tlsFlags = (e: EtcdServer) => ['--cacert', e.tls!.ca, '--cert', e.tls!.cert, '--key', e.tls!.key]

/** Remaining TTL of a v3 lease given in decimal, from `etcdctl lease timetolive`. */
async function v3Ttl(etcd: EtcdServer, id: string): Promise<number> {
  const r = await etcd.etcdctl(['lease', 'timetolive', BigInt(id).toString(16)])
  const m = /remaining\((-?\d+)s\)/.exec(r.stdout)
  assert.ok(m, r.stdout + r.stderr)
  return Number(m[1])
}

/** v3 keys under a prefix (etcdctl v3, keys only). */
async function v3Keys(etcd: EtcdServer, prefix: string): Promise<string[]> {
  const r = await etcd.etcdctl(['get', '--prefix', prefix, '--keys-only'])
  return r.stdout.split('\n').filter((l) => l !== '')
}

interface LeaseJson {
  subnet: string
  ttlSeconds: number | null
  expiresAt: string | null
  [k: string]: unknown
}

/** leases ls --json without what differs between keyspaces by design (revisions, lease IDs), TTLs compared apart. */
function comparableLeases(r: CliResult): {
  rows: Array<Record<string, unknown>>
  ttls: Array<number | null>
  expires: Array<number | null>
} {
  const j = json<{leases: LeaseJson[]}>(r)
  const rows = j.leases.map(
    ({modRevision: _m, createRevision: _c, leaseId: _l, ttlSeconds: _t, expiresAt: _e, ...rest}) => rest,
  )
  return {
    rows,
    ttls: j.leases.map((l) => l.ttlSeconds),
    expires: j.leases.map((l) => (l.expiresAt === null ? null : Date.parse(l.expiresAt))),
  }
}

function assertSameLeases(a: CliResult, b: CliResult): void {
  const x = comparableLeases(a)
  const y = comparableLeases(b)
  assert.deepEqual(x.rows, y.rows)
  x.ttls.forEach((t, i) =>
    assert.ok(t === null ? y.ttls[i] === null : Math.abs(t - y.ttls[i]!) <= 5, `ttl ${t} vs ${y.ttls[i]}`),
  )
  x.expires.forEach((t, i) =>
    assert.ok(
      t === null ? y.expires[i] === null : Math.abs(t - y.expires[i]!) <= 5000,
      `expiresAt ${t} vs ${y.expires[i]}`,
    ),
  )
}

// (v2 counts in modifiedIndex and etcd index, v3 in revisions)
const noRevisions = (s: string) =>
  s.replace(/\(v2 keyspace, modifiedIndex \d+, read at etcd index \d+\)|revision \d+/g, (m) =>
    m.startsWith('(') ? '(mod revision N, read at revision N)' : 'revision N',
  )

before(async () => {
  ;[legacy, current, secure] = await Promise.all([
    startEtcd({enableV2: true}),
    startEtcd(),
    startEtcd({enableV2: true, tls: true}),
  ])
  await Promise.all([
    seedV2(legacy),
    seedV2(secure),
    (async () => {
      await putKey(current, `${P}/config`, CONFIG)
      for (const l of LEASES)
        await putSubnet(current, `${P}/subnets/${l.seg}`, legacyVxlanValue(l.ip, l.mac), {
          lease: l.ttl === 0 ? null : l.ttl,
        })
    })(),
  ])
})

after(async () => {
  await Promise.all([legacy, current, secure].map((e) => e?.stop()))
})

describe("reading flannel 0.11's v2 keyspace", () => {
  test('auto falls back to v2 with a note on stderr; --etcd-api v2 reads it too; --etcd-api v3 does not see it', async () => {
    const [auto, v2, v3show, v3ls] = await Promise.all([
      runCli(['leases', 'ls', '--json', ...ep(legacy)]),
      runCli(['leases', 'ls', '--json', '--etcd-api', 'v2', ...ep(legacy)]),
      runCli(['network', 'show', '--etcd-api', 'v3', ...ep(legacy)]),
      runCli(['leases', 'ls', '--json', '--etcd-api', 'v3', ...ep(legacy)]),
    ])
    assert.equal(auto.code, 0, show(auto))
    assert.match(
      auto.stderr,
      /no config at \/coreos\.com\/network\/config in etcd's v3 keyspace, but there is one in the v2 keyspace .*reading v2.*flannelctl migrate v2-to-v3/,
    )
    assert.equal(v2.code, 0, show(v2))
    assert.equal(v2.stderr, '')
    assertSameLeases(auto, v2)
    assert.deepEqual(
      json<{leases: LeaseJson[]}>(v2).leases.map((l) => [l.subnet, l.reserved, l.leaseId]),
      LEASES.map((l) => [l.seg.replace('-', '/'), l.ttl === 0, l.ttl === 0 ? '0' : `v2:${P}/subnets/${l.seg}`]),
    )
    assert.equal(v3show.code, 4, show(v3show))
    assert.equal(v3show.stderr.includes('note:'), false)
    assert.deepEqual(json(v3ls).leases, [])
  })

  test('leases ls, network show, subnet-env and doctor give the same results for the same data in v2 (auto) and in v3', async () => {
    const both = (args: string[]) => Promise.all([runCli([...args, ...ep(legacy)]), runCli([...args, ...ep(current)])])
    const [lsJson, lsTable, showJson, showText, envText, envJson, docJson] = await Promise.all([
      both(['leases', 'ls', '--json']),
      both(['leases', 'ls', '-o', 'wide', '--no-ttl']),
      both(['network', 'show', '--json']),
      both(['network', 'show']),
      both(['subnet-env', '--public-ip', '192.168.1.12']),
      both(['subnet-env', '--subnet', '10.5.20.0/24', '--ip-masq', '--json']),
      both(['doctor', '--json']),
    ])
    for (const [a, b] of [lsJson, lsTable, showJson, showText, envText, envJson]) {
      assert.equal(a.code, 0, show(a))
      assert.equal(b.code, 0, show(b))
    }
    assertSameLeases(lsJson[0], lsJson[1])
    // Wide tables show mod revisions: v2 indexes and v3 revisions are different counters, and the column says which.
    const noModRev = (s: string) => s.replace(/ +\d+$/gm, '').replace(/ MOD-(?:INDEX|REV)$/m, '')
    assert.equal(noModRev(lsTable[0].stdout), noModRev(lsTable[1].stdout))
    assert.deepEqual(
      lsTable.map((r) => r.stdout.split('\n')[0]!.split(' ').at(-1)),
      ['MOD-INDEX', 'MOD-REV'],
    )
    // (and the result names the keyspace it read)
    const dropRevs = ({revision: _r, modRevision: _m, keyspace: _k, ...rest}: Record<string, unknown>) => rest
    assert.deepEqual(dropRevs(json(showJson[0])), dropRevs(json(showJson[1])))
    assert.deepEqual(
      [json<{keyspace: string}>(showJson[0]).keyspace, json<{keyspace: string}>(showJson[1]).keyspace],
      ['v2', 'v3'],
    )
    assert.equal(noRevisions(showText[0].stdout), noRevisions(showText[1].stdout))
    assert.equal(envText[0].stdout, envText[1].stdout)
    assert.match(
      envText[0].stdout,
      /^FLANNEL_NETWORK=10\.5\.0\.0\/16\nFLANNEL_SUBNET=10\.5\.12\.1\/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n$/,
    )
    assert.deepEqual(json(envJson[0]), json(envJson[1]))
    // doctor: the same findings, apart from the keyspace checks only the v2 side has.
    type D = {
      findings: Array<{id: string; severity: string; subjects: string[]}>
      checked: {leases: number; ttls: boolean}
    }
    const [d2, d3] = docJson.map((r) => json<D>(r))
    const strip = (d: D) =>
      d.findings.filter((f) => !KEYSPACE_CHECKS.includes(f.id)).map((f) => [f.id, f.severity, f.subjects])
    // ... except what flanneld does with a reservation: ≤ v0.17 (v2) keeps it, ≥ v0.18 (v3) takes it back.
    assert.deepEqual(strip(d2!), [
      ['missed-renewal', 'warning', ['10.5.13.0/24']],
      ['reservation', 'info', ['10.5.20.0/24']],
    ])
    assert.deepEqual(strip(d3!), [
      ['missed-renewal', 'warning', ['10.5.13.0/24']],
      ['reservation', 'warning', ['10.5.20.0/24']],
    ])
    assert.deepEqual([d2!.checked.leases, d2!.checked.ttls], [d3!.checked.leases, d3!.checked.ttls])
  })

  test('doctor: config-only-in-v2 (error for flanneld >= 0.18, warning for 0.11), v2-store-going-away; --etcd-api v3 skips both', async () => {
    type D = {
      findings: Array<{id: string; severity: string; subjects: string[]; message: string; hint: string}>
      checked: {keyspaces: string[]}
    }
    const [now, old, v3only, badVersion] = await Promise.all([
      runCli(['doctor', '--json', ...ep(legacy)]),
      runCli(['doctor', '--json', '--flanneld-version', 'v0.11.0', ...ep(legacy)]),
      runCli(['doctor', '--json', '--etcd-api', 'v3', ...ep(legacy)]),
      runCli(['doctor', '--flanneld-version', 'latest', ...ep(legacy)]),
    ])
    assert.equal(now.code, 5, show(now))
    const d = json<D>(now)
    const only = d.findings.find((f) => f.id === 'config-only-in-v2')!
    assert.deepEqual([only.severity, only.subjects], ['error', [`${P}/config`]])
    assert.match(only.message, /flanneld >= 0\.18 reads only v3/)
    assert.match(only.hint, /flannelctl migrate v2-to-v3 --dry-run/)
    const away = d.findings.find((f) => f.id === 'v2-store-going-away')!
    assert.deepEqual([away.severity, away.subjects], ['info', [P]])
    assert.match(
      away.message,
      /etcd's v2 keyspace holds 5 key\(s\) under \/coreos\.com\/network: etcd 3\.6 removes the v2 store/,
    )
    assert.match(away.hint, /migrate v2-to-v3/)
    assert.deepEqual(d.checked.keyspaces, ['v2', 'v3'])
    assert.equal(
      d.findings.some((f) => f.id === 'config-in-both'),
      false,
    )

    assert.equal(old.code, 0, show(old))
    assert.equal(json<D>(old).findings.find((f) => f.id === 'config-only-in-v2')?.severity, 'warning')

    assert.equal(v3only.code, 5, show(v3only))
    const v3d = json<D>(v3only)
    assert.deepEqual(
      v3d.findings.map((f) => f.id),
      ['config-missing'],
    )
    assert.deepEqual(v3d.checked.keyspaces, ['v3'])

    assert.equal(badVersion.code, 2, show(badVersion))
    assert.match(badVersion.stderr, /invalid --flanneld-version "latest"/)
  })

  test('doctor: config-in-both when the keyspaces hold different configs', async () => {
    await etcdctlV2(legacy, ['set', '/both/config', '{"Network":"10.6.0.0/16","Backend":{"Type":"vxlan"}}'])
    await putKey(legacy, '/both/config', '{"Network":"10.7.0.0/16","Backend":{"Type":"vxlan"}}')
    const r = await runCli(['doctor', '--json', '--etcd-prefix', '/both', ...ep(legacy)])
    assert.equal(r.code, 0, show(r))
    const f = json<{findings: Array<{id: string; severity: string; subjects: string[]; message: string}>}>(r).findings
    assert.deepEqual(
      f.map((x) => [x.id, x.severity]),
      [
        ['config-in-both', 'warning'],
        ['v2-store-going-away', 'info'],
      ],
    )
    assert.match(
      f[0]!.message,
      /v3 \(read by flanneld >= 0\.18\) holds \{"Network":"10\.7\.0\.0\/16".*v2 \(read by flanneld <= 0\.17\) holds \{"Network":"10\.6\.0\.0\/16"/,
    )
  })

  test('etcd without --enable-v2: --etcd-api v2 and migrate say so (exit 69); auto reads v3 without a note', async () => {
    const [v2, migrate, auto] = await Promise.all([
      runCli(['leases', 'ls', '--etcd-api', 'v2', ...ep(current)]),
      runCli(['migrate', 'v2-to-v3', '--dry-run', '--json', ...ep(current)]),
      runCli(['doctor', '--json', ...ep(current)]),
    ])
    assert.equal(v2.code, 69, show(v2))
    assert.match(v2.stderr, /^Error: etcd at http:\/\/127\.0\.0\.1:\d+ does not serve the v2 API .*--enable-v2/m)
    assert.match(v2.stderr, /Hint: read the v3 keyspace instead: --etcd-api v3/)
    assert.equal(migrate.code, 69, show(migrate))
    assert.equal(json(migrate).error.code, 'ETCD_V2_DISABLED')
    assert.equal(auto.stderr, '')
    assert.deepEqual(json(auto).checked.keyspaces, ['v3'])
  })

  test('--snapshot cannot be read with --etcd-api v2 (exit 2)', async () => {
    const r = await runCli(['leases', 'ls', '--snapshot', 'examples/snapshot.json', '--etcd-api', 'v2'])
    assert.equal(r.code, 2, show(r))
    assert.match(r.stderr, /--snapshot is a dump of the v3 keyspace/)
  })
})

describe('migrate v2-to-v3', () => {
  let v2Before: Map<string, V2Node>

  test('--dry-run prints the plan (subnets in numeric order, the config last) and writes nothing', async () => {
    v2Before = flattenNodes((await v2Get(legacy, P)).body.node)
    const rev = await currentRevision(legacy)
    const [text, j] = await Promise.all([
      runCli(['migrate', 'v2-to-v3', '--dry-run', ...ep(legacy)]),
      runCli(['migrate', 'v2-to-v3', '--dry-run', '--json', ...ep(legacy)]),
    ])
    assert.equal(text.code, 0, show(text))
    assert.match(
      text.stdout,
      /^Plan: copy flannel's keys under \/coreos\.com\/network from etcd's v2 keyspace \(index \d+\) to v3 \(revision \d+\)$/m,
    )
    assert.match(
      text.stdout,
      /^create +\/coreos\.com\/network\/subnets\/10\.5\.2\.0-24 +2[34]h\d\dm \(new etcd lease\)$/m,
    )
    assert.match(
      text.stdout,
      /^create +\/coreos\.com\/network\/subnets\/10\.5\.13\.0-24 +(29m\d\ds|30m00s) \(new etcd lease\)$/m,
    )
    assert.match(text.stdout, /^create +\/coreos\.com\/network\/subnets\/10\.5\.20\.0-24 +reserved \(no lease\)$/m)
    assert.match(text.stdout, /^5 to create, 0 to skip, 0 conflict\(s\)$/m)
    assert.match(text.stdout, /dry run: nothing written\n$/)
    const r = json<MigrateResult>(j)
    assert.deepEqual([r.applied, r.dryRun, r.verified, r.created], [false, true, null, []])
    assert.deepEqual(
      r.plan.map((p) => [p.key, p.action]),
      KEYS.map((k) => [k, 'create']),
    )
    // TTLs are what is left of the v2 ones (not a fresh 24 h), values are the v2 bytes.
    r.plan.forEach((p) => {
      const n = v2Before.get(p.key)!
      if (n.ttl === undefined) assert.equal(p.ttlSeconds, null, p.key)
      else assert.ok(p.ttlSeconds! <= n.ttl && p.ttlSeconds! >= n.ttl - 5, `${p.key}: ${p.ttlSeconds} vs v2 ${n.ttl}`)
      assert.equal(p.value, n.value)
    })
    assert.ok(r.plan[2]!.ttlSeconds! <= 1800)
    assert.equal(
      r.deleteCommand,
      `ETCDCTL_API=2 etcdctl --endpoints ${legacy.endpoint} rm --recursive /coreos.com/network`,
    )
    assert.equal(await currentRevision(legacy), rev)
    assert.deepEqual(await v3Keys(legacy, P), [])
  })

  test('without --yes and without a terminal it refuses (exit 2), writing nothing', async () => {
    const rev = await currentRevision(legacy)
    const r = await runCli(['migrate', 'v2-to-v3', ...ep(legacy)])
    assert.equal(r.code, 2, show(r))
    assert.match(r.stdout, /^Plan: /)
    assert.match(r.stderr, /pass --yes to apply/)
    assert.equal(await currentRevision(legacy), rev)
  })

  test('--yes copies every key: values byte for byte, TTL keys on new leases with the remaining TTL, the reservation and config without; verified', async () => {
    const r = await runCli(['migrate', 'v2-to-v3', '--yes', '--json', ...ep(legacy)])
    assert.equal(r.code, 0, show(r))
    const res = json<MigrateResult>(r)
    assert.equal(res.applied, true)
    assert.equal(res.verified, true, JSON.stringify(res.differences))
    assert.deepEqual(
      res.created.map((c) => [c.key, c.leaseId !== null]),
      KEYS.map((k, i) => [k, (LEASES[i]?.ttl ?? 0) > 0]),
    )
    assert.deepEqual([res.skipped, res.conflicts, res.expired, res.differences], [[], [], [], []])

    const v2Now = flattenNodes((await v2Get(legacy, P)).body.node)
    for (const key of KEYS) {
      const kv = await getKey(legacy, key)
      const n = v2Now.get(key)!
      assert.ok(kv, `${key} missing in v3`)
      assert.equal(kv.value, n.value, `${key}: value byte for byte`)
      if (n.ttl === undefined) {
        assert.equal(kv.lease, '0', `${key}: no lease`)
      } else {
        assert.notEqual(kv.lease, '0', `${key}: leased`)
        const ttl = await v3Ttl(legacy, kv.lease)
        assert.ok(Math.abs(ttl - n.ttl) <= 5, `${key}: v3 ${ttl} s vs v2 ${n.ttl} s`)
      }
    }
    // v2 was not touched.
    for (const [key, n] of v2Before) {
      assert.equal(v2Now.get(key)?.value, n.value)
      assert.equal(v2Now.get(key)?.modifiedIndex, n.modifiedIndex)
    }
  })

  test("flannelctl's v3 read-back equals the v2 original; doctor now sees the config in v3 and says v2 can go", async () => {
    const [v2ls, v3ls, v2show, v3show, doc] = await Promise.all([
      runCli(['leases', 'ls', '--json', '--etcd-api', 'v2', ...ep(legacy)]),
      runCli(['leases', 'ls', '--json', '--etcd-api', 'v3', ...ep(legacy)]),
      runCli(['network', 'show', '--etcd-api', 'v2', ...ep(legacy)]),
      runCli(['network', 'show', ...ep(legacy)]),
      runCli(['doctor', '--json', ...ep(legacy)]),
    ])
    assertSameLeases(v2ls, v3ls)
    assert.equal(v3show.stderr, '', 'auto reads v3 now: no fallback note')
    assert.equal(noRevisions(v2show.stdout), noRevisions(v3show.stdout))
    const f = json<{findings: Array<{id: string; message: string; hint: string}>}>(doc).findings
    assert.equal(
      f.some((x) => x.id === 'config-only-in-v2' || x.id === 'config-in-both'),
      false,
    )
    const away = f.find((x) => x.id === 'v2-store-going-away')!
    assert.match(
      away.message,
      /v3 already holds the same config and every live lease .*: the migration is done, do not run it again/,
    )
    assert.match(
      away.hint,
      /ETCDCTL_API=2 etcdctl --endpoints http:\/\/127\.0\.0\.1:\d+ rm --recursive \/coreos\.com\/network$/,
    )
  })

  test('a second run writes nothing', async () => {
    const rev = await currentRevision(legacy)
    const [text, j] = await Promise.all([
      runCli(['migrate', 'v2-to-v3', '--yes', ...ep(legacy)]),
      runCli(['migrate', 'v2-to-v3', '--yes', '--json', ...ep(legacy)]),
    ])
    assert.equal(text.code, 0, show(text))
    assert.match(text.stdout, /^0 to create, 5 to skip, 0 conflict\(s\)$/m)
    assert.match(text.stdout, /created 0 key\(s\) in v3 .*skipped 5/)
    const res = json<MigrateResult>(j)
    assert.deepEqual([res.created, res.skipped, res.verified], [[], KEYS, true])
    assert.ok(res.plan.every((p) => p.action === 'skip'))
    assert.equal(await currentRevision(legacy), rev)
  })

  test('a v3 key with a different value stops the run before anything is written (exit 3); --force copies the rest and keeps it', async () => {
    const C = '/conflict'
    await seedV2(legacy, C)
    const clash = legacyVxlanValue('192.168.7.7', 'c6:d2:32:6f:8f:77')
    await putSubnet(legacy, `${C}/subnets/10.5.12.0-24`, clash)
    await putKey(legacy, `${C}/config`, CONFIG) // the same value: a skip
    const rev = await currentRevision(legacy)
    const args = ['migrate', 'v2-to-v3', '--etcd-prefix', C, ...ep(legacy)]
    const [text, j] = await Promise.all([runCli([...args, '--yes']), runCli([...args, '--yes', '--json'])])
    assert.equal(text.code, 3, show(text))
    assert.match(text.stdout, /^conflict +\/conflict\/subnets\/10\.5\.12\.0-24 .*v3 holds a different value$/m)
    assert.match(text.stdout, /^skip +\/conflict\/config .*same value already in v3$/m)
    assert.match(text.stdout, /^ {4}v3: \{"PublicIP":"192\.168\.7\.7"/m)
    assert.match(
      text.stderr,
      /^Error: 1 key\(s\) already exist in etcd's v3 keyspace with a different value: \/conflict\/subnets\/10\.5\.12\.0-24; nothing was written$/m,
    )
    assert.equal(j.code, 3, show(j))
    const err = json<{error: {code: string; exitCode: number; details: MigrateResult}}>(j).error
    assert.deepEqual([err.code, err.exitCode], ['MIGRATE_CONFLICT', 3])
    assert.deepEqual(
      err.details.conflicts.map((c) => [c.key, c.v3Value]),
      [[`${C}/subnets/10.5.12.0-24`, clash]],
    )
    assert.equal(await currentRevision(legacy), rev, 'nothing written')

    const forced = await runCli([...args, '--yes', '--force', '--json'])
    assert.equal(forced.code, 0, show(forced))
    const res = json<MigrateResult>(forced)
    assert.equal(res.verified, true, JSON.stringify(res.differences))
    assert.deepEqual(
      res.created.map((c) => c.key),
      [`${C}/subnets/10.5.2.0-24`, `${C}/subnets/10.5.13.0-24`, `${C}/subnets/10.5.20.0-24`],
    )
    assert.deepEqual(res.skipped, [`${C}/config`])
    assert.equal((await getKey(legacy, `${C}/subnets/10.5.12.0-24`))?.value, clash, 'the v3 value is kept')
  })

  test('over TLS, with the same --cacert/--cert/--key as v3', async () => {
    const r = await runCli(['migrate', 'v2-to-v3', '--yes', '--json', ...ep(secure), ...tlsFlags(secure)])
    assert.equal(r.code, 0, show(r))
    const res = json<MigrateResult>(r)
    assert.deepEqual([res.created.length, res.verified], [5, true])
    assert.match(
      res.deleteCommand,
      /^ETCDCTL_API=2 etcdctl --endpoints https:\/\/127\.0\.0\.1:\d+ --ca-file \S+ca\.crt --cert-file \S+client\.crt --key-file \S+client\.key rm --recursive \/coreos\.com\/network$/,
    )
  })

  test('nothing in v2 under the prefix: exit 4', async () => {
    const r = await runCli(['migrate', 'v2-to-v3', '--dry-run', '--etcd-prefix', '/nothing', ...ep(legacy)])
    assert.equal(r.code, 4, show(r))
    assert.match(r.stderr, /no flannel keys in etcd's v2 keyspace under \/nothing/)
  })
})

describe('migrate service in process: races between plan and write', () => {
  const stores: Array<{close(): void}> = []
  const open = async (prefix: string) => {
    const o = {endpoints: legacy.endpoints, prefix, dialTimeoutMs: 5000, commandTimeoutMs: 10_000}
    const [v3, v2] = await Promise.all([EtcdStore.open(o), EtcdV2Store.open(o)])
    stores.push(v3, v2)
    return {v3, v2}
  }
  after(() => {
    for (const s of stores) s.close()
  })

  test('a key created in v3 with another value after the plan is not overwritten: reported, verification fails', async () => {
    const R = '/race1'
    await seedV2(legacy, R)
    const {v3, v2} = await open(R)
    const other = legacyVxlanValue('192.168.8.8', 'c6:d2:32:6f:8f:88')
    const res = await migrateV2ToV3(
      v3,
      v2,
      {dryRun: false, force: false},
      {
        onPlan: () => {},
        confirm: async () => {
          // A flanneld >= 0.18 took 10.5.2.0/24 while the operator read the plan.
          await putSubnet(legacy, `${R}/subnets/10.5.2.0-24`, other)
          return true
        },
      },
    )
    assert.equal((await getKey(legacy, `${R}/subnets/10.5.2.0-24`))?.value, other, 'not overwritten')
    assert.deepEqual(
      res.conflicts.map((c) => [c.key, c.afterPlan, c.v3Value]),
      [[`${R}/subnets/10.5.2.0-24`, true, other]],
    )
    assert.equal(res.created.length, 4)
    assert.equal(res.verified, false)
    assert.deepEqual(
      res.differences.map((d) => d.key),
      [`${R}/subnets/10.5.2.0-24`],
    )
  })

  test('a v2 key that appears after the plan is reported as missing in v3; the next run copies it', async () => {
    const R = '/race2'
    await seedV2(legacy, R)
    const {v3, v2} = await open(R)
    const late = `${R}/subnets/10.5.30.0-24`
    const res = await migrateV2ToV3(
      v3,
      v2,
      {dryRun: false, force: false},
      {
        onPlan: () => {},
        confirm: async () => {
          await etcdctlV2(legacy, [
            'set',
            '--ttl',
            '86400',
            late,
            legacyVxlanValue('192.168.1.30', 'c6:d2:32:6f:8f:30'),
          ])
          return true
        },
      },
    )
    assert.equal(res.verified, false)
    assert.deepEqual(
      res.differences.map((d) => d.key),
      [late],
    )
    assert.match(res.differences[0]!.problem, /missing in v3/)
    const again = await migrateV2ToV3(
      v3,
      v2,
      {dryRun: false, force: false},
      {onPlan: () => {}, confirm: async () => true},
    )
    assert.deepEqual(
      again.created.map((c) => c.key),
      [late],
    )
    assert.equal(again.verified, true)
  })
})
