// Hostile keys and values (ANSI escapes, $(...), quotes, newlines, NUL, invalid UTF-8, C1 and bidi controls, 1 MB
// values) through every read command and doctor, via the built CLI against a real etcd: a terminal (a pseudo-terminal)
// never receives a raw control character from the data, --json keeps the exact values, and every suggested command
// passes `sh -n` and splits in a shell into exactly its argv (run against stub programs on PATH; nothing is executed).

import assert from 'node:assert/strict'
import {execFile} from 'node:child_process'
import {chmod, mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, test} from 'node:test'
import {promisify} from 'node:util'

import {json, runCli, show, vxlanValue} from '../helpers/cli.js'
import {type EtcdServer, startEtcd} from '../helpers/etcd.js'
import {runCliTty} from '../helpers/tty.js'

const run = promisify(execFile)

let etcd: EtcdServer
let tmp: string
let snapshotFile: string
const ep = () => ['--endpoints', etcd.endpoint]

/** A prefix that itself needs quoting: a hint that loses it acts on the default keyspace, or runs $(...). */
const A = "/it's $(touch PWNED)"
/** A prefix whose config holds raw control characters. */
const B = '/hostile-config'

const bytes = (s: string | Buffer) => (typeof s === 'string' ? Buffer.from(s, 'utf8') : s)

async function gateway(pathname: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${etcd.endpoint}${pathname}`, {method: 'POST', body: JSON.stringify(body)})
  const text = await res.text()
  assert.equal(res.status, 200, `${pathname}: ${text}`)
  return JSON.parse(text) as Record<string, unknown>
}

/** A put of raw bytes through etcd's JSON gateway (argv cannot carry NUL or invalid UTF-8). */
async function put(key: string | Buffer, value: string | Buffer, ttl?: number): Promise<void> {
  let lease: string | undefined
  if (ttl !== undefined) lease = String((await gateway('/v3/lease/grant', {TTL: ttl})).ID)
  await gateway('/v3/kv/put', {
    key: bytes(key).toString('base64'),
    value: bytes(value).toString('base64'),
    ...(lease ? {lease} : {}),
  })
}

const ESC = '\u001b'
const HOSTILE_KEYS: Array<string | Buffer> = [
  `${A}/subnets/x; touch PWNED #`,
  `${A}/subnets/$(touch PWNED)`,
  `${A}/subnets/a'b"c\`d\``,
  `${A}/subnets/line1\nline2`,
  `${A}/subnets/cls${ESC}[2J${ESC}[H`,
  `${A}/subnets/c1\u009b31mred`,
  `${A}/subnets/bidi\u202eevil`,
  Buffer.concat([Buffer.from(`${A}/subnets/bad`), Buffer.from([0xff, 0xfe, 0x80])]),
  `${A}/subnets/nul\u0000x`,
  `${A}/subnets/10.5.200.0-24\r`,
]

before(async () => {
  ;[etcd, tmp] = await Promise.all([startEtcd(), mkdtemp(path.join(os.tmpdir(), 'flannelctl-hostile-'))])
  await put(`${A}/config`, '{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}')
  // Valid keys with hostile decoded fields: a BackendType with colour codes, one with $(...), a 1 MB value.
  await put(
    `${A}/subnets/10.5.1.0-24`,
    '{"PublicIP":"192.168.1.1","BackendType":"vxlan\\u001b[31mRED\\u001b[0m","BackendData":{"VNI":1,"VtepMAC":"02:00:00:00:00:01"}}',
    86_400,
  )
  await put(`${A}/subnets/10.5.2.0-24`, '{"PublicIP":"192.168.1.1","BackendType":"host-gw$(touch PWNED)"}')
  const big = 'A'.repeat(1 << 20)
  await put(
    `${A}/subnets/10.5.3.0-24`,
    `{"PublicIP":"192.168.1.3","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:00:00:00:00:03","X":"${big}\\u001b[2J"}}`,
    86_400,
  )
  await put(`${A}/subnets/10.5.4.0-24`, vxlanValue('192.168.1.4', '02:00:00:00:00:04'), 1800) // missed renewal (below the 60 min margin)
  // A value that is not JSON at all, with raw controls and a NUL.
  await put(`${A}/subnets/10.5.9.0-24`, `${ESC}]0;pwned\u0007 \u0000 ${ESC}[2J not json`)
  for (const k of HOSTILE_KEYS) await put(k, vxlanValue('192.168.1.99', '02:00:00:00:00:99'))
  await put(`${A}/evil; rm -rf ~ ${ESC}[5m`, 'x') // a foreign key
  await put(`${B}/config`, `{"Network":"10.6.0.0/16","Backend":{"Type":"vxlan${ESC}[2J"},"X":"$(touch PWNED)"}`)
  const dump = await etcd.etcdctl(['get', '--prefix', A, '-w', 'json'])
  assert.equal(dump.code, 0, dump.stderr)
  snapshotFile = path.join(tmp, 'snapshot.json')
  await writeFile(snapshotFile, dump.stdout)
})

