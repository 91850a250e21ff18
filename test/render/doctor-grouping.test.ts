// doctor's human report groups findings of one kind (the first three shown, then "... and N more"); at 65,535
// leases a single check can produce tens of thousands of findings, which must group in one pass (each finding used
// to copy its group) and in the order the checks produced them.

import assert from 'node:assert/strict'
import {test} from 'node:test'

import {Chalk} from 'chalk'

import type {Finding} from '../../src/core/doctor.js'
import {renderDoctor} from '../../src/render/doctor.js'
import type {DoctorResult} from '../../src/services/doctor.js'

const finding = (id: string, n: number): Finding => ({
  id,
  severity: 'error',
  subjects: [`10.${n >> 8}.${n & 255}.0/24`],
  message: `${id} number ${n}`,
  hint: 'fix it',
})

test('40,000 findings of one kind interleaved with others: first three of each kind, the rest counted, in order', () => {
  const findings: Finding[] = []
  for (let n = 0; n < 40_000; n++) {
    findings.push(finding('suspicious-public-ip', n))
    if (n % 10_000 === 0) findings.push(finding('duplicate-vtep-mac', n))
  }
  findings.push(finding('overlapping-leases', 1), finding('overlapping-leases', 2))
  const r: DoctorResult = {
    revision: '1',
    source: 'test',
    findings,
    summary: {error: findings.length, warning: 0, info: 0},
    checked: {leases: 40_000, malformed: 0, ttls: false, node: null, keyspaces: ['v3']},
    areas: [{area: 'Identity', verdict: 'error'}],
    failOn: 'error',
    failed: true,
  }
  const out = renderDoctor(r, new Chalk({level: 0}), null)
  const shown = out.split('\n').filter((l) => / number \d+$/.test(l) || l.includes('... and'))
  assert.deepEqual(
    shown.map((l) => l.replace(/^\s*error \[[a-z-]+\]\s*/, '').trim()),
    [
      'suspicious-public-ip number 0',
      'suspicious-public-ip number 1',
      'suspicious-public-ip number 2',
      '... and 39997 more [suspicious-public-ip] finding(s) like these (all of them in --json)',
      'duplicate-vtep-mac number 0',
      'duplicate-vtep-mac number 10000',
      'duplicate-vtep-mac number 20000',
      'duplicate-vtep-mac number 30000',
      'overlapping-leases number 1',
      'overlapping-leases number 2',
    ],
  )
})
