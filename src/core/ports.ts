import type { AuditAction, AuditEvent } from './audit.ts'
import type { AuditAnchor, ChainedAuditEvent, ChainHead, VerifyResult } from './audit-chain.ts'
import type { Cutoff } from './cutoff-policy.ts'
import type { AccessTarget, EndReason, Grant, GrantStatus } from './grant-model.ts'

export interface Page<T> {
  items: T[]
  nextCursor: string | null
}

export interface PermissionSetInfo {
  arn: string
  name: string
  /** How long a role session obtained through it lasts (Identity Center default: one hour). */
  sessionDurationSeconds: number
}

export interface DirectoryUser {
  id: string
  userName: string
}

/** Outcome of an account-assignment request, which Identity Center carries out asynchronously. */
export type ProvisioningOutcome =
  | { state: 'succeeded'; requestId: string | null }
  /**
   * Accepted and not finished. `requestId` is null when Identity Center refused the request because another
   * operation on the same assignment is under way (ConflictException): the one already under way decides.
   */
  | { state: 'in_progress'; requestId: string | null }
  | { state: 'failed'; requestId: string | null; reason: string }
  /**
   * A creation refused because the access already exists: the Identity Store's answer to a second membership of
   * the same user and group (ConflictException, UNIQUENESS_CONSTRAINT_VIOLATION). Identity Center never answers it
   * (a creation of an assignment that exists succeeds). Nothing was made by this request, so whose access it is
   * depends on what was sent before: on a first creation (no earlier one of ours can be behind it; the client
   * never retries on its own) someone else made it, and it is pre-existing; after an earlier creation of ours
   * whose answer was lost, it is ours.
   */
  | { state: 'exists'; requestId: null }

/**
 * Runs after every wait a call may meet in this process (the rate, a creation slot) and immediately before
 * the request leaves; when it throws, nothing is sent and the error is the call's.
 */
export type BeforeSend = () => Promise<void>

/**
 * Identity Center as the grants see it: permission sets, and the access a grant stands for, of either kind (an
 * account assignment, or an Identity Store group membership). The adapter sends each target to its own API;
 * a membership is made or removed at once (its outcome is never in_progress with a request id). Every method
 * throws UpstreamUnavailableError when AWS cannot answer (retryable for throttling, 5xx and dropped connections,
 * after the adapter's own retries), and DeadlineExceededError when the current work's deadline comes first.
 */
export interface IdentityCenter {
  /** The permission set with this name, undefined when the instance has none (answers may be cached a while). */
  findPermissionSet(name: string): Promise<PermissionSetInfo | undefined>
  /**
   * Whether the assignment is listed now. A creation is listed only once it is provisioned, a removal until it
   * is done, so a 'no' can still be a creation under way.
   */
  assignmentExists(target: AccessTarget): Promise<boolean>
  /**
   * Asks for the assignment; `beforeSend` runs just before the request leaves (see BeforeSend). Creating one
   * that exists makes no second copy; a conflict with another operation on it answers in_progress with no id.
   */
  createAssignment(target: AccessTarget, beforeSend?: BeforeSend): Promise<ProvisioningOutcome>
  /** What became of a creation Identity Center accepted with this request id. */
  creationStatus(requestId: string): Promise<ProvisioningOutcome>
  /**
   * Asks for the assignment's removal; `beforeSend` as for createAssignment. Removing one already gone answers
   * succeeded; a conflict answers in_progress with no id.
   */
  deleteAssignment(target: AccessTarget, beforeSend?: BeforeSend): Promise<ProvisioningOutcome>
  /** What became of a removal Identity Center accepted with this request id. */
  deletionStatus(requestId: string): Promise<ProvisioningOutcome>
}

export interface Directory {
  /**
   * The user the directory knows by this name, with the name as the directory spells it (which may differ from
   * the one asked for, e.g. in case): that spelling is what grants and audit events record. Undefined when there
   * is none; throws UpstreamUnavailableError when the directory cannot answer.
   */
  findUser(userName: string): Promise<DirectoryUser | undefined>
  /** Ids of the groups the user belongs to, as the directory says now (never cached: a removal counts at once). */
  groupIdsOf(userId: string): Promise<string[]>
  /** The id of the group with this display name, undefined when there is none; asked when the policy is loaded. */
  groupIdOf(displayName: string): Promise<string | undefined>
}

