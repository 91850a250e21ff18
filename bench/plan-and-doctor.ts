// Benchmark of `network expand` planning and `doctor` against `leases ls` on the same data, in the same run
// (issues 3 and 4): both must stay within 1.5x of `leases ls --json`.
//
//   node --import tsx bench/plan-and-doctor.ts [--size 65535] [--runs 5]
//
// A fresh etcd (test/helpers/etcd.ts) holds the config and N leases exactly as flanneld writes them (10.0.0.0/8,
// SubnetLen 24, each key with its own 24h etcd lease). Measured, round by round after one untimed warm-up:
//   L  flannelctl leases ls --json                          (TTLs included: one TimeToLive per lease)
//   E  flannelctl network expand --to 10.0.0.0/7 --dry-run --json   (reads config + leases at one revision, plans)
//   X  flannelctl doctor --json                             (reads config + leases + TTLs, every cluster check)
// Needs a built CLI (npm run build).

import {mkdtemp, rm} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {Etcd3} from 'etcd3'

import {startEtcd} from '../test/helpers/etcd.js'
import {cleanEnv, leaseEntry, machine, measure, type Measured, median, ms, pool, table} from './util.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? Number(process.argv[i + 1]) : def
}
const SIZE = arg('size', 65_535)
const RUNS = arg('runs', 5)
const PREFIX = '/coreos.com/network'

async function main(): Promise<void> {
  const etcd = await startEtcd()
  const dir = await mkdtemp(path.join(os.tmpdir(), 'flannelctl-bench-plan-'))
  try {
    const client = new Etcd3({hosts: etcd.endpoint, grpcOptions: {'grpc.max_receive_message_length': 1 << 30}})
    await client.put(`${PREFIX}/config`).value('{"Network":"10.0.0.0/8","Backend":{"Type":"vxlan"}}').exec()
    await pool(SIZE, 256, async (i) => {
      const {key, value} = leaseEntry(i + 1)
      const {ID} = await client.leaseClient.leaseGrant({TTL: 86_400})
      await client.kv.put({key: Buffer.from(key), value: Buffer.from(value), lease: ID})
    })
    client.close()
    const env = cleanEnv()
    const cli = path.join(ROOT, 'bin', 'run.js')
    const ep = ['--endpoints', etcd.endpoint]
    const cmds: Record<'L' | 'E' | 'X', string[]> = {
      L: ['leases', 'ls', '--json', ...ep],
      E: ['network', 'expand', '--to', '10.0.0.0/7', '--dry-run', '--json', ...ep],
      X: ['doctor', '--json', ...ep],
    }
    const results: Record<string, Measured[]> = {L: [], E: [], X: []}
    for (let round = 0; round <= RUNS; round++) {
      for (const name of ['L', 'E', 'X'] as const) {
        const m = await measure(process.execPath, [cli, ...cmds[name]], {
          stdoutFile: path.join(dir, `${name}.json`),
          timeoutMs: 300_000,
          env,
          cwd: ROOT,
        })
        // doctor exits 5 when it finds problems (capacity is the only one here: 65,535 of 65,535 used)
        if (m.code !== 0 && !(name === 'X' && m.code === 5))
          throw new Error(`${name} exited ${m.code}: ${m.stderr.slice(0, 500)}`)
        if (round > 0) results[name]!.push(m)
      }
      if (round > 0)
        console.error(
          `round ${round}/${RUNS}: L ${ms(results.L!.at(-1)!.wallMs)}  E ${ms(results.E!.at(-1)!.wallMs)}  X ${ms(results.X!.at(-1)!.wallMs)}`,
        )
    }
    const med = (n: string) => median(results[n]!.map((m) => m.wallMs))
    const [l, e, x] = [med('L'), med('E'), med('X')]
    console.log(
      `plan and doctor vs leases ls, ${SIZE} leases, median of ${RUNS} (${Object.entries(machine())
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')})`,
    )
    console.log(
      table([
        ['command', 'median', 'ratio to L', 'target', 'verdict'],
        ['L leases ls --json', ms(l), '1.00', '', ''],
        ['E network expand --dry-run --json', ms(e), (e / l).toFixed(2), '<= 1.5', e <= 1.5 * l ? 'PASS' : 'FAIL'],
        ['X doctor --json', ms(x), (x / l).toFixed(2), '<= 1.5', x <= 1.5 * l ? 'PASS' : 'FAIL'],
      ]),
    )
    if (e > 1.5 * l || x > 1.5 * l) process.exitCode = 1
  } finally {
    await etcd.stop()
    await rm(dir, {recursive: true, force: true})
  }
}

main().catch((error) => {
  console.error(error)
  process.exitCode = 3
})
