// The list / watch / re-list loop of leases watch on a scripted source (no etcd): resync after a lost watch, a
// compacted --rev (v3 and v2), filters, --max-events and the abort signal.

import assert from 'node:assert/strict'
import {describe, test} from 'node:test'

import {keyLayout} from '../../src/core/keys.js'
import type {SubnetChange} from '../../src/core/lease-events.js'
import {classifyKeys, type RawKV} from '../../src/core/leases.js'
import {type LeaseEventJson, watchLeases} from '../../src/services/lease-watch.js'
import type {ChangeCallbacks} from '../../src/store/watch.js'
import type {LeaseWatchSource} from '../../src/store/port.js'
import {vxlanValue} from '../helpers/cli.js'

const layout = keyLayout('/coreos.com/network')
const key = (s: string) => layout.subnetKey(s)
const kv = (seg: string, ip: string, mod: string, lease = '7'): RawKV => ({
  key: key(seg),
  value: vxlanValue(ip, '02:00:00:00:00:01'),
  createRevision: mod,
  modRevision: mod,
  version: '1',
  lease,
})

interface Script {
  api?: 'v2' | 'v3'
  lists: Array<{revision: string; kvs: RawKV[]}>
  /** Per watch started: what it does once created (the callbacks, in order). */
  watches: Array<(cb: ChangeCallbacks) => void>
  /** v2: a watch whose first poll is refused calls onLost before it resolves. */
  lostAtCreate?: boolean
  ttls?: Map<string, number>
  compacted?: string | null
}

function source(s: Script): LeaseWatchSource & {watchedFrom: string[]} {
  let lists = 0
  let watches = 0
  const watchedFrom: string[] = []
  return {
    watchedFrom,
    api: s.api ?? 'v3',
    layout,
    leaseTellsExpiry: (s.api ?? 'v3') === 'v3',
    readNetwork: async () => {
      const l = s.lists[Math.min(lists++, s.lists.length - 1)]!
      return classifyKeys(layout, l.kvs, l.revision)
    },
    leaseTtls: async (ids) => new Map([...ids].map((id) => [id, s.ttls?.get(id) ?? 3600])),
    watchSubnetChanges: async (from, cb) => {
      watchedFrom.push(from)
      const run = s.watches[watches++]
      if (s.lostAtCreate) cb.onLost(new Error('The event in requested index is outdated and cleared'))
      else if (run) setImmediate(() => run(cb))
      return {cancel: async () => {}}
    },
    compactedRevision: async () => s.compacted ?? null,
    close: () => {},
  }
}

async function run(
  src: LeaseWatchSource,
  o: {maxEvents?: number; fromRevision?: string; publicIP?: string; signal?: AbortSignal},
) {
  const events: LeaseEventJson[] = []
  const notes: string[] = []
  let started = 0
  const summary = await watchLeases(async () => src, {
    list: false,
    signal: o.signal ?? new AbortController().signal,
    now: () => 0,
    onEvent: (e) => events.push(e),
    onNote: (m) => notes.push(m),
    onStarted: () => started++,
    ...o,
  })
  return {events, notes, summary, started}
}

