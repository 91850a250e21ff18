// EtcdStore against a real etcd: the same FlannelStore contract the in-memory twin passes (test/store/memory.test.ts).

import assert from 'node:assert/strict'
import {after, before} from 'node:test'

import {EtcdStore} from '../../src/store/etcd-store.js'
import {type EtcdServer, startEtcd} from '../helpers/etcd.js'
import {storeContract} from './contract.js'

let etcd: EtcdServer
const stores: EtcdStore[] = []

before(async () => {
  etcd = await startEtcd()
})

after(async () => {
  for (const s of stores) s.close()
  await etcd?.stop()
})

async function ctl(args: string[]): Promise<void> {
  const r = await etcd.etcdctl(args)
  assert.equal(r.code, 0, r.stderr)
}

storeContract('EtcdStore (etcd v3)', async (prefix) => {
  const store = await EtcdStore.open({endpoints: etcd.endpoints, prefix, dialTimeoutMs: 5000, commandTimeoutMs: 10_000})
  stores.push(store)
  return {store, put: (key, value) => ctl(['put', key, value]), del: (key) => ctl(['del', key])}
})
