// The floor for reading flannel's leases from etcd in Node: a minimal gRPC client over node:http2 with hand-coded
// protobuf messages (no grpc-js, no protobufjs, no etcd3), doing exactly what `leases ls` needs and nothing else.
//
//   node --import tsx bench/h2-floor.ts range <endpoint> <prefix>            one Range over the prefix, decoded to
//                                                                           strings as leases ls needs them
//   node --import tsx bench/h2-floor.ts ttl <endpoint> <ids-file> [inflight=64]   LeaseTimeToLive for every ID
//
// Prints {"ms": ..., "count": ..., "errors": ...} on stdout; only the work is timed (the connection is already up:
// one call is made first). Only plain-http loopback endpoints are accepted.

import {readFileSync} from 'node:fs'
import http2 from 'node:http2'
import {performance} from 'node:perf_hooks'

const [mode, endpoint, arg, inflightArg] = process.argv.slice(2)
if ((mode !== 'range' && mode !== 'ttl') || !endpoint || !arg) {
  process.stderr.write('usage: h2-floor.ts range <endpoint> <prefix> | ttl <endpoint> <ids-file> [inflight]\n')
  process.exit(2)
}
if (!/^http:\/\/127\.0\.0\.1:\d+$/.test(endpoint)) {
  process.stderr.write(`refusing endpoint ${endpoint} (plain-http loopback only)\n`)
  process.exit(2)
}

function varint(v: bigint, out: number[]): void {
  while (v > 127n) {
    out.push(Number(v & 127n) | 128)
    v >>= 7n
  }
  out.push(Number(v))
}

function bytesField(field: number, b: Buffer, out: number[]): void {
  out.push((field << 3) | 2)
  varint(BigInt(b.length), out)
  for (const x of b) out.push(x)
}

/** One gRPC message frame: flag 0, big-endian length, the message. */
function frame(msg: number[]): Buffer {
  const b = Buffer.allocUnsafe(5 + msg.length)
  b[0] = 0
  b.writeUInt32BE(msg.length, 1)
  Buffer.from(msg).copy(b, 5)
  return b
}

const session = http2.connect(endpoint)
session.on('error', (e) => {
  process.stderr.write(`http2: ${e.message}\n`)
  process.exit(1)
})

function call(path: string, body: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const req = session.request({
      ':method': 'POST',
      ':path': path,
      'content-type': 'application/grpc',
      te: 'trailers',
    })
    const chunks: Buffer[] = []
    let status: string | undefined
    req.on('response', (h) => {
      if (h['grpc-status'] !== undefined) status = String(h['grpc-status'])
    })
    req.on('trailers', (t) => (status = String(t['grpc-status'])))
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('error', reject)
    req.on('end', () => {
      if (status !== '0') return reject(new Error(`grpc-status ${status}`))
      const all = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)
      resolve(all.subarray(5, 5 + all.readUInt32BE(1)))
    })
    req.end(body)
  })
}

/** Reads a varint at p; returns [value as a decimal-safe number or bigint string, next position]. */
function readVarint(b: Buffer, p: number): [bigint, number] {
  let v = 0n
  let shift = 0n
  for (;;) {
    const x = b[p++]!
    v |= BigInt(x & 127) << shift
    if (x < 128) return [v, p]
    shift += 7n
  }
}

/** A small varint (< 2^53) without BigInt. */
function readSmall(b: Buffer, p: number): [number, number] {
  let v = 0
  let mul = 1
  for (;;) {
    const x = b[p++]!
    v += (x & 127) * mul
    if (x < 128) return [v, p]
    mul *= 128
  }
}

interface KV {
  key: string
  value: string
  createRevision: string
  modRevision: string
  version: string
  lease: string
}

function decodeKv(b: Buffer, p: number, end: number): KV {
  const kv: KV = {key: '', value: '', createRevision: '0', modRevision: '0', version: '0', lease: '0'}
  while (p < end) {
    const tag = b[p++]!
    const field = tag >> 3
    if ((tag & 7) === 2) {
      let len: number
      ;[len, p] = readSmall(b, p)
      const s = b.toString('utf8', p, p + len)
      if (field === 1) kv.key = s
      else if (field === 5) kv.value = s
      p += len
    } else {
      let v: bigint | number
      if (field === 6) [v, p] = readVarint(b, p)
      else [v, p] = readSmall(b, p)
      const s = String(v)
      if (field === 2) kv.createRevision = s
      else if (field === 3) kv.modRevision = s
      else if (field === 4) kv.version = s
      else if (field === 6) kv.lease = s
    }
  }
  return kv
}

function decodeRange(b: Buffer): KV[] {
  const kvs: KV[] = []
  let p = 0
  while (p < b.length) {
    const tag = b[p++]!
    if ((tag & 7) === 2) {
      let len: number
      ;[len, p] = readSmall(b, p)
      if (tag >> 3 === 2) kvs.push(decodeKv(b, p, p + len))
      p += len
    } else [, p] = readSmall(b, p)
  }
  return kvs
}

/** TTL (field 3) of a LeaseTimeToLiveResponse. */
function decodeTtl(b: Buffer): number {
  let p = 0
  while (p < b.length) {
    const tag = b[p++]!
    if ((tag & 7) === 2) {
      let len: number
      ;[len, p] = readSmall(b, p)
      p += len
      continue
    }
    let v: bigint
    ;[v, p] = readVarint(b, p)
    if (tag >> 3 === 3) return Number(BigInt.asIntN(64, v))
  }
  return 0
}

function ttlRequest(id: string): Buffer {
  const m: number[] = [0x08]
  varint(BigInt.asUintN(64, BigInt(id)), m)
  return frame(m)
}

try {
  if (mode === 'range') {
    const key = Buffer.from(arg)
    const end = Buffer.from(arg)
    end[end.length - 1]!++
    const req: number[] = []
    bytesField(1, key, req)
    bytesField(2, end, req)
    const body = frame(req)
    await call('/etcdserverpb.KV/Range', frame([0x0a, 1, 0x00])) // warm the connection
    const t0 = performance.now()
    const kvs = decodeRange(await call('/etcdserverpb.KV/Range', body))
    const ms = performance.now() - t0
    process.stdout.write(JSON.stringify({ms, count: kvs.length, errors: 0}) + '\n')
  } else {
    const ids = readFileSync(arg, 'utf8')
      .split('\n')
      .filter((l) => l !== '')
    const inflight = Number(inflightArg ?? 64)
    await call('/etcdserverpb.Lease/LeaseTimeToLive', ttlRequest(ids[0] ?? '1'))
    let next = 0
    let errors = 0
    let sum = 0
    const t0 = performance.now()
    await Promise.all(
      Array.from({length: Math.min(inflight, ids.length)}, async () => {
        while (next < ids.length) {
          const id = ids[next++]!
          try {
            const ttl = decodeTtl(await call('/etcdserverpb.Lease/LeaseTimeToLive', ttlRequest(id)))
            sum += ttl
          } catch {
            errors++
          }
        }
      }),
    )
    const ms = performance.now() - t0
    process.stdout.write(
      JSON.stringify({ms, count: ids.length, errors, meanTtl: ids.length ? sum / ids.length : 0}) + '\n',
    )
  }
} finally {
  session.close()
}
