// bin/run.js as users start it: executed itself (npm's bin link, PATH), its sh lines re-execute node without
// NODE_EXTRA_CA_CERTS and flannelctl's TLS clients apply that file themselves (src/store/extra-ca.ts); or run as
// `node bin/run.js`, where Node applies it. Both must behave alike: the same pid (signals), exit status, argv, stdin,
// the environment child processes see, and TLS with a CA that reaches flannelctl only through NODE_EXTRA_CA_CERTS
// (v3 reads over the lean client, v3 writes over etcd3, v2 over HTTPS). Ctrl-C on a terminal (exit 130) is
// test/prompts/confirm.int.test.ts, which runs the bin itself on a pseudo-terminal.

import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {readdirSync, readFileSync} from 'node:fs'
import {chmod, mkdir, mkdtemp, rm, symlink, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, test} from 'node:test'
import {setTimeout as sleep} from 'node:timers/promises'

import {cleanEnv, cliCommand, json, putKey, putSubnet, ROOT, RUN_JS, runCli, show, vxlanValue} from '../helpers/cli.js'
import {type EtcdServer, startEtcd} from '../helpers/etcd.js'

const LAUNCHES = ['bin', 'node'] as const
const CONFIG = '{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}'

let tmp: string
let plain: EtcdServer | undefined
let secure: EtcdServer | undefined

before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'flannelctl-launcher-'))
  ;[plain, secure] = await Promise.all([startEtcd(), startEtcd({tls: true, enableV2: true})])
  await putKey(plain, '/coreos.com/network/config', CONFIG)
  await putSubnet(plain, '/coreos.com/network/subnets/10.5.1.0-24', vxlanValue('198.18.0.1', 'c6:d2:32:6f:00:01'))
})

after(async () => {
  await Promise.all([plain?.stop(), secure?.stop()])
  if (tmp) await rm(tmp, {recursive: true, force: true})
})

