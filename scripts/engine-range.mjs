// oclif checks at every start that the running Node satisfies the package's `engines.node` (semver.satisfies), and
// semver's regular expression tables and range parsing cost ~6 % of a `--version`'s instructions. The bundle
// (scripts/bundle.mjs) gives that check this function first: it answers for the ranges flannelctl writes (`^A.B.C`
// with A > 0 and `>=A.B.C`, joined by `||`) and a release version `X.Y.Z`, by semver's rules for them; for anything
// else it returns undefined and the check asks semver. Self-contained: its source is copied into the bundle.

/** `version` satisfies `range` (true/false), or undefined when either is outside the forms handled here. */
export function simpleSatisfies(version, range) {
  const num = '(0|[1-9][0-9]{0,8})'
  const v = new RegExp(`^${num}\\.${num}\\.${num}$`).exec(typeof version === 'string' ? version : '')
  if (!v || typeof range !== 'string') return undefined
  const cmp = (a, b) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2]
  const have = [Number(v[1]), Number(v[2]), Number(v[3])]
  const part = new RegExp(`^(\\^|>=)${num}\\.${num}\\.${num}$`)
  let ok = false
  for (const p of range.split('||')) {
    const m = part.exec(p.trim())
    if (!m || (m[1] === '^' && m[2] === '0')) return undefined
    const low = [Number(m[2]), Number(m[3]), Number(m[4])]
    if (cmp(have, low) >= 0 && (m[1] === '>=' || have[0] === low[0])) ok = true
  }
  return ok
}
