/** The backends the agent runs, by flannel's backend type (lower-cased, as flannel's backend manager looks it up). */

import type {BackendFactory} from './backend.js'
import {hostGwBackend} from './host-gw.js'
import {vxlanBackend} from './vxlan.js'

export const BACKENDS: Readonly<Record<string, BackendFactory>> = {
  vxlan: vxlanBackend,
  'host-gw': hostGwBackend,
}
