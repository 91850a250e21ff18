#!/bin/sh
':' //; if [ -n "${NODE_EXTRA_CA_CERTS-}" ]; then export FLANNELCTL_NODE_EXTRA_CA_CERTS="$NODE_EXTRA_CA_CERTS"; unset NODE_EXTRA_CA_CERTS; fi; exec node "$0" "$@"
// The two lines above are sh (a JavaScript string and comment to node): run as a program (the npm bin link, PATH),
// this file re-executes itself under node (exec: same pid, signals, exit status, stdio and TTY), without
// NODE_EXTRA_CA_CERTS: Node 20 reads and parses that CA file at every start (~60 ms for a system bundle, even for
// --version), so its value travels in FLANNELCTL_NODE_EXTRA_CA_CERTS instead, is put back in the environment below
// (child processes see what the user gave) and is applied by flannelctl's own TLS clients on their first TLS use
// (src/store/extra-ca.ts), by Node's rule. `node bin/run.js` runs the JavaScript directly, and Node applies the variable itself.
//
// Then: loads the bundle dist/flannelctl.cjs (scripts/bundle.mjs) with the V8 code cache made at build time, so start-up
// skips compiling oclif and flannelctl; then runs oclif, which loads only the command given.
//
// CommonJS (bin/package.json says so): Node starts a CommonJS entry a few ms sooner than an ES module.
'use strict'
const {readFileSync, writeFileSync} = require('node:fs')
const {createRequire} = require('node:module')
const path = require('node:path')
const vm = require('node:vm')

const extraCaCerts = process.env.FLANNELCTL_NODE_EXTRA_CA_CERTS
delete process.env.FLANNELCTL_NODE_EXTRA_CA_CERTS
if (extraCaCerts !== undefined && process.env.NODE_EXTRA_CA_CERTS === undefined) {
  process.env.NODE_EXTRA_CA_CERTS = extraCaCerts
  globalThis[Symbol.for('flannelctl.extraCaCerts')] = extraCaCerts
}

const root = path.join(__dirname, '..')
const file = path.join(root, 'dist', 'flannelctl.cjs')
const cacheFile = file + '.cache'
const writeCache = process.env.FLANNELCTL_WRITE_CODE_CACHE
delete process.env.FLANNELCTL_WRITE_CODE_CACHE
let cachedData
if (!writeCache) {
  try {
    cachedData = readFileSync(cacheFile)
  } catch {
    // no cache: compile as usual
  }
}
// latin1: the bundle is ASCII (scripts/bundle.mjs), and latin1 is the fastest way to read it into a string. The file
// is already wrapped as a CommonJS module (scripts/bundle.mjs): compiled as it is, its text is not copied.
const script = new vm.Script(readFileSync(file, 'latin1'), {filename: file, cachedData})
const mod = {exports: {}, filename: file, id: file, loaded: false}
script.runInThisContext()(mod.exports, createRequire(file), mod, file, path.dirname(file))
const bundle = mod.exports
globalThis[Symbol.for('flannelctl.bundle')] = bundle
globalThis[Symbol.for('flannelctl.import')] = (url) => import(url) // see scripts/bundle.mjs
if (writeCache) process.once('exit', () => writeFileSync(writeCache, script.createCachedData()))

bundle.guardOutput() // EPIPE on stdout (`| head`) ends output quietly on every path, oclif's --help and --version included
// oclif is given the package's root (bin/package.json only sets this file's type) and its package.json. When the
// arguments name one of flannelctl's own commands (or are just --version) and ask for no help, oclif's core plugins
// are left out of that package.json: they add only the help and autocomplete commands, the full help listing and the
// "did you mean" hook for unknown commands, and finding and reading the three of them costs every start ~7 ms of CPU
// (~15 ms wall). Anything else (help, autocomplete, an unknown or misspelt command) loads them as usual.
const pjson = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'))
if (ownCommand(process.argv.slice(2), Object.keys(bundle.commands))) pjson.oclif = {...pjson.oclif, plugins: []}
void bundle.execute({loadOptions: {root, pjson}})

function ownCommand(argv, ids) {
  if (argv.some((a) => a === '--help' || a === '-h' || a === 'help')) return false
  if (argv.length === 1 && argv[0] === '--version') return true
  const words = []
  for (const a of argv) {
    if (a.startsWith('-')) break
    words.push(a)
  }
  for (let n = words.length; n > 0; n--) if (ids.includes(words.slice(0, n).join(':'))) return true
  return false
}
