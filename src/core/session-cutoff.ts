import { randomUUID } from 'node:crypto'
import type { AuditAction, AuditEvent } from './audit.ts'
import type { Clock } from './clock.ts'
import { type Cutoff, type CutoffPlan, parsePolicyDocument, planCutoffs } from './cutoff-policy.ts'
import { LeaseLostError } from './errors.ts'
import type { Grant } from './grant-model.ts'
import type {
  CutoffIntent,
  CutoffLedger,
  CutoffOutcome,
  CutoffPolicies,
  OutboxClaim,
  SessionsCutChange,
} from './ports.ts'

/**
 * How long after a service control policy changes we count on it being in force everywhere: AWS documents
 * that policy updates "might take a few minutes" to take effect (README, Session cut-off, cites the pages).
 * A cut grant's `accessEndsBy` is its cut time plus this.
 */
export const CUTOFF_PROPAGATION_MS = 5 * 60_000
/** How long one process may hold the right to rewrite the owned policies before another may take over. */
export const CUTOFF_LEASE_MS = 60_000
/** Lease time a holder must have left when a policy write leaves: longer than the adapter's retries of one call. */
const WRITE_MARGIN_MS = 30_000
/** A renewal older than this when its write leaves means the process was frozen or starved: it writes nothing. */
const STALE_RENEWAL_MS = 5_000
/** Intents handled per round, and rounds per drain: a drain is bounded; what is left waits for the next one. */
const INTENTS_PER_ROUND = 100
const MAX_ROUNDS = 5

interface CutoffActor {
  id: string
  requestId: string | null
  correlationId?: string | null
}

export interface SessionCutoffDeps {
  ledger: CutoffLedger
  policies: CutoffPolicies
  clock: Clock
  /** The permission set's session duration as Identity Center says now; undefined when it cannot be read. */
  sessionSeconds(permissionSet: string): Promise<number | undefined>
  /** The audit event of a decision about the grant, with its id and time. */
  eventFor(
    grant: Pick<Grant, 'id' | 'userName' | 'accountId' | 'permissionSet' | 'ticketId'>,
    action: AuditAction,
    actor: CutoffActor,
    detail: string,
  ): AuditEvent
  /** The messages an event owes subscribers (the outbox), to record with it; undefined when none. */
  outboxFor(event: AuditEvent): OutboxClaim | undefined
  /** Delivers recorded messages after the write, without waiting for them. */
  deliver(claim: OutboxClaim): void
  /** Publishes an operational error (best effort). */
  notify(subject: string, detail: Record<string, unknown>): Promise<void>
}

/**
 * Ends the live role sessions of grants whose access was removed, with a Deny in a service control policy the
 * service owns (JIT_SESSION_CUTOFF=scp). An ending records its intent first (`intend`, before the grant's end
 * is written); `drain` then writes the policies under one lease for the whole deployment and reports each
 * outcome on its grant. Whoever holds the lease handles every open intent, so concurrent endings share a
 * policy write; the sweep drains whatever a crash left.
 */
export class SessionCutoffs {
  private readonly deps: SessionCutoffDeps
  /**
   * Intents this process recorded that no round has handled yet: intents are found through a DynamoDB index,
   * which shows a new item only eventually, and the ending that recorded one should not wait for the sweep.
   */
  private readonly unseen = new Map<string, CutoffIntent>()

  constructor(deps: SessionCutoffDeps) {
    this.deps = deps
  }

  /**
   * Records that the grant's sessions are to be cut as of now, for as long as its permission set's sessions
   * last (the longer of the duration the grant was given and the one Identity Center states now). Throws
   * UpstreamUnavailableError when the intent cannot be recorded: the grant's end must then wait.
   */
  async intend(grant: Grant): Promise<void> {
    // Only account grants have role sessions to cut: a group grant's access ends with its membership.
    if (grant.accountId === null || grant.permissionSet === null || grant.permissionSetArn === null) return
    const cutAt = Math.ceil(this.deps.clock.now().getTime() / 1000) * 1000
    const ownSeconds = (Date.parse(grant.accessEndsBy) - Date.parse(grant.expiresAt)) / 1000
    const current = await this.deps.sessionSeconds(grant.permissionSet).catch(() => undefined)
    const { userName, accountId, permissionSet, permissionSetArn, ticketId, accessEndsBy, endedBy } = {
      ...grant,
      accountId: grant.accountId,
      permissionSet: grant.permissionSet,
      permissionSetArn: grant.permissionSetArn,
    }
    const intent: CutoffIntent = {
      grantId: grant.id,
      userId: grant.userId,
      accountId,
      permissionSet,
      cutAt: new Date(cutAt).toISOString().replace('.000Z', 'Z'),
      keepUntil: cutAt + Math.max(ownSeconds, current ?? 0) * 1000,
      grant: { userName, accountId, permissionSet, permissionSetArn, ticketId, accessEndsBy, endedBy },
      outcome: 'pending',
    }
    await this.deps.ledger.recordIntent(intent)
    this.unseen.set(grant.id, intent)
  }

