import { createHash } from 'node:crypto'
import { stringify } from 'safe-stable-stringify'
import type { AuditEvent } from './audit.ts'

/** An audit event with its place in the tamper-evident chain. */
export interface ChainedAuditEvent extends AuditEvent {
  /** Position in the chain: 1, 2, 3… with no gaps. */
  seq: number
  /** SHA-256 (hex) of this event's canonical content, which includes seq and prevHash. */
  hash: string
  /** The previous event's hash; the first event's is GENESIS_HASH. */
  prevHash: string
}

export interface ChainHead {
  seq: number
  hash: string
}

export const GENESIS_HASH = '0'.repeat(64)
export const EMPTY_CHAIN: ChainHead = { seq: 0, hash: GENESIS_HASH }

const HASHED_FIELDS = [
  'seq', 'prevHash', 'id', 'at', 'action', 'actor', 'grantId', 'userName', 'accountId', 'permissionSet', 'ticketId', 'detail', 'requestId',
] as const

/** The bytes that are hashed: the event's fields in a fixed order, as JSON. */
export function canonicalContent(event: Omit<ChainedAuditEvent, 'hash'>): string {
  return stringify(Object.fromEntries(HASHED_FIELDS.map((field) => [field, event[field] ?? null]))) ?? ''
}

export function linkEvent(event: AuditEvent, head: ChainHead): ChainedAuditEvent {
  const unhashed = { ...event, seq: head.seq + 1, prevHash: head.hash }
  return { ...unhashed, hash: createHash('sha256').update(canonicalContent(unhashed)).digest('hex') }
}

export type VerifyResult =
  | { ok: true; events: number; firstSeq: number | null; head: string }
  | { ok: false; events: number; firstBadEventId: string | null; firstBadSeq: number; reason: string }

/**
 * Walks events in chain order and recomputes every hash. An edited event fails its own hash; a deleted one
 * leaves a gap in seq and breaks the next event's prevHash; a truncated tail no longer reaches `head`
 * (the chain's recorded head, or a head hash an auditor anchored elsewhere).
 */
export async function verifyChain(
  events: AsyncIterable<ChainedAuditEvent>,
  options: { startAfter: ChainHead; head?: ChainHead | undefined },
): Promise<VerifyResult> {
  let previous = options.startAfter
  let count = 0
  let firstSeq: number | null = null
  for await (const event of events) {
    const expectedSeq = previous.seq + 1
    const bad = (reason: string): VerifyResult => ({ ok: false, events: count, firstBadEventId: event.id, firstBadSeq: event.seq, reason })
    if (event.seq !== expectedSeq) return bad(`expected event ${expectedSeq} next, found ${event.seq}: events are missing`)
    if (event.prevHash !== previous.hash) return bad('prevHash does not match the previous event')
    if (linkEvent(event, previous).hash !== event.hash) return bad('content does not match its hash: the event was changed')
    firstSeq ??= event.seq
    previous = { seq: event.seq, hash: event.hash }
    count++
  }
  if (options.head && (options.head.seq !== previous.seq || options.head.hash !== previous.hash)) {
    return {
      ok: false,
      events: count,
      firstBadEventId: null,
      firstBadSeq: previous.seq + 1,
      reason: `the log ends at event ${previous.seq} but the chain head is event ${options.head.seq}: events at the end are missing`,
    }
  }
  return { ok: true, events: count, firstSeq, head: previous.hash }
}
