// doctor --local on a node set up inside a network namespace exactly as flanneld leaves it (docs/flannel.md
// §5, §6.1, §6.2), then broken one entry at a time. Underlay 198.18.0.0/24, flannel Network 198.19.0.0/16.

import assert from 'node:assert/strict'
import {execFile, execFileSync} from 'node:child_process'
import {mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, beforeEach, describe, test} from 'node:test'

import {parseCidr4} from '../../src/core/ipv4.js'
import {nftScript} from '../../src/core/masq.js'
import {cleanEnv, RUN_JS} from '../helpers/cli.js'
import {canUseNetns, createNetns, type Netns} from '../helpers/netns.js'

const ok = process.getuid?.() === 0 && canUseNetns()
const MAC = {me: '02:00:00:13:00:01', a: '02:00:00:13:00:02', b: '02:00:00:13:00:03'}
const VX = (ip: string, mac: string) =>
  `{"PublicIP":"${ip}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${mac}"}}`
const ENV = 'FLANNEL_NETWORK=198.19.0.0/16\nFLANNEL_SUBNET=198.19.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n'

let ns: Netns
let tmp: string
let snapshot: string
let subnetFile: string

function snapshotJson(kvs: Array<[string, string, number]>): string {
  const b = (s: string) => Buffer.from(s).toString('base64')
  const items = kvs.map(
    ([k, v, lease]) =>
      `{"key":"${b(k)}","create_revision":2,"mod_revision":2,"version":1,"value":"${b(v)}"${lease ? `,"lease":${lease}` : ''}}`,
  )
  return `{"header":{"revision":9},"kvs":[${items.join(',')}],"count":${items.length}}`
}

interface Finding {
  id: string
  subjects: string[]
  message: string
  hint: string
  commands?: Array<{argv: string[]; shell: string}>
}

/** Pastes a finding's suggested commands into a shell inside the namespace (what an operator on the node does). */
function paste(f: Finding, cwd: string): void {
  assert.ok(f.commands && f.commands.length > 0, `${f.id}: no commands in ${f.hint}`)
  for (const c of f.commands) ns.exec('sh', '-c', `cd ${JSON.stringify(cwd)} && ${c.shell}`)
}

function doctorLocal(
  extra: string[] = [],
  snap = () => snapshot,
): Promise<{code: number; findings: Finding[]; stderr: string}> {
  return new Promise((resolve, reject) => {
    execFile(
      'ip',
      [
        'netns',
        'exec',
        ns.name,
        process.execPath,
        RUN_JS,
        'doctor',
        '--local',
        '--snapshot',
        snap(),
        '--subnet-file',
        subnetFile,
        '--json',
        ...extra,
      ],
      {env: cleanEnv(), encoding: 'utf8', timeout: 30_000},
      (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') return reject(err)
        try {
          const j = JSON.parse(stdout) as {findings: Finding[]}
          resolve({code: err ? (err.code as number) : 0, findings: j.findings, stderr})
        } catch {
          reject(new Error(`not JSON: ${stdout}\n${stderr}`))
        }
      },
    )
  })
}

