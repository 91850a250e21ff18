/** What the v3 and v2 stores share about endpoints and credentials files. */

import {readFileSync} from 'node:fs'

import {UsageError} from '../core/errors.js'

/** Reads a PEM file named by a flag; an unreadable file is a usage error (exit 2) naming the file. */
export function readPem(path: string, flag: string): Buffer {
  try {
    return readFileSync(path)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unreadable'
    throw new UsageError(`cannot read ${flag} file ${path}: ${code}`, 'UNREADABLE_FILE')
  }
}

/** Normalises `host:port` to `http://host:port` (etcdctl accepts both). */
export function normaliseEndpoint(e: string): string {
  return /^[a-z]+:\/\//i.test(e) ? e : `http://${e}`
}
