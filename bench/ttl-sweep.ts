// Baseline for `leases ls` with TTLs: the minimal concurrent TimeToLive sweep a bare etcd3/gRPC client can do.
//
//   node --import tsx bench/ttl-sweep.ts <endpoint> <ids-file> [concurrency=64]
//
// <ids-file> holds one decimal lease ID per line. The client connects and makes one call first (so connection
// set-up is not counted), then issues leaseClient.leaseTimeToLive({ID}) for every ID with `concurrency` calls in
// flight, and prints {"sweepMs": ..., "count": ..., "errors": ...} on stdout. Only loopback endpoints are accepted.

import {readFileSync} from 'node:fs'
import {performance} from 'node:perf_hooks'

import {Etcd3} from 'etcd3'

const [endpoint, idsFile, concArg] = process.argv.slice(2)
if (!endpoint || !idsFile) {
  process.stderr.write('usage: ttl-sweep.ts <endpoint> <ids-file> [concurrency]\n')
  process.exit(2)
}
if (!/^https?:\/\/127\.0\.0\.1:\d+$/.test(endpoint)) {
  process.stderr.write(`refusing non-loopback endpoint ${endpoint}\n`)
  process.exit(2)
}
const concurrency = Number(concArg ?? 64)
const ids = readFileSync(idsFile, 'utf8')
  .split('\n')
  .filter((l) => l !== '')

const client = new Etcd3({
  hosts: endpoint,
  grpcOptions: {'grpc.max_receive_message_length': 1 << 30, 'grpc.max_send_message_length': 1 << 30},
})
try {
  await client.leaseClient.leaseTimeToLive({ID: ids[0] ?? '1'}) // warm the connection
  let next = 0
  let errors = 0
  let ttlSum = 0
  const t0 = performance.now()
  await Promise.all(
    Array.from({length: Math.min(concurrency, ids.length)}, async () => {
      while (next < ids.length) {
        const id = ids[next++]!
        try {
          const res = await client.leaseClient.leaseTimeToLive({ID: id}, {deadline: Date.now() + 30_000})
          ttlSum += Number(res.TTL)
        } catch {
          errors++
        }
      }
    }),
  )
  const sweepMs = performance.now() - t0
  process.stdout.write(
    JSON.stringify({sweepMs, count: ids.length, errors, meanTtl: ids.length ? ttlSum / ids.length : 0}) + '\n',
  )
} finally {
  client.close()
}