/** An AWS account as the organization describes it. */
export interface OrganizationAccount {
  id: string
  name: string
  /** ACTIVE in the organization; false for a suspended, closing or closed account, which is never granted. */
  active: boolean
}

/**
 * The organization's structure (AWS Organizations), for policy rules that name organizational units, the root or
 * account tags. Answers may be cached for a while (JIT_CACHE_TTL_SECONDS): an account moved, retagged or closed
 * counts once the cached answer expires. Every method throws UpstreamUnavailableError when Organizations cannot
 * answer, so that a decision that needs it fails closed.
 */
export interface AccountDirectory {
  /** The ids of the OUs and the root above the account, nearest first; empty when the organization does not have it. */
  ancestorsOf(accountId: string): Promise<readonly string[]>
  /** The account's tags (empty when it has none, or is not in the organization). */
  tagsOf(accountId: string): Promise<Readonly<Record<string, string>>>
  /** The account, undefined when the organization does not have it. */
  describe(accountId: string): Promise<OrganizationAccount | undefined>
  /**
   * Accounts nested anywhere under the root or OU, at most `limit` of them (truncated: there are more), in a
   * stable order (breadth first, each parent's accounts in Organizations' order).
   */
  accountsUnder(parentId: string, limit: number): Promise<{ accounts: OrganizationAccount[]; truncated: boolean }>
}

/**
 * Seals the cursors of paged answers, so that only cursors this deployment minted open again, and only for the
 * query they were minted for (`query`, bound to the cursor without being in it). A caller can neither forge a
 * position nor read one.
 */
export interface CursorSeal {
  /** A cursor holding `values` (strings or numbers), in the order of `names`, for `query`. */
  encode(values: Record<string, unknown>, query: unknown, names: readonly string[]): string
  /**
   * The values a cursor from encode holds, for the same query and names.
   * @throws InvalidCursorError for anything else: edited, made up, minted under another secret or for another query.
   */
  decode(cursor: string, query: unknown, names: readonly string[]): Record<string, string | number>
}

/** What we know about one user/account/permission-set assignment and the grants that need it. */
export interface Coverage {
  target: AccessTarget
  /** Grants that currently need the assignment. */
  holders: string[]
  /** Our view of the assignment we manage; 'creating'/'deleting' mean a request was sent and not yet confirmed. */
  assignment: 'absent' | 'creating' | 'present' | 'deleting'
  /** A permanent assignment existed before our first grant: we never remove it. */
  external: boolean
  /** The pending Identity Center request, when assignment is 'creating' or 'deleting'. */
  requestId: string | null
  lastFailure: string | null
  /**
   * When a creation of ours was last intended (epoch ms), until its assignment is confirmed removed: while
   * set, an assignment Identity Center lists here may be ours (an accepted creation is listed only once it is
   * provisioned, and its answer may have been lost), so it is never taken for a permanent one.
   */
  creationIntendedAt: number | null
  /** The grant that last joined the holders: whom an assignment of ours found after they all left was for. */
  lastGrantId: string | null
  /** Since when (epoch ms) Identity Center has answered our change with ConflictException: another operation under way. */
  conflictSince: number | null
}

export type CoveragePatch = Partial<
  Pick<Coverage, 'assignment' | 'external' | 'requestId' | 'lastFailure' | 'creationIntendedAt' | 'conflictSince'>
>

export interface GrantFilter {
  status?: GrantStatus
  userName?: string
  accountId?: string
  ticketId?: string
}

export interface AuditFilter {
  from?: string
  to?: string
  userName?: string
  accountId?: string
  ticketId?: string
  grantId?: string
  action?: AuditAction
  actor?: string
}

export interface PageRequest {
  limit: number
  cursor?: string
}

/**
 * Grants, the coverage of their assignments and the leases over both (in AWS, one DynamoDB table). Every method
 * throws UpstreamUnavailableError when the store cannot answer; a refused condition is an answer, not an error,
 * unless the method says it throws.
 */
