/** network expand: plan at one revision, confirm, write the config guarded on the mod revision the plan read. */

import {NotFoundError} from '../core/errors.js'
import {checkExpandRequest, type ExpandPlan, planExpand} from '../core/expand.js'
import {type Capacity, decodeLeases} from '../core/leases.js'
import type {FlannelStore} from '../store/port.js'
import type {Confirm} from '../prompts/confirm.js'
import {etcdctl, type HintContext, NO_HINT_CONTEXT, type Suggestion} from '../core/hints.js'
import {toV2Key} from '../core/v2-keyspace.js'
import {effectiveToJson, type EffectiveJson} from './network.js'

export interface ExpandOptions {
  to: string
  serviceCidrs: string[]
  subnetMin?: string
  subnetMax?: string
  dryRun: boolean
  /** The connection flags to repeat in the recovery command. */
  hints?: HintContext
}

export interface ExpandResult {
  applied: boolean
  dryRun: boolean
  key: string
  readRevision: string
  revision: string | null
  previous: {config: unknown; raw: string; modRevision: string; effective: EffectiveJson}
  next: {config: unknown; raw: string; effective: EffectiveJson}
  checkedLeases: number
  incompatible: ExpandPlan['incompatible']
  alreadyIncompatible: ExpandPlan['alreadyIncompatible']
  capacity: {before: Capacity; after: Capacity}
  followUps: string[]
  restartOrder: ExpandPlan['restartOrder']
  /** The command that puts the previous config back (v3: from etcd's history; v2 keeps none, so its bytes). */
  recover: string
  /** The same command as argv and shell text (null when the value holds a NUL byte: no command line can pass it). */
  recoverCommand: Suggestion | null
  /** The etcd keyspace written (or that would be). */
  keyspace: 'v2' | 'v3'
}

export async function expandNetwork(
  store: FlannelStore,
  o: ExpandOptions,
  hooks: {onPlan: (r: ExpandResult) => void; confirm: Confirm},
): Promise<ExpandResult> {
  checkExpandRequest(o)
  const snap = await store.readNetwork()
  if (!snap.config) throw new NotFoundError(`no flannel network config at ${store.layout.config}`, 'CONFIG_NOT_FOUND')
  const {leases} = decodeLeases(snap.subnets)
  const plan = planExpand({
    configText: snap.config.value,
    to: o.to,
    serviceCidrs: o.serviceCidrs,
    subnetMin: o.subnetMin,
    subnetMax: o.subnetMax,
    leases,
  })
  const modRevision = snap.config.modRevision
  // Shell-quoted, with the user's connection flags (core/hints.ts): the key and the old value come from etcd.
  const h = o.hints ?? NO_HINT_CONTEXT
  const recover =
    store.api === 'v2'
      ? etcdctl(h, ['set'], [toV2Key(store.layout.config), plan.previousText], {api: 2})
      : etcdctl(h, ['get', `--rev=${modRevision}`, '--print-value-only'], [store.layout.config])
  const result: ExpandResult = {
    applied: false,
    dryRun: o.dryRun,
    key: store.layout.config,
    readRevision: snap.revision,
    revision: null,
    previous: {
      config: plan.previous.config,
      raw: plan.previousText,
      modRevision,
      effective: effectiveToJson(plan.previous.effective),
    },
    next: {config: plan.next.config, raw: plan.nextText, effective: effectiveToJson(plan.next.effective)},
    checkedLeases: plan.checkedLeases,
    incompatible: plan.incompatible,
    alreadyIncompatible: plan.alreadyIncompatible,
    capacity: plan.capacity,
    // flanneld <= 0.17 (the v2 keyspace's readers) puts its masquerade rules straight in POSTROUTING; the
    // FLANNEL-POSTRTG chain came with v0.20.0.
    followUps:
      store.api === 'v2'
        ? plan.followUps.map((f) => f.replace('ip-masq rules (FLANNEL-POSTRTG)', 'ip-masq rules (in POSTROUTING)'))
        : plan.followUps,
    restartOrder: plan.restartOrder,
    recover: recover?.shell ?? 'put the previous config back with an etcd client (it holds a NUL byte)',
    recoverCommand: recover,
    keyspace: store.api,
  }
  hooks.onPlan(result)
  if (o.dryRun) return result
  if (!(await hooks.confirm(`Write the new config to ${store.layout.config}?`))) return result
  const {revision} = await store.putIfUnchanged(store.layout.config, plan.nextText, modRevision)
  return {...result, applied: true, revision}
}
