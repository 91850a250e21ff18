export function simpleSatisfies(version: unknown, range: unknown): boolean | undefined
