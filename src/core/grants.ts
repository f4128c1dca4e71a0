import { randomUUID } from 'node:crypto'
import type { AuditAction, AuditEvent } from './audit.ts'
import type { Clock } from './clock.ts'
import { COVERAGE_CHECK_INTERVAL_MS, CoverageReconciler, LEASE_MS, type CoverageState, type ReconcileOptions } from './coverage.ts'
import { answerBy, ensureTimeFor, withDeadline } from './deadline.ts'
import {
  DeadlineExceededError,
  DurationTooLongError,
  GrantNotFoundError,
  PermissionSetNotFoundError,
  PolicyDeniedError,
  ProvisioningFailedError,
  UpstreamUnavailableError,
  UserNotFoundError,
} from './errors.ts'
import { targetOf, type AssignmentTarget, type EndReason, type Grant, type GrantStatus } from './grant.ts'
import { newId } from './ids.ts'
import { evaluatePolicy, mightAllow, type Policy } from './policy.ts'
import type { AuditDraft, AuditLog, CoverageWrite, CutoffLedger, CutoffPolicies, Directory, GrantFilter, GrantStore, GrantTransition, IdentityCenter, Notifier, Page, PageRequest } from './ports.ts'
import { SessionCutoffs } from './session-cutoff.ts'

export interface GrantRequest {
  userName: string
  accountId: string
  permissionSet: string
  durationMinutes: number
  ticketId: string
  justification?: string | undefined
}

/** Who is acting, for the audit log. */
export interface Actor {
  id: string
  requestId: string | null
  /** The caller's x-request-id, when it sent a valid one (the sweep has none). */
  correlationId?: string | null
  /** The caller writes session cut-offs itself once it is done (the sweep, for all its grants at once). */
  defersSessionCutoffs?: boolean
}

export interface GrantServiceDeps {
  store: GrantStore
  auditLog: AuditLog
  identityCenter: IdentityCenter
  directory: Directory
  notifier: Notifier
  clock: Clock
  policy: Policy
  maxDurationMinutes: number
  /**
   * How long a request waits for another process's change to the same assignment before answering that it
   * is still under way: about as long as that process itself waits for Identity Center.
   */
  leaseWaitMs?: number | undefined
  /** Cut live role sessions when a grant's access is removed (JIT_SESSION_CUTOFF=scp); unset, nothing is cut. */
  sessionCutoff?: { ledger: CutoffLedger; policies: CutoffPolicies } | undefined
}

/** Decisions published to SNS subscribers; requests and revoke intents stay in the audit log only. */
const ANNOUNCED_ACTIONS = new Set<AuditAction>(['grant.activated', 'grant.revoked', 'grant.expired', 'grant.failed', 'grant.denied', 'grant.drift_detected', 'grant.sessions_cut', 'grant.cutoff_failed'])

/** How long a grant may stay 'provisioning' before the sweep checks on it (the request itself may still be running). */
export const PROVISIONING_GRACE_MS = 60_000

export type GrantOutcome = { grant: Grant; settled: boolean }

/**
 * The grant lifecycle: provisioning → active → revoking → expired | revoked, or → failed.
 * Every change of state is written, with its audit event, before the Identity Center call it announces.
 */
export class GrantService {
  private readonly reconciler: CoverageReconciler

  private readonly deps: GrantServiceDeps
  private readonly cutoffs: SessionCutoffs | undefined

  constructor(deps: GrantServiceDeps) {
    this.deps = deps
    this.reconciler = new CoverageReconciler(deps.store, deps.identityCenter, deps.clock, { leaseWaitMs: deps.leaseWaitMs })
    this.cutoffs = deps.sessionCutoff && new SessionCutoffs({
      ...deps.sessionCutoff,
      clock: deps.clock,
      sessionSeconds: async (name) => (await deps.identityCenter.findPermissionSet(name))?.sessionDurationSeconds,
      eventFor: (grant, action, actor, detail) => this.event(this.grantDraft(grant, action, actor, detail)),
      announce: (event) => this.announce(event),
      notify: (subject, detail) => this.notify(subject, detail),
    })
  }

  /**
   * Decides and records a grant, then provisions it. `options.id` fixes the grant's id (an idempotent
   * request): if a grant with that id was already recorded by an earlier attempt, that grant is resumed
   * instead of a second one being made.
   */
  async request(input: GrantRequest, actor: Actor, options: { id?: string | undefined; deadline?: number | undefined } = {}): Promise<GrantOutcome> {
    let recorded: Grant | undefined
    return this.within(options.deadline, () => this.decideAndProvision(input, actor, options.id, (grant) => (recorded = grant)), () => recorded)
  }

