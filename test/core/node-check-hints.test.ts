// doctor --local's suggested commands are built as argv and shell-quoted (core/hints.ts), like the keyspace hints:
// interface names come from the kernel, and Linux allows `$(...)`, quotes, backquotes, `;` and a leading `-` in them.
// Every command of every node finding passes `sh -n` and, run by a shell against stub programs on PATH, receives
// exactly its argv; the human hint shows the same shell text; nothing else runs.

import assert from 'node:assert/strict'
import {execFile} from 'node:child_process'
import {chmod, mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, test} from 'node:test'
import {promisify} from 'node:util'

import {clusterChecks, type Finding} from '../../src/core/doctor.js'
import {hintContext} from '../../src/core/hints.js'
import {parseCidr4, parseIPv4} from '../../src/core/ipv4.js'
import {keyLayout} from '../../src/core/keys.js'
import {classifyKeys, type RawKV} from '../../src/core/leases.js'
import {nodeChecks, type NodeObservation} from '../../src/core/node-checks.js'

const run = promisify(execFile)
const layout = keyLayout('/coreos.com/network')
const ip = (s: string) => parseIPv4(s)!

function kv(seg: string, value: string, lease = '100'): RawKV {
  return {
    key: seg.startsWith('/') ? seg : `/coreos.com/network/subnets/${seg}`,
    value,
    createRevision: '2',
    modRevision: '2',
    version: '1',
    lease,
  }
}

const vx = (pub: string, mac: string) =>
  `{"PublicIP":"${pub}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${mac}"}}`
const hg = (pub: string) => `{"PublicIP":"${pub}","PublicIPv6":null,"BackendType":"host-gw"}`

function ctxFor(config: string, leases: Array<[string, string]>) {
  const all = [kv('/coreos.com/network/config', config, '0'), ...leases.map(([k, v]) => kv(k, v))]
  return clusterChecks({layout, snapshot: classifyKeys(layout, all, '42'), ttls: null, renewMarginSeconds: 3600})
    .context
}

/** Interface names the kernel accepts (at most 15 bytes, no `/`, `:` or whitespace) that a shell would act on. */
const HOSTILE_IFACES = ['$(touch${IFS}P)', 'a\'b"c', '`touch`P', 'x;touch>P', '-rf', 'a&&b|c', '*', '~root', '\\$x']

const ENV = 'FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n'

function vxlanNode(): Finding[] {
  const ctx = ctxFor('{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}', [
    ['10.5.1.0-24', vx('198.18.0.1', '02:00:00:00:01:01')],
    ['10.5.2.0-24', vx('198.18.0.2', '02:00:00:00:01:02')],
  ])
  const obs: NodeObservation = {
    subnetFile: '/run/flannel/subnet.env',
    subnetEnvText: ENV,
    publicIP: ip('198.18.0.1'),
    publicIPSource: 'test',
    ifaceMtu: 1500,
    // Wrong MTU, a second address, a `local` that is not the host's: device-mtu, device-address, device-local-ip.
    device: {
      name: 'flannel.1',
      mtu: 1400,
      mac: '02:00:00:00:01:01',
      up: true,
      vxlan: {id: 1, local: '198.18.9.9', port: 8472, learning: false, gbp: false},
      addresses: [
        {ip: ip('10.5.1.0'), prefix: 32},
        {ip: ip('10.5.1.7'), prefix: 32},
      ],
    },
    // No route, neighbour or FDB entry for 10.5.2.0/24; a route to a subnet nobody holds.
    routes: [{dst: parseCidr4('10.5.9.0/24')!, gateway: ip('10.5.9.0'), dev: 'flannel.1', onlink: true}],
    neighs: [],
    fdb: [],
    ipForward: false,
    iptablesNat: '-P POSTROUTING ACCEPT',
    iptablesFilter: '-P FORWARD DROP',
    ifaceAddress: ip('198.18.0.1'),
    hostAddresses: [ip('127.0.0.1'), ip('198.18.0.1')],
  }
  return nodeChecks(obs, ctx, null, hintContext({endpoints: 'http://127.0.0.1:2379', prefix: "/it's $(x)"}))
}

function hostGwNode(iface: string): Finding[] {
  const ctx = ctxFor('{"Network":"10.5.0.0/16","Backend":{"Type":"host-gw"}}', [
    ['10.5.1.0-24', hg('198.18.0.1')],
    ['10.5.2.0-24', hg('198.18.0.2')],
  ])
  return nodeChecks(
    {
      subnetFile: '/run/flannel/subnet.env',
      subnetEnvText: ENV,
      publicIP: ip('198.18.0.1'),
      publicIPSource: 'test',
      ifaceMtu: 1500,
      ifaceName: iface,
      device: null,
      routes: [{dst: parseCidr4('198.18.0.0/24')!, gateway: null, dev: iface, onlink: false}],
      neighs: [],
      fdb: [],
      ipForward: true,
    },
    ctx,
  )
}

function otherNodes(): Finding[] {
  const nft = ctxFor('{"Network":"10.5.0.0/16","EnableNFTables":true,"Backend":{"Type":"vxlan"}}', [])
  const base = {
    subnetFile: '/run/flannel/subnet.env',
    publicIP: ip('198.18.0.1'),
    publicIPSource: 'test',
    ifaceMtu: 1500,
    device: null,
    routes: [],
    neighs: [],
    fdb: [],
    ipForward: true,
  }
  return [
    ...nodeChecks({...base, subnetEnvText: ENV}, nft),
    ...nodeChecks({...base, subnetEnvText: null}, nft),
    ...nodeChecks({...base, subnetEnvText: 'FLANNEL_NETWORK=x\n'}, nft),
  ]
}

