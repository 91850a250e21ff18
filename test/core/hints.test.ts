import assert from 'node:assert/strict'
import {describe, test} from 'node:test'

import {etcdctl, flannelctl, hintContext, NO_HINT_CONTEXT, shellQuote} from '../../src/core/hints.js'

describe('hints', () => {
  test('plain words stay bare; anything else is single-quoted, quotes included', () => {
    assert.equal(shellQuote('10.5.0.0/16'), '10.5.0.0/16')
    assert.equal(shellQuote('--dry-run'), '--dry-run')
    assert.equal(shellQuote(''), "''")
    assert.equal(shellQuote('x; touch PWNED #'), "'x; touch PWNED #'")
    assert.equal(shellQuote("it's $(x)"), `'it'\\''s $(x)'`)
  })

  test('flannelctl hints carry the connection flags the user ran with, never credentials', () => {
    const ctx = hintContext({endpoints: 'https://e:2379', prefix: '/p q', cacert: '/ca', etcdApi: 'v2'})
    const s = flannelctl(ctx, ['leases', 'release', '--stale'])
    assert.deepEqual(s.argv, [
      'flannelctl',
      'leases',
      'release',
      '--stale',
      '--endpoints',
      'https://e:2379',
      '--etcd-prefix',
      '/p q',
      '--cacert',
      '/ca',
      '--etcd-api',
      'v2',
    ])
    assert.equal(
      s.shell,
      "flannelctl leases release --stale --endpoints https://e:2379 --etcd-prefix '/p q' --cacert /ca --etcd-api v2",
    )
    assert.deepEqual(hintContext({etcdApi: 'auto'}), NO_HINT_CONTEXT)
  })

  test('etcdctl hints: v3 and v2 flag names, ETCDCTL_API=2, -- before flag-like keys, none for a NUL', () => {
    const ctx = hintContext({endpoints: 'http://e', cert: '/c'})
    assert.equal(etcdctl(ctx, ['del'], ['/k'])!.shell, 'etcdctl --endpoints http://e --cert /c del /k')
    const v2 = etcdctl(ctx, ['rm'], ['/k'], {api: 2})!
    assert.equal(v2.shell, 'ETCDCTL_API=2 etcdctl --endpoints http://e --cert-file /c rm /k')
    assert.deepEqual(v2.env, {ETCDCTL_API: '2'})
    assert.deepEqual(etcdctl(NO_HINT_CONTEXT, ['get'], ['-x'])!.argv, ['etcdctl', 'get', '--', '-x'])
    assert.equal(etcdctl(NO_HINT_CONTEXT, ['get'], ['a\0b']), null)
  })
})
