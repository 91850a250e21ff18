// The lean v3 client's protobuf decoding of int64 fields (revisions, versions, lease IDs): every value, from one-byte
// varints to 10-byte ones (negative int64s) and over-long encodings whose bits past 64 are dropped, reads as the
// decimal of the signed 64-bit value, in the RangeResponse that decodeRange and scanRange/decodeKvAt/kvLeaseAt read.

import assert from 'node:assert/strict'
import {describe, test} from 'node:test'

import {decodeKvAt, decodeRange, kvLeaseAt, scanRange} from '../../src/store/v3-lean.js'

/** A varint of the low 64 bits of `v` (two's complement for negatives), as protobuf writes int64. */
function varint(v: bigint): number[] {
  let u = BigInt.asUintN(64, v)
  const out: number[] = []
  while (u > 127n) {
    out.push(Number(u & 127n) | 128)
    u >>= 7n
  }
  out.push(Number(u))
  return out
}

function field(tag: number, body: number[]): number[] {
  return [tag, ...varint(BigInt(body.length)), ...body]
}

/** A RangeResponse (header revision 9) of one KeyValue per lease encoding, each with revisions beside it. */
function rangeResponse(leases: number[][]): Buffer {
  const out: number[] = [...field(0x0a, [0x18, 9])]
  leases.forEach((lease, i) => {
    const kv = [
      ...field(0x0a, [...Buffer.from(`/k/${i}`)]),
      0x10,
      ...varint(BigInt(i + 1)),
      0x18,
      ...varint(2n ** 50n + BigInt(i)),
      0x20,
      ...varint(1n),
      ...field(0x2a, [...Buffer.from('{}')]),
      0x30,
      ...lease,
    ]
    out.push(...field(0x12, kv))
  })
  return Buffer.from(out)
}

describe('int64 fields of the lean v3 client', () => {
  let seed = 12_345
  const rand32 = () => (seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0)
  const values: bigint[] = [0n, 1n, 127n, 128n, 2n ** 49n - 1n, 2n ** 49n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n]
  values.push(
    2n ** 56n - 1n,
    2n ** 56n,
    2n ** 62n + 12_345n,
    7_587_869_873_475_920_138n,
    2n ** 63n - 1n,
    -1n,
    -(2n ** 63n),
  )
  for (let shift = 0n; shift < 64n; shift++) values.push(1n << shift, (1n << shift) - 1n, -(1n << shift))
  for (let i = 0; i < 20_000; i++)
    values.push(BigInt.asIntN(64, (BigInt(rand32()) << 32n) | BigInt(rand32())) >> BigInt(i % 40))

  test('every value reads as its signed decimal, through decodeRange and the raw listing alike', () => {
    const b = rangeResponse(values.map(varint))
    const {revision, kvs} = decodeRange(b)
    assert.equal(revision, '9')
    assert.equal(kvs.length, values.length)
    const raw = scanRange(b)
    assert.equal(raw.count, values.length)
    values.forEach((v, i) => {
      const want = String(BigInt.asIntN(64, v))
      assert.equal(kvs[i]!.lease, want, `lease ${v}`)
      assert.equal(kvs[i]!.modRevision, String(2n ** 50n + BigInt(i)))
      assert.equal(kvs[i]!.createRevision, String(i + 1))
      assert.equal(kvLeaseAt(raw.bytes, raw.start[i]!, raw.end[i]!), want)
      assert.deepStrictEqual(decodeKvAt(raw.bytes, raw.start[i]!, raw.end[i]!), kvs[i])
    })
  })

  test('an over-long 10-byte varint keeps its low 64 bits; an 11-byte one is a malformed answer', () => {
    const tenBytes = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f] // bits past 64 set
    assert.equal(decodeRange(rangeResponse([tenBytes])).kvs[0]!.lease, '-1')
    const big = [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02] // 2^64: only bit 64 set, dropped
    assert.equal(decodeRange(rangeResponse([big])).kvs[0]!.lease, '0')
    assert.throws(() => decodeRange(rangeResponse([[...tenBytes.slice(0, 9), 0xff, 0x01]])), /varint too long/)
  })
  test('a key or value whose length runs past its KeyValue is a malformed answer, in every decoder', () => {
    // the last KeyValue of the answer: its value claims 200 bytes where 2 follow (past the buffer's end too)
    const kv = [...field(0x0a, [...Buffer.from('/k/0')]), 0x2a, 200, 1, 0x7b, 0x7d]
    const answer = Buffer.from([...field(0x0a, [0x18, 9]), ...field(0x12, kv)])
    assert.throws(() => decodeRange(answer), /malformed etcd answer \(truncated\)/)
    const raw = scanRange(Buffer.from([...field(0x0a, [0x18, 9]), ...field(0x12, kv)]))
    assert.throws(() => decodeKvAt(raw.bytes, raw.start[0]!, raw.end[0]!), /malformed etcd answer \(truncated\)/)
    // a key that runs into the next KeyValue
    const long = [0x0a, 40, ...Buffer.from('/k/0')]
    const two = Buffer.from([...field(0x0a, [0x18, 9]), ...field(0x12, long), ...field(0x12, kv)])
    assert.throws(() => decodeRange(two), /malformed etcd answer \(truncated\)/)
  })
})
