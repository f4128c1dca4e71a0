import { randomUUID } from 'node:crypto'
import type { AuditEvent } from './audit.ts'
import type { Clock } from './clock.ts'
import { DeliveryError, describeCause } from './errors.ts'
import type { Grant } from './grant-model.ts'
import { newId } from './ids.ts'
import type { MessageChannel, Notifier, OutboxChannel, OutboxClaim, OutboxMessage, OutboxStore } from './ports.ts'

/**
 * How long the process that records a message has it to itself (to deliver it at once) before the sweep
 * may: longer than one delivery, with its retries inside the SDK or HTTP client, can take.
 */
export const OUTBOX_CLAIM_MS = 60_000
/**
 * How long one delivery attempt may take, all its requests together, before it is aborted: well inside the
 * claim, so that an attempt still under way never overlaps the next claimant's (whose look for the note would
 * miss one still on its way).
 */
export const DELIVERY_BUDGET_MS = 40_000
/** The sweep starts no attempt with less than this left before its deadline. */
const MIN_DELIVERY_MS = 2_000
/** Default: a message not delivered within a day is given up on, audited and alerted. */
export const DEFAULT_GIVE_UP_MS = 24 * 3600_000
const FIRST_RETRY_MS = 30_000
const LONGEST_RETRY_MS = 30 * 60_000
/** A Retry-After is honoured up to this; a longer one is read as "much later", not as "tomorrow". */
const LONGEST_RETRY_AFTER_MS = 3600_000
const DRAIN_PAGE = 25

export const OUTBOX_ACTOR = 'system:outbox'

export interface OutboxOptions {
  giveUpMs?: number | undefined
  /** How long one delivery attempt may take (default DELIVERY_BUDGET_MS); less than OUTBOX_CLAIM_MS. */
  deliveryBudgetMs?: number | undefined
  /** Alerts an operator (SNS when configured): a message given up on. */
  notifier: Pick<Notifier, 'error'>
  /** Where failed deliveries are logged. */
  log?: { warn(details: object, message: string): void }
}

/**
 * The transactional outbox: a message an audit event owes a subscriber (SNS, the ticket's work notes) is
 * recorded in the same transaction as the event, so it exists exactly when the event does. The process that
 * wrote it delivers it at once, after its answer; if that process dies or the delivery fails, the sweep finds
 * it on the outbox's own partition of the due index and tries again with backoff, honouring Retry-After, until
 * it is delivered or, after `giveUpMs`, given up on with an audit event and an alert. Delivery is at least
 * once; each message carries its event's id, and a channel that can look (work notes) looks before
 * delivering again, so an answer lost after delivery makes no second note.
 */
export class Outbox {
  private readonly store: OutboxStore
  private readonly channels: readonly MessageChannel[]
  private readonly clock: Clock
  private readonly options: OutboxOptions
  private readonly inFlight = new Set<Promise<Attempt>>()

  constructor(store: OutboxStore, channels: readonly MessageChannel[], clock: Clock, options: OutboxOptions) {
    this.store = store
    this.channels = channels
    this.clock = clock
    this.options = options
  }

  /** The messages this event owes, claimed by this process so it can deliver them at once; undefined if none. */
  claimFor(event: AuditEvent, grant?: Pick<Grant, 'startsAt' | 'expiresAt' | 'accessEndsBy'>): OutboxClaim | undefined {
    const channels = this.channels.filter((channel) => channel.wants(event)).map((channel) => channel.channel)
    if (channels.length === 0) return undefined
    const now = this.clock.now().getTime()
    const window = grant
      ? { startsAt: grant.startsAt, expiresAt: grant.expiresAt, accessEndsBy: grant.accessEndsBy }
      : null
    return {
      owner: randomUUID(),
      until: new Date(now + OUTBOX_CLAIM_MS),
      messages: channels.map((channel) => ({ channel, event, window, attempts: 0, recordedAt: now })),
    }
  }

  /** Delivers the messages of a claim whose event is now recorded, without making anyone wait for it. */
  deliverSoon(claim: OutboxClaim): void {
    for (const message of claim.messages) {
      const delivering = this.deliver(message, claim.owner, false).finally(() => this.inFlight.delete(delivering))
      this.inFlight.add(delivering)
    }
  }

  /** Settles once every delivery started in this process has finished (delivered, or left for the sweep). */
  async flush(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all(this.inFlight)
  }

