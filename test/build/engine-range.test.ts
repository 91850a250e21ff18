// scripts/engine-range.mjs (oclif's Node engine check in the bundle, before semver) against semver itself: the same
// answer wherever it answers, and no answer (semver decides) for forms it does not handle.

import assert from 'node:assert/strict'
import {createRequire} from 'node:module'
import {test} from 'node:test'

import {simpleSatisfies} from '../../scripts/engine-range.mjs'

const satisfies = createRequire(import.meta.url)('semver/functions/satisfies') as (v: string, r: string) => boolean

test("simpleSatisfies agrees with semver on flannelctl's engines range and others of its forms", () => {
  const ranges = [
    '^20.19.0 || ^22.13.0 || >=24.0.0',
    '>=18.0.0',
    '^20.0.0',
    ' ^1.2.3 ||  >=4.5.6 ',
    '^22.13.0||^20.19.0',
  ]
  const versions = ['20.19.0', '20.18.9', '20.20.2', '21.0.0', '22.12.99', '22.13.0', '23.9.9', '24.0.0', '0.0.0']
  for (let i = 0; i < 2000; i++) versions.push([0, 0, 0].map(() => Math.floor(Math.random() * 30)).join('.'))
  for (const r of ranges) for (const v of versions) assert.equal(simpleSatisfies(v, r), satisfies(v, r), `${v} in ${r}`)
})

test('simpleSatisfies leaves every other form to semver', () => {
  for (const [v, r] of [
    ['20.20.2-pre', '>=20.0.0'],
    ['v20.20.2', '>=20.0.0'],
    ['20.20.2', '^0.2.0'],
    ['20.20.2', '~20.1.0'],
    ['20.20.2', '20.x'],
    ['20.20.2', '>=20.0.0 <21.0.0'],
    ['20.20.2', '>=020.0.0'],
    ['20.20.2', '^20.0.0 || '],
    ['20.20.2', '*'],
    ['20.20.2', ''],
    [undefined, '>=20.0.0'],
    ['20.20.2', undefined],
  ])
    assert.equal(simpleSatisfies(v, r), undefined, `${v} in ${r}`)
})
