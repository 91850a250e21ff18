/**
 * flanneld's masquerade rules (--ip-masq) and forward rules (--iptables-forward-rules), in iptables or nftables.
 * On start (and when the Network changes) the set built for an earlier Network or subnet is removed and FLANNEL-FWD
 * is cleared, as flanneld does; every resync re-checks the current set.
 */

import {type Cidr4, formatCidr4} from '../core/ipv4.js'
import {FWD_CHAIN, forwardRules, masqRules, nftScript} from '../core/masq.js'
import type {LogFn, TrafficPort} from './ports.js'

export interface TrafficOptions {
  readonly ipMasq: boolean
  readonly forwardRules: boolean
}

const same = (a: Cidr4, b: Cidr4) => a.ip === b.ip && a.prefix === b.prefix

export class TrafficRules {
  private randomFully = true
  /** The Network and subnet the rules now in place were built for (from an earlier subnet.env at first). */
  private previous: {network: Cidr4; subnet: Cidr4} | null

  constructor(
    private readonly t: TrafficPort,
    private readonly log: LogFn,
    private readonly o: TrafficOptions,
    previous: {network: Cidr4; subnet: Cidr4} | null,
  ) {
    this.previous = previous
  }

  async init(nft: boolean): Promise<void> {
    if (this.o.ipMasq && !nft) this.randomFully = await this.t.randomFully()
  }

  /**
   * Ensures the set for `network`/`subnet`. `first`: the first call for this Network (start, a new lease, a Network
   * change): remove what was built for another one, and (iptables) clear FLANNEL-FWD before filling it.
   */
  async ensure(nft: boolean, network: Cidr4, subnet: Cidr4, first: boolean): Promise<void> {
    const t = this.t
    const prev = this.previous
    const moved = prev !== null && (!same(prev.network, network) || !same(prev.subnet, subnet))
    if (nft) {
      // On start, remove what an iptables-mode run left for this Network and subnet, as flanneld does.
      if (first) {
        const sets = prev && moved ? [{network, subnet}, prev] : [{network, subnet}]
        await t
          .remove(
            sets.flatMap((x) => [
              ...masqRules(x.network, x.subnet, true),
              ...masqRules(x.network, x.subnet, false),
              ...forwardRules(x.network),
            ]),
          )
          .catch(() => 0)
      }
      if (this.o.ipMasq || this.o.forwardRules)
        await t.nft(nftScript(network, subnet, this.o.ipMasq, this.o.forwardRules, this.randomFully))
      if (first) this.previous = {network, subnet}
      return
    }
    if (first) await t.removeNft().catch(() => undefined)
    if (this.o.ipMasq) {
      if (first && prev && moved) {
        const removed = await t.remove([
          ...masqRules(prev.network, prev.subnet, this.randomFully),
          ...masqRules(prev.network, prev.subnet, !this.randomFully),
        ])
        if (removed > 0)
          this.log(
            'info',
            `removed ${removed} masquerade rule(s) built for ${formatCidr4(prev.network)} / ${formatCidr4(prev.subnet)}`,
          )
      }
      const missing = await t.ensure(masqRules(network, subnet, this.randomFully))
      if (missing > 0)
        this.log(
          first ? 'info' : 'warn',
          `${first ? 'installed' : 'restored'} masquerade rules (${missing} were missing)`,
        )
    }
    if (this.o.forwardRules) {
      // flanneld clears FLANNEL-FWD when it sets the chain up: ACCEPT rules for an old Network do not linger.
      if (first && (!prev || !same(prev.network, network))) await t.flush('filter', FWD_CHAIN)
      const missing = await t.ensure(forwardRules(network))
      if (missing > 0)
        this.log(first ? 'info' : 'warn', `${first ? 'installed' : 'restored'} forward rules (${missing} were missing)`)
    }
    if (first) this.previous = {network, subnet}
  }
}