export interface GrantStore {
  /**
   * Records a new grant as `provisioning` and registers it as a holder of its assignment, atomically with
   * its audit event; a `scheduled` grant is recorded alone (it holds nothing until it starts). 'exists' when a grant with that id already exists (an idempotent retry). With `lease`,
   * the same write takes the coverage lease for its owner if nobody holds it (the owner's first conditional
   * write finds out whether it did). With `lease.intendCreation` (a look at Identity Center found no
   * assignment) and no coverage record yet, the write records the coverage whole instead: this grant its
   * only holder, the lease the owner's, the creation intended ('creating'); it then answers
   * 'creation-intended', and the owner may send the creation straight away.
   */
  createGrant(grant: Grant, dueAt: Date, event: AuditEvent, lease?: NewGrantLease): Promise<GrantCreation>
  /** The grant with this id as last written (a consistent read); undefined when there is none. */
  getGrant(id: string): Promise<Grant | undefined>
  /**
   * Moves a grant from one of `from` to a new status (or the same one, with a moved end), atomically with its
   * audit event and the change to its hold on the assignment. Returns the updated grant, or undefined when the
   * grant was not in one of `from` or its end is no longer the copy's (someone else moved it: read it again).
   */
  transition(change: GrantTransition): Promise<Grant | undefined>
  /** One page of the grants matching the filter, newest first; throws InvalidCursorError for a cursor it did not issue. */
  listGrants(filter: GrantFilter, page: PageRequest): Promise<Page<Grant>>
  /**
   * What is due at or before `now`, oldest first: grants (expiry, or unfinished provisioning/revocation) and
   * assignments whose periodic check against Identity Center is due. With `after`, only what falls due after
   * it (the look-ahead that arms timers for what comes due before the next sweep).
   */
  dueItems(
    now: Date,
    cursor: string | undefined,
    limit: number,
    after?: Date,
  ): Promise<{ grants: Grant[]; coverages: AccessTarget[]; cursor: string | undefined }>
  /**
   * Takes the deployment's one sweep lease until `until`: when nobody holds it, its holder's time has run out, or
   * `owner` holds it already. False when another process holds it (that process is sweeping).
   */
  acquireSweepLease(owner: string, now: Date, until: Date): Promise<boolean>
  /** Gives the sweep lease up, if `owner` still holds it. */
  releaseSweepLease(owner: string): Promise<void>
  /** When the sweep should next check this assignment against Identity Center. */
  scheduleCoverageCheck(target: AccessTarget, at: Date): Promise<void>

  /** The assignment's coverage record as last written (a consistent read); undefined when there is none. */
  getCoverage(target: AccessTarget): Promise<Coverage | undefined>
  /**
   * Takes the right to change the assignment in Identity Center, answering the coverage as it then is.
   * Not acquired when another process holds the lease, when access is already in place for the holders
   * (nothing to change), or when there is no coverage record.
   */
  acquireLease(target: AccessTarget, owner: string, now: Date, until: Date): Promise<LeaseAttempt>
  /**
   * Changes the coverage while holding the lease (throws LeaseLostError otherwise) and answers it as written,
   * holders included; `releaseLease` gives the lease up in the same write.
   */
  updateCoverage(
    target: AccessTarget,
    owner: string,
    patch: CoveragePatch,
    options?: { releaseLease?: boolean },
  ): Promise<Coverage>
  /**
   * Records 'creating' when the coverage is as a creation needs it: the lease is the owner's, nothing is
   * assigned or being changed, no permanent assignment was found. Otherwise answers the coverage as it is
   * (undefined if there is none) and whether the owner holds the lease.
   */
  recordCreationIntent(
    target: AccessTarget,
    owner: string,
    now: Date,
  ): Promise<
    { recorded: true; coverage: Coverage } | { recorded: false; coverage: Coverage | undefined; leaseHeld: boolean }
  >
  /**
   * Records 'deleting' when the coverage is as a removal needs it: the lease is the owner's, our assignment is
   * present and no grant holds it (one that joined since it was read keeps it). Otherwise answers the coverage
   * as it is (undefined if there is none) and whether the owner holds the lease.
   */
  recordRemovalIntent(
    target: AccessTarget,
    owner: string,
  ): Promise<
    { recorded: true; coverage: Coverage } | { recorded: false; coverage: Coverage | undefined; leaseHeld: boolean }
  >
  /** Removes a coverage that has no holders and no assignment left; false if a holder arrived meanwhile. */
  deleteIdleCoverage(target: AccessTarget, owner: string): Promise<boolean>
  /** Gives the assignment's lease up if `owner` still holds it; otherwise changes nothing. */
  releaseLease(target: AccessTarget, owner: string): Promise<void>
  /** Extends the owner's lease to `until` if it is still the owner's and has not run out at `now`; throws LeaseLostError otherwise. */
  renewLease(target: AccessTarget, owner: string, now: Date, until: Date): Promise<void>
}

