// EtcdStore reaches into etcd3 internals in two places (see etcd-store.ts): close() closes the pool's cached gRPC
// services of each host at once, and faultHandling replaces the defaults in ConnectionPool. Both were written
// against etcd3 1.1.2; this test fails on an upgrade, so whoever upgrades re-checks them.

import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {createRequire} from 'node:module'
import path from 'node:path'
import {test} from 'node:test'

const require = createRequire(import.meta.url)
const root = path.dirname(require.resolve('etcd3/package.json'))

test('etcd3 is the version EtcdStore was written against, with the internals it relies on', () => {
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {version: string}
  assert.equal(pkg.version, '1.1.2')
  const pool = readFileSync(path.join(root, 'lib', 'connection-pool.js'), 'utf8')
  // close(): host.cachedServices, pool.hosts
  assert.match(pool, /this\.cachedServices = Object\.create\(null\)/)
  assert.match(pool, /this\.hosts = hosts\.map\(/)
  // faultHandling: global and per-host policies, and the defaults we replace
  assert.match(pool, /faultHandling\) === null \|\| _a === void 0 \? void 0 : _a\.global/)
  assert.match(pool, /halfOpenAfter: 5000/)
})
