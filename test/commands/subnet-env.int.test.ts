// subnet-env against a real etcd: /run/flannel/subnet.env byte for byte as flanneld writes it (docs/flannel.md §5).

import {after, before, describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {startEtcd, type EtcdServer} from '../helpers/etcd.js'
import {hostGwValue, json, putKey, putSubnet, runCli, show, vxlanValue} from '../helpers/cli.js'

let etcd: EtcdServer
let tmp: string
let ep: string[]

const VXLAN_ENV = 'FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.34.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n'

/** One network per prefix, each with the leases its tests need. */
async function network(prefix: string, config: string, leases: Array<[seg: string, value: string]>): Promise<void> {
  await Promise.all([
    putKey(etcd, `${prefix}/config`, config),
    ...leases.map(([seg, v]) => putSubnet(etcd, `${prefix}/subnets/${seg}`, v)),
  ])
}

before(async () => {
  ;[etcd, tmp] = await Promise.all([startEtcd(), mkdtemp(path.join(os.tmpdir(), 'flannelctl-subnet-env-'))])
  ep = ['--endpoints', etcd.endpoint]
  await Promise.all([
    network('/coreos.com/network', '{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}', [
      ['10.5.34.0-24', vxlanValue('192.168.1.12', 'c6:d2:32:6f:8f:44')],
      ['10.5.9.0-24', vxlanValue('192.168.1.9', 'c6:d2:32:6f:8f:09')],
      // Two nodes with the same PublicIP (VirtualBox NAT): flanneld reuses the first in key order.
      ['10.5.97.0-24', vxlanValue('10.0.2.15', 'aa:aa:aa:aa:aa:97')],
      ['10.5.52.0-24', vxlanValue('10.0.2.15', 'aa:aa:aa:aa:aa:52')],
    ]),
    network('/hostgw', '{"Network":"10.20.0.0/16","Backend":{"Type":"host-gw"}}', [
      ['10.20.7.0-24', hostGwValue('192.168.2.7')],
    ]),
    network('/vxlan-mtu', '{"Network":"10.21.0.0/16","Backend":{"Type":"vxlan","MTU":1400}}', [
      ['10.21.7.0-24', vxlanValue('192.168.2.7', 'c6:d2:32:6f:8f:07')],
    ]),
    network('/udp', '{"Network":"10.22.0.0/16","Backend":{"Type":"udp"}}', [
      ['10.22.7.0-24', '{"PublicIP":"192.168.2.7","PublicIPv6":null}'],
    ]),
    network('/small', '{"Network":"10.23.0.0/24","Backend":{"Type":"vxlan"}}', [
      ['10.23.0.64-26', vxlanValue('192.168.2.7', 'c6:d2:32:6f:8f:07')],
    ]),
    network(
      '/dual',
      '{"Network":"10.42.0.0/16","EnableIPv6":true,"IPv6Network":"2001:cafe:42::/56","Backend":{"Type":"vxlan"}}',
      [
        [
          '10.42.0.0-24&2001:cafe:42::-64',
          '{"PublicIP":"192.168.3.1","PublicIPv6":"fd00::1","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:01"},"BackendV6Data":{"VNI":1,"VtepMAC":"7a:11:02:33:44:55"}}',
        ],
      ],
    ),
    // A config with no leases, and a lease under a broken config.
    network('/nolease', '{"Network":"10.24.0.0/16","Backend":{"Type":"vxlan"}}', []),
    network('/broken', '{"Network":"10.25.0.0/29","Backend":{"Type":"vxlan"}}', [
      ['10.25.0.4-30', vxlanValue('192.168.2.7', 'c6:d2:32:6f:8f:07')],
    ]),
  ])
})

after(async () => {
  await etcd?.stop()
  if (tmp) await rm(tmp, {recursive: true, force: true})
})

const env = (...args: string[]) => runCli(['subnet-env', ...ep, ...args])

describe('subnet-env output', {concurrency: true}, () => {
  test('vxlan: byte-exact, by --public-ip and by --subnet', async () => {
    const [byIp, bySubnet] = await Promise.all([env('--public-ip', '192.168.1.12'), env('--subnet', '10.5.34.0/24')])
    assert.equal(byIp.code, 0, show(byIp))
    assert.equal(byIp.stdout, VXLAN_ENV)
    assert.equal(byIp.stderr, '')
    assert.equal(bySubnet.code, 0, show(bySubnet))
    assert.equal(bySubnet.stdout, VXLAN_ENV)
  })

  test('MTU per backend: host-gw = interface MTU, udp − 28, vxlan − 50, Backend.MTU honoured', async () => {
    const [hg, hg9000, udp, vxMtu, vxMtuIface, vx9000] = await Promise.all([
      runCli(['subnet-env', ...ep, '--etcd-prefix', '/hostgw', '--public-ip', '192.168.2.7']),
      runCli(['subnet-env', ...ep, '--etcd-prefix', '/hostgw', '--public-ip', '192.168.2.7', '--iface-mtu', '9000']),
      runCli(['subnet-env', ...ep, '--etcd-prefix', '/udp', '--public-ip', '192.168.2.7']),
      runCli(['subnet-env', ...ep, '--etcd-prefix', '/vxlan-mtu', '--public-ip', '192.168.2.7']),
      runCli(['subnet-env', ...ep, '--etcd-prefix', '/vxlan-mtu', '--public-ip', '192.168.2.7', '--iface-mtu', '9000']),
      env('--public-ip', '192.168.1.12', '--iface-mtu', '9000'),
    ])
    for (const r of [hg, hg9000, udp, vxMtu, vxMtuIface, vx9000]) assert.equal(r.code, 0, show(r))
    assert.equal(
      hg.stdout,
      'FLANNEL_NETWORK=10.20.0.0/16\nFLANNEL_SUBNET=10.20.7.1/24\nFLANNEL_MTU=1500\nFLANNEL_IPMASQ=false\n',
    )
    assert.equal(
      hg9000.stdout,
      'FLANNEL_NETWORK=10.20.0.0/16\nFLANNEL_SUBNET=10.20.7.1/24\nFLANNEL_MTU=9000\nFLANNEL_IPMASQ=false\n',
    )
    assert.equal(
      udp.stdout,
      'FLANNEL_NETWORK=10.22.0.0/16\nFLANNEL_SUBNET=10.22.7.1/24\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=false\n',
    )
    assert.equal(
      vxMtu.stdout,
      'FLANNEL_NETWORK=10.21.0.0/16\nFLANNEL_SUBNET=10.21.7.1/24\nFLANNEL_MTU=1350\nFLANNEL_IPMASQ=false\n',
    )
    // Backend.MTU wins over the interface MTU.
    assert.equal(vxMtuIface.stdout, vxMtu.stdout)
    assert.equal(vx9000.stdout, VXLAN_ENV.replace('FLANNEL_MTU=1450', 'FLANNEL_MTU=8950'))
  })

  test('--ip-masq and --mtu', async () => {
    const [masq, mtu] = await Promise.all([
      env('--public-ip', '192.168.1.12', '--ip-masq'),
      env('--subnet', '10.5.34.0/24', '--mtu', '1234'),
    ])
    assert.equal(masq.code, 0, show(masq))
    assert.equal(masq.stdout, VXLAN_ENV.replace('FLANNEL_IPMASQ=false', 'FLANNEL_IPMASQ=true'))
    assert.equal(mtu.code, 0, show(mtu))
    assert.equal(mtu.stdout, VXLAN_ENV.replace('FLANNEL_MTU=1450', 'FLANNEL_MTU=1234'))
  })

  test("FLANNEL_SUBNET keeps the subnet's own prefix length; dual-stack adds the IPv6 lines", async () => {
    const [small, dual] = await Promise.all([
      runCli(['subnet-env', ...ep, '--etcd-prefix', '/small', '--subnet', '10.23.0.64/26']),
      runCli(['subnet-env', ...ep, '--etcd-prefix', '/dual', '--public-ip', '192.168.3.1', '--ip-masq']),
    ])
    assert.equal(small.code, 0, show(small))
    assert.equal(
      small.stdout,
      'FLANNEL_NETWORK=10.23.0.0/24\nFLANNEL_SUBNET=10.23.0.65/26\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n',
    )
    assert.equal(dual.code, 0, show(dual))
    assert.equal(
      dual.stdout,
      'FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET=10.42.0.1/24\nFLANNEL_IPV6_NETWORK=2001:cafe:42::/56\nFLANNEL_IPV6_SUBNET=2001:cafe:42::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n',
    )
  })

  test('a shared PublicIP picks the first lease in key order, as flanneld does, and warns', async () => {
    const r = await env('--public-ip', '10.0.2.15')
    assert.equal(r.code, 0, show(r))
    // "10.5.52.0-24" < "10.5.97.0-24" in key order.
    assert.equal(
      r.stdout,
      'FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.52.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n',
    )
    assert.match(r.stderr, /^warning: 2 leases match; using \/coreos\.com\/network\/subnets\/10\.5\.52\.0-24/)
    assert.match(r.stderr, /10\.5\.97\.0-24/)
  })

  test('--json gives the content and the lease it came from', async () => {
    const r = await env('--public-ip', '192.168.1.12', '--json')
    assert.equal(r.code, 0, show(r))
    const j = json(r)
    assert.equal(j.content, VXLAN_ENV)
    assert.equal(j.subnet, '10.5.34.0/24')
    assert.equal(j.publicIP, '192.168.1.12')
    assert.equal(j.key, '/coreos.com/network/subnets/10.5.34.0-24')
    assert.equal(j.written, null)
  })

  test('--snapshot renders the same bytes offline', async () => {
    const dump = await etcd.etcdctl(['get', '--prefix', '/coreos.com/network', '-w', 'json'])
    const file = path.join(tmp, 'snap.json')
    await writeFile(file, dump.stdout)
    const r = await runCli(['subnet-env', '--snapshot', file, '--public-ip', '192.168.1.12'], {
      env: {ETCDCTL_ENDPOINTS: 'http://127.0.0.1:1'},
    })
    assert.equal(r.code, 0, show(r))
    assert.equal(r.stdout, VXLAN_ENV)
  })
})

describe('subnet-env --write', () => {
  test('writes the same bytes atomically, mode 0644 whatever the umask, no temp file left', async () => {
    const dir = path.join(tmp, 'run', 'flannel') // does not exist yet: created like MkdirAll(dir, 0755)
    const file = path.join(dir, 'subnet.env')
    const oldUmask = process.umask(0o077) // inherited by the CLI: a 0644 file proves the umask is ignored
    let r
    try {
      r = await env('--public-ip', '192.168.1.12', '--write', file)
    } finally {
      process.umask(oldUmask)
    }
    assert.equal(r.code, 0, show(r))
    assert.equal(r.stdout, VXLAN_ENV, 'still printed to stdout')
    assert.match(r.stderr, new RegExp(`wrote ${file}`))
    assert.equal(await readFile(file, 'utf8'), VXLAN_ENV)
    assert.equal((await stat(file)).mode & 0o777, 0o644)
    assert.deepEqual(await readdir(dir), ['subnet.env'])
  })

  test('replaces an existing file (rename over it), leaving only the target', async () => {
    const dir = path.join(tmp, 'replace')
    const file = path.join(dir, 'subnet.env')
    await mkdir(dir)
    await writeFile(file, 'FLANNEL_NETWORK=old\n', {mode: 0o600})
    const before = await stat(file)
    const r = await env('--subnet', '10.5.34.0/24', '--ip-masq', '--write', file, '--json')
    assert.equal(r.code, 0, show(r))
    assert.equal(json(r).written, file)
    const expected = VXLAN_ENV.replace('FLANNEL_IPMASQ=false', 'FLANNEL_IPMASQ=true')
    assert.equal(json(r).content, expected)
    assert.equal(await readFile(file, 'utf8'), expected)
    const after = await stat(file)
    assert.notEqual(after.ino, before.ino, 'a new inode renamed over the old file, not an in-place rewrite')
    assert.equal(after.mode & 0o777, 0o644)
    assert.deepEqual(await readdir(dir), ['subnet.env'])
  })

  test('an unwritable --write path → exit 71 (an environment failure, not a usage error) naming it, nothing left behind', async () => {
    const blocker = path.join(tmp, 'a-file')
    await writeFile(blocker, 'x')
    const target = path.join(blocker, 'subnet.env') // a directory that is a file
    const r = await env('--public-ip', '192.168.1.12', '--write', target)
    assert.equal(r.code, 71, show(r))
    assert.ok(r.stderr.includes(target), r.stderr)
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace')
    assert.equal(await readFile(blocker, 'utf8'), 'x')
  })
})

describe('subnet-env failures', {concurrency: true}, () => {
  test('no lease for that IP or subnet → exit 4', async () => {
    const [ip, sub, none, ipJson] = await Promise.all([
      env('--public-ip', '1.2.3.4'),
      env('--subnet', '10.5.99.0/24'),
      runCli(['subnet-env', ...ep, '--etcd-prefix', '/nolease', '--public-ip', '192.168.1.12']),
      env('--public-ip', '1.2.3.4', '--json'),
    ])
    assert.equal(ip.code, 4, show(ip))
    assert.equal(ip.stdout, '')
    assert.match(ip.stderr, /^Error: no lease for PublicIP 1\.2\.3\.4 under \/coreos\.com\/network\/subnets\n/)
    assert.equal(sub.code, 4, show(sub))
    assert.match(sub.stderr, /no lease for subnet 10\.5\.99\.0\/24/)
    assert.equal(none.code, 4, show(none))
    assert.equal(ipJson.code, 4, show(ipJson))
    assert.equal(json(ipJson).error.code, 'LEASE_NOT_FOUND')
    assert.equal(json(ipJson).error.exitCode, 4)
  })

  test('both or neither of --public-ip/--subnet → exit 2 naming the flags', async () => {
    const [both, neither, bothJson] = await Promise.all([
      env('--public-ip', '192.168.1.12', '--subnet', '10.5.34.0/24'),
      env(),
      env('--public-ip', '192.168.1.12', '--subnet', '10.5.34.0/24', '--json'),
    ])
    for (const r of [both, neither]) {
      assert.equal(r.code, 2, show(r))
      assert.equal(r.stdout, '')
      assert.match(r.stderr, /--public-ip/)
      assert.match(r.stderr, /--subnet/)
    }
    assert.equal(bothJson.code, 2, show(bothJson))
    assert.equal(json(bothJson).error.exitCode, 2)
    assert.match(json(bothJson).error.message, /--public-ip.*--subnet|--subnet.*--public-ip/)
  })

  test('invalid values and a missing or broken config → exit 2 / 4 with the reason', async () => {
    const [badIp, badSub, noConfig, broken, conflictingMtu] = await Promise.all([
      env('--public-ip', '999.1.1.1'),
      env('--subnet', 'nope'),
      runCli(['subnet-env', ...ep, '--etcd-prefix', '/no/such/net', '--public-ip', '192.168.1.12']),
      runCli(['subnet-env', ...ep, '--etcd-prefix', '/broken', '--public-ip', '192.168.2.7']),
      env('--public-ip', '192.168.1.12', '--mtu', '1400', '--iface-mtu', '9000'),
    ])
    assert.equal(badIp.code, 2, show(badIp))
    assert.match(badIp.stderr, /999\.1\.1\.1/)
    assert.equal(badSub.code, 2, show(badSub))
    assert.match(badSub.stderr, /nope/)
    assert.equal(noConfig.code, 4, show(noConfig))
    assert.match(noConfig.stderr, /\/no\/such\/net\/config/)
    assert.equal(broken.code, 2, show(broken))
    assert.match(broken.stderr, /network is too small\. Minimum useful network prefix is \/28/)
    assert.equal(conflictingMtu.code, 2, show(conflictingMtu))
    assert.match(conflictingMtu.stderr, /--mtu/)
  })
})
