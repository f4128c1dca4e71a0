import { SWEEP_ACTOR } from './audit.ts'
import type { Clock } from './clock.ts'
import { ProvisioningFailedError } from './errors.ts'
import { type AccessTarget, type Grant, MOVABLE_STATUSES } from './grant-model.ts'
import type { GrantService } from './grant-service.ts'
import type { Outbox } from './outbox.ts'
import type { GrantStore } from './ports.ts'

export interface SweepSummary {
  /** Grants whose access this sweep ended (expired, or an early end it finished). */
  revoked: number
  /** Grants whose provisioning this sweep confirmed. */
  activated: number
  /** Scheduled grants the policy refused at their start (the user is no longer eligible). */
  denied: number
  /** Grants this sweep could not finish because of an error; they stay due and the next sweep tries again. */
  failed: number
  /** Grants still due: Identity Center has not finished, or the sweep ran out of time. */
  remaining: number
  /** Assignments checked against Identity Center this run. */
  checked: number
  /** Grants ended because their assignment had been removed outside jit-access. */
  drifted: number
  /** Messages (SNS, work notes) still waiting for delivery after this run: the receiver is failing. */
  undelivered: number
}

/** One run of the sweep, as an entry point asks for it (POST /revocations, or EventBridge on Lambda). */
export interface SweepRun {
  /** Recorded as the actor of the sweep's audit events: system:sweep over HTTP, system:scheduler from EventBridge. */
  actor: string
  /** Who started it, for the log (the token subject, or the schedule rule). */
  triggeredBy: string
  /** Stop starting new work at this time (a Lambda passes its remaining time); the configured budget applies too. */
  deadline?: Date
}

/** Due items read per page of the due index. */
export const DEFAULT_SWEEP_PAGE_SIZE = 100
/** Grants and assignments the sweep works on at once (its Identity Center calls share the rate limiter). */
export const DEFAULT_SWEEP_CONCURRENCY = 16

export interface SweepOptions {
  /** The sweep stops starting new work at this time and reports what is left as remaining. */
  deadline: Date
  actor?: string
  /** Default DEFAULT_SWEEP_PAGE_SIZE. */
  pageSize?: number | undefined
  /** Default DEFAULT_SWEEP_CONCURRENCY. */
  concurrency?: number | undefined
  /** Messages that could not be delivered when their event was recorded are delivered here. */
  outbox?: Outbox | undefined
}

/** The sweep acts as this actor, and writes the session cut-offs of the grants it ends together, at the end. */
type SweepActor = { id: string; requestId: null; defersSessionCutoffs: boolean }

/**
 * The periodic pass that keeps invariant 1: it finds, page by page on the due index, every grant whose
 * expiry has passed or whose provisioning or revocation was left unfinished (a crash, a timeout, a throttled
 * call), and carries it to its end; and every scheduled grant whose start has come, and starts it.
 */
export async function sweep(
  store: GrantStore,
  grants: GrantService,
  clock: Clock,
  options: SweepOptions,
): Promise<SweepSummary> {
  const summary: SweepSummary = {
    revoked: 0,
    activated: 0,
    denied: 0,
    failed: 0,
    remaining: 0,
    checked: 0,
    drifted: 0,
    undelivered: 0,
  }
  // Session cut-offs of the grants this run ends are written together at the end: one policy write for them all.
  const actor = { id: options.actor ?? SWEEP_ACTOR, requestId: null, defersSessionCutoffs: true }
  const workers = new WorkerPool(options.concurrency ?? DEFAULT_SWEEP_CONCURRENCY)
  try {
    await startDueWork(store, clock, options, workers, summary, {
      grant: (grant) => sweepGrant(grant, grants, clock, actor, summary),
      assignment: (target) => sweepAssignment(target, grants, actor, summary),
    })
  } finally {
    // A page that cannot be read ends the run, but only once the grants already started are done: the caller
    // then gives the sweep's lease up, and the next run must not find them still under way.
    await workers.settled()
  }
  await workers.idle()

  await finishSessionCutoffs(grants, actor)
  // Last: the cut-offs above record events whose messages this delivers if their writer could not.
  if (options.outbox) summary.undelivered = (await options.outbox.drain(options.deadline)).undelivered
  return summary
}

/**
 * Reads the due index page by page, from the run's start, and starts the work of each grant and assignment not
 * seen on an earlier page. Throws when a page cannot be read (work already started goes on: see sweep).
 */
