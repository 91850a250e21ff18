// The --json contract: the README promises that result fields are added, never renamed. Every command's result is
// produced here in process (services on the in-memory store twin) and its field paths are compared with the committed
// list in test/fixtures/json-contract.json. A field that disappeared is a broken promise; a new field must be added
// to the list in the same change (UPDATE_JSON_CONTRACT=1 adds the new ones, and never removes any).

import assert from 'node:assert/strict'
import {readFileSync, writeFileSync} from 'node:fs'
import {describe, test} from 'node:test'

import type {NodeObservation} from '../../src/core/node-checks.js'
import {runDoctor} from '../../src/services/doctor.js'
import {expandNetwork} from '../../src/services/expand.js'
import {releaseLeases, reserveLease, unreserveLease} from '../../src/services/lease-mutations.js'
import {listLeases} from '../../src/services/leases.js'
import {type LeaseEventJson, watchLeases} from '../../src/services/lease-watch.js'
import type {SubnetChange} from '../../src/core/lease-events.js'
import type {LeaseWatchSource} from '../../src/store/port.js'
import {migrateV2ToV3} from '../../src/services/migrate.js'
import {initNetwork, showNetwork, validateNetwork} from '../../src/services/network.js'
import {subnetEnv} from '../../src/services/subnet-env.js'
import {MemoryStore} from '../../src/store/memory.js'
import {hostGwValue, vxlanValue} from '../helpers/cli.js'

const FILE = new URL('../fixtures/json-contract.json', import.meta.url)

/** Values whose inside is the user's data (a stored config, BackendData, a ConflictError's details), not our fields. */
const OPAQUE = new Set(['config', 'previous.config', 'next.config', 'leases[].backendData', 'findings[].details'])

/** Every field path of a JSON value: `a`, `a.b`, `list[].c`. */
function paths(value: unknown, at = '', out = new Set<string>()): Set<string> {
  if (OPAQUE.has(at)) return out
  if (Array.isArray(value)) {
    for (const v of value) paths(v, `${at}[]`, out)
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      const p = at === '' ? k : `${at}.${k}`
      out.add(p)
      paths(v, p, out)
    }
  }
  return out
}

const yes = async () => true
const quiet = () => {}
const CONFIG = '{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}'

function cluster(): MemoryStore {
  const store = new MemoryStore({now: () => Date.UTC(2026, 11, 1)})
  store.put(store.layout.config, CONFIG)
  store.put(store.layout.subnetKey('10.5.1.0-24'), vxlanValue('192.0.2.1', '02:00:00:00:00:01'), {ttlSeconds: 86_400})
  store.put(store.layout.subnetKey('10.5.2.0-24'), vxlanValue('192.0.2.2', '02:00:00:00:00:02'), {ttlSeconds: 30})
  store.put(store.layout.subnetKey('10.5.3.0-24'), hostGwValue('192.0.2.3'))
  store.put(store.layout.subnetKey('10.5.4.0-25'), 'not json')
  return store
}

const node: NodeObservation = {
  subnetFile: '/run/flannel/subnet.env',
  subnetEnvText: null,
  publicIP: 0xc0000201,
  publicIPSource: '--public-ip',
  ifaceMtu: 1500,
  device: null,
  routes: [],
  neighs: [],
  fdb: [],
  ipForward: false,
}

/** leases watch's JSON lines: one event of each kind (and a listed one) from a scripted watch on the memory twin. */
async function watchEvents(): Promise<LeaseEventJson[]> {
  const store = cluster()
  const [a, b] = (await store.readNetwork()).subnets
  const script: SubnetChange[] = [
    {type: 'put', kv: {...a!, modRevision: '20', lease: '99'}, prev: a!},
    {type: 'put', kv: {...b!, value: vxlanValue('192.0.2.9', '02:00:00:00:00:09'), modRevision: '21'}, prev: b!},
    {type: 'put', kv: {...a!, key: store.layout.subnetKey('10.5.9.0-24'), modRevision: '22'}, prev: null},
    {type: 'delete', key: a!.key, revision: '23', prev: a!},
    {type: 'delete', key: b!.key, revision: '24', prev: b!, expired: true},
  ]
  const source: LeaseWatchSource = {
    api: 'v3',
    layout: store.layout,
    leaseTellsExpiry: true,
    readNetwork: () => store.readNetwork(),
    leaseTtls: async (ids) => new Map([...ids].map((id) => [id, 3600])),
    watchSubnetChanges: async (_from, cb) => {
      setImmediate(() => cb.onChanges(script, '24'))
      return {cancel: async () => {}}
    },
    compactedRevision: async () => null,
    close: () => {},
  }
  const events: LeaseEventJson[] = []
  await watchLeases(async () => source, {
    list: true,
    maxEvents: script.length,
    signal: new AbortController().signal,
    now: () => Date.UTC(2026, 11, 1),
    onEvent: (e) => events.push(e),
    onNote: quiet,
  })
  return events
}

