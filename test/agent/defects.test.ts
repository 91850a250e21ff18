// Regression tests for the agent defects of the December 2026 review (D-1, D-2, D-7), on fakes: no root, no etcd.

import assert from 'node:assert/strict'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, test} from 'node:test'

import {DataplaneError, EnvironmentError, ExitCode, isFatal, UsageError} from '../../src/core/errors.js'
import {writeFileAtomic} from '../../src/io/atomic-write.js'
import {MemFiles, RecordingDataplane} from './fakes.js'
import {startAgent, SUBNET_FILE} from './harness.js'

const enospc = () => new EnvironmentError(`cannot write ${SUBNET_FILE}: ENOSPC`, 'UNWRITABLE_FILE', {recoverable: true})

describe('D-1: one failing activity stops the whole agent', () => {
  test('a fatal error in the resync loop ends run() at once, with no timer left behind', async () => {
    const dp = new RecordingDataplane()
    // The rule checks at acquire (masquerade, forward) pass; the first one in the first resync hits a fatal error.
    dp.trafficFaults.push(null, null, new EnvironmentError('iptables not found', 'MISSING_TOOL'))
    const h = startAgent({dp, options: {ipMasq: true}})
    await h.settle()
    assert.equal(h.agent.getStatus().ready, true, h.logs.text())
    assert.equal(h.finished(), false)
    await h.clock.advance(10_000)
    assert.equal(h.finished(), true, 'run() must end when one of its loops fails')
    const r = await h.done
    assert.equal(r.ok, false)
    assert.equal(!r.ok && r.error instanceof EnvironmentError && r.error.code, 'MISSING_TOOL')
    // The renew loop was sleeping for ~23 h: it must have been woken and ended, not left on a timer.
    assert.equal(h.clock.pending, 0, 'no sleeper may outlive a failed agent')
    assert.equal(h.store.watching, 0, 'the watch is cancelled')
    assert.match(h.logs.text(), /stopping: iptables not found/)
  })

  test('a fatal error while acquiring ends run() with that error', async () => {
    const dp = new RecordingDataplane()
    dp.trafficFaults.push(new EnvironmentError('iptables not found', 'MISSING_TOOL'))
    const h = startAgent({dp, options: {ipMasq: true}})
    await h.settle()
    const r = await h.done
    assert.equal(r.ok, false)
    assert.equal(h.clock.pending, 0)
  })
})

describe('D-2: environment failures are logged and retried, as flanneld does', () => {
  test('ENOSPC on subnet.env: the agent keeps its lease, is not ready, and writes again on the next resync', async () => {
    const files = new MemFiles()
    files.writeFaults.push(enospc())
    const h = startAgent({files})
    await h.settle()
    assert.equal(h.finished(), false, h.logs.text())
    const s = h.agent.getStatus()
    assert.equal(s.subnet, '198.19.1.0/24')
    assert.equal(s.subnetEnvWritten, false)
    assert.equal(s.ready, false)
    assert.match(s.lastError ?? '', /ENOSPC/)
    assert.match(h.logs.text(), /error failed to write subnet file .*ENOSPC/)
    await h.clock.advance(10_000)
    assert.equal(h.agent.getStatus().subnetEnvWritten, true)
    assert.equal(h.agent.getStatus().ready, true)
    assert.match(files.files.get(SUBNET_FILE) ?? '', /^FLANNEL_SUBNET=198\.19\.1\.1\/24$/m)
    assert.equal((await h.stop()).ok, true)
  })

  test('an unreadable iptables table is logged and re-tried every resync; the lease stays', async () => {
    const dp = new RecordingDataplane()
    const unreadable = () =>
      new DataplaneError('cannot read the iptables nat table: permission denied', 'IPTABLES_UNAVAILABLE')
    dp.trafficFaults.push(unreadable(), unreadable())
    const h = startAgent({dp, options: {ipMasq: true}})
    await h.settle()
    assert.equal(h.finished(), false, h.logs.text())
    assert.match(h.logs.text(), /installing the masquerade\/forward rules failed .*nat table/)
    await h.clock.advance(10_000)
    assert.match(h.logs.text(), /resync repair failed: cannot read the iptables nat table/)
    await h.clock.advance(10_000)
    assert.ok(dp.rules.length >= 6, 'the rules are installed once the table can be read')
    assert.equal(h.agent.getStatus().subnet, '198.19.1.0/24')
    assert.equal((await h.stop()).ok, true)
  })

  test('writeFileAtomic raises a recoverable EnvironmentError (exit 71), not a usage error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flannelctl-aw-'))
    try {
      writeFileSync(join(dir, 'file'), 'x')
      // A path under a regular file: ENOTDIR, as real as ENOSPC for the agent's purposes.
      const e = await writeFileAtomic(join(dir, 'file', 'subnet.env'), 'FLANNEL_SUBNET=x\n').then(
        () => null,
        (error: unknown) => error,
      )
      assert.ok(e instanceof EnvironmentError, String(e))
      assert.equal(e.code, 'UNWRITABLE_FILE')
      assert.equal(e.exitCode, ExitCode.environment)
      assert.equal(e.recoverable, true)
      assert.equal(isFatal(e), false)
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  })

  test('recoverable is a property independent of the exit code', () => {
    assert.equal(isFatal(new UsageError('bad flag')), true)
    assert.equal(isFatal(new EnvironmentError('no ip binary', 'MISSING_TOOL')), true)
    assert.equal(isFatal(new DataplaneError('ip -batch failed')), false)
    assert.equal(new DataplaneError('ip -batch failed').exitCode, ExitCode.environment)
    assert.equal(isFatal(new Error('anything else')), false)
  })
})

describe('D-7: our own renewal is not "rewritten by another writer"', () => {
  test('the watch event of a renewal arriving before renewLease resolves is recognised as ours', async () => {
    const h = startAgent({options: {resyncMs: 3600_000}})
    await h.settle()
    const key = h.agent.getStatus().key!
    const first = h.agent.getStatus().leaseId
    // The fake store delivers the watch event inside the write, before the promise resolves (as etcd may).
    await h.clock.advance(23 * 3600_000)
    const s = h.agent.getStatus()
    assert.notEqual(s.leaseId, first, 'renewed with a new lease')
    assert.equal(s.key, key)
    assert.doesNotMatch(h.logs.text(), /rewritten by another writer|taken over/)
    assert.equal(h.store.calls.filter((c) => c.startsWith('renewLease')).length, 1)
    assert.equal((await h.stop()).ok, true)
  })

  test('a real rewrite during a renewal is still reported', async () => {
    const h = startAgent({options: {resyncMs: 3600_000}})
    await h.settle()
    const key = h.agent.getStatus().key!
    // Right after our renewal lands, an operator reserves the key (same value, no lease).
    h.store.beforeResolve = (method, k) => {
      if (method !== 'renewLease') return
      h.store.beforeResolve = null
      h.store.put(k, h.store.kvs.get(k)!.value, '0')
    }
    await h.clock.advance(23 * 3600_000)
    assert.match(h.logs.text(), new RegExp(`${key} was rewritten by another writer and is now a reservation`))
    assert.equal(h.agent.getStatus().reserved, true)
    assert.equal((await h.stop()).ok, true)
  })
})