  /**
   * Runs a request's work so that it answers by `deadline` (epoch ms, real time) whatever AWS does: once the
   * grant is recorded, with the grant as it was recorded (not settled: the sweep finishes it); before that,
   * with DeadlineExceededError (nothing was done, the caller may retry).
   */
  private async within(deadline: number | undefined, work: () => Promise<GrantOutcome>, recorded: () => Grant | undefined): Promise<GrantOutcome> {
    const unfinished = (): GrantOutcome => {
      const grant = recorded()
      if (!grant) throw new DeadlineExceededError()
      return { grant, settled: false }
    }
    try {
      const running = withDeadline(deadline, work)
      return deadline === undefined ? await running : await answerBy(deadline, running, unfinished)
    } catch (error) {
      if (error instanceof DeadlineExceededError) return unfinished()
      throw error
    }
  }

  private async decideAndProvision(input: GrantRequest, actor: Actor, id: string | undefined, onRecorded: (grant: Grant) => void): Promise<GrantOutcome> {
    const { deps } = this
    if (id) {
      const earlier = await deps.store.getGrant(id)
      if (earlier) {
        onRecorded(earlier)
        return this.resume(earlier, actor)
      }
    }
    if (input.durationMinutes > deps.maxDurationMinutes) {
      throw new DurationTooLongError(input.durationMinutes, deps.maxDurationMinutes)
    }
    // As requested until the directory answers; then as the directory spells it, for every event after.
    let userName = input.userName
    const draft = (action: AuditAction, detail: string, grantId: string | null = null): AuditDraft => ({
      action,
      actor: actor.id,
      grantId,
      userName,
      accountId: input.accountId,
      permissionSet: input.permissionSet,
      ticketId: input.ticketId,
      detail,
      requestId: actor.requestId,
      correlationId: actor.correlationId ?? null,
    })

    const user = await deps.directory.findUser(input.userName)
    if (!user) {
      const error = new UserNotFoundError(input.userName)
      await this.appendAudit(draft('grant.denied', error.message))
      throw error
    }
    userName = user.userName
    // The policy names users as the directory does, so it is asked about the directory's spelling too.
    const request = { ...input, userName }
    const permissionSet = await deps.identityCenter.findPermissionSet(input.permissionSet)
    if (!permissionSet) {
      const error = new PermissionSetNotFoundError(input.permissionSet)
      await this.appendAudit(draft('grant.denied', error.message))
      throw error
    }
    // Whether the assignment already exists is asked beside the policy's group lookup, so that the grant's
    // record can carry the intent to create it. Not for a request no rule could allow: Identity Center's
    // quota is shared with the sweep, and denied requests should not spend it (only those that fail on group
    // membership do, one read each).
    const target: AssignmentTarget = { userId: user.id, accountId: input.accountId, permissionSetArn: permissionSet.arn }
    const earlyLook = mightAllow(deps.policy, request) ? deps.identityCenter.assignmentExists(target).catch(() => undefined) : undefined
    const decision = await evaluatePolicy(deps.policy, request, () => deps.directory.groupIdsOf(user.id))
    if (!decision.allowed) {
      await this.appendAudit(draft('grant.denied', `${decision.reason} (failed condition: ${decision.failedCondition})`))
      throw new PolicyDeniedError(decision.reason, decision.failedCondition)
    }
    // Before the clock is read: under throttling the look may take seconds, which the lease must not lose.
    const noAssignment = (await earlyLook) === false

    const now = deps.clock.now()
    const expiresAt = new Date(now.getTime() + input.durationMinutes * 60_000)
    const grant: Grant = {
      id: id ?? newId(deps.clock),
      status: 'provisioning',
      userName: user.userName,
      userId: user.id,
      accountId: input.accountId,
      permissionSet: permissionSet.name,
      permissionSetArn: permissionSet.arn,
      ticketId: input.ticketId,
      justification: input.justification ?? null,
      requestedBy: actor.id,
      createdAt: now.toISOString(),
      expiresAt: expiresAt.toISOString(),
      accessEndsBy: new Date(expiresAt.getTime() + permissionSet.sessionDurationSeconds * 1000).toISOString(),
      endedAt: null,
      endedBy: null,
      endReason: null,
      coveredBy: null,
      failureReason: null,
      sessionsCutAt: null,
    }
    const dueAt = new Date(Math.min(now.getTime() + PROVISIONING_GRACE_MS, expiresAt.getTime()))
    // The common case costs least: with no assignment found, the record takes the assignment's lease and
    // records the intent to create it, so the creation is the next call.
    const lease = { owner: randomUUID(), until: new Date(now.getTime() + LEASE_MS), intendCreation: noAssignment }
    // A request already answered 503 at its deadline must not record a grant afterwards.
    ensureTimeFor(0)
    const created = await deps.store.createGrant(
      grant,
      dueAt,
      this.event(draft('grant.requested', `${input.durationMinutes} minutes allowed by rule '${decision.rule}'`, grant.id)),
      lease,
    )
    if (created === 'exists') {
      const earlier = await this.get(grant.id)
      onRecorded(earlier)
      return this.resume(earlier, actor)
    }
    onRecorded(grant)
    return this.settleProvisioning(grant, actor, { leaseOwner: lease.owner, leaseUntil: lease.until, earlyLook, creationIntended: created === 'creation-intended' })
  }

