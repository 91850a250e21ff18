import {Flags} from '@oclif/core'

import {BaseCommand} from '../../base/base-command.js'
import {resolveConnection} from '../../base/connection.js'
import {connectionFlags, etcdApiWriteFlag, mutationFlags} from '../../base/flags.js'
import {openWriteStore} from '../../store/source.js'
import {confirmer} from '../../prompts/confirm.js'
import {renderInit} from '../../render/network.js'
import {type InitResult, initNetwork} from '../../services/network.js'

export default class NetworkInit extends BaseCommand<typeof NetworkInit> {
  static override summary = 'Create the network config, only if none exists.'
  static override description =
    "Validates with flannel's rules, always writes SubnetLen explicitly, and creates <prefix>/config in a transaction on create revision 0. If a config exists: exit 3 and show it."
  static override examples = [
    '<%= config.bin %> <%= command.id %> --network 10.5.0.0/16 --backend vxlan',
    '<%= config.bin %> <%= command.id %> --network 10.5.0.0/16 --subnet-len 26 --dry-run',
  ]
  static override flags = {
    ...connectionFlags,
    ...etcdApiWriteFlag,
    network: Flags.string({summary: 'The flannel Network (IPv4 CIDR).', required: true}),
    'subnet-len': Flags.integer({
      summary: 'Prefix length of each node subnet (default: 24, or prefix+2 for networks smaller than /22).',
      min: 1,
      max: 32,
    }),
    'subnet-min': Flags.string({summary: 'First subnet to hand out.'}),
    'subnet-max': Flags.string({summary: 'Last subnet to hand out.'}),
    backend: Flags.option({
      summary: 'Backend type.',
      options: ['vxlan', 'host-gw', 'udp', 'wireguard'] as const,
      default: 'vxlan' as const,
    })(),
    vni: Flags.integer({summary: 'vxlan VNI (flannel default 1).', min: 0, max: 16_777_215}),
    port: Flags.integer({summary: 'vxlan UDP port (kernel default 8472).', min: 1, max: 65_535}),
    'direct-routing': Flags.boolean({
      default: false,
      summary: 'vxlan DirectRouting: plain routes to peers on the same subnet.',
    }),
    mtu: Flags.integer({summary: 'Underlay MTU for the backend (default: the interface MTU).', min: 68, max: 65_535}),
    'ipv6-network': Flags.string({summary: 'Enable IPv6 with this IPv6Network.'}),
    ...mutationFlags,
  }

  public async run(): Promise<InitResult> {
    const f = this.flags
    const options = {
      network: f.network,
      subnetLen: f['subnet-len'],
      subnetMin: f['subnet-min'],
      subnetMax: f['subnet-max'],
      backend: f.backend,
      vni: f.vni,
      port: f.port,
      directRouting: f['direct-routing'],
      mtu: f.mtu,
      ipv6Network: f['ipv6-network'],
    }
    // initNetwork checks the config before the store's first call: an invalid one exits 2 with etcd down too.
    const store = this.own(await openWriteStore(f['etcd-api'], resolveConnection(f, process.env), (m) => this.note(m)))
    const result = await initNetwork(store, options, {dryRun: f['dry-run'], confirm: confirmer({yes: f.yes})})
    this.log(renderInit(result, this.color, this.width))
    return result
  }
}
