// network show / validate / init against a real etcd, through bin/run.js.

import {after, before, describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {chmod, mkdtemp, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {startEtcd, type EtcdServer} from '../helpers/etcd.js'
import {getKey, hostGwValue, json, putKey, putSubnet, runCli, show, vxlanValue} from '../helpers/cli.js'

const VXLAN_CONFIG = '{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}'

let etcd: EtcdServer
let tmp: string
/** --endpoints for the test etcd. */
let ep: string[]

before(async () => {
  ;[etcd, tmp] = await Promise.all([startEtcd(), mkdtemp(path.join(os.tmpdir(), 'flannelctl-network-'))])
  ep = ['--endpoints', etcd.endpoint]
  const p = '/coreos.com/network'
  await Promise.all([
    putKey(etcd, `${p}/config`, VXLAN_CONFIG),
    // Three leases in [SubnetMin, SubnetMax], one below SubnetMin (10.5.0.0/24 is never handed out) and one key
    // flanneld cannot parse: capacity counts 3.
    putSubnet(etcd, `${p}/subnets/10.5.9.0-24`, vxlanValue('192.168.1.9', 'c6:d2:32:6f:8f:09')),
    putSubnet(etcd, `${p}/subnets/10.5.10.0-24`, vxlanValue('192.168.1.10', 'c6:d2:32:6f:8f:10')),
    putSubnet(etcd, `${p}/subnets/10.5.34.0-24`, vxlanValue('192.168.1.12', 'c6:d2:32:6f:8f:44')),
    putSubnet(etcd, `${p}/subnets/10.5.0.0-24`, vxlanValue('192.168.1.99', 'c6:d2:32:6f:8f:99'), {lease: null}),
    putKey(etcd, `${p}/subnets/garbage`, 'not a lease'),
    // A second network under a custom prefix: explicit SubnetLen, host-gw, two leases.
    putKey(etcd, '/custom/net/config', '{"Network":"10.6.0.0/16","SubnetLen":26,"Backend":{"Type":"host-gw"}}'),
    putSubnet(etcd, '/custom/net/subnets/10.6.0.64-26', hostGwValue('10.0.0.1')),
    putSubnet(etcd, '/custom/net/subnets/10.6.0.128-26', hostGwValue('10.0.0.2')),
    // Dual-stack.
    putKey(
      etcd,
      '/dual/config',
      '{"Network":"10.7.0.0/16","EnableIPv6":true,"IPv6Network":"fc00::/48","Backend":{"Type":"vxlan"}}',
    ),
    // Invalid configs flanneld refuses.
    putKey(etcd, '/invalid/small/config', '{"Network":"10.5.0.0/29","Backend":{"Type":"vxlan"}}'),
    putKey(etcd, '/invalid/json/config', '{"Network":'),
  ])
})

after(async () => {
  await etcd?.stop()
  if (tmp) await rm(tmp, {recursive: true, force: true})
})

/** The value lines of the human output ("SubnetLen:    24 (default)" → ["SubnetLen", "24 (default)"]). */
function fields(stdout: string): Map<string, string> {
  const out = new Map<string, string>()
  for (const line of stdout.split('\n')) {
    const m = /^([A-Za-z0-9]+):\s+(.*)$/.exec(line)
    if (m) out.set(m[1]!, m[2]!)
  }
  return out
}

describe('network show', {concurrency: true}, () => {
  test('resolves flannel defaults, marks them as defaulted, and reports capacity', async () => {
    const r = await runCli(['network', 'show', ...ep])
    assert.equal(r.code, 0, show(r))
    assert.equal(r.stderr, '')
    const f = fields(r.stdout)
    assert.equal(f.get('Stored'), VXLAN_CONFIG)
    assert.equal(f.get('Network'), '10.5.0.0/16')
    assert.equal(f.get('SubnetLen'), '24 (default)')
    assert.equal(f.get('SubnetMin'), '10.5.1.0 (default)')
    assert.equal(f.get('SubnetMax'), '10.5.255.0 (default)')
    assert.equal(f.get('Backend'), 'vxlan (VNI 1, port 8472)')
    assert.equal(f.get('Capacity'), '3 of 255 subnets used, 252 free (1.2%)')
    assert.match(f.get('Config')!, /^\/coreos\.com\/network\/config \(mod revision \d+, read at revision \d+\)$/)
  })

  test('--json has the documented shape and values', async () => {
    const [r, kv] = await Promise.all([
      runCli(['network', 'show', ...ep, '--json']),
      getKey(etcd, '/coreos.com/network/config'),
    ])
    assert.equal(r.code, 0, show(r))
    const j = json(r)
    assert.deepEqual(j.config, {Network: '10.5.0.0/16', Backend: {Type: 'vxlan'}})
    assert.equal(j.raw, VXLAN_CONFIG)
    assert.equal(j.modRevision, kv!.modRevision)
    assert.equal(typeof j.modRevision, 'string')
    const e = j.effective
    assert.equal(e.network, '10.5.0.0/16')
    assert.equal(e.subnetLen, 24)
    assert.equal(e.subnetMin, '10.5.1.0')
    assert.equal(e.subnetMax, '10.5.255.0')
    assert.equal(e.backendType, 'vxlan')
    assert.deepEqual(e.defaulted, ['subnetLen', 'subnetMin', 'subnetMax'])
    assert.equal(e.ipv6, null)
    assert.deepEqual(j.capacity, {total: 255, used: 3, free: 252, utilization: 0.0118})
  })

  test('an explicit SubnetLen is not listed as defaulted; capacity follows it', async () => {
    const r = await runCli(['network', 'show', ...ep, '--etcd-prefix', '/custom/net', '--json'])
    assert.equal(r.code, 0, show(r))
    const e = json(r).effective
    assert.equal(e.subnetLen, 26)
    assert.equal(e.subnetMin, '10.6.0.64')
    assert.equal(e.subnetMax, '10.6.255.192')
    assert.equal(e.backendType, 'host-gw')
    assert.deepEqual(e.defaulted, ['subnetMin', 'subnetMax'])
    assert.deepEqual(json(r).capacity, {total: 1023, used: 2, free: 1021, utilization: 0.002})
  })

  test('IPv6 effective values when EnableIPv6 is set', async () => {
    const r = await runCli(['network', 'show', ...ep, '--etcd-prefix', '/dual', '--json'])
    assert.equal(r.code, 0, show(r))
    assert.deepEqual(json(r).effective.ipv6, {
      network: 'fc00::/48',
      subnetLen: 64,
      subnetMin: 'fc00:0:0:1::',
      subnetMax: 'fc00:0:0:ffff::',
    })
  })

  test('no config → exit 4 naming the key; --json gives the error envelope with exit 4', async () => {
    const [r, rj] = await Promise.all([
      runCli(['network', 'show', ...ep, '--etcd-prefix', '/nothing/here']),
      runCli(['network', 'show', ...ep, '--etcd-prefix', '/nothing/here', '--json']),
    ])
    assert.equal(r.code, 4, show(r))
    assert.equal(r.stdout, '')
    assert.match(r.stderr, /^Error: no flannel network config at \/nothing\/here\/config\b/)
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace')
    assert.equal(rj.code, 4, show(rj))
    const err = json(rj).error
    assert.equal(err.code, 'CONFIG_NOT_FOUND')
    assert.equal(err.exitCode, 4)
    assert.match(err.message, /\/nothing\/here\/config/)
  })

  test("an invalid stored config is shown with flannel's own message", async () => {
    const [small, smallJson, broken] = await Promise.all([
      runCli(['network', 'show', ...ep, '--etcd-prefix', '/invalid/small']),
      runCli(['network', 'show', ...ep, '--etcd-prefix', '/invalid/small', '--json']),
      runCli(['network', 'show', ...ep, '--etcd-prefix', '/invalid/json', '--json']),
    ])
    assert.equal(small.code, 0, show(small))
    assert.equal(fields(small.stdout).get('Stored'), '{"Network":"10.5.0.0/29","Backend":{"Type":"vxlan"}}')
    assert.match(small.stdout, /^Invalid: +network is too small\. Minimum useful network prefix is \/28\b/m)
    const j = json(smallJson)
    assert.equal(j.valid, false)
    assert.equal(j.error, 'network is too small. Minimum useful network prefix is /28')
    assert.equal(j.effective, null)
    assert.equal(j.capacity, null)
    assert.equal(j.raw, '{"Network":"10.5.0.0/29","Backend":{"Type":"vxlan"}}')
    // Not JSON at all: Go's encoding/json message, the raw string kept, config null.
    assert.equal(broken.code, 0, show(broken))
    const b = json(broken)
    assert.equal(b.valid, false)
    assert.equal(b.error, 'unexpected end of JSON input')
    assert.equal(b.raw, '{"Network":')
    assert.equal(b.config, null)
  })

  test('--etcd-prefix with a trailing slash is the same prefix (path.Join semantics)', async () => {
    const r = await runCli(['network', 'show', ...ep, '--etcd-prefix', '/custom/net/', '--json'])
    assert.equal(r.code, 0, show(r))
    const j = json(r)
    assert.equal(j.key, '/custom/net/config')
    assert.equal(j.effective.network, '10.6.0.0/16')
    assert.equal(j.capacity.used, 2)
  })

  test('FLANNELD_ETCD_PREFIX is the fallback; FLANNELCTL_ETCD_PREFIX and the flag take precedence', async () => {
    const [fl, both, flag] = await Promise.all([
      runCli(['network', 'show', ...ep, '--json'], {env: {FLANNELD_ETCD_PREFIX: '/custom/net/'}}),
      runCli(['network', 'show', ...ep, '--json'], {
        env: {FLANNELCTL_ETCD_PREFIX: '/dual', FLANNELD_ETCD_PREFIX: '/custom/net'},
      }),
      runCli(['network', 'show', ...ep, '--json', '--etcd-prefix', '/coreos.com/network'], {
        env: {FLANNELCTL_ETCD_PREFIX: '/dual', FLANNELD_ETCD_PREFIX: '/custom/net'},
      }),
    ])
    assert.equal(fl.code, 0, show(fl))
    assert.equal(json(fl).key, '/custom/net/config')
    assert.equal(json(fl).effective.network, '10.6.0.0/16')
    assert.equal(both.code, 0, show(both))
    assert.equal(json(both).effective.network, '10.7.0.0/16')
    assert.equal(flag.code, 0, show(flag))
    assert.equal(json(flag).effective.network, '10.5.0.0/16')
  })
})

describe('network validate', {concurrency: true}, () => {
  // Offline: point every endpoint variable at a closed port to prove no etcd is contacted.
  const offline = {ETCDCTL_ENDPOINTS: 'http://127.0.0.1:1', FLANNELD_ETCD_ENDPOINTS: 'http://127.0.0.1:1'}

  test('a valid FILE → exit 0 with the effective values', async () => {
    const file = path.join(tmp, 'valid.json')
    await writeFile(file, VXLAN_CONFIG + '\n')
    const r = await runCli(['network', 'validate', file], {env: offline})
    assert.equal(r.code, 0, show(r))
    assert.equal(r.stderr, '')
    assert.match(r.stdout, /^valid: flanneld accepts this config\n/)
    const f = fields(r.stdout)
    assert.equal(f.get('Network'), '10.5.0.0/16')
    assert.equal(f.get('SubnetLen'), '24 (default)')
    assert.equal(f.get('SubnetMin'), '10.5.1.0 (default)')
    assert.equal(f.get('SubnetMax'), '10.5.255.0 (default)')
    assert.equal(f.get('Backend'), 'vxlan (VNI 1, port 8472)')
  })

  test('stdin with "-" → same answer; --json is {"valid": true, effective, errors: [], warnings: []}', async () => {
    const [text, j] = await Promise.all([
      runCli(['network', 'validate', '-'], {input: VXLAN_CONFIG, env: offline}),
      runCli(['network', 'validate', '-', '--json'], {
        input: '{"Network":"10.0.0.0/23","Backend":{"Type":"vxlan","VNI":4}}',
        env: offline,
      }),
    ])
    assert.equal(text.code, 0, show(text))
    assert.equal(fields(text.stdout).get('SubnetMax'), '10.5.255.0 (default)')
    assert.equal(j.code, 0, show(j))
    const v = json(j)
    assert.equal(v.valid, true)
    assert.deepEqual(v.errors, [])
    assert.deepEqual(v.warnings, [])
    assert.equal(v.effective.network, '10.0.0.0/23')
    assert.equal(v.effective.subnetLen, 25)
    assert.equal(v.effective.subnetMin, '10.0.0.128')
    assert.equal(v.effective.subnetMax, '10.0.1.128')
    assert.equal(v.effective.backend.vni, 4)
  })

  test("flannel's computed defaults (docs/flannel.md §3.3)", async () => {
    const cases: Array<[string, number, string, string]> = [
      ['{"network":"10.3.0.0/16","backend":{"type":"vxlan"}}', 24, '10.3.1.0', '10.3.255.0'],
      [
        '{"Network":"10.3.0.0/16","SubnetMin":"10.3.5.0","SubnetMax":"10.3.8.0","SubnetLen":28,"Backend":{"Type":"vxlan"}}',
        28,
        '10.3.5.0',
        '10.3.8.0',
      ],
      ['{"Network":"10.0.0.0/24","Backend":{"Type":"vxlan"}}', 26, '10.0.0.64', '10.0.0.192'],
      [
        '{"Network":"10.0.0.0/8","SubnetLen":20,"SubnetMin":"10.10.0.0","SubnetMax":"10.99.0.0","Backend":{"Type":"vxlan"}}',
        20,
        '10.10.0.0',
        '10.99.0.0',
      ],
    ]
    const results = await Promise.all(
      cases.map(([cfg]) => runCli(['network', 'validate', '--json'], {input: cfg, env: offline})),
    )
    cases.forEach(([cfg, len, min, max], i) => {
      const r = results[i]!
      assert.equal(r.code, 0, `${cfg}\n${show(r)}`)
      const e = json(r).effective
      assert.deepEqual([e.subnetLen, e.subnetMin, e.subnetMax], [len, min, max], cfg)
    })
  })

  test("flannelctl's own findings never change flanneld's verdict (exit 0 when flanneld starts)", async () => {
    // flanneld v0.28.9 starts with both (go-vectors); SubnetMin above SubnetMax then fails every allocation.
    const inverted = '{"Network":"10.0.0.0/8","SubnetMin":"10.9.0.0","SubnetMax":"10.1.0.0","Backend":{"Type":"vxlan"}}'
    const hostBits = '{"Network":"10.1.2.3/16","Backend":{"Type":"vxlan"}}'
    const [a, b, c] = await Promise.all([
      runCli(['network', 'validate', '--json', '-'], {input: inverted, env: offline}),
      runCli(['network', 'validate', '-'], {input: inverted, env: offline}),
      runCli(['network', 'validate', '--json', '-'], {input: hostBits, env: offline}),
    ])
    assert.equal(a.code, 0, show(a))
    const v = json(a)
    assert.equal(v.valid, true)
    assert.deepEqual(v.errors, [])
    assert.deepEqual(
      v.findings.map((f: {id: string; severity: string}) => [f.id, f.severity]),
      [['config-range-inverted', 'error']],
    )
    assert.equal(b.code, 0, show(b))
    assert.match(b.stdout, /^valid: flanneld accepts this config\n/)
    assert.match(b.stdout, /\nerror: SubnetMin 10\.9\.0\.0 is above SubnetMax 10\.1\.0\.0/)
    assert.equal(c.code, 0, show(c))
    assert.deepEqual(
      json(c).findings.map((f: {id: string}) => f.id),
      ['config-noncanonical'],
    )
  })

  test('invalid → exit 2 with flannel\'s message; --json gives {"valid": false, errors: [...]} with exit 2', async () => {
    const cases: Array<[string, string]> = [
      [
        '{"Network":"10.5.0.0/29","Backend":{"Type":"vxlan"}}',
        'network is too small. Minimum useful network prefix is /28',
      ],
      ['{"Network":"10.3.0.0/16","SubnetLen":31,"Backend":{"Type":"vxlan"}}', 'SubnetLen must be less than /31'],
      [
        '{"Network":"10.3.0.0/16","SubnetLen":17,"Backend":{"Type":"vxlan"}}',
        'network must be able to accommodate at least four subnets',
      ],
      [
        '{"Network":"10.3.0.0/16","SubnetMin":"10.3.5.1","Backend":{"Type":"vxlan"}}',
        'SubnetMin is not on a SubnetLen boundary: 10.3.5.1',
      ],
      [
        '{"Network":"10.3.0.0/16","SubnetMax":"10.4.0.0","Backend":{"Type":"vxlan"}}',
        'SubnetMax is not in the range of the Network',
      ],
      [
        '{"Network":"0.0.0.0/0","Backend":{"Type":"vxlan"}}',
        'please define a correct Network parameter in the flannel config',
      ],
      [
        '{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fc00::/125","Backend":{"Type":"vxlan"}}',
        'IPv6Network is too small. Minimum useful network prefix is /124',
      ],
    ]
    // Every case as --json; the first three also as text (the message on stderr, nothing on stdout).
    const [jsonRuns, textRuns] = await Promise.all([
      Promise.all(cases.map(([cfg]) => runCli(['network', 'validate', '--json', '-'], {input: cfg, env: offline}))),
      Promise.all(cases.slice(0, 3).map(([cfg]) => runCli(['network', 'validate', '-'], {input: cfg, env: offline}))),
    ])
    textRuns.forEach((text, i) => {
      const [cfg, message] = cases[i]!
      assert.equal(text.code, 2, `${cfg}\n${show(text)}`)
      assert.equal(text.stdout, '', cfg)
      assert.equal(text.stderr.split('\n')[0], `invalid: ${message}`, cfg)
    })
    cases.forEach(([cfg, message], i) => {
      const j = jsonRuns[i]!
      assert.equal(j.code, 2, `${cfg}\n${show(j)}`)
      const v = json(j)
      assert.equal(v.valid, false, cfg)
      assert.deepEqual(v.errors, [message], cfg)
      assert.equal(v.effective, null, cfg)
    })
  })

  test('an unreadable FILE → exit 2 naming the file (text and --json)', async () => {
    const missing = path.join(tmp, 'does-not-exist.json')
    const noPerm = path.join(tmp, 'no-perm.json')
    await writeFile(noPerm, VXLAN_CONFIG)
    await chmod(noPerm, 0o000)
    const root = process.getuid?.() === 0
    const [a, b, c, d] = await Promise.all([
      runCli(['network', 'validate', missing], {env: offline}),
      runCli(['network', 'validate', missing, '--json'], {env: offline}),
      runCli(['network', 'validate', tmp], {env: offline}),
      runCli(['network', 'validate', noPerm], {env: offline}),
    ])
    assert.equal(a.code, 2, show(a))
    assert.equal(a.stderr, `Error: cannot read ${missing}: ENOENT\n`)
    assert.equal(b.code, 2, show(b))
    assert.deepEqual(json(b).error, {code: 'UNREADABLE_FILE', message: `cannot read ${missing}: ENOENT`, exitCode: 2})
    assert.equal(c.code, 2, show(c))
    assert.match(c.stderr, new RegExp(`cannot read ${tmp}: EISDIR`))
    if (!root) {
      assert.equal(d.code, 2, show(d))
      assert.match(d.stderr, new RegExp(`cannot read ${noPerm}: EACCES`))
    }
  })
})

describe('network init', {concurrency: true}, () => {
  const init = (prefix: string, ...args: string[]) =>
    runCli(['network', 'init', ...ep, '--etcd-prefix', prefix, '--yes', ...args])

  test('without --yes and without a terminal init refuses as every mutation does: exit 2 naming --yes, nothing written', async () => {
    for (const flag of [[], ['-y']]) {
      const r = await runCli([
        'network',
        'init',
        ...ep,
        '--etcd-prefix',
        '/init/noyes',
        '--network',
        '10.7.0.0/16',
        ...flag,
      ])
      if (flag.length === 0) {
        assert.equal(r.code, 2, show(r))
        assert.match(r.stderr, /confirmation needed.*pass --yes/)
        assert.equal(await getKey(etcd, '/init/noyes/config'), null)
      } else {
        assert.equal(r.code, 0, show(r))
        assert.ok(await getKey(etcd, '/init/noyes/config'))
      }
    }
  })

  test('creates the key with SubnetLen explicit, byte for byte', async () => {
    const r = await init('/init/a', '--network', '10.8.0.0/16')
    assert.equal(r.code, 0, show(r))
    assert.match(r.stdout, /^created \/init\/a\/config at revision \d+\n/)
    const kv = await getKey(etcd, '/init/a/config')
    assert.equal(kv?.value, '{"Network":"10.8.0.0/16","SubnetLen":24,"Backend":{"Type":"vxlan"}}')
    assert.equal(kv.version, '1')
    assert.equal(kv.lease, '0')
    assert.equal(kv.createRevision, kv.modRevision)
    assert.equal(r.stdout.match(/at revision (\d+)/)![1], kv.modRevision)
    // flanneld (and our show) now see SubnetLen as given, not defaulted.
    const s = await runCli(['network', 'show', ...ep, '--etcd-prefix', '/init/a', '--json'])
    assert.deepEqual(json(s).effective.defaulted, ['subnetMin', 'subnetMax'])
  })

  test('every option lands in the stored JSON; small networks get SubnetLen = prefix + 2', async () => {
    const [full, small, dual, hostgw] = await Promise.all([
      init(
        '/init/full',
        '--network',
        '10.9.0.0/16',
        '--subnet-len',
        '26',
        '--subnet-min',
        '10.9.1.0',
        '--subnet-max',
        '10.9.200.0',
        '--backend',
        'vxlan',
        '--vni',
        '2',
        '--port',
        '4789',
        '--direct-routing',
        '--mtu',
        '1400',
        '--json',
      ),
      init('/init/small', '--network', '10.10.0.0/24'),
      init('/init/dual', '--network', '10.11.0.0/16', '--ipv6-network', 'fc00::/48'),
      init('/init/hostgw', '--network', '10.12.0.0/16', '--backend', 'host-gw'),
    ])
    for (const r of [full, small, dual, hostgw]) assert.equal(r.code, 0, show(r))
    const stored = await Promise.all(
      ['/init/full', '/init/small', '/init/dual', '/init/hostgw'].map((p) => getKey(etcd, `${p}/config`)),
    )
    assert.deepEqual(
      stored.map((kv) => kv?.value),
      [
        '{"Network":"10.9.0.0/16","SubnetLen":26,"SubnetMin":"10.9.1.0","SubnetMax":"10.9.200.0","Backend":{"Type":"vxlan","VNI":2,"Port":4789,"DirectRouting":true,"MTU":1400}}',
        '{"Network":"10.10.0.0/24","SubnetLen":26,"Backend":{"Type":"vxlan"}}',
        '{"Network":"10.11.0.0/16","SubnetLen":24,"EnableIPv6":true,"IPv6Network":"fc00::/48","Backend":{"Type":"vxlan"}}',
        '{"Network":"10.12.0.0/16","SubnetLen":24,"Backend":{"Type":"host-gw"}}',
      ],
    )
    const j = json(full)
    assert.equal(j.applied, true)
    assert.equal(j.raw, stored[0]!.value)
    assert.equal(j.revision, stored[0]!.modRevision)
    assert.equal(j.effective.subnetLen, 26)
    assert.deepEqual(j.effective.backend, {
      type: 'vxlan',
      vni: 2,
      port: 4789,
      directRouting: true,
      gbp: false,
      mtu: 1400,
    })
  })

  test('--dry-run prints the config and writes nothing', async () => {
    const r = await init('/init/dry', '--network', '10.13.0.0/16', '--dry-run')
    assert.equal(r.code, 0, show(r))
    assert.equal(
      r.stdout.split('\n').slice(0, 2).join('\n'),
      'dry run: would create /init/dry/config with\n{"Network":"10.13.0.0/16","SubnetLen":24,"Backend":{"Type":"vxlan"}}',
    )
    assert.equal(await getKey(etcd, '/init/dry/config'), null)
    const rj = await init('/init/dry', '--network', '10.13.0.0/16', '--dry-run', '--json')
    assert.equal(rj.code, 0, show(rj))
    assert.equal(json(rj).applied, false)
    assert.equal(json(rj).dryRun, true)
    assert.equal(json(rj).revision, null)
    assert.equal(await getKey(etcd, '/init/dry/config'), null)
  })

  test('a second init → exit 3, the existing config shown and left untouched', async () => {
    const first = await init('/init/twice', '--network', '10.14.0.0/16')
    assert.equal(first.code, 0, show(first))
    const before = await getKey(etcd, '/init/twice/config')
    const [again, againJson, dry] = await Promise.all([
      init('/init/twice', '--network', '10.15.0.0/16', '--backend', 'host-gw'),
      init('/init/twice', '--network', '10.15.0.0/16', '--json'),
      init('/init/twice', '--network', '10.15.0.0/16', '--dry-run'),
    ])
    assert.equal(again.code, 3, show(again))
    assert.equal(again.stdout, '')
    assert.match(again.stderr, /^Error: a network config already exists at \/init\/twice\/config/)
    assert.ok(again.stderr.includes(before!.value), `existing config shown:\n${again.stderr}`)
    assert.equal(againJson.code, 3, show(againJson))
    const err = json(againJson).error
    assert.equal(err.code, 'CONFIG_EXISTS')
    assert.equal(err.exitCode, 3)
    assert.deepEqual(err.details, {key: '/init/twice/config', value: before!.value, modRevision: before!.modRevision})
    assert.equal(dry.code, 3, show(dry))
    assert.deepEqual(await getKey(etcd, '/init/twice/config'), before)
  })

  test('init over a config written by someone else (etcdctl) → exit 3', async () => {
    const r = await init('/coreos.com/network', '--network', '10.16.0.0/16')
    assert.equal(r.code, 3, show(r))
    assert.ok(r.stderr.includes(VXLAN_CONFIG), r.stderr)
    assert.equal((await getKey(etcd, '/coreos.com/network/config'))?.value, VXLAN_CONFIG)
  })

  test('invalid flags → exit 2 with the reason, nothing written', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--network', '10.17.0.0/29'], /network is too small\. Minimum useful network prefix is \/28/],
      [['--network', '10.17.0.0/16', '--subnet-len', '31'], /SubnetLen must be less than \/31/],
      [
        ['--network', '10.17.0.0/16', '--subnet-len', '17'],
        /network must be able to accommodate at least four subnets/,
      ],
      [
        ['--network', '10.17.0.0/16', '--subnet-min', '10.17.5.1'],
        /SubnetMin is not on a SubnetLen boundary: 10\.17\.5\.1/,
      ],
      [['--network', '10.17.0.0/16', '--subnet-max', '10.18.0.0'], /SubnetMax is not in the range of the Network/],
      [['--network', 'not-a-cidr'], /not-a-cidr/],
      [['--network', '10.17.0.0/16', '--backend', 'bogus'], /bogus/],
      [['--network', '10.17.0.0/16', '--backend', 'host-gw', '--vni', '3'], /vxlan/],
      [[], /network/i],
    ]
    const runs = await Promise.all(cases.map(([args]) => init('/init/invalid', ...args)))
    cases.forEach(([args, re], i) => {
      const r = runs[i]!
      assert.equal(r.code, 2, `${args.join(' ')}\n${show(r)}`)
      assert.match(r.stderr, re, args.join(' '))
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace')
    })
    assert.equal(await getKey(etcd, '/init/invalid/config'), null)
  })
})