describe('bin/run.js launched as a program', () => {
  test('through an npm-style symlink on PATH: argv with spaces and quotes, exit status, stdin', async () => {
    const bin = path.join(tmp, 'npm-bin')
    await mkdir(bin)
    await symlink(RUN_JS, path.join(bin, 'flannelctl'))
    const env = {...cleanEnv(), PATH: `${bin}:${path.dirname(process.execPath)}:${process.env.PATH}`}
    const run = (args: string[], input = '') =>
      new Promise<{code: number | null; stdout: string; stderr: string}>((resolve, reject) => {
        const c = spawn(path.join(bin, 'flannelctl'), args, {env, cwd: tmp, stdio: ['pipe', 'pipe', 'pipe']})
        let stdout = ''
        let stderr = ''
        c.stdout.on('data', (b: Buffer) => (stdout += b.toString()))
        c.stderr.on('data', (b: Buffer) => (stderr += b.toString()))
        c.on('error', reject)
        c.on('close', (code) => resolve({code, stdout, stderr}))
        c.stdin.on('error', () => {}) // a run that exits before reading stdin closes it first
        c.stdin.end(input)
      })
    const odd = path.join(tmp, `net conf "it's" $HOME;.json`)
    await writeFile(odd, CONFIG + '\n')
    const ok = await run(['network', 'validate', odd, '--json'])
    assert.equal(ok.code, 0, ok.stderr)
    assert.equal(json({...ok, code: 0, ms: 0}).valid, true)
    const missing = await run(['network', 'validate', odd + '.missing'])
    assert.equal(missing.code, 2, missing.stderr)
    assert.ok(missing.stderr.includes(`${odd}.missing`), missing.stderr)
    const snapshot = readFileSync(path.join(ROOT, 'examples', 'snapshot.json'), 'utf8')
    const fromStdin = await run(['leases', 'ls', '--snapshot', '-', '--json'], snapshot)
    const fromFile = await runCli([
      'leases',
      'ls',
      '--snapshot',
      path.join(ROOT, 'examples', 'snapshot.json'),
      '--json',
    ])
    assert.equal(fromStdin.code, 0, fromStdin.stderr)
    const {source, ...leases} = json({...fromStdin, code: 0, ms: 0})
    assert.equal(source, '-')
    const {source: fileSource, ...fileLeases} = json(fromFile)
    assert.ok(fileSource.endsWith('snapshot.json'))
    assert.deepEqual(leases, fileLeases)
    assert.ok(leases.leases.length > 100)
    // A pipe on stdin is not taken for the SUBNET argument (oclif reads stdin into missing arguments by default).
    const piped = await run(
      ['leases', 'ls', '--snapshot', path.join(ROOT, 'examples', 'snapshot.json'), '--json'],
      '10.5.1.0/24\n',
    )
    assert.equal(piped.code, 0, piped.stderr)
    assert.equal(json({...piped, code: 0, ms: 0}).leases.length, leases.leases.length)
  })

  test('exec keeps the pid: the process is node at once, and SIGINT/SIGTERM end a watch as under `node bin/run.js`', async () => {
    let n = 0
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      const ends = []
      for (const launch of LAUNCHES) {
        const c = cliCommand(['leases', 'watch', '--list', '--json', '--endpoints', plain!.endpoint], launch)
        const child = spawn(c.file, c.args, {env: c.env, cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe']})
        let out = ''
        let err = ''
        child.stdout.on('data', (b: Buffer) => (out += b.toString()))
        child.stderr.on('data', (b: Buffer) => (err += b.toString()))
        const exited = new Promise<{code: number | null; signal: NodeJS.Signals | null}>((resolve) =>
          child.on('close', (code, sig) => resolve({code, signal: sig})),
        )
        const limit = setTimeout(() => child.kill('SIGKILL'), 30_000)
        try {
          const deadline = Date.now() + 25_000
          while (!out.includes('\n') && child.exitCode === null && Date.now() < deadline) await sleep(25)
          assert.match(out, /10\.5\.1\.0\/24/, `${launch}: ${out}\n${err}`)
          // The watch proper is established once an event after the list comes through (a signal before that is
          // another matter: the watch takes the aborted call for a lost connection and reconnects, as under node).
          const subnet = `10.5.${10 + n++}.0`
          await putKey(
            plain!,
            `/coreos.com/network/subnets/${subnet}-24`,
            vxlanValue('198.18.0.2', 'c6:d2:32:6f:00:02'),
          )
          while (!out.includes(`"${subnet}/24"`) && child.exitCode === null && Date.now() < deadline) await sleep(25)
          assert.ok(out.includes(`"${subnet}/24"`), `${launch}: no event for ${subnet}\n${out}\n${err}`)
          // The pid the shell had is node's now (exec, not a child).
          const argv = readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0')
          assert.equal(path.basename(argv[0]!), 'node', argv.join(' '))
          child.kill(signal)
          ends.push(await exited)
        } finally {
          clearTimeout(limit)
          if (child.exitCode === null) child.kill('SIGKILL')
        }
      }
      assert.deepEqual(ends[0], ends[1], `${signal}: ${JSON.stringify(ends)}`)
      assert.deepEqual(ends[0], {code: 0, signal: null}, signal)
    }
  })

  test('child processes see the environment the user gave (NODE_EXTRA_CA_CERTS back, no private variable)', async () => {
    const fake = path.join(tmp, 'fake-ip')
    await mkdir(fake)
    const dump = path.join(tmp, 'env-dumps')
    await mkdir(dump)
    // doctor --local reads the node's links and routes with `ip -json`: this one records its environment.
    await writeFile(path.join(fake, 'ip'), `#!/bin/sh\nenv > ${JSON.stringify(dump)}/env.$$\necho '[]'\n`)
    await chmod(path.join(fake, 'ip'), 0o755)
    for (const launch of LAUNCHES) {
      const r = await runCli(['doctor', '--local', '--snapshot', path.join(ROOT, 'examples', 'snapshot.json')], {
        launch,
        env: {
          PATH: `${fake}:${path.dirname(process.execPath)}:${process.env.PATH}`,
          NODE_EXTRA_CA_CERTS: '/nonexistent/extra ca.pem',
          SOME_USER_VAR: 'a "b" c',
        },
      })
      assert.ok(r.code === 0 || r.code === 5, show(r))
      const envs = readdirSync(dump).map((f) => readFileSync(path.join(dump, f), 'utf8'))
      assert.ok(envs.length > 0, `${launch}: ip was not run\n${show(r)}`)
      for (const e of envs) {
        assert.match(e, /^NODE_EXTRA_CA_CERTS=\/nonexistent\/extra ca\.pem$/m, launch)
        assert.match(e, /^SOME_USER_VAR=a "b" c$/m, launch)
        assert.doesNotMatch(e, /FLANNELCTL_NODE_EXTRA_CA_CERTS/, launch)
      }
      await rm(dump, {recursive: true, force: true})
      await mkdir(dump)
    }
  })

  test("oclif's plugins still answer what they are for: help, autocomplete, a misspelt command", async () => {
    const help = await runCli(['--help'])
    assert.equal(help.code, 0, show(help))
    assert.match(help.stdout, /^ {2}autocomplete /m)
    assert.match(help.stdout, /^ {2}help /m)
    const helpOf = await runCli(['help', 'leases', 'ls'])
    assert.equal(helpOf.code, 0, show(helpOf))
    assert.match(helpOf.stdout, /USAGE/)
    const misspelt = await runCli(['leases', 'lss'])
    assert.equal(misspelt.code, 127, show(misspelt))
    assert.match(misspelt.stderr, /leases lss is not a flannelctl command/)
    const complete = await runCli(['autocomplete', 'script', 'bash'])
    assert.equal(complete.code, 0, show(complete))
    // ...and the commands themselves, which start without them, are the same commands.
    const version = await runCli(['--version'])
    assert.match(version.stdout, /^flannelctl\/\d+\.\d+\.\d+ /)
  })

  test("oclif's debug output and performance timings still come when asked (the bundle loads debug and perf_hooks only then)", async () => {
    const quiet = await runCli(['--version'])
    assert.equal(quiet.code, 0, show(quiet))
    assert.equal(quiet.stderr, '', show(quiet))
    const debug = await runCli(['--version'], {env: {DEBUG: 'oclif*'}})
    assert.equal(debug.code, 0, show(debug))
    assert.match(debug.stdout, /^flannelctl\/\d+\.\d+\.\d+ /)
    assert.match(debug.stderr, /oclif:main process\.argv: /, show(debug))
    assert.match(debug.stderr, /oclif:config:flannelctl /, show(debug))
    const other = await runCli(['--version'], {env: {DEBUG: 'someone-else'}})
    assert.equal(other.stderr, '', show(other))
    // Performance is on only when oclif's global settings say so before it loads (as a host program would set them).
    const preload = path.join(tmp, 'oclif-perf.cjs')
    await writeFile(preload, 'globalThis.oclif = {performanceEnabled: true}\n')
    const perf = await runCli(['--version'], {env: {DEBUG: 'oclif:perf', NODE_OPTIONS: `--require ${preload}`}})
    assert.equal(perf.code, 0, show(perf))
    assert.match(perf.stderr, /oclif:perf Oclif Time: \d+\.\d+ms/, show(perf))
  })

  test('the launcher defers NODE_EXTRA_CA_CERTS: a command that opens no TLS connection never reads the file', async () => {
    const env = {NODE_EXTRA_CA_CERTS: path.join(tmp, 'no-such-ca.pem')}
    const viaBin = await runCli(['--version'], {env})
    assert.equal(viaBin.code, 0, show(viaBin))
    assert.doesNotMatch(viaBin.stderr, /extra certs/i, show(viaBin))
    // Node itself reads it at start (and says so): the launcher is what makes the difference.
    const viaNode = await runCli(['--version'], {env, launch: 'node'})
    assert.equal(viaNode.code, 0, show(viaNode))
    assert.match(viaNode.stderr, /Ignoring extra certs from/, show(viaNode))
  })
})

describe(
  'NODE_EXTRA_CA_CERTS as the only source of the CA (TLS etcd, client certificates)',
  {concurrency: true},
  () => {
    const tlsArgs = () => ['--endpoints', secure!.endpoint, '--cert', secure!.tls!.cert, '--key', secure!.tls!.key]
    const withCa = () => ({NODE_EXTRA_CA_CERTS: secure!.tls!.ca})

    for (const launch of LAUNCHES) {
      test(`${launch}: a v3 write (etcd3), v3 reads (lean client), a v2 write and a v2 read`, async () => {
        const p3 = `/extra-ca-${launch}/network`
        const init = await runCli(
          ['network', 'init', '--network', '10.6.0.0/16', '--etcd-prefix', p3, '--yes', '--json', ...tlsArgs()],
          {launch, env: withCa()},
        )
        assert.equal(init.code, 0, show(init))
        const showV3 = await runCli(['network', 'show', '--etcd-prefix', p3, '--json', ...tlsArgs()], {
          launch,
          env: withCa(),
        })
        assert.equal(showV3.code, 0, show(showV3))
        assert.equal(json(showV3).config.Network, '10.6.0.0/16')
        const ls = await runCli(['leases', 'ls', '--etcd-prefix', p3, '--json', '--no-ttl', ...tlsArgs()], {
          launch,
          env: withCa(),
        })
        assert.equal(ls.code, 0, show(ls))
        assert.deepEqual(json(ls).leases, [])

        const p2 = `/extra-ca-v2-${launch}/network`
        const v2 = ['--etcd-api', 'v2', '--etcd-prefix', p2]
        const init2 = await runCli(
          ['network', 'init', '--network', '10.7.0.0/16', '--yes', '--json', ...v2, ...tlsArgs()],
          {
            launch,
            env: withCa(),
          },
        )
        assert.equal(init2.code, 0, show(init2))
        const show2 = await runCli(['network', 'show', '--json', ...v2, ...tlsArgs()], {launch, env: withCa()})
        assert.equal(show2.code, 0, show(show2))
        assert.equal(json(show2).config.Network, '10.7.0.0/16')
      })

      test(`${launch}: without the variable the same TLS etcd is refused (the CA comes from nowhere else)`, async () => {
        for (const api of ['v3', 'v2']) {
          const r = await runCli(['network', 'show', '--etcd-api', api, ...tlsArgs()], {
            launch,
            env: {NODE_EXTRA_CA_CERTS: undefined},
          })
          assert.equal(r.code, 69, `${api}: ${show(r)}`)
          assert.match(r.stderr, /TLS|certificate/i, api)
        }
      })

      test(`${launch}: an explicit --cacert replaces the extra CAs, as in Node (a wrong --cacert fails)`, async () => {
        for (const api of ['v3', 'v2']) {
          const r = await runCli(
            ['network', 'show', '--etcd-api', api, '--cacert', secure!.tls!.wrongCa, ...tlsArgs()],
            {
              launch,
              env: withCa(),
            },
          )
          assert.equal(r.code, 69, `${api}: ${show(r)}`)
          assert.match(r.stderr, /TLS|certificate/i, api)
        }
      })

      test(`${launch}: an unreadable NODE_EXTRA_CA_CERTS is a warning on stderr, not a failure`, async () => {
        const r = await runCli(['network', 'show', '--json', '--cacert', secure!.tls!.ca, ...tlsArgs()], {
          launch,
          env: {NODE_EXTRA_CA_CERTS: path.join(tmp, 'missing-extra.pem')},
        })
        assert.equal(r.code, 4, show(r)) // no config at the default prefix: not found, after a working TLS connection
        assert.match(r.stderr, /Ignoring extra certs from `.*missing-extra\.pem`, load failed/, show(r))
      })
    }
  },
)
