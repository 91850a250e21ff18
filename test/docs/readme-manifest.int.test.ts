// The README and the CLI agree: every command in oclif.manifest.json (written by `npm run build`) has its README
// section, every README section names a real command, and every flag a README heading or the connection table names
// is a flag (or a flag alias) of that command; `flannelctl --help` lists the same commands.

import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import path from 'node:path'
import {describe, test} from 'node:test'

import {ROOT, runCli, show} from '../helpers/cli.js'

interface ManifestCommand {
  flags: Record<string, {name: string; char?: string; aliases?: string[]; allowNo?: boolean}>
  aliases?: string[]
}

const manifest = JSON.parse(readFileSync(path.join(ROOT, 'oclif.manifest.json'), 'utf8')) as {
  commands: Record<string, ManifestCommand>
}
const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8')
const ids = Object.keys(manifest.commands).map((id) => id.replaceAll(':', ' '))

/** `### \`flannelctl leases ls [SUBNET] [--sort ...]\`` → {id: 'leases ls', flags: ['sort', ...]} */
const sections = [...readme.matchAll(/^### `flannelctl ([^`]+)`/gm)].map((m) => {
  const words = m[1]!.split(' ')
  const id = ids.filter((c) => m[1]!.startsWith(c + ' ') || m[1] === c).sort((a, b) => b.length - a.length)[0]
  return {heading: m[1]!, id, flags: [...m[1]!.slice(words[0]!.length).matchAll(/--([a-z0-9-]+)/g)].map((f) => f[1]!)}
})

function flagNames(c: ManifestCommand): Set<string> {
  const names = new Set<string>()
  for (const f of Object.values(c.flags)) {
    names.add(f.name)
    if (f.allowNo) names.add(`no-${f.name}`)
    for (const a of f.aliases ?? []) names.add(a)
  }
  return names
}

describe('README and the oclif manifest', () => {
  test('every command has a README section and every section names a command', () => {
    const documented = new Set(sections.map((s) => s.id))
    assert.deepEqual(
      ids.filter((id) => !documented.has(id)),
      [],
    )
    assert.deepEqual(
      sections.filter((s) => s.id === undefined).map((s) => s.heading),
      [],
    )
  })

  test("every flag in a section's heading exists on that command", () => {
    const missing: string[] = []
    for (const s of sections) {
      const names = flagNames(manifest.commands[s.id!.replaceAll(' ', ':')]!)
      for (const f of s.flags) if (!names.has(f)) missing.push(`${s.id} --${f}`)
    }
    assert.deepEqual(missing, [])
  })

  test('the connection flags of the README table (and their flanneld aliases) exist on every etcd command', () => {
    const table = [...readme.matchAll(/^\| (`--[^|]+)\|/gm)].flatMap((m) =>
      [...m[1]!.matchAll(/--([a-z0-9-]+)/g)].map((f) => f[1]!),
    )
    assert.ok(table.includes('endpoints') && table.includes('etcd-endpoints'), table.join(' '))
    for (const [id, c] of Object.entries(manifest.commands)) {
      if (!('endpoints' in c.flags)) continue
      const names = flagNames(c)
      assert.deepEqual(
        table.filter((f) => !names.has(f)),
        [],
        id,
      )
    }
  })

  test('flannelctl --help lists the same topics and commands', async () => {
    const r = await runCli(['--help'])
    assert.equal(r.code, 0, show(r))
    for (const top of new Set(ids.map((id) => id.split(' ')[0]!)))
      assert.match(r.stdout, new RegExp(`^  ${top}\\b`, 'm'))
  })
})
