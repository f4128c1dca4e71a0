import type { Clock } from './clock.ts'
import { GrantNotFoundError } from './errors.ts'
import type { Grant } from './grant-model.ts'
import type { Actor, GrantOutcome, GrantService } from './grant-service.ts'
import type { GrantStore } from './ports.ts'
import { inForeground } from './priority.ts'

/** The actor of what an in-process expiry timer (or a queued due message) does: the sweep's work, a minute early. */
export const TIMER_ACTOR = 'system:timer'

/**
 * When a grant next needs the service, if it is one a timer can act on: a scheduled grant at its start, an open
 * grant (provisioning or active) at its end. Anything else (ending, ended) is the sweep's or nobody's.
 */
export function dueTimeOf(grant: Pick<Grant, 'status' | 'startsAt' | 'expiresAt'>): number | undefined {
  if (grant.status === 'scheduled') return Date.parse(grant.startsAt)
  if (grant.status === 'active' || grant.status === 'provisioning') return Date.parse(grant.expiresAt)
  return undefined
}

/**
 * What a timer does when it fires for a grant: read it again (its end may have moved, someone may have ended it),
 * and if it is due, call the lifecycle method the sweep would (start, or startRevocation with 'expired'). The
 * lifecycle's transitions are conditional on status and end, so a timer that lost a race changes nothing.
 * Answers 'early' when the grant is not due yet (its end moved later), with when it is due.
 */
export async function actOnDue(
  grants: GrantService,
  clock: Clock,
  id: string,
  actor: Actor,
): Promise<
  { kind: 'acted'; outcome: GrantOutcome } | { kind: 'early'; grant: Grant; at: number } | { kind: 'nothing' }
> {
  let grant: Grant
  try {
    grant = await grants.get(id)
  } catch (error) {
    if (error instanceof GrantNotFoundError) return { kind: 'nothing' }
    throw error
  }
  const at = dueTimeOf(grant)
  if (at === undefined) return { kind: 'nothing' }
  if (at > clock.now().getTime()) return { kind: 'early', grant, at }
  const outcome =
    grant.status === 'scheduled'
      ? await grants.start(grant, actor)
      : await grants.startRevocation(grant, 'expired', actor)
  return { kind: 'acted', outcome }
}

/** setTimeout and clearTimeout, injectable so that a test can fire timers by hand. */
export interface TimerHost {
  set(fire: () => void, ms: number): unknown
  clear(handle: unknown): void
}

export const realTimers: TimerHost = {
  set: (fire, ms) => {
    const handle = setTimeout(fire, ms)
    // A timer must never keep a process alive that is otherwise done (a closing container, a test).
    handle.unref()
    return handle
  },
  clear: (handle) => clearTimeout(handle as NodeJS.Timeout),
}

export interface DueTimersOptions {
  /** Only grants due within this much of now are armed: the sweep arms the rest as they come near (see armAhead). */
  horizonMs: number
  actor?: Actor
  timers?: TimerHost
  /** Told of a timer whose work failed; the grant stays due, and the sweep finishes it. */
  onError?: (grantId: string, error: unknown) => void
}

/**
 * In-process timers that act on a grant the moment it is due instead of at the next sweep (a minute later):
 * the container's path to expiry to the second. Every grant this process writes is shown to `track`, and the
 * sweep shows it what is due before its next run. A timer only ever calls the lifecycle's own methods, which
 * record their intent before any call to Identity Center; the sweep remains the safety net for everything a
 * timer misses (a crash, another process's grants, an error).
 */
export class DueTimers {
  private readonly armed = new Map<string, { handle: unknown; at: number }>()
  private readonly running = new Set<Promise<void>>()
  private closed = false
  private readonly timers: TimerHost
  private readonly actor: Actor
  private readonly grants: GrantService
  private readonly clock: Clock
  private readonly options: DueTimersOptions

  constructor(grants: GrantService, clock: Clock, options: DueTimersOptions) {
    this.grants = grants
    this.clock = clock
    this.options = options
    this.timers = options.timers ?? realTimers
    this.actor = options.actor ?? { id: TIMER_ACTOR, requestId: null }
  }

  /** The grant as just written: armed if it is due within the horizon, disarmed if it no longer needs a timer. */
  track(grant: Pick<Grant, 'id' | 'status' | 'startsAt' | 'expiresAt'>): void {
    if (this.closed) return
    const at = dueTimeOf(grant)
    const existing = this.armed.get(grant.id)
    if (at === undefined || at - this.clock.now().getTime() > this.options.horizonMs) {
      if (existing) this.disarm(grant.id)
      return
    }
    if (existing?.at === at) return
    if (existing) this.timers.clear(existing.handle)
    const delay = Math.max(0, at - this.clock.now().getTime())
    this.armed.set(grant.id, { at, handle: this.timers.set(() => this.fire(grant.id), delay) })
  }

  /** How many timers are armed (for tests and the log). */
  get size(): number {
    return this.armed.size
  }

  private disarm(id: string): void {
    const existing = this.armed.get(id)
    if (!existing) return
    this.timers.clear(existing.handle)
    this.armed.delete(id)
  }

  private fire(id: string): void {
    this.armed.delete(id)
    if (this.closed) return
    // A grant due now is a person's access ending on time: foreground, even when a sweep armed the timer.
    const work = inForeground(async () => {
      try {
        const result = await actOnDue(this.grants, this.clock, id, this.actor)
        // Its end moved later (PATCH from another process): armed again if still near.
        if (result.kind === 'early') this.track(result.grant)
      } catch (error) {
        this.options.onError?.(id, error)
      }
    })
    this.running.add(work)
    void work.finally(() => this.running.delete(work))
  }

  /** Settles once every timer that has fired so far has done its work. */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running])
  }

  /** Clears every timer and waits for those already firing, so that nothing acts after the app has closed. */
  async close(): Promise<void> {
    this.closed = true
    for (const { handle } of this.armed.values()) this.timers.clear(handle)
    this.armed.clear()
    await Promise.allSettled([...this.running])
  }
}

/**
 * The grants that fall due after `now` and no later than `now + horizonMs`, page by page (at most `max`): what the
 * sweep hands to the timers (or, in Lambda, to the due queue) so that they are acted on at their second rather
 * than at the next run. Coverage checks are left to the sweep.
 */
export async function dueWithin(store: GrantStore, now: Date, horizonMs: number, max = 5_000): Promise<Grant[]> {
  const until = new Date(now.getTime() + horizonMs)
  const found: Grant[] = []
  let cursor: string | undefined
  do {
    const page = await store.dueItems(until, cursor, 500, now)
    cursor = page.cursor
    found.push(...page.grants.filter((grant) => dueTimeOf(grant) !== undefined))
  } while (cursor && found.length < max)
  return found.slice(0, max)
}

/** The body of a due-queue message: only the grant's id (the consumer reads the grant again) and when it falls due. */
export interface DueMessage {
  grantId: string
  dueAt: string
}

/** A due message, or undefined for a body that is not one (it is dropped, not retried: it never will be one). */
export function parseDueMessage(body: string): DueMessage | undefined {
  try {
    const parsed = JSON.parse(body) as Partial<DueMessage> | null
    const valid =
      typeof parsed?.grantId === 'string' && /^[0-9a-f-]{36}$/.test(parsed.grantId) && typeof parsed.dueAt === 'string'
    return valid ? { grantId: parsed.grantId as string, dueAt: parsed.dueAt as string } : undefined
  } catch {
    return undefined
  }
}
