import assert from 'node:assert/strict'
import {describe, test} from 'node:test'

import {clusterChecks, selectFindings} from '../../src/core/doctor.js'
import {flanneldReadsV3, keyspaceChecks, v2Findings} from '../../src/core/doctor-v2.js'
import {hintContext, NO_HINT_CONTEXT} from '../../src/core/hints.js'
import {keyLayout} from '../../src/core/keys.js'
import {classifyKeys, type RawKV} from '../../src/core/leases.js'

const layout = keyLayout('/coreos.com/network')
const CFG = '{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}'
const LEASE = '{"PublicIP":"192.168.1.12","BackendType":"vxlan","BackendData":{"VtepMAC":"c6:d2:32:6f:8f:44"}}'

function kv(key: string, value: string, lease = '0'): RawKV {
  return {
    key: key.startsWith('/') ? key : `/coreos.com/network/${key}`,
    value,
    createRevision: '2',
    modRevision: '2',
    version: '1',
    lease,
  }
}
const snap = (...kvs: RawKV[]) => classifyKeys(layout, kvs, '7')
const ids = (fs: Array<{id: string; severity: string}>) => fs.map((f) => `${f.id}:${f.severity}`)

describe('doctor keyspace checks', () => {
  test('config only in v2: an error (flanneld >= 0.18 assumed), a warning for a flanneld that still reads v2', () => {
    const v2 = snap(kv('config', CFG), kv('subnets/10.5.12.0-24', LEASE, 'v2:/coreos.com/network/subnets/10.5.12.0-24'))
    assert.deepEqual(ids(keyspaceChecks({layout, v3: snap(), v2})), [
      'config-only-in-v2:error',
      'v2-store-going-away:info',
    ])
    assert.deepEqual(ids(keyspaceChecks({layout, v3: snap(), v2, flanneldVersion: '0.11.0'})), [
      'config-only-in-v2:warning',
      'v2-store-going-away:info',
    ])
    assert.deepEqual(ids(keyspaceChecks({layout, v3: snap(), v2, flanneldVersion: 'v0.18.0'})), [
      'config-only-in-v2:error',
      'v2-store-going-away:info',
    ])
    const f = keyspaceChecks({
      layout: keyLayout('/other'),
      v3: classifyKeys(keyLayout('/other'), [], '1'),
      v2: classifyKeys(keyLayout('/other'), [kv('/other/config', CFG)], '1'),
    })
    assert.match(f[0]!.hint, /flannelctl migrate v2-to-v3 --etcd-prefix \/other --dry-run/)
  })

  test('config in both: a warning only when the bytes differ', () => {
    assert.deepEqual(ids(keyspaceChecks({layout, v3: snap(kv('config', CFG)), v2: snap(kv('config', CFG))})), [
      'v2-store-going-away:info',
    ])
    const other = '{"Network":"10.6.0.0/16","Backend":{"Type":"vxlan"}}'
    assert.deepEqual(ids(keyspaceChecks({layout, v3: snap(kv('config', CFG)), v2: snap(kv('config', other))})), [
      'config-in-both:warning',
      'v2-store-going-away:info',
    ])
  })

  test('v2-store-going-away: only when v2 holds keys, with the delete command once v3 has them all', () => {
    assert.deepEqual(keyspaceChecks({layout, v3: snap(kv('config', CFG)), v2: snap()}), [])
    assert.deepEqual(keyspaceChecks({layout, v3: snap(kv('config', CFG)), v2: null}), [])
    const v2 = snap(kv('config', CFG), kv('subnets/10.5.12.0-24', LEASE))
    const copied = keyspaceChecks({layout, v3: snap(kv('config', CFG), kv('subnets/10.5.12.0-24', LEASE, '42')), v2})
    assert.match(
      copied[0]!.hint,
      /^once no flanneld <= 0\.17 is left, delete the v2 copy: ETCDCTL_API=2 etcdctl rm --recursive \/coreos\.com\/network$/,
    )
    assert.match(copied[0]!.message, /the migration is done, do not run it again/)
    const partial = keyspaceChecks({layout, v3: snap(kv('config', CFG)), v2})
    assert.match(partial[0]!.hint, /migrate v2-to-v3/)
  })

  test('after the upgrade: leases flanneld >= 0.18 rewrote in its bytes count as copied; expired v2 keys do not count', () => {
    const legacy = '{"PublicIP":"192.168.1.12","BackendType":"vxlan","BackendData":{"VtepMAC":"c6:d2:32:6f:8f:44"}}'
    const rewritten =
      '{"PublicIP":"192.168.1.12","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}'
    const v2 = snap(
      kv('config', CFG),
      kv('subnets/10.5.12.0-24', legacy, 'v2:a'),
      kv('subnets/10.5.13.0-24', legacy.replace('.12"', '.13"'), 'v2:b'),
    )
    const v3 = snap(kv('config', CFG), kv('subnets/10.5.12.0-24', rewritten, '42'))
    const ttls = new Map([
      ['v2:a', 3000],
      ['v2:b', -1],
    ])
    const f = keyspaceChecks({layout, v3, v2, v2Ttls: ttls, etcdctlV2Flags: '--endpoints http://10.0.0.1:2379'})
    assert.equal(
      f[0]!.hint,
      'once no flanneld <= 0.17 is left, delete the v2 copy: ETCDCTL_API=2 etcdctl --endpoints http://10.0.0.1:2379 rm --recursive /coreos.com/network',
    )
    // Another VtepMAC is another lease: not copied.
    const other = snap(kv('config', CFG), kv('subnets/10.5.12.0-24', rewritten.replace('8f:44', '8f:45'), '42'))
    assert.match(keyspaceChecks({layout, v3: other, v2, v2Ttls: ttls})[0]!.hint, /migrate v2-to-v3/)
    // Without a read of the whole v2 prefix, the command names only flannel's keys.
    assert.match(
      keyspaceChecks({layout, v3, v2, v2Ttls: ttls, v2SawWholePrefix: false})[0]!.hint,
      /rm \/coreos\.com\/network\/config && ETCDCTL_API=2 etcdctl rm --recursive \/coreos\.com\/network\/subnets$/,
    )
  })

  test('flanneld versions', () => {
    assert.deepEqual(
      ['0.17.1', 'v0.11.0', '0.18', 'v0.18.0-rc1', '0.28.9', '1.0.0', 'latest', ''].map(flanneldReadsV3),
      [false, false, true, true, true, true, null, null],
    )
  })

  test('vni-mismatch ignores leases written by flanneld <= 0.13 (no VNI field), not an explicit other VNI', () => {
    const run = (value: string) =>
      selectFindings(
        clusterChecks({
          layout,
          snapshot: snap(kv('config', CFG), kv('subnets/10.5.12.0-24', value, '9')),
          ttls: null,
          renewMarginSeconds: 3600,
        }).findings,
        ['vni-mismatch'],
        [],
      )
    assert.deepEqual(run(LEASE), [])
    assert.equal(
      run('{"PublicIP":"192.168.1.12","BackendType":"vxlan","BackendData":{"VNI":0,"VtepMAC":"c6:d2:32:6f:8f:44"}}')
        .length,
      1,
    )
    assert.equal(
      run('{"PublicIP":"192.168.1.12","BackendType":"vxlan","BackendData":{"vni":2,"VtepMAC":"c6:d2:32:6f:8f:44"}}')
        .length,
      1,
    )
  })
})

