/**
 * Runs inside the benchmark's namespace (bench/agent.ts): writes the config and the synthetic peers as flanneld
 * would (each key with its own 24 h etcd lease), or, with --one-by-one, puts one new peer per "next" line on stdin.
 */

import {createInterface} from 'node:readline'

import {Etcd3} from 'etcd3'

const ipStr = (n: number) => `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`
const SUBNET0 = (198 << 24) + (19 << 16)
const key = (i: number) => `/coreos.com/network/subnets/${ipStr(SUBNET0 + (i + 1) * 16)}-28`
const mac = (i: number) =>
  `02:00:00:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`
const value = (i: number) =>
  `{"PublicIP":"${ipStr((198 << 24) + (18 << 16) + 256 + i)}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${mac(i)}"}}`

const client = new Etcd3({hosts: ['http://127.0.0.1:2379']})

async function ready(): Promise<void> {
  for (let i = 0; i < 300; i++) {
    try {
      await client.get('/').exec()
      return
    } catch {
      await new Promise((r) => setTimeout(r, 50))
    }
  }
  throw new Error('etcd did not come up')
}

async function putPeer(i: number): Promise<void> {
  const lease = client.lease(86_400, {autoKeepAlive: false})
  const id = await lease.grant()
  await client.put(key(i)).value(value(i)).lease(id).exec()
}

async function main(): Promise<void> {
  await ready()
  if (process.argv[2] === '--one-by-one') {
    const from = Number(process.argv[3])
    const n = Number(process.argv[4])
    const lines = createInterface({input: process.stdin})[Symbol.asyncIterator]()
    for (let k = 0; k < n; k++) {
      await putPeer(from + k)
      process.stdout.write(`put ${from + k}\n`)
      const next = await lines.next()
      if (next.done) break
    }
    return
  }
  const peers = Number(process.argv[2])
  await client
    .put('/coreos.com/network/config')
    .value('{"Network":"198.19.0.0/16","SubnetLen":28,"Backend":{"Type":"vxlan"}}')
    .exec()
  let next = 0
  await Promise.all(
    Array.from({length: 64}, async () => {
      while (next < peers) await putPeer(next++)
    }),
  )
  process.stdout.write(`seeded ${peers}\n`)
}

main()
  .catch((e) => {
    console.error(e)
    process.exitCode = 1
  })
  .finally(() => client.close())
