import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto'
import { InvalidCursorError } from '../../core/errors.ts'

type Key = Record<string, string | number>

/** The first byte of every cursor: a change of format or key derivation gets a new one, and old cursors are refused. */
const VERSION = 1
const IV_BYTES = 12
const TAG_BYTES = 16
// Smallest possible sealed payload is `[]`; anything shorter cannot be ours and is refused before decryption.
const MIN_BYTES = 1 + IV_BYTES + 2 + TAG_BYTES

/**
 * Opaque page cursors: the DynamoDB key to continue from, sealed with AES-256-GCM under a key derived from the
 * deployment's cursor secret. A client could otherwise edit the key (another partition, a coverage or
 * idempotency item, a wrongly typed value that DynamoDB refuses and the SDK retries) or read the table's key
 * names from it. The query the cursor belongs to (table, index, partition, sort bounds, filters, order) is
 * the associated data: it is not in the cursor, yet a cursor opens only for that same query.
 *
 * Only the key's values are sealed, in the order of `keyNames`; names come from the query when it is opened.
 * Every instance of a deployment must share the secret (JIT_CURSOR_KEY or JIT_CURSOR_KEY_ARN), or a client
 * paging through a load balancer would be refused by the instance that did not mint its cursor.
 */
export class PageCursors {
  private readonly key: Buffer

  constructor(secret: string) {
    if (secret.length < 32) throw new Error('The cursor secret must be at least 32 characters')
    // A key of its own, so the configured secret is never used directly and could later derive others.
    this.key = Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), 'jit-access page cursor v1 aes-256-gcm', 32))
  }

  encode(key: Record<string, unknown>, query: unknown, keyNames: readonly string[]): string {
    const values = keyNames.map((name) => {
      const value = key[name]
      if (!isKeyValue(value)) throw new TypeError(`A page cursor's key needs a string or number for '${name}'`)
      return value
    })
    const iv = randomBytes(IV_BYTES)
    const cipher = createCipheriv('aes-256-gcm', this.key, iv, { authTagLength: TAG_BYTES })
    cipher.setAAD(associatedData(query, keyNames))
    const sealed = Buffer.concat([cipher.update(JSON.stringify(values), 'utf8'), cipher.final()])
    return Buffer.concat([Buffer.of(VERSION), iv, sealed, cipher.getAuthTag()]).toString('base64url')
  }

  /**
   * The key a cursor from `encode` holds, for the same query and key names.
   * @throws InvalidCursorError for anything else: edited, truncated, minted under another secret or for another query.
   */
  decode(cursor: string, query: unknown, keyNames: readonly string[], fixed: Key = {}): Key {
    const bytes = Buffer.from(cursor, 'base64url')
    // Node's decoder skips characters outside the alphabet and ignores spare bits: an edited cursor could
    // decode to the same bytes, so only the exact text `encode` produced is accepted.
    if (bytes.toString('base64url') !== cursor || bytes.length < MIN_BYTES || bytes[0] !== VERSION)
      throw new InvalidCursorError()
    const iv = bytes.subarray(1, 1 + IV_BYTES)
    const tag = bytes.subarray(bytes.length - TAG_BYTES)
    let values: unknown
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, iv, { authTagLength: TAG_BYTES })
      decipher.setAAD(associatedData(query, keyNames))
      decipher.setAuthTag(tag)
      const plain = Buffer.concat([
        decipher.update(bytes.subarray(1 + IV_BYTES, bytes.length - TAG_BYTES)),
        decipher.final(),
      ])
      values = JSON.parse(plain.toString('utf8'))
    } catch {
      throw new InvalidCursorError()
    }
    // Authentic cursors always pass these; they stay so that a future bug in `encode` fails here, not in DynamoDB.
    if (!Array.isArray(values) || values.length !== keyNames.length || !values.every(isKeyValue))
      throw new InvalidCursorError()
    const key: Key = Object.fromEntries(keyNames.map((name, i) => [name, values[i] as string | number]))
    if (!Object.entries(fixed).every(([name, value]) => key[name] === value)) throw new InvalidCursorError()
    return key
  }
}

function isKeyValue(value: unknown): value is string | number {
  return typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value))
}

/** The version, the key names and the query, in a canonical form: the same filters given in another order are the same query. */
function associatedData(query: unknown, keyNames: readonly string[]): Buffer {
  return Buffer.concat([Buffer.of(VERSION), Buffer.from(JSON.stringify(canonical({ k: keyNames, q: query })), 'utf8')])
}

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical)
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((name) => [name, canonical((value as Record<string, unknown>)[name])]),
    )
  }
  return value
}
