/**
 * The core's Go decoders against vectors produced by flannel v0.28.9's own Go code (see
 * test/fixtures/go-vectors/README.md): every input must give flannel's answer, result or exact error text.
 */
import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {test} from 'node:test'
import {isDeepStrictEqual} from 'node:util'

import {parseNetworkConfig, resolveNetworkConfig} from '../../src/core/config.js'
import {goQuote, parseGoJson} from '../../src/core/gojson.js'
import {goParseIP4, goParseIP6, goParseMAC, unmarshalIP4Net, unmarshalIP6Net} from '../../src/core/goip.js'
import {
  decodeLeaseAttrs,
  decodeLeaseAttrsGeneral,
  decodeVxlanData,
  decodeVxlanDataGeneral,
  encodeLeaseAttrs,
  type LeaseAttrs,
} from '../../src/core/lease-value.js'
import {parseSubnetKey} from '../../src/core/subnet-key.js'

type Json = null | boolean | number | string | Json[] | {[k: string]: Json}
interface Vector {
  in: Json
  out: Record<string, Json>
  parse: Record<string, Json>
  start: Record<string, Json>
}

const dir = new URL('../fixtures/go-vectors/', import.meta.url)

/** Long inputs are stored run-length encoded: {"parts": [text | [unit, count], ...]}. */
function unpack<T extends Json>(x: T): T | string {
  if (x !== null && typeof x === 'object' && !Array.isArray(x) && Array.isArray(x.parts)) {
    return x.parts
      .map((p) => (typeof p === 'string' ? p : (p as [string, number])[0].repeat((p as [string, number])[1])))
      .join('')
  }
  return x
}

function load(name: string): Vector[] {
  const f = JSON.parse(readFileSync(new URL(`${name}.json`, dir), 'utf8')) as {flannel: string; vectors: Vector[]}
  assert.equal(f.flannel, 'v0.28.9')
  return f.vectors
}

/** Runs `check` over every vector; fails listing the first mismatches (input, flannel's answer, ours). */
function runAll(name: string, vectors: Vector[], check: (v: Vector) => {want: unknown; got: unknown}): void {
  const bad: string[] = []
  for (const v of vectors) {
    let r: {want: unknown; got: unknown}
    try {
      r = check(v)
    } catch (error) {
      r = {want: 'no exception', got: `threw ${(error as Error).stack}`}
    }
    if (!isDeepStrictEqual(r.want, r.got)) {
      const show = (x: unknown): string =>
        JSON.stringify(x, (_k, y: unknown) => (typeof y === 'bigint' ? String(y) : y))
      if (bad.length < 15)
        bad.push(`in ${show(unpack(v.in)).slice(0, 300)}\n  flannel ${show(r.want)}\n  ours    ${show(r.got)}`)
      else bad.push('')
    }
  }
  assert.ok(vectors.length > 0)
  assert.equal(
    bad.length,
    0,
    `${name}: ${bad.length} of ${vectors.length} vectors differ from flannel:\n${bad.filter(Boolean).join('\n')}`,
  )
}

const err = (r: {ok: boolean; error?: string}): {error: string} | null => (r.ok ? null : {error: r.error!})
const big = (x: bigint | null): string | null => (x === null ? null : String(x))

const CONFIG_DEFAULTS = {
  EnableIPv4: true,
  EnableIPv6: false,
  EnableNFTables: false,
  Network: {ip: 0, prefixLen: 0},
  IPv6Network: {ip: null, prefixLen: 0},
  SubnetMin: 0,
  SubnetMax: 0,
  IPv6SubnetMin: null,
  IPv6SubnetMax: null,
  SubnetLen: 0,
  IPv6SubnetLen: 0,
  Backend: null,
}

function goConfig(c: Record<string, Json>): Record<string, Json> {
  const o: Record<string, Json> = {...CONFIG_DEFAULTS, ...c}
  for (const k of Object.keys(o)) o[k] = unpack(o[k]!)
  return o
}

const configs = load('config')

