/*
 * The grant lifecycle, call by call. Every change of state is written with its audit event before the
 * Identity Center call it announces; whatever is left unfinished, the sweep carries on from the record.
 *
 * request  POST /grants (http/routes/grants.ts) → GrantService.request → requestWork → decideRequest
 *          (directory, permission set, policy, ticket) → buildGrant → recordRequested (GrantStore.createGrant:
 *          the grant, its hold on the assignment, the lease, the intent to create) → provision →
 *          CoverageReconciler.reconcile → IdentityCenter.createAssignment → activate (or fail)
 * revoke   DELETE /grants/{id} → GrantService.revoke → startRevocation (GrantStore.transition to 'revoking')
 *          → finishRevocation → CoverageReconciler.reconcile → IdentityCenter.deleteAssignment → recordEnd
 * sweep    POST /revocations (http/routes/sweep.ts) → sweep (core/sweep.ts) → for each due grant:
 *          finishRevocation, start (a scheduled grant), startRevocation with 'expired', or finishProvisioning;
 *          for each due assignment: checkAssignment → CoverageReconciler.reconcile (and removeOrphan)
 */
import { randomUUID } from 'node:crypto'
import type { AuditAction, AuditEvent } from './audit.ts'
import type { Clock } from './clock.ts'
import {
  COVERAGE_CHECK_INTERVAL_MS,
  CoverageReconciler,
  type CoverageState,
  type Finish,
  LEASE_MS,
  type LeaseTakenWithGrant,
  type ReconcileOptions,
} from './coverage.ts'
import { answerBy, ensureTimeFor, withDeadline } from './deadline.ts'
import {
  ConcurrentChangeError,
  DeadlineExceededError,
  DomainError,
  DurationTooLongError,
  GrantAlreadyEndedError,
  GrantNotFoundError,
  GroupNotFoundError,
  InvalidTimeError,
  PermissionSetNotFoundError,
  PolicyDeniedError,
  ProvisioningFailedError,
  TicketNotApprovedError,
  UpstreamUnavailableError,
  UserNotFoundError,
} from './errors.ts'
import {
  type AccessTarget,
  type EndReason,
  type Grant,
  type GrantStatus,
  MOVABLE_STATUSES,
  targetOf,
} from './grant-model.ts'
import { newId } from './ids.ts'
import type { Outbox } from './outbox.ts'
import { type AccessRequest, evaluatePolicy, mightAllow, type Policy, type PolicyDecision } from './policy.ts'
import type {
  AccountDirectory,
  AuditDraft,
  AuditLog,
  CoverageWrite,
  CutoffLedger,
  CutoffPolicies,
  Directory,
  DirectoryUser,
  GrantFilter,
  GrantStore,
  GrantTransition,
  IdentityCenter,
  Notifier,
  Page,
  PageRequest,
  TicketApproval,
  TicketCheck,
} from './ports.ts'
import { SessionCutoffs } from './session-cutoff.ts'

/**
 * An account grant names accountId and permissionSet; a group grant names groupName (an Identity Store group the
 * user is added to for the duration) instead. The HTTP edge refuses any other mix.
 */
export interface GrantRequest {
  userName: string
  accountId?: string | undefined
  permissionSet?: string | undefined
  groupName?: string | undefined
  durationMinutes: number
  ticketId: string
  justification?: string | undefined
  /** A start in the future (RFC 3339): the grant is recorded 'scheduled' and started by the sweep then. */
  startsAt?: string | undefined
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
  /** The organization (AWS Organizations), asked only when a policy rule names an OU, the root or account tags. */
  accounts?: AccountDirectory | undefined
  notifier: Notifier
  /** Asked whether the ticket approves the access (ServiceNow approval verification); unset, tickets are not checked. */
  ticketApproval?: TicketApproval | undefined
  /** Where the messages audit events owe subscribers go (SNS, the ticket's work notes); none without it. */
  outbox?: Outbox | undefined
  clock: Clock
  policy: Policy
  maxDurationMinutes: number
  /** How far ahead a grant may be scheduled (default 14 days); 0 refuses every startsAt. */
  maxLeadDays?: number | undefined
  /**
   * How long a request waits for another process's change to the same assignment before answering that it
   * is still under way: about as long as that process itself waits for Identity Center.
   */
  leaseWaitMs?: number | undefined
  /** Cut live role sessions when a grant's access is removed (JIT_SESSION_CUTOFF=scp); unset, nothing is cut. */
  sessionCutoff?: { ledger: CutoffLedger; policies: CutoffPolicies } | undefined
  /**
   * Shown every grant as this process has just written it (created, started, activated, its end moved, ended), so
   * that a due timer can be armed or cleared (see DueTimers). Must not throw.
   */
  onWritten?: ((grant: Grant) => void) | undefined
}

/** How long a grant may stay 'provisioning' before the sweep checks on it (the request itself may still be running). */
export const PROVISIONING_GRACE_MS = 60_000
export const DEFAULT_MAX_LEAD_DAYS = 14
const MINUTE_MS = 60_000
const DAY_MS = 86_400_000
/** How often a change that found the grant moved under it reads it again and decides anew. */
const CHANGE_ATTEMPTS = 3

export type GrantOutcome = { grant: Grant; settled: boolean }

/** What a request would be answered, decided without recording anything (GrantService.dryRun). */
export interface DryRunVerdict {
  allowed: boolean
  /** The rule that allows it, or (refused) the rule that came closest; null when no rule was reached. */
  rule: string | null
  /** Refused: the condition that failed (as POLICY_DENIED or TICKET_NOT_APPROVED would name it); null when allowed. */
  failedCondition: string | null
  detail: string
  policyVersion: string
}

/** Carries a dry run's refusal out of decide, which throws every refusal. */
class DryRunRefusal extends Error {
  readonly refusal: DomainError
  readonly rule: string | undefined

  constructor(refusal: DomainError, rule: string | undefined) {
    super(refusal.message)
    this.refusal = refusal
    this.rule = rule
  }
}

/**
 * The grant lifecycle: provisioning → active → revoking → expired | revoked, or → failed. A grant asked for a
 * later start waits as scheduled, and then starts (→ provisioning), is cancelled, or is denied at its start.
 * Every change of state is written, with its audit event, before the Identity Center call it announces.
 */
export class GrantService {
  private readonly reconciler: CoverageReconciler

  private readonly deps: GrantServiceDeps
  private readonly cutoffs: SessionCutoffs | undefined

