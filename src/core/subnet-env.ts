/** /run/flannel/subnet.env exactly as flanneld's WriteSubnetFile writes it, and a reader for doctor. */

import type {EffectiveConfig} from './config.js'
import {BACKEND_MTU_OVERHEAD} from './config.js'
import {type Cidr4, firstHost4, formatCidr4, formatIPv4} from './ipv4.js'
import {type Cidr6, formatCidr6, formatIP6Flannel} from './ipv6.js'
import {BACKEND_MTU_SINCE, compareRelease, type Release} from './release.js'

export interface SubnetEnvInput {
  readonly effective: EffectiveConfig
  readonly subnet: Cidr4 | null
  readonly ipv6Subnet: Cidr6 | null
  /** The MTU flanneld reports for the backend (already minus the overhead). */
  readonly mtu: number
  readonly ipMasq: boolean
}

/**
 * Whether a node's release honours `Backend.MTU` (vxlan and wireguard): from v0.21.3 (flannel commit bd2e72e3).
 * Unknown (null) is judged as the current release does.
 */
export function honoursBackendMtu(release: Release | null): boolean {
  return release === null || compareRelease(release, BACKEND_MTU_SINCE) >= 0
}

/**
 * The backend's MTU as flanneld computes it: vxlan `(Backend.MTU || interface MTU) - 50`, udp `- 28`,
 * host-gw the interface MTU, wireguard `(Backend.MTU || interface MTU) - 80`. Releases before v0.21.3 ignore
 * Backend.MTU (`honours` false): v0.20 writes FLANNEL_MTU=1450 on a 1500 underlay whatever "MTU" says.
 */
export function backendMtu(
  effective: EffectiveConfig,
  backendMtuSetting: number,
  ifaceMtu: number,
  honours: boolean,
): number {
  const overhead = BACKEND_MTU_OVERHEAD[effective.backendType] ?? 0
  const base =
    honours && backendMtuSetting > 0 && (effective.backendType === 'vxlan' || effective.backendType === 'wireguard')
      ? backendMtuSetting
      : ifaceMtu
  return base - overhead
}

export function renderSubnetEnv(i: SubnetEnvInput): string {
  let out = ''
  if (i.effective.ipv4 && i.subnet) {
    out += `FLANNEL_NETWORK=${formatCidr4(i.effective.ipv4.network)}\n`
    out += `FLANNEL_SUBNET=${formatIPv4(firstHost4(i.subnet))}/${i.subnet.prefix}\n`
  }
  if (i.effective.ipv6 && i.ipv6Subnet) {
    out += `FLANNEL_IPV6_NETWORK=${formatCidr6(i.effective.ipv6.network)}\n`
    out += `FLANNEL_IPV6_SUBNET=${formatIP6Flannel(i.ipv6Subnet.ip + 1n)}/${i.ipv6Subnet.prefix}\n`
  }
  out += `FLANNEL_MTU=${i.mtu}\nFLANNEL_IPMASQ=${i.ipMasq ? 'true' : 'false'}\n`
  return out
}

/** Parses KEY=VALUE lines (godotenv-like: comments and blank lines skipped, optional quotes removed). */
export function parseSubnetEnv(text: string): Map<string, string> {
  const out = new Map<string, string>()
  for (const line of text.split('\n')) {
    const t = line.trim()
    if (t === '' || t.startsWith('#')) continue
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(t)
    if (!m) continue
    out.set(m[1]!, m[2]!.replace(/^(['"])(.*)\1$/, '$2'))
  }
  return out
}