test('ParseConfig: json.Unmarshal into subnet.Config and parseBackendType, as flannel does', () => {
  runAll('ParseConfig', configs, (v) => {
    const r = parseNetworkConfig(unpack(v.in) as string)
    if (!r.ok) return {want: v.parse, got: err(r)}
    const c = r.value
    return {
      want: v.parse.config ? goConfig(v.parse.config as Record<string, Json>) : v.parse,
      got: {
        EnableIPv4: c.enableIPv4,
        EnableIPv6: c.enableIPv6,
        EnableNFTables: c.enableNFTables,
        Network: {ip: c.network?.ip ?? 0, prefixLen: c.network?.prefix ?? 0},
        IPv6Network: {ip: big(c.ipv6Network?.ip ?? null), prefixLen: c.ipv6Network?.prefix ?? 0},
        SubnetMin: c.subnetMin,
        SubnetMax: c.subnetMax,
        IPv6SubnetMin: big(c.ipv6SubnetMin),
        IPv6SubnetMax: big(c.ipv6SubnetMax),
        SubnetLen: c.subnetLen,
        IPv6SubnetLen: c.ipv6SubnetLen,
        BackendType: c.backendType,
        Backend: c.backendRaw,
      },
    }
  })
})

test('flanneld start: ParseConfig, CheckNetworkConfig, the IP stack, the backend lookup and the vxlan config', () => {
  runAll('flanneld start', configs, (v) => {
    const r = resolveNetworkConfig(unpack(v.in) as string)
    if (v.start.error !== undefined || !r.ok)
      return {want: v.start.error ?? 'accepted', got: r.ok ? 'accepted' : r.error}
    const c = goConfig(v.start.config as Record<string, Json>)
    const e = r.value.effective
    const want: Record<string, unknown> = {backendType: v.start.backendType, vxlan: v.start.vxlan ?? null}
    const got: Record<string, unknown> = {
      backendType: e.backendType,
      vxlan: e.vxlan && {
        vni: e.vxlan.vni,
        port: e.vxlan.port,
        mtu: e.vxlan.mtu,
        gbp: e.vxlan.gbp,
        learning: e.vxlan.learning,
        directRouting: e.vxlan.directRouting,
      },
    }
    if (c.EnableIPv4) {
      want.ipv4 = {network: c.Network, subnetLen: c.SubnetLen, subnetMin: c.SubnetMin, subnetMax: c.SubnetMax}
      got.ipv4 = e.ipv4 && {
        network: {ip: e.ipv4.network.ip, prefixLen: e.ipv4.network.prefix},
        subnetLen: e.ipv4.subnetLen,
        subnetMin: e.ipv4.subnetMin,
        subnetMax: e.ipv4.subnetMax,
      }
    }
    if (c.EnableIPv6) {
      want.ipv6 = {
        network: c.IPv6Network,
        subnetLen: c.IPv6SubnetLen,
        subnetMin: c.IPv6SubnetMin,
        subnetMax: c.IPv6SubnetMax,
      }
      got.ipv6 = e.ipv6 && {
        network: {ip: big(e.ipv6.network.ip), prefixLen: e.ipv6.network.prefix},
        subnetLen: e.ipv6.subnetLen,
        subnetMin: big(e.ipv6.subnetMin),
        subnetMax: big(e.ipv6.subnetMax),
      }
    }
    return {want, got}
  })
})

const attrs = load('leaseAttrs')

function ourAttrs(a: LeaseAttrs): Record<string, Json> {
  return {
    PublicIP: a.publicIP,
    PublicIPv6: big(a.publicIPv6),
    BackendType: a.backendType,
    BackendData: a.backendData,
    BackendV6Data: a.backendV6Data,
  }
}

for (const [name, decode] of [
  ['decodeLeaseAttrs', decodeLeaseAttrs],
  ['decodeLeaseAttrsGeneral', decodeLeaseAttrsGeneral],
] as const) {
  test(`lease.LeaseAttrs json.Unmarshal (kvToIPLease) and json.Marshal: ${name}`, () => {
    runAll(name, attrs, (v) => {
      const r = decode(unpack(v.in) as string)
      if (!r.ok || v.out.error !== undefined) return {want: v.out, got: r.ok ? 'decoded' : err(r)}
      const want = {
        PublicIPv6: null,
        BackendType: '',
        BackendData: null,
        BackendV6Data: null,
        ...(v.out.attrs as object),
      }
      for (const k of Object.keys(want) as Array<keyof typeof want>) want[k] = unpack(want[k]) as never
      return {
        want: {attrs: want, encoded: unpack(v.out.encoded!)},
        got: {attrs: ourAttrs(r.value), encoded: encodeLeaseAttrs(r.value)},
      }
    })
  })
}