  constructor(deps: GrantServiceDeps) {
    this.deps = deps
    this.reconciler = new CoverageReconciler(deps.store, deps.identityCenter, deps.clock, {
      leaseWaitMs: deps.leaseWaitMs,
    })
    this.cutoffs =
      deps.sessionCutoff &&
      new SessionCutoffs({
        ...deps.sessionCutoff,
        clock: deps.clock,
        sessionSeconds: async (name) => (await deps.identityCenter.findPermissionSet(name))?.sessionDurationSeconds,
        eventFor: (grant, action, actor, detail) => this.event(this.grantDraft(grant, action, actor, detail)),
        outboxFor: (event) => this.deps.outbox?.claimFor(event),
        deliver: (claim) => this.deps.outbox?.deliverSoon(claim),
        notify: (subject, detail) => this.notify(subject, detail),
      })
  }

  /**
   * Decides and records a grant, then provisions it. `options.id` fixes the grant's id (an idempotent
   * request): if a grant with that id was already recorded by an earlier attempt, that grant is resumed
   * instead of a second one being made. Answers the grant, settled unless Identity Center has not finished.
   * Throws the refusal, audited first (UserNotFoundError, PermissionSetNotFoundError, PolicyDeniedError,
   * TicketNotApprovedError), DurationTooLongError and InvalidTimeError for input no grant can have,
   * ProvisioningFailedError when Identity Center refused the assignment, UpstreamUnavailableError when AWS
   * fails, and DeadlineExceededError when nothing was recorded by the deadline.
   */
  async request(
    input: GrantRequest,
    actor: Actor,
    options: { id?: string | undefined; deadline?: number | undefined } = {},
  ): Promise<GrantOutcome> {
    let recorded: Grant | undefined
    const onRecorded = (grant: Grant): void => {
      recorded = grant
    }
    return this.within(
      options.deadline,
      () => this.requestWork(input, actor, options.id, onRecorded),
      () => recorded,
    )
  }

  /**
   * Runs a request's work so that it answers by `deadline` (epoch ms, real time) whatever AWS does: once the
   * grant is recorded, with the grant as it was recorded (not settled: the sweep finishes it); before that,
   * with DeadlineExceededError (nothing was done, the caller may retry).
   */
  private async within(
    deadline: number | undefined,
    work: () => Promise<GrantOutcome>,
    recorded: () => Grant | undefined,
  ): Promise<GrantOutcome> {
    const unfinished = (): GrantOutcome => {
      const grant = recorded()
      if (!grant) throw new DeadlineExceededError()
      return { grant, settled: false }
    }
    try {
      return await answerWithin(deadline, work, unfinished)
    } catch (error) {
      if (error instanceof DeadlineExceededError) return unfinished()
      throw error
    }
  }

  /**
   * A request's work: an earlier attempt's grant is resumed; otherwise the request is decided, its grant built,
   * then recorded (with the intent to create the assignment when a look found none) and provisioned.
   */
  private async requestWork(
    input: GrantRequest,
    actor: Actor,
    id: string | undefined,
    onRecorded: (grant: Grant) => void,
  ): Promise<GrantOutcome> {
    const earlier = id ? await this.deps.store.getGrant(id) : undefined
    if (earlier) {
      onRecorded(earlier)
      return this.resume(earlier, actor)
    }
    const decided = await this.decideRequest(input, actor)
    // Before the clock is read: under throttling the look may take seconds, which the lease must not lose.
    const noAssignment = (await decided.look) === false
    const grant = this.buildGrant(input, actor, id ?? newId(this.deps.clock), decided)
    const allowed = allowedBy(decided.decision, this.deps.policy)
    const [action, detail] = decided.startsAt
      ? (['grant.scheduled', `${input.durationMinutes} minutes from ${grant.startsAt} ${allowed}`] as const)
      : (['grant.requested', `${input.durationMinutes} minutes ${allowed}`] as const)
    const event = this.event(requestDraft(input, actor, grant.userName, action, detail, grant.id))
    return decided.startsAt
      ? this.recordScheduled(grant, event, actor, onRecorded)
      : this.recordRequested(grant, event, actor, { look: decided.look, noAssignment }, onRecorded)
  }

  /**
   * A new request decided (see decide): the service maximum and the start first, then the directory, the policy
   * and the ticket; each refusal is audited (grant.denied) and thrown. Whether the assignment already exists is
   * asked beside the policy's group lookup, so that the grant's record can carry the intent to create it. Not
   * for a request no rule could allow: Identity Center's quota is shared with the sweep, and denied requests
   * should not spend it (only those that fail on group membership do, one read each). Nor for a scheduled
   * grant, which holds nothing until it starts.
   */
  private async decideRequest(input: GrantRequest, actor: Actor): Promise<RequestDecision> {
    const { deps } = this
    if (input.durationMinutes > deps.maxDurationMinutes) {
      throw new DurationTooLongError(input.durationMinutes, deps.maxDurationMinutes)
    }
    const startsAt = input.startsAt === undefined ? undefined : this.scheduledStart(input.startsAt)
    let look: Promise<boolean | undefined> | undefined
    const decided = await this.decide(input, startsAt, {
      deny: async (userName, detail, error) => {
        await this.appendAudit(requestDraft(input, actor, userName, 'grant.denied', detail))
        throw error
      },
      beforePolicy: (target, request) => {
        look =
          !startsAt && mightAllow(deps.policy, request)
            ? deps.identityCenter.assignmentExists(target).catch(() => undefined)
            : undefined
      },
    })
    return { ...decided, startsAt, look }
  }

  /** The grant a decided request stands for, as it is recorded: 'scheduled' for a later start, else 'provisioning'. */
  private buildGrant(input: GrantRequest, actor: Actor, id: string, decided: RequestDecision): Grant {
    const { user, access, startsAt } = decided
    const now = this.deps.clock.now()
    const start = startsAt ?? now
    const expiresAt = new Date(start.getTime() + input.durationMinutes * MINUTE_MS)
    return {
      id,
      status: startsAt ? 'scheduled' : 'provisioning',
      userName: user.userName,
      userId: user.id,
      ...grantedFields(access),
      ticketId: input.ticketId,
      justification: input.justification ?? null,
      requestedBy: actor.id,
      createdAt: now.toISOString(),
      startsAt: start.toISOString(),
      expiresAt: expiresAt.toISOString(),
      accessEndsBy: new Date(expiresAt.getTime() + access.sessionSeconds * 1000).toISOString(),
      endedAt: null,
      endedBy: null,
      endReason: null,
      coveredBy: null,
      failureReason: null,
      sessionsCutAt: null,
    }
  }

  /**
   * Records a grant to start now, then provisions it. The common case costs least: with no assignment found, the
   * record takes the assignment's lease and records the intent to create it, so the creation is the next call.
   */
  private async recordRequested(
    grant: Grant,
    event: AuditEvent,
    actor: Actor,
    found: { look: Promise<boolean | undefined> | undefined; noAssignment: boolean },
    onRecorded: (grant: Grant) => void,
  ): Promise<GrantOutcome> {
    const now = new Date(grant.createdAt)
    const lease = { owner: randomUUID(), until: new Date(now.getTime() + LEASE_MS), intendCreation: found.noAssignment }
    // A request already answered 503 at its deadline must not record a grant afterwards.
    ensureTimeFor(0)
    const created = await this.deps.store.createGrant(grant, provisioningDueAt(now, grant), event, lease)
    if (created === 'exists') return this.resumeRecorded(grant.id, actor, onRecorded)
    onRecorded(grant)
    this.deps.onWritten?.(grant)
    const creationIntended = created === 'creation-intended'
    return this.provision(grant, actor, {
      grantId: grant.id,
      owner: lease.owner,
      until: lease.until,
      creationIntended,
      lookedBefore: found.look,
    })
  }

