// Every byte of a large result reaches stdout whatever it is: a pipe, a slow pipe, a file, a TTY; a reader that goes
// away (`| head`) ends output quietly. Through the built CLI (bin/run.js) at 65,535 leases, against a real etcd.

import {spawn} from 'node:child_process'
import {createHash} from 'node:crypto'
import {mkdtemp, readFile, rm, stat} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {after, before, describe, test} from 'node:test'
import assert from 'node:assert/strict'

import {cleanEnv, RUN_JS} from '../helpers/cli.js'
import {startEtcd, type EtcdServer} from '../helpers/etcd.js'
import {seedSubnets} from '../helpers/seed.js'

const N = 65_535
let etcd: EtcdServer
let tmp: string
let reference: {bytes: number; sha: string; file: string}

interface ShellResult {
  stdout: string
  stderr: string
  code: number
}

/** `bash -c script` with $CLI set to the built CLI; killed (its own process group) after `timeoutMs`. */
function sh(script: string, timeoutMs = 120_000): Promise<ShellResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', `set -u; ${script}`], {
      env: cleanEnv({CLI: `${process.execPath} ${RUN_JS}`, EP: etcd.endpoint, TMP: tmp}),
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL')
    }, timeoutMs)
    child.once('error', reject)
    child.once('close', (code, signal) => {
      clearTimeout(timer)
      resolve({stdout, stderr, code: code ?? (signal ? 128 : 1)})
    })
  })
}

/** Lines the shell script prints as `name=value`. */
function fields(out: string): Record<string, string> {
  return Object.fromEntries(
    out
      .trim()
      .split('\n')
      .map((l) => l.split('=', 2) as [string, string]),
  )
}

function noTrace(stderr: string): void {
  assert.doesNotMatch(stderr, /\n\s+at |EAGAIN|EPIPE|Error/, `stderr: ${stderr.slice(0, 2000)}`)
}

const LS = '$CLI leases ls --json --no-ttl --endpoints "$EP"'

describe('stdout delivers every byte (65,535 leases, built CLI)', {timeout: 600_000}, () => {
  before(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'flannelctl-output-'))
    etcd = await startEtcd()
    await seedSubnets(etcd.endpoint, N)
    const file = path.join(tmp, 'ref.json')
    const r = await sh(`${LS} > "$TMP/ref.json" 2> "$TMP/ref.err"; echo code=$?`)
    assert.equal(fields(r.stdout).code, '0', await readFile(path.join(tmp, 'ref.err'), 'utf8'))
    const body = await readFile(file)
    reference = {bytes: (await stat(file)).size, sha: createHash('sha256').update(body).digest('hex'), file}
  })
  after(async () => {
    await etcd?.stop()
    if (tmp) await rm(tmp, {recursive: true, force: true})
  })

  test('to a file: the whole listing, valid JSON, nothing on stderr', async () => {
    const doc = JSON.parse(await readFile(reference.file, 'utf8')) as {leases: unknown[]; malformed: unknown[]}
    assert.equal(doc.leases.length, N)
    assert.deepEqual(doc.malformed, [])
    assert.ok(reference.bytes > 30_000_000, `only ${reference.bytes} bytes`)
    assert.equal(await readFile(path.join(tmp, 'ref.err'), 'utf8'), '')
  })

  test('to a pipe: the same bytes as to a file, exit 0', async () => {
    const r =
      await sh(`${LS} 2> "$TMP/pipe.err" | sha256sum | cut -d' ' -f1 | sed 's/^/sha=/'; echo code=\${PIPESTATUS[0]}
      printf 'bytes=%s\\n' "$(${LS} 2>/dev/null | wc -c)"`)
    const f = fields(r.stdout)
    assert.equal(f.code, '0')
    assert.equal(f.sha, reference.sha)
    assert.equal(Number(f.bytes), reference.bytes)
    noTrace(await readFile(path.join(tmp, 'pipe.err'), 'utf8'))
  })

  test('to a slow pipe (reader starts after 2 s): every byte, exit 0, no EAGAIN', async () => {
    const r = await sh(
      `${LS} 2> "$TMP/slow.err" | (sleep 2; cat) | sha256sum | cut -d' ' -f1 | sed 's/^/sha=/'; echo code=\${PIPESTATUS[0]}`,
    )
    const f = fields(r.stdout)
    assert.equal(f.code, '0')
    assert.equal(f.sha, reference.sha)
    noTrace(await readFile(path.join(tmp, 'slow.err'), 'utf8'))
  })

  test('the table to a slow pipe: one line per lease plus the header', async () => {
    const r = await sh(
      `printf 'lines=%s\\n' "$($CLI leases ls --no-ttl --endpoints "$EP" 2> "$TMP/table.err" | (sleep 2; cat) | wc -l)"`,
    )
    assert.equal(Number(fields(r.stdout).lines), N + 1)
    noTrace(await readFile(path.join(tmp, 'table.err'), 'utf8'))
  })

  test('to a TTY: every byte (a pty turns \\n into \\r\\n)', async () => {
    // script(1) gives the command a pseudo-terminal as stdout and copies what it writes to our file.
    const r = await sh(`script -qefc "${LS} 2> $TMP/tty.err" /dev/null < /dev/null > "$TMP/tty.out"; echo code=$?`)
    assert.equal(fields(r.stdout).code, '0')
    const got = (await readFile(path.join(tmp, 'tty.out'))).toString('utf8').replaceAll('\r\n', '\n')
    assert.equal(createHash('sha256').update(got).digest('hex'), reference.sha)
    noTrace(await readFile(path.join(tmp, 'tty.err'), 'utf8'))
  })

  test('a reader that goes away (| head): quiet, exit 0, for --json, the table and --help', async () => {
    const r = await sh(`${LS} 2> "$TMP/h1.err" | head -c 100 > /dev/null; echo json=\${PIPESTATUS[0]}
      $CLI leases ls --no-ttl --endpoints "$EP" 2> "$TMP/h2.err" | head -n 1 > /dev/null; echo table=\${PIPESTATUS[0]}
      $CLI --help 2> "$TMP/h3.err" | head -n 1 > /dev/null; echo help=\${PIPESTATUS[0]}
      ${LS} 2> "$TMP/h4.err" | (sleep 1; head -c 10) > /dev/null; echo slowhead=\${PIPESTATUS[0]}`)
    assert.deepEqual(fields(r.stdout), {json: '0', table: '0', help: '0', slowhead: '0'})
    for (const f of ['h1', 'h2', 'h3', 'h4']) assert.equal(await readFile(path.join(tmp, `${f}.err`), 'utf8'), '', f)
  })
})
