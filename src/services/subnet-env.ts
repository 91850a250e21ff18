/** subnet-env: /run/flannel/subnet.env for one lease, byte for byte as flanneld writes it. */

import {resolveNetworkConfig} from '../core/config.js'
import {NotFoundError, UsageError} from '../core/errors.js'
import {formatCidr4, formatIPv4, parseCidr4} from '../core/ipv4.js'
import {decodeLeases} from '../core/leases.js'
import {parseRelease} from '../core/release.js'
import {backendMtu, honoursBackendMtu, renderSubnetEnv} from '../core/subnet-env.js'
import {writeFileAtomic} from '../io/atomic-write.js'
import type {NetworkReader} from '../store/port.js'
import {leaseFilter} from './leases.js'

export interface SubnetEnvOptions {
  publicIP?: string
  subnet?: string
  /** The external interface's MTU (used when the backend sets none); flanneld's default is the NIC's. */
  ifaceMtu: number
  /** Override FLANNEL_MTU outright. */
  mtu?: number
  ipMasq: boolean
  write?: string
  /** The release of flanneld on that node (Backend.MTU is ignored before v0.21.3); unknown means the current one. */
  flanneldVersion?: string
}

export interface SubnetEnvResult {
  content: string
  subnet: string
  publicIP: string
  key: string
  written: string | null
  /** Other keys that matched the selection (duplicate PublicIPs); the first in key order is used, as flanneld does. */
  alsoMatched: string[]
}

/** Checks the lease selection (exactly one of --public-ip/--subnet, both well-formed) without reading anything. */
export function checkSubnetEnvOptions(o: Pick<SubnetEnvOptions, 'publicIP' | 'subnet' | 'flanneldVersion'>): void {
  if ((o.publicIP === undefined) === (o.subnet === undefined)) {
    throw new UsageError('give exactly one of --public-ip or --subnet', 'INVALID_FLAGS')
  }
  leaseFilter(o)
  if (o.flanneldVersion !== undefined && parseRelease(o.flanneldVersion) === null) {
    throw new UsageError(
      `invalid --flanneld-version "${o.flanneldVersion}": expected a version such as 0.20.0 or v0.26.1`,
      'INVALID_VERSION',
    )
  }
}

export async function subnetEnv(reader: NetworkReader, o: SubnetEnvOptions): Promise<SubnetEnvResult> {
  checkSubnetEnvOptions(o)
  const keep = leaseFilter(o)
  const snap = await reader.readNetwork()
  if (!snap.config) throw new NotFoundError(`no flannel network config at ${reader.layout.config}`, 'CONFIG_NOT_FOUND')
  const resolved = resolveNetworkConfig(snap.config.value)
  if (!resolved.ok) throw new UsageError(`the stored network config is invalid: ${resolved.error}`, 'INVALID_CONFIG')
  const {effective} = resolved.value
  // flanneld finds its lease by PublicIP in etcd key order; --subnet selects the lease with exactly that subnet.
  const want = o.subnet === undefined ? null : formatCidr4(parseCidrOrThrow(o.subnet))
  const matches = decodeLeases(snap.subnets)
    .leases.filter((l) => keep(l) && (want === null || formatCidr4(l.subnet) === want))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
  const lease = matches[0]
  if (!lease) {
    const what = o.publicIP !== undefined ? `PublicIP ${o.publicIP}` : `subnet ${want}`
    throw new NotFoundError(
      `no lease for ${what} under ${reader.layout.subnets}`,
      'LEASE_NOT_FOUND',
      'list the leases with: flannelctl leases ls',
    )
  }
  const release = o.flanneldVersion === undefined ? null : parseRelease(o.flanneldVersion)
  const mtu = o.mtu ?? backendMtu(effective, effective.vxlan?.mtu ?? 0, o.ifaceMtu, honoursBackendMtu(release))
  const content = renderSubnetEnv({
    effective,
    subnet: lease.subnet,
    ipv6Subnet: lease.ipv6Subnet,
    mtu,
    ipMasq: o.ipMasq,
  })
  if (o.write !== undefined) await writeFileAtomic(o.write, content, 0o644)
  return {
    content,
    subnet: formatCidr4(lease.subnet),
    publicIP: formatIPv4(lease.attrs.publicIP),
    key: lease.key,
    written: o.write ?? null,
    alsoMatched: matches.slice(1).map((l) => l.key),
  }
}

function parseCidrOrThrow(s: string) {
  const c = parseCidr4(s)
  if (!c) throw new UsageError(`invalid --subnet "${s}": not an IPv4 CIDR such as 10.5.34.0/24`, 'INVALID_CIDR')
  return c
}