let tmp: string
let bin: string

before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'flannelctl-node-hints-'))
  bin = path.join(tmp, 'bin')
  await run('mkdir', ['-p', bin])
  // Stubs that record their argv (NUL-separated) instead of acting.
  for (const name of ['ip', 'bridge', 'iptables', 'sysctl', 'nft', 'journalctl', 'flannelctl']) {
    const stub = path.join(bin, name)
    await writeFile(stub, `#!/bin/sh\nprintf '%s\\0' "${name}" "$@" >> "$STUB_OUT"\n`, 'utf8')
    await chmod(stub, 0o755)
  }
})

after(async () => {
  await rm(tmp, {recursive: true, force: true})
})

/** Runs every command of `findings` through sh against the stubs; returns the finding IDs that had commands. */
async function checkCommands(findings: Finding[]): Promise<Set<string>> {
  const ids = new Set<string>()
  for (const f of findings) {
    for (const c of f.commands ?? []) {
      ids.add(f.id)
      assert.ok(f.hint.includes(c.shell), `${f.id}: the hint shows the command: ${f.hint}`)
      await run('sh', ['-n', '-c', c.shell])
      const out = path.join(tmp, 'argv')
      await rm(out, {force: true})
      await run('sh', ['-c', c.shell], {cwd: tmp, env: {PATH: `${bin}:/usr/bin:/bin`, STUB_OUT: out}})
      const got = (await readFile(out, 'utf8')).split('\0').slice(0, -1)
      assert.deepEqual(got, c.argv, `${f.id}: ${c.shell}`)
    }
    // The whole hint, where it is commands joined by && and prose in parentheses, also parses.
    if (f.id === 'forward-policy-drop') {
      const [a, b] = f.commands!
      assert.ok(f.hint.startsWith(`${a!.shell} && ${b!.shell} (`), f.hint)
    }
  }
  assert.deepEqual(
    (await readdir(tmp)).filter((x) => x !== 'bin' && x !== 'argv'),
    [],
    'a hint ran something besides its program',
  )
  return ids
}

describe('doctor --local hints are argv, shell-quoted', () => {
  test('vxlan node: ip, bridge, sysctl and iptables commands split into exactly their argv', async () => {
    const fs = vxlanNode()
    const ids = await checkCommands(fs)
    for (const id of [
      'device-mtu',
      'device-address',
      'device-local-ip',
      'route-missing',
      'neigh-missing',
      'fdb-missing',
      'route-stale',
      'ip-forward-off',
      'forward-policy-drop',
    ])
      assert.ok(ids.has(id), `no commands for ${id}: ${JSON.stringify(fs.map((f) => f.id))}`)
    const fdb = fs.find((f) => f.id === 'fdb-missing')!
    assert.deepEqual(fdb.commands![0]!.argv, [
      'bridge',
      'fdb',
      'replace',
      '02:00:00:00:01:02',
      'dev',
      'flannel.1',
      'dst',
      '198.18.0.2',
      'self',
      'permanent',
    ])
    // Plain words stay bare: the hint reads as before for ordinary names.
    assert.equal(fdb.hint, 'bridge fdb replace 02:00:00:00:01:02 dev flannel.1 dst 198.18.0.2 self permanent')
  })

  for (const iface of HOSTILE_IFACES) {
    test(`host-gw route through an interface named ${JSON.stringify(iface)}`, async () => {
      const fs = hostGwNode(iface)
      const ids = await checkCommands(fs)
      assert.ok(ids.has('route-missing'), JSON.stringify(fs))
      const route = fs.find((f) => f.id === 'route-missing')!
      assert.deepEqual(route.commands![0]!.argv, [
        'ip',
        'route',
        'replace',
        '10.5.2.0/24',
        'via',
        '198.18.0.2',
        'dev',
        iface,
      ])
    })
  }

  test('nftables, a missing and an invalid subnet.env: nft, journalctl and flannelctl commands', async () => {
    const fs = otherNodes()
    const ids = await checkCommands(fs)
    for (const id of ['masq-rule-set', 'subnet-env-missing', 'subnet-env-invalid'])
      assert.ok(ids.has(id), `no commands for ${id}: ${JSON.stringify(fs.map((f) => f.id))}`)
  })

  test('flannelctl commands in node hints carry the connection flags', () => {
    const f = vxlanNode()
    assert.ok(f.every((x) => !x.commands || x.commands.every((c) => c.argv[0] !== 'flannelctl')))
    const invalid = nodeChecks(
      {
        subnetFile: '/run/flannel/subnet.env',
        subnetEnvText: 'FLANNEL_NETWORK=x\n',
        publicIP: ip('198.18.0.1'),
        publicIPSource: 'test',
        ifaceMtu: 1500,
        device: null,
        routes: [],
        neighs: [],
        fdb: [],
        ipForward: true,
      },
      ctxFor('{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}', []),
      null,
      hintContext({endpoints: 'http://127.0.0.1:2379', prefix: "/it's $(x)"}),
    ).find((x) => x.id === 'subnet-env-invalid')!
    assert.deepEqual(invalid.commands![0]!.argv, [
      'flannelctl',
      'subnet-env',
      '--public-ip',
      '198.18.0.1',
      '--endpoints',
      'http://127.0.0.1:2379',
      '--etcd-prefix',
      "/it's $(x)",
    ])
  })
})