  /** Carries on with a grant an earlier attempt recorded; a grant past provisioning answers as it is. */
  private resume(grant: Grant, actor: Actor): Promise<GrantOutcome> {
    if (grant.status === 'provisioning') return this.settleProvisioning(grant, actor)
    return Promise.resolve({ grant, settled: grant.status !== 'revoking' })
  }

  async get(id: string): Promise<Grant> {
    const grant = await this.deps.store.getGrant(id)
    if (!grant) throw new GrantNotFoundError(id)
    return grant
  }

  list(filter: GrantFilter, page: PageRequest): Promise<Page<Grant>> {
    return this.deps.store.listGrants(filter, page)
  }

  /**
   * Ends a grant early. Ending one that has already ended changes nothing and answers its final state. With
   * a deadline, answers by then: 'revoking' once that is recorded (the sweep finishes it).
   */
  async end(id: string, actor: Actor, options: { deadline?: number | undefined } = {}): Promise<GrantOutcome> {
    let revoking: Grant | undefined
    return this.within(options.deadline, async () => this.beginEnding(await this.get(id), 'revoked', actor, undefined, (grant) => (revoking = grant)), () => revoking)
  }

  /**
   * Moves a provisioning or active grant to 'revoking' (the intent, written before any call to Identity
   * Center) and then removes its access; a grant already revoking is finished.
   */
  async beginEnding(grant: Grant, reason: EndReason, actor: Actor, why?: string, onRecorded?: (grant: Grant) => void): Promise<GrantOutcome> {
    let current = grant
    for (let attempt = 0; attempt < 3; attempt++) {
      if (current.status === 'revoking') {
        onRecorded?.(current)
        return this.settleEnding(current, actor)
      }
      if (!['provisioning', 'active'].includes(current.status)) return { grant: current, settled: true }
      const now = this.deps.clock.now()
      const moved = await this.transition({
        grant: current,
        from: [current.status],
        to: 'revoking',
        dueAt: now,
        set: { endReason: reason, endedBy: actor.id },
        releaseHold: true,
        event: this.event(this.grantDraft(current, 'grant.revoke_requested', actor, why ?? (reason === 'expired' ? 'expiry reached' : 'ended early'))),
      })
      if (moved) {
        onRecorded?.(moved)
        return this.settleEnding(moved, actor)
      }
      current = await this.get(current.id)
    }
    return { grant: current, settled: false }
  }

