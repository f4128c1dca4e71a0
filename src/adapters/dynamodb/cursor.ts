import { createHash } from 'node:crypto'
import { InvalidCursorError } from '../../core/errors.ts'

type Key = Record<string, string | number>

/**
 * Opaque page cursors: the DynamoDB key to continue from, bound to the query that produced it (a digest of
 * its index and filters), so a cursor cannot be replayed against another query or edited to point elsewhere.
 */
export function encodeCursor(key: Key, query: unknown): string {
  return Buffer.from(JSON.stringify({ k: key, q: digest(query) })).toString('base64url')
}

export function decodeCursor(cursor: string, query: unknown, expectedKeys: readonly string[], fixed: Key = {}): Key {
  let parsed: unknown
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
  } catch {
    throw new InvalidCursorError()
  }
  if (typeof parsed !== 'object' || parsed === null) throw new InvalidCursorError()
  const { k, q } = parsed as { k?: unknown; q?: unknown }
  if (q !== digest(query) || typeof k !== 'object' || k === null) throw new InvalidCursorError()
  const entries = Object.entries(k)
  const valid = entries.length === expectedKeys.length &&
    entries.every(([name, value]) => expectedKeys.includes(name) && (typeof value === 'string' || typeof value === 'number'))
  const sameQuery = Object.entries(fixed).every(([name, value]) => (k as Key)[name] === value)
  if (!valid || !sameQuery) throw new InvalidCursorError()
  return k as Key
}

function digest(query: unknown): string {
  return createHash('sha256').update(JSON.stringify(query)).digest('base64url').slice(0, 22)
}
