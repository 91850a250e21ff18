import assert from 'node:assert/strict'
import {describe, test} from 'node:test'

import {keyLayout} from '../../src/core/keys.js'
import {
  flattenV2,
  fromV2Key,
  parseV2Error,
  parseV2Node,
  toV2Key,
  v2KeysPath,
  v2LeaseId,
} from '../../src/core/v2-keyspace.js'

const layout = keyLayout('/coreos.com/network')

// A recursive GET of flannel 0.11's keyspace as etcd 3.4 answers it (trimmed from a real response).
const BODY = JSON.stringify({
  action: 'get',
  node: {
    key: '/coreos.com/network',
    dir: true,
    nodes: [
      {
        key: '/coreos.com/network/config',
        value: '{"Network":"10.6.0.0/16","Backend":{"Type":"vxlan"}}',
        modifiedIndex: 4,
        createdIndex: 4,
      },
      {
        key: '/coreos.com/network/subnets',
        dir: true,
        nodes: [
          {
            key: '/coreos.com/network/subnets/10.6.12.0-24',
            value: '{"PublicIP":"192.168.1.12"}',
            expiration: '2026-11-23T04:31:12.095241076Z',
            ttl: 86400,
            modifiedIndex: 5,
            createdIndex: 5,
          },
          {
            key: '/coreos.com/network/subnets/10.6.13.0-24',
            value: '{"PublicIP":"192.168.1.13"}',
            modifiedIndex: 9,
            createdIndex: 6,
          },
        ],
        modifiedIndex: 5,
        createdIndex: 5,
      },
      {key: '/coreos.com/network/emptydir', dir: true, modifiedIndex: 7, createdIndex: 7},
    ],
    modifiedIndex: 4,
    createdIndex: 4,
  },
})

describe('v2 keyspace codec', () => {
  test('flattens a recursive answer into RawKV rows: indexes as revisions, synthetic leases for TTL keys only', () => {
    const node = parseV2Node(BODY)
    assert.ok(!(node instanceof Error))
    const {kvs, ttls} = flattenV2(node, layout)
    assert.deepEqual(kvs, [
      {
        key: '/coreos.com/network/config',
        value: '{"Network":"10.6.0.0/16","Backend":{"Type":"vxlan"}}',
        createRevision: '4',
        modRevision: '4',
        version: '1',
        lease: '0',
      },
      {
        key: '/coreos.com/network/subnets/10.6.12.0-24',
        value: '{"PublicIP":"192.168.1.12"}',
        createRevision: '5',
        modRevision: '5',
        version: '1',
        lease: 'v2:/coreos.com/network/subnets/10.6.12.0-24',
      },
      {
        key: '/coreos.com/network/subnets/10.6.13.0-24',
        value: '{"PublicIP":"192.168.1.13"}',
        createRevision: '6',
        modRevision: '9',
        version: '1',
        lease: '0',
      },
    ])
    assert.deepEqual([...ttls], [[v2LeaseId('/coreos.com/network/subnets/10.6.12.0-24'), 86400]])
  })

  test('relative prefixes: v2 keys are absolute paths, rows keep the layout form', () => {
    const rel = keyLayout('coreos.com/network')
    assert.equal(toV2Key('coreos.com/network/config'), '/coreos.com/network/config')
    assert.equal(fromV2Key('/coreos.com/network/config', rel), 'coreos.com/network/config')
    assert.equal(fromV2Key('/coreos.com/network/config', layout), '/coreos.com/network/config')
  })

  test('request paths percent-encode each segment (dual-stack keys hold & and :)', () => {
    assert.equal(
      v2KeysPath('/coreos.com/network/subnets/10.5.1.0-24&fd00:1::-64'),
      '/v2/keys/coreos.com/network/subnets/10.5.1.0-24%26fd00%3A1%3A%3A-64',
    )
    assert.equal(v2KeysPath('coreos.com/network'), '/v2/keys/coreos.com/network')
  })

  test('errors: a v2 error body is decoded, a plain-text 404 (v2 not enabled) is not one', () => {
    assert.deepEqual(parseV2Error('{"errorCode":100,"message":"Key not found","cause":"/coreos.com","index":7}'), {
      errorCode: 100,
      message: 'Key not found',
      cause: '/coreos.com',
      index: 7,
    })
    assert.equal(parseV2Error('404 page not found\n'), null)
    assert.ok(parseV2Node('{"action":"get"}') instanceof Error)
    assert.ok(parseV2Node('<html>') instanceof Error)
  })
})