  /**
   * Everything a request is decided on, in the order a real request asks: the user, the permission set, the
   * policy (with the organization when a rule needs it), then the ticket when approval verification is on. A
   * refusal goes to `verdict.deny` with the user's name as the directory spells it (as asked, if it has none),
   * the audit detail and the error, which it throws. `verdict.beforePolicy` runs just before the policy is
   * asked, with the assignment the grant would need. Errors of the lookups (UpstreamUnavailableError) pass.
   */
  private async decide(
    input: GrantRequest,
    startsAt: Date | undefined,
    verdict: {
      deny: (userName: string, detail: string, error: DomainError, rule?: string) => Promise<never>
      beforePolicy?: (target: AccessTarget, request: AccessRequest) => void
    },
  ): Promise<{ user: DirectoryUser; access: GrantedAccess; decision: Extract<PolicyDecision, { allowed: true }> }> {
    const { deps } = this
    const version = deps.policy.version
    const user = await deps.directory.findUser(input.userName)
    if (!user) {
      const error = new UserNotFoundError(input.userName)
      return verdict.deny(input.userName, `${error.message} (policy ${version})`, error)
    }
    // The policy names users as the directory does, so it is asked about the directory's spelling too.
    const request = { ...input, userName: user.userName }
    const access = await this.lookUpAccess(input)
    if (access instanceof DomainError)
      return verdict.deny(user.userName, `${access.message} (policy ${version})`, access)
    verdict.beforePolicy?.(targetOf({ userId: user.id, ...grantedFields(access) }), request)
    const leadMs = startsAt ? startsAt.getTime() - deps.clock.now().getTime() : 0
    const decision = await evaluatePolicy(
      deps.policy,
      { ...request, leadMs },
      () => deps.directory.groupIdsOf(user.id),
      deps.accounts,
    )
    if (!decision.allowed) {
      return verdict.deny(
        user.userName,
        describeDenial(decision, deps.policy),
        new PolicyDeniedError(decision.reason, decision.failedCondition),
        decision.rule,
      )
    }
    const ticket = await this.askTicket(input.ticketId, startsAt ?? deps.clock.now(), input.durationMinutes * MINUTE_MS)
    if (!ticket.approved) {
      const error = new TicketNotApprovedError(input.ticketId, ticket.failedCondition, ticket.detail)
      return verdict.deny(
        user.userName,
        `${describeTicketRefusal(ticket)}; ${allowedBy(decision, deps.policy)}`,
        error,
        decision.rule,
      )
    }
    return { user, access, decision }
  }

  /**
   * What the request would grant, as the directory and Identity Center name it: a group grant's group (its id,
   * looked up by display name) or an account grant's permission set; the error to refuse it with when there is none.
   */
  private async lookUpAccess(input: GrantRequest): Promise<GrantedAccess | DomainError> {
    if (input.groupName !== undefined) return this.lookUpGroup(input.groupName)
    const name = input.permissionSet ?? ''
    const permissionSet = await this.deps.identityCenter.findPermissionSet(name)
    if (!permissionSet) return new PermissionSetNotFoundError(name)
    return {
      accountId: input.accountId ?? '',
      permissionSet: permissionSet.name,
      permissionSetArn: permissionSet.arn,
      groupName: null,
      groupId: null,
      sessionSeconds: permissionSet.sessionDurationSeconds,
    }
  }

  /**
   * A group grant's group: the id the policy resolved at start for a grantable group (a group renamed since, or a
   * new group given its name, is not granted in its place), else as the directory says now (the policy refuses
   * the group; a name the directory lacks is 422). A membership has no role sessions that outlast it.
   */
  private async lookUpGroup(groupName: string): Promise<GrantedAccess | DomainError> {
    const groupId =
      this.deps.policy.grantableGroupIds?.get(groupName) ?? (await this.deps.directory.groupIdOf(groupName))
    if (!groupId) return new GroupNotFoundError(groupName)
    return { accountId: null, permissionSet: null, permissionSetArn: null, groupName, groupId, sessionSeconds: 0 }
  }

  /**
   * Decides a request exactly as `request` would (the service maximum, the start, the directory, the policy with
   * the organization, the ticket when approval verification is on) and answers the verdict, recording nothing:
   * no grant, no audit event, no Identity Center change (its permission sets are read, as a request reads them).
   * A refusal by the policy or the ticket is an answer (`allowed: false`); input a request would refuse is thrown
   * as it would be (DurationTooLongError, InvalidTimeError, UserNotFoundError, PermissionSetNotFoundError), and so
   * are lookups that fail (UpstreamUnavailableError).
   */
  async dryRun(input: GrantRequest, options: { deadline?: number | undefined } = {}): Promise<DryRunVerdict> {
    return answerWithin(options.deadline, () => this.decideDryRun(input))
  }

  private async decideDryRun(input: GrantRequest): Promise<DryRunVerdict> {
    const { deps } = this
    if (input.durationMinutes > deps.maxDurationMinutes)
      throw new DurationTooLongError(input.durationMinutes, deps.maxDurationMinutes)
    const startsAt = input.startsAt === undefined ? undefined : this.scheduledStart(input.startsAt)
    const policyVersion = deps.policy.version
    try {
      const { decision } = await this.decide(input, startsAt, {
        deny: (_userName, _detail, error, rule) => Promise.reject(new DryRunRefusal(error, rule)),
      })
      return {
        allowed: true,
        rule: decision.rule,
        failedCondition: null,
        detail: `${input.durationMinutes} minutes ${allowedBy(decision, deps.policy)}`,
        policyVersion,
      }
    } catch (error) {
      if (!(error instanceof DryRunRefusal)) throw error
      const failedCondition = error.refusal.extensions.failedCondition
      // Not a decision: the user or permission set does not exist, which a request answers 422 too.
      if (typeof failedCondition !== 'string') throw error.refusal
      return { allowed: false, rule: error.rule ?? null, failedCondition, detail: error.refusal.message, policyVersion }
    }
  }

  /** A scheduled grant is recorded and answered at once: the sweep starts it (see start). */
  private async recordScheduled(
    grant: Grant,
    event: AuditEvent,
    actor: Actor,
    onRecorded: (grant: Grant) => void,
  ): Promise<GrantOutcome> {
    ensureTimeFor(0)
    const created = await this.deps.store.createGrant(grant, new Date(grant.startsAt), event)
    if (created === 'exists') return this.resumeRecorded(grant.id, actor, onRecorded)
    onRecorded(grant)
    this.deps.onWritten?.(grant)
    return { grant, settled: true }
  }

