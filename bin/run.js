#!/usr/bin/env node
// Loads the bundle dist/flannelctl.cjs (scripts/bundle.mjs) with the V8 code cache made at build time, so start-up
// skips compiling oclif and flannelctl; then runs oclif, which loads only the command given.
import {readFileSync, writeFileSync} from 'node:fs'
import {createRequire, Module} from 'node:module'
import path from 'node:path'
import {fileURLToPath, URL} from 'node:url'
import vm from 'node:vm'

const file = fileURLToPath(new URL('../dist/flannelctl.cjs', import.meta.url))
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
const script = new vm.Script(Module.wrap(readFileSync(file, 'utf8')), {filename: file, cachedData})
const mod = {exports: {}, filename: file, id: file, loaded: false}
script.runInThisContext()(mod.exports, createRequire(file), mod, file, path.dirname(file))
const bundle = mod.exports
globalThis[Symbol.for('flannelctl.bundle')] = bundle
globalThis[Symbol.for('flannelctl.import')] = (url) => import(url) // see scripts/bundle.mjs
if (writeCache) process.once('exit', () => writeFileSync(writeCache, script.createCachedData()))

bundle.guardOutput() // EPIPE on stdout (`| head`) ends output quietly on every path, oclif's --help and --version included
await bundle.execute({dir: import.meta.url})
