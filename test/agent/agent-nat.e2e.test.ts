// `flannelctl agent --public-ip` behind 1:1 NAT (issue 14 #1), and flanneld's device details (#7), in network
// namespaces this file creates and always removes. Node 1 sits on the public segment br0 (198.18.0.1); node 2 sits
// on a private segment br1 (198.18.1.2) behind a router namespace that maps the public 198.18.0.20 to it one to one
// (DNAT in, SNAT out). Node 2 publishes PublicIP 198.18.0.20, an address it does not have: its vxlan device must send
// from its interface address (as flanneld <= v0.27.3 does), else it cannot send at all. Only 198.18.0.0/15 is used.
// Every process started here is killed by its own pid; every ping is bounded.

import assert from 'node:assert/strict'
import {after, before, describe, test} from 'node:test'

import {canUseNetns} from '../helpers/netns.js'
import {type Node, PREFIX, shOk, Topology} from '../helpers/topology.js'

const ok = process.getuid?.() === 0 && canUseNetns()
const CONFIG = '{"Network":"198.19.0.0/17","Backend":{"Type":"vxlan"}}'
const WIDER = '{"Network":"198.19.0.0/16","Backend":{"Type":"vxlan"}}'
const NAT_PUBLIC = '198.18.0.20'
const NAT_PRIVATE = '198.18.1.2'

describe(
  'agent behind 1:1 NAT',
  {skip: ok ? false : 'needs root and network namespaces (run the e2e tier as root)'},
  () => {
    const topo = new Topology({tag: 'agent-nat', resyncMs: 1000})
    let pub!: Node
    let natted!: Node

    before(async () => {
      await topo.init()
      topo.addSegment('br1')
      const router = topo.addHost('router', '198.18.0.254', 'urtr0')
      topo.plug(router, '198.18.1.254', 'urtr1', 'br1', 'eth1')
      router.exec('sysctl', '-q', '-w', 'net.ipv4.ip_forward=1')
      // 1:1 NAT: the router owns 198.18.0.20 on the public side and maps it to 198.18.1.2 both ways.
      router.ip('addr', 'add', `${NAT_PUBLIC}/32`, 'dev', 'eth0')
      router.exec(
        'iptables',
        '-w',
        '-t',
        'nat',
        '-A',
        'PREROUTING',
        '-d',
        NAT_PUBLIC,
        '-j',
        'DNAT',
        '--to-destination',
        NAT_PRIVATE,
      )
      router.exec(
        'iptables',
        '-w',
        '-t',
        'nat',
        '-A',
        'POSTROUTING',
        '-s',
        NAT_PRIVATE,
        '-o',
        'eth0',
        '-j',
        'SNAT',
        '--to-source',
        NAT_PUBLIC,
      )
      pub = await topo.addNode(1, '198.18.0.1')
      natted = await topo.addNode(2, NAT_PRIVATE, {
        bridge: 'br1',
        gateway: '198.18.1.254',
        args: ['--iface', 'eth0', '--public-ip', NAT_PUBLIC],
      })
      await topo.startEtcd(CONFIG)
      for (const n of topo.nodes) topo.startAgent(n)
      await topo.waitFor('every agent ready', 30_000, () => topo.ready(topo.nodes), 100)
      for (const n of topo.nodes) {
        n.x = await topo.subnetX(n)
        topo.wirePod(n)
      }
    })

    after(async () => {
      await topo.teardown()
    })

    test('the NATed node publishes its PublicIP but its device sends from its interface address', async () => {
      const subnets = await topo.listSubnets()
      const mine = subnets.find((kv) => kv.key.endsWith(`/198.19.${natted.x}.0-24`))
      assert.ok(mine, JSON.stringify(subnets))
      assert.match(mine.value, new RegExp(`^\\{"PublicIP":"${NAT_PUBLIC.replaceAll('.', '\\.')}"`))
      const link = await topo.linkOf(natted)
      assert.equal(link.linkinfo?.info_data?.local, NAT_PRIVATE, 'local is an address of the host')
      assert.equal((await topo.linkOf(pub)).linkinfo?.info_data?.local, '198.18.0.1')
      const ready = await topo.httpGet(natted, '/readyz')
      assert.equal(ready.code, 200, ready.body)
      // The public node's FDB sends to the PublicIP (the router maps it to the node).
      const fdb = (await topo.readKernel(pub)).fdb
      assert.ok(
        fdb.some((f) => f.dst === NAT_PUBLIC),
        JSON.stringify(fdb),
      )
    })

    test('pods ping across the NAT in both directions', async () => {
      const failures = await topo.pingPairs(topo.allPairs(), 5)
      assert.deepEqual(failures, [], await topo.logs())
    })

    test("flanneld's device details: txqueuelen 0 and accept_ra 0", async () => {
      for (const n of topo.nodes) {
        // `ip -j link` omits txqlen when it is 0; sysfs (mounted per namespace by `ip netns exec`) always says it.
        const qlen = n.ns.exec('cat', '/sys/class/net/flannel.1/tx_queue_len').trim()
        assert.equal(qlen, '0', `node ${n.n}: txqueuelen of flannel.1`)
        const ra = n.ns.exec('cat', '/proc/sys/net/ipv6/conf/flannel.1/accept_ra').trim()
        assert.equal(ra, '0', `node ${n.n}: net.ipv6.conf.flannel.1.accept_ra`)
      }
    })

    test('network expand while the agents run: subnet.env and the forward rules follow within seconds', async () => {
      await topo.ctl('put', `${PREFIX}/config`, WIDER)
      await topo.waitFor('every node follows the wider Network', 10_000, async () => {
        const problems: string[] = []
        for (const n of topo.nodes) {
          const env = await topo.readSubnetEnv(n)
          if (!/^FLANNEL_NETWORK=198\.19\.0\.0\/16$/m.test(env)) problems.push(`node ${n.n}: ${env}`)
          const fwd = await shOk('ip', ['netns', 'exec', n.ns.name, 'iptables', '-w', '-S', 'FLANNEL-FWD'])
          if (fwd.includes('198.19.0.0/17') || !fwd.includes('-s 198.19.0.0/16'))
            problems.push(`node ${n.n} FLANNEL-FWD:\n${fwd}`)
        }
        return problems
      })
      assert.deepEqual(await topo.ready(topo.nodes), [])
      assert.deepEqual(await topo.pingPairs(topo.allPairs(), 5), [], await topo.logs())
    })
  },
)
