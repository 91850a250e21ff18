/**
 * Writes examples/snapshot.json: what `etcdctl get --prefix /coreos.com/network -w json` prints for a realistic
 * cluster: a /16 vxlan network nearly full (243 of 255 subnets), two Vagrant nodes that both registered the
 * VirtualBox NAT address 10.0.2.15, and one TTL-0 reservation. Deterministic: run it again and the bytes are equal.
 *
 *   node --import tsx scripts/make-example-snapshot.ts > examples/snapshot.json
 */

import {encodeLeaseAttrs, encodeVxlanData} from '../src/core/lease-value.js'

let seed = 0x5eed
function rnd(): number {
  seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31
  return seed / 2 ** 31
}

function mac(): string {
  const b = Array.from({length: 6}, () => Math.floor(rnd() * 256))
  b[0] = (b[0]! & 0xfe) | 0x02
  return b.map((x) => x.toString(16).padStart(2, '0')).join(':')
}

const b64 = (s: string) => Buffer.from(s).toString('base64')
const kvs: string[] = []
let rev = 1
const config = '{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}'
rev++
kvs.push(
  `{"key":"${b64('/coreos.com/network/config')}","create_revision":${rev},"mod_revision":${rev},"version":1,"value":"${b64(config)}"}`,
)
const leaseBase = 7_587_869_207_405_510_000n
for (let third = 1; third <= 243; third++) {
  let publicIP = `192.168.${Math.floor((third + 10) / 250) + 1}.${((third + 10) % 250) + 2}`
  if (third === 52 || third === 97) publicIP = '10.0.2.15'
  const value = encodeLeaseAttrs({
    publicIP: publicIP.split('.').reduce((n, o) => n * 256 + Number(o), 0),
    publicIPv6: null,
    backendType: 'vxlan',
    backendData: encodeVxlanData({vni: 1, vtepMAC: mac()}),
    backendV6Data: null,
  })
  rev++
  const created = rev
  // most leases were renewed a few times since they were created
  const modRev = created + Math.floor(rnd() * 3) * 500
  const lease = third === 7 ? '0' : String(leaseBase + BigInt(third * 97))
  kvs.push(
    `{"key":"${b64(`/coreos.com/network/subnets/10.5.${third}.0-24`)}","create_revision":${created},"mod_revision":${modRev},"version":${1 + (modRev - created) / 500},"value":"${b64(value)}"${lease === '0' ? '' : `,"lease":${lease}`}}`,
  )
}
const revision = rev + 1000
// etcdctl sorts by key bytes
kvs.sort((a, b) => {
  const ka = Buffer.from(/"key":"([^"]+)"/.exec(a)![1]!, 'base64').toString()
  const kb = Buffer.from(/"key":"([^"]+)"/.exec(b)![1]!, 'base64').toString()
  return ka < kb ? -1 : ka > kb ? 1 : 0
})
process.stdout.write(
  `{"header":{"cluster_id":14841639068965178418,"member_id":10276657743932975437,"revision":${revision},"raft_term":3},"kvs":[${kvs.join(',')}],"count":${kvs.length}}\n`,
)
