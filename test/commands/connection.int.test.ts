// Connecting to etcd: endpoint and credential fallbacks, unreachable clusters, a 3-member cluster with a member down,
// TLS with client certificates and user/password auth, and the --json error envelope. All through bin/run.js.

import {after, before, describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {chmod, mkdtemp, rm, writeFile} from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'

import {startEtcd, startEtcdCluster, type EtcdCluster, type EtcdServer} from '../helpers/etcd.js'
import {type CliResult, json, putKey, putSubnet, runCli, show, vxlanValue} from '../helpers/cli.js'

const CONFIG = '{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}'
const LEASE_KEY = '/coreos.com/network/subnets/10.5.34.0-24'

let plain: EtcdServer
let tls: EtcdServer
let auth: EtcdServer
let cluster: EtcdCluster
let tmp: string
/** A loopback TCP server that accepts connections and never answers (a hung or firewalled etcd). */
let blackhole: net.Server
let blackholeUrl: string
const held = new Set<net.Socket>()

/** Closed loopback ports: connecting is refused at once. */
const REFUSED = ['http://127.0.0.1:1', 'http://127.0.0.1:2', 'http://127.0.0.1:3'] as const

async function seed(etcd: {etcdctl: EtcdServer['etcdctl']}, ip: string): Promise<void> {
  await Promise.all([
    putKey(etcd, '/coreos.com/network/config', CONFIG),
    putSubnet(etcd, LEASE_KEY, vxlanValue(ip, 'c6:d2:32:6f:8f:44')),
  ])
}

before(async () => {
  blackhole = net.createServer((s) => {
    held.add(s)
    s.on('close', () => held.delete(s))
    s.on('error', () => {})
  })
  await new Promise<void>((resolve) => blackhole.listen(0, '127.0.0.1', resolve))
  blackholeUrl = `http://127.0.0.1:${(blackhole.address() as net.AddressInfo).port}`
  // Start everything at once; whatever started is stopped in after() even if another start failed.
  const started = await Promise.allSettled([
    startEtcd(),
    startEtcd({tls: true}),
    startEtcd({auth: true}),
    startEtcdCluster(3),
    mkdtemp(path.join(os.tmpdir(), 'flannelctl-conn-')),
  ])
  ;[plain, tls, auth, cluster, tmp] = started.map((s) => (s.status === 'fulfilled' ? s.value : undefined)) as [
    EtcdServer,
    EtcdServer,
    EtcdServer,
    EtcdCluster,
    string,
  ]
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected')
  if (failed) throw failed.reason
  // Each etcd gets a different PublicIP so a test can tell which cluster answered.
  await Promise.all([
    seed(plain, '192.168.1.1'),
    seed(tls, '192.168.1.2'),
    seed(auth, '192.168.1.3'),
    seed(cluster.members[0]!, '192.168.1.4'),
  ])
})

after(async () => {
  for (const s of held) s.destroy()
  await new Promise((resolve) => blackhole?.close(resolve))
  await Promise.allSettled([plain?.stop(), tls?.stop(), auth?.stop(), cluster?.stop()])
  if (tmp) await rm(tmp, {recursive: true, force: true})
})

/** The PublicIP of the only lease listed, i.e. which etcd answered. */
function answeredBy(r: CliResult): string {
  assert.equal(r.code, 0, show(r))
  const leases = json(r).leases as Array<{publicIP: string}>
  assert.equal(leases.length, 1, show(r))
  return leases[0]!.publicIP
}

function assertNoStack(r: CliResult): void {
  assert.doesNotMatch(r.stderr + r.stdout, /\n\s+at \S/, `no stack trace:\n${show(r)}`)
}

const ls = (args: string[], env?: Record<string, string>) => runCli(['leases', 'ls', '--json', ...args], {env})

describe('endpoint resolution', {concurrency: true}, () => {
  test('ETCDCTL_ENDPOINTS, FLANNELD_ETCD_ENDPOINTS and FLANNELCTL_ENDPOINTS are each used when alone', async () => {
    const results = await Promise.all([
      ls([], {ETCDCTL_ENDPOINTS: plain.endpoint}),
      ls([], {FLANNELD_ETCD_ENDPOINTS: plain.endpoint}),
      ls([], {FLANNELCTL_ENDPOINTS: plain.endpoint}),
      // etcdctl-style host:port without a scheme; empty variables are skipped in favour of the next one.
      ls([], {
        FLANNELCTL_ENDPOINTS: '',
        ETCDCTL_ENDPOINTS: '',
        FLANNELD_ETCD_ENDPOINTS: plain.endpoint.replace('http://', ''),
      }),
    ])
    for (const r of results) assert.equal(answeredBy(r), '192.168.1.1')
  })

  test('precedence: flag > FLANNELCTL_ > ETCDCTL_ > FLANNELD_ETCD_ (the winner is used even when it is unreachable)', async () => {
    const [bad1, bad2, bad3] = REFUSED
    const good = plain.endpoint
    // Each level set to an unreachable endpoint while every lower level is good: the exit 69 naming it proves it won.
    const [flagWins, flagBad, flctlBad, etcdctlBad] = await Promise.all([
      ls(['--endpoints', good], {FLANNELCTL_ENDPOINTS: bad1, ETCDCTL_ENDPOINTS: bad2, FLANNELD_ETCD_ENDPOINTS: bad3}),
      ls(['--endpoints', bad1], {FLANNELCTL_ENDPOINTS: good, ETCDCTL_ENDPOINTS: good, FLANNELD_ETCD_ENDPOINTS: good}),
      ls([], {FLANNELCTL_ENDPOINTS: bad2, ETCDCTL_ENDPOINTS: good, FLANNELD_ETCD_ENDPOINTS: good}),
      ls([], {ETCDCTL_ENDPOINTS: bad3, FLANNELD_ETCD_ENDPOINTS: good}),
    ])
    assert.equal(answeredBy(flagWins), '192.168.1.1')
    for (const [r, bad] of [
      [flagBad, bad1],
      [flctlBad, bad2],
      [etcdctlBad, bad3],
    ] as const) {
      assert.equal(r.code, 69, show(r))
      assert.equal(json(r).error.code, 'ETCD_UNAVAILABLE')
      assert.ok(json(r).error.message.includes(bad), `names ${bad}:\n${show(r)}`)
    }
  })

  test('with no setting at all, the default is http://127.0.0.1:2379', async (t) => {
    const inUse = await new Promise<boolean>((resolve) => {
      const s = net.connect(2379, '127.0.0.1', () => (s.destroy(), resolve(true)))
      s.on('error', () => resolve(false))
    })
    if (inUse) return t.skip('something listens on 127.0.0.1:2379 on this machine')
    const r = await runCli(['leases', 'ls'])
    assert.equal(r.code, 69, show(r))
    assert.match(r.stderr, /^Error: etcd unreachable at http:\/\/127\.0\.0\.1:2379\b/)
  })
})

describe('unreachable etcd (timed, one run at a time)', () => {
  test('refused endpoints → exit 69 at once, naming every endpoint tried, no stack trace', async () => {
    const r = await runCli(['leases', 'ls', '--endpoints', `${REFUSED[0]},${REFUSED[1]}`, '--dial-timeout', '2s'])
    assert.equal(r.code, 69, show(r))
    assert.equal(r.stdout, '')
    assert.match(r.stderr, /^Error: etcd unreachable at http:\/\/127\.0\.0\.1:1,http:\/\/127\.0\.0\.1:2\b/)
    assertNoStack(r)
    assert.ok(r.ms < 2000 + 2000, `took ${Math.round(r.ms)} ms`)
  })

  test('an endpoint that accepts TCP but never answers → exit 69 within dial-timeout + 2 s (flag and ETCDCTL_DIAL_TIMEOUT)', async (t) => {
    // One at a time: the bound is on the CLI, so the test must not compete with itself for the CPU.
    const flag = await runCli(['leases', 'ls', '--endpoints', blackholeUrl, '--dial-timeout', '1s'])
    const env = await runCli(['network', 'show', '--json'], {
      env: {ETCDCTL_ENDPOINTS: blackholeUrl, ETCDCTL_DIAL_TIMEOUT: '1500ms'},
    })
    const both = await runCli([
      'subnet-env',
      '--public-ip',
      '192.168.1.1',
      '--endpoints',
      `${REFUSED[0]},${blackholeUrl}`,
      '--dial-timeout',
      '2s',
    ])
    t.diagnostic(
      `exit after ${Math.round(flag.ms)} / ${Math.round(env.ms)} / ${Math.round(both.ms)} ms (dial timeouts 1000 / 1500 / 2000 ms)`,
    )
    assert.equal(flag.code, 69, show(flag))
    assert.match(flag.stderr, new RegExp(`^Error: etcd unreachable at ${blackholeUrl}\\b`))
    assertNoStack(flag)
    assert.ok(flag.ms < 1000 + 2000, `--dial-timeout 1s took ${Math.round(flag.ms)} ms`)

    assert.equal(env.code, 69, show(env))
    assert.equal(json(env).error.exitCode, 69)
    assert.ok(json(env).error.message.includes(blackholeUrl), show(env))
    assert.ok(env.ms < 1500 + 2000, `ETCDCTL_DIAL_TIMEOUT=1500ms took ${Math.round(env.ms)} ms`)

    assert.equal(both.code, 69, show(both))
    assert.ok(both.stderr.includes(`${REFUSED[0]},${blackholeUrl}`), show(both))
    assert.ok(both.ms < 2000 + 2000, `--dial-timeout 2s took ${Math.round(both.ms)} ms`)
  })
})

describe('errors', {concurrency: true}, () => {
  test('--json errors: {"error": {code, message, exitCode}} on stdout, the same exit code, nothing on stderr', async () => {
    const [unreachable, badTimeout, missing] = await Promise.all([
      runCli(['leases', 'ls', '--json', '--endpoints', REFUSED[0]]),
      runCli(['leases', 'ls', '--json', '--endpoints', plain.endpoint, '--dial-timeout', 'soon']),
      runCli(['network', 'show', '--json', '--endpoints', plain.endpoint, '--etcd-prefix', '/absent']),
    ])
    for (const [r, exit, code] of [
      [unreachable, 69, 'ETCD_UNAVAILABLE'],
      [badTimeout, 2, 'INVALID_DURATION'],
      [missing, 4, 'CONFIG_NOT_FOUND'],
    ] as const) {
      assert.equal(r.code, exit, show(r))
      assert.equal(r.stderr, '', show(r))
      const err = json(r).error
      assert.equal(err.code, code)
      assert.equal(err.exitCode, exit)
      assert.equal(typeof err.message, 'string')
      assert.ok(err.message.length > 0)
      assert.ok(!err.message.includes('\n'))
    }
    assert.ok(json(unreachable).error.message.includes(REFUSED[0]), show(unreachable))
    assert.match(json(badTimeout).error.message, /--dial-timeout.*soon/)
  })

  test('usage errors are exit 2 even when etcd is unreachable (checked before connecting)', async () => {
    const down = ['--endpoints', REFUSED[0]]
    const runs = await Promise.all([
      runCli(['subnet-env', ...down]),
      runCli(['subnet-env', ...down, '--public-ip', '192.168.1.1', '--subnet', '10.5.34.0/24']),
      runCli(['leases', 'ls', ...down, '--public-ip', 'not-an-ip']),
      runCli(['network', 'init', ...down, '--network', '10.0.0.0/29']),
      runCli(['network', 'init', ...down, '--network', '10.0.0.0/16', '--backend', 'host-gw', '--vni', '2']),
    ])
    for (const r of runs) {
      assert.equal(r.code, 2, show(r))
      assert.doesNotMatch(r.stderr, /unreachable/, show(r))
    }
  })
})

describe('3-member cluster with one member down', () => {
  test('leases ls keeps working with all three endpoints given, run after run', async () => {
    const all = cluster.endpoints.join(',')
    const up = await ls(['--endpoints', all])
    assert.equal(answeredBy(up), '192.168.1.4')

    // Kill the member listed first, so every run has to get past a dead endpoint.
    await cluster.members[0]!.kill()
    const orders = [
      all,
      [...cluster.endpoints].reverse().join(','),
      [cluster.endpoints[1], cluster.endpoints[0], cluster.endpoints[2]].join(','),
    ]
    for (let i = 0; i < 4; i++) {
      const r = await ls(['--endpoints', orders[i % orders.length]!, '--dial-timeout', '5s'])
      assert.equal(answeredBy(r), '192.168.1.4', `run ${i + 1}`)
      assert.equal(json(r).leases[0].ttlSeconds > 86_000, true, `run ${i + 1}: TTL read through a live member`)
    }
    // The other read commands too; and only the dead member given → 69 naming it.
    const [env, dead] = await Promise.all([
      runCli(['subnet-env', '--public-ip', '192.168.1.4', '--endpoints', all]),
      ls(['--endpoints', cluster.endpoints[0]!, '--dial-timeout', '1s']),
    ])
    assert.equal(env.code, 0, show(env))
    assert.equal(
      env.stdout,
      'FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.34.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n',
    )
    assert.equal(dead.code, 69, show(dead))
    assert.ok(json(dead).error.message.includes(cluster.endpoints[0]!), show(dead))
  })
})

describe('TLS with client certificates', {concurrency: true}, () => {
  test('--cacert/--cert/--key works, with nothing on stderr', async () => {
    const t = tls.tls!
    const table = await runCli([
      'leases',
      'ls',
      '--endpoints',
      tls.endpoint,
      '--cacert',
      t.ca,
      '--cert',
      t.cert,
      '--key',
      t.key,
    ])
    assert.equal(table.code, 0, show(table))
    assert.equal(table.stderr, '')
    assert.match(table.stdout, /^10\.5\.34\.0\/24 +192\.168\.1\.2 +vxlan /m)
  })

  test('ETCDCTL_CACERT/CERT/KEY and FLANNELD_ETCD_CAFILE/CERTFILE/KEYFILE are fallbacks', async () => {
    const t = tls.tls!
    const [etcdctl, flanneld] = await Promise.all([
      ls([], {ETCDCTL_ENDPOINTS: tls.endpoint, ETCDCTL_CACERT: t.ca, ETCDCTL_CERT: t.cert, ETCDCTL_KEY: t.key}),
      ls([], {
        FLANNELD_ETCD_ENDPOINTS: tls.endpoint,
        FLANNELD_ETCD_CAFILE: t.ca,
        FLANNELD_ETCD_CERTFILE: t.cert,
        FLANNELD_ETCD_KEYFILE: t.key,
      }),
    ])
    assert.equal(answeredBy(etcdctl), '192.168.1.2')
    assert.equal(answeredBy(flanneld), '192.168.1.2')
  })

  test('the wrong CA → exit 69 naming TLS and the certificate used', async () => {
    const t = tls.tls!
    const r = await runCli([
      'leases',
      'ls',
      '--endpoints',
      tls.endpoint,
      '--cacert',
      t.wrongCa,
      '--cert',
      t.cert,
      '--key',
      t.key,
      '--dial-timeout',
      '2s',
    ])
    assert.equal(r.code, 69, show(r))
    assert.match(r.stderr, /^Error: TLS handshake with etcd at https:\/\/127\.0\.0\.1:\d+ failed/)
    assert.ok(r.stderr.includes(t.wrongCa), `names the CA file:\n${r.stderr}`)
    assert.match(r.stderr, /certificate/i)
    assertNoStack(r)
  })

  test('no client certificate → exit 69 naming TLS (the server requires one)', async () => {
    const r = await runCli([
      'leases',
      'ls',
      '--endpoints',
      tls.endpoint,
      '--cacert',
      tls.tls!.ca,
      '--dial-timeout',
      '2s',
    ])
    assert.equal(r.code, 69, show(r))
    assert.match(r.stderr, /TLS/)
    assertNoStack(r)
  })

  test('an unreadable --cert, --key or --cacert → exit 2 naming the file; --cert without --key → 2', async () => {
    const t = tls.tls!
    const missing = path.join(tmp, 'missing-client.crt')
    const noPerm = path.join(tmp, 'no-perm.key')
    await writeFile(noPerm, 'secret')
    await chmod(noPerm, 0o000)
    const base = ['leases', 'ls', '--endpoints', tls.endpoint]
    const [cert, ca, certJson, perm, lone] = await Promise.all([
      runCli([...base, '--cacert', t.ca, '--cert', missing, '--key', t.key]),
      runCli([...base, '--cacert', missing, '--cert', t.cert, '--key', t.key]),
      runCli([...base, '--json', '--cacert', t.ca, '--cert', missing, '--key', t.key]),
      runCli([...base, '--cacert', t.ca, '--cert', t.cert, '--key', noPerm]),
      runCli([...base, '--cacert', t.ca, '--cert', t.cert]),
    ])
    for (const [r, flag] of [
      [cert, '--cert'],
      [ca, '--cacert'],
    ] as const) {
      assert.equal(r.code, 2, show(r))
      assert.equal(r.stderr.split('\n')[0], `Error: cannot read ${flag} file ${missing}: ENOENT`)
      assertNoStack(r)
    }
    assert.equal(certJson.code, 2, show(certJson))
    assert.deepEqual(json(certJson).error, {
      code: 'UNREADABLE_FILE',
      message: `cannot read --cert file ${missing}: ENOENT`,
      exitCode: 2,
    })
    if (process.getuid?.() !== 0) {
      assert.equal(perm.code, 2, show(perm))
      assert.ok(perm.stderr.includes(noPerm), perm.stderr)
    }
    assert.equal(lone.code, 2, show(lone))
    assert.match(lone.stderr, /--cert and --key/)
  })
})

describe('user/password auth', {concurrency: true}, () => {
  test('--user name:password and --user name --password work', async () => {
    const [colon, separate] = await Promise.all([
      ls(['--endpoints', auth.endpoint, '--user', 'flannel:flpw']),
      ls(['--endpoints', auth.endpoint, '--user', 'flannel', '--password', 'flpw']),
    ])
    assert.equal(answeredBy(colon), '192.168.1.3')
    assert.equal(answeredBy(separate), '192.168.1.3')
  })

  test('ETCDCTL_USER/ETCDCTL_PASSWORD and FLANNELD_ETCD_USERNAME/PASSWORD are fallbacks', async () => {
    const [a, b] = await Promise.all([
      ls(['--endpoints', auth.endpoint], {ETCDCTL_USER: 'flannel', ETCDCTL_PASSWORD: 'flpw'}),
      ls(['--endpoints', auth.endpoint], {FLANNELD_ETCD_USERNAME: 'flannel', FLANNELD_ETCD_PASSWORD: 'flpw'}),
    ])
    for (const r of [a, b]) assert.equal(answeredBy(r), '192.168.1.3')
  })

  test('a wrong password → exit 69 naming the user; no credentials → 69 saying auth is required', async () => {
    const [wrong, wrongJson, none] = await Promise.all([
      runCli(['leases', 'ls', '--endpoints', auth.endpoint, '--user', 'flannel', '--password', 'not-the-password']),
      ls(['--endpoints', auth.endpoint, '--user', 'flannel:not-the-password']),
      runCli(['leases', 'ls', '--endpoints', auth.endpoint]),
    ])
    assert.equal(wrong.code, 69, show(wrong))
    assert.match(wrong.stderr, /"flannel"/)
    assert.match(wrong.stderr, /authentication failed/)
    assert.ok(!wrong.stderr.includes('not-the-password'), 'the password is never echoed')
    assertNoStack(wrong)
    assert.equal(wrongJson.code, 69, show(wrongJson))
    assert.equal(json(wrongJson).error.code, 'ETCD_AUTH_FAILED')
    assert.equal(json(wrongJson).error.exitCode, 69)
    assert.equal(none.code, 69, show(none))
    assert.match(none.stderr, /authentication/)
  })

  test('a user without permission on the prefix → exit 69 naming the user', async () => {
    const r = await runCli([
      'network',
      'show',
      '--endpoints',
      auth.endpoint,
      '--user',
      'flannel:flpw',
      '--etcd-prefix',
      '/elsewhere',
    ])
    assert.equal(r.code, 69, show(r))
    assert.match(r.stderr, /"flannel"/)
    assert.match(r.stderr, /permission denied/)
  })
})