/** One or more example results per command; their field paths are united. */
const RESULTS: Record<string, () => Promise<unknown[]>> = {
  'network show': async () => [await showNetwork(cluster())],
  'network validate': async () => [validateNetwork(CONFIG), validateNetwork('{"Network":"10.5.0.0/30"}')],
  'network init': async () => [
    await initNetwork(new MemoryStore(), {network: '10.5.0.0/16', backend: 'vxlan'}, {dryRun: false, confirm: yes}),
  ],
  'network expand': async () => [
    await expandNetwork(cluster(), {to: '10.4.0.0/15', serviceCidrs: [], dryRun: false}, {onPlan: quiet, confirm: yes}),
  ],
  'leases ls': async () => [await listLeases(cluster(), {withTtl: true, now: Date.UTC(2026, 11, 1)})],
  'leases reserve': async () => [
    await reserveLease(cluster(), {subnet: '10.5.1.0/24', dryRun: false}, yes),
    await reserveLease(cluster(), {subnet: '10.5.9.0/24', publicIP: '192.0.2.9', dryRun: false}, yes),
  ],
  'leases watch': watchEvents,
  'leases unreserve': async () => [await unreserveLease(cluster(), '10.5.3.0/24', 3600, false, 0, yes)],
  'leases release': async () => {
    const raced = cluster()
    // A renewal between listing and deleting: the result (exit 3's details) lists the key and what it holds now.
    raced.beforeWrite = () => void raced.put(raced.layout.subnetKey('10.5.2.0-24'), 'renewed', {ttlSeconds: 60})
    const lost = await releaseLeases(
      raced,
      {subnets: ['10.5.1.0/24', '10.5.2.0/24'], stale: false, renewMarginSeconds: 3600, force: false, dryRun: false},
      {onPlan: quiet, confirm: yes},
    ).catch((e: {details?: unknown}) => e.details)
    return [
      await releaseLeases(
        cluster(),
        {subnets: [], stale: true, renewMarginSeconds: 3600, force: false, dryRun: false},
        {onPlan: quiet, confirm: yes},
      ),
      lost,
    ]
  },
  'subnet-env': async () => [await subnetEnv(cluster(), {publicIP: '192.0.2.1', ifaceMtu: 1500, ipMasq: true})],
  doctor: async () => {
    const o = {failOn: 'error' as const, only: [], skip: [], renewMarginSeconds: 3600}
    return [
      await runDoctor(cluster(), o),
      await runDoctor(cluster(), {...o, local: {subnetFile: node.subnetFile}}, async () => node),
    ]
  },
  'migrate v2-to-v3': async () => {
    const v2 = new MemoryStore()
    v2.put(v2.layout.config, CONFIG)
    v2.put(v2.layout.subnetKey('10.5.3.0-24'), hostGwValue('192.0.2.3'))
    v2.put(`${v2.layout.prefix}/other`, 'x')
    const source = Object.assign(v2, {etcdctlFlags: () => '', sawWholePrefix: true})
    return [
      await migrateV2ToV3(new MemoryStore(), source, {dryRun: false, force: false}, {onPlan: quiet, confirm: yes}),
    ]
  },
}

describe('--json field contract (test/fixtures/json-contract.json)', () => {
  const committed = JSON.parse(readFileSync(FILE, 'utf8')) as Record<string, string[]>
  const now: Record<string, string[]> = {}

  for (const [command, produce] of Object.entries(RESULTS)) {
    test(command, async () => {
      const found = new Set<string>()
      for (const r of await produce()) paths(JSON.parse(JSON.stringify(r)), '', found)
      now[command] = [...found].sort()
      const before = new Set(committed[command] ?? [])
      const gone = [...before].filter((p) => !found.has(p))
      assert.deepEqual(gone, [], `${command}: --json fields removed or renamed (the README promises they never are)`)
      const added = [...found].filter((p) => !before.has(p))
      if (process.env.UPDATE_JSON_CONTRACT === '1') return
      assert.deepEqual(added, [], `${command}: new --json fields; add them with UPDATE_JSON_CONTRACT=1`)
    })
  }

  test('the contract lists every command that has a result', () => {
    if (process.env.UPDATE_JSON_CONTRACT === '1') {
      const merged: Record<string, string[]> = {}
      for (const k of Object.keys(RESULTS).sort())
        merged[k] = [...new Set([...(committed[k] ?? []), ...(now[k] ?? [])])].sort()
      writeFileSync(FILE, JSON.stringify(merged, null, 2) + '\n')
      return
    }
    assert.deepEqual(Object.keys(committed).sort(), Object.keys(RESULTS).sort())
  })
})
