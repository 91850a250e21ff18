#!/usr/bin/env node
import {execute} from '@oclif/core'

import {guardOutput} from '../dist/render/output.js'

guardOutput() // EPIPE on stdout (`| head`) ends output quietly on every path, oclif's --help and --version included
await execute({dir: import.meta.url})