/** Builds the node: an underlay NIC, flannel.1 as flanneld creates it, and the entries for two peers. */
function setUpNode(): void {
  // no dummy driver on every kernel: a veth pair with both ends in the namespace stands in for the NIC
  ns.ip('link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'wire0')
  ns.ip('addr', 'add', '198.18.0.1/24', 'dev', 'eth0')
  ns.ip('link', 'set', 'wire0', 'up')
  ns.ip('link', 'set', 'eth0', 'up')
  ns.ip('route', 'add', 'default', 'via', '198.18.0.254', 'dev', 'eth0')
  ns.ip(
    'link',
    'add',
    'flannel.1',
    'address',
    MAC.me,
    'mtu',
    '1450',
    'type',
    'vxlan',
    'id',
    '1',
    'local',
    '198.18.0.1',
    'dev',
    'eth0',
    'nolearning',
    'dstport',
    '8472',
  )
  ns.ip('addr', 'add', '198.19.1.0/32', 'dev', 'flannel.1')
  ns.ip('link', 'set', 'flannel.1', 'up')
  for (const [n, mac] of [
    [2, MAC.a],
    [3, MAC.b],
  ] as const) {
    ns.ip('neigh', 'replace', `198.19.${n}.0`, 'lladdr', mac, 'dev', 'flannel.1', 'nud', 'permanent')
    ns.bridge('fdb', 'replace', mac, 'dev', 'flannel.1', 'dst', `198.18.0.${n}`, 'self', 'permanent')
    ns.ip('route', 'replace', `198.19.${n}.0/24`, 'via', `198.19.${n}.0`, 'dev', 'flannel.1', 'onlink')
  }
  ns.exec('sysctl', '-q', '-w', 'net.ipv4.ip_forward=1')
}

describe('doctor --local in a network namespace', {skip: ok ? false : 'needs root and ip netns'}, () => {
  before(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'flannelctl-local-'))
    snapshot = path.join(tmp, 'snap.json')
    subnetFile = path.join(tmp, 'subnet.env')
    await writeFile(
      snapshot,
      snapshotJson([
        ['/coreos.com/network/config', '{"Network":"198.19.0.0/16","Backend":{"Type":"vxlan"}}', 0],
        ['/coreos.com/network/subnets/198.19.1.0-24', VX('198.18.0.1', MAC.me), 11],
        ['/coreos.com/network/subnets/198.19.2.0-24', VX('198.18.0.2', MAC.a), 12],
        ['/coreos.com/network/subnets/198.19.3.0-24', VX('198.18.0.3', MAC.b), 13],
      ]),
    )
  })
  after(async () => {
    ns?.del()
    if (tmp) await rm(tmp, {recursive: true, force: true})
  })
  beforeEach(async () => {
    ns?.del()
    ns = createNetns('doctor')
    setUpNode()
    await writeFile(subnetFile, ENV)
  })

  test('a node as flanneld leaves it: no findings, exit 0', async () => {
    const r = await doctorLocal()
    assert.deepEqual(r.findings, [])
    assert.equal(r.code, 0, r.stderr)
  })

  const cases: Array<[string, () => void | Promise<void>, string, string]> = [
    ['route deleted', () => void ns.ip('route', 'del', '198.19.2.0/24'), 'route-missing', '198.19.2.0/24'],
    [
      'neighbour deleted',
      () => void ns.ip('neigh', 'del', '198.19.3.0', 'dev', 'flannel.1'),
      'neigh-missing',
      '198.19.3.0/24',
    ],
    [
      'FDB entry deleted',
      () => void ns.bridge('fdb', 'del', MAC.a, 'dev', 'flannel.1', 'dst', '198.18.0.2', 'self'),
      'fdb-missing',
      '198.19.2.0/24',
    ],
    [
      'stale route left behind',
      () => void ns.ip('route', 'add', '198.19.9.0/24', 'via', '198.19.9.0', 'dev', 'flannel.1', 'onlink'),
      'route-stale',
      '198.19.9.0/24',
    ],
    ['device MTU changed', () => void ns.ip('link', 'set', 'flannel.1', 'mtu', '1400'), 'device-mtu', 'flannel.1'],
    [
      'device address replaced',
      () =>
        void (
          ns.ip('addr', 'del', '198.19.1.0/32', 'dev', 'flannel.1'),
          ns.ip('addr', 'add', '198.19.1.0/16', 'dev', 'flannel.1')
        ),
      'device-address',
      'flannel.1',
    ],
    ['device deleted', () => void ns.ip('link', 'del', 'flannel.1'), 'device-missing', 'flannel.1'],
    [
      'ip_forward off',
      () => void ns.exec('sysctl', '-q', '-w', 'net.ipv4.ip_forward=0'),
      'ip-forward-off',
      'net.ipv4.ip_forward',
    ],
    ['subnet.env removed', () => rm(subnetFile), 'subnet-env-missing', ''],
    [
      'subnet.env from before an expansion',
      () => writeFile(subnetFile, ENV.replace('198.19.0.0/16', '198.19.0.0/17')),
      'subnet-env-stale-network',
      '',
    ],
    [
      "subnet.env holding another node's subnet",
      () => writeFile(subnetFile, ENV.replace('198.19.1.1/24', '198.19.2.1/24')),
      'subnet-env-foreign',
      '198.19.2.0/24',
    ],
  ]
  for (const [what, breakIt, id, subject] of cases) {
    test(`${what}: ${id}`, async () => {
      await breakIt()
      const r = await doctorLocal()
      const hit = r.findings.filter((f) => f.id === id)
      assert.equal(hit.length, 1, JSON.stringify(r.findings))
      if (subject) assert.deepEqual(hit[0]!.subjects, [subject])
      else assert.deepEqual(hit[0]!.subjects, [subnetFile])
      if (id !== 'route-stale' && id !== 'subnet-env-stale-network') assert.equal(r.code, 5)
      // Where the hint is the whole fix, pasting its commands on the node makes the finding go away.
      if (
        ['route-missing', 'neigh-missing', 'fdb-missing', 'route-stale', 'device-mtu', 'ip-forward-off'].includes(id)
      ) {
        paste(hit[0]!, tmp)
        const again = await doctorLocal()
        assert.deepEqual(
          again.findings.filter((f) => f.id === id),
          [],
          `after ${hit[0]!.commands!.map((c) => c.shell).join('; ')}`,
        )
      }
    })
  }

  test("EnableNFTables: flanneld's nftables masquerade set is read from the namespace and judged", async () => {
    const nftSnap = path.join(tmp, 'snap-nft.json')
    await writeFile(
      nftSnap,
      (await readFile(snapshot, 'utf8')).replace(
        Buffer.from('{"Network":"198.19.0.0/16","Backend":{"Type":"vxlan"}}').toString('base64'),
        Buffer.from('{"Network":"198.19.0.0/16","EnableNFTables":true,"Backend":{"Type":"vxlan"}}').toString('base64'),
      ),
    )
    await writeFile(subnetFile, ENV.replace('FLANNEL_IPMASQ=false', 'FLANNEL_IPMASQ=true'))
    const N = parseCidr4('198.19.0.0/16')!
    const S = parseCidr4('198.19.1.0/24')!
    execFileSync('ip', ['netns', 'exec', ns.name, 'nft', '-f', '-'], {input: nftScript(N, S, true, true, true)})
    const ok = await doctorLocal([], () => nftSnap)
    assert.deepEqual(
      ok.findings.filter((f) => f.id.startsWith('masq-')).map((f) => f.id),
      ['masq-rule-set'],
      JSON.stringify(ok.findings),
    )
    assert.equal(ok.code, 0, ok.stderr)
    ns.exec('nft', 'flush', 'chain', 'ip', 'flannel-ipv4', 'postrtg')
    const flushed = await doctorLocal([], () => nftSnap)
    assert.ok(
      flushed.findings.some((f) => f.id === 'masq-rules-missing'),
      JSON.stringify(flushed.findings),
    )
    assert.equal(flushed.code, 5)
    ns.exec('nft', 'delete', 'table', 'ip', 'flannel-ipv4')
    const gone = await doctorLocal([], () => nftSnap)
    assert.ok(gone.findings.some((f) => f.id === 'masq-rules-missing' && / does not exist/.test(f.message)))
  })

  test('the device reports the wrong local address when the node address is another one', async () => {
    const r = await doctorLocal(['--public-ip', '198.18.0.9'])
    assert.ok(
      r.findings.some((f) => f.id === 'device-local-ip'),
      JSON.stringify(r.findings),
    )
  })
})

