#!/usr/bin/env node
import {URL} from 'node:url'

import {execute} from '@oclif/core'

// The package root (bin/package.json only sets bin/run.js's module type).
await execute({development: true, dir: new URL('..', import.meta.url).href})
