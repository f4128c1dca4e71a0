import { createHash } from 'node:crypto'
import { stringify } from 'safe-stable-stringify'
import type { AuditEvent } from './audit.ts'
import type { AuditAnchors } from './ports.ts'

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
  'seq',
  'prevHash',
  'id',
  'at',
  'action',
  'actor',
  'grantId',
  'userName',
  'accountId',
  'permissionSet',
  'ticketId',
  'detail',
  'requestId',
] as const

/** The bytes that are hashed: the event's fields in a fixed order, as JSON. */
export function canonicalContent(event: Omit<ChainedAuditEvent, 'hash'>): string {
  const fields: [string, unknown][] = HASHED_FIELDS.map((field) => [field, event[field] ?? null])
  // A group grant's group is hashed when the event names one; events without it hash as they always did.
  if (event.groupName) fields.push(['groupName', event.groupName])
  return stringify(Object.fromEntries(fields)) ?? ''
}

export function linkEvent(event: AuditEvent, head: ChainHead): ChainedAuditEvent {
  const unhashed = { ...event, seq: head.seq + 1, prevHash: head.hash }
  return { ...unhashed, hash: createHash('sha256').update(canonicalContent(unhashed)).digest('hex') }
}

/** Whether two events record the same thing, wherever each sits in the chain. */
export function sameEventContent(a: AuditEvent, b: AuditEvent): boolean {
  const unplaced = { seq: 0, prevHash: '' }
  return canonicalContent({ ...a, ...unplaced }) === canonicalContent({ ...b, ...unplaced })
}

/**
 * An audit event was written with the id of one already recorded, with other content. Not a DomainError:
 * ids are made by the service (UUIDv7), so this is a fault of the service (or of someone writing to its
 * table), never of the caller, and it answers 500.
 */
export class AuditEventExistsError extends Error {
  readonly eventId: string

  constructor(eventId: string) {
    super(`An audit event with id '${eventId}' is already recorded with other content; the log keeps the recorded one`)
    this.name = 'AuditEventExistsError'
    this.eventId = eventId
  }
}

/**
 * A chain head as the anchor store holds it. `at` is when the store received it (S3's own time, which no
 * writer sets); `name` says where it is (the S3 key).
 */
export interface AuditAnchor extends ChainHead {
  at: string
  name: string
}

/**
 * `anchored`: the log was compared with at least one anchor, and `anchor` is the newest it was compared with
 * (on failure, possibly the one it contradicts). An anchor vouches for every event up to its seq: they all
 * went into its hash.
 */
export type VerifyResult =
  | { ok: true; events: number; firstSeq: number | null; head: string; anchored: boolean; anchor?: AuditAnchor }
  | {
      ok: false
      events: number
      firstBadEventId: string | null
      firstBadSeq: number
      reason: string
      anchored: boolean
      anchor?: AuditAnchor
    }

const describeAnchor = (anchor: AuditAnchor) => `the anchor ${anchor.name} (stored ${anchor.at})`

/**
 * Walks events in chain order and recomputes every hash. An edited event fails its own hash; a deleted one
 * leaves a gap in seq and breaks the next event's prevHash; a truncated tail no longer reaches `head`
 * (the chain's recorded head, or a head hash an auditor anchored elsewhere).
 *
 * `anchors` (in seq order, bounded by the caller to the range verified) are heads recorded where whoever can
 * write the tables cannot change them: the event at an anchor's seq must have its hash, and the log must reach
 * the last of them. So a log cut short and re-linked, with its head pointer moved back to match, still fails.
 */
export async function verifyChain(
  events: AsyncIterable<ChainedAuditEvent>,
  options: { startAfter: ChainHead; head?: ChainHead | undefined; anchors?: AsyncIterable<AuditAnchor> | undefined },
): Promise<VerifyResult> {
  let previous = options.startAfter
  let count = 0
  let firstSeq: number | null = null
  const anchors = await AnchorWalk.start(options.anchors)
  try {
    for await (const event of events) {
      const reason = linkFault(event, previous) ?? (await anchors.check(event))
      if (reason) {
        const bad = { firstBadEventId: event.id, firstBadSeq: event.seq, reason }
        return { ok: false, events: count, ...bad, ...anchors.anchoring() }
      }
      firstSeq ??= event.seq
      previous = { seq: event.seq, hash: event.hash }
      count++
    }
    const beyond = anchors.beyond()
    if (beyond) {
      return endsEarly(
        count,
        previous.seq,
        `the log ends at event ${previous.seq} but ${describeAnchor(beyond)} recorded event ${beyond.seq}: ` +
          'events at the end were deleted, whatever the chain head now says',
        anchors.anchoring(),
      )
    }
  } finally {
    await anchors.close()
  }
  if (options.head && (options.head.seq !== previous.seq || options.head.hash !== previous.hash)) {
    return endsEarly(
      count,
      previous.seq,
      `the log ends at event ${previous.seq} but the chain head is event ${options.head.seq}: events at the end are missing`,
      anchors.anchoring(),
    )
  }
  return { ok: true, events: count, firstSeq, head: previous.hash, ...anchors.anchoring() }
}

