/**
 * The one writer of stdout: every result, table and JSON document goes through it.
 *
 * On a pipe, fd 1 is a non-blocking socket: `fs.writeSync(1, ...)` there can write part of a buffer (and say so only
 * in its return value) or fail with EAGAIN when the reader is slow. process.stdout queues what the kernel does not
 * take yet and keeps the process alive until it is written; this module writes through it, in order, and waits for
 * each ~1 MiB chunk to be taken before producing the next, so a 35 MB document is never held whole in memory.
 * A reader that goes away (`| head`) ends output quietly: the rest is dropped, no stack trace, exit code unchanged.
 */

import {jsonPieces} from './json.js'

/** Bytes gathered before a write: large enough to amortise each write, small enough to stream. */
const CHUNK = 1 << 20

let closed = false
/** Called once when output stops (see onOutputClosed). */
const closedListeners: Array<() => void> = []
/** The writes queued behind a streamed document (undefined when nothing is queued). */
let queue: Promise<void> | undefined

/** Output is dropped from now on (stdout's reader has gone, or writing failed). */
function stop(err: NodeJS.ErrnoException): void {
  if (closed) return
  closed = true
  for (const f of closedListeners.splice(0)) f()
  if (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED') return
  process.exitCode = 1
  process.stderr.write(`Error: cannot write to stdout: ${err.code ?? err.message}\n`)
}

let guarded = false

/**
 * Makes EPIPE on stdout and stderr quiet for every output path, oclif's own (--help, --version) included. Called
 * once at start-up, before anything is written.
 */
export function guardOutput(): void {
  if (guarded) return
  guarded = true
  process.stdout.on('error', stop)
  process.stderr.on('error', () => {}) // a closed stderr: nowhere left to report anything
}

/** Writes one string or buffer and resolves once the kernel has taken it (or output has stopped). Never rejects. */
function writeChunk(chunk: string | Uint8Array): Promise<void> {
  if (closed || chunk.length === 0) return Promise.resolve()
  return new Promise((resolve) => {
    process.stdout.write(chunk, (err) => {
      if (err) stop(err)
      resolve()
    })
  })
}

/**
 * Writes the pieces in ~1 MiB chunks, waiting for each to be taken. Pieces are encoded straight into the chunk's
 * buffer as they come (no string of the whole chunk is built: joining tens of thousands of small strings and
 * flattening them costs more than the encoding); a piece too large for a chunk is written on its own.
 */
async function pump(pieces: Iterable<string | Uint8Array>): Promise<void> {
  let buf = Buffer.allocUnsafe(CHUNK)
  let used = 0
  for (const piece of pieces) {
    if (closed) return
    // UTF-8 takes at most 3 bytes per UTF-16 code unit; bytes are copied as they are.
    const most = typeof piece === 'string' ? piece.length * 3 : piece.length
    if (used + most > CHUNK) {
      if (used > 0) {
        await writeChunk(buf.subarray(0, used))
        if (closed) return
        buf = Buffer.allocUnsafe(CHUNK) // the stream may still hold the one just written
        used = 0
      }
      if (most > CHUNK) {
        await writeChunk(piece)
        continue
      }
    }
    if (typeof piece === 'string') used += buf.write(piece, used)
    else {
      buf.set(piece, used)
      used += piece.length
    }
  }
  await writeChunk(buf.subarray(0, used))
}

function enqueue(pieces: Iterable<string | Uint8Array>): void {
  const run = (queue ?? Promise.resolve()).then(() => pump(pieces))
  const mine = run.then(
    () => {
      if (queue === mine) queue = undefined
    },
    (err: unknown) => {
      if (queue === mine) queue = undefined
      stop(err instanceof Error ? err : new Error(String(err)))
    },
  )
  queue = mine
}

/** Writes `text` to stdout after everything written before it. */
export function writeOut(text: string): void {
  ensureGuard()
  if (closed) return
  // Nothing queued: hand it to the stream now (in order with anything else written directly; a TTY or file write
  // completes before this returns). The stream keeps the process alive until a pipe has taken it.
  if (queue === undefined && text.length < CHUNK) {
    process.stdout.write(text, (err) => {
      if (err) stop(err)
    })
    return
  }
  enqueue([text])
}

/**
 * Writes `JSON.stringify(value, null, 2) + '\n'` to stdout, byte for byte, streamed in chunks; `map` rewrites each
 * piece (the terminal escaping of render/escape.ts, which keeps the JSON value).
 */
export function writeJson(value: unknown, map?: (piece: string) => string): void {
  ensureGuard()
  if (closed) return
  enqueue(
    (function* () {
      for (const piece of jsonPieces(value))
        // bytes from jsonPieces are UTF-8 text (render/json.ts ArrayRenderer): decoded only when there is a map
        yield map === undefined
          ? piece
          : map(
              typeof piece === 'string' ? piece : Buffer.from(piece.buffer, piece.byteOffset, piece.length).toString(),
            )
      yield '\n'
    })(),
  )
}

/**
 * Calls `f` once stdout's reader has gone (EPIPE) or writing failed: a command that would otherwise run on (leases
 * watch) ends then. It learns of it on its next write.
 */
export function onOutputClosed(f: () => void): void {
  if (closed) f()
  else closedListeners.push(f)
}

function ensureGuard(): void {
  if (!guarded) guardOutput()
}