const vxlan = load('vxlanLeaseData')

for (const [name, decode] of [
  ['decodeVxlanData', decodeVxlanData],
  ['decodeVxlanDataGeneral', decodeVxlanDataGeneral],
] as const) {
  test(`vxlan BackendData as the vxlan backend decodes it (vxlanLeaseAttrs): ${name}`, () => {
    runAll(name, vxlan, (v) => {
      const r = decode(unpack(v.in) as string | null)
      return {want: v.out, got: r.ok ? {VNI: r.value.vni, VtepMAC: r.value.vtepMAC} : err(r)}
    })
  })
}

test('net.ParseMAC', () => {
  runAll('ParseMAC', load('parseMAC'), (v) => {
    const r = goParseMAC(v.in as string)
    return {want: v.out, got: r.ok ? {mac: r.value} : err(r)}
  })
})

test('ip.ParseIP4 and ip.ParseIP6', () => {
  runAll('ParseIP4', load('parseIP4'), (v) => {
    const r = goParseIP4(v.in as string)
    return {want: v.out, got: r.ok ? {ip: r.value} : err(r)}
  })
  runAll('ParseIP6', load('parseIP6'), (v) => {
    const r = goParseIP6(v.in as string)
    return {want: v.out, got: r.ok ? {ip: String(r.value)} : err(r)}
  })
})

const attempt = <T>(f: () => T): {ok: true; value: T} | {ok: false; error: string} => {
  try {
    return {ok: true, value: f()}
  } catch (error) {
    return {ok: false, error: (error as Error).message}
  }
}

test('ip.IP4Net and ip.IP6Net UnmarshalJSON (raw token bytes)', () => {
  runAll('IP4Net.UnmarshalJSON', load('ip4NetJSON'), (v) => {
    const r = attempt(() => unmarshalIP4Net(v.in as string))
    return {want: v.out, got: r.ok ? {ip: r.value.ip, prefixLen: r.value.prefix} : err(r)}
  })
  runAll('IP6Net.UnmarshalJSON', load('ip6NetJSON'), (v) => {
    const r = attempt(() => unmarshalIP6Net(v.in as string))
    return {want: v.out, got: r.ok ? {ip: String(r.value.ip), prefixLen: r.value.prefix} : err(r)}
  })
})

test('subnet.ParseSubnetKey', () => {
  runAll('ParseSubnetKey', load('subnetKey'), (v) => {
    const k = parseSubnetKey(v.in as string)
    // flannel returns an empty IP6Net for `&::-0`; kvToIPLease then treats the lease as IPv4-only, as we do with null.
    const sn6 = v.out.sn6 as {ip: string; prefixLen: number} | null
    const want = {sn4: v.out.sn4, sn6: sn6 && sn6.ip === '0' && sn6.prefixLen === 0 ? null : sn6}
    return {
      want,
      got: {
        sn4: k && {ip: k.subnet.ip, prefixLen: k.subnet.prefix},
        sn6: k?.ipv6Subnet ? {ip: String(k.ipv6Subnet.ip), prefixLen: k.ipv6Subnet.prefix} : null,
      },
    }
  })
})

test('JSON strings: decoding (lone surrogates become U+FFFD) and json.Marshal of strings', () => {
  runAll('json string', load('jsonString'), (v) => {
    const r = attempt(() => parseGoJson(v.in as string))
    if (!r.ok) return {want: v.out, got: err(r)}
    const s = r.value.kind === 'string' ? r.value.value : `not a string: ${r.value.kind}`
    return {want: v.out, got: {value: s, encoded: goQuote(s)}}
  })
  runAll('json.Marshal(string)', load('quote'), (v) => ({want: v.out, got: {encoded: goQuote(v.in as string)}}))
})

