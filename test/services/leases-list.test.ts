// listLeases decodes, filters and shapes one key at a time (so each Lease can be dropped early) and sorts at the end;
// its result must be exactly what decodeLeases -> filter -> TimeToLive -> leaseToJson gives, for every filter, with
// and without TTLs, on keys in etcd order with duplicates of a subnet, dual-stack keys and malformed keys. The TTLs are
// looked up first (issue 12: the sweep runs while nothing decoded is held).

import assert from 'node:assert/strict'
import {describe, test} from 'node:test'

import {decodeLease, decodeLeases, isMalformed, type NetworkSnapshot, type RawKV} from '../../src/core/leases.js'
import {jsonPieces, renderArrayWith, renderElementsWith} from '../../src/render/json.js'
import {leaseJsonText, LeaseTexts} from '../../src/render/leases-json.js'
import {
  isoSeconds,
  leaseFilter,
  type LeaseRows,
  leaseToJson,
  type ListOptions,
  listLeases,
} from '../../src/services/leases.js'
import type {NetworkReader} from '../../src/store/port.js'

let seed = 99
const rand = () => (seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0) / 2 ** 32
const int = (n: number) => Math.floor(rand() * n)

function kvs(n: number): RawKV[] {
  const out: RawKV[] = []
  for (let i = 0; i < n; i++) {
    const x = int(8)
    const y = int(256)
    const prefix = [24, 24, 24, 16, 25, 23][int(6)]!
    let key = `/coreos.com/network/subnets/10.${x}.${y}.0-${prefix}`
    if (int(10) === 0) key += `&fd00:${int(4)}::-64`
    if (int(30) === 0) key = `/coreos.com/network/subnets/junk-${i}`
    if (int(40) === 0) key = `/coreos.com/network/subnets/10.${x}.${y}.0-24x${i}` // parses: the regex is not anchored at the start
    const value =
      int(25) === 0
        ? 'not json'
        : `{"PublicIP":"192.168.${int(4)}.${int(256)}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:00:${int(
            256,
          )
            .toString(16)
            .padStart(2, '0')}"}}`
    out.push({
      key,
      value,
      createRevision: String(i + 2),
      modRevision: String(i + 3),
      version: '1',
      lease: int(8) === 0 ? '0' : String(1000 + int(n)),
    })
  }
  return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
}

function reader(subnets: RawKV[], withTtls: boolean): NetworkReader & {asked: string[][]} {
  const asked: string[][] = []
  const snap: NetworkSnapshot = {revision: '77', config: null, subnets, foreign: []}
  return {
    asked,
    layout: {config: '/c', subnets: '/s', range: '/'} as never,
    source: 'test',
    readNetwork: () => Promise.resolve(snap),
    leaseTtls: (ids) => {
      const list = [...ids]
      asked.push(list)
      if (!withTtls) return Promise.resolve(null)
      // some IDs unknown, some expired
      return Promise.resolve(new Map(list.filter((id) => Number(id) % 5 !== 0).map((id) => [id, (Number(id) % 7) - 1])))
    },
    close: () => {},
  }
}

/** listLeases as it was written before: decodeLeases, filter, one TTL lookup, leaseToJson. */
async function reference(r: NetworkReader, o: ListOptions) {
  const keep = leaseFilter(o)
  const snap = await r.readNetwork()
  const decoded = decodeLeases(snap.subnets)
  const leases = decoded.leases.filter(keep)
  const ttls = o.withTtl ? await r.leaseTtls(leases.map((l) => l.leaseId)) : null
  const memo = new Map<number, string>()
  const expires = (t: number) => memo.get(t) ?? (memo.set(t, isoSeconds(o.now + t * 1000)), memo.get(t)!)
  return {
    revision: snap.revision,
    source: r.source,
    ttlKnown: ttls !== null,
    leases: leases.map((l) => leaseToJson(l, ttls?.get(l.leaseId) ?? null, o.now, expires)),
    malformed: decoded.malformed,
    total: decoded.leases.length,
  }
}

describe('listLeases = decodeLeases, filter, TimeToLive, leaseToJson', () => {
  const data = kvs(8_000)
  const now = Date.UTC(2026, 11, 1, 12, 0, 0, 500)
  for (const filter of [
    {},
    {publicIP: '192.168.1.7'},
    {subnet: '10.3.0.0/16'},
    {subnet: '10.0.0.0/8', publicIP: '192.168.0.1'},
  ])
    for (const withTtl of [false, true])
      for (const ttlsKnown of withTtl ? [true, false] : [true])
        test(`${JSON.stringify(filter)}, withTtl ${withTtl}${withTtl && !ttlsKnown ? ' (source without TTLs)' : ''}`, async () => {
          const o: ListOptions = {withTtl, now, ...filter}
          const a = reader(data, ttlsKnown)
          const b = reader(data, ttlsKnown)
          const got = await listLeases(a, o)
          assert.ok(got.total > 5_000 && got.malformed.length > 100)
          assert.deepStrictEqual(got, await reference(b, o))
          // The TTLs are looked up before anything is decoded: without a filter, the lease of every subnet key (in
          // listing order, reserved keys left out; a malformed key's lease too: its TTL is not shown); with
          // --public-ip/--subnet, only those of the leases that pass: the reference's, less the reserved '0'.
          const filtered = 'publicIP' in filter || 'subnet' in filter
          const keep = leaseFilter(o)
          const want = data
            .filter((kv) => {
              if (!filtered) return kv.lease !== '0'
              const l = decodeLease(kv)
              return !isMalformed(l) && !l.reserved && keep(l)
            })
            .map((kv) => kv.lease)
          assert.deepStrictEqual(a.asked, withTtl ? [want] : [])
          if (withTtl && filtered)
            assert.deepStrictEqual(new Set(want), new Set(b.asked[0]!.filter((id) => id !== '0')))
        })
})

