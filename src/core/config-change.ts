/**
 * Which changes of the network config a running agent can follow. flanneld reads its config once; the agent follows
 * what it can apply without tearing anything down (the Network widened by `network expand`, SubnetMin, SubnetMax,
 * DirectRouting) and refuses, naming them, the changes that would need a new device or new leases for every node.
 * Pure.
 */

import type {EffectiveConfig} from './config.js'
import {formatCidr4, formatIPv4} from './ipv4.js'

export type ConfigChange =
  | {readonly kind: 'same'}
  | {readonly kind: 'follow'; readonly changed: string[]}
  | {readonly kind: 'refuse'; readonly changed: string[]}

function describe(e: EffectiveConfig): Record<string, string> {
  const v = e.vxlan
  const ip = e.ipv4
  return {
    'Backend.Type': e.backendType,
    'Backend.VNI': v ? String(v.vni) : '-',
    'Backend.Port': v ? String(v.port) : '-',
    'Backend.GBP': v ? String(v.gbp) : '-',
    'Backend.MTU': v ? String(v.mtu) : '-',
    'Backend.Learning': v ? String(v.learning) : '-',
    SubnetLen: ip ? String(ip.subnetLen) : '-',
    EnableIPv4: String(ip !== null),
    EnableIPv6: String(e.ipv6 !== null),
    EnableNFTables: String(e.enableNFTables),
  }
}

function followable(e: EffectiveConfig): Record<string, string> {
  const ip = e.ipv4
  return {
    Network: ip ? formatCidr4(ip.network) : '-',
    SubnetMin: ip ? formatIPv4(ip.subnetMin) : '-',
    SubnetMax: ip ? formatIPv4(ip.subnetMax) : '-',
    'Backend.DirectRouting': e.vxlan ? String(e.vxlan.directRouting) : '-',
  }
}

const diff = (a: Record<string, string>, b: Record<string, string>) =>
  Object.keys(a)
    .filter((k) => a[k] !== b[k])
    .map((k) => `${k} ${a[k]} -> ${b[k]}`)

export function judgeConfigChange(running: EffectiveConfig, next: EffectiveConfig): ConfigChange {
  const refused = diff(describe(running), describe(next))
  if (refused.length > 0) return {kind: 'refuse', changed: refused}
  const changed = diff(followable(running), followable(next))
  return changed.length > 0 ? {kind: 'follow', changed} : {kind: 'same'}
}
