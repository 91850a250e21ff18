// leases watch through bin/run.js against a real etcd: every event kind, --json lines, --rev, a compaction and an
// etcd restart mid-watch, the v2 keyspace, hostile keys on a pseudo-terminal, `| head -1`, signals and exit codes.
// Every watch process is bounded (killed after WATCH_LIMIT_MS) and killed by its pid when the file ends.

import assert from 'node:assert/strict'
import {type ChildProcess, spawn} from 'node:child_process'
import net from 'node:net'
import {after, before, describe, test} from 'node:test'
import {setTimeout as sleep} from 'node:timers/promises'

import {startEtcd, type EtcdServer} from '../helpers/etcd.js'
import {etcdctlV2} from '../helpers/etcd-v2.js'
import {
  cleanEnv,
  currentRevision,
  grantLease,
  putKey,
  putSubnet,
  ROOT,
  RUN_JS,
  runCli,
  show,
  vxlanValue,
} from '../helpers/cli.js'
import {runCliTty} from '../helpers/tty.js'

const WATCH_LIMIT_MS = 90_000
const WAIT_MS = 30_000

let etcd: EtcdServer
const live = new Set<ChildProcess>()

before(async () => {
  etcd = await startEtcd({enableV2: true})
})

after(async () => {
  for (const c of live) if (c.exitCode === null && c.signalCode === null && c.pid) process.kill(c.pid, 'SIGKILL')
  await etcd?.stop()
})

/** A running `flannelctl leases watch ...`, read line by line. */
class Watch {
  readonly child: ChildProcess
  out = ''
  err = ''
  readonly exited: Promise<{code: number | null; signal: NodeJS.Signals | null}>

