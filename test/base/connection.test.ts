// resolveConnection is pure (the environment is passed in): flag, then FLANNELCTL_*, ETCDCTL_*, FLANNELD_ETCD_*,
// then the default; user:pass; endpoint syntax; the cert/key pairing, all before any I/O.

import assert from 'node:assert/strict'
import {describe, test} from 'node:test'

import {UsageError} from '../../src/core/errors.js'
import {resolveConnection} from '../../src/base/connection.js'

describe('resolveConnection', () => {
  const cases: Array<[string, Record<string, string>, Record<string, string>, Record<string, unknown>]> = [
    [
      'defaults',
      {},
      {},
      {
        endpoints: ['http://127.0.0.1:2379'],
        prefix: '/coreos.com/network',
        dialTimeoutMs: 5000,
        commandTimeoutMs: 30_000,
        user: undefined,
        password: undefined,
      },
    ],
    [
      'flag beats every env',
      {endpoints: 'http://a:1'},
      {FLANNELCTL_ENDPOINTS: 'http://b:2', ETCDCTL_ENDPOINTS: 'http://c:3'},
      {endpoints: ['http://a:1']},
    ],
    [
      'FLANNELCTL_ before ETCDCTL_',
      {},
      {FLANNELCTL_ENDPOINTS: 'http://b:2', ETCDCTL_ENDPOINTS: 'http://c:3'},
      {endpoints: ['http://b:2']},
    ],
    [
      'ETCDCTL_ before FLANNELD_ETCD_',
      {},
      {ETCDCTL_ENDPOINTS: 'http://c:3', FLANNELD_ETCD_ENDPOINTS: 'http://d:4'},
      {endpoints: ['http://c:3']},
    ],
    [
      'FLANNELD_ETCD_ last',
      {},
      {FLANNELD_ETCD_ENDPOINTS: 'http://d:4,http://e:5/'},
      {endpoints: ['http://d:4', 'http://e:5']},
    ],
    ['an empty flag falls through to env', {endpoints: ''}, {ETCDCTL_ENDPOINTS: 'c:3'}, {endpoints: ['c:3']}],
    ['prefix from FLANNELD_ETCD_PREFIX', {}, {FLANNELD_ETCD_PREFIX: '/x/network'}, {prefix: '/x/network'}],
    ['user:pass splits', {user: 'alice:s3:cret'}, {}, {user: 'alice', password: 's3:cret'}],
    [
      'an explicit password wins over user:pass',
      {user: 'alice:x', password: 'p'},
      {},
      {user: 'alice:x', password: 'p'},
    ],
    [
      'user and password from env',
      {},
      {ETCDCTL_USER: 'bob', FLANNELD_ETCD_PASSWORD: 'pw'},
      {user: 'bob', password: 'pw'},
    ],
    [
      'TLS files from flanneld env',
      {},
      {FLANNELD_ETCD_CAFILE: 'ca', FLANNELD_ETCD_CERTFILE: 'c', FLANNELD_ETCD_KEYFILE: 'k'},
      {cacert: 'ca', cert: 'c', key: 'k'},
    ],
    ['cert from a flag, key from env', {cert: 'c'}, {ETCDCTL_KEY: 'k'}, {cert: 'c', key: 'k'}],
    [
      'timeouts from env',
      {},
      {ETCDCTL_DIAL_TIMEOUT: '2s', FLANNELCTL_COMMAND_TIMEOUT: '1m'},
      {dialTimeoutMs: 2000, commandTimeoutMs: 60_000},
    ],
    ['IPv6 endpoints', {endpoints: 'https://[::1]:2379'}, {}, {endpoints: ['https://[::1]:2379']}],
  ]
  for (const [name, flags, env, want] of cases) {
    test(name, () => {
      const got = resolveConnection(flags, env) as unknown as Record<string, unknown>
      for (const [k, v] of Object.entries(want)) assert.deepEqual(got[k], v, k)
    })
  }

  const bad: Array<[string, Record<string, string>, Record<string, string>, RegExp]> = [
    ['empty endpoints', {endpoints: ' , '}, {}, /--endpoints is empty/],
    ['a path in an endpoint', {endpoints: 'http://a:1/v3'}, {}, /invalid endpoint "http:\/\/a:1\/v3"/],
    ['cert without key', {cert: 'c.pem'}, {}, /--cert and --key must be given together \(got only --cert c\.pem\)/],
    ['key without cert (env)', {}, {FLANNELD_ETCD_KEYFILE: 'k.pem'}, /got only --key k\.pem/],
    ['a bad duration', {'dial-timeout': 'soon'}, {}, /--dial-timeout/],
  ]
  for (const [name, flags, env, message] of bad) {
    test(`usage error: ${name}`, () => {
      assert.throws(
        () => resolveConnection(flags, env),
        (e: unknown) => e instanceof UsageError && e.exitCode === 2 && message.test(e.message),
      )
    })
  }
})