  /**
   * The periodic check of one assignment, in both directions. First any unfinished change is finished. Then
   * an assignment our grants rely on must still exist: if it was removed outside jit-access, the grants it
   * carried are ended (recorded as drift and alerted) rather than the access silently restored, since someone
   * removed it on purpose. And access nobody holds must not be there: an assignment of ours that appeared after
   * its grants ended (a creation AWS accepted whose answer was lost) is removed, recorded as drift and alerted.
   */
  async checkAssignment(target: AssignmentTarget, actor: Actor): Promise<{ drifted: number }> {
    const { store, identityCenter, clock } = this.deps
    let drifted = 0
    const state = await this.reconciler.reconcile(target)
    if (state.kind === 'present' && !(await identityCenter.assignmentExists(target))) {
      for (const id of (await store.getCoverage(target))?.holders ?? []) {
        const grant = await store.getGrant(id)
        if (!grant || (grant.status !== 'active' && grant.status !== 'provisioning')) continue
        drifted++
        const why = 'the account assignment was removed outside jit-access'
        await this.appendAudit(this.grantDraft(grant, 'grant.drift_detected', actor, `${why}; the grant is ended rather than the access restored`))
        await this.beginEnding(grant, 'revoked', actor, why)
      }
    }
    if (state.kind === 'absent') {
      // Recorded before the removal, as every side effect is: the event is the intent.
      const orphan = await this.reconciler.removeOrphan(target, async (coverage) => {
        const grant = coverage.lastGrantId ? await store.getGrant(coverage.lastGrantId) : undefined
        const detail = 'an account assignment jit-access asked for appeared after every grant holding it had ended ' +
          '(Identity Center accepted the creation but its answer was lost); it is removed unless a new grant for the same access holds it first'
        await this.appendAudit(grant
          ? this.grantDraft(grant, 'grant.drift_detected', actor, detail)
          : { action: 'grant.drift_detected', actor: actor.id, grantId: null, userName: `(user id ${target.userId})`, accountId: target.accountId, permissionSet: target.permissionSetArn, ticketId: '(none)', detail, requestId: actor.requestId, correlationId: actor.correlationId ?? null })
      })
      if (orphan) drifted++
    }
    // A record kept only to watch for such an assignment is due again at once, so the next sweep looks (a
    // minute ahead would be after that sweep's start, and skip it); others every few minutes.
    const coverage = await store.getCoverage(target)
    if (coverage) {
      const interval = this.reconciler.isWatched(coverage) ? 0 : COVERAGE_CHECK_INTERVAL_MS
      await store.scheduleCoverageCheck(target, new Date(clock.now().getTime() + interval))
    }
    return { drifted }
  }

  /** Finishes a grant that is still provisioning: active once the assignment is in place, failed if AWS refused it. */
  async settleProvisioning(grant: Grant, actor: Actor, headStart: Pick<ReconcileOptions, 'leaseOwner' | 'leaseUntil' | 'earlyLook' | 'creationIntended'> = {}): Promise<GrantOutcome> {
    let activated: Grant | undefined
    const activate = (external: boolean, coverage?: CoverageWrite) => this.transition({
      grant,
      from: ['provisioning'],
      to: 'active',
      dueAt: new Date(grant.expiresAt),
      set: { coveredBy: external ? 'pre-existing' : 'jit' },
      releaseHold: false,
      coverage,
      event: this.event(this.grantDraft(grant, 'grant.activated', actor, external
        ? 'a permanent assignment already grants this access; it will be left in place when the grant ends'
        : 'account assignment in place')),
    })
    const state = await this.reconcileFor(grant, {
      ...headStart,
      lookAhead: true,
      // Only a creation's last write belongs with the activation (its holders gone, the reconciler may go on to remove it).
      finish: async (coverage) => coverage.kind === 'assigned' && (activated = await activate(false, coverage)) !== undefined,
    })
    if (state.kind === 'present') {
      activated ??= await activate(state.external)
      return this.resolved(grant.id, activated)
    }
    if (state.kind === 'failed') {
      const failed = await this.transition({
        grant,
        from: ['provisioning'],
        to: 'failed',
        dueAt: null,
        set: { failureReason: state.reason, endedAt: this.deps.clock.now().toISOString() },
        releaseHold: true,
        event: this.event(this.grantDraft(grant, 'grant.failed', actor, `Identity Center refused the assignment: ${state.reason}`)),
      })
      if (failed) throw new ProvisioningFailedError(grant.id, state.reason)
      return this.resolved(grant.id, failed)
    }
    return { grant, settled: false }
  }

  /** Finishes a grant in 'revoking' once its access is gone or is provided by something else. */
  async settleEnding(grant: Grant, actor: Actor): Promise<GrantOutcome> {
    const reason: EndReason = grant.endReason ?? 'revoked'
    let ended: Grant | undefined
    let accessRemoved = false
    const end = async (detail: string, coverage?: CoverageWrite, removal = false) => {
      // Only when the access really ends (not kept by another grant or a permanent assignment): intended before the end is written.
      if (removal && this.cutoffs) await this.cutoffs.intend(grant)
      accessRemoved = removal
      return this.endTransition(grant, reason, actor, detail, coverage)
    }
    const removed = 'account assignment removed'
    // Only a removal's last write belongs with the end: a grant that arrived meanwhile may have the reconciler create it again.
    const state = await this.reconcileFor(grant, { finish: async (coverage) => coverage.kind === 'removed' && (ended = await end(removed, coverage, true)) !== undefined })
    if (state.kind === 'pending' || state.kind === 'failed') return { grant, settled: false }
    ended ??= await end(state.kind === 'absent'
      ? state.external
        ? 'permanent assignment left in place'
        : state.watching
          ? 'no account assignment showed up; Identity Center is watched for an hour, and one that appears is removed'
          : removed
      : state.external
        ? 'permanent assignment left in place'
        : 'account assignment kept: another active grant still covers it', undefined, accessEnds(grant, state))
    const outcome = await this.resolved(grant.id, ended)
    return accessRemoved ? this.cutSessions(outcome, actor) : outcome
  }

