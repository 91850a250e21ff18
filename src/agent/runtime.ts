/** The real clock, files and logger the agent command wires in (tests may pass their own). */

import {readFile} from 'node:fs/promises'

import {writeFileAtomic} from '../io/atomic-write.js'
import type {Clock, Files, LogFn} from './ports.js'

export const realClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve) => {
      if (signal.aborted) return resolve()
      const done = () => {
        clearTimeout(timer)
        signal.removeEventListener('abort', done)
        resolve()
      }
      const timer = setTimeout(done, ms)
      signal.addEventListener('abort', done, {once: true})
    }),
}

export const realFiles: Files = {
  read: async (path) => {
    try {
      return await readFile(path, 'utf8')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null
      throw error
    }
  },
  writeAtomic: (path, data) => writeFileAtomic(path, data, 0o644),
}

/** Log lines on stderr: `time level message key=value` or one JSON object per line. */
export function logger(
  format: 'text' | 'json',
  write: (line: string) => void = (l) => process.stderr.write(l + '\n'),
): LogFn {
  return (level, message, fields = {}) => {
    const time = new Date().toISOString()
    if (format === 'json') write(JSON.stringify({time, level, msg: message, ...fields}))
    else {
      const extra = Object.entries(fields)
        .map(([k, v]) => ` ${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
        .join('')
      write(`${time} ${level.toUpperCase().padEnd(5)} ${message}${extra}`)
    }
  }
}
