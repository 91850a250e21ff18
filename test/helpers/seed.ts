// Fast bulk seeding for tests at scale: flanneld-shaped subnet keys written 128 to a txn (etcd's default
// --max-txn-ops), a few txns in flight. The keys carry no etcd lease (leases ls shows them as reserved), which is
// all the output-path tests need; benchmarks that time TTL lookups grant one lease per key instead (bench/).

import {Etcd3} from 'etcd3'

/** Lease number n (1-based, at most 65,535) -> 10.X.Y.0/24 with a distinct PublicIP and VTEP MAC (bench/util.ts). */
export function leaseEntry(n: number): {key: string; value: string} {
  const x = (n >> 8) & 255
  const y = n & 255
  const hex = (b: number) => b.toString(16).padStart(2, '0')
  return {
    key: `/coreos.com/network/subnets/10.${x}.${y}.0-24`,
    value: `{"PublicIP":"192.168.${x}.${y}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:${hex(x)}:${hex(y)}"}}`,
  }
}

/** Writes the config (10.0.0.0/8, vxlan) and `count` subnet keys; loopback endpoints only. */
export async function seedSubnets(endpoint: string, count: number): Promise<void> {
  if (!/^https?:\/\/127\.0\.0\.1:\d+$/.test(endpoint)) throw new Error(`refusing non-loopback endpoint ${endpoint}`)
  const client = new Etcd3({hosts: endpoint, grpcOptions: {'grpc.max_send_message_length': 1 << 30}})
  try {
    await client.put('/coreos.com/network/config').value('{"Network":"10.0.0.0/8","Backend":{"Type":"vxlan"}}')
    const batches: number[] = []
    for (let first = 1; first <= count; first += 128) batches.push(first)
    let next = 0
    const worker = async () => {
      while (next < batches.length) {
        const first = batches[next++]!
        const ops = []
        for (let n = first; n < Math.min(first + 128, count + 1); n++) {
          const {key, value} = leaseEntry(n)
          ops.push({request_put: {key: Buffer.from(key), value: Buffer.from(value)}})
        }
        await client.kv.txn({compare: [], success: ops, failure: []}, {deadline: Date.now() + 30_000})
      }
    }
    await Promise.all(Array.from({length: 4}, worker))
  } finally {
    client.close()
  }
}