  /**
   * Writes open intents into the policies, prunes statements whose sessions have all expired, and reports each
   * outcome on its grant. Returns at once when another process holds the lease: that one handles every intent
   * open when it looks (and it looks again after giving the lease up). Throws UpstreamUnavailableError when
   * DynamoDB or Organizations keep failing; the intents stay open for the next drain.
   */
  async drain(actor: CutoffActor): Promise<void> {
    for (let round = 0; round < MAX_ROUNDS; round++) {
      if (!(await this.hasWork())) return
      const owner = randomUUID()
      const now = this.deps.clock.now().getTime()
      if (!(await this.deps.ledger.acquireLease(owner, new Date(now), new Date(now + CUTOFF_LEASE_MS)))) return
      let nextPruneAt: number | null | undefined
      let progressed = false
      try {
        ;({ nextPruneAt, progressed } = await this.round(owner, actor))
      } finally {
        await this.deps.ledger.releaseLease(owner, nextPruneAt)
      }
      if (!progressed) return
    }
  }

  private async hasWork(): Promise<boolean> {
    if (this.unseen.size > 0 || (await this.deps.ledger.openIntents(1)).length > 0) return true
    return this.pruneDue()
  }

  private async pruneDue(): Promise<boolean> {
    const pruneAt = await this.deps.ledger.nextPruneAt()
    return pruneAt !== null && pruneAt <= this.deps.clock.now().getTime()
  }

  /** One round under the lease: the policies written if anything is to be added or pruned, then the reports. */
  private async round(
    owner: string,
    actor: CutoffActor,
  ): Promise<{ nextPruneAt: number | null | undefined; progressed: boolean }> {
    const open = await this.openIntents()
    const pending = open.filter((intent) => intent.outcome === 'pending')
    const unreachable = pending.filter((intent) => this.deps.policies.unreachableAccounts.includes(intent.accountId))
    const reachable = pending.filter((intent) => !unreachable.includes(intent))
    let nextPruneAt: number | null | undefined
    if (unreachable.length > 0) await this.recordOutcome(unreachable, 'unreachable')
    if (reachable.length > 0 || (await this.pruneDue())) {
      const plan = await this.rewritePolicies(owner, reachable)
      nextPruneAt = plan.inForce.length > 0 ? Math.min(...plan.inForce.map((cutoff) => cutoff.keepUntil)) : null
      for (const [outcome, cutoffs] of outcomesOf(reachable, plan)) await this.recordOutcome(cutoffs, outcome)
    }
    let reported = 0
    for (const intent of open) if (await this.report(intent, actor)) reported++
    return { nextPruneAt, progressed: pending.length > 0 || reported > 0 || nextPruneAt !== undefined }
  }

  /**
   * The open intents as the index shows them, and this process's own it may not show yet. An intent of ours that
   * another process has meanwhile reported is handled again, harmlessly: the same statement, a report refused.
   */
  private async openIntents(): Promise<CutoffIntent[]> {
    const listed = await this.deps.ledger.openIntents(INTENTS_PER_ROUND)
    const known = new Set(listed.map((intent) => intent.grantId))
    const ours = [...this.unseen.values()].filter((intent) => !known.has(intent.grantId)).slice(0, INTENTS_PER_ROUND)
    for (const intent of [...listed, ...ours]) this.unseen.delete(intent.grantId)
    return [...listed, ...ours.map((intent) => structuredClone(intent))]
  }

  private async recordOutcome(intents: CutoffIntent[], outcome: Exclude<CutoffOutcome, 'pending'>): Promise<void> {
    if (intents.length > 0)
      await this.deps.ledger.recordOutcome(
        intents.map((intent) => intent.grantId),
        outcome,
      )
    for (const intent of intents) intent.outcome = outcome
  }