  /** The start a request asked for, if it is one a grant may have: in the future, and not too far ahead. */
  private scheduledStart(text: string): Date {
    const maxLeadDays = this.deps.maxLeadDays ?? DEFAULT_MAX_LEAD_DAYS
    const startsAt = timeOf('startsAt', text)
    const now = this.deps.clock.now()
    if (maxLeadDays === 0)
      throw new InvalidTimeError(
        'Scheduled grants are turned off here (JIT_MAX_LEAD_DAYS=0): leave startsAt out to start now',
      )
    if (startsAt <= now) throw new InvalidTimeError(`startsAt ${text} is not in the future: leave it out to start now`)
    if (startsAt.getTime() - now.getTime() > maxLeadDays * DAY_MS) {
      throw new InvalidTimeError(`startsAt ${text} is more than the service maximum of ${maxLeadDays} days ahead`)
    }
    return startsAt
  }

  /** An idempotent retry found its grant recorded by an earlier attempt: that one is carried on. */
  private async resumeRecorded(id: string, actor: Actor, onRecorded: (grant: Grant) => void): Promise<GrantOutcome> {
    const earlier = await this.get(id)
    onRecorded(earlier)
    return this.resume(earlier, actor)
  }

  /** Carries on with a grant an earlier attempt recorded; a grant past provisioning answers as it is. */
  private resume(grant: Grant, actor: Actor): Promise<GrantOutcome> {
    if (grant.status === 'provisioning') return this.provision(grant, actor)
    return Promise.resolve({ grant, settled: grant.status !== 'revoking' })
  }

  /**
   * Starts a scheduled grant whose start has come. The policy is asked again, with the user's groups as they
   * are now (someone who left the on-call group since is denied here); an allowed grant joins its assignment's
   * holders as 'provisioning' and is provisioned as a new grant is, with the same rules on access that exists
   * already or is shared. A grant whose whole window passed before any sweep could start it fails instead.
   * Throws ProvisioningFailedError when Identity Center refused the assignment, UpstreamUnavailableError when
   * AWS, the directory or the ticket system fails (the grant stays scheduled and due).
   */
  async start(grant: Grant, actor: Actor): Promise<GrantOutcome> {
    const started = await this.transitionFresh(grant, (current) => this.startTransition(current, actor))
    if (started?.status === 'provisioning') return this.provision(started, actor)
    if (started?.status === 'failed')
      await this.notify('a scheduled grant could not start in time', {
        grantId: grant.id,
        startsAt: grant.startsAt,
        expiresAt: grant.expiresAt,
      })
    return this.resolved(grant.id, started)
  }

  /** The transition a scheduled grant's start makes of it now: 'failed' past its window, 'denied', or 'provisioning'. */
  private async startTransition(current: Grant, actor: Actor): Promise<GrantTransition> {
    const change = { grant: current, from: ['scheduled'] as const, hold: 'keep' as const }
    const now = this.deps.clock.now()
    if (new Date(current.expiresAt) <= now) {
      const reason = 'its window ended before a sweep could start it; no access was given'
      const set = { failureReason: reason, endedAt: now.toISOString() }
      const event = this.event(this.grantDraft(current, 'grant.failed', actor, reason))
      return { ...change, to: 'failed', dueAt: null, set, event }
    }
    const verdict = await this.decideStart(current, now)
    if ('refused' in verdict) {
      const set = { failureReason: verdict.refused, endedAt: now.toISOString() }
      const detail = `at its scheduled start: ${verdict.refused}`
      return {
        ...change,
        to: 'denied',
        dueAt: null,
        set,
        event: this.event(this.grantDraft(current, 'grant.denied', actor, detail)),
      }
    }
    // Sessions last as long as the permission set says now, which may have changed since the grant was asked for.
    const set = { accessEndsBy: new Date(Date.parse(current.expiresAt) + verdict.sessionSeconds * 1000).toISOString() }
    const allowed = `scheduled start reached; ${verdict.allowed} again`
    const event = this.event(this.grantDraft(current, 'grant.start_requested', actor, allowed))
    return { ...change, to: 'provisioning', dueAt: provisioningDueAt(now, current), hold: 'join', set, event }
  }

  /**
   * A scheduled grant's start, decided again as its request was: the permission set must still be the one it
   * named (deleted, or replaced by another of the same name, it is refused rather than left to fail in Identity
   * Center on every sweep), then the policy with the user's groups as they are now, then the ticket.
   */
  private async decideStart(
    grant: Grant,
    now: Date,
  ): Promise<{ refused: string } | { allowed: string; sessionSeconds: number }> {
    const { deps } = this
    const unchanged = await this.stillTheSameAccess(grant)
    if ('refused' in unchanged) return unchanged
    const decision = await evaluatePolicy(
      deps.policy,
      accessRequestOf(grant, 0),
      () => deps.directory.groupIdsOf(grant.userId),
      deps.accounts,
    )
    if (!decision.allowed) return { refused: describeDenial(decision, deps.policy) }
    const ticket = await this.askTicket(grant.ticketId, now, Date.parse(grant.expiresAt) - now.getTime())
    if (!ticket.approved) return { refused: `${describeTicketRefusal(ticket)}; ${allowedBy(decision, deps.policy)}` }
    return { allowed: allowedBy(decision, deps.policy), sessionSeconds: unchanged.sessionSeconds }
  }

  /**
   * A scheduled grant's permission set (or group) as it is now: the one it named, or a refusal when it was deleted
   * or replaced by another of the same name. A group is compared first with the id the policy resolved at start, as
   * a request's group is (lookUpGroup): renaming the group since changes nothing, and a group deleted since fails
   * at its creation, as a request's does. Only a group the policy does not resolve is looked up by name now.
   */
  private async stillTheSameAccess(grant: Grant): Promise<{ refused: string } | { sessionSeconds: number }> {
    const { deps } = this
    if (grant.groupName !== null) {
      const resolved = deps.policy.grantableGroupIds?.get(grant.groupName)
      const groupId = resolved ?? (await deps.directory.groupIdOf(grant.groupName))
      if (groupId === grant.groupId) return { sessionSeconds: 0 }
      const now = resolved
        ? 'now names another group in the policy (resolved at start)'
        : groupId
          ? 'was replaced by another of the same name'
          : 'no longer exists'
      return { refused: `group '${grant.groupName}' ${now} (failed condition: group; policy ${deps.policy.version})` }
    }
    const permissionSet = await deps.identityCenter.findPermissionSet(grant.permissionSet ?? '')
    if (permissionSet?.arn !== grant.permissionSetArn) {
      return {
        refused: `permission set '${grant.permissionSet}' ${permissionSet ? 'was replaced by another of the same name' : 'no longer exists'} (failed condition: permissionSet; policy ${deps.policy.version})`,
      }
    }
    return { sessionSeconds: permissionSet.sessionDurationSeconds }
  }

