/**
 * vxlan: the flannel.<VNI> device (MTU - 50, nolearning, `local` an address of this host), its `<subnet>/32`, and per
 * remote vxlan lease the neighbour, FDB entry and onlink route (or a plain route with DirectRouting), planned by
 * core/reconcile.ts and written in one `bridge -batch` and one `ip -batch` per sync.
 */

import {type Cidr4, formatIPv4, parseIPv4} from '../../core/ipv4.js'
import {decodeLeases, type RawKV} from '../../core/leases.js'
import {encodeLeaseAttrs, encodeVxlanData} from '../../core/lease-value.js'
import {planSync, programmedState, type ActualState} from '../../core/reconcile.js'
import {deviceName, desiredPeers, type LinkState, type PeerEntries} from '../../core/vxlan.js'
import {agentVxlanLocal, judgeVxlanLocal, type VxlanLocalFacts} from '../../core/vxlan-local.js'
import {withBackoff} from '../backoff.js'
import {errorText, type VxlanDeviceSpec} from '../ports.js'
import type {Backend, BackendContext, RepairOutcome} from './backend.js'

export function vxlanBackend(ctx: BackendContext): Backend {
  const {dataplane, iface, log, status} = ctx
  const vx = () => ctx.effective().vxlan!
  const dev = deviceName(vx().vni)
  let mac = ''
  let local = iface.publicIP
  /** The vxlan entries the last successful sync left in place, and the main table it read then (DirectRouting). */
  let applied: PeerEntries[] | null = null
  let underlayRoutes: ActualState['routes'] = []
  const warnedMalformed = new Set<string>()

  const spec = (): VxlanDeviceSpec => ({
    name: dev,
    vni: vx().vni,
    local,
    iface: iface.name,
    port: vx().port,
    gbp: vx().gbp,
    mtu: (vx().mtu || iface.mtu) - 50,
    ...(mac ? {mac} : {}),
  })

  const facts = (links: readonly LinkState[]): VxlanLocalFacts => ({
    publicIP: iface.publicIP,
    ifaceAddress: iface.address,
    hostAddresses: links.flatMap((l) => l.addresses.map((a) => a.ip)),
  })

  /** What is wrong with the device, or null: gone, down, without our address, or sending from a foreign address. */
  const fault = (link: LinkState | null, own: Cidr4, f: VxlanLocalFacts): string | null => {
    if (!link) return 'is gone'
    if (!link.up) return 'is down'
    if (!link.addresses.some((a) => a.ip === own.ip && a.prefix === 32))
      return `lacks its address ${formatIPv4(own.ip)}/32`
    const l = link.vxlan?.local ?? null
    const judged = judgeVxlanLocal(l === null ? null : parseIPv4(l), l ?? '(none)', f, null)
    if (judged?.kind === 'not-host-address') return judged.message
    if (l !== formatIPv4(local)) return `sends from local ${l ?? '(none)'} instead of ${formatIPv4(local)}`
    return null
  }

  return {
    async setup() {
      local = agentVxlanLocal(facts(await dataplane.readLinks()))
      if (local !== iface.publicIP)
        log(
          'info',
          `PublicIP ${formatIPv4(iface.publicIP)} is not an address of this host (1:1 NAT): ${dev} sends from the interface address ${formatIPv4(local)}, as flanneld <= v0.27.3 does; peers reach this node at the PublicIP`,
        )
      const ensured = await withBackoff(
        {clock: ctx.clock, signal: ctx.signal, initialMs: 1000, maxMs: 10_000},
        () => dataplane.ensureDevice(spec()),
        (error, attempt, delay) => {
          status.error(`setting up the vxlan device: ${errorText(error)}`)
          log('warn', `setting up the vxlan device failed (attempt ${attempt}), retrying in ${delay / 1000}s`, {
            error: errorText(error),
          })
        },
      )
      if (!ensured) return false
      mac = ensured.link.mac
      log(
        'info',
        `${ensured.created ? 'created' : ensured.recreated ? 'recreated (incompatible)' : 'reusing'} ${dev}`,
        {
          mac,
          mtu: ensured.link.mtu,
        },
      )
      return true
    },

    leaseValue: () =>
      encodeLeaseAttrs({
        publicIP: iface.publicIP,
        publicIPv6: null,
        backendType: 'vxlan',
        backendData: encodeVxlanData({vni: vx().vni, vtepMAC: mac}),
        backendV6Data: null,
      }),

    async onLease(subnet: Cidr4) {
      const link = await dataplane.configureAddress(dev, subnet.ip, ctx.effective().ipv4!.network)
      status.set({deviceUp: link.up})
      return link.mtu
    },

    async sync(own: Cidr4, kvs: readonly RawKV[], full: boolean) {
      try {
        let actual: ActualState
        if (full || applied === null) {
          actual = await dataplane.readActual(dev)
          underlayRoutes = actual.routes
        } else actual = programmedState(applied, dev)
        const {leases, malformed} = decodeLeases(kvs)
        for (const m of malformed) {
          if (warnedMalformed.has(m.key)) continue
          warnedMalformed.add(m.key)
          log('warn', `ignoring bad subnet key ${m.key}: ${m.error}`)
        }
        const peers = desiredPeers(leases, own, vx().directRouting, underlayRoutes)
        const plan = planSync(peers, actual, dev, ctx.effective().ipv4!.network)
        const {errors} = plan.bridge.length + plan.ip.length > 0 ? await dataplane.apply(plan) : {errors: []}
        applied = errors.length === 0 ? peers : null
        status.recordSync('dataplane sync', 'entries', errors, plan.added, plan.removed, peers.length)
      } catch (error) {
        applied = null
        status.recordSyncFailure('dataplane sync', error)
      }
    },

    async repair(own: Cidr4): Promise<RepairOutcome> {
      const [link, links] = await Promise.all([dataplane.readLink(dev), dataplane.readLinks()])
      const f = facts(links)
      // The host's addresses may have changed (NAT added or removed): follow them, as a restart would.
      local = agentVxlanLocal(f)
      const why = fault(link, own, f)
      if (why === null) return 'ok'
      log('warn', `${dev} ${why}; repairing it`)
      status.set({deviceUp: false})
      status.error(`${dev} ${why}`)
      const ensured = await dataplane.ensureDevice(spec())
      if (ensured.link.mac !== mac) {
        mac = ensured.link.mac
        return 'announce'
      }
      return 'repaired'
    },
  }
}