/** Why an event does not follow `previous` in the chain (a gap, another link, changed content); undefined if it does. */
function linkFault(event: ChainedAuditEvent, previous: ChainHead): string | undefined {
  const expectedSeq = previous.seq + 1
  if (event.seq !== expectedSeq) return `expected event ${expectedSeq} next, found ${event.seq}: events are missing`
  if (event.prevHash !== previous.hash) return 'prevHash does not match the previous event'
  if (linkEvent(event, previous).hash !== event.hash) return 'content does not match its hash: the event was changed'
  return undefined
}

/** A verification's anchors, taken in seq order as the events go by; the last one compared is reported. */
class AnchorWalk {
  private readonly pending: AsyncIterator<AuditAnchor> | undefined
  private next: IteratorResult<AuditAnchor> | undefined
  private compared: AuditAnchor | undefined

  private constructor(pending: AsyncIterator<AuditAnchor> | undefined) {
    this.pending = pending
  }

  static async start(anchors: AsyncIterable<AuditAnchor> | undefined): Promise<AnchorWalk> {
    const walk = new AnchorWalk(anchors?.[Symbol.asyncIterator]())
    walk.next = await walk.pending?.next()
    return walk
  }

  /** Why the event is not the one an anchor recorded at its seq; undefined when no anchor says otherwise. */
  async check(event: ChainedAuditEvent): Promise<string | undefined> {
    while (this.pending && this.next && !this.next.done && this.next.value.seq <= event.seq) {
      const anchor = this.next.value
      if (anchor.seq === event.seq) {
        this.compared = anchor
        if (anchor.hash !== event.hash) {
          return `event ${event.seq} is not the one ${describeAnchor(anchor)} recorded: the log was rewritten at or before it`
        }
      }
      this.next = await this.pending.next()
    }
    return undefined
  }

  /** The first anchor past the last event checked (the log ends before it), now counted as compared; if any. */
  beyond(): AuditAnchor | undefined {
    if (!this.next || this.next.done) return undefined
    this.compared = this.next.value
    return this.compared
  }

  anchoring(): { anchored: boolean; anchor?: AuditAnchor } {
    return this.compared ? { anchored: true, anchor: this.compared } : { anchored: false }
  }

  async close(): Promise<void> {
    await this.pending?.return?.()
  }
}

/** A log that ends at `lastSeq`, before what an anchor or the chain head recorded: the events after it are missing. */
function endsEarly(
  events: number,
  lastSeq: number,
  reason: string,
  anchoring: { anchored: boolean; anchor?: AuditAnchor },
): VerifyResult {
  return { ok: false, events, firstBadEventId: null, firstBadSeq: lastSeq + 1, reason, ...anchoring }
}

/** The chain as stored: its head pointer and its events in seq order. */
export interface StoredChain {
  head(): Promise<ChainHead>
  eventsAfter(afterSeq: number, throughSeq?: number): AsyncIterable<ChainedAuditEvent>
}

/**
 * Verifies the stored events after `startAfter`, to `throughSeq`, or (without it) to the chain's head, against
 * the anchors in that range. Open-ended, it first looks for anchors beyond the head pointer, which only a
 * head moved back can explain (it never moves back otherwise); but a sweep may anchor a newer head while this
 * runs, so such anchors count only when they are beyond the head read after them as well. Anchors recorded
 * after that second read are not this verification's concern.
 */
export async function verifyStoredChain(
  chain: StoredChain,
  anchors: Pick<AuditAnchors, 'list'> | undefined,
  range: { startAfter: ChainHead; throughSeq?: number | undefined },
): Promise<VerifyResult> {
  const { startAfter, throughSeq } = range
  if (throughSeq !== undefined) {
    return verifyChain(chain.eventsAfter(startAfter.seq, throughSeq), {
      startAfter,
      anchors: anchors?.list(startAfter.seq, throughSeq),
    })
  }
  let head = await chain.head()
  let lastAnchored: number | undefined
  for await (const anchor of anchors?.list(head.seq) ?? []) lastAnchored = Math.max(lastAnchored ?? 0, anchor.seq)
  if (lastAnchored !== undefined) head = await chain.head()
  return verifyChain(chain.eventsAfter(startAfter.seq), {
    startAfter,
    head,
    anchors: anchors?.list(startAfter.seq, Math.max(lastAnchored ?? 0, head.seq)),
  })
}