  /** The grant as last written; throws GrantNotFoundError when there is none. */
  async get(id: string): Promise<Grant> {
    const grant = await this.deps.store.getGrant(id)
    if (!grant) throw new GrantNotFoundError(id)
    return grant
  }

  /** One page of grants matching the filter (see GrantStore.listGrants); throws InvalidCursorError for a bad cursor. */
  list(filter: GrantFilter, page: PageRequest): Promise<Page<Grant>> {
    return this.deps.store.listGrants(filter, page)
  }

  /**
   * Revokes a grant (DELETE /grants/{id}): see startRevocation; a scheduled one is cancelled, without a call to
   * Identity Center. Revoking one that has already ended changes nothing and answers its final state. With a
   * deadline, answers by then: 'revoking' once that is recorded (the sweep finishes it). Throws
   * GrantNotFoundError, UpstreamUnavailableError when AWS fails, and DeadlineExceededError when nothing was
   * recorded by the deadline.
   */
  async revoke(id: string, actor: Actor, options: { deadline?: number | undefined } = {}): Promise<GrantOutcome> {
    let revoking: Grant | undefined
    const onRecorded = (grant: Grant): void => {
      revoking = grant
    }
    return this.within(
      options.deadline,
      async () => this.startRevocation(await this.get(id), 'revoked', actor, undefined, onRecorded),
      () => revoking,
    )
  }

  /**
   * Moves a provisioning or active grant to 'revoking' (the intent, written before any call to Identity
   * Center) and then removes its access; a grant already revoking is finished; a scheduled one is cancelled.
   * On expiry, a grant whose end has moved past now since it was read is left as it is. Answered unsettled
   * when the grant kept moving under it. Throws UpstreamUnavailableError when AWS fails after the intent is
   * recorded (the sweep finishes it).
   */
  async startRevocation(
    grant: Grant,
    reason: EndReason,
    actor: Actor,
    why?: string,
    onRecorded?: (grant: Grant) => void,
  ): Promise<GrantOutcome> {
    let current = grant
    for (let attempt = 0; attempt < CHANGE_ATTEMPTS; attempt++) {
      if (current.status === 'revoking') {
        onRecorded?.(current)
        return this.finishRevocation(current, actor)
      }
      const now = this.deps.clock.now()
      if (reason === 'expired' && new Date(current.expiresAt) > now) return { grant: current, settled: true }
      if (current.status === 'scheduled') {
        const cancelled = await this.cancel(current, actor)
        if (cancelled) return { grant: cancelled, settled: true }
        current = await this.get(current.id)
        continue
      }
      if (!['provisioning', 'active'].includes(current.status)) return { grant: current, settled: true }
      const moved = await this.transition({
        grant: current,
        from: [current.status],
        to: 'revoking',
        dueAt: now,
        set: { endReason: reason, endedBy: actor.id },
        hold: 'release',
        event: this.event(
          this.grantDraft(
            current,
            'grant.revoke_requested',
            actor,
            why ?? (reason === 'expired' ? 'expiry reached' : 'ended early'),
          ),
        ),
      })
      if (moved) {
        onRecorded?.(moved)
        return this.finishRevocation(moved, actor)
      }
      current = await this.get(current.id)
    }
    return { grant: current, settled: false }
  }

  /** The ticket system's word on access over this window; approved when tickets are not checked. */
  private askTicket(ticketId: string, startsAt: Date, durationMs: number): Promise<TicketCheck> {
    const approval = this.deps.ticketApproval
    return approval
      ? approval.check(ticketId, { startsAt, expiresAt: new Date(startsAt.getTime() + durationMs) })
      : Promise.resolve({ approved: true })
  }

  private cancel(grant: Grant, actor: Actor): Promise<Grant | undefined> {
    return this.transition({
      grant,
      from: ['scheduled'],
      to: 'cancelled',
      dueAt: null,
      hold: 'keep',
      set: { endedAt: this.deps.clock.now().toISOString(), endedBy: actor.id },
      event: this.event(
        this.grantDraft(
          grant,
          'grant.cancelled',
          actor,
          `cancelled before its scheduled start (${grant.startsAt}); Identity Center was not touched`,
        ),
      ),
    })
  }

  /**
   * Moves the end of a grant that has not begun to end (scheduled, provisioning or active); its status stays,
   * and the sweep's due time and accessEndsBy move with the end. An extension is decided as a new request for
   * the whole new duration would be: the service maximum, then the policy with the user's groups as they are
   * now (a denial is audited and thrown). Shortening adds no access and is not asked of the policy. Moving the
   * end to where it is changes nothing. Throws InvalidTimeError for an end in the past or before the start,
   * GrantAlreadyEndedError once the grant is ending or ended.
   */
  async moveEnd(
    id: string,
    expiresAt: string,
    actor: Actor,
    options: { deadline?: number | undefined } = {},
  ): Promise<Grant> {
    const work = async () => {
      for (let attempt = 0; attempt < CHANGE_ATTEMPTS; attempt++) {
        const grant = await this.get(id)
        const change = await this.endMove(grant, timeOf('expiresAt', expiresAt), actor)
        if (!change) return grant
        // A request already answered 503 at its deadline must not move the end afterwards.
        ensureTimeFor(0)
        const moved = await this.transition(change)
        if (moved) return moved
      }
      throw new ConcurrentChangeError(id)
    }
    return answerWithin(options.deadline, work)
  }

  /** The transition that moves this copy's end, once allowed; undefined when the end is already there. */
  private async endMove(grant: Grant, end: Date, actor: Actor): Promise<GrantTransition | undefined> {
    const { deps } = this
    if (!MOVABLE_STATUSES.includes(grant.status)) throw new GrantAlreadyEndedError(grant.id, grant.status)
    const previous = new Date(grant.expiresAt)
    if (end.getTime() === previous.getTime()) return undefined
    const now = deps.clock.now()
    const start = new Date(grant.startsAt)
    if (end <= now) throw new InvalidTimeError(`expiresAt ${end.toISOString()} is not in the future`)
    if (end <= start)
      throw new InvalidTimeError(`expiresAt ${end.toISOString()} is not after the grant's start (${grant.startsAt})`)
    const extending = end > previous
    const durationMinutes = Math.ceil((end.getTime() - start.getTime()) / MINUTE_MS)
    const moved = `end moved from ${grant.expiresAt} to ${end.toISOString()}`
    // An extension is a decision of the policy, and its event names the rule and the policy's version.
    const allowed = extending
      ? await this.approveExtension(grant, actor, { start, end, now, durationMinutes, moved })
      : ''
    const sessionMs = Date.parse(grant.accessEndsBy) - previous.getTime()
    return {
      grant,
      from: [grant.status],
      to: grant.status,
      dueAt: dueAfterMove(grant, start, end, now),
      hold: 'keep',
      set: { expiresAt: end.toISOString(), accessEndsBy: new Date(end.getTime() + sessionMs).toISOString() },
      event: this.event(
        this.grantDraft(
          grant,
          extending ? 'grant.extended' : 'grant.shortened',
          actor,
          `${moved} (${durationMinutes} minutes in all)${allowed}`,
        ),
      ),
    }
  }