after(async () => {
  await etcd?.stop()
  if (tmp) await rm(tmp, {recursive: true, force: true})
})

/** Every control character a terminal could act on, except the newline; with `colour`, SGR sequences are ours. */
function assertTerminalSafe(output: string, what: string, colour = false): void {
  // Our own progress indicator on stderr (fixed text, no data) redraws one line with \r and clears it with ESC [ K.
  // eslint-disable-next-line no-control-regex
  const own = output.replace(/\r\u001b\[K/g, '').replace(/\r[a-z][a-z ]*: \d+\/\d+[^\n\r]*/gi, '')
  // eslint-disable-next-line no-control-regex
  const text = colour ? own.replace(/\u001b\[[0-9;]*m/g, '') : own
  // eslint-disable-next-line no-control-regex
  const bad = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/.exec(text)
  assert.equal(
    bad,
    null,
    `${what}: raw U+${bad?.[0].codePointAt(0)!.toString(16).padStart(4, '0')} at ${bad?.index}: ${JSON.stringify(text.slice(Math.max(0, (bad?.index ?? 0) - 60), (bad?.index ?? 0) + 20))}`,
  )
}

const READS: Array<[string, string[]]> = [
  ['network show', ['network', 'show', '--etcd-prefix', A]],
  ['network show (hostile config)', ['network', 'show', '--etcd-prefix', B]],
  ['leases ls', ['leases', 'ls', '--etcd-prefix', A]],
  ['leases ls -o wide', ['leases', 'ls', '-o', 'wide', '--etcd-prefix', A]],
  ['doctor', ['doctor', '--etcd-prefix', A]],
  ['doctor (hostile config)', ['doctor', '--etcd-prefix', B]],
  ['subnet-env', ['subnet-env', '--public-ip', '192.168.1.3', '--etcd-prefix', A]],
]

describe('hostile data on a terminal', {concurrency: 2}, () => {
  for (const [name, args] of READS) {
    test(`${name}: no raw control character reaches the terminal (plain, colour, --json, snapshot)`, async () => {
      const plain = await runCliTty([...args, ...ep()], {cwd: tmp})
      assertTerminalSafe(plain.output, name)
      assert.ok(
        plain.code === 0 || plain.code === 5 || plain.code === 2,
        `${name}: exit ${plain.code}\n${plain.output}`,
      )
      const coloured = await runCliTty([...args, ...ep()], {cwd: tmp, env: {NO_COLOR: undefined}})
      assertTerminalSafe(coloured.output, `${name} (colour)`, true)
      const asJson = await runCliTty([...args, ...ep(), '--json'], {cwd: tmp})
      assertTerminalSafe(asJson.output, `${name} --json`)
      if (!name.includes('hostile config') && name !== 'subnet-env') {
        const snap = await runCliTty([...args, '--snapshot', snapshotFile], {cwd: tmp})
        assertTerminalSafe(snap.output, `${name} --snapshot`)
      }
      assert.deepEqual(await readdir(tmp).then((f) => f.filter((x) => x.includes('PWNED'))), [])
    })
  }

  test('leases ls shows the escapes visibly and keeps exact values in --json', async () => {
    const r = await runCliTty(['leases', 'ls', '-o', 'wide', '--etcd-prefix', A, ...ep()], {cwd: tmp})
    assert.match(r.output, /vxlan\\x1b\[31mRED\\x1b\[0m/)
    assert.match(r.output, /cls\\x1b\[2J\\x1b\[H/)
    assert.match(r.output, /line1\\nline2/)
    const j = json<{leases: Array<{backendType: string}>; malformed: Array<{key: string; value: string}>}>(
      await runCli(['leases', 'ls', '--etcd-prefix', A, ...ep(), '--json']),
    )
    assert.ok(j.leases.some((l) => l.backendType === `vxlan${ESC}[31mRED${ESC}[0m`))
    assert.ok(j.malformed.some((m) => m.key === `${A}/subnets/line1\nline2`))
    assert.ok(j.malformed.some((m) => m.key === `${A}/subnets/nul\u0000x`))
  })
})

interface Cmd {
  argv: string[]
  env?: Record<string, string>
  shell: string
}

describe('suggested commands', () => {
  test('every hint passes sh -n, splits into exactly its argv, carries the prefix and endpoints, and runs nothing else', async () => {
    const r = await runCli(['doctor', '--etcd-prefix', A, ...ep(), '--json'], {cwd: tmp})
    assert.equal(r.code, 5, show(r))
    const findings = json<{findings: Array<{id: string; hint: string; commands?: Cmd[]}>}>(r).findings
    const cmds = findings.flatMap((f) => (f.commands ?? []).map((c) => ({id: f.id, c})))
    const ids = new Set(cmds.map((x) => x.id))
    for (const id of ['malformed-lease', 'duplicate-public-ip', 'missed-renewal', 'reservation'])
      assert.ok(ids.has(id), `no commands for ${id}: ${JSON.stringify(findings.map((f) => f.id))}`)
    // Stubs that record their argv (NUL-separated) and ETCDCTL_API instead of acting.
    const bin = path.join(tmp, 'bin')
    await run('mkdir', ['-p', bin])
    for (const name of ['flannelctl', 'etcdctl']) {
      const stub = path.join(bin, name)
      await writeFile(
        stub,
        `#!/bin/sh\nprintf '%s\\0' "${name}" "API=\${ETCDCTL_API-unset}" "$@" > "$STUB_OUT"\n`,
        'utf8',
      )
      await chmod(stub, 0o755)
    }
    const human = await runCliTty(['doctor', '--etcd-prefix', A, ...ep()], {cwd: tmp})
    for (const {id, c} of cmds) {
      await run('sh', ['-n', '-c', c.shell])
      const out = path.join(tmp, 'argv')
      await run('sh', ['-c', c.shell], {cwd: tmp, env: {PATH: `${bin}:/usr/bin:/bin`, STUB_OUT: out}})
      const got = (await readFile(out, 'utf8')).split('\0').slice(0, -1)
      const [prog, api, ...args] = got
      assert.equal(prog, c.argv[0], `${id}: ${c.shell}`)
      assert.deepEqual(args, c.argv.slice(1), `${id}: ${c.shell}`)
      assert.equal(api, `API=${c.env?.ETCDCTL_API ?? 'unset'}`)
      assert.ok(c.argv.includes(etcd.endpoint), `${id}: the endpoint is carried: ${c.shell}`)
      if (prog === 'flannelctl') assert.ok(c.argv.includes(A), `${id}: the prefix is carried: ${c.shell}`)
      // The human hint shows the same command (escaped where the data holds control characters).
      // (Unless its kind is grouped: beyond five of one kind only the first three are shown.)
      // eslint-disable-next-line no-control-regex
      if (!/[\u0000-\u001f\u007f-\u009f\u202a-\u202e]/.test(c.shell) && !human.output.includes(`more [${id}]`))
        assert.ok(human.output.includes(c.shell), `${id}: human output lacks ${c.shell}`)
    }
    // The malformed keys' commands name each key exactly (the NUL one gets words instead of a command).
    const dels = cmds.filter((x) => x.c.argv.includes('del')).map((x) => x.c.argv.at(-1))
    for (const k of HOSTILE_KEYS) {
      const key = typeof k === 'string' ? k : k.toString('utf8')
      if (key.includes('\0')) assert.ok(!dels.includes(key))
      else assert.ok(dels.includes(key), `no del hint for ${JSON.stringify(key)}`)
    }
    assert.deepEqual(await readdir(tmp).then((f) => f.filter((x) => x.includes('PWNED'))), [])
  })
})
