// Network namespaces for dataplane tests: created by the test, always deleted (also on failure, and on exit as a
// last resort). Addresses inside them come from 198.18.0.0/15 only.

import {execFileSync} from 'node:child_process'

const live = new Set<string>()
process.on('exit', () => {
  for (const ns of live) {
    try {
      execFileSync('ip', ['netns', 'del', ns], {stdio: 'ignore'})
    } catch {
      // already gone
    }
  }
})

let counter = 0

export interface Netns {
  readonly name: string
  /** `ip -n NAME ...args`, throwing with stderr on failure. */
  ip(...args: string[]): string
  /** `bridge -n NAME ...args`. */
  bridge(...args: string[]): string
  /** Any command inside the namespace (`ip netns exec NAME ...`). */
  exec(cmd: string, ...args: string[]): string
  del(): void
}

function sh(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, {encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe']})
  } catch (error) {
    const e = error as {stderr?: string; message: string}
    throw new Error(`${cmd} ${args.join(' ')}: ${e.stderr?.trim() || e.message}`, {cause: error})
  }
}

export function canUseNetns(): boolean {
  try {
    const name = `flt-probe-${process.pid}`
    sh('ip', ['netns', 'add', name])
    sh('ip', ['netns', 'del', name])
    return true
  } catch {
    return false
  }
}

export function createNetns(tag: string): Netns {
  const name = `flt-${tag}-${process.pid}-${counter++}`
  sh('ip', ['netns', 'add', name])
  live.add(name)
  sh('ip', ['-n', name, 'link', 'set', 'lo', 'up'])
  return {
    name,
    ip: (...args) => sh('ip', ['-n', name, ...args]),
    bridge: (...args) => sh('ip', ['netns', 'exec', name, 'bridge', ...args]),
    exec: (cmd, ...args) => sh('ip', ['netns', 'exec', name, cmd, ...args]),
    del: () => {
      if (!live.has(name)) return
      live.delete(name)
      sh('ip', ['netns', 'del', name])
    },
  }
}