describe("listLeases with leases ls --json's rows (LeaseTexts)", () => {
  // flanneld's bytes under keys and revisions a hostile writer chose: quotes, backslashes, controls, non-ASCII,
  // lone surrogates (these take leaseJsonText's general path), beside the usual mixture
  const hostile = kvs(600).map((kv, i) => ({
    ...kv,
    key: kv.key.replace(
      '/subnets/',
      ['/sub"nets/', '/sub\\nets/', '/sub\u0007nets/', '/subnéts/', '/sub\ud800nets/'][i % 5]!,
    ),
    modRevision: i % 7 === 0 ? '1\n2' : kv.modRevision,
  }))
  const data = [...kvs(8_000), ...hostile]
  const now = Date.UTC(2026, 11, 1, 12, 0, 0, 500)
  for (const filter of [{}, {publicIP: '192.168.1.7'}, {subnet: '10.3.0.0/16'}])
    for (const withTtl of [false, true])
      test(`${JSON.stringify(filter)}, withTtl ${withTtl}: each row is leaseJsonText of listLeases' LeaseJson`, async () => {
        const o: ListOptions = {withTtl, now, ...filter}
        for (const indent of ['    ', '']) {
          const texts = new LeaseTexts(indent)
          let fast = 0
          const counted: LeaseRows<number> = {
            fromJson: (j) => texts.fromJson(j),
            fromVxlanText: (kv, t, ttl, expiresAt) => {
              const r = texts.fromVxlanText(kv, t, ttl, expiresAt)
              if (r !== null) fast++
              return r
            },
          }
          const got = await listLeases(reader(data, true), o, counted)
          const want = await listLeases(reader(data, true), o)
          assert.deepStrictEqual(
            got.leases.map((i) => texts.render(i, indent)),
            want.leases.map((j) => leaseJsonText(j, indent)),
          )
          assert.deepStrictEqual({...got, leases: null}, {...want, leases: null})
          // without a filter most leases take the fast path; a filter needs the decoded lease
          if (Object.keys(filter).length === 0) assert.ok(fast > 6_000, `fast ${fast}`)
          else assert.equal(fast, 0)
        }
      })

  test('the document written with LeaseTexts.render is JSON.stringify of the LeaseJson result, at any depth', async () => {
    const o: ListOptions = {withTtl: true, now}
    const want = await listLeases(reader(data, true), o)
    const texts = new LeaseTexts('    ')
    const got = await listLeases(reader(data, true), o, texts)
    renderElementsWith(got.leases, texts.render)
    assert.equal([...jsonPieces(got)].join(''), JSON.stringify(want, null, 2))
    assert.equal([...jsonPieces({a: {b: got}})].join(''), JSON.stringify({a: {b: want}}, null, 2))
  })

  test('renderArray writes the same document in pieces of bytes, each whole UTF-8, at any depth', async () => {
    const o: ListOptions = {withTtl: true, now}
    const want = await listLeases(reader(data, true), o)
    const texts = new LeaseTexts('    ')
    const got = await listLeases(reader(data, true), o, texts)
    renderArrayWith(got.leases, texts.renderArray)
    const text = (value: unknown) => {
      const pieces = [...jsonPieces(value)]
      const bytes = pieces.filter((p) => typeof p !== 'string')
      for (const b of bytes) assert.equal(Buffer.from(Buffer.from(b).toString()).compare(b), 0) // whole characters
      return {
        bytes: bytes.length,
        text: pieces.map((p) => (typeof p === 'string' ? p : Buffer.from(p).toString())).join(''),
      }
    }
    const top = text(got)
    assert.ok(top.bytes > 3, `${top.bytes} pieces of bytes`) // ~5 MB of texts: several 1 MiB pieces
    assert.equal(top.text, JSON.stringify(want, null, 2))
    assert.equal(text({a: {b: got}}).text, JSON.stringify({a: {b: want}}, null, 2)) // another depth: strings
    const none: number[] = []
    renderArrayWith(none, texts.renderArray)
    assert.equal(text({leases: none}).text, JSON.stringify({leases: []}, null, 2))
  })

  test('texts longer than a block and texts in every script survive the bytes they are kept in', () => {
    const texts = new LeaseTexts('')
    const long = 'x'.repeat(3 << 20)
    const odd = ['é', '\u{1f600}', '日本', '\ud800'.normalize(), long, 'a']
    const lease = decodeLease({
      key: '/s/10.0.1.0-24',
      value: '{"PublicIP":"198.18.0.1"}',
      createRevision: '1',
      modRevision: '1',
      version: '1',
      lease: '0',
    })
    assert.ok(!isMalformed(lease))
    const ids = odd.map((key) => texts.fromJson({...leaseToJson(lease, null, 0), key}))
    ids.forEach((id, k) => assert.equal(JSON.parse(texts.render(id, '')).key, odd[k]))
  })
})
