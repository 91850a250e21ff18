// leases ls --json writes each lease with its own renderer (render/leases-json.ts) and streams the document through
// a byte buffer (render/output.ts). Both must give exactly JSON.stringify(result, null, 2): tested here on leases
// decoded from hostile keys and values, on LeaseJson objects someone changed, and through a pipe with multi-byte
// characters across chunk boundaries.

import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {describe, test} from 'node:test'

import {decodeLeases, type RawKV} from '../../src/core/leases.js'
import {jsonPieces, renderElementsWith} from '../../src/render/json.js'
import {leaseJsonText} from '../../src/render/leases-json.js'
import {type LeaseJson, leaseToJson} from '../../src/services/leases.js'

let seed = 7
const rand = () => (seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0) / 2 ** 32
const pick = <T>(a: readonly T[]): T => a[Math.floor(rand() * a.length)]!

const HOSTILE = [
  '',
  'plain',
  'quote"inside',
  'back\\slash',
  'nl\nand\ttab',
  '\u0000\u0001\u001f',
  '\u007f\u0080\u009f',
  '\u2028\u2029',
  '\u202e\u2066bidi',
  '\ud800lone high',
  'lone low\udc00',
  '\ud83d\ude00 pair',
  'caf\u00e9 \u4e2d\u6587',
  '\ufffd from bad bytes',
  '</script>&<>',
]

function kvs(n: number): RawKV[] {
  const out: RawKV[] = []
  for (let i = 0; i < n; i++) {
    const x = (i >> 8) & 255
    const y = i & 255
    const h = pick(HOSTILE)
    const key = pick([
      `/coreos.com/network/subnets/10.${x}.${y}.0-24`,
      `/coreos.com/network/subnets/${JSON.stringify(h).slice(1, -1)}10.${x}.${y}.0-24`,
      `/coreos.com/network/subnets/${h}/10.${x}.${y}.0-24`,
      `/coreos.com/network/subnets/10.${x}.${y}.0-24&fd00:${x}:${y}::-64`,
    ])
    const mac = `c6:d2:32:6f:${x.toString(16).padStart(2, '0')}:${y.toString(16).padStart(2, '0')}`
    const value = pick([
      `{"PublicIP":"192.168.${x}.${y}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${mac}"}}`,
      `{"PublicIP":"192.168.${x}.${y}","BackendType":"vxlan","BackendData":{"VtepMAC":"${mac.toUpperCase()}"}}`,
      `{"PublicIP":"192.168.${x}.${y}","PublicIPv6":"fd00::${y}","BackendType":"vxlan","BackendData":{"VNI":4096,"VtepMAC":"${mac}"},"BackendV6Data":{"VNI":4096,"VtepMAC":"${mac}"}}`,
      `{"PublicIP":"192.168.${x}.${y}","BackendType":${JSON.stringify(h)}}`,
      `{"PublicIP":"192.168.${x}.${y}","BackendType":"x","BackendData":{"S":${JSON.stringify(h)},"N":[1,2.5e3,{"d":null}],"B":true}}`,
      `{"PublicIP":"192.168.${x}.${y}","BackendType":"vxlan","BackendData":{"VtepMAC":"${mac}","VNI":7}}`,
      `{"PublicIP":"192.168.${x}.${y}","BackendType":"vxlan","BackendData":{"VNI":1e400,"VtepMAC":"${mac}"}}`,
      `{"PublicIP":"192.168.${x}.${y}","BackendType":"vxlan","BackendData":{"__proto__":1,"VNI":1}}`,
      `{"PublicIP":"192.168.${x}.${y}","BackendData":{"VNI":1,"VtepMAC":"${mac}","VNI":2}}`,
      `{"PublicIP":"192.168.${x}.${y}","BackendData":[1,2,3]}`,
    ])
    out.push({
      key,
      value,
      createRevision: String(i + 2),
      modRevision: pick([String(i + 9), h]),
      version: '1',
      lease: pick(['0', String(7_587_869_207_405_510_000n + BigInt(i)), h]),
    })
  }
  return out
}

const reference = (l: unknown, indent: string) => (JSON.stringify(l, null, 2) ?? 'null').replaceAll('\n', '\n' + indent)