  /**
   * The sweep's pass: every message due (never delivered by its writer, or due for another attempt) is
   * claimed and delivered until `deadline`. Answers how many are still waiting for delivery.
   */
  async drain(deadline: Date): Promise<{ delivered: number; undelivered: number }> {
    let delivered = 0
    let undelivered = 0
    const tried = new Set<string>()
    while (this.clock.now() < deadline) {
      const due = (await this.store.due(this.clock.now(), DRAIN_PAGE)).filter((message) => !tried.has(keyOf(message)))
      if (due.length === 0) return { delivered, undelivered }
      for (const message of due) {
        tried.add(keyOf(message))
        if (deadline.getTime() - this.clock.now().getTime() < MIN_DELIVERY_MS) break
        const owner = randomUUID()
        const now = this.clock.now()
        if (!(await this.store.claim(message, owner, now, new Date(now.getTime() + OUTBOX_CLAIM_MS)))) continue
        // Whoever held it before may have delivered it and died before removing it: the channel looks first.
        const attempt = await this.deliver(message, owner, true, deadline.getTime() - this.clock.now().getTime())
        if (attempt === 'delivered') delivered++
        else if (attempt === 'retrying') undelivered++
      }
    }
    return { delivered, undelivered: undelivered + (await this.store.due(this.clock.now(), DRAIN_PAGE)).length }
  }

  /** One attempt. Never throws: what fails is retried later or given up on. */
  private async deliver(
    message: OutboxMessage,
    owner: string,
    redelivery: boolean,
    timeLeftMs = Infinity,
  ): Promise<Attempt> {
    const channel = this.channels.find((candidate) => candidate.channel === message.channel)
    try {
      if (!channel)
        throw new DeliveryError(`no channel '${message.channel}' is configured any more`, { permanent: true })
      const budgetMs = Math.min(this.options.deliveryBudgetMs ?? DELIVERY_BUDGET_MS, timeLeftMs)
      await channel.deliver(message, redelivery, AbortSignal.timeout(Math.max(0, budgetMs)))
      await this.store.delivered(message, owner)
      return 'delivered'
    } catch (error) {
      return this.failed(message, owner, error).catch((reason: unknown) => {
        this.options.log?.warn(
          { channel: message.channel, eventId: message.event.id, error: describeCause(reason) },
          'could not record a failed delivery',
        )
        return 'retrying' as const
      })
    }
  }

  private async failed(message: OutboxMessage, owner: string, error: unknown): Promise<Attempt> {
    const reason = describeCause(error)
    const now = this.clock.now().getTime()
    const attempts = message.attempts + 1
    const permanent = error instanceof DeliveryError && error.permanent
    const giveUpMs = this.options.giveUpMs ?? DEFAULT_GIVE_UP_MS
    this.options.log?.warn(
      { channel: message.channel, eventId: message.event.id, attempts, error: reason },
      'message not delivered',
    )
    if (permanent || now - message.recordedAt >= giveUpMs) {
      const why = permanent
        ? 'it cannot be delivered'
        : `it was not delivered within ${Math.round(giveUpMs / 60_000)} minutes`
      await this.store.giveUp(
        message,
        owner,
        this.givenUpEvent(message, `${why}; ${attempts} attempts, last: ${reason}`),
      )
      await this.options.notifier.error('a message was given up on', {
        channel: message.channel,
        eventId: message.event.id,
        grantId: message.event.grantId,
        error: reason,
      })
      return 'given-up'
    }
    const retryAfterMs = error instanceof DeliveryError ? error.retryAfterMs : undefined
    await this.store.retryAt(message, owner, new Date(now + retryDelayMs(attempts, retryAfterMs)), reason)
    return 'retrying'
  }

  private givenUpEvent(message: OutboxMessage, why: string): AuditEvent {
    const { event } = message
    return {
      id: newId(this.clock),
      at: this.clock.now().toISOString(),
      action: 'grant.delivery_failed',
      actor: OUTBOX_ACTOR,
      grantId: event.grantId,
      userName: event.userName,
      accountId: event.accountId,
      permissionSet: event.permissionSet,
      ...(event.groupName ? { groupName: event.groupName } : {}),
      ticketId: event.ticketId,
      detail: `the ${CHANNEL_NAMES[message.channel]} for ${event.action} (event ${event.id}) was given up on: ${why}`,
      requestId: null,
      correlationId: null,
    }
  }
}

const CHANNEL_NAMES: Record<OutboxChannel, string> = {
  lifecycle: 'SNS lifecycle message',
  'ticket-note': 'work note on the ticket',
}

type Attempt = 'delivered' | 'retrying' | 'given-up'

const keyOf = (message: OutboxMessage) => `${message.event.id}#${message.channel}`

/** Doubling from 30 s to 30 min, jittered; a longer Retry-After (up to an hour) wins. */
export function retryDelayMs(attempts: number, retryAfterMs?: number): number {
  const backoff = Math.min(FIRST_RETRY_MS * 2 ** (attempts - 1), LONGEST_RETRY_MS) * (0.8 + Math.random() * 0.4)
  return Math.max(backoff, Math.min(retryAfterMs ?? 0, LONGEST_RETRY_AFTER_MS))
}