  /**
   * Decides an extension as a new request for the grant's whole duration: over the service maximum, refused by the
   * policy or by the ticket, it throws (DurationTooLongError, PolicyDeniedError, TicketNotApprovedError), the last
   * two audited as denials. Answers the audit detail's suffix naming the rule that allows it.
   */
  private async approveExtension(
    grant: Grant,
    actor: Actor,
    move: { start: Date; end: Date; now: Date; durationMinutes: number; moved: string },
  ): Promise<string> {
    const { deps } = this
    const { start, end, now, durationMinutes, moved } = move
    if (durationMinutes > deps.maxDurationMinutes)
      throw new DurationTooLongError(durationMinutes, deps.maxDurationMinutes)
    const request = accessRequestOf(grant, Math.max(0, start.getTime() - now.getTime()), durationMinutes)
    const groups = () => deps.directory.groupIdsOf(grant.userId)
    const decision = await evaluatePolicy(deps.policy, request, groups, deps.accounts)
    const refuse = (why: string) =>
      this.appendAudit(
        this.grantDraft(grant, 'grant.denied', actor, `extension refused (${moved} asked): ${why}`),
        grant,
      )
    if (!decision.allowed) {
      await refuse(describeDenial(decision, deps.policy))
      throw new PolicyDeniedError(decision.reason, decision.failedCondition)
    }
    const ticket = await this.askTicket(grant.ticketId, start, end.getTime() - start.getTime())
    if (!ticket.approved) {
      await refuse(`${describeTicketRefusal(ticket)}; ${allowedBy(decision, deps.policy)}`)
      throw new TicketNotApprovedError(grant.ticketId, ticket.failedCondition, ticket.detail)
    }
    return `; ${allowedBy(decision, deps.policy)}`
  }

