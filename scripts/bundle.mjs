#!/usr/bin/env node
// Build step after tsc and the manifest: one CommonJS bundle (dist/flannelctl.cjs) of flannelctl and @oclif/core,
// in which each command's modules are evaluated only when that command runs (esbuild's lazy module wrappers behind
// dynamic import()), plus one small CommonJS file per command where the manifest says it lives, so oclif's
// manifest-based lazy loading stays as it is (the manifest is rewritten to name them). etcd3 (and the gRPC stack under it) stays in node_modules: it reads
// its .proto files from its own directory at load, and only commands that write to etcd (or watch it) load it; reads
// go through the lean client (src/store/v3-lean.ts), which is bundled.
// Then a V8 code cache for the bundle (dist/flannelctl.cjs.cache), written by running the built CLI once.
import {Buffer} from 'node:buffer'
import {execFile} from 'node:child_process'
import {mkdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {promisify} from 'node:util'

import {build} from 'esbuild'

import {simpleSatisfies} from './engine-range.mjs'

const root = process.cwd()
const execFileAsync = promisify(execFile)
const manifest = JSON.parse(readFileSync(path.join(root, 'oclif.manifest.json'), 'utf8'))
const commands = Object.values(manifest.commands).map((c) => ({
  id: c.id,
  dist: path.join(root, ...c.relativePath).replace(/\.js$/, '.cjs'),
  src: path.join(root, 'src', ...c.relativePath.slice(1)).replace(/\.js$/, '.ts'),
}))

const entry = [
  `export {execute} from '@oclif/core'`,
  `export {guardOutput} from './src/render/output.ts'`,
  `export const commands = {`,
  // require(), not import(): esbuild then evaluates the command's modules on the first call, synchronously (oclif
  // require()s the command file), and the bundle makes no import() of its own (Node 20 drops the dynamic-import
  // callback of a script compiled from a code cache).
  ...commands.map(
    (c) => `  ${JSON.stringify(c.id)}: () => require(${JSON.stringify('./' + path.relative(root, c.src))}),`,
  ),
  `}`,
].join('\n')

/**
 * cli-table3 measures cells with its own copy of string-width (4.x); in the bundle it gets flannelctl's width
 * function instead (src/render/width.ts, string-width 8), so the tables it lays out and the linear ones measure
 * every cell alike (wide and combining characters, emoji).
 */
function cliTable3Width() {
  const inCliTable3 = `${path.sep}node_modules${path.sep}cli-table3${path.sep}`
  return {
    name: 'cli-table3-width',
    setup(b) {
      b.onResolve({filter: /^string-width$/}, (args) =>
        args.importer.includes(inCliTable3) ? {path: 'string-width', namespace: 'flannelctl-width'} : undefined,
      )
      b.onLoad({filter: /.*/, namespace: 'flannelctl-width'}, () => ({
        contents: `module.exports = require(${JSON.stringify(path.join(root, 'src', 'render', 'width.ts'))}).displayWidth`,
        resolveDir: root,
        loader: 'js',
      }))
    },
  }
}

/**
 * string-width creates an Intl.Segmenter when its module is evaluated (ICU's break-iterator data: ~14 ms), and every
 * command that renders text evaluates src/render/width.ts, which imports it. width.ts measures printable ASCII
 * itself and calls string-width only for other text, so in the bundle its import of string-width is a function that
 * loads the real module on its first call and then calls it (string-width's default export is all width.ts uses).
 */
function stringWidthOnFirstUse() {
  const widthTs = path.join(root, 'src', 'render', 'width.ts')
  let used = false
  return {
    name: 'string-width-on-first-use',
    setup(b) {
      b.onResolve({filter: /^string-width$/}, (args) =>
        args.importer === widthTs ? {path: 'string-width', namespace: 'flannelctl-lazy-string-width'} : undefined,
      )
      b.onLoad({filter: /.*/, namespace: 'flannelctl-lazy-string-width'}, async () => {
        const real = await b.resolve('string-width', {kind: 'require-call', resolveDir: path.dirname(widthTs)})
        if (real.errors.length > 0 || !real.path)
          throw new Error('bundle: string-width not found from src/render/width.ts')
        used = true
        return {
          contents: [
            'let stringWidth',
            `module.exports = (s, options) => (stringWidth ??= require(${JSON.stringify(real.path)}).default)(s, options)`,
          ].join('\n'),
          resolveDir: root,
          loader: 'js',
        }
      })
      b.onEnd((result) => {
        if (result.errors.length === 0 && !used)
          throw new Error('bundle: src/render/width.ts no longer imports string-width; check the plugin')
      })
    },
  }
}

/**
 * Exact-text edits to some of oclif's modules as esbuild loads them, each failing the build when its text is not found
 * exactly once (the module changed: check the edit), or when a module listed is not bundled at all.
 *
 * oclif sorts each plugin's commands with localeCompare, and the first localeCompare of a process initialises ICU's
 * collator: 7-14 ms of every start. For ids made of [a-z0-9:-] (all of flannelctl's and its plugins') the same order
 * comes from the characters' ranks in ICU's root collation (punctuation '-' before ':', then digits, then letters;
 * checked against localeCompare on 300,000 random ids, en-US and sv-SE); any other id still goes to localeCompare.
 *
 * The other edits keep out of every start what only rare paths use (each module is loaded on its first use instead):
 * - `debug` (oclif's logger; its module init reads the environment, loads tty and util, picks colours: ~5 ms) is
 *   loaded only when DEBUG is set, as the real module would then print; without DEBUG it never prints, and oclif gets
 *   debuggers that do nothing (oclif only calls them).
 * - node:child_process (util/os.js: only determineWindowsShell, on Windows), node:readline (parser/parse.js: only
 *   readStdin, when an argument is read from stdin) and node:perf_hooks (performance.js: only when oclif's settings
 *   turn Performance on).
 * - getPlatform takes isWsl from is-wsl, the module wsl-utils re-exports it from, so every start no longer evaluates
 *   wsl-utils (node:child_process, node:fs/promises, powershell-utils), which only Windows paths use.
 * - the Node engine check (index.js) asks scripts/engine-range.mjs first (flannelctl's engines range, by semver's
 *   rules), and semver's satisfies alone (not all of semver) for any other range.
 * - tinyglobby (with fdir and picomatch: finding command files when there is no manifest; flannelctl ships one),
 *   ejs (the s3 templates of oclif's updater and help templates), lilconfig (.oclifrc search for a plugin whose
 *   package.json has no oclif section), clean-stack, indent-string and wrap-ansi (formatting an error), ansis (help,
 *   the spinner, and a theme's colours: its module init detects colour support and builds every style, ~2 ms).
 * - node:fs/promises (~1.4 ms to load, with the internal modules it pulls in): oclif's readJson (the manifest, the
 *   user's theme.json) reads with fs.readFile's callback form, which fails with the same errors; stat (file and
 *   directory flags) and ts-path's and read-tsconfig's calls (development mode) load it on first use.
 */
const lazy = (name, mod, props) =>
  `const ${name} = { ${props.map((p) => `get ${p}() { return require(${JSON.stringify(mod)}).${p}; }`).join(', ')} };`
const lazyDefault = (name, mod) =>
  `const ${name} = { get default() { return __importDefault(require(${JSON.stringify(mod)})).default; } };`
const eagerDefault = (name, mod) => `const ${name} = __importDefault(require(${JSON.stringify(mod)}));`
const OCLIF_EDITS = {
  'lib/config/plugin.js': {
    edits: [
      ['.sort((a, b) => a.id.localeCompare(b.id))', '.sort((a, b) => compareIds(a.id, b.id))'],
      ['const tinyglobby_1 = require("tinyglobby");', lazy('tinyglobby_1', 'tinyglobby', ['glob'])],
    ],
    append: `
function compareIds(x, y) {
  if (!/^[a-z0-9:-]*$/.test(x) || !/^[a-z0-9:-]*$/.test(y)) return x.localeCompare(y)
  const rank = (c) => (c === 45 ? 0 : c === 58 ? 1 : c)
  for (let i = 0; i < x.length && i < y.length; i++) {
    const d = rank(x.charCodeAt(i)) - rank(y.charCodeAt(i))
    if (d !== 0) return d < 0 ? -1 : 1
  }
  return x.length === y.length ? 0 : x.length < y.length ? -1 : 1
}
`,
  },
  'lib/logger.js': {
    edits: [
      [
        'const debug_1 = __importDefault(require("debug"));',
        `const debug_1 = process.env.DEBUG ? __importDefault(require("debug")) : { default: (namespace) => Object.assign(() => {}, { enabled: false, namespace }) };`,
      ],
    ],
  },
  'lib/util/os.js': {
    edits: [
      [
        'const node_child_process_1 = require("node:child_process");',
        lazy('node_child_process_1', 'node:child_process', ['execSync']),
      ],
      ["(await import('wsl-utils')).isWsl", "(await import('is-wsl')).default"],
    ],
  },
  'lib/parser/parse.js': {
    edits: [
      [
        'const node_readline_1 = require("node:readline");',
        lazy('node_readline_1', 'node:readline', ['createInterface']),
      ],
    ],
  },
  'lib/performance.js': {
    edits: [
      [
        'const node_perf_hooks_1 = require("node:perf_hooks");',
        lazy('node_perf_hooks_1', 'node:perf_hooks', ['performance', 'PerformanceObserver']),
      ],
    ],
  },
  'lib/index.js': {
    edits: [
      [
        "const semver = require('semver');",
        "const semver = { satisfies: (v, r) => simpleSatisfies(v, r) ?? require('semver/functions/satisfies')(v, r) };",
      ],
    ],
    append: `\n${simpleSatisfies.toString()}\n`,
  },
  'lib/config/config.js': {
    edits: [[eagerDefault('ejs_1', 'ejs'), lazyDefault('ejs_1', 'ejs')]],
  },
  'lib/help/util.js': {
    edits: [[eagerDefault('ejs_1', 'ejs'), lazyDefault('ejs_1', 'ejs')]],
  },
  'lib/util/fs.js': {
    edits: [
      [
        'const promises_1 = require("node:fs/promises");',
        'const promises_1 = { get stat() { return require("node:fs/promises").stat; }, readFile: (path, encoding) => new Promise((resolve, reject) => node_fs_1.readFile(path, encoding, (err, data) => (err ? reject(err) : resolve(data)))) };',
      ],
    ],
  },
  'lib/config/ts-path.js': {
    edits: [['const promises_1 = require("node:fs/promises");', lazy('promises_1', 'node:fs/promises', ['access'])]],
  },
  'lib/util/read-tsconfig.js': {
    edits: [
      [
        'const promises_1 = require("node:fs/promises");',
        lazy('promises_1', 'node:fs/promises', ['readdir', 'readFile']),
      ],
    ],
  },
  'lib/util/read-pjson.js': {
    edits: [['const lilconfig_1 = require("lilconfig");', lazy('lilconfig_1', 'lilconfig', ['lilconfig'])]],
  },
  'lib/ux/theme.js': {
    edits: [[eagerDefault('ansis_1', 'ansis'), lazyDefault('ansis_1', 'ansis')]],
  },
  'lib/ux/action/spinner.js': {
    edits: [[eagerDefault('ansis_1', 'ansis'), lazyDefault('ansis_1', 'ansis')]],
  },
  'lib/help/formatter.js': {
    edits: [[eagerDefault('ansis_1', 'ansis'), lazyDefault('ansis_1', 'ansis')]],
  },
  'lib/help/index.js': {
    edits: [[eagerDefault('ansis_1', 'ansis'), lazyDefault('ansis_1', 'ansis')]],
  },
  'lib/help/command.js': {
    edits: [[eagerDefault('ansis_1', 'ansis'), lazyDefault('ansis_1', 'ansis')]],
  },
  'lib/help/root.js': {
    edits: [[eagerDefault('ansis_1', 'ansis'), lazyDefault('ansis_1', 'ansis')]],
  },
  'lib/errors/handle.js': {
    edits: [[eagerDefault('clean_stack_1', 'clean-stack'), lazyDefault('clean_stack_1', 'clean-stack')]],
  },
  'lib/errors/errors/cli.js': {
    edits: [
      [eagerDefault('clean_stack_1', 'clean-stack'), lazyDefault('clean_stack_1', 'clean-stack')],
      [eagerDefault('indent_string_1', 'indent-string'), lazyDefault('indent_string_1', 'indent-string')],
      [eagerDefault('wrap_ansi_1', 'wrap-ansi'), lazyDefault('wrap_ansi_1', 'wrap-ansi')],
    ],
  },
  'lib/errors/errors/pretty-print.js': {
    edits: [
      [eagerDefault('indent_string_1', 'indent-string'), lazyDefault('indent_string_1', 'indent-string')],
      [eagerDefault('wrap_ansi_1', 'wrap-ansi'), lazyDefault('wrap_ansi_1', 'wrap-ansi')],
    ],
  },
}

function oclifEdits() {
  const done = new Set()
  return {
    name: 'oclif-edits',
    setup(b) {
      b.onLoad({filter: /[\\/]node_modules[\\/]@oclif[\\/]core[\\/]lib[\\/].*\.js$/}, (args) => {
        const rel = Object.keys(OCLIF_EDITS).find((f) =>
          args.path.endsWith(path.join('node_modules', '@oclif', 'core', f)),
        )
        if (!rel) return undefined
        let code = readFileSync(args.path, 'utf8')
        for (const [from, to] of OCLIF_EDITS[rel].edits) {
          if (code.split(from).length !== 2)
            throw new Error(`bundle: ${args.path} no longer has ${from} once; check the patch`)
          code = code.replace(from, () => to)
        }
        done.add(rel)
        return {contents: code + (OCLIF_EDITS[rel].append ?? ''), loader: 'js'}
      })
      b.onEnd((result) => {
        const missed = Object.keys(OCLIF_EDITS).filter((f) => !done.has(f))
        if (result.errors.length === 0 && missed.length > 0)
          throw new Error(`bundle: oclif's ${missed.join(', ')} not bundled; check the patch`)
      })
    },
  }
}

const bundle = path.join(root, 'dist', 'flannelctl.cjs')
rmSync(path.join(root, 'dist'), {recursive: true, force: true})
await build({
  stdin: {contents: entry, resolveDir: root, sourcefile: 'flannelctl-entry.ts', loader: 'ts'},
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20.19',
  outfile: bundle,
  // typescript: only oclif's development mode (ts-node paths) asks for it.
  external: ['etcd3', 'typescript'],
  legalComments: 'none',
  logLevel: 'warning',
  plugins: [cliTable3Width(), stringWidthOnFirstUse(), oclifEdits()],
})

// import() inside code compiled from a V8 code cache fails on Node 20 (the dynamic-import callback is lost), so
// oclif's few import()s (of ESM plugins such as @oclif/plugin-help, all absolute file: URLs) go through bin/run.js.
const code = readFileSync(bundle, 'utf8')
const rewritten = code.replaceAll('await import(', "await globalThis[Symbol.for('flannelctl.import')](")
if (rewritten === code) throw new Error('bundle: no dynamic import() found to route through bin/run.js')
// ASCII only, so that bin/run.js reads it as latin1 (~3 ms for 2 MB, against ~10 ms decoding UTF-8) and V8 holds it
// as a one-byte string (one non-ASCII character makes all 2 M characters two-byte). esbuild escapes non-ASCII in
// strings but leaves it in regular expression literals (ansis' /[\u001b\u009b].../) and comments, where a \uXXXX
// escape means the same.
const ascii = rewritten.replace(/[^\0-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
// Written already wrapped in the function Node's CommonJS loader would put it in, so that bin/run.js compiles the
// file's own text: Node reads a file this size into a string outside V8's heap, and Module.wrap() made V8 copy all
// 2 MB into the heap first (old space the collector then counts). Evaluated as a script, the file gives that
// function (bin/run.js calls it); loaded with require() (a command file's fallback below), it runs as a module.
const wrapped =
  "(function (run) { return typeof module === 'object' ? run(exports, require, module, __filename, __dirname) : run })" +
  `(function (exports, require, module, __filename, __dirname) {\n${ascii}\n})\n`
writeFileSync(bundle, wrapped, 'latin1')

for (const c of commands) {
  mkdirSync(path.dirname(c.dist), {recursive: true})
  const rel = path.relative(path.dirname(c.dist), bundle).split(path.sep).join('/')
  writeFileSync(
    c.dist,
    [
      `// Generated by scripts/bundle.mjs: the ${c.id} command, from the bundle bin/run.js loaded.`,
      `const bundle = globalThis[Symbol.for('flannelctl.bundle')] ?? require(${JSON.stringify('./' + rel)})`,
      `module.exports = bundle.commands[${JSON.stringify(c.id)}]()`,
      '',
    ].join('\n'),
  )
}

// The manifest names the command files as oclif finds them: CommonJS, so oclif require()s them.
for (const c of Object.values(manifest.commands)) {
  c.isESM = false
  c.relativePath = [...c.relativePath.slice(0, -1), c.relativePath.at(-1).replace(/\.js$/, '.cjs')]
}
writeFileSync(path.join(root, 'oclif.manifest.json'), JSON.stringify(manifest, null, 2) + '\n')

// The code cache: V8's compiled code for what a typical etcd command runs (oclif's start-up, parsing, `leases ls
// --json` over the lean v3 client, the TTL sweep, rendering), saved when that run ends. The run talks to a stand-in
// for etcd in this process (plain HTTP/2, canned gRPC answers: a network config and a few flanneld leases), so a build
// needs no etcd. A cache V8 rejects (another Node or V8 flags) is ignored at run time; code it lacks (the table,
// --snapshot, other commands) is compiled as it runs.
rmSync(bundle + '.cache', {force: true})
const fake = await fakeEtcd()
try {
  await execFileAsync(
    process.execPath,
    [path.join(root, 'bin', 'run.js'), 'leases', 'ls', '--json', '--endpoints', fake.endpoint],
    {env: {...process.env, FLANNELCTL_WRITE_CODE_CACHE: bundle + '.cache'}, maxBuffer: 1 << 20},
  )
} finally {
  fake.close()
}
if (fake.calls.range < 2 || fake.calls.ttl < 1)
  throw new Error(`bundle: the code-cache run made ${JSON.stringify(fake.calls)}`)
console.error(`wrote ${path.relative(root, bundle)} (${commands.length} commands) and its code cache`)

/** Protobuf, the little of it the answers need: varint fields and length-delimited fields. */
function varint(n) {
  const out = []
  let v = BigInt(n)
  do {
    let byte = Number(v & 0x7fn)
    v >>= 7n
    if (v > 0n) byte |= 0x80
    out.push(byte)
  } while (v > 0n)
  return Buffer.from(out)
}
function num(field, n) {
  return Buffer.concat([varint(field << 3), varint(n)])
}
function bytes(field, b) {
  return Buffer.concat([varint((field << 3) | 2), varint(b.length), Buffer.from(b)])
}

/** An etcd v3 stand-in on 127.0.0.1 (a free port): KV/Range and Lease/LeaseTimeToLive, each with a canned answer. */
async function fakeEtcd() {
  const http2 = await import('node:http2')
  const revision = 42
  const header = bytes(1, Buffer.concat([num(1, 1), num(2, 1), num(3, revision), num(4, 2)]))
  const kv = (key, value, lease) =>
    bytes(2, Buffer.concat([bytes(1, key), num(2, 3), num(3, 3), num(4, 1), bytes(5, value), num(6, lease)]))
  const kvs = [kv('/coreos.com/network/config', '{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}', 0)]
  for (let i = 1; i <= 5; i++) {
    const value = `{"PublicIP":"198.18.0.${i}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:00:0${i}"}}`
    kvs.push(kv(`/coreos.com/network/subnets/10.5.${i}.0-24`, value, 7587000000000000 + i))
  }
  const range = Buffer.concat([header, ...kvs, num(4, kvs.length)])
  const ttl = (id) => Buffer.concat([header, num(2, id), num(3, 86_000), num(4, 86_400)])
  const frame = (msg) => {
    const f = Buffer.alloc(5 + msg.length) // gRPC: uncompressed, 4-byte length, message
    f.writeUInt32BE(msg.length, 1)
    msg.copy(f, 5)
    return f
  }
  const calls = {range: 0, ttl: 0}
  const server = http2.createServer()
  server.on('stream', (stream, h) => {
    const chunks = []
    stream.on('data', (c) => chunks.push(c))
    stream.on('end', () => {
      let answer
      if (h[':path'] === '/etcdserverpb.KV/Range') {
        calls.range++
        answer = range
      } else if (h[':path'] === '/etcdserverpb.Lease/LeaseTimeToLive') {
        calls.ttl++
        // LeaseTimeToLiveRequest: ID 1
        const body = Buffer.concat(chunks).subarray(5)
        let id = 0n
        for (let i = 1, shift = 0n; i < body.length; i++, shift += 7n) {
          id |= BigInt(body[i] & 0x7f) << shift
          if (!(body[i] & 0x80)) break
        }
        answer = ttl(id)
      }
      if (!answer) {
        stream.respond({':status': 200, 'content-type': 'application/grpc', 'grpc-status': '12'}, {endStream: true})
        return
      }
      stream.respond({':status': 200, 'content-type': 'application/grpc'}, {waitForTrailers: true})
      stream.on('wantTrailers', () => stream.sendTrailers({'grpc-status': '0'}))
      stream.end(frame(answer))
    })
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    endpoint: `http://127.0.0.1:${server.address().port}`,
    calls,
    close: () => server.close(),
  }
}
