// Differential test of leases ls's decode fast paths: for many generated and hostile inputs, the fast paths (the
// char-code IPv4 parser, the subnet key shortcut in decodeLeases, decodeLeaseAttrsFast, decodeVxlanDataFast) must
// give exactly what the slow, Go-faithful paths give (the split-and-regex IPv4 parser they replaced, flannel's
// regular expression in parseSubnetKey, the general JSON decoders of gojson.ts). Inputs: the go-vectors, every
// value shape flanneld writes in each release, and single-character mutations of them (escapes, case, white space,
// duplicate keys, numbers as Go parses them, lone surrogates, invalid UTF-8 as the store decodes it).

import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {describe, test} from 'node:test'

import {parseIPv4, parseIPv4Range} from '../../src/core/ipv4.js'
import {
  decodeLeaseAttrs,
  decodeLeaseAttrsFast,
  decodeLeaseAttrsGeneral,
  decodeVxlanData,
  decodeVxlanDataGeneral,
  isVxlanDataOf,
} from '../../src/core/lease-value.js'
import {compareLeases, decodeLeases, type Lease, type MalformedKey, type RawKV} from '../../src/core/leases.js'
import {parseSubnetKey} from '../../src/core/subnet-key.js'

/** A deterministic generator (the failures it finds must be reproducible). */
function rng(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32
  }
}
const rand = rng(12)
const pick = <T>(a: readonly T[]): T => a[Math.floor(rand() * a.length)]!
const int = (n: number) => Math.floor(rand() * n)

const vectorsDir = new URL('../fixtures/go-vectors/', import.meta.url)
function vectorInputs(name: string): Array<string | null> {
  const f = JSON.parse(readFileSync(new URL(`${name}.json`, vectorsDir), 'utf8')) as {
    vectors: Array<{in: unknown}>
  }
  return f.vectors.map((v) => v.in).filter((x): x is string | null => x === null || typeof x === 'string') // run-length encoded ones are deep nesting
}

/** The IPv4 parser the char-code scan replaced (split on dots, a regular expression per octet). */
function parseIPv4Reference(s: string): number | null {
  const parts = s.split('.')
  if (parts.length !== 4) return null
  let n = 0
  for (const p of parts) {
    if (!/^(?:0|[1-9]\d{0,2})$/.test(p)) return null
    const v = Number(p)
    if (v > 255) return null
    n = n * 256 + v
  }
  return n
}

const hex2 = (b: number) => b.toString(16).padStart(2, '0')
const octet = () => pick([String(int(256)), String(int(10)), '0', '255', '256', '01', '00', '999', '1000', ''])
const ip4 = () =>
  rand() < 0.7 ? `${int(256)}.${int(256)}.${int(256)}.${int(256)}` : [octet(), octet(), octet(), octet()].join('.')
const mac = () =>
  rand() < 0.8
    ? Array.from({length: 6}, () => hex2(int(256))).join(':')
    : pick(['C6:D2:32:6F:8F:44', 'c6-d2-32-6f-8f-44', 'c6d2.326f.8f44', 'c6:d2:32:6f:8f', '', 'zz:d2:32:6f:8f:44'])
const vni = () => pick(['1', '0', '4096', '16777215', '4294967295', '4294967296', '01', '-1', '1.0', '1e2', '-0'])

/** Every value shape flanneld writes, by release (docs/flannel.md §2), with random contents. */
function flanneldValue(): string {
  const ip = ip4()
  const vx = pick([
    `{"VNI":${vni()},"VtepMAC":"${mac()}"}`, // 0.14+
    `{"VtepMAC":"${mac()}"}`, // before 0.14
  ])
  const v6 = pick(['null', '"fd00::1"', '"fc00:1:2::3"', '"::ffff:10.0.0.1"', '"1.2.3.4"', '"fd00::g"', '""'])
  return pick([
    `{"PublicIP":"${ip}","PublicIPv6":null,"BackendType":"vxlan","BackendData":${vx}}`, // 0.15+
    `{"PublicIP":"${ip}","BackendType":"vxlan","BackendData":${vx}}`, // before 0.15
    `{"PublicIP":"${ip}","PublicIPv6":${v6},"BackendType":"vxlan","BackendData":${vx},"BackendV6Data":${vx}}`,
    `{"PublicIP":"${ip}","PublicIPv6":null,"BackendType":"host-gw"}`,
    `{"PublicIP":"${ip}","BackendType":"host-gw"}`,
    `{"PublicIP":"${ip}","PublicIPv6":null}`, // udp: no BackendType
    `{"PublicIP":"${ip}"}`,
    `{"PublicIP":"${ip}","PublicIPv6":null,"BackendType":"udp","BackendData":null}`,
    `{"PublicIP":"${ip}","PublicIPv6":null,"BackendType":"wireguard","BackendData":{"PublicKey":"aGVsbG8+/w==","Port":51820}}`,
    `{"PublicIP":"${ip}","PublicIPv6":null,"BackendType":"ipip","BackendData":{}}`,
    `{"PublicIP":"${ip}","PublicIPv6":null,"BackendType":"extension","BackendData":{"A":-0,"B":"x","C":-12}}`,
  ])
}

