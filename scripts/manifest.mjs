#!/usr/bin/env node
// Writes oclif.manifest.json (what `oclif manifest` does) so the CLI loads only the command it runs.
import {writeFileSync} from 'node:fs'

import {Plugin} from '@oclif/core'

const plugin = new Plugin({
  root: process.cwd(),
  type: 'core',
  ignoreManifest: true,
  errorOnManifestCreate: true,
  isRoot: true,
})
await plugin.load()
writeFileSync('oclif.manifest.json', JSON.stringify(plugin.manifest, null, 2) + '\n')
console.error(`wrote oclif.manifest.json (${Object.keys(plugin.manifest.commands).length} commands)`)
