// Everyday conventions through the built CLI: readable usage errors, flanneld's flag names, -h, did-you-mean on a
// terminal, shell completion, and leases ls's SUBNET filter, --sort, --no-headers, summary and "no leases match"
// against a real etcd.

import assert from 'node:assert/strict'
import {execFile} from 'node:child_process'
import {mkdtemp, rm} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, test} from 'node:test'
import {promisify} from 'node:util'

import {putKey, putSubnet, ROOT, RUN_JS, runCli, show, vxlanValue} from '../helpers/cli.js'
import {type EtcdServer, startEtcd} from '../helpers/etcd.js'
import {runCliTty} from '../helpers/tty.js'

const run = promisify(execFile)
let etcd: EtcdServer
let tmp: string

before(async () => {
  ;[etcd, tmp] = await Promise.all([startEtcd(), mkdtemp(path.join(os.tmpdir(), 'flannelctl-conv-'))])
  const p = '/coreos.com/network'
  await putKey(etcd, `${p}/config`, '{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}')
  await putSubnet(etcd, `${p}/subnets/10.5.3.0-24`, vxlanValue('192.168.1.30', '02:00:00:00:00:03'))
  await putSubnet(etcd, `${p}/subnets/10.5.1.0-24`, vxlanValue('192.168.1.10', '02:00:00:00:00:01'), {lease: 600})
  await putSubnet(etcd, `${p}/subnets/10.5.2.0-24`, vxlanValue('192.168.1.2', '02:00:00:00:00:02'), {lease: null})
  await putSubnet(
    etcd,
    `${p}/subnets/10.5.4.0-24`,
    '{"PublicIP":"192.168.1.4","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:00:00:00:00:04","Note":"漢字漢字漢字漢字漢字漢字漢字漢字漢字漢字"}}'.replace(
      '"vxlan"',
      `"${'v'.repeat(60)}"`,
    ),
  )
})

after(async () => {
  await etcd?.stop()
  if (tmp) await rm(tmp, {recursive: true, force: true})
})