  private async rewritePolicies(owner: string, additions: Cutoff[]): Promise<CutoffPlan> {
    const { policies, clock, ledger } = this.deps
    const owned = []
    for (const id of policies.policyIds) owned.push({ id, document: parsePolicyDocument(await policies.read(id)) })
    const plan = planCutoffs(owned, additions, clock.now().getTime(), policies.partition)
    for (const [id, document] of plan.writes) {
      const now = clock.now().getTime()
      // Real time, not the clock: a Lambda frozen while it renewed wakes with its lease perhaps gone, and its
      // whole-policy write would drop what the new holder wrote meanwhile.
      const renewing = Date.now()
      // Only the lease's holder writes: renewed first, or nothing is sent (another process may have taken over).
      await ledger.renewLease(owner, new Date(now), new Date(now + Math.max(CUTOFF_LEASE_MS, WRITE_MARGIN_MS)))
      if (Date.now() - renewing > STALE_RENEWAL_MS) throw new LeaseLostError()
      await policies.write(id, JSON.stringify(document))
    }
    return plan
  }

  /** Puts an intent's outcome on its grant, audited and published; false while the grant's end is not written yet. */
  private async report(intent: CutoffIntent, actor: CutoffActor): Promise<boolean> {
    if (intent.outcome === 'pending') return false
    const { action, detail, change } = describeOutcome(intent, this.deps.clock.now().getTime())
    const event = this.deps.eventFor({ ...intent.grant, id: intent.grantId }, action, actor, detail)
    const outbox = this.deps.outboxFor(event)
    if (!(await this.deps.ledger.report(intent, change, event, outbox))) return false
    if (outbox) this.deps.deliver(outbox)
    if (intent.outcome === 'rejected') {
      await this.deps.notify('session cut-off failed: the owned service control policies are full', {
        grantId: intent.grantId,
        accountId: intent.accountId,
      })
    }
    return true
  }
}

/** Which pending intents the plan cut, found already lapsed, or had no room for. */
function outcomesOf(pending: CutoffIntent[], plan: CutoffPlan): [Exclude<CutoffOutcome, 'pending'>, CutoffIntent[]][] {
  const rejected = pending.filter((intent) => plan.rejected.includes(intent))
  const lapsed = pending.filter((intent) => plan.lapsed.includes(intent))
  const cut = pending.filter((intent) => !rejected.includes(intent) && !lapsed.includes(intent))
  return [
    ['cut', cut],
    ['lapsed', lapsed],
    ['rejected', rejected],
  ]
}

/** `writtenBy`: when the policy was written at the latest (a cut written late takes effect late). */
function describeOutcome(
  intent: CutoffIntent,
  writtenBy: number,
): { action: AuditAction; detail: string; change: SessionsCutChange } {
  const keepUntil = new Date(intent.keepUntil).toISOString()
  const honest = intent.grant.accessEndsBy
  const earlier = (time: string) => (Date.parse(time) < Date.parse(honest) ? time : honest)
  if (intent.outcome === 'cut') {
    const effective = new Date(Math.max(Date.parse(intent.cutAt), writtenBy) + CUTOFF_PROPAGATION_MS).toISOString()
    return {
      action: 'grant.sessions_cut',
      detail: `role sessions issued before ${intent.cutAt} are denied by a service control policy (in force within ${CUTOFF_PROPAGATION_MS / 60_000} minutes); the statement is removed after ${keepUntil}`,
      change: { sessionsCutAt: intent.cutAt, accessEndsBy: earlier(effective) },
    }
  }
  if (intent.outcome === 'lapsed') {
    return {
      action: 'grant.sessions_cut',
      detail: `no statement was needed: every role session issued before ${intent.cutAt} had expired by ${keepUntil}, before the policy could be written`,
      change: { sessionsCutAt: null, accessEndsBy: earlier(keepUntil) },
    }
  }
  if (intent.outcome === 'unreachable') {
    return {
      action: 'grant.cutoff_failed',
      detail: `service control policies never apply to the organization's management account: role sessions issued before ${intent.cutAt} stay valid until they expire, by ${honest}`,
      change: null,
    }
  }
  return {
    action: 'grant.cutoff_failed',
    detail: `no owned service control policy had room for the statement (5,120 characters each; earlier cut-offs are kept): role sessions issued before ${intent.cutAt} stay valid until they expire, by ${honest}`,
    change: null,
  }
}