  constructor(args: string[], opts: {shell?: string} = {}) {
    const argv = [RUN_JS, 'leases', 'watch', ...args]
    this.child = opts.shell
      ? spawn('bash', ['-c', opts.shell], {cwd: ROOT, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe']})
      : spawn(process.execPath, argv, {cwd: ROOT, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe']})
    live.add(this.child)
    this.child.stdout!.on('data', (b: Buffer) => (this.out += b.toString('utf8')))
    this.child.stderr!.on('data', (b: Buffer) => (this.err += b.toString('utf8')))
    const limit = setTimeout(() => this.child.kill('SIGKILL'), WATCH_LIMIT_MS)
    this.exited = new Promise((resolve) =>
      this.child.on('close', (code, signal) => {
        clearTimeout(limit)
        live.delete(this.child)
        resolve({code, signal})
      }),
    )
  }

  lines(): string[] {
    return this.out.split('\n').slice(0, -1)
  }

  events(): any[] {
    return this.lines().map((l) => JSON.parse(l))
  }

  show(): string {
    return `--- stdout\n${this.out}\n--- stderr\n${this.err}`
  }

  async waitFor(what: string, ok: () => boolean, ms = WAIT_MS): Promise<void> {
    const deadline = Date.now() + ms
    while (!ok()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${this.show()}`)
      if (this.child.exitCode !== null)
        throw new Error(`exited ${this.child.exitCode} waiting for ${what}\n${this.show()}`)
      await sleep(25)
    }
  }

  waitLines(n: number, ms = WAIT_MS): Promise<void> {
    return this.waitFor(`${n} line(s)`, () => this.lines().length >= n, ms)
  }

  async end(signal: NodeJS.Signals = 'SIGINT'): Promise<{code: number | null; signal: NodeJS.Signals | null}> {
    if (this.child.exitCode === null) this.child.kill(signal)
    return this.exited
  }
}

const ep = () => ['--endpoints', etcd.endpoint]
const next = async () => String(BigInt(await currentRevision(etcd)) + 1n)

async function ctl(args: string[]): Promise<void> {
  const r = await etcd.etcdctl(args)
  assert.equal(r.code, 0, r.stderr)
}

describe('leases watch (v3)', () => {
  test('--json: added, renewed, changed, reserved, deleted and expired, one JSON object per line', async () => {
    const P = '/w1'
    const S = `${P}/subnets`
    const from = await next()
    const w = new Watch(['--json', '--rev', from, '--etcd-prefix', P, '--max-events', '6', ...ep()])
    const v1 = vxlanValue('192.168.1.1', 'aa:bb:cc:dd:ee:01')
    const v2 = vxlanValue('192.168.1.2', 'aa:bb:cc:dd:ee:01')
    const first = await putSubnet(etcd, `${S}/10.5.1.0-24`, v1)
    const second = await putSubnet(etcd, `${S}/10.5.1.0-24`, v1) // flanneld's renewal: a new lease, the same value
    await putSubnet(etcd, `${S}/10.5.1.0-24`, v2, {lease: null}) // a new PublicIP, and no lease any more
    await ctl(['del', `${S}/10.5.1.0-24`])
    await putSubnet(etcd, `${S}/10.5.2.0-24`, v1, {lease: 2})
    const end = await w.exited
    assert.equal(end.code, 0, w.show())
    const ev = w.events()
    assert.deepEqual(
      ev.map((e) => [e.type, e.subnet, e.publicIP, e.changes]),
      [
        ['added', '10.5.1.0/24', '192.168.1.1', []],
        ['renewed', '10.5.1.0/24', '192.168.1.1', ['lease']],
        ['changed', '10.5.1.0/24', '192.168.1.2', ['PublicIP', 'reserved']],
        ['deleted', '10.5.1.0/24', '192.168.1.2', []],
        ['added', '10.5.2.0/24', '192.168.1.1', []],
        ['expired', '10.5.2.0/24', '192.168.1.1', []],
      ],
    )
    assert.equal(ev[0].leaseId, first!.id)
    assert.equal(ev[1].leaseId, second!.id)
    assert.equal(ev[1].previous.leaseId, first!.id)
    assert.ok(ev[0].ttlSeconds > 86_000 && ev[0].ttlSeconds <= 86_400, String(ev[0].ttlSeconds))
    assert.equal(ev[2].reserved, true)
    assert.equal(ev[2].ttlSeconds, null)
    assert.equal(ev[2].value, v2)
    assert.equal(ev[3].value, null)
    assert.equal(ev[3].previous.value, v2)
    assert.equal(ev[0].key, `${S}/10.5.1.0-24`)
    for (const e of ev) assert.equal(e.resynced, false)
    // Revisions strictly increase, starting at --rev.
    const revs = ev.map((e) => BigInt(e.revision))
    assert.ok(revs[0]! >= BigInt(from))
    for (let i = 1; i < revs.length; i++) assert.ok(revs[i]! > revs[i - 1]!, revs.join(','))
    assert.equal(w.err, '')
  })

  test('a table for humans: a header, aligned lines, malformed keys shown as such; SIGTERM ends it with 0', async () => {
    const P = '/w2'
    const S = `${P}/subnets`
    const w = new Watch(['--etcd-prefix', P, ...ep()])
    await w.waitLines(1)
    assert.match(w.lines()[0]!, /^TIME +EVENT +SUBNET +PUBLIC-IP +BACKEND +TTL +REVISION +KEY +DETAIL$/)
    await putSubnet(etcd, `${S}/10.5.3.0-24`, vxlanValue('192.168.1.3', 'aa:bb:cc:dd:ee:03'))
    await putSubnet(etcd, `${S}/10.5.40.0-24&fd00:5:40::-64`, vxlanValue('192.168.1.40', 'aa:bb:cc:dd:ee:40'))
    await putKey(etcd, `${S}/not-a-subnet`, 'junk')
    await putKey(etcd, `${S}/10.5.4.0-24`, 'not json')
    await w.waitLines(5)
    const end = await w.end('SIGTERM')
    assert.equal(end.code, 0, w.show())
    const [head, ...rows] = w.lines()
    const col = (name: string) => head!.indexOf(name)
    assert.equal(rows[0]!.indexOf('10.5.3.0/24'), col('SUBNET'), w.show())
    assert.equal(rows[0]!.indexOf('192.168.1.3'), col('PUBLIC-IP'))
    assert.equal(rows[0]!.indexOf('vxlan'), col('BACKEND'))
    assert.equal(rows[0]!.indexOf(`${S}/10.5.3.0-24`), col('KEY'))
    assert.match(rows[0]!, / added +10\.5\.3\.0\/24 +192\.168\.1\.3 +vxlan +23h59m /)
    assert.match(rows[1]!, /IPv6 fd00:5:40::\/64/)
    assert.match(rows[2]!, /added +- +- +- +reserved .*malformed: failed to parse subnet key/)
    assert.match(rows[3]!, /added +10\.5\.4\.0\/24 +- .*malformed: error decoding subnet lease JSON/)
    for (const r of rows) assert.equal(r.indexOf('added'), col('EVENT'), r)
  })

  test('--rev N replays from revision N exactly once; filters by PublicIP and SUBNET', async () => {
    const P = '/w3'
    const S = `${P}/subnets`
    const from = await next()
    await putSubnet(etcd, `${S}/10.5.5.0-24`, vxlanValue('192.168.1.5', 'aa:bb:cc:dd:ee:05'))
    await putSubnet(etcd, `${S}/10.5.6.0-24`, vxlanValue('192.168.1.6', 'aa:bb:cc:dd:ee:06'))
    await putSubnet(etcd, `${S}/10.5.5.0-24`, vxlanValue('192.168.1.5', 'aa:bb:cc:dd:ee:05'))
    const all = await runCli([
      'leases',
      'watch',
      '--json',
      '--rev',
      from,
      '--max-events',
      '3',
      '--etcd-prefix',
      P,
      ...ep(),
    ])
    assert.equal(all.code, 0, show(all))
    const ev = all.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    assert.deepEqual(
      ev.map((e) => [e.type, e.subnet]),
      [
        ['added', '10.5.5.0/24'],
        ['added', '10.5.6.0/24'],
        ['renewed', '10.5.5.0/24'],
      ],
    )
    // Resuming after the second event gives the third and nothing before it.
    const resumed = await runCli([
      'leases',
      'watch',
      '--json',
      '--rev',
      String(BigInt(ev[1].revision) + 1n),
      '--max-events',
      '1',
      '--etcd-prefix',
      P,
      ...ep(),
    ])
    assert.equal(resumed.code, 0, show(resumed))
    assert.deepEqual(JSON.parse(resumed.stdout).revision, ev[2].revision)
    const byIp = await runCli([
      'leases',
      'watch',
      '--json',
      '--rev',
      from,
      '--max-events',
      '2',
      '--public-ip',
      '192.168.1.5',
      '--timeout',
      '3s',
      '--etcd-prefix',
      P,
      ...ep(),
    ])
    assert.equal(byIp.code, 0, show(byIp))
    assert.deepEqual(
      byIp.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).type),
      ['added', 'renewed'],
    )
    const bySubnet = await runCli([
      'leases',
      'watch',
      '10.5.6.0/24',
      '--json',
      '--rev',
      from,
      '--max-events',
      '1',
      '--etcd-prefix',
      P,
      ...ep(),
    ])
    assert.equal(JSON.parse(bySubnet.stdout).subnet, '10.5.6.0/24', show(bySubnet))
    // --timeout with fewer than --max-events: exit 124 with a one-line JSON error.
    const short = await runCli([
      'leases',
      'watch',
      '--json',
      '--rev',
      from,
      '--max-events',
      '5',
      '--timeout',
      '2s',
      '--etcd-prefix',
      P,
      ...ep(),
    ])
    assert.equal(short.code, 124, show(short))
    const lines = short.stdout.trim().split('\n')
    assert.equal(lines.length, 4, show(short))
    assert.equal(JSON.parse(lines[3]!).error.code, 'WATCH_TIMEOUT')
  })

  test('a compacted --rev is exit 4 naming the oldest revision etcd keeps', async () => {
    await putKey(etcd, '/w4/subnets/x', 'a')
    await putKey(etcd, '/w4/subnets/x', 'b')
    const rev = await currentRevision(etcd)
    await ctl(['compact', rev])
    const r = await runCli(['leases', 'watch', '--rev', '2', '--etcd-prefix', '/w4', ...ep()])
    assert.equal(r.code, 4, show(r))
    assert.equal(r.stdout, '')
    assert.match(
      r.stderr,
      new RegExp(
        `^Error: --rev 2 has been compacted: etcd keeps history from revision ${rev} on; use --rev ${rev} or later`,
      ),
    )
    const j = await runCli(['leases', 'watch', '--json', '--rev', '2', '--etcd-prefix', '/w4', ...ep()])
    assert.equal(j.code, 4)
    assert.equal(j.stdout.trim().split('\n').length, 1, 'a one-line JSON error')
    assert.equal(JSON.parse(j.stdout).error.code, 'REVISION_COMPACTED')
    assert.equal(JSON.parse(j.stdout).error.details.oldest, rev)
  })

  test('etcd unreachable at the start is exit 69; bad --rev is exit 2', async () => {
    const r = await runCli(['leases', 'watch', '--endpoints', 'http://127.0.0.1:1', '--dial-timeout', '1s'])
    assert.equal(r.code, 69, show(r))
    assert.equal(r.stdout, '')
    const bad = await runCli(['leases', 'watch', '--rev', 'x1', ...ep()])
    assert.equal(bad.code, 2, show(bad))
    assert.match(bad.stderr, /invalid --rev "x1"/)
  })

  test('Ctrl-C while the watch is still being set up ends it with 0 at once, without a reconnection note', async () => {
    // A proxy to etcd passes the first connection (the read of the subnets) and holds every later one (etcd3's
    // watch stream) unanswered: the watch is caught being created. Closing the store must end it; it used to take
    // the closed channel for a lost connection and retry for ever.
    const [host, port] = new URL(etcd.endpoint).host.split(':') as [string, string]
    const held: net.Socket[] = []
    let connections = 0
    const proxy = net.createServer((c) => {
      c.on('error', () => undefined)
      if (++connections > 1) return void held.push(c)
      const up = net.connect(Number(port), host)
      up.on('error', () => c.destroy())
      c.pipe(up).pipe(c)
    })
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
    try {
      const w = new Watch(['--json', '--endpoints', `http://127.0.0.1:${(proxy.address() as net.AddressInfo).port}`])
      await w.waitFor('the watch connection', () => held.length > 0)
      const t0 = Date.now()
      const end = await w.end('SIGINT')
      assert.equal(end.code, 0, w.show())
      assert.ok(Date.now() - t0 < 10_000, `exited after ${Date.now() - t0} ms`)
      assert.doesNotMatch(w.err, /lost the connection|reconnect/, w.show())
    } finally {
      for (const c of held) c.destroy()
      await new Promise((resolve) => proxy.close(resolve))
    }
  })

  test('usage errors exit 2 before etcd is reached (an unreachable etcd does not turn them into 69)', async () => {
    const down = ['--endpoints', 'http://127.0.0.1:1', '--dial-timeout', '1s']
    const cases: Array<[string[], RegExp]> = [
      [['--rev', 'abc'], /invalid --rev "abc"/],
      [['--rev', '0'], /invalid --rev "0"/],
      [['10.0.0.0/33'], /10\.0\.0\.0\/33/],
      [['--public-ip', '1.2.3'], /invalid --public-ip "1\.2\.3"/],
      [['--timeout', '0s'], /--timeout/],
    ]
    for (const [args, message] of cases) {
      const r = await runCli(['leases', 'watch', ...args, ...down])
      assert.equal(r.code, 2, `${args.join(' ')}: ${show(r)}`)
      assert.match(r.stderr, message, args.join(' '))
      assert.equal(r.stdout, '')
    }
  })

  test('an etcd restart mid-watch: resumed after the last revision seen, nothing lost, nothing twice', async () => {
    const P = '/w5'
    const S = `${P}/subnets`
    const w = new Watch(['--json', '--rev', await next(), '--etcd-prefix', P, ...ep()])
    await putSubnet(etcd, `${S}/10.5.7.0-24`, vxlanValue('192.168.1.7', 'aa:bb:cc:dd:ee:07'))
    await w.waitLines(1)
    // The watcher is stopped while etcd restarts and two changes are made: they reach it only through the resume.
    process.kill(w.child.pid!, 'SIGSTOP')
    try {
      await etcd.kill()
      await etcd.restart()
      await putSubnet(etcd, `${S}/10.5.8.0-24`, vxlanValue('192.168.1.8', 'aa:bb:cc:dd:ee:08'))
      await putSubnet(etcd, `${S}/10.5.7.0-24`, vxlanValue('192.168.1.77', 'aa:bb:cc:dd:ee:07'))
    } finally {
      process.kill(w.child.pid!, 'SIGCONT')
    }
    await w.waitLines(3)
    await w.waitFor('the reconnection note', () => /reconnected to etcd/.test(w.err))
    await putSubnet(etcd, `${S}/10.5.9.0-24`, vxlanValue('192.168.1.9', 'aa:bb:cc:dd:ee:09'))
    await w.waitLines(4)
    assert.equal((await w.end('SIGINT')).code, 0, w.show())
    assert.deepEqual(
      w.events().map((e) => [e.type, e.subnet, e.resynced]),
      [
        ['added', '10.5.7.0/24', false],
        ['added', '10.5.8.0/24', false],
        ['changed', '10.5.7.0/24', false],
        ['added', '10.5.9.0/24', false],
      ],
    )
    assert.match(w.err, /lost the connection to etcd .*reconnecting, to resume after revision \d+/)
  })

  test('a compaction while the watch was away: listed again, the differences shown as resynced, then resumed', async () => {
    const P = '/w6'
    const S = `${P}/subnets`
    await putSubnet(etcd, `${S}/10.5.10.0-24`, vxlanValue('192.168.1.10', 'aa:bb:cc:dd:ee:10'))
    await putSubnet(etcd, `${S}/10.5.11.0-24`, vxlanValue('192.168.1.11', 'aa:bb:cc:dd:ee:11'))
    await putSubnet(etcd, `${S}/10.5.14.0-24`, vxlanValue('192.168.1.14', 'aa:bb:cc:dd:ee:14'))
    const w = new Watch(['--json', '--rev', await next(), '--etcd-prefix', P, ...ep()])
    await putKey(etcd, `${S}/10.5.12.0-24`, vxlanValue('192.168.1.12', 'aa:bb:cc:dd:ee:12'))
    await w.waitLines(1)
    process.kill(w.child.pid!, 'SIGSTOP')
    try {
      await etcd.kill()
      await etcd.restart()
      await putSubnet(etcd, `${S}/10.5.10.0-24`, vxlanValue('192.168.1.100', 'aa:bb:cc:dd:ee:10')) // changed
      await ctl(['del', `${S}/10.5.11.0-24`]) // deleted
      await putSubnet(etcd, `${S}/10.5.13.0-24`, vxlanValue('192.168.1.13', 'aa:bb:cc:dd:ee:13')) // added
      const lease = await grantLease(etcd, 60)
      await ctl(['put', `--lease=${lease.hex}`, `${S}/10.5.14.0-24`, vxlanValue('192.168.1.14', 'aa:bb:cc:dd:ee:14')]) // renewed
      await ctl(['compact', await currentRevision(etcd)])
    } finally {
      process.kill(w.child.pid!, 'SIGCONT')
    }
    await w.waitLines(5)
    await putKey(etcd, `${S}/10.5.15.0-24`, vxlanValue('192.168.1.15', 'aa:bb:cc:dd:ee:15'))
    await w.waitLines(6)
    assert.equal((await w.end()).code, 0, w.show())
    assert.deepEqual(
      w.events().map((e) => [e.type, e.subnet, e.origin, e.resynced]),
      [
        ['added', '10.5.12.0/24', 'watch', false],
        ['changed', '10.5.10.0/24', 'resync', true],
        ['deleted', '10.5.11.0/24', 'resync', true],
        ['added', '10.5.13.0/24', 'resync', true],
        ['renewed', '10.5.14.0/24', 'resync', true],
        ['added', '10.5.15.0/24', 'watch', false],
      ],
    )
    assert.match(w.err, /etcd cancelled the watch after revision \d+/)
  })

  test('--list prints the current leases first, marked listed', async () => {
    const P = '/w7'
    await putSubnet(etcd, `${P}/subnets/10.5.20.0-24`, vxlanValue('192.168.1.20', 'aa:bb:cc:dd:ee:20'))
    await putSubnet(etcd, `${P}/subnets/10.5.21.0-24`, vxlanValue('192.168.1.21', 'aa:bb:cc:dd:ee:21'), {lease: null})
    const r = await runCli(['leases', 'watch', '--list', '--json', '--timeout', '1s', '--etcd-prefix', P, ...ep()])
    assert.equal(r.code, 0, show(r))
    const ev = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    assert.deepEqual(
      ev.map((e) => [e.type, e.subnet, e.origin, e.reserved]),
      [
        ['added', '10.5.20.0/24', 'list', false],
        ['added', '10.5.21.0/24', 'list', true],
      ],
    )
    assert.ok(ev[0].ttlSeconds > 86_000)
  })

  test('hostile keys and values on a terminal: no raw control character; --json keeps them exact', async () => {
    const P = '/w8'
    const S = `${P}/subnets`
    const from = await next()
    const key = `${S}/10.5.30.0-24\u001b[2J\u001b[H`
    // Escaped in the JSON text, so the value decodes (a raw ESC in a JSON string does not: the third key).
    const value = '{"PublicIP":"192.168.1.30","PublicIPv6":null,"BackendType":"vxlan\\u001b[31mRED\\u001b[0m"}'
    await putKey(etcd, key, value)
    await putKey(etcd, `${S}/10.5.31.0-24`, value)
    await putKey(etcd, `${S}/10.5.32.0-24`, '{"PublicIP":"192.168.1.32","BackendType":"\u001b]0;title\u0007"}')
    const args = ['leases', 'watch', '--rev', from, '--max-events', '3', '--etcd-prefix', P, ...ep()]
    for (const colour of [false, true]) {
      const r = await runCliTty(args, {env: colour ? {NO_COLOR: undefined} : {}})
      assert.equal(r.code, 0, r.output)
      // Our own colours (SGR) are allowed when colour is on; nothing else.
      // eslint-disable-next-line no-control-regex
      const text = colour ? r.output.replace(/\u001b\[[0-9;]*m/g, '') : r.output
      // eslint-disable-next-line no-control-regex
      assert.equal(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/.exec(text), null, JSON.stringify(text))
      assert.match(r.output, /10\.5\.30\.0-24\\x1b\[2J\\x1b\[H/)
      assert.match(r.output, /vxlan\\x1…/)
    }
    const j = await runCli([...args, '--json'])
    const ev = j.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    assert.equal(ev[0].key, key)
    assert.equal(ev[1].value, value)
    assert.equal(ev[1].backendType, 'vxlan\u001b[31mRED\u001b[0m')
  })

  test('| head -1 ends quietly at the next line', async () => {
    const P = '/w9'
    const S = `${P}/subnets`
    const from = await next()
    await putKey(etcd, `${S}/10.5.40.0-24`, vxlanValue('192.168.1.40', 'aa:bb:cc:dd:ee:40'))
    const cmd = `set -o pipefail; ${JSON.stringify(process.execPath)} ${JSON.stringify(RUN_JS)} leases watch --json --rev ${from} --etcd-prefix ${P} --endpoints ${etcd.endpoint} | head -1; echo "status=\${PIPESTATUS[0]}" >&2`
    const w = new Watch([], {shell: cmd})
    await w.waitLines(1)
    // head has exited; the watch learns it when it next writes.
    for (let i = 0; i < 20 && w.child.exitCode === null; i++) {
      await putKey(
        etcd,
        `${S}/10.5.41.0-24`,
        vxlanValue('192.168.1.41', `aa:bb:cc:dd:ee:${String(i).padStart(2, '0')}`),
      )
      await sleep(250)
    }
    const end = await w.exited
    assert.equal(end.code, 0, w.show())
    assert.equal(w.err, 'status=0\n')
    assert.equal(w.lines().length, 1)
  })
})

describe('leases watch (v2 keyspace)', () => {
  test('added, renewed, changed, deleted and expired from the v2 keys API; a cleared index is exit 4', async () => {
    const P = '/w10'
    const S = `${P}/subnets`
    const index = async () => {
      const res = await fetch(`${etcd.endpoint}/v2/keys/`)
      return String(BigInt(res.headers.get('x-etcd-index')!) + 1n)
    }
    await etcdctlV2(etcd, ['set', `${P}/config`, '{"Network":"10.5.0.0/16"}'])
    const from = await index()
    const w = new Watch(['--json', '--etcd-api', 'v2', '--rev', from, '--etcd-prefix', P, '--max-events', '5', ...ep()])
    const v1 = vxlanValue('192.168.2.1', 'aa:bb:cc:dd:ee:01')
    await etcdctlV2(etcd, ['set', '--ttl', '600', `${S}/10.5.1.0-24`, v1])
    await etcdctlV2(etcd, ['set', '--ttl', '600', `${S}/10.5.1.0-24`, v1])
    await etcdctlV2(etcd, ['set', '--ttl', '600', `${S}/10.5.1.0-24`, vxlanValue('192.168.2.2', 'aa:bb:cc:dd:ee:01')])
    await etcdctlV2(etcd, ['rm', `${S}/10.5.1.0-24`])
    await etcdctlV2(etcd, ['set', '--ttl', '1', `${S}/10.5.2.0-24`, v1])
    const end = await w.exited
    assert.equal(end.code, 0, w.show())
    const ev = w.events()
    assert.deepEqual(
      ev.map((e) => [e.type, e.subnet, e.publicIP]),
      [
        ['added', '10.5.1.0/24', '192.168.2.1'],
        ['renewed', '10.5.1.0/24', '192.168.2.1'],
        ['changed', '10.5.1.0/24', '192.168.2.2'],
        ['deleted', '10.5.1.0/24', '192.168.2.2'],
        ['added', '10.5.2.0/24', '192.168.2.1'],
      ],
    )
    assert.ok(ev[0].ttlSeconds > 590 && ev[0].ttlSeconds <= 600, String(ev[0].ttlSeconds))
    assert.equal(ev[0].leaseId, `v2:${S}/10.5.1.0-24`)
    // The expiry: auto finds the config only in v2 and watches it (with a note).
    const exp = await runCli([
      'leases',
      'watch',
      '--json',
      '--rev',
      ev[4].revision,
      '--max-events',
      '2',
      '--timeout',
      '20s',
      '--etcd-prefix',
      P,
      ...ep(),
    ])
    assert.equal(exp.code, 0, show(exp))
    assert.deepEqual(
      exp.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).type),
      ['added', 'expired'],
    )
    assert.match(exp.stderr, /watching v2/)
    // More than the 1000 events the v2 store keeps: the old index is gone.
    for (let i = 0; i < 1005; i++)
      await fetch(`${etcd.endpoint}/v2/keys/w10-noise`, {method: 'PUT', body: new URLSearchParams({value: String(i)})})
    const gone = await runCli(['leases', 'watch', '--etcd-api', 'v2', '--rev', from, '--etcd-prefix', P, ...ep()])
    assert.equal(gone.code, 4, show(gone))
    assert.match(
      gone.stderr,
      /^Error: --rev \d+ is older than the 1000 events etcd's v2 store keeps \(the oldest it has is index \d+\)/,
    )
  })

  test('an etcd restart mid-watch (v2): nothing lost (the v2 event history does not survive a restart: a resync)', async () => {
    const P = '/w11'
    const S = `${P}/subnets`
    await etcdctlV2(etcd, ['set', `${P}/config`, '{"Network":"10.5.0.0/16"}'])
    const res = await fetch(`${etcd.endpoint}/v2/keys/`)
    const from = String(BigInt(res.headers.get('x-etcd-index')!) + 1n)
    const w = new Watch(['--json', '--etcd-api', 'v2', '--rev', from, '--etcd-prefix', P, ...ep()])
    await etcdctlV2(etcd, ['set', '--ttl', '600', `${S}/10.5.1.0-24`, vxlanValue('192.168.3.1', 'aa:bb:cc:dd:ee:01')])
    await w.waitLines(1)
    await etcd.kill()
    await etcd.restart()
    await etcdctlV2(etcd, ['set', '--ttl', '600', `${S}/10.5.2.0-24`, vxlanValue('192.168.3.2', 'aa:bb:cc:dd:ee:02')])
    await w.waitLines(2)
    await etcdctlV2(etcd, ['set', '--ttl', '600', `${S}/10.5.3.0-24`, vxlanValue('192.168.3.3', 'aa:bb:cc:dd:ee:03')])
    await w.waitLines(3)
    assert.equal((await w.end()).code, 0, w.show())
    const ev = w.events()
    assert.deepEqual(
      ev.map((e) => [e.type, e.subnet]),
      [
        ['added', '10.5.1.0/24'],
        ['added', '10.5.2.0/24'],
        ['added', '10.5.3.0/24'],
      ],
    )
    assert.equal(ev[2].origin, 'watch')
    assert.match(w.err, /lost the connection to etcd/)
  })
})
