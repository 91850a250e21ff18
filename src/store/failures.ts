/**
 * The errors both etcd stores (v3 over gRPC, v2 over HTTP) raise when etcd cannot be used: one wording, one code
 * each, whichever client saw the failure.
 */

import {UnavailableError} from '../core/errors.js'

/** What an https:// endpoint says when the server does not speak TLS at all (a plain http:// etcd). */
const TLS_REFUSED =
  /socket disconnected before secure TLS connection|wrong version number|packet length too long|http request|ECONNRESET/i

/** Anything else a TLS handshake can fail with. */
export const TLS_FAILURE =
  /SSL|TLS|CERT|certificate|handshake|self.signed|unable to verify|wrong version number|EPROTO|alert/i

/**
 * A failed TLS handshake. When the server never answered TLS (it speaks plain HTTP), say so: the fix is http://,
 * not the certificates.
 */
export function tlsFailed(where: string, files: {cacert?: string; cert?: string}, msg: string): UnavailableError {
  if (TLS_REFUSED.test(msg)) {
    return new UnavailableError(
      `TLS was refused by etcd at ${where}: the server did not complete a TLS handshake (${msg}); it may serve plain http`,
      'ETCD_TLS_REFUSED',
      'if etcd listens without TLS, use an http:// endpoint in --endpoints',
    )
  }
  const which = [files.cacert && `--cacert ${files.cacert}`, files.cert && `--cert ${files.cert}`]
    .filter(Boolean)
    .join(', ')
  return new UnavailableError(
    `TLS handshake with etcd at ${where} failed${which ? ` (using ${which})` : ''}: ${msg}`,
    'ETCD_TLS_FAILED',
    'check that --cacert signed the server certificate and that the server trusts --cert',
  )
}

/** No answer at all: refused, timed out, no route. */
export function unreachable(where: string, msg: string, api?: 'v2'): UnavailableError {
  return new UnavailableError(
    `etcd unreachable at ${where}${api ? ' (v2 API)' : ''}: ${msg}`,
    'ETCD_UNAVAILABLE',
    'check --endpoints (or ETCDCTL_ENDPOINTS / FLANNELD_ETCD_ENDPOINTS)',
  )
}

/** Something answered, but not etcd (a web server, a proxy, another gRPC service). */
export function notEtcd(where: string, msg: string): UnavailableError {
  return new UnavailableError(
    `not an etcd endpoint: ${where} answered, but not with etcd's API (${msg})`,
    'NOT_ETCD',
    'check the port in --endpoints: etcd clients use 2379 (2380 is the peer port)',
  )
}
