// flannelctl doctor against a real etcd, through bin/run.js: exit codes, JSON contract, and the same findings
// from a live cluster and from an `etcdctl get -w json` snapshot of it.

import assert from 'node:assert/strict'
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, test} from 'node:test'

import {json, putKey, putSubnet, runCli, show, vxlanValue} from '../helpers/cli.js'
import {type EtcdServer, startEtcd} from '../helpers/etcd.js'

let etcd: EtcdServer
let tmp: string
const ep = () => ['--endpoints', etcd.endpoint]

interface DoctorJson {
  revision: string
  findings: Array<{id: string; severity: string; subjects: string[]; message: string; hint: string}>
  summary: {error: number; warning: number; info: number}
  checked: {leases: number}
}

before(async () => {
  ;[etcd, tmp] = await Promise.all([startEtcd(), mkdtemp(path.join(os.tmpdir(), 'flannelctl-doctor-'))])
  // A healthy cluster under /healthy.
  await putKey(etcd, '/healthy/config', '{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}')
  for (const n of [1, 2, 3])
    await putSubnet(etcd, `/healthy/subnets/10.5.${n}.0-24`, vxlanValue(`192.168.1.${n}`, `02:00:00:00:00:0${n}`))
  // A broken one under /coreos.com/network: the Vagrant duplicate, a dying lease, a reservation, junk.
  const p = '/coreos.com/network'
  await putKey(etcd, `${p}/config`, '{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}')
  await putSubnet(etcd, `${p}/subnets/10.5.3.0-24`, vxlanValue('10.0.2.15', '02:00:00:00:00:03'))
  await putSubnet(etcd, `${p}/subnets/10.5.9.0-24`, vxlanValue('10.0.2.15', '02:00:00:00:00:09'))
  await putSubnet(etcd, `${p}/subnets/10.5.10.0-24`, vxlanValue('192.168.1.10', '02:00:00:00:00:10'), {lease: 120})
  await putSubnet(etcd, `${p}/subnets/10.5.11.0-24`, vxlanValue('192.168.1.11', '02:00:00:00:00:11'), {lease: null})
  await putKey(etcd, `${p}/subnets/10.5.12.0-24`, '{"PublicIP":"not-an-ip"}')
})

after(async () => {
  await etcd?.stop()
  if (tmp) await rm(tmp, {recursive: true, force: true})
})

describe('doctor', () => {
  test('a healthy cluster: every area ok, zero findings, exit 0', async () => {
    const r = await runCli(['doctor', ...ep(), '--etcd-prefix', '/healthy'])
    assert.equal(r.code, 0, show(r))
    assert.match(r.stdout, /^Datastore\s+ok$/m)
    assert.match(r.stdout, /^Identity\s+ok$/m)
    assert.match(r.stdout, /0 error\(s\), 0 warning\(s\), 0 info; checked 3 lease\(s\)/)
    const j = json<DoctorJson>(await runCli(['doctor', ...ep(), '--etcd-prefix', '/healthy', '--json']))
    assert.deepEqual(j.findings, [])
    assert.deepEqual(j.summary, {error: 0, warning: 0, info: 0})
  })

  test('a broken cluster: each problem found with its subjects, exit 5', async () => {
    const r = await runCli(['doctor', ...ep(), '--json'])
    assert.equal(r.code, 5, show(r))
    const j = json<DoctorJson>(r)
    const by = (id: string) => j.findings.filter((f) => f.id === id).map((f) => f.subjects)
    assert.deepEqual(by('duplicate-public-ip'), [['10.5.3.0/24', '10.5.9.0/24']])
    assert.deepEqual(by('suspicious-public-ip'), [['10.5.3.0/24'], ['10.5.9.0/24']])
    assert.deepEqual(by('missed-renewal'), [['10.5.10.0/24']])
    assert.deepEqual(by('reservation'), [['10.5.11.0/24']])
    assert.deepEqual(by('malformed-lease'), [['/coreos.com/network/subnets/10.5.12.0-24']])
    assert.equal(j.checked.leases, 4)
    assert.ok(j.findings.every((f) => f.hint.length > 0 && f.message.length > 0))
    assert.deepEqual(j.summary, {error: 4, warning: 2, info: 0})
  })

  test('--fail-on, --only and --skip', async () => {
    const warnOnly = await runCli(['doctor', ...ep(), '--only', 'missed-renewal,reservation'])
    assert.equal(warnOnly.code, 0, show(warnOnly))
    assert.equal((await runCli(['doctor', ...ep(), '--only', 'missed-renewal', '--fail-on', 'warning'])).code, 5)
    const skipped = json<DoctorJson>(
      await runCli(['doctor', ...ep(), '--skip', 'duplicate-public-ip,suspicious-public-ip,malformed-lease', '--json']),
    )
    assert.deepEqual(skipped.findings.map((f) => f.id).sort(), ['missed-renewal', 'reservation'])
  })

  test('a snapshot gives the same findings as the live run, apart from TTL-based ones', async () => {
    const dump = await etcd.etcdctl(['get', '--prefix', '/coreos.com/network', '-w', 'json'])
    const file = path.join(tmp, 'snap.json')
    await writeFile(file, dump.stdout)
    const live = json<DoctorJson>(await runCli(['doctor', ...ep(), '--json']))
    const snap = json<DoctorJson>(await runCli(['doctor', '--snapshot', file, '--json']))
    const strip = (j: DoctorJson) => j.findings.filter((f) => f.id !== 'missed-renewal').map((f) => [f.id, f.subjects])
    assert.deepEqual(strip(snap), strip(live))
    assert.equal(snap.revision, live.revision)
  })

  test('etcd unreachable: exit 69', async () => {
    const r = await runCli(['doctor', '--endpoints', 'http://127.0.0.1:1', '--dial-timeout', '1s'])
    assert.equal(r.code, 69, show(r))
    assert.match(r.stderr, /etcd unreachable at http:\/\/127\.0\.0\.1:1/)
  })

  test('no config: config-missing, exit 5', async () => {
    const j = json<DoctorJson>(await runCli(['doctor', ...ep(), '--etcd-prefix', '/empty', '--json']))
    assert.deepEqual(
      j.findings.map((f) => f.id),
      ['config-missing'],
    )
  })
})