describe('leaseJsonText is JSON.stringify(lease, null, 2), byte for byte', () => {
  const decoded = decodeLeases(kvs(6_000))
  const leases = decoded.leases.map((l, i) =>
    leaseToJson(l, pick([null, 0, 86_399, i, -1, 2 ** 40, 0.5]), 1_700_000_000_000 + i),
  )

  test('leaseToJson: backendData is the stored BackendData parsed as JSON (its text when it does not parse)', () => {
    const parse = (raw: string | null): unknown => {
      if (raw === null) return null
      try {
        return JSON.parse(raw)
      } catch {
        return raw
      }
    }
    decoded.leases.forEach((l, i) => assert.deepStrictEqual(leases[i]!.backendData, parse(l.attrs.backendData)))
    // and a lease whose decoded vxlan data is not what its BackendData says (built by hand) keeps the parse
    const l = {...decoded.leases[0]!, vxlan: {vni: 99, vtepMAC: '00:00:00:00:00:01'}}
    assert.deepStrictEqual(leaseToJson(l, null, 0).backendData, parse(l.attrs.backendData))
  })

  test('leases decoded from hostile keys and values', () => {
    assert.ok(leases.length > 4_000)
    for (const indent of ['', '    ', '\t'])
      for (const l of leases) assert.equal(leaseJsonText(l, indent), reference(l, indent))
  })

  test('LeaseJson objects that are not what leaseToJson makes fall back to JSON.stringify', () => {
    const base = leases[0]!
    const odd: unknown[] = [
      {...base, extra: 1},
      {...base, backendData: undefined},
      {...base, backendData: () => 1},
      {...base, vni: '1'},
      {...base, ttlSeconds: NaN},
      {...base, ttlSeconds: -0},
      {...base, reserved: 'yes'},
      {...base, key: undefined},
      {...base, toJSON: () => 'x'},
      {...base, backendData: {VNI: 1, VtepMAC: 'a"b'}},
      {...base, backendData: {VNI: 1, VtepMAC: 'x', more: 2}},
      {...base, backendData: {VtepMAC: 'x', VNI: 1}},
      {...base, backendData: {VNI: Infinity, VtepMAC: 'x'}},
      {...base, backendData: Object.assign(Object.create({inherited: 1}) as object, {VNI: 1, VtepMAC: 'x'})},
      {...base, backendData: new Date(0)},
      {...base, backendData: [{VNI: 1, VtepMAC: 'x'}]},
      Object.fromEntries(Object.entries(base).reverse()),
      Object.assign(Object.create({toJSON: () => 'proto'}) as object, base),
      null,
      undefined,
      'a string',
    ]
    for (const l of odd)
      for (const indent of ['', '    '])
        assert.equal(leaseJsonText(l as LeaseJson, indent), reference(l, indent), JSON.stringify(l))
  })

  test('every field of a plain lease set to every hostile string, number and null it can hold', () => {
    const base = leases.find((l) => l.vni !== null && !l.reserved)!
    const strings = ['subnet', 'ipv6Subnet', 'publicIP', 'publicIPv6', 'backendType', 'vtepMAC', 'expiresAt']
    const more = ['key', 'modRevision', 'createRevision', 'leaseId']
    const cases: LeaseJson[] = []
    for (const h of [...HOSTILE, '2026-12-02T01:00:00Z', 'fd00::1', '10.0.0.0/24'])
      for (const f of [...strings, ...more]) {
        cases.push({...base, [f]: h})
        cases.push({...base, reserved: true, ttlSeconds: null, expiresAt: null, [f]: h})
        cases.push({...base, backendData: {VNI: 7, VtepMAC: h}, [f]: h})
      }
    for (const f of strings) cases.push({...base, [f]: null})
    for (const n of [null, 0, -0, 1, -1, 0.5, 1e21, 2 ** 53, NaN, Infinity, -Infinity])
      for (const f of ['vni', 'ttlSeconds']) {
        cases.push({...base, [f]: n})
        cases.push({...base, backendData: {VNI: n ?? 0, VtepMAC: 'c6:d2:32:6f:00:01'}, [f]: n})
      }
    for (const reserved of [true, false])
      for (const ttlSeconds of [null, 5])
        for (const expiresAt of [null, '2026-12-02T01:00:00Z'])
          cases.push({...base, reserved, ttlSeconds, expiresAt}, {...base, backendData: null, reserved})
    for (const l of cases)
      for (const indent of ['', '    ', '\t'])
        assert.equal(leaseJsonText(l, indent), reference(l, indent), JSON.stringify(l))
  })

  test('a whole result through jsonPieces, with the renderer registered', () => {
    const result = {revision: '9', source: 'x', ttlKnown: true, leases, malformed: decoded.malformed, total: 1}
    renderElementsWith(leases, leaseJsonText)
    assert.equal([...jsonPieces(result)].join(''), JSON.stringify(result, null, 2))
    const empty: LeaseJson[] = []
    renderElementsWith(empty, leaseJsonText)
    assert.equal([...jsonPieces({leases: empty})].join(''), JSON.stringify({leases: empty}, null, 2))
  })
})

describe('writeJson through a pipe', () => {
  test('every byte, multi-byte characters across the ~1 MiB chunk boundaries, big pieces on their own', () => {
    // A child writes the document to a pipe; the parent compares the bytes with JSON.stringify's.
    const script = `
      import {writeJson} from './src/render/output.ts'
      const s = (i) => ['caf\\u00e9', '\\u4e2d\\u6587', '\\ud83d\\ude00', 'a'.repeat(i % 7), '\\ud800'][i % 5]
      const rows = Array.from({length: 150000}, (_, i) => ({i, s: s(i)}))
      const big = '\\u00e9'.repeat(800000)
      writeJson({rows, big, tail: rows.slice(0, 300)})
    `
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: new URL('../..', import.meta.url),
      maxBuffer: 1 << 28,
    })
    assert.equal(r.status, 0, r.stderr.toString())
    const s = (i: number) => ['caf\u00e9', '\u4e2d\u6587', '\ud83d\ude00', 'a'.repeat(i % 7), '\ud800'][i % 5]
    const rows = Array.from({length: 150_000}, (_, i) => ({i, s: s(i)}))
    const want = Buffer.from(
      JSON.stringify({rows, big: '\u00e9'.repeat(800_000), tail: rows.slice(0, 300)}, null, 2) + '\n',
    )
    assert.equal(r.stdout.length, want.length)
    assert.ok(r.stdout.equals(want))
  })
})
