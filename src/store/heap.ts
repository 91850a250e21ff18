/**
 * A full garbage collection on request, without a launch flag. Long read loops (a TimeToLive per lease, 65,535 of
 * them) leave a few KB of garbage per call, and V8 lets the heap grow to several times the live data before it
 * collects: one forced collection every few thousand calls keeps peak RSS near the live size (issue 12: ~400 MB
 * -> under 300 MB at 65,535 leases) for a few ms each.
 */

import {setFlagsFromString} from 'node:v8'
import {runInNewContext} from 'node:vm'

let gc: (() => void) | null | undefined

export function collectGarbage(): void {
  if (gc === undefined) {
    try {
      setFlagsFromString('--expose-gc')
      gc = runInNewContext('gc') as () => void
    } catch {
      gc = null
    }
  }
  gc?.()
}
