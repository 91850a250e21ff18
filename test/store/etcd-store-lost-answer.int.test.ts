// EtcdStore's guarded writes when etcd applies a transaction and its answer is lost: etcd answers "request timed
// out" (or "leader changed") to a proposal it may still apply, and etcd3 then makes the same transaction on the next
// endpoint, whose guard fails on the write the first attempt made. Two HTTP/2 proxies in front of one real etcd stand
// in for two members: the first transaction either of them forwards is applied by etcd and answered with that error.

import assert from 'node:assert/strict'
import {once} from 'node:events'
import http2 from 'node:http2'
import type net from 'node:net'
import {after, before, describe, test} from 'node:test'

import {ConflictError} from '../../src/core/errors.js'
import {EtcdStore} from '../../src/store/etcd-store.js'
import {type EtcdServer, startEtcd} from '../helpers/etcd.js'

const P = '/coreos.com/network'
const TXN = '/etcdserverpb.KV/Txn'

/** Headers without HTTP/2 pseudo-headers (but `keep` ones). */
function plain(h: http2.IncomingHttpHeaders, keep: readonly string[] = []): http2.OutgoingHttpHeaders {
  const out: http2.OutgoingHttpHeaders = {}
  for (const [k, v] of Object.entries(h)) if (!k.startsWith(':') || keep.includes(k)) out[k] = v
  return out
}

interface Proxy {
  readonly url: string
  close(): void
}

/** A gRPC proxy to `upstream`; a call for which `lose(path)` is true is forwarded, and its answer replaced. */
async function grpcProxy(upstream: string, lose: (path: string) => boolean): Promise<Proxy> {
  const session = http2.connect(upstream)
  session.on('error', () => {})
  const server = http2.createServer()
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {})
    const path = String(headers[':path'])
    const up = session.request(plain(headers, [':method', ':path']))
    up.on('error', () => stream.destroy())
    stream.pipe(up)
    let trailers: http2.IncomingHttpHeaders = {}
    up.on('trailers', (t) => (trailers = t))
    up.on('response', (h) => {
      if (lose(path)) {
        // etcd has the call and applies it; the client hears what etcd says of a proposal that timed out.
        up.resume()
        up.on('end', () =>
          stream.respond(
            {
              ':status': 200,
              'content-type': 'application/grpc',
              'grpc-status': '14',
              'grpc-message': 'etcdserver%3A request timed out',
            },
            {endStream: true},
          ),
        )
        return
      }
      if (h['grpc-status'] !== undefined) return stream.respond(plain(h, [':status']), {endStream: true})
      stream.respond(plain(h, [':status']), {waitForTrailers: true})
      stream.on('wantTrailers', () => stream.sendTrailers(plain(trailers)))
      up.pipe(stream)
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    close() {
      session.destroy()
      server.close()
    },
  }
}

describe('a guarded write whose answer is lost after etcd applied it', () => {
  let etcd: EtcdServer
  const proxies: Proxy[] = []
  let txns = 0
  let lostOnce = false
  before(async () => {
    etcd = await startEtcd()
    const lose = (path: string): boolean => {
      if (path !== TXN) return false
      txns++
      if (lostOnce) return false
      lostOnce = true
      return true
    }
    proxies.push(await grpcProxy(etcd.endpoint, lose), await grpcProxy(etcd.endpoint, lose))
  })
  after(async () => {
    for (const p of proxies) p.close()
    await etcd?.stop()
  })

  test('a create under a new lease: the write is reported as made, and its key and lease are kept', async () => {
    const store = await EtcdStore.open({
      endpoints: proxies.map((p) => p.url),
      prefix: P,
      dialTimeoutMs: 5000,
      commandTimeoutMs: 10_000,
    })
    const key = `${P}/subnets/198.18.4.0-24`
    const value = '{"PublicIP":"198.18.0.4","BackendType":"vxlan"}'
    try {
      const res = await store.createIfAbsent(key, value, {ttlSeconds: 600})
      // The scenario happened: the transaction was made twice, the first answer lost.
      assert.equal(txns, 2)
      assert.notEqual(res.leaseId, '0')
      const now = await store.getKey(key)
      assert.equal(now?.value, value)
      assert.equal(now?.lease, res.leaseId)
      assert.equal(now?.modRevision, res.revision)
      const ttls = await store.leaseTtls([res.leaseId])
      assert.ok((ttls.get(res.leaseId) ?? -1) > 500, `TTL ${ttls.get(res.leaseId)}`)

      // A real conflict is still one: the key exists (under another lease) before the create.
      await assert.rejects(store.createIfAbsent(key, value, {ttlSeconds: 600}), (e: unknown) => {
        assert.ok(e instanceof ConflictError, String(e))
        assert.equal(e.code, 'ALREADY_EXISTS')
        return true
      })
      assert.equal((await store.getKey(key))?.lease, res.leaseId)
    } finally {
      store.close()
    }
  })
})
