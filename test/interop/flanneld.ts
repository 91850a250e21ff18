// Real flanneld binaries beside flannelctl, for the interop tier (test/interop/*.interop.test.ts). The binaries are
// built outside the repository from flannel's own source (never committed); FLANNELD_BIN points at v0.20.0 (etcd v3,
// client certificates only), FLANNELD_V2_BIN at v0.11.0 (etcd v2). Without them, or without root and network
// namespaces, the tier is skipped and says why.

import {existsSync} from 'node:fs'

import {json, RUN_JS} from '../helpers/cli.js'
import {canUseNetns} from '../helpers/netns.js'
import {type Exec, type Node, sh, type Topology} from '../helpers/topology.js'

/** Why the tier cannot run here (printed loudly), or null when it can. */
export function interopSkipReason(envName: 'FLANNELD_BIN' | 'FLANNELD_V2_BIN', release: string): string | null {
  const bin = process.env[envName]
  let why: string | null = null
  if (!bin)
    why = `${envName} is not set: point it at a flanneld ${release} built from flannel's source (test/interop/README.md)`
  else if (!existsSync(bin)) why = `${envName}=${bin} does not exist`
  else if (process.getuid?.() !== 0 || !canUseNetns()) why = 'needs root and network namespaces'
  if (why) process.stderr.write(`interop tier skipped: ${why}\n`)
  return why
}

export interface Flanneld {
  readonly node: Node
  readonly args: string[]
  output: () => string
  stop: () => Promise<void>
}

/**
 * Starts flanneld in the node's namespace against the topology's etcd (TLS for v0.20), on eth0, writing the node's
 * subnet.env. The process is tracked by the topology and killed by its pid on teardown.
 */
export function startFlanneld(topo: Topology, node: Node, bin: string, extra: string[] = []): Flanneld {
  const t = topo.etcd.tls
  const args = [
    `--etcd-endpoints=${topo.etcd.endpoint}`,
    ...(t ? [`--etcd-cafile=${t.ca}`, `--etcd-certfile=${t.cert}`, `--etcd-keyfile=${t.key}`] : []),
    '--etcd-prefix=/coreos.com/network',
    '--iface=eth0',
    `--subnet-file=${node.subnetFile}`,
    ...extra,
  ]
  const h = topo.spawnIn(node.ns, bin, args)
  return {node, args, output: h.output, stop: () => topo.killHelper(h)}
}

/** Waits (bounded) for flanneld to write subnet.env, then gives the node its X and a pod namespace. */
export async function awaitFlanneld(topo: Topology, f: Flanneld, deadlineMs = 30_000): Promise<void> {
  await topo.waitFor(`flanneld on node ${f.node.n} writes ${f.node.subnetFile}`, deadlineMs, async () => {
    const text = await topo.readSubnetEnv(f.node).catch(() => '')
    return /FLANNEL_SUBNET=/.test(text) ? [] : [`no subnet.env yet; flanneld said:\n${f.output().slice(-3000)}`]
  })
}

/** Runs the built CLI inside a node's namespace (doctor --local reads that node's kernel). */
export function cliIn(node: Node, args: string[], timeoutMs = 30_000): Promise<Exec> {
  return sh('ip', ['netns', 'exec', node.ns.name, process.execPath, RUN_JS, ...args], timeoutMs)
}

/** Runs the built CLI in the test's own namespace against the topology's etcd (reachable only from inside: etcd ns). */
export function cli(topo: Topology, args: string[], timeoutMs = 30_000): Promise<Exec> {
  return sh('ip', ['netns', 'exec', topo.etcdNs.name, process.execPath, RUN_JS, ...args, ...topo.etcdArgs()], timeoutMs)
}

export interface DoctorJson {
  findings: Array<{id: string; severity: string; subjects: string[]; message: string}>
  summary: Record<string, number>
}

export function doctorJson(r: Exec): DoctorJson {
  return json<DoctorJson>({stdout: r.stdout, stderr: r.stderr, code: r.code, ms: 0})
}

/** A key's lease ID as etcd reports it ('0' for none). */
export async function leaseOf(topo: Topology, key: string): Promise<string | null> {
  const kv = (await topo.listSubnets()).find((k) => k.key === key)
  return kv ? kv.lease : null
}
