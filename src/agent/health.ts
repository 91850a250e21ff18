/** /healthz (the process is alive) and /readyz (lease held, subnet.env written, device up, last sync good). */

import {createServer, type Server} from 'node:http'

import {EnvironmentError, UsageError} from '../core/errors.js'
import type {AgentStatus} from './status.js'

export function parseListenAddress(s: string): {host: string; port: number} {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(s)
  const port = m ? Number(m[3]) : NaN
  if (!m || port > 65_535)
    throw new UsageError(`invalid --healthz-addr "${s}": expected host:port such as 127.0.0.1:8471`, 'INVALID_ADDRESS')
  return {host: m[1] ?? (m[2] || '0.0.0.0'), port}
}

export async function startHealthServer(addr: string, status: () => AgentStatus): Promise<Server> {
  const {host, port} = parseListenAddress(addr)
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    if (path === '/healthz') {
      res.writeHead(200, {'content-type': 'application/json'}).end('{"status":"ok"}\n')
      return
    }
    if (path === '/readyz') {
      const s = status()
      res.writeHead(s.ready ? 200 : 503, {'content-type': 'application/json'}).end(JSON.stringify(s) + '\n')
      return
    }
    res.writeHead(404).end()
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(new EnvironmentError(`cannot listen on --healthz-addr ${addr}: ${e.code ?? e.message}`, 'LISTEN_FAILED')),
    )
    server.listen(port, host, () => resolve())
  })
  return server
}