describe(
  'doctor --local with a hostile interface name (host-gw)',
  {skip: ok ? false : 'needs root and ip netns'},
  () => {
    // Linux accepts this as an interface name; a hint built by concatenation would run `touch P` when pasted.
    const NIC = '$(touch${IFS}P)'
    let hgSnapshot: string
    before(async () => {
      tmp = await mkdtemp(path.join(os.tmpdir(), 'flannelctl-local-hg-'))
      hgSnapshot = path.join(tmp, 'snap.json')
      subnetFile = path.join(tmp, 'subnet.env')
      const HG = (ip: string) => `{"PublicIP":"${ip}","PublicIPv6":null,"BackendType":"host-gw"}`
      await writeFile(
        hgSnapshot,
        snapshotJson([
          ['/coreos.com/network/config', '{"Network":"198.19.0.0/16","Backend":{"Type":"host-gw"}}', 0],
          ['/coreos.com/network/subnets/198.19.1.0-24', HG('198.18.0.1'), 11],
          ['/coreos.com/network/subnets/198.19.2.0-24', HG('198.18.0.2'), 12],
        ]),
      )
      await writeFile(subnetFile, ENV)
      ns = createNetns('doctor-hg')
      ns.ip('link', 'add', NIC, 'type', 'veth', 'peer', 'name', 'wire0')
      ns.ip('addr', 'add', '198.18.0.1/24', 'dev', NIC)
      ns.ip('link', 'set', 'wire0', 'up')
      ns.ip('link', 'set', NIC, 'up')
      ns.ip('route', 'add', 'default', 'via', '198.18.0.254', 'dev', NIC)
      ns.exec('sysctl', '-q', '-w', 'net.ipv4.ip_forward=1')
    })
    after(async () => {
      ns?.del()
      if (tmp) await rm(tmp, {recursive: true, force: true})
    })

    test('the route hint names the interface as one argument; pasted, it adds the route and runs nothing else', async () => {
      const r = await doctorLocal([], () => hgSnapshot)
      const hit = r.findings.filter((f) => f.id === 'route-missing')
      assert.equal(hit.length, 1, JSON.stringify(r.findings))
      assert.deepEqual(hit[0]!.commands![0]!.argv, [
        'ip',
        'route',
        'replace',
        '198.19.2.0/24',
        'via',
        '198.18.0.2',
        'dev',
        NIC,
      ])
      paste(hit[0]!, tmp)
      assert.match(ns.ip('route', 'show', '198.19.2.0/24'), /via 198\.18\.0\.2 dev \$\(touch\$\{IFS\}P\)/)
      assert.deepEqual((await readdir(tmp)).sort(), ['snap.json', 'subnet.env'])
      const again = await doctorLocal([], () => hgSnapshot)
      assert.deepEqual(again.findings, [])
      assert.equal(again.code, 0, again.stderr)
    })
  },
)