/** One hostile change to a value: escapes, case, white space, duplicates, numbers, surrogates, bad bytes. */
function mutate(v: string): string {
  const at = int(v.length + 1)
  const ins = (s: string) => v.slice(0, at) + s + v.slice(at)
  switch (int(14)) {
    case 0:
      return ins(pick([' ', '\t', '\n', '\r', '\u00a0', '\ufeff']))
    case 1:
      return v.slice(0, at) + v.slice(at + 1) // a character dropped
    case 2:
      return ins(pick(['\\u0041', '\\"', '\\\\', '\\/', '\\n', '\\ud800', '\\udc00\\ud800']))
    case 3:
      return v.replace(pick(['PublicIP', 'BackendType', 'BackendData', 'VNI', 'VtepMAC', 'PublicIPv6']), (k) =>
        pick([k.toLowerCase(), k.toUpperCase(), k.replace('k', '\u212a'), k.replace('s', '\u017f')]),
      )
    case 4:
      return v.replace(/\}$/, pick([',"PublicIP":"1.2.3.4"}', ',"BackendType":"host-gw"}', ',"X":1}', ',}']))
    case 5:
      return v.replace(/"VNI":\d+/, `"VNI":${pick(['1.0', '1e0', '-1', '01', '18446744073709551616', '1E2', '0x1'])}`)
    case 6:
      return ins(pick(['\ud800', '\udc00', '\ud83d\ude00', '\u2028', '\u0000', '\u001f', '\u007f']))
    case 7:
      // invalid UTF-8 bytes, as the store decodes them (U+FFFD)
      return Buffer.concat([
        Buffer.from(v.slice(0, at)),
        Buffer.from([pick([0xff, 0xc0, 0xe2, 0x80])]),
        Buffer.from(v.slice(at)),
      ]).toString()
    case 8:
      return v.replace(
        /"([0-9.]+)"/,
        (_, a: string) => `"${pick([a + '.', '0' + a, a.replace('.', '..'), ' ' + a, a + '%'])}"`,
      )
    case 9:
      return v.replace('null', pick(['nul', 'NULL', 'true', '0', '""', '{}', '[]']))
    case 10:
      return v.slice(0, at) // truncated
    case 11:
      return v.replace(/:"([a-z-]+)"/, (_, t: string) => `:"${pick([t.toUpperCase(), t + ' ', t + '\u00e9', ''])}"`)
    case 12:
      return v.replace(/\{"/, '{"BackendData":{"VNI":9},"')
    default:
      return ins(pick(['{', '}', '[', ']', ',', ':', '"']))
  }
}

function values(count: number): string[] {
  const out = [...vectorInputs('leaseAttrs').filter((x): x is string => x !== null)]
  for (let i = 0; i < count; i++) {
    let v = flanneldValue()
    const m = int(4) // 0-3 mutations
    for (let k = 0; k < m; k++) v = mutate(v)
    out.push(v)
  }
  return out
}

describe('IPv4: the char-code scan parses exactly what the split-and-regex parser did', () => {
  test('go-vectors, generated addresses and random strings', () => {
    const inputs = [...vectorInputs('parseIP4').filter((x): x is string => x !== null)]
    for (let i = 0; i < 20_000; i++) inputs.push(ip4())
    const alphabet = '0123456789....a: -x\u0661'
    for (let i = 0; i < 50_000; i++)
      inputs.push(Array.from({length: int(18)}, () => alphabet[int(alphabet.length)]).join(''))
    for (const s of inputs) {
      assert.equal(parseIPv4(s), parseIPv4Reference(s), JSON.stringify(s))
      // the same answer for the address embedded in other text
      assert.equal(parseIPv4Range(`x"${s}"y`, 2, 2 + s.length), parseIPv4Reference(s), JSON.stringify(s))
    }
  })
})

describe('lease values: the fast paths answer what the general (Go) decoders answer', () => {
  const inputs = values(40_000)

  test('decodeLeaseAttrs = decodeLeaseAttrsGeneral', () => {
    let fast = 0
    for (const v of inputs) {
      if (decodeLeaseAttrsFast(v) !== null) fast++
      assert.deepStrictEqual(decodeLeaseAttrs(v), decodeLeaseAttrsGeneral(v), JSON.stringify(v))
    }
    // the generator does reach the fast path (most unmutated values) and the fallback (the rest)
    assert.ok(fast > inputs.length / 5 && fast < inputs.length, `fast path taken ${fast} of ${inputs.length}`)
  })

  test('decodeVxlanData = decodeVxlanDataGeneral (BackendData of the values above, and the go-vectors)', () => {
    const raws = new Set<string | null>(vectorInputs('vxlanLeaseData'))
    for (const v of inputs) {
      const a = decodeLeaseAttrsGeneral(v)
      if (a.ok) raws.add(a.value.backendData)
    }
    for (let i = 0; i < 5_000; i++) raws.add(mutate(`{"VNI":${vni()},"VtepMAC":"${mac()}"}`))
    for (const raw of raws) assert.deepStrictEqual(decodeVxlanData(raw), decodeVxlanDataGeneral(raw), String(raw))
    // isVxlanDataOf (leaseToJson's shortcut for JSON.parse of BackendData) says yes exactly when the parse gives
    // {VNI, VtepMAC} of the decoded data with those two keys in that order
    let yes = 0
    for (const raw of raws) {
      if (raw === null) continue
      const d = decodeVxlanDataGeneral(raw)
      if (!d.ok) continue
      let parsed: unknown
      try {
        parsed = JSON.parse(raw)
      } catch {
        parsed = undefined
      }
      const same =
        JSON.stringify(parsed) === JSON.stringify({VNI: d.value.vni, VtepMAC: d.value.vtepMAC}) &&
        /^\{"VNI":\d+,"VtepMAC":"[0-9a-f:]{17}"\}$/.test(raw)
      assert.equal(isVxlanDataOf(raw, d.value), same, raw)
      if (same) yes++
    }
    assert.ok(yes > 1000, `isVxlanDataOf true ${yes} times`)
  })
})

/** decodeLeases with only the slow paths: flannel's key regex, the general decoders (as before the fast paths). */
function decodeLeasesSlow(kvs: readonly RawKV[]): {leases: Lease[]; malformed: MalformedKey[]} {
  const leases: Lease[] = []
  const malformed: MalformedKey[] = []
  for (const kv of kvs) {
    const sk = parseSubnetKey(kv.key)
    if (!sk) {
      malformed.push({key: kv.key, value: kv.value, error: `failed to parse subnet key ${kv.key}`})
      continue
    }
    const attrs = decodeLeaseAttrsGeneral(kv.value)
    if (!attrs.ok) {
      malformed.push({key: kv.key, value: kv.value, error: `error decoding subnet lease JSON: ${attrs.error}`})
      continue
    }
    const vx = attrs.value.backendType === 'vxlan' ? decodeVxlanDataGeneral(attrs.value.backendData) : null
    leases.push({
      key: kv.key,
      subnet: sk.subnet,
      ipv6Subnet: sk.ipv6Subnet,
      attrs: attrs.value,
      value: kv.value,
      vxlan: vx?.ok ? vx.value : null,
      createRevision: kv.createRevision,
      modRevision: kv.modRevision,
      leaseId: kv.lease,
      reserved: kv.lease === '0',
    })
  }
  leases.sort(compareLeases)
  return {leases, malformed}
}

function subnetKeys(count: number): string[] {
  const out = vectorInputs('subnetKey').filter((x): x is string => x !== null)
  const prefixes = ['/coreos.com/network/subnets/', '/run/flannel/a1.2/subnets/', '', 'x/', '/1.2.3.4-5/', '9/']
  for (let i = 0; i < count; i++) {
    const p = pick(prefixes)
    const len = pick(['24', '16', '31', '32', '0', '024', '99', '5', '', '-1'])
    let k = `${p}${ip4()}-${len}`
    if (rand() < 0.1) k += `&fd00:${int(99)}::-${pick(['56', '64', '0', '128'])}`
    if (rand() < 0.2) k = mutate(k)
    out.push(k)
  }
  return out
}

describe('decodeLeases: the fast paths give the leases and malformed keys the slow paths give', () => {
  test('generated keys and values, in etcd key order', () => {
    const keys = subnetKeys(30_000)
    const vals = values(keys.length)
    const kvs: RawKV[] = keys.map((key, i) => ({
      key,
      value: vals[i % vals.length]!,
      createRevision: String(i + 2),
      modRevision: String(i + 9),
      version: '1',
      lease: i % 7 === 0 ? '0' : String(7_587_869_207_405_510_000n + BigInt(i)),
    }))
    kvs.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    const fast = decodeLeases(kvs)
    const slow = decodeLeasesSlow(kvs)
    assert.ok(fast.leases.length > 1000 && fast.malformed.length > 1000) // both kinds of outcome are exercised
    assert.deepStrictEqual(fast.leases, slow.leases)
    assert.deepStrictEqual(
      [...fast.malformed].sort((a, b) => (a.key < b.key ? -1 : 1)),
      [...slow.malformed].sort((a, b) => (a.key < b.key ? -1 : 1)),
    )
  })
})

describe("decodeLease: flanneld's exact vxlan bytes (one regular expression, then the pieces in place)", () => {
  test('edge addresses, VNIs and MACs of that shape decode as the slow paths decode them', () => {
    const ips = [
      '0.0.0.0',
      '255.255.255.255',
      '1.2.3.4',
      '256.1.1.1',
      '1.2.3',
      '01.2.3.4',
      '1.2.3.4.5',
      '1..2.3',
      '...',
    ]
    const vnis = ['0', '1', '4096', '4294967295', '4294967296', '9999999999', '01', '12345678901']
    const macs = ['c6:d2:32:6f:8f:44', '00:00:00:00:00:00', 'ff:ff:ff:ff:ff:ff', 'C6:D2:32:6F:8F:44', 'c6:d2:32:6f:8f']
    const kvs: RawKV[] = []
    let i = 0
    for (const ip of ips)
      for (const v of vnis)
        for (const m of macs)
          for (const v6 of [',"PublicIPv6":null', '']) {
            const value = `{"PublicIP":"${ip}"${v6},"BackendType":"vxlan","BackendData":{"VNI":${v},"VtepMAC":"${m}"}}`
            kvs.push({
              key: `/coreos.com/network/subnets/10.${i >> 8}.${i & 255}.0-24`,
              value,
              createRevision: String(i + 2),
              modRevision: String(i + 3),
              version: '1',
              lease: i % 5 === 0 ? '0' : String(7_587_869_207_405_510_000n + BigInt(i)),
            })
            i++
          }
    // and the generated values of that shape (random contents, before any mutation)
    for (let k = 0; k < 20_000; k++) {
      const value = `{"PublicIP":"${ip4()}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":${vni()},"VtepMAC":"${mac()}"}}`
      kvs.push({
        key: `/coreos.com/network/subnets/${ip4()}-24`,
        value,
        createRevision: '2',
        modRevision: '3',
        version: '1',
        lease: String(k),
      })
    }
    const fast = decodeLeases(kvs)
    const slow = decodeLeasesSlow(kvs)
    assert.ok(
      fast.leases.length > 5_000 && fast.malformed.length > 100,
      `${fast.leases.length} leases, ${fast.malformed.length} malformed`,
    )
    assert.deepStrictEqual(fast.leases, slow.leases)
    assert.deepStrictEqual(
      [...fast.malformed].sort((a, b) => (a.key < b.key ? -1 : 1)),
      [...slow.malformed].sort((a, b) => (a.key < b.key ? -1 : 1)),
    )
  })
})