export interface NewGrantLease {
  owner: string
  until: Date
  intendCreation?: boolean
}

export type GrantCreation = 'exists' | 'created' | 'creation-intended'

export type LeaseAttempt = { acquired: true; coverage: Coverage } | { acquired: false; coverage: Coverage | undefined }

export interface GrantTransition {
  /** The grant as the caller last read it; the store checks its status, not the rest (which `from` implies). */
  grant: Grant
  from: readonly GrantStatus[]
  to: GrantStatus
  /** When the sweep should look at the grant next; null once it holds nothing. */
  dueAt: Date | null
  set?: Partial<
    Pick<Grant, 'endedAt' | 'endedBy' | 'endReason' | 'coveredBy' | 'failureReason' | 'expiresAt' | 'accessEndsBy'>
  >
  /** The grant starts needing its assignment (a scheduled grant starting), stops needing it, or neither. */
  hold: 'join' | 'release' | 'keep'
  /** The lease holder's last change to the coverage, written in the same transaction (see CoverageWrite). */
  coverage?: CoverageWrite
  event: AuditEvent
  /** The messages the event owes its subscribers, recorded in the same transaction (see Outbox). */
  outbox?: OutboxClaim | undefined
}

/**
 * The last write of a change in Identity Center, when a grant's transition can carry it: 'assigned' records
 * the assignment in place and gives the lease up (the grant activated is a holder, so nothing is left to
 * do); 'removed' drops a coverage left with no holders, lease and all. Both hold only for the lease owner.
 */
export type CoverageWrite = { kind: 'assigned' | 'removed'; target: AccessTarget; owner: string }

export interface TimeRange {
  from?: string | undefined
  to?: string | undefined
}

export interface AuditLog {
  /**
   * Appends an event to the tamper-evident chain (events that record a state change go through GrantStore).
   * Never replaces a recorded event: an event whose id is recorded with other content throws
   * AuditEventExistsError, and the same event sent again is recorded once.
   */
  append(event: AuditEvent, outbox?: OutboxClaim): Promise<void>
  /** One page of the events matching the filter, newest first; throws InvalidCursorError for a cursor it did not issue. */
  query(filter: AuditFilter, page: PageRequest): Promise<Page<ChainedAuditEvent>>
  /** Every event matching the filter (up to `limit`), newest first, read page by page for streaming exports. */
  stream(filter: AuditFilter, limit?: number): AsyncIterable<ChainedAuditEvent>
  /**
   * Recomputes the chain over the range (the whole log when open) and reports the first event that does not
   * match, checking it against the anchors in the range when there is an anchor store.
   */
  verify(range: TimeRange): Promise<VerifyResult>
  /** The chain's last event as the head pointer records it (seq 0 before the first). */
  head(): Promise<ChainHead>
}

/** A chain head to anchor, and when the service saw it. */
export interface HeadToAnchor extends ChainHead {
  at: string
}

/**
 * Write-once storage for the audit chain's head, out of reach of whoever can write the audit tables (in AWS, an
 * S3 bucket with Object Lock in compliance mode, where not even the service's own role can delete or change
 * what it wrote). An anchored head vouches for every event up to it. Both methods throw
 * UpstreamUnavailableError when the store does not answer.
 */
export interface AuditAnchors {
  /** Stores the head, never replacing an anchor already stored (each write is a new object). */
  write(head: HeadToAnchor): Promise<void>
  /**
   * The anchors with afterSeq < seq ≤ throughSeq (no upper bound without it), in seq order, read page by page.
   * Several may name one seq: the same head anchored twice, or a false one written by someone who holds the
   * service's credentials (the store keeps every anchor, so it cannot replace a true one); each is listed.
   */
  list(afterSeq: number, throughSeq?: number): AsyncIterable<AuditAnchor>
}

/**
 * Operational alerts, best effort: a failure to alert never fails or undoes the operation that caused it.
 * Alerts may still be on their way when these return (nobody's answer waits for them): see `flush`. The
 * decisions subscribers act on (activated, revoked, …) are not sent here but through the outbox, which
 * never loses one.
 */
export interface Notifier {
  /** An operational error (AWS unavailable, a sweep that could not finish something). */
  error(subject: string, detail: Record<string, unknown>): Promise<void>
  /** Settles once every message handed over so far has been sent or given up on (and logged). */
  flush(): Promise<void>
}

