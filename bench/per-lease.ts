// The listing's per-lease work without etcd, in a fresh process each run (cold, as the CLI runs it): listLeases
// over N flanneld-style vxlan key/values with leases ls --json's rows (decode, filter, each lease's text, order) and the --json document written with
// writeJson to /dev/null (render, chunking, encoding). CPU (process.cpuUsage, GC threads included) and wall time of
// those two phases only; start-up, module loading and the network read are not in it (bench/leases-ls.ts has them).
//
//   node --import tsx bench/per-lease.ts [--sizes 5000,65535] [--runs 9] [--baseline-tree OLD]
//
// --baseline-tree: another checkout of flannelctl (its own src/), run alternately with this one in the same rounds.

import {spawnSync} from 'node:child_process'
import {openSync, closeSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath, pathToFileURL} from 'node:url'

import {leaseEntry, median, table} from './util.js'

interface Phase {
  listCpu: number
  renderCpu: number
  wall: number
}

async function child(root: string, n: number): Promise<void> {
  const src = (p: string) => pathToFileURL(path.join(root, 'src', p)).href
  const {listLeases} = (await import(src('services/leases.ts'))) as typeof import('../src/services/leases.js')
  const {renderElementsWith} = (await import(src('render/json.ts'))) as typeof import('../src/render/json.js')
  const json = (await import(src('render/leases-json.ts'))) as Partial<typeof import('../src/render/leases-json.js')>
  const {writeJson} = (await import(src('render/output.ts'))) as typeof import('../src/render/output.js')
  const subnets = Array.from({length: n}, (_, i) => {
    const {key, value} = leaseEntry(i + 1)
    // strings made from bytes, as the store makes them
    const rev = String(i + 5)
    return {
      key: Buffer.from(key).toString(),
      value: Buffer.from(value).toString(),
      createRevision: rev,
      modRevision: rev,
      version: '1',
      lease: String(7_587_869_207_405_510_000n + BigInt(i)),
    }
  })
  const reader = {
    source: 'etcd',
    readNetwork: () => Promise.resolve({revision: String(n + 2), config: null, subnets, foreign: []}),
    leaseTtls: () => Promise.resolve(new Map<string, number>()),
  }
  const c0 = process.cpuUsage()
  const t0 = performance.now()
  // As leases ls --json does (rows made as leases are read, src/commands/leases/ls.ts), or, for a baseline tree
  // from before LeaseTexts, LeaseJson rows rendered by leaseJsonText.
  const options = {withTtl: false, now: Date.now()}
  let result: {leases: unknown[]}
  if (json.LeaseTexts) {
    const texts = new json.LeaseTexts('    ')
    result = await listLeases(reader as never, options, texts)
    renderElementsWith(result.leases as number[], texts.render)
  } else {
    result = await listLeases(reader as never, options)
    renderElementsWith(result.leases as never[], json.leaseJsonText!)
  }
  const c1 = process.cpuUsage(c0)
  writeJson(result)
  process.on('exit', () => {
    const c2 = process.cpuUsage(c0)
    const ms = (c: NodeJS.CpuUsage) => (c.user + c.system) / 1000
    const phase: Phase = {listCpu: ms(c1), renderCpu: ms(c2) - ms(c1), wall: performance.now() - t0}
    process.stderr.write(JSON.stringify(phase) + '\n')
  })
}

/** This environment without NODE_EXTRA_CA_CERTS (read at every Node start; nothing here uses TLS). */
function childEnv(): NodeJS.ProcessEnv {
  const env = {...process.env}
  delete env.NODE_EXTRA_CA_CERTS
  return env
}

function run(root: string, n: number): Phase {
  const out = openSync('/dev/null', 'w')
  try {
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', root, String(n)],
      {
        stdio: ['ignore', out, 'pipe'],
        encoding: 'utf8',
        timeout: 300_000,
        env: childEnv(),
      },
    )
    if (r.status !== 0) throw new Error(`child failed (${root}, ${n}): ${r.stderr}`)
    return JSON.parse(r.stderr.trim().split('\n').pop()!) as Phase
  } finally {
    closeSync(out)
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2)
  if (argv[0] === '--child') return child(argv[1]!, Number(argv[2]))
  const opt = (name: string, def: string) => {
    const i = argv.indexOf(name)
    return i >= 0 ? argv[i + 1]! : def
  }
  const sizes = opt('--sizes', '5000,65535').split(',').map(Number)
  const runs = Number(opt('--runs', '9'))
  const here = path.resolve(fileURLToPath(new URL('..', import.meta.url)))
  const base = argv.includes('--baseline-tree') ? path.resolve(opt('--baseline-tree', '')) : null
  const trees: Array<[string, string]> = [['A  this tree', here]]
  if (base) trees.push(['A0 baseline tree', base])
  console.log(
    `per-lease work (no etcd), fresh process per run, loadavg ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  )
  for (const n of sizes) {
    const got = trees.map(() => [] as Phase[])
    for (let r = 0; r < runs; r++) trees.forEach(([, root], k) => got[k]!.push(run(root, n)))
    const rows = [['tree', 'list CPU', 'render CPU', 'total CPU', 'wall', 'per lease (CPU)']]
    trees.forEach(([name], k) => {
      const p = got[k]!
      const list = median(p.map((x) => x.listCpu))
      const render = median(p.map((x) => x.renderCpu))
      const total = median(p.map((x) => x.listCpu + x.renderCpu))
      const f = (x: number) => `${x.toFixed(1)} ms`
      rows.push([
        name,
        f(list),
        f(render),
        f(total),
        f(median(p.map((x) => x.wall))),
        `${((total / n) * 1000).toFixed(1)} µs`,
      ])
    })
    console.log(`\n== ${n} leases: ${runs} runs each, alternated, medians`)
    console.log(table(rows))
  }
  console.log(
    `\nloadavg ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  )
}

await main()
