// Runs the built CLI with its stdin, stdout and stderr on a pseudo-terminal (util-linux `script`), the way an operator
// sees it: isTTY is true, colours and prompts behave as at a terminal. Output arrives as the terminal got it (CRLF).

import {spawn} from 'node:child_process'

import {cleanEnv, cliCommand, ROOT} from './cli.js'

export interface TtyResult {
  /** Everything the terminal showed (stdout and stderr interleaved), with CRLF turned back into LF. */
  output: string
  code: number
}

function sq(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`
}

export interface TtyOptions {
  env?: Record<string, string | undefined>
  cwd?: string
  timeoutMs?: number
  /** The terminal's width (`stty cols`; process.stdout.columns in the CLI). Default: script's, COLUMNS=120. */
  columns?: number
  /** Keystrokes: each is written once the output so far matches `after` (or at once without it). */
  keys?: Array<{after?: RegExp; send: string}>
}

/** `flannelctl ...args` on a pseudo-terminal; resolves with what the terminal showed and the CLI's exit code. */
export function runCliTty(args: string[], opts: TtyOptions = {}): Promise<TtyResult> {
  const c = cliCommand(args, 'bin', {TERM: 'xterm', COLUMNS: '120', ...cleanEnv(opts.env)})
  const run = [c.file, ...c.args].map(sq).join(' ')
  const cmd = opts.columns === undefined ? run : `stty cols ${opts.columns} rows 50 && exec ${run}`
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qefc', cmd, '/dev/null'], {
      cwd: opts.cwd ?? ROOT,
      env: c.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    child.stdin.on('error', () => {}) // keys for a CLI that has already exited: EPIPE, not a test failure
    const keys = [...(opts.keys ?? [])]
    let out = ''
    const pump = () => {
      while (keys.length > 0 && (keys[0]!.after === undefined || keys[0]!.after.test(out.replaceAll('\r\n', '\n')))) {
        child.stdin.write(keys.shift()!.send)
      }
      // script ends the session when its stdin closes: keep it open until every key is sent.
      if (keys.length === 0 && opts.keys !== undefined) child.stdin.end()
    }
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString('latin1')
      pump()
    })
    child.stderr.on('data', (b: Buffer) => (out += b.toString('latin1')))
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000)
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      const text = Buffer.from(out, 'latin1').toString('utf8').replaceAll('\r\n', '\n')
      resolve({output: text, code: code ?? 128 + (signal === 'SIGKILL' ? 9 : 15)})
    })
    if (opts.keys === undefined) child.stdin.end()
    else pump()
  })
}