describe('usage errors and help', {concurrency: true}, () => {
  test('Missing required flag --to; Missing argument SUBNET', async () => {
    const a = await runCli(['network', 'expand'])
    assert.equal(a.code, 2, show(a))
    assert.match(a.stderr, /^Error: Missing required flag --to$/m)
    const b = await runCli(['leases', 'unreserve'])
    assert.equal(b.code, 2, show(b))
    assert.match(b.stderr, /^Error: Missing argument SUBNET \(/m)
  })

  test('-h works as --help', async () => {
    const [h, help] = await Promise.all([runCli(['leases', 'ls', '-h']), runCli(['leases', 'ls', '--help'])])
    assert.equal(h.code, 0, show(h))
    assert.equal(h.stdout, help.stdout)
    assert.match(h.stdout, /USAGE/)
  })

  test('a mistyped command suggests the nearest one at a terminal; exit 127 without running anything', async () => {
    const r = await runCliTty(['leases', 'lss'], {keys: [{after: /Did you mean/, send: 'n\r'}], timeoutMs: 20_000})
    assert.match(r.output, /leases lss is not a flannelctl command/)
    assert.match(r.output, /Did you mean .*leases ls/)
    assert.equal(r.code, 127, r.output)
  })
})

describe("flanneld's flag names", {concurrency: true}, () => {
  test('--etcd-endpoints and the other flanneld names are aliases', async () => {
    const r = await runCli(['leases', 'ls', '--etcd-endpoints', etcd.endpoint, '--json'])
    assert.equal(r.code, 0, show(r))
    const bad = await runCli(['leases', 'ls', '--etcd-endpoints', 'http://127.0.0.1:1', '--dial-timeout', '1s'])
    assert.equal(bad.code, 69, show(bad))
    const help = await runCli(['doctor', '--help'])
    for (const f of [
      'etcd-endpoints',
      'etcd-cafile',
      'etcd-certfile',
      'etcd-keyfile',
      'etcd-username',
      'etcd-password',
    ])
      assert.ok(help.stdout.includes(f) || (await runCli(['doctor', `--${f}`])).stderr.match(/expects a value/), f)
  })
})

describe('leases ls', {concurrency: true}, () => {
  const ls = (...a: string[]) => runCli(['leases', 'ls', '--endpoints', etcd.endpoint, ...a])

  test('SUBNET is a filter; --sort; --no-headers; a summary on stderr at a terminal only', async () => {
    const r = await ls('10.5.1.0/24')
    assert.equal(r.code, 0, show(r))
    assert.deepEqual(
      r.stdout
        .trim()
        .split('\n')
        .slice(1)
        .map((l) => l.split(/\s+/)[0]),
      ['10.5.1.0/24'],
    )
    const byIp = await ls('--sort', 'public-ip', '--no-headers')
    assert.deepEqual(
      byIp.stdout
        .trim()
        .split('\n')
        .map((l) => l.split(/\s+/)[1]),
      ['192.168.1.2', '192.168.1.4', '192.168.1.10', '192.168.1.30'],
    )
    const byTtl = await ls('--sort', 'ttl', '--no-headers')
    assert.equal(byTtl.stdout.split('\n')[0]!.split(/\s+/)[0], '10.5.1.0/24')
    assert.doesNotMatch(byIp.stdout, /lease\(s\)/)
    assert.equal(byIp.stderr, '', 'no summary when stderr is not a terminal')
    const tty = await runCliTty(['leases', 'ls', '--endpoints', etcd.endpoint, '--sort', 'public-ip'])
    assert.equal(tty.code, 0, tty.output)
    assert.match(tty.output, /^4 lease\(s\), 1 reserved, 1 expiring within the 1h00m renew margin, 0 malformed/m)
  })

  test('"No leases match" when filters exclude everything', async () => {
    const r = await ls('10.9.0.0/16')
    assert.equal(r.code, 0, show(r))
    assert.match(r.stdout, /No leases match \(4 lease\(s\) under the subnets prefix/)
  })

  test('long cells are cut with an ellipsis in the table, whole in -o wide and --json', async () => {
    const t = await ls()
    assert.match(t.stdout, /v{31}…/)
    const w = await ls('-o', 'wide')
    assert.match(w.stdout, /v{60}/)
  })
})

describe('shell completion', () => {
  test('bash completes topics and commands from the manifest', async () => {
    const env = {...process.env, HOME: tmp, XDG_CACHE_HOME: path.join(tmp, 'cache')}
    await run(process.execPath, [RUN_JS, 'autocomplete', 'bash'], {env, cwd: ROOT})
    const fn = path.join(tmp, 'cache', 'flannelctl', 'autocomplete', 'functions', 'bash', 'flannelctl.bash')
    const {stdout} = await run('bash', [
      '-c',
      `source '${fn}'; COMP_WORDS=(flannelctl leases ''); COMP_CWORD=2; _flannelctl_autocomplete; echo "\${COMPREPLY[@]}"`,
    ])
    for (const c of ['ls', 'reserve', 'release']) assert.ok(stdout.split(/\s+/).includes(c), stdout)
    const zsh = await run(process.execPath, [RUN_JS, 'autocomplete', 'script', 'zsh'], {env, cwd: ROOT})
    assert.match(zsh.stdout, /FLANNELCTL_AC_ZSH_SETUP_PATH/)
  })
})

describe('documentation drift and small ones', {concurrency: true}, () => {
  test('network show: IPv6 lines align with the rest; a 1.2 MB config is cut on the Stored: line', async () => {
    await putKey(
      etcd,
      '/v6/config',
      '{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"fc00::/48","Backend":{"Type":"vxlan"}}',
    )
    const r = await runCli(['network', 'show', '--endpoints', etcd.endpoint, '--etcd-prefix', '/v6'])
    assert.equal(r.code, 0, show(r))
    const columns = r.stdout
      .split('\n')
      .filter((l) => /^[A-Z][A-Za-z0-9]*: /.test(l))
      .map((l) => l.search(/: +\S/) + /: +/.exec(l)![0].length)
    assert.ok(r.stdout.includes('IPv6SubnetLen:'), r.stdout)
    assert.equal(new Set(columns).size, 1, r.stdout)
    // (through stdin: 1.2 MB does not fit in argv)
    const put = await etcd.etcdctl(
      ['put', '/big/config'],
      `{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"},"X":"${'a'.repeat(1_200_000)}"}`,
    )
    assert.equal(put.code, 0, put.stderr)
    const big = await runCli(['network', 'show', '--endpoints', etcd.endpoint, '--etcd-prefix', '/big'])
    const stored = big.stdout.split('\n').find((l) => l.startsWith('Stored:'))!
    assert.ok(stored.length < 400, `${stored.length} characters`)
    assert.match(stored, /… \(\d+ bytes in all; the whole config is in --json\)/)
  })

  test('malformed keys are listed in numeric order', async () => {
    for (const k of ['10.7.10.0-2x', '10.7.9.0-2x', '10.7.100.0-2x']) await putKey(etcd, `/order/subnets/${k}`, '{}')
    const r = await runCli(['leases', 'ls', '--endpoints', etcd.endpoint, '--etcd-prefix', '/order'])
    const keys = r.stderr
      .split('\n')
      .filter((l) => l.startsWith('  /order'))
      .map((l) => l.trim().split(':')[0])
    assert.deepEqual(keys, [
      '/order/subnets/10.7.9.0-2x',
      '/order/subnets/10.7.10.0-2x',
      '/order/subnets/10.7.100.0-2x',
    ])
  })

  test("network expand --help's example can succeed: its --to does not contain its --service-cidr", async () => {
    const r = await runCli(['network', 'expand', '--help'])
    const m = /--to (\S+) --service-cidr (\S+)/.exec(r.stdout)!
    assert.ok(m, r.stdout)
    const [to, svc] = [m[1]!, m[2]!]
    assert.notEqual(to, '10.0.0.0/8')
    assert.ok(!(to === '10.0.0.0/12' && svc.startsWith('10.0.')), `${to} ${svc}`)
  })
})

describe('a 100,000-character SUBNET', () => {
  test('is rejected at once (exit 2) with the value cut in the message', async () => {
    const r = await runCli(['leases', 'unreserve', '1'.repeat(100_000), '--endpoints', 'http://127.0.0.1:1'])
    assert.equal(r.code, 2, show(r))
    assert.match(r.stderr, /invalid subnet "1{64}… \(100000 characters\)"/)
  })
})

describe('network init input', {concurrency: true}, () => {
  const init = (...a: string[]) =>
    runCli(['network', 'init', '--endpoints', etcd.endpoint, '--etcd-prefix', '/init-in', '--dry-run', ...a])

  test('--ipv6-network with an IPv4 range says so (exit 2)', async () => {
    const r = await init('--network', '10.0.0.0/16', '--ipv6-network', '10.2.0.0/16')
    assert.equal(r.code, 2, show(r))
    assert.match(
      r.stderr,
      /--ipv6-network 10\.2\.0\.0\/16 is not an IPv6 CIDR such as fc00::\/48 \(the IPv4 range goes in --network\)/,
    )
  })

  test('a prefix length with leading zeros is written without them', async () => {
    const r = await init('--network', '10.0.0.0/08', '--json')
    assert.equal(r.code, 0, show(r))
    assert.match(r.stdout, /\\"Network\\":\\"10\.0\.0\.0\/8\\"/)
  })
})
