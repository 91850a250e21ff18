/** host-gw: no device; a route `<subnet> via <PublicIP> dev <iface>` per remote host-gw lease on a connected subnet. */

import {UsageError} from '../../core/errors.js'
import {hostGwPeers, planHostGw} from '../../core/hostgw.js'
import {type Cidr4, formatCidr4, formatIPv4} from '../../core/ipv4.js'
import {decodeLeases, type RawKV} from '../../core/leases.js'
import {encodeLeaseAttrs} from '../../core/lease-value.js'
import type {Backend, BackendContext} from './backend.js'

export function hostGwBackend(ctx: BackendContext): Backend {
  const warnedUnreachable = new Set<string>()
  const {iface, status, log, dataplane} = ctx
  return {
    setup() {
      if (iface.publicIP !== iface.address) {
        throw new UsageError(
          `your PublicIP ${formatIPv4(iface.publicIP)} differs from the interface address ${formatIPv4(iface.address)}, meaning that probably you're on a NAT, which is not supported by host-gw backend: other nodes would route to an address this node does not have`,
          'HOSTGW_NAT',
        )
      }
      return Promise.resolve(true)
    },

    leaseValue: () =>
      encodeLeaseAttrs({
        publicIP: iface.publicIP,
        publicIPv6: null,
        backendType: 'host-gw',
        backendData: null,
        backendV6Data: null,
      }),

    onLease() {
      status.set({deviceUp: true}) // host-gw has no device of its own
      return Promise.resolve(iface.mtu)
    },

    async sync(own: Cidr4, kvs: readonly RawKV[]) {
      try {
        const routes = await dataplane.readRoutes()
        const {leases} = decodeLeases(kvs)
        const peers = hostGwPeers(leases, own, routes)
        const plan = planHostGw(peers, routes, iface.name, ctx.effective().ipv4!.network)
        for (const r of plan.replaced) log('warn', `replacing existing route to ${r}`)
        for (const p of plan.unreachable) {
          const s = formatCidr4(p.subnet)
          if (warnedUnreachable.has(s)) continue
          warnedUnreachable.add(s)
          log(
            'error',
            `host-gw cannot reach ${s}: its node ${formatIPv4(p.publicIP)} is not on a directly connected subnet of ${iface.name}`,
          )
        }
        status.set({
          unreachablePeers: plan.unreachable.map((p) => `${formatCidr4(p.subnet)} (${formatIPv4(p.publicIP)})`),
        })
        const {errors} =
          plan.ip.length > 0
            ? await dataplane.apply({bridge: [], ip: plan.ip, added: plan.added, removed: plan.removed})
            : {errors: []}
        status.recordSync('route sync', 'routes', errors, plan.added, plan.removed, peers.length)
      } catch (error) {
        status.recordSyncFailure('route sync', error)
      }
    },

    repair: () => Promise.resolve('ok'),
  }
}
