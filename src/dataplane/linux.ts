/** The agent's dataplane on Linux: iproute2 for links, routes, neighbours and FDB; iptables-restore or nft for rules. */

import type {AgentDataplane} from '../agent/ports.js'
import {readLink, readLinks, readRoutes, selectInterface} from './iproute2.js'
import {applyNft, deleteIptRules, ensureIptRules, flushChain, iptablesRandomFully, removeNft} from './iptables.js'
import {applySync, configureVxlanAddress, ensureVxlanDevice, readActual} from './vxlan.js'

export function linuxDataplane(): AgentDataplane {
  return {
    selectInterface,
    readLinks,
    ensureDevice: ensureVxlanDevice,
    configureAddress: configureVxlanAddress,
    readLink,
    readActual,
    apply: applySync,
    readRoutes,
    traffic: {
      randomFully: iptablesRandomFully,
      ensure: ensureIptRules,
      remove: deleteIptRules,
      flush: flushChain,
      nft: applyNft,
      removeNft,
    },
  }
}
