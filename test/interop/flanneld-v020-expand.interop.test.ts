// network expand while flanneld v0.20.0 nodes run (one with --ip-masq), judged by flannelctl: v0.20 reads the config
// once, so until a node restarts it keeps its old FLANNEL_NETWORK and masquerade rules (doctor warns, no error) and its
// pods keep talking; restarted, it keeps its subnet under the wider Network and doctor calls it healthy.
//
// Runs when FLANNELD_BIN points at a flanneld v0.20.0 binary and the test runs as root; skipped, saying why,
// otherwise. Addresses: 198.18.0.0/15 only. Everything is removed.

import assert from 'node:assert/strict'
import {setTimeout as sleep} from 'node:timers/promises'
import {after, before, describe, test} from 'node:test'

import {type Node, Topology} from '../helpers/topology.js'
import {awaitFlanneld, cli, cliIn, doctorJson, type Flanneld, interopSkipReason, startFlanneld} from './flanneld.js'

const skip = interopSkipReason('FLANNELD_BIN', 'v0.20.0')
const BIN = process.env.FLANNELD_BIN ?? ''
const CONFIG = '{"Network":"198.19.0.0/17","SubnetLen":24,"Backend":{"Type":"vxlan"}}'

describe('network expand while flanneld v0.20.0 nodes run (interop)', {skip: skip ?? false}, () => {
  const topo = new Topology({tag: 'interop20x', resyncMs: 1000})
  let masq: Node
  let plain: Node
  const flannelds = new Map<Node, Flanneld>()
  const doctor = (n: Node) =>
    cliIn(n, ['doctor', '--local', '--subnet-file', n.subnetFile, '--json', ...topo.etcdArgs()]).then(doctorJson)
  const errorsOf = (d: ReturnType<typeof doctorJson>) => d.findings.filter((f) => f.severity === 'error')

  before(async () => {
    await topo.init()
    await topo.startEtcd(CONFIG, {tls: true})
    masq = await topo.addNode(1, '198.18.0.31')
    plain = await topo.addNode(2, '198.18.0.32')
    // One after the other (v0.20 reads only the first event of a watch response).
    for (const [n, extra] of [
      [masq, ['--ip-masq']],
      [plain, []],
    ] as const) {
      const f = startFlanneld(topo, n, BIN, [...extra])
      flannelds.set(n, f)
      await awaitFlanneld(topo, f)
      await sleep(500)
    }
    for (const n of [masq, plain]) {
      n.x = await topo.subnetX(n)
      topo.wirePod(n)
    }
  })
  after(async () => {
    await topo.teardown()
  })

  test('expand to /16 while both run: old FLANNEL_NETWORK kept, doctor warns (no error), pods still talk', async () => {
    assert.deepEqual(await topo.pingPairs(topo.allPairs(), 10), [])
    const r = await cli(topo, ['network', 'expand', '--to', '198.19.0.0/16', '--yes'])
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`)
    for (const n of [masq, plain]) {
      assert.match(await topo.readSubnetEnv(n), /^FLANNEL_NETWORK=198\.19\.0\.0\/17$/m, 'v0.20 reads the config once')
      const d = await doctor(n)
      assert.deepEqual(errorsOf(d), [], `node ${n.n}: ${JSON.stringify(d.findings, null, 1)}`)
      assert.ok(
        d.findings.some((f) => f.id === 'subnet-env-stale-network' && f.severity === 'warning'),
        JSON.stringify(d.findings),
      )
    }
    assert.deepEqual(await topo.pingPairs(topo.allPairs(), 10), [])
  })

  test('restarted, a v0.20 node keeps its subnet under the wider Network and doctor calls it healthy', async () => {
    const before = await topo.readSubnetEnv(masq)
    const subnet = /^FLANNEL_SUBNET=(.*)$/m.exec(before)![1]
    await flannelds.get(masq)!.stop()
    const f = startFlanneld(topo, masq, BIN, ['--ip-masq'])
    flannelds.set(masq, f)
    await topo.waitFor('the restarted node rewrites subnet.env for /16', 30_000, async () =>
      /FLANNEL_NETWORK=198\.19\.0\.0\/16/.test(await topo.readSubnetEnv(masq)) ? [] : [f.output().slice(-3000)],
    )
    assert.match(await topo.readSubnetEnv(masq), new RegExp(`^FLANNEL_SUBNET=${subnet!.replace(/\./g, '\\.')}$`, 'm'))
    const d = await doctor(masq)
    assert.deepEqual(errorsOf(d), [], JSON.stringify(d.findings, null, 1))
    assert.deepEqual(await topo.pingPairs(topo.allPairs(), 10), [])
  })
})
