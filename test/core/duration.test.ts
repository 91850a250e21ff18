// Durations as Go's time.ParseDuration reads them (etcdctl's and flanneld's flags), with the bounds our timers and
// etcd's leases have.

import assert from 'node:assert/strict'
import {describe, test} from 'node:test'

import {MAX_TIMER_MS, parseDuration, parseTimeout} from '../../src/core/duration.js'
import {UsageError} from '../../src/core/errors.js'

describe('parseDuration (Go time.ParseDuration)', () => {
  const ok: Array<[string, number]> = [
    ['0', 0],
    ['5s', 5000],
    ['1h30m', 5_400_000],
    ['1.5h', 5_400_000],
    ['.5s', 500],
    ['5.s', 5000],
    ['250ms', 250],
    ['1500us', 1.5],
    ['1500µs', 1.5],
    ['1500μs', 1.5],
    ['2000000ns', 2],
    ['+3m', 180_000],
    ['1h0m0s', 3_600_000],
    ['2562047h', 2562047 * 3_600_000],
  ]
  for (const [s, ms] of ok) test(`"${s}" = ${ms} ms`, () => assert.equal(parseDuration(s, '--x'), ms))

  const bad: Array<[string, RegExp]> = [
    ['5', /"5" has no unit \(did you mean 5s\?\)/],
    ['1.5', /has no unit/],
    ['5d', /unknown unit "d"/],
    ['5 s', /unknown unit " s"/],
    ['', /use e\.g\./],
    ['.s', /use e\.g\./],
    ['-5s', /must not be negative/],
    ['2562048h', /out of range/],
    ['5 parsecs', /invalid duration for --x: "5 parsecs"/],
  ]
  for (const [s, message] of bad) {
    test(`"${s}" is refused`, () =>
      assert.throws(
        () => parseDuration(s, '--x'),
        (e: unknown) => e instanceof UsageError && e.exitCode === 2 && message.test(e.message),
      ))
  }
})

describe('parseTimeout', () => {
  test('more than 0, at most the longest timer Node keeps', () => {
    assert.equal(parseTimeout('596h', '--dial-timeout'), 596 * 3_600_000)
    assert.ok(596 * 3_600_000 <= MAX_TIMER_MS)
    assert.throws(() => parseTimeout('0', '--command-timeout'), /--command-timeout: "0" \(must be more than 0\)/)
    assert.throws(() => parseTimeout('0s', '--command-timeout'), /must be more than 0/)
    assert.throws(() => parseTimeout('99999h', '--dial-timeout'), /--dial-timeout: "99999h" \(too long: at most 596h\)/)
  })
})
