/**
 * NODE_EXTRA_CA_CERTS, applied by flannelctl's own TLS clients (v3 lean reads, etcd3's writes and watches, the v2
 * HTTPS client). bin/run.js starts node without the variable (Node 20 reads and parses the file at every start, ~60 ms
 * for a system CA bundle, whether or not the command ever opens a TLS connection) and names the file here instead;
 * it is read on the first TLS use, by Node's rule: the extra CAs extend the default roots, they are not used when a CA
 * is given explicitly (--cacert), and a file that cannot be read (or holds no certificate) is a warning on stderr,
 * not a failure.
 */

import {readFileSync} from 'node:fs'
import tls from 'node:tls'

import {readPem} from './endpoints.js'

const PEM = /-----BEGIN (?:TRUSTED )?CERTIFICATE-----[\s\S]*?-----END (?:TRUSTED )?CERTIFICATE-----/g

/** The default roots plus the extra CAs (null: none to add), read once. */
let roots: Buffer | null | undefined

function extraRoots(): Buffer | null {
  if (roots !== undefined) return roots
  roots = null
  const deferred = (globalThis as Record<symbol, unknown>)[Symbol.for('flannelctl.extraCaCerts')]
  // Started as `node bin/run.js` (or from the sources) with the variable: Node has applied it to its own defaults
  // (and warned about a bad file at start), but grpc-js (etcd3's writes) does not see those, so it is applied here
  // too, silently; the trust set is the same either way.
  const file = typeof deferred === 'string' ? deferred : process.env.NODE_EXTRA_CA_CERTS
  const warn = typeof deferred === 'string' ? warnOnce : () => {}
  if (!file) return roots
  let text: string
  try {
    text = readFileSync(file, 'latin1')
  } catch (error) {
    warn(file, (error as NodeJS.ErrnoException).code ?? String(error))
    return roots
  }
  const extra = text.match(PEM)
  if (!extra) {
    warn(file, 'no PEM certificate in it')
    return roots
  }
  roots = Buffer.from([...tls.rootCertificates, ...extra].join('\n') + '\n', 'latin1')
  return roots
}

function warnOnce(file: string, why: string): void {
  // Node's own wording for the same case, once per process.
  process.emitWarning(`Ignoring extra certs from \`${file}\`, load failed: ${why}`)
}

/**
 * The `ca` for a TLS client: the --cacert file when given (only those CAs, as etcdctl), else the default roots
 * extended by NODE_EXTRA_CA_CERTS when bin/run.js left that to us, else undefined (Node's defaults).
 */
export function tlsCa(cacert: string | undefined): Buffer | undefined {
  const extended = extraRoots() // read (and warned about) even when unused, as Node does
  if (cacert) return readPem(cacert, '--cacert')
  return extended ?? undefined
}