describe('leases watch service', () => {
  test('a lost watch: listed again, the differences emitted as resynced (expiry from the lease), then watched anew', async () => {
    const a = kv('10.5.1.0-24', '192.0.2.1', '3', '11')
    const b = kv('10.5.2.0-24', '192.0.2.2', '4', '12')
    const c = kv('10.5.3.0-24', '192.0.2.3', '6', '13')
    const a2 = {...a, value: vxlanValue('192.0.2.100', '02:00:00:00:00:01'), modRevision: '8'}
    const d = kv('10.5.4.0-24', '192.0.2.4', '9', '14')
    const e = kv('10.5.5.0-24', '192.0.2.5', '21', '15')
    const src = source({
      lists: [
        {revision: '5', kvs: [a, b]},
        {revision: '20', kvs: [a2, c, d]},
      ],
      watches: [
        (cb) => {
          cb.onChanges([{type: 'put', kv: c, prev: null}], '6')
          cb.onLost(new Error('compacted'))
        },
        (cb) => cb.onChanges([{type: 'put', kv: e, prev: null}], '21'),
      ],
      ttls: new Map([['12', -1]]),
    })
    const r = await run(src, {maxEvents: 5})
    assert.deepEqual(
      r.events.map((x) => [x.type, x.subnet, x.origin, x.resynced, x.revision]),
      [
        ['added', '10.5.3.0/24', 'watch', false, '6'],
        ['changed', '10.5.1.0/24', 'resync', true, '8'],
        ['expired', '10.5.2.0/24', 'resync', true, '20'],
        ['added', '10.5.4.0/24', 'resync', true, '9'],
        ['added', '10.5.5.0/24', 'watch', false, '21'],
      ],
    )
    assert.deepEqual(r.events[1]!.changes, ['PublicIP'])
    assert.deepEqual(src.watchedFrom, ['5', '20'])
    assert.equal(r.summary.ended, 'max-events')
    assert.match(r.notes.join('\n'), /etcd cancelled the watch after revision 6/)
  })

  test('a compacted --rev (v3): exit 4 naming the oldest revision, before anything is printed', async () => {
    const src = source({lists: [{revision: '30', kvs: []}], watches: [], compacted: '25'})
    const err = await run(src, {fromRevision: '3'}).catch((e: unknown) => e)
    assert.equal((err as {exitCode: number}).exitCode, 4)
    assert.equal((err as {code: string}).code, 'REVISION_COMPACTED')
    assert.match((err as Error).message, /--rev 3 has been compacted: etcd keeps history from revision 25 on/)
    assert.deepEqual(src.watchedFrom, [])
  })

  test('a cleared --rev index (v2): exit 4, and no header (onStarted) first', async () => {
    let started = 0
    const src = source({
      api: 'v2',
      lists: [{revision: '3000', kvs: []}],
      watches: [],
      lostAtCreate: true,
      compacted: '2001',
    })
    const err = await watchLeases(async () => src, {
      list: false,
      fromRevision: '5',
      signal: new AbortController().signal,
      now: () => 0,
      onEvent: () => {},
      onNote: () => {},
      onStarted: () => started++,
    }).catch((e: unknown) => e)
    assert.equal((err as {exitCode: number}).exitCode, 4)
    assert.match((err as Error).message, /older than the 1000 events .* index 2001/)
    assert.equal(started, 0)
  })

  test('--rev replays with the events own previous values, not the newer listed state', async () => {
    const a = kv('10.5.1.0-24', '192.0.2.1', '10', '11')
    const src = source({
      lists: [{revision: '12', kvs: [a]}],
      watches: [(cb) => cb.onChanges([{type: 'put', kv: a, prev: null}], '12')],
    })
    const r = await run(src, {fromRevision: '10', maxEvents: 1})
    assert.equal(r.events[0]!.type, 'added')
    assert.deepEqual(src.watchedFrom, ['9'])
  })

  test('--public-ip keeps events whose value before or after matches; malformed keys only without filters', async () => {
    const a = kv('10.5.1.0-24', '192.0.2.1', '3')
    const moved = {...a, value: vxlanValue('192.0.2.9', '02:00:00:00:00:01'), modRevision: '6'}
    const other = kv('10.5.2.0-24', '192.0.2.2', '7')
    const junk: RawKV = {...other, key: key('junk'), value: 'x', modRevision: '8'}
    const changes: SubnetChange[] = [
      {type: 'put', kv: other, prev: null},
      {type: 'put', kv: junk, prev: null},
      {type: 'put', kv: moved, prev: a},
      {type: 'delete', key: a.key, revision: '9', prev: moved},
    ]
    const src = source({lists: [{revision: '5', kvs: [a]}], watches: [(cb) => cb.onChanges(changes, '9')]})
    const r = await run(src, {publicIP: '192.0.2.1', maxEvents: 1})
    assert.deepEqual(
      r.events.map((x) => [x.type, x.publicIP]),
      [['changed', '192.0.2.9']],
    )
  })

  test('the abort signal ends a quiet watch', async () => {
    const ac = new AbortController()
    const src = source({lists: [{revision: '5', kvs: []}], watches: [() => ac.abort()]})
    const r = await run(src, {signal: ac.signal})
    assert.equal(r.summary.ended, 'aborted')
    assert.equal(r.started, 1)
  })
})