export type OutboxChannel = 'lifecycle' | 'ticket-note'

/** One message an audit event owes a subscriber, recorded with the event (see Outbox in core/outbox.ts). */
export interface OutboxMessage {
  channel: OutboxChannel
  event: AuditEvent
  /** The grant's times when the event was recorded, for a message that says until when. */
  window: { startsAt: string; expiresAt: string; accessEndsBy: string } | null
  /** Deliveries tried so far (a redelivery may find the message already delivered). */
  attempts: number
  /** When it was recorded (epoch ms): the give-up time counts from here. */
  recordedAt: number
}

/** Messages recorded with their event, claimed by the writer until `until` so that it can deliver them at once. */
export interface OutboxClaim {
  owner: string
  until: Date
  messages: OutboxMessage[]
}

/** The outbox's records (in AWS, items of the grants table on their own partition of the due index). */
export interface OutboxStore {
  /** Messages due at `now`: never claimed or claimed by a process whose claim has run out, oldest first. */
  due(now: Date, limit: number): Promise<OutboxMessage[]>
  /** Takes a due message for delivery until `until`; false when another process has it, or it is gone. */
  claim(message: OutboxMessage, owner: string, now: Date, until: Date): Promise<boolean>
  /** Removes a delivered message (while the owner's claim holds; otherwise leaves it to whoever has it). */
  delivered(message: OutboxMessage, owner: string): Promise<void>
  /** Records a failed attempt and when to try again. */
  retryAt(message: OutboxMessage, owner: string, at: Date, error: string): Promise<void>
  /** Removes a message given up on, atomically with the audit event that says so. */
  giveUp(message: OutboxMessage, owner: string, event: AuditEvent): Promise<void>
}

/** Where one channel's messages go. */
export interface MessageChannel {
  channel: OutboxChannel
  /** Whether this event owes a message on this channel. */
  wants(event: AuditEvent): boolean
  /**
   * Delivers the message; throws DeliveryError (or any error, taken as worth retrying) when it could not.
   * `redelivery`: an earlier attempt may have delivered it and lost the answer; a channel that can look
   * checks before delivering again. `signal` aborts every request of the attempt: it fires before the claim on
   * the message runs out, so that no request of this attempt can still land after another process took it over.
   */
  deliver(message: OutboxMessage, redelivery: boolean, signal: AbortSignal): Promise<void>
}

export type TicketCheck =
  | { approved: true }
  | { approved: false; failedCondition: 'ticket' | 'ticketApproval' | 'ticketState' | 'ticketWindow'; detail: string }

/** The ticket system (ServiceNow), asked before access is granted whether the ticket approves it. */
export interface TicketApproval {
  /**
   * Whether the ticket approves access over this window: approved, in a state that allows the work, and (for a
   * change) the window within its planned one. Throws UpstreamUnavailableError when the ticket system cannot
   * answer: the caller fails closed.
   */
  check(ticketId: string, window: { startsAt: Date; expiresAt: Date }): Promise<TicketCheck>
}

/**
 * One ended grant's intent to cut its live sessions (README, Session cut-off), recorded before the policy
 * changes and kept until its outcome is on the grant: what is left of it after a crash, the sweep finishes.
 */
export interface CutoffIntent extends Cutoff {
  grantId: string
  /** The grant as it ended, for its audit events. */
  grant: Pick<
    Grant,
    'userName' | 'accountId' | 'permissionSet' | 'permissionSetArn' | 'ticketId' | 'accessEndsBy' | 'endedBy'
  >
  /** 'pending' until the policies were written; then what came of it, until it is reported on the grant. */
  outcome: CutoffOutcome
}

/** 'unreachable': the account is one no service control policy applies to (the management account). */
export type CutoffOutcome = 'pending' | 'cut' | 'lapsed' | 'rejected' | 'unreachable'

/** How a reported cut-off changes its grant; null leaves the grant's fields as they are (an audit event only). */
export type SessionsCutChange = { sessionsCutAt: string | null; accessEndsBy: string } | null

/**
 * The durable side of session cut-offs (DynamoDB): intents, and the one lease that serializes every change to
 * the owned policies, across processes. Every method throws UpstreamUnavailableError when the store fails.
 */
