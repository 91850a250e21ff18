/** flannel's etcd key layout under --etcd-prefix (path.Join semantics: cleaned, no trailing slash). */

/** Go's path.Clean for the absolute or relative key prefixes flannel joins. */
export function cleanPrefix(prefix: string): string {
  const abs = prefix.startsWith('/')
  const parts: string[] = []
  for (const seg of prefix.split('/')) {
    if (seg === '' || seg === '.') continue
    if (seg === '..') {
      if (parts.length > 0 && parts.at(-1) !== '..') parts.pop()
      else if (!abs) parts.push('..')
      continue
    }
    parts.push(seg)
  }
  const joined = parts.join('/')
  return abs ? '/' + joined : joined || '.'
}

/** Go's path.Join(prefix, name): empty elements are skipped, the result is cleaned. */
function join(prefix: string, name: string): string {
  return cleanPrefix(prefix === '' ? name : `${prefix}/${name}`)
}

export interface KeyLayout {
  readonly prefix: string
  /** `<prefix>/config` */
  readonly config: string
  /** `<prefix>/subnets`: flanneld lists with this prefix, without a trailing slash. */
  readonly subnets: string
  /** Everything flannel reads lies under this range prefix. */
  readonly range: string
  subnetKey(keySegment: string): string
}

export function keyLayout(prefix: string): KeyLayout {
  const clean = cleanPrefix(prefix)
  const config = join(prefix, 'config')
  const subnets = join(prefix, 'subnets')
  return {
    prefix: clean,
    config,
    subnets,
    range: clean === '/' ? '/' : clean + '/',
    subnetKey: (seg: string) => `${subnets}/${seg}`,
  }
}
