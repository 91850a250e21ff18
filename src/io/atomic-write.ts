/** Atomic file replacement as flanneld ≥ v0.28.8 does it: temp file in the same directory, fsync, rename. */

import {randomBytes} from 'node:crypto'
import {promises as fs} from 'node:fs'
import {basename, dirname, join} from 'node:path'

import {EnvironmentError} from '../core/errors.js'

export async function writeFileAtomic(path: string, data: string, mode = 0o644): Promise<void> {
  const dir = dirname(path)
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}`)
  try {
    await fs.mkdir(dir, {recursive: true, mode: 0o755})
    const fh = await fs.open(tmp, 'wx', mode)
    try {
      await fh.writeFile(data)
      await fh.chmod(mode) // ignore the umask, as renameio.IgnoreUmask does
      await fh.sync()
    } finally {
      await fh.close()
    }
    await fs.rename(tmp, path)
    const d = await fs.open(dir, 'r')
    try {
      await d.sync()
    } finally {
      await d.close()
    }
  } catch (error) {
    await fs.rm(tmp, {force: true}).catch(() => {})
    const e = error as NodeJS.ErrnoException
    // ENOSPC, EROFS, EACCES: the environment, not the user; the agent logs it and writes again later (as flanneld).
    throw new EnvironmentError(`cannot write ${path}: ${e.code ?? e.message}`, 'UNWRITABLE_FILE', {recoverable: true})
  }
}