async function startDueWork(
  store: GrantStore,
  clock: Clock,
  options: SweepOptions,
  workers: WorkerPool,
  summary: SweepSummary,
  work: { grant: (grant: Grant) => Promise<void>; assignment: (target: AccessTarget) => Promise<void> },
): Promise<void> {
  const startedAt = clock.now()
  const seen = new Set<string>()
  let cursor: string | undefined
  do {
    const page = await store.dueItems(startedAt, cursor, options.pageSize ?? DEFAULT_SWEEP_PAGE_SIZE)
    cursor = page.cursor
    const fresh = page.grants.filter((grant) => !seen.has(grant.id))
    for (const grant of fresh) seen.add(grant.id)
    const tasks = [
      ...fresh.map((grant) => () => work.grant(grant)),
      ...page.coverages.map((target) => () => work.assignment(target)),
    ]
    // Started, not awaited: the next page is read while this page's last grants are under way, so that Identity
    // Center's quota is not left idle at each page's end waiting for its slowest grant and then for the query.
    for (const task of tasks) {
      await workers.start(async () => {
        if (clock.now() >= options.deadline) {
          summary.remaining++
          return
        }
        await task()
      })
    }
  } while (cursor)
}

/** Carries one due grant on, and counts what came of it; an error is counted and alerted, and the grant stays due. */
async function sweepGrant(
  grant: Grant,
  grants: GrantService,
  clock: Clock,
  actor: SweepActor,
  summary: SweepSummary,
): Promise<void> {
  try {
    const outcome = await advance(grant, grants, clock, actor)
    if (!outcome) return
    if (!outcome.settled) summary.remaining++
    else if (outcome.grant.status === 'active') summary.activated++
    else if (outcome.grant.status === 'failed') summary.failed++
    else if (outcome.grant.status === 'denied') summary.denied++
    else summary.revoked++
  } catch (error) {
    summary.failed++
    if (!(error instanceof ProvisioningFailedError)) {
      await grants.notify('sweep could not finish a grant', {
        grantId: grant.id,
        status: grant.status,
        error: (error as Error).message,
      })
    }
  }
}

/** The periodic check of one assignment (see GrantService.checkAssignment); an error is alerted, and it stays due. */
async function sweepAssignment(
  target: AccessTarget,
  grants: GrantService,
  actor: SweepActor,
  summary: SweepSummary,
): Promise<void> {
  try {
    const { drifted } = await grants.checkAssignment(target, actor)
    summary.checked++
    summary.drifted += drifted
  } catch (error) {
    await grants.notify('sweep could not check an assignment', { ...target, error: (error as Error).message })
  }
}

/** The run's last step: the cut-offs it deferred, those a crash or failure left open, and the pruning of expired ones. */
async function finishSessionCutoffs(grants: GrantService, actor: { id: string; requestId: null }): Promise<void> {
  try {
    await grants.finishSessionCutoffs(actor)
  } catch (error) {
    await grants.notify('sweep could not write session cut-offs; the next run retries', {
      error: (error as Error).message,
    })
  }
}

async function advance(grant: Grant, grants: GrantService, clock: Clock, actor: SweepActor) {
  const expired = new Date(grant.expiresAt) <= clock.now()
  if (grant.status === 'revoking') return grants.finishRevocation(grant, actor)
  if (grant.status === 'scheduled') {
    const outcome = await grants.start(grant, actor)
    // Cancelled after this page was read: this run did nothing to it.
    return outcome.grant.status === 'cancelled' ? undefined : outcome
  }
  if (expired) {
    const outcome = await grants.startRevocation(grant, 'expired', actor)
    // Its end was moved past now (PATCH) after this page was read: nothing was due after all.
    return outcome.settled && MOVABLE_STATUSES.includes(outcome.grant.status) ? undefined : outcome
  }
  if (grant.status === 'provisioning') return grants.finishProvisioning(grant, actor)
  // An active grant not yet expired has nothing due (its clock and ours disagree by a moment): leave it.
  return undefined
}

/**
 * At most `limit` tasks under way at once; start() waits for a free place. A task that throws stops the pool:
 * the next start() or idle() throws its error (the tasks under way finish first in idle()).
 */
class WorkerPool {
  private readonly running = new Set<Promise<void>>()
  private readonly limit: number
  private failure: { error: unknown } | undefined

  constructor(limit: number) {
    this.limit = Math.max(1, limit)
  }

  async start(task: () => Promise<void>): Promise<void> {
    while (this.running.size >= this.limit) await Promise.race(this.running)
    if (this.failure) throw this.failure.error
    const running: Promise<void> = task()
      .catch((error: unknown) => {
        this.failure ??= { error }
      })
      .finally(() => this.running.delete(running))
    this.running.add(running)
  }

  /** Waits until no task is under way; never throws (a task's failure is kept for idle). */
  async settled(): Promise<void> {
    while (this.running.size > 0) await Promise.all(this.running)
  }

  /** Waits until no task is under way, then throws the first task's failure, if one failed. */
  async idle(): Promise<void> {
    await this.settled()
    if (this.failure) throw this.failure.error
  }
}
