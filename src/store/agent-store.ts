/** The agent's view of the store: flanneld's lease operations as guarded transactions (docs/flannel.md §1.4). */

import type {AgentStore} from '../agent/ports.js'
import type {Cidr4} from '../core/ipv4.js'
import {makeSubnetKey} from '../core/subnet-key.js'
import type {EtcdStore} from './etcd-store.js'
import {ConflictError} from '../core/errors.js'

export function agentStore(store: EtcdStore): AgentStore {
  return {
    subnetsPrefix: store.layout.subnets,
    readNetwork: () => store.readNetwork(),
    getKey: (key) => store.getKey(key),
    subnetKey: (subnet: Cidr4) => store.layout.subnetKey(makeSubnetKey(subnet)),
    // flanneld: Grant(86400), then a Txn on version 0; the grant is revoked when the key exists.
    async createLease(key, value, ttlSeconds) {
      const r = await store.createIfAbsent(key, value, {ttlSeconds})
      return {modRevision: r.revision, leaseId: r.leaseId}
    },
    // flanneld renews with a new grant and an unconditional put, orphaning the old lease; here the put is guarded on
    // our mod revision, and the old lease (no longer attached to anything) is revoked.
    async renewLease(key, value, modRevision, ttlSeconds) {
      const old = await store.getKey(key)
      const r = await store.putIfUnchanged(key, value, modRevision, {ttlSeconds})
      if (old && old.lease !== '0' && old.modRevision === modRevision) await store.revokeLease(old.lease)
      return {modRevision: r.revision, leaseId: r.leaseId}
    },
    async deleteKey(key, modRevision) {
      const r = await store.deleteGuarded([{key, modRevision}])
      if (r.lost.length > 0) throw new ConflictError(`${key} changed before it could be deleted`, 'CAS_LOST')
    },
    watch: (fromRevision, cb) => store.watchSubnets(fromRevision, cb),
    // A prefix watch on the config key: keep only the key itself.
    watchConfig: (fromRevision, cb) =>
      store.watchConfig(fromRevision, {
        onEvents: (events) => {
          const mine = events.filter((e) => (e.type === 'put' ? e.kv.key : e.key) === store.layout.config)
          if (mine.length > 0) cb.onEvents(mine)
        },
        onLost: (error) => cb.onLost(error),
      }),
  }
}