export interface CutoffLedger {
  /** Records the intent unless one for the grant exists already (the first cut time stands). */
  recordIntent(intent: CutoffIntent): Promise<void>
  /** Intents not yet reported, oldest first, at most `limit`. */
  openIntents(limit: number): Promise<CutoffIntent[]>
  /** Takes the lease if nobody holds it (or it ran out at `now`); false when another process holds it. */
  acquireLease(owner: string, now: Date, until: Date): Promise<boolean>
  /** Extends the owner's lease; throws LeaseLostError when it is no longer the owner's. */
  renewLease(owner: string, now: Date, until: Date): Promise<void>
  /** Gives the lease up, recording when the earliest statement in force may be pruned (null: none in force). */
  releaseLease(owner: string, nextPruneAt: number | null | undefined): Promise<void>
  /** When the earliest statement in force may be pruned, as the last lease holder recorded it (null: none). */
  nextPruneAt(): Promise<number | null>
  /** Records what came of intents once the policies are written (under the lease). */
  recordOutcome(grantIds: string[], outcome: Exclude<CutoffOutcome, 'pending'>): Promise<void>
  /**
   * Writes the outcome on an ended grant with its audit event and removes the intent, atomically. False (nothing
   * written) while the grant has not ended yet: its end is still being written, and the intent is reported later.
   */
  report(intent: CutoffIntent, change: SessionsCutChange, event: AuditEvent, outbox?: OutboxClaim): Promise<boolean>
}

/**
 * The service control policies the service owns (Organizations). `read` and `write` throw UpstreamUnavailableError
 * (retryable for ConcurrentModificationException and TooManyRequestsException, after the adapter's own retries).
 */
export interface CutoffPolicies {
  readonly policyIds: readonly string[]
  /** The AWS partition of the accounts' role ARNs (aws, aws-us-gov, aws-cn). */
  readonly partition: string
  /** Accounts no service control policy applies to: the organization's management account, when known. */
  readonly unreachableAccounts: readonly string[]
  /** The policy's content as Organizations holds it now. */
  read(policyId: string): Promise<string>
  /** Replaces the policy's content (checked by Organizations: ConstraintViolationException is not retryable). */
  write(policyId: string, content: string): Promise<void>
}

/** An audit event before it gets its id and time. */
export type AuditDraft = Omit<AuditEvent, 'id' | 'at'>

export type { EndReason }

/*
 * The HTTP edge's Idempotency-Key records (src/http/idempotency.ts decides; an adapter stores). Declared here with
 * the other ports so that the adapter implementing it does not depend on the HTTP layer.
 */
export interface StoredResponse {
  statusCode: number
  body: string
  contentType: string
  location?: string | undefined
}

export interface IdempotencyClaim {
  fingerprint: string
  now: number
  expiresAt: number
  /** Unique to one request, so a request whose own write was retried after a dropped answer recognises it. */
  owner: string
}

export interface IdempotencyRecord {
  /** in_progress: a request holds the key; completed: its answer is stored; released: it failed with a 5xx and may be retried. */
  state: 'in_progress' | 'completed' | 'released'
  fingerprint: string
  /** When the key was first claimed; kept across take-overs so ids derived from it stay the same. */
  firstClaimedAt: number
  claimedAt: number
  owner: string
  response?: StoredResponse
}

export interface IdempotencyStore {
  /** Claims a new key; when it is already known, answers its record instead. */
  claim(
    recordKey: string,
    claim: IdempotencyClaim,
  ): Promise<{ claimed: true } | { claimed: false; record: IdempotencyRecord }>
  /** Takes over a key whose holder failed or died; false if someone else moved it first. */
  takeOver(recordKey: string, previous: IdempotencyRecord, claim: IdempotencyClaim): Promise<boolean>
  /** Stores the answer of the request that holds the key, for its retries to replay. */
  complete(recordKey: string, response: StoredResponse): Promise<void>
  /** Lets the key be claimed again (its request failed with a 5xx and may be retried). */
  release(recordKey: string): Promise<void>
}

/**
 * A delay queue for grants due before the next sweep (Lambda, which is frozen between invocations and so cannot
 * keep timers): each is delivered back to the function at its second, which then acts as a due timer would.
 * Delivery is at least once; a repeat, or a message for a grant that changed, finds nothing to do.
 */
export interface DueQueue {
  /** Throws UpstreamUnavailableError when the queue cannot be reached: the sweep is then the only path. */
  send(due: readonly { grantId: string; at: Date }[], now: Date): Promise<void>
}
