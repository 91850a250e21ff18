import {Flags} from '@oclif/core'

import {Agent} from '../agent/agent.js'
import {startHealthServer} from '../agent/health.js'
import {logger, realClock, realFiles} from '../agent/runtime.js'
import {BaseCommand} from '../base/base-command.js'
import {connectionFlags} from '../base/flags.js'
import {resolveConnection} from '../base/connection.js'
import {parseTimeout} from '../core/duration.js'
import {UsageError} from '../core/errors.js'
import {parseGoIPv4} from '../core/lease-value.js'

export default class AgentCommand extends BaseCommand<typeof AgentCommand> {
  static override summary =
    'Run a flanneld-compatible node agent: lease loop and vxlan or host-gw dataplane that heals itself.'
  static override description =
    'Acquires, renews and watches subnet leases as flanneld does (same keys, same value bytes, same subnet.env), programs flannel.<VNI>, its neighbours, FDB entries and routes, and repairs them every --resync. SIGINT/SIGTERM stop it and leave the lease and the dataplane in place. Needs root (CAP_NET_ADMIN).'
  static override examples = [
    '<%= config.bin %> <%= command.id %> --iface eth1 --ip-masq',
    '<%= config.bin %> <%= command.id %> --endpoints https://10.0.0.1:2379 --cacert ca.pem --cert node.pem --key node-key.pem',
  ]
  static override enableJsonFlag = false
  static override flags = {
    ...connectionFlags,
    iface: Flags.string({
      summary: 'External interface by name or address (repeatable, tried in order).',
      multiple: true,
      default: [],
    }),
    'iface-regex': Flags.string({
      summary: 'Regex on interface addresses, then names (repeatable).',
      multiple: true,
      default: [],
    }),
    'public-ip': Flags.string({summary: 'Address to publish as PublicIP (default: the interface address).'}),
    'subnet-file': Flags.string({summary: 'Where to write subnet.env.', default: '/run/flannel/subnet.env'}),
    'ip-masq': Flags.boolean({
      default: false,
      summary: "Install flanneld's masquerade rules (chain FLANNEL-POSTRTG) and write FLANNEL_IPMASQ=true.",
    }),
    'iptables-forward-rules': Flags.boolean({
      summary: 'Install the FLANNEL-FWD accept rules for the Network (as flanneld, on by default).',
      default: true,
      allowNo: true,
    }),
    'subnet-lease-renew-margin': Flags.integer({
      summary: 'Renew this many minutes before the lease expires.',
      default: 60,
      min: 1,
      max: 1439,
    }),
    resync: Flags.string({summary: 'How often to compare the kernel with the leases and repair it.', default: '10s'}),
    'healthz-addr': Flags.string({
      summary: 'Serve /healthz and /readyz here (empty to disable).',
      default: '127.0.0.1:8471',
    }),
    'log-format': Flags.option({
      summary: 'Log line format on stderr.',
      options: ['text', 'json'] as const,
      default: 'text' as const,
    })(),
    'allow-suspicious-public-ip': Flags.boolean({
      default: false,
      summary: 'Accept 10.0.2.15, loopback, link-local or unspecified as PublicIP.',
    }),
  }

  public async run(): Promise<void> {
    const f = this.flags
    const {hasNetAdmin, requireNetAdmin} = await import('../dataplane/vxlan.js')
    requireNetAdmin(await hasNetAdmin())
    let publicIP: number | null = null
    if (f['public-ip'] !== undefined) {
      publicIP = parseGoIPv4(f['public-ip'])
      if (publicIP === null)
        throw new UsageError(`invalid --public-ip "${f['public-ip']}": not an IPv4 address`, 'INVALID_IP')
    }
    const resyncMs = parseTimeout(f.resync, '--resync')
    if (resyncMs < 100) throw new UsageError(`--resync ${f.resync} is too short (at least 100ms)`, 'INVALID_DURATION')
    const {EtcdStore} = await import('../store/etcd-store.js')
    const {agentStore} = await import('../store/agent-store.js')
    const {linuxDataplane} = await import('../dataplane/linux.js')
    const store = EtcdStore.create(resolveConnection(f, process.env))
    const log = logger(f['log-format'])
    const stop = new AbortController()
    const onSignal = (sig: string) => {
      log('info', `${sig} received, stopping`)
      stop.abort()
    }
    process.once('SIGINT', () => onSignal('SIGINT'))
    process.once('SIGTERM', () => onSignal('SIGTERM'))
    const agent = new Agent(
      {
        ifaces: f.iface,
        ifaceRegexes: f['iface-regex'],
        publicIP,
        subnetFile: f['subnet-file'],
        ipMasq: f['ip-masq'],
        forwardRules: f['iptables-forward-rules'],
        renewMarginMs: f['subnet-lease-renew-margin'] * 60_000,
        resyncMs,
        allowSuspiciousPublicIP: f['allow-suspicious-public-ip'],
      },
      {
        store: agentStore(store),
        dataplane: linuxDataplane(),
        clock: realClock,
        random: Math.random,
        files: realFiles,
        log,
        signal: stop.signal,
      },
    )
    const health = f['healthz-addr'] ? await startHealthServer(f['healthz-addr'], () => agent.getStatus()) : null
    try {
      await agent.run()
    } catch (error) {
      // A failed agent must end the process (systemd's Restart=on-failure): nothing it leaves behind may keep the
      // event loop alive. An unref'd timer does not itself keep the process alive.
      setTimeout(() => process.exit(), 3000).unref()
      throw error
    } finally {
      health?.close()
      store.close()
    }
  }
}
