import {Flags} from '@oclif/core'

import {BaseCommand} from '../base/base-command.js'
import {sourceOptions} from '../base/connection.js'
import {connectionFlags, etcdApiFlag, snapshotFlag} from '../base/flags.js'
import {openSource} from '../store/source.js'
import {writeOut} from '../render/output.js'
import {type SubnetEnvResult, subnetEnv} from '../services/subnet-env.js'

export default class SubnetEnv extends BaseCommand<typeof SubnetEnv> {
  static override summary = 'Render /run/flannel/subnet.env for a lease, byte for byte as flanneld writes it.'
  static override description =
    'FLANNEL_MTU is (Backend.MTU, else --iface-mtu) minus the backend overhead (vxlan 50, udp 28, host-gw 0, wireguard 80); flanneld before v0.21.3 ignores Backend.MTU (give --flanneld-version for such a node); --mtu sets it outright. Exit 4 when no lease matches.'
  static override examples = [
    '<%= config.bin %> <%= command.id %> --public-ip 192.168.1.12',
    '<%= config.bin %> <%= command.id %> --subnet 10.5.34.0/24 --ip-masq --write /run/flannel/subnet.env',
  ]
  static override flags = {
    ...connectionFlags,
    ...snapshotFlag,
    ...etcdApiFlag,
    'public-ip': Flags.string({
      summary: "The node's PublicIP (the lease flanneld would reuse).",
      exclusive: ['subnet'],
    }),
    subnet: Flags.string({summary: "The lease's subnet, e.g. 10.5.34.0/24.", exclusive: ['public-ip']}),
    'iface-mtu': Flags.integer({
      summary: 'MTU of the external interface.',
      default: 1500,
      min: 68,
      max: 65_535,
      exclusive: ['mtu'],
    }),
    mtu: Flags.integer({
      summary: 'Write this FLANNEL_MTU instead of computing it.',
      min: 68,
      max: 65_535,
      exclusive: ['iface-mtu'],
    }),
    'ip-masq': Flags.boolean({default: false, summary: 'FLANNEL_IPMASQ=true (flanneld --ip-masq).'}),
    write: Flags.string({summary: 'Write the file atomically to this path (e.g. /run/flannel/subnet.env).'}),
    'flanneld-version': Flags.string({
      summary: "The node's flanneld release (e.g. 0.20.0): before v0.21.3 flanneld ignores Backend.MTU.",
    }),
  }

  public async run(): Promise<SubnetEnvResult> {
    const f = this.flags
    const options = {
      publicIP: f['public-ip'],
      subnet: f.subnet,
      ifaceMtu: f['iface-mtu'],
      mtu: f.mtu,
      ipMasq: f['ip-masq'],
      write: f.write,
      flanneldVersion: f['flanneld-version'],
    }
    // The source connects on its first read, after subnetEnv has checked the options (exit 2 with etcd down too).
    const result = await subnetEnv(this.own(openSource(sourceOptions(f, process.env, (m) => this.note(m)))), options)
    if (result.alsoMatched.length > 0) {
      this.note(
        `warning: ${result.alsoMatched.length + 1} leases match; using ${result.key} (first in key order, as flanneld does). Others: ${result.alsoMatched.join(', ')}`,
      )
    }
    if (result.written) this.note(`wrote ${result.written}`)
    if (!this.jsonEnabled()) writeOut(result.content)
    return result
  }
}