  /**
   * The periodic check of one assignment, in both directions. First any unfinished change is finished. Then
   * an assignment our grants rely on must still exist: if it was removed outside jit-access, the grants it
   * carried are ended (recorded as drift and alerted) rather than the access silently restored, since someone
   * removed it on purpose. And access nobody holds must not be there: an assignment of ours that appeared after
   * its grants ended (a creation AWS accepted whose answer was lost) is removed, recorded as drift and alerted.
   * Answers how many grants or assignments drifted; throws UpstreamUnavailableError when AWS fails.
   */
  async checkAssignment(target: AccessTarget, actor: Actor): Promise<{ drifted: number }> {
    const { store, identityCenter, clock } = this.deps
    const state = await this.reconciler.reconcile(target)
    let drifted = 0
    if (state.kind === 'present' && !(await identityCenter.assignmentExists(target))) {
      drifted += await this.endGrantsOfRemovedAccess(target, actor)
    }
    if (state.kind === 'absent') {
      // Recorded before the removal, as every side effect is: the event is the intent.
      const orphan = await this.reconciler.removeOrphan(target, async (coverage) => {
        const grant = coverage.lastGrantId ? await store.getGrant(coverage.lastGrantId) : undefined
        const detail = orphanDetail(target)
        const draft = grant
          ? this.grantDraft(grant, 'grant.drift_detected', actor, detail)
          : orphanDraft(target, actor, detail)
        await this.appendAudit(draft, grant)
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

  /**
   * Access our grants rely on was removed outside jit-access: each grant it carried is ended (recorded as drift
   * first) rather than the access silently restored, since someone removed it on purpose. Answers how many.
   */
  private async endGrantsOfRemovedAccess(target: AccessTarget, actor: Actor): Promise<number> {
    const { store } = this.deps
    let ended = 0
    for (const id of (await store.getCoverage(target))?.holders ?? []) {
      const grant = await store.getGrant(id)
      if (!grant || (grant.status !== 'active' && grant.status !== 'provisioning')) continue
      ended++
      const why = `the ${accessNoun(grant)} was removed outside jit-access`
      const detail = `${why}; the grant is ended rather than the access restored`
      await this.appendAudit(this.grantDraft(grant, 'grant.drift_detected', actor, detail), grant)
      await this.startRevocation(grant, 'revoked', actor, why)
    }
    return ended
  }

  /**
   * Finishes a grant that is still provisioning (the sweep's step for one left unfinished): active once the
   * assignment is in place, failed if AWS refused it (ProvisioningFailedError, after the failure is recorded);
   * answered unsettled while Identity Center has not finished. Throws UpstreamUnavailableError when AWS fails.
   */
  finishProvisioning(grant: Grant, actor: Actor): Promise<GrantOutcome> {
    return this.provision(grant, actor)
  }

  /**
   * Provisions a grant in 'provisioning' (see finishProvisioning); `takenWithGrant` when its own record has just
   * taken the assignment's lease. Its one change of state (to active, or failed) is written by `activate` or
   * `fail`: with the creation's last write when that is what activates it, otherwise after the reconcile.
   */
  private async provision(grant: Grant, actor: Actor, takenWithGrant?: LeaseTakenWithGrant): Promise<GrantOutcome> {
    let activated: Grant | undefined
    const finish: Finish = async (write) => {
      // Only a creation's last write belongs with the activation (its holders gone, the reconciler may go on to remove it).
      if (write.kind !== 'assigned') return false
      activated = await this.activate(grant, actor, false, write)
      return activated !== undefined
    }
    const state = await this.reconcileFor(grant, { ...(takenWithGrant && { takenWithGrant }), lookAhead: true, finish })
    if (state.kind === 'present')
      return this.resolved(grant.id, activated ?? (await this.activate(grant, actor, state.external)))
    if (state.kind === 'failed') return this.fail(grant, actor, state.reason)
    return { grant, settled: false }
  }

  /** Moves a provisioning grant to 'active'; fresh: its end may have moved (PATCH) since it was read, and the due time follows the end. */
  private activate(
    grant: Grant,
    actor: Actor,
    external: boolean,
    coverage?: CoverageWrite,
  ): Promise<Grant | undefined> {
    return this.transitionFresh(grant, (current) => ({
      grant: current,
      from: ['provisioning'],
      to: 'active',
      dueAt: new Date(current.expiresAt),
      set: { coveredBy: external ? 'pre-existing' : 'jit' },
      hold: 'keep',
      coverage,
      event: this.event(
        this.grantDraft(
          current,
          'grant.activated',
          actor,
          external
            ? `a permanent ${current.groupName ? 'group membership' : 'assignment'} already grants this access; it will be left in place when the grant ends`
            : `${accessNoun(current)} in place`,
        ),
      ),
    }))
  }

  /** Moves a provisioning grant Identity Center refused to 'failed', and throws ProvisioningFailedError if it did. */
  private async fail(grant: Grant, actor: Actor, reason: string): Promise<GrantOutcome> {
    const failed = await this.transitionFresh(grant, (current) => ({
      grant: current,
      from: ['provisioning'],
      to: 'failed',
      dueAt: null,
      set: { failureReason: reason, endedAt: this.deps.clock.now().toISOString() },
      hold: 'release',
      event: this.event(
        this.grantDraft(
          current,
          'grant.failed',
          actor,
          `${current.groupName ? 'The Identity Store refused the group membership' : 'Identity Center refused the assignment'}: ${reason}`,
        ),
      ),
    }))
    if (failed) throw new ProvisioningFailedError(grant.id, reason)
    return this.resolved(grant.id, failed)
  }

  /**
   * Finishes a grant in 'revoking' (revoked, or expired) once its access is gone or is provided by something
   * else; answered unsettled while Identity Center has not finished. Throws UpstreamUnavailableError when AWS
   * fails (the grant stays 'revoking' and due, for the sweep).
   */
  async finishRevocation(grant: Grant, actor: Actor): Promise<GrantOutcome> {
    const reason: EndReason = grant.endReason ?? 'revoked'
    let ended: Grant | undefined
    let accessRemoved = false
    const end = async (detail: string, coverage?: CoverageWrite, removal = false) => {
      // Only when the access really ends (not kept by another grant or a permanent assignment): intended before the end is written.
      if (removal && this.cutoffs) await this.cutoffs.intend(grant)
      accessRemoved = removal
      return this.recordEnd(grant, reason, actor, detail, coverage)
    }
    const removed = `${accessNoun(grant)} removed`
    const finish: Finish = async (write) => {
      // Only a removal's last write belongs with the end: a grant that arrived meanwhile may have the reconciler create it again.
      if (write.kind !== 'removed') return false
      ended = await end(removed, write, true)
      return ended !== undefined
    }
    const state = await this.reconcileFor(grant, { finish })
    if (state.kind === 'pending' || state.kind === 'failed') return { grant, settled: false }
    ended ??= await end(endDetail(grant, state), undefined, accessEnds(grant, state))
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
      await this.notify('session cut-off not written yet; the sweep retries', {
        grantId: outcome.grant.id,
        error: (error as Error).message,
      })
      return outcome
    }
    return { grant: await this.get(outcome.grant.id), settled: true }
  }

  /**
   * The sweep's step: writes every session cut-off left open (by a crash, a failure, or deferred by the sweep).
   * Throws UpstreamUnavailableError (or LeaseLostError) when they cannot be written now: they stay open.
   */
  async finishSessionCutoffs(actor: Actor): Promise<void> {
    await this.cutoffs?.drain(actor)
  }

  private recordEnd(grant: Grant, reason: EndReason, actor: Actor, detail: string, coverage?: CoverageWrite) {
    return this.transition({
      grant,
      from: ['revoking'],
      to: reason,
      dueAt: null,
      set: { endedAt: this.deps.clock.now().toISOString() },
      hold: 'release',
      coverage,
      event: this.event({
        ...this.grantDraft(grant, reason === 'expired' ? 'grant.expired' : 'grant.revoked', actor, detail),
        actor: grant.endedBy ?? actor.id,
      }),
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

  private grantDraft(
    grant: Pick<Grant, 'id' | 'userName' | 'accountId' | 'permissionSet' | 'ticketId'> & { groupName?: string | null },
    action: AuditAction,
    actor: Actor,
    detail: string,
  ): AuditDraft {
    return {
      action,
      actor: actor.id,
      grantId: grant.id,
      userName: grant.userName,
      accountId: grant.accountId,
      permissionSet: grant.permissionSet,
      ...(grant.groupName ? { groupName: grant.groupName } : {}),
      ticketId: grant.ticketId,
      detail,
      requestId: actor.requestId,
      correlationId: actor.correlationId ?? null,
    }
  }

  private event(draft: AuditDraft) {
    return { ...draft, id: newId(this.deps.clock), at: this.deps.clock.now().toISOString() }
  }

  private async appendAudit(draft: AuditDraft, grant?: Grant): Promise<void> {
    const event = this.event(draft)
    const outbox = this.deps.outbox?.claimFor(event, grant)
    await this.deps.auditLog.append(event, outbox)
    if (outbox) this.deps.outbox?.deliverSoon(outbox)
  }

  /**
   * A transition that survives a moved end: when the write is refused and the grant, read again, is still in a
   * status the change starts from, only its end moved (PATCH), and the change is made anew from that copy.
   */
  private async transitionFresh(
    grant: Grant,
    build: (current: Grant) => GrantTransition | Promise<GrantTransition>,
  ): Promise<Grant | undefined> {
    let current = grant
    for (let attempt = 0; attempt < CHANGE_ATTEMPTS; attempt++) {
      const change = await build(current)
      const moved = await this.transition(change)
      if (moved) return moved
      const fresh = await this.deps.store.getGrant(current.id)
      if (!fresh || !change.from.includes(fresh.status) || fresh.expiresAt === current.expiresAt) return undefined
      current = fresh
    }
    return undefined
  }

  /**
   * A state change with its audit event and the messages the event owes (the outbox), in one transaction;
   * once it is written, the messages leave, without anyone's answer waiting for them.
   */
  private async transition(change: GrantTransition): Promise<Grant | undefined> {
    const outbox = this.deps.outbox?.claimFor(change.event, { ...change.grant, ...change.set })
    const moved = await this.deps.store.transition({ ...change, outbox })
    if (moved && outbox) this.deps.outbox?.deliverSoon(outbox)
    if (moved) this.deps.onWritten?.(moved)
    return moved
  }

  /** Sends an operational alert, best effort: never throws (see Notifier). */
  async notify(subject: string, detail: Record<string, unknown>): Promise<void> {
    try {
      await this.deps.notifier.error(subject, detail)
    } catch {
      // Alerting is best effort: the notifier logs its own failures, and an alert must never fail a grant.
    }
  }
}

/** A request as decided: who, which permission set, the allowing decision, the start, and the early look. */
interface RequestDecision {
  user: DirectoryUser
  access: GrantedAccess
  decision: Extract<PolicyDecision, { allowed: true }>
  startsAt: Date | undefined
  /** Whether the assignment exists, asked beside the policy (see decideRequest); undefined when not asked. */
  look: Promise<boolean | undefined> | undefined
}

/** An audit draft about a request before its grant exists, naming the user as `userName` spells it. */
function requestDraft(
  input: GrantRequest,
  actor: Actor,
  userName: string,
  action: AuditAction,
  detail: string,
  grantId: string | null = null,
): AuditDraft {
  return {
    action,
    actor: actor.id,
    grantId,
    userName,
    ...requestedAccess(input),
    ticketId: input.ticketId,
    detail,
    requestId: actor.requestId,
    correlationId: actor.correlationId ?? null,
  }
}

/** A provisioning grant is looked at again after the grace time, or at its end if that comes first. */
function provisioningDueAt(now: Date, grant: Pick<Grant, 'expiresAt'>): Date {
  return new Date(Math.min(now.getTime() + PROVISIONING_GRACE_MS, Date.parse(grant.expiresAt)))
}

/** The request a recorded grant stands for, as the policy sees it: its whole duration, from its start. */
function accessRequestOf(
  grant: Grant,
  leadMs: number,
  durationMinutes = Math.ceil((Date.parse(grant.expiresAt) - Date.parse(grant.startsAt)) / MINUTE_MS),
): AccessRequest {
  return {
    userName: grant.userName,
    accountId: grant.accountId,
    permissionSet: grant.permissionSet,
    groupName: grant.groupName,
    ticketId: grant.ticketId,
    durationMinutes,
    leadMs,
  }
}

/** What a grant gives, as its record names it (an account assignment's fields or a group membership's), with its session length. */
interface GrantedAccess {
  accountId: string | null
  permissionSet: string | null
  permissionSetArn: string | null
  groupName: string | null
  groupId: string | null
  /** How long a role session lasts past the end (accessEndsBy); 0 for a group membership. */
  sessionSeconds: number
}

/** A grant's fields for what it gives. */
function grantedFields({ sessionSeconds: _, ...fields }: GrantedAccess): Omit<GrantedAccess, 'sessionSeconds'> {
  return fields
}

/** The audit fields of what a request asks for, before anything is looked up: a group's name, or an account and permission set. */
function requestedAccess(input: GrantRequest): Pick<AuditDraft, 'accountId' | 'permissionSet' | 'groupName'> {
  if (input.groupName !== undefined) return { accountId: null, permissionSet: null, groupName: input.groupName }
  return { accountId: input.accountId ?? null, permissionSet: input.permissionSet ?? null }
}

/** What a grant's access is called in its audit events. */
function accessNoun(grant: { groupName: string | null }): string {
  return grant.groupName ? 'group membership' : 'account assignment'
}

/** A denial as the audit log records it: why, the condition, the rule that came closest and the policy's version. */
function describeDenial(
  decision: Extract<PolicyDecision, { allowed: false }>,
  policy: Pick<Policy, 'version'>,
): string {
  return `${decision.reason} (failed condition: ${decision.failedCondition}; closest rule '${decision.rule}'; policy ${policy.version})`
}

/** The rule that allowed a request and the policy's version, as every allowing event names them. */
function allowedBy(decision: Extract<PolicyDecision, { allowed: true }>, policy: Pick<Policy, 'version'>): string {
  return `allowed by rule '${decision.rule}' (policy ${policy.version})`
}

function describeTicketRefusal(check: Extract<TicketCheck, { approved: false }>): string {
  return `the ticket does not approve it: ${check.detail} (failed condition: ${check.failedCondition})`
}

/** The grant's access really ends: no assignment is left for it, and no permanent one ever gave it. */
/**
 * What the end of a grant's access came to, for its audit event. The periodic check of the same access may have
 * dropped an idle record first (the reconcile then finds none): a grant covered by access that existed before it
 * still left that access in place.
 */
function endDetail(grant: Grant, state: Exclude<CoverageState, { kind: 'pending' | 'failed' }>): string {
  const noun = accessNoun(grant)
  if (state.external || grant.coveredBy === 'pre-existing') {
    return `permanent ${grant.groupName ? 'group membership' : 'assignment'} left in place`
  }
  if (state.kind === 'present') return `${noun} kept: another active grant still covers it`
  if (state.watching) {
    const service = grant.groupName ? 'the Identity Store' : 'Identity Center'
    return `no ${noun} showed up; ${service} is watched for an hour, and one that appears is removed`
  }
  return `${noun} removed`
}

function accessEnds(grant: Grant, state: CoverageState): boolean {
  return state.kind === 'absent' && state.external !== true && grant.coveredBy !== 'pre-existing'
}

/**
 * A time the schema let through as RFC 3339 that JavaScript can hold: a leap second (…T23:59:60Z) is valid RFC
 * 3339 but no Date, and every comparison with it would pass.
 */
function timeOf(field: string, text: string): Date {
  const time = new Date(text)
  if (Number.isNaN(time.getTime()))
    throw new InvalidTimeError(`${field} ${text} is not a time this service can hold (a leap second?)`)
  return time
}

/**
 * Runs `work` under `deadline` (epoch ms; none when undefined) and answers by then: as `work` does, or as
 * `onTimeout` says (by default DeadlineExceededError, for work that records nothing before its last write).
 */
function answerWithin<T>(
  deadline: number | undefined,
  work: () => Promise<T>,
  onTimeout: () => T = () => {
    throw new DeadlineExceededError()
  },
): Promise<T> {
  const running = withDeadline(deadline, work)
  return deadline === undefined ? running : answerBy(deadline, running, onTimeout)
}

/** The audit detail of access of ours that appeared after every grant holding it had ended. */
function orphanDetail(target: AccessTarget): string {
  const [noun, service] =
    target.kind === 'membership'
      ? ['a group membership', 'the Identity Store']
      : ['an account assignment', 'Identity Center']
  return (
    `${noun} jit-access asked for appeared after every grant holding it had ended ` +
    `(${service} accepted the creation but its answer was lost); it is removed unless a new grant for the same access holds it first`
  )
}

/** The drift event of such access when no grant of it can be found any more: it names the target's ids. */
function orphanDraft(target: AccessTarget, actor: Actor, detail: string): AuditDraft {
  const what =
    target.kind === 'membership'
      ? { accountId: null, permissionSet: null, groupName: `(group id ${target.groupId})` }
      : { accountId: target.accountId, permissionSet: target.permissionSetArn }
  return {
    action: 'grant.drift_detected',
    actor: actor.id,
    grantId: null,
    userName: `(user id ${target.userId})`,
    ...what,
    ticketId: '(none)',
    detail,
    requestId: actor.requestId,
    correlationId: actor.correlationId ?? null,
  }
}

/** Where a grant whose end moved is due: its start when scheduled, the provisioning check, or its new end. */
function dueAfterMove(grant: Grant, start: Date, end: Date, now: Date): Date {
  if (grant.status === 'scheduled') return start
  if (grant.status === 'provisioning') return provisioningDueAt(now, { expiresAt: end.toISOString() })
  return end
}