test("issue 14's examples are among the vectors, with flannel's answers", () => {
  const find = (name: string, input: string | null): Vector => {
    const v = load(name).find((x) => unpack(x.in) === input)
    assert.ok(v, `${name}: ${input} is not a vector`)
    return v
  }
  const start = (input: string): string => {
    const r = resolveNetworkConfig(input)
    return r.ok ? 'accepted' : r.error
  }
  const cases: Array<[string, string]> = [
    ['{"Network":"10.0.0.0/8","Backend":{"Type":"vxlan","VNI":9007199254740992}}', 'accepted'],
    ['{"Network":"10.0.0.0/8","SubnetLen":18446744073709551615}', 'SubnetLen must be less than /31'],
    ['{"Network":"10.0.0.0/8","ſubnetLen":20,"Backend":{"Type":"vxlan"}}', 'accepted'],
    ['{"Network":"10.0.0.0/8","Backend":{"Type":"İpip"}}', 'accepted'],
    ['{"Network":"10.0.0.0/8","Backend":{"Type":"Foo"}}', 'unknown backend type: foo'],
    [
      '{"Network":"10.0.0.0/8","Backend":{"Type":"vxlan","GBP":1}}',
      'error decoding VXLAN backend config: json: cannot unmarshal number into Go struct field VXLANConfig.gbp of type bool',
    ],
    ['{"EnableIPv4":1}', 'json: cannot unmarshal number into Go struct field Config.EnableIPv4 of type bool'],
    [
      '{"Network":"::ffff:10.0.0.0/104","Backend":{"Type":"vxlan"}}',
      'network is too small. Minimum useful network prefix is /28',
    ],
    ['1.', "invalid character ' ' after decimal point in numeric literal"],
    ['nul', "invalid character ' ' in literal null (expecting 'l')"],
    ['-', "invalid character ' ' in numeric literal"],
    ['"\\u12"', `invalid character '"' in \\u hexadecimal character escape`],
    ['é', "invalid character 'Ã' looking for beginning of value"],
    ['['.repeat(10000) + ']'.repeat(10000), 'json: cannot unmarshal array into Go value of type subnet.Config'],
    ['['.repeat(10001) + ']'.repeat(10001), "invalid character '[' exceeded max depth"],
  ]
  for (const [input, answer] of cases) {
    const v = find('config', input)
    assert.equal(v.start.error ?? 'accepted', answer, input.slice(0, 80))
    assert.equal(start(input), answer, input.slice(0, 80))
  }
  // IP4Net.UnmarshalJSON accepts the IPv4-mapped CIDR, with Mask.Size() out of 128.
  const mapped = parseNetworkConfig('{"Network":"::ffff:10.0.0.0/104"}')
  assert.ok(mapped.ok)
  assert.deepEqual([mapped.value.network?.ip, mapped.value.network?.prefix], [0x0a000000, 104])
  const lease: Array<[string, string]> = [
    ['{"PublicIP":"bad","PublicIP":"10.0.0.1"}', 'invalid IP address format'],
    [
      '{"BackendType":5,"BackendType":"vxlan"}',
      'json: cannot unmarshal number into Go struct field LeaseAttrs.BackendType of type string',
    ],
  ]
  for (const [input, answer] of lease) {
    assert.equal(find('leaseAttrs', input).out.error, answer)
    const r = decodeLeaseAttrs(input)
    assert.equal(r.ok ? 'decoded' : r.error, answer)
  }
  const bd: Array<[string | null, Json]> = [
    [null, {error: 'unexpected end of JSON input'}],
    ['{}', {VNI: 0, VtepMAC: ''}],
    ['null', {VNI: 0, VtepMAC: ''}],
    ['{"VNI":1,"VtepMAC":""}', {error: 'invalid MAC address'}],
    ['{"VNI":"1","VtepMAC":""}', {error: 'invalid MAC address'}],
  ]
  for (const [input, answer] of bd) {
    assert.deepEqual(find('vxlanLeaseData', input).out, answer)
    const r = decodeVxlanData(input)
    assert.deepEqual(r.ok ? {VNI: r.value.vni, VtepMAC: r.value.vtepMAC} : {error: r.error}, answer)
  }
  const s = find('jsonString', '"\\ud800"')
  assert.deepEqual(s.out, {value: '\ufffd', encoded: '"\ufffd"'})
})
