import {after, describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {existsSync, readFileSync} from 'node:fs'
import {Etcd3, EtcdPermissionDeniedError} from 'etcd3'
import {startEtcd, startEtcdCluster, waitForLeader, type EtcdServer} from './etcd.js'

/** True while a process with this pid exists. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

describe('startEtcd (plain)', () => {
  let etcd: EtcdServer
  after(() => etcd?.stop())

  test('starts quickly and serves put/get through etcdctl', async (t) => {
    const t0 = performance.now()
    etcd = await startEtcd()
    const ms = performance.now() - t0
    t.diagnostic(`single member healthy in ${ms.toFixed(0)} ms`)
    assert.match(etcd.endpoint, /^http:\/\/127\.0\.0\.1:\d+$/)
    assert.deepEqual(etcd.endpoints, [etcd.endpoint])
    assert.ok(alive(etcd.pid))

    assert.equal((await etcd.etcdctl(['put', '/k', 'v1'])).code, 0)
    const got = await etcd.etcdctl(['get', '/k', '--print-value-only'])
    assert.equal(got.code, 0, got.stderr)
    assert.equal(got.stdout.trim(), 'v1')
  })

  test('put reads its value from stdin input', async () => {
    assert.equal((await etcd.etcdctl(['put', '/stdin'], 'from-stdin')).code, 0)
    assert.equal((await etcd.etcdctl(['get', '/stdin', '--print-value-only'])).stdout.trim(), 'from-stdin')
  })

  test('kill() keeps the data, restart() comes back on the same endpoint', async () => {
    const {endpoint, pid} = etcd
    await etcd.kill()
    assert.equal(alive(pid), false)
    assert.ok(existsSync(etcd.dataDir))
    await etcd.restart()
    assert.equal(etcd.endpoint, endpoint)
    assert.notEqual(etcd.pid, pid)
    assert.equal((await etcd.etcdctl(['get', '/k', '--print-value-only'])).stdout.trim(), 'v1')
  })

  test('stop() leaves no process and removes the data dir', async () => {
    const {pid, dataDir} = etcd
    await etcd.stop()
    assert.throws(() => process.kill(pid, 0))
    assert.equal(existsSync(dataDir), false)
    await etcd.stop() // idempotent
  })
})

describe('startEtcd({enableV2})', () => {
  let etcd: EtcdServer
  after(() => etcd?.stop())

  test('serves the v2 keys API', async () => {
    etcd = await startEtcd({enableV2: true})
    const res = await fetch(`${etcd.endpoint}/v2/keys/?recursive=true`)
    assert.equal(res.status, 200)
    assert.equal(((await res.json()) as {action: string}).action, 'get')
  })
})

describe('startEtcd({tls})', () => {
  let etcd: EtcdServer
  let client: Etcd3 | undefined
  after(async () => {
    client?.close()
    await etcd?.stop()
  })

  test('etcd3 client with client cert can put/get; etcdctl works', async (t) => {
    const t0 = performance.now()
    etcd = await startEtcd({tls: true})
    t.diagnostic(`TLS member (incl. cert generation) healthy in ${(performance.now() - t0).toFixed(0)} ms`)
    assert.match(etcd.endpoint, /^https:\/\//)
    const tls = etcd.tls!
    for (const f of [tls.ca, tls.cert, tls.key, tls.wrongCa]) assert.ok(existsSync(f), f)

    client = new Etcd3({
      hosts: [`https://localhost:${etcd.clientPort}`],
      credentials: {
        rootCertificate: readFileSync(tls.ca),
        certChain: readFileSync(tls.cert),
        privateKey: readFileSync(tls.key),
      },
    })
    await client.put('/tls/k').value('secure')
    assert.equal(await client.get('/tls/k').string(), 'secure')

    const got = await etcd.etcdctl(['get', '/tls/k', '--print-value-only'])
    assert.equal(got.stdout.trim(), 'secure', got.stderr)
  })

  test('plain http is refused', async () => {
    await assert.rejects(fetch(`http://127.0.0.1:${etcd.clientPort}/health`))
  })
})

describe('startEtcd({auth})', () => {
  let etcd: EtcdServer
  let client: Etcd3 | undefined
  after(async () => {
    client?.close()
    await etcd?.stop()
  })

  test('flannel user can use /coreos.com/network/ only', async (t) => {
    const t0 = performance.now()
    etcd = await startEtcd({auth: true})
    t.diagnostic(`auth member (incl. user/role setup) healthy in ${(performance.now() - t0).toFixed(0)} ms`)
    assert.deepEqual(etcd.auth, {user: 'flannel', password: 'flpw', rootUser: 'root', rootPassword: 'rootpw'})
    client = new Etcd3({hosts: etcd.endpoints, auth: {username: 'flannel', password: 'flpw'}})

    await client.put('/coreos.com/network/config').value('{"Network":"10.5.0.0/16"}')
    assert.equal(await client.get('/coreos.com/network/config').string(), '{"Network":"10.5.0.0/16"}')
    await assert.rejects(client.put('/elsewhere').value('x').exec(), EtcdPermissionDeniedError)
    await assert.rejects(client.get('/elsewhere').string(), EtcdPermissionDeniedError)
  })

  test('harness etcdctl runs as root; anonymous clients are rejected', async () => {
    const put = await etcd.etcdctl(['put', '/elsewhere', 'root-was-here'])
    assert.equal(put.code, 0, put.stderr)
    const anonymous = new Etcd3({hosts: etcd.endpoints})
    try {
      await assert.rejects(anonymous.get('/elsewhere').string())
    } finally {
      anonymous.close()
    }
  })
})

describe('startEtcdCluster', () => {
  let cluster: Awaited<ReturnType<typeof startEtcdCluster>> | undefined
  let client: Etcd3 | undefined
  after(async () => {
    client?.close()
    await cluster?.stop()
  })

  test('survives losing its leader', async (t) => {
    const t0 = performance.now()
    cluster = await startEtcdCluster()
    t.diagnostic(`3-member cluster healthy in ${(performance.now() - t0).toFixed(0)} ms`)
    assert.equal(cluster.members.length, 3)
    assert.equal(new Set(cluster.endpoints).size, 3)

    client = new Etcd3({hosts: cluster.endpoints})
    await client.put('/cluster/k').value('replicated')

    const leader = await waitForLeader(cluster.members, 10_000)

    const t1 = performance.now()
    await leader.kill()
    assert.equal(alive(leader.pid), false)
    // The two left elect a new leader within a few election timeouts (etcd's defaults: 1 s each). A read made before
    // that fails on the dead member (refused) and on the others ("etcdserver: leader changed", etcd 3.4's answer to a
    // read waiting when the new leader takes over), and etcd3 makes its attempts back to back: the test waits for the
    // election, bounded, then reads. (flannelctl's own reads ride out an election: test/store/v3-lean.int.test.ts.)
    const survivors = cluster.members.filter((m) => m !== leader)
    const newLeader = await waitForLeader(survivors, 20_000)
    t.diagnostic(`new leader after ${(performance.now() - t1).toFixed(0)} ms`)
    assert.notEqual(newLeader, leader)
    assert.equal(await client.get('/cluster/k').string(), 'replicated')
  })

  test('stop() leaves no process and removes every data dir', async () => {
    const members = cluster!.members.map((m) => ({pid: m.pid, dataDir: m.dataDir}))
    await cluster!.stop()
    for (const {pid, dataDir} of members) {
      assert.throws(() => process.kill(pid, 0))
      assert.equal(existsSync(dataDir), false)
    }
  })
})