  /**
   * Writes the session cut-offs intended so far (this grant's, and any other open one) unless the caller does
   * that itself later; what cannot be written now, the sweep writes. Answers the grant as it then is.
   */
  private async cutSessions(outcome: GrantOutcome, actor: Actor): Promise<GrantOutcome> {
    if (!this.cutoffs || actor.defersSessionCutoffs || !outcome.settled) return outcome
    try {
      await this.cutoffs.drain(actor)
    } catch (error) {
      await this.notify('session cut-off not written yet; the sweep retries', { grantId: outcome.grant.id, error: (error as Error).message })
      return outcome
    }
    return { grant: await this.get(outcome.grant.id), settled: true }
  }

  /** The sweep's step: writes every session cut-off left open (by a crash, a failure, or deferred by the sweep). */
  async finishSessionCutoffs(actor: Actor): Promise<void> {
    await this.cutoffs?.drain(actor)
  }

  private endTransition(grant: Grant, reason: EndReason, actor: Actor, detail: string, coverage?: CoverageWrite) {
    return this.transition({
      grant,
      from: ['revoking'],
      to: reason,
      dueAt: null,
      set: { endedAt: this.deps.clock.now().toISOString() },
      releaseHold: true,
      coverage,
      event: this.event({ ...this.grantDraft(grant, reason === 'expired' ? 'grant.expired' : 'grant.revoked', actor, detail), actor: grant.endedBy ?? actor.id }),
    })
  }

  private async reconcileFor(grant: Grant, options: ReconcileOptions = {}): Promise<CoverageState> {
    try {
      return await this.reconciler.reconcile(targetOf(grant), options)
    } catch (error) {
      // A deadline is the request's limit, not an AWS failure worth an alert.
      if (error instanceof UpstreamUnavailableError && !(error instanceof DeadlineExceededError)) {
        error.extensions.grantId = grant.id
        await this.notify('AWS call failed', { grantId: grant.id, status: grant.status, error: error.message })
      }
      throw error
    }
  }

  /** After a conditional transition: the updated grant, or (if someone else moved it first) what it is now. */
  private async resolved(id: string, updated: Grant | undefined): Promise<GrantOutcome> {
    const grant = updated ?? (await this.get(id))
    return { grant, settled: !(['provisioning', 'revoking'] as GrantStatus[]).includes(grant.status) }
  }

  private grantDraft(grant: Pick<Grant, 'id' | 'userName' | 'accountId' | 'permissionSet' | 'ticketId'>, action: AuditAction, actor: Actor, detail: string): AuditDraft {
    return {
      action,
      actor: actor.id,
      grantId: grant.id,
      userName: grant.userName,
      accountId: grant.accountId,
      permissionSet: grant.permissionSet,
      ticketId: grant.ticketId,
      detail,
      requestId: actor.requestId,
      correlationId: actor.correlationId ?? null,
    }
  }

  private event(draft: AuditDraft) {
    return { ...draft, id: newId(this.deps.clock), at: this.deps.clock.now().toISOString() }
  }

  private async appendAudit(draft: AuditDraft): Promise<void> {
    const event = this.event(draft)
    await this.deps.auditLog.append(event)
    await this.announce(event)
  }

  /** A state change with its audit event; once it is written, subscribers hear of it. */
  private async transition(change: GrantTransition): Promise<Grant | undefined> {
    const moved = await this.deps.store.transition(change)
    if (moved) await this.announce(change.event)
    return moved
  }

  private async announce(event: AuditEvent): Promise<void> {
    if (!ANNOUNCED_ACTIONS.has(event.action)) return
    try {
      await this.deps.notifier.lifecycle(event)
    } catch {
      // The notifier logs its own failures; a lost message must never fail or undo a grant.
    }
  }

  async notify(subject: string, detail: Record<string, unknown>): Promise<void> {
    try {
      await this.deps.notifier.error(subject, detail)
    } catch {
      // As above: alerting is best effort.
    }
  }
}

/** The grant's access really ends: no assignment is left for it, and no permanent one ever gave it. */
function accessEnds(grant: Grant, state: CoverageState): boolean {
  return state.kind === 'absent' && state.external !== true && grant.coveredBy !== 'pre-existing'
}
