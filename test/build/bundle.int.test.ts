// The built CLI as users run it (npm run build: the esbuild bundle, one stub per command, the code cache): every
// command in the manifest loads, and commands that never talk to etcd never load the etcd client.

import assert from 'node:assert/strict'
import {execFile} from 'node:child_process'
import {existsSync, readFileSync} from 'node:fs'
import {cp, mkdtemp, rm, symlink, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, test} from 'node:test'

import {cliCommand, ROOT, runCli} from '../helpers/cli.js'

interface Manifest {
  commands: Record<string, {id: string; relativePath: string[]; isESM: boolean}>
}

let tmp: string

describe('the bundled CLI', () => {
  before(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'flannelctl-bundle-'))
  })
  after(async () => {
    if (tmp) await rm(tmp, {recursive: true, force: true})
  })

  test('npm run build made the bundle, its code cache and a stub for every command in the manifest', () => {
    assert.ok(existsSync(path.join(ROOT, 'dist', 'flannelctl.cjs')))
    assert.ok(existsSync(path.join(ROOT, 'dist', 'flannelctl.cjs.cache')))
    // ASCII only: bin/run.js reads it as latin1.
    const bytes = readFileSync(path.join(ROOT, 'dist', 'flannelctl.cjs'))
    assert.equal(
      bytes.findIndex((b) => b > 0x7f),
      -1,
    )
    const m = JSON.parse(readFileSync(path.join(ROOT, 'oclif.manifest.json'), 'utf8')) as Manifest
    assert.ok(Object.keys(m.commands).length >= 10)
    for (const c of Object.values(m.commands)) assert.ok(existsSync(path.join(ROOT, ...c.relativePath)), c.id)
  })

  test('every command loads from the bundle (--help exits 0)', async () => {
    const m = JSON.parse(readFileSync(path.join(ROOT, 'oclif.manifest.json'), 'utf8')) as Manifest
    const runs = await Promise.all(Object.keys(m.commands).map((id) => runCli([...id.split(':'), '--help'])))
    for (const [i, id] of Object.keys(m.commands).entries()) {
      assert.equal(runs[i]!.code, 0, `${id}: ${runs[i]!.stderr}`)
      assert.match(runs[i]!.stdout, /USAGE/, id)
    }
  })

  test('offline commands never load the etcd client (lazy loading kept), nor do reads', async () => {
    const cfg = path.join(tmp, 'net.json')
    await writeFile(cfg, '{"Network":"10.0.0.0/8","Backend":{"Type":"vxlan"}}\n')
    for (const args of [['--version'], ['network', 'validate', cfg]]) {
      const r = await runCli(args, {env: {NODE_DEBUG: 'module'}})
      assert.equal(r.code, 0, r.stderr)
      assert.doesNotMatch(r.stderr, /REQUEST (etcd3|@grpc)/, args.join(' '))
    }
    // ...and neither does a command that reads etcd: reads go through the lean client (src/store/v3-lean.ts); etcd3
    // stays in node_modules for writes (test/store/v3-lean.int.test.ts shows a write loading it).
    const r = await runCli(['leases', 'ls', '--endpoints', 'http://127.0.0.1:1', '--dial-timeout', '200ms'], {
      env: {NODE_DEBUG: 'module'},
    })
    assert.equal(r.code, 69, r.stderr)
    assert.doesNotMatch(r.stderr, /REQUEST (etcd3|@grpc)/)
  })

  test("oclif's Node engine check still warns when the running Node is outside package.json's engines", async () => {
    // A copy of the built package with another engines range: the simple form the bundle answers itself, a form it
    // leaves to semver, and flannelctl's own range (no warning).
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'))
    const ownRange: string = pkg.engines.node
    for (const [range, warns] of [
      ['^1.0.0 || >=99.0.0', true],
      ['>=1.0.0 <2.0.0', true],
      [ownRange, false],
      [`>=${process.versions.node} <99.0.0`, false],
    ] as const) {
      const copy = await mkdtemp(path.join(tmp, 'engines-'))
      await cp(path.join(ROOT, 'bin'), path.join(copy, 'bin'), {recursive: true})
      await cp(path.join(ROOT, 'dist'), path.join(copy, 'dist'), {recursive: true})
      await cp(path.join(ROOT, 'oclif.manifest.json'), path.join(copy, 'oclif.manifest.json'))
      await symlink(path.join(ROOT, 'node_modules'), path.join(copy, 'node_modules'))
      await writeFile(path.join(copy, 'package.json'), JSON.stringify({...pkg, engines: {node: range}}, null, 2))
      const r = await new Promise<{code: number | null; stdout: string; stderr: string}>((resolve, reject) => {
        const cmd = cliCommand(['--version'])
        execFile(path.join(copy, 'bin', 'run.js'), cmd.args, {env: cmd.env}, (err, stdout, stderr) =>
          err && typeof err.code !== 'number'
            ? reject(err)
            : resolve({code: err ? Number(err.code) : 0, stdout, stderr}),
        )
      })
      assert.equal(r.code, 0, r.stderr)
      assert.match(r.stdout, /^flannelctl\//)
      if (warns)
        assert.ok(
          r.stderr.includes(
            `Node version must be ${range} to use this CLI. Current node version: ${process.versions.node}`,
          ),
          range + ': ' + r.stderr,
        )
      else assert.equal(r.stderr, '', range)
    }
  })
})
