// One agent on fakes: `const h = startAgent({...}); await h.settle(); ...; await h.stop()`.

import {Agent, type AgentOptions} from '../../src/agent/agent.js'
import {FakeStore, ManualClock, MemFiles, RecordingDataplane, recordingLog, settle} from './fakes.js'

export const VXLAN_CONFIG = '{"Network":"198.19.0.0/16","Backend":{"Type":"vxlan"}}'
export const HOSTGW_CONFIG = '{"Network":"198.19.0.0/16","Backend":{"Type":"host-gw"}}'
export const SUBNET_FILE = '/run/flannel/subnet.env'

export interface Harness {
  agent: Agent
  store: FakeStore
  dp: RecordingDataplane
  clock: ManualClock
  files: MemFiles
  logs: ReturnType<typeof recordingLog>
  /** The run() promise, settled into a result (never rejects). */
  done: Promise<{ok: true} | {ok: false; error: unknown}>
  /** Whether run() has returned or thrown. */
  finished(): boolean
  settle(): Promise<void>
  stop(): Promise<{ok: true} | {ok: false; error: unknown}>
}

export interface HarnessOptions {
  store?: FakeStore
  dp?: RecordingDataplane
  clock?: ManualClock
  files?: MemFiles
  options?: Partial<AgentOptions>
  random?: () => number
}

export function startAgent(o: HarnessOptions = {}): Harness {
  const store = o.store ?? new FakeStore(VXLAN_CONFIG)
  const dp = o.dp ?? new RecordingDataplane()
  const clock = o.clock ?? new ManualClock()
  const files = o.files ?? new MemFiles()
  const logs = recordingLog()
  const stop = new AbortController()
  const agent = new Agent(
    {
      ifaces: [],
      ifaceRegexes: [],
      publicIP: null,
      subnetFile: SUBNET_FILE,
      ipMasq: false,
      forwardRules: true,
      renewMarginMs: 60 * 60_000,
      resyncMs: 10_000,
      allowSuspiciousPublicIP: false,
      ...o.options,
    },
    {store, dataplane: dp, clock, random: o.random ?? (() => 0), files, log: logs.log, signal: stop.signal},
  )
  let finished = false
  const done = agent.run().then(
    () => ({ok: true}) as const,
    (error: unknown) => ({ok: false, error}) as const,
  )
  void done.then(() => {
    finished = true
  })
  return {
    agent,
    store,
    dp,
    clock,
    files,
    logs,
    done,
    finished: () => finished,
    settle: () => settle(),
    stop: async () => {
      stop.abort()
      await settle()
      return done
    },
  }
}