describe('findings about the v2 keyspace act on it', () => {
  const v2 = snap(
    kv('config', CFG),
    kv('subnets/10.5.12.0-24', LEASE, 'v2:/coreos.com/network/subnets/10.5.12.0-24'),
    kv('subnets/10.5.13.0-24', '{"PublicIP":"192.168.1.13","Backe'),
    kv('subnets/10.5.14.0-24', LEASE, 'v2:/coreos.com/network/subnets/10.5.14.0-24'),
  )
  const ttls = new Map([
    ['v2:/coreos.com/network/subnets/10.5.12.0-24', 80_000],
    ['v2:/coreos.com/network/subnets/10.5.14.0-24', 80_000],
  ])
  const hints = hintContext({endpoints: 'http://10.0.0.1:2379'})
  const cluster = clusterChecks({layout, snapshot: v2, ttls, renewMarginSeconds: 3600, api: 'v2', hints}).findings
  const ctx = {hints}

  test('a malformed v2 lease: a v2 rm (never a v3 del), and for flanneld <= 0.17 the jammed watch and the restart', () => {
    const f = v2Findings(cluster, ctx).find((x) => x.id === 'malformed-lease')!
    const E = 'ETCDCTL_API=2 etcdctl --endpoints http://10.0.0.1:2379'
    assert.equal(
      f.hint,
      `delete it in the v2 keyspace, then restart flanneld on every node (one at a time): ${E} get /coreos.com/network/subnets/10.5.13.0-24, then ${E} rm /coreos.com/network/subnets/10.5.13.0-24`,
    )
    assert.deepEqual(f.commands?.[1]?.argv, [
      'etcdctl',
      '--endpoints',
      'http://10.0.0.1:2379',
      'rm',
      '/coreos.com/network/subnets/10.5.13.0-24',
    ])
    assert.deepEqual(f.commands?.[1]?.env, {ETCDCTL_API: '2'})
    assert.doesNotMatch(f.hint, /etcdctl( --endpoints \S+)? del/)
    assert.match(
      f.message,
      /every node's lease watch fails on it and retries it every second, so leases added afterwards get no route, until flanneld is restarted, even after the key is deleted/,
    )
    const later = v2Findings(cluster, {...ctx, flanneldVersion: '0.20.0'}).find((x) => x.id === 'malformed-lease')!
    assert.doesNotMatch(later.message, /retries it every second/)
    assert.match(later.hint, /^delete it in the v2 keyspace: ETCDCTL_API=2 etcdctl/)
  })

  test('flannelctl commands in v2 hints carry --etcd-api v2 (argv and text); findings without commands are unchanged', () => {
    const out = v2Findings(cluster, ctx)
    const withCommands = out.filter((f) => f.commands?.some((c) => c.argv[0] === 'flannelctl'))
    assert.ok(withCommands.length > 0)
    for (const f of withCommands)
      for (const c of f.commands!.filter((x) => x.argv[0] === 'flannelctl')) {
        assert.deepEqual(c.argv.slice(-2), ['--etcd-api', 'v2'])
        assert.ok(f.hint.includes(c.shell), `${f.hint} lacks ${c.shell}`)
      }
    const plain = {
      id: 'z',
      severity: 'info' as const,
      subjects: [],
      message: 'm',
      hint: 'restart flanneld on that node',
    }
    assert.deepEqual(v2Findings([plain], ctx), [plain])
  })

  test('a key with shell metacharacters is single-quoted in the v2 command', () => {
    const odd = [
      {
        id: 'malformed-lease',
        severity: 'error' as const,
        subjects: ["/coreos.com/network/subnets/x'; rm -rf /"],
        message: 'm',
        hint: 'h',
      },
    ]
    const f = v2Findings(odd, {hints: NO_HINT_CONTEXT})[0]!
    assert.match(f.hint, /rm '\/coreos\.com\/network\/subnets\/x'\\''; rm -rf \/'$/)
    assert.deepEqual(f.commands?.[1]?.argv.at(-1), "/coreos.com/network/subnets/x'; rm -rf /")
  })
})
