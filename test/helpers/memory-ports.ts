import { LeaseLostError, UpstreamUnavailableError } from '../../src/core/errors.ts'
import type { AccessTarget } from '../../src/core/grant-model.ts'
import type {
  BeforeSend,
  Coverage,
  CoveragePatch,
  GrantStore,
  IdentityCenter,
  LeaseAttempt,
  PermissionSetInfo,
  ProvisioningOutcome,
} from '../../src/core/ports.ts'

/*
 * In-memory fakes of the ports the coverage reconciler uses, for unit tests of its state machine that run in
 * milliseconds. They keep the promises the ports make (conditions, answers as written, LeaseLostError) as the
 * DynamoDB and Identity Center adapters do; the moto tests remain the proof against a real server.
 */

type Stored = Coverage & { leaseOwner?: string | undefined; leaseUntil?: number | undefined }

/** The coverage records and their leases, as GrantStore keeps them (one assignment's record per target). */
export class MemoryCoverageStore implements GrantStore {
  private readonly records = new Map<string, Stored>()
  /** Every call made, by method name, in order. */
  readonly calls: string[] = []
  /** When each assignment's periodic check was last scheduled for. */
  readonly checks = new Map<string, Date>()

  /** Puts a record as it would be after earlier writes, with its lease held by `leaseOwner` when given. */
  put(coverage: Coverage, lease?: { owner: string; until: number }): void {
    this.records.set(keyOf(coverage.target), {
      ...structuredClone(coverage),
      leaseOwner: lease?.owner,
      leaseUntil: lease?.until,
    })
  }

  /** The record as stored, lease included; undefined when there is none. */
  peek(target: AccessTarget): Stored | undefined {
    const stored = this.records.get(keyOf(target))
    return stored && structuredClone(stored)
  }

  /** Another process takes the lease over (as after ours ran out), until `until`. */
  takeOver(target: AccessTarget, owner: string, until: number): void {
    const stored = this.records.get(keyOf(target))
    if (stored) Object.assign(stored, { leaseOwner: owner, leaseUntil: until })
  }

  async getCoverage(target: AccessTarget): Promise<Coverage | undefined> {
    this.calls.push('getCoverage')
    return this.answer(target)
  }

  async acquireLease(target: AccessTarget, owner: string, now: Date, until: Date): Promise<LeaseAttempt> {
    this.calls.push('acquireLease')
    const stored = this.records.get(keyOf(target))
    const free =
      stored &&
      (stored.leaseOwner === undefined || (stored.leaseUntil ?? 0) < now.getTime() || stored.leaseOwner === owner)
    const inPlace = stored && stored.holders.length > 0 && (stored.external || stored.assignment === 'present')
    if (!stored || !free || inPlace) return { acquired: false, coverage: this.answer(target) }
    Object.assign(stored, { leaseOwner: owner, leaseUntil: until.getTime() })
    return { acquired: true, coverage: this.answer(target) as Coverage }
  }

  async updateCoverage(
    target: AccessTarget,
    owner: string,
    patch: CoveragePatch,
    options: { releaseLease?: boolean } = {},
  ): Promise<Coverage> {
    this.calls.push('updateCoverage')
    const stored = this.owned(target, owner)
    if (!stored) throw new LeaseLostError()
    Object.assign(stored, patch)
    if (options.releaseLease) Object.assign(stored, { leaseOwner: undefined, leaseUntil: undefined })
    return this.answer(target) as Coverage
  }

  async recordCreationIntent(target: AccessTarget, owner: string, now: Date) {
    this.calls.push('recordCreationIntent')
    const stored = this.owned(target, owner)
    if (stored?.assignment !== 'absent' || stored.external) return this.notRecorded(target, owner)
    Object.assign(stored, { assignment: 'creating', requestId: null, creationIntendedAt: now.getTime() })
    return { recorded: true as const, coverage: this.answer(target) as Coverage }
  }

  async recordRemovalIntent(target: AccessTarget, owner: string) {
    this.calls.push('recordRemovalIntent')
    const stored = this.owned(target, owner)
    if (stored?.assignment !== 'present' || stored.holders.length > 0 || stored.external)
      return this.notRecorded(target, owner)
    Object.assign(stored, { assignment: 'deleting', requestId: null })
    return { recorded: true as const, coverage: this.answer(target) as Coverage }
  }

  async deleteIdleCoverage(target: AccessTarget, owner: string): Promise<boolean> {
    this.calls.push('deleteIdleCoverage')
    const stored = this.owned(target, owner)
    if (!stored || stored.holders.length > 0) return false
    this.records.delete(keyOf(target))
    return true
  }

  async releaseLease(target: AccessTarget, owner: string): Promise<void> {
    this.calls.push('releaseLease')
    const stored = this.owned(target, owner)
    if (stored) Object.assign(stored, { leaseOwner: undefined, leaseUntil: undefined })
  }

  async renewLease(target: AccessTarget, owner: string, now: Date, until: Date): Promise<void> {
    this.calls.push('renewLease')
    const stored = this.owned(target, owner)
    if (!stored || (stored.leaseUntil ?? 0) <= now.getTime()) throw new LeaseLostError()
    stored.leaseUntil = until.getTime()
  }

  async scheduleCoverageCheck(target: AccessTarget, at: Date): Promise<void> {
    this.calls.push('scheduleCoverageCheck')
    if (this.records.has(keyOf(target))) this.checks.set(keyOf(target), at)
  }

  private owned(target: AccessTarget, owner: string): Stored | undefined {
    const stored = this.records.get(keyOf(target))
    return stored?.leaseOwner === owner ? stored : undefined
  }

  private notRecorded(target: AccessTarget, owner: string) {
    return {
      recorded: false as const,
      coverage: this.answer(target),
      leaseHeld: this.owned(target, owner) !== undefined,
    }
  }

  /** The coverage as the port answers it: without the lease's fields, a copy the caller may keep. */
  private answer(target: AccessTarget): Coverage | undefined {
    const stored = this.records.get(keyOf(target))
    if (!stored) return undefined
    const { leaseOwner: _owner, leaseUntil: _until, ...coverage } = structuredClone(stored)
    return coverage
  }

  // The grant side of the store is not the reconciler's: these fakes do not keep grants.
  createGrant(): never {
    return unused('createGrant')
  }
  getGrant(): never {
    return unused('getGrant')
  }
  transition(): never {
    return unused('transition')
  }
  listGrants(): never {
    return unused('listGrants')
  }
  dueItems(): never {
    return unused('dueItems')
  }
  acquireSweepLease(): never {
    return unused('acquireSweepLease')
  }
  releaseSweepLease(): never {
    return unused('releaseSweepLease')
  }
}

/**
 * What Identity Center answers the next call that creates, removes or asks after an assignment:
 * - `done`: carried out at once (created, or removed);
 * - `already`: the assignment already was as asked (exists for a creation, gone for a removal); the call answers
 *   done without a second copy, as Identity Center does;
 * - `in-progress`: accepted, not finished (an id to ask about);
 * - `conflict`: refused because another operation on the assignment is under way (ConflictException);
 * - `throttled`: refused before it acted (ThrottlingException, retryable);
 * - `lost-answer`: carried out, but the answer never arrived (a dropped connection, retryable);
 * - `failed`: refused for good (a reason);
 * - `exists`: a creation refused because the access exists, someone else having made it just before (the
 *   Identity Store's answer to a second membership of a user and group; Identity Center never gives it).
 * Only the first such call meets the answer; later ones find Identity Center working normally (`done`).
 */
export type IdentityCenterAnswer =
  | 'done'
  | 'already'
  | 'in-progress'
  | 'conflict'
  | 'throttled'
  | 'lost-answer'
  | 'failed'
  | 'exists'

export const IDENTITY_CENTER_ANSWERS: readonly IdentityCenterAnswer[] = [
  'done',
  'already',
  'in-progress',
  'conflict',
  'throttled',
  'lost-answer',
  'failed',
  'exists',
]

/** Identity Center's account assignments for one test, with the answers a test sets. */
export class MemoryIdentityCenter implements IdentityCenter {
  /** The assignments that exist, by target. */
  readonly assigned = new Set<string>()
  /** Requests accepted and not finished: what each will do when it finishes. */
  private readonly requests = new Map<string, { target: AccessTarget; create: boolean }>()
  /** Every call made, by method name, in order (only those that reached Identity Center). */
  readonly calls: string[] = []
  /** The answer the next call that creates, removes or asks after a request meets (see IdentityCenterAnswer). */
  next: IdentityCenterAnswer = 'done'
  /** Runs before every call, before its beforeSend: where a test moves time or takes the lease away. */
  onCall: (() => void | Promise<void>) | undefined
  private requestIds = 0

  /** An accepted request, as if sent earlier: its id. */
  accepted(target: AccessTarget, create: boolean): string {
    const id = `request-${++this.requestIds}`
    this.requests.set(id, { target, create })
    return id
  }

  async findPermissionSet(name: string): Promise<PermissionSetInfo | undefined> {
    return { arn: `arn:aws:sso:::permissionSet/${name}`, name, sessionDurationSeconds: 3600 }
  }

  async assignmentExists(target: AccessTarget): Promise<boolean> {
    await this.onCall?.()
    this.calls.push('assignmentExists')
    return this.assigned.has(keyOf(target))
  }

  createAssignment(target: AccessTarget, beforeSend?: BeforeSend): Promise<ProvisioningOutcome> {
    return this.change('createAssignment', target, true, beforeSend)
  }

  deleteAssignment(target: AccessTarget, beforeSend?: BeforeSend): Promise<ProvisioningOutcome> {
    return this.change('deleteAssignment', target, false, beforeSend)
  }

  creationStatus(requestId: string): Promise<ProvisioningOutcome> {
    return this.status('creationStatus', requestId)
  }

  deletionStatus(requestId: string): Promise<ProvisioningOutcome> {
    return this.status('deletionStatus', requestId)
  }

  private async change(
    operation: string,
    target: AccessTarget,
    create: boolean,
    beforeSend?: BeforeSend,
  ): Promise<ProvisioningOutcome> {
    await this.onCall?.()
    await beforeSend?.()
    this.calls.push(operation)
    const answer = this.take()
    const fail = this.failure(operation, answer)
    if (fail) throw fail
    if (answer === 'conflict') return { state: 'in_progress', requestId: null }
    if (answer === 'failed') return { state: 'failed', requestId: null, reason: 'refused by the fake' }
    if (answer === 'in-progress') return { state: 'in_progress', requestId: this.accepted(target, create) }
    this.apply(target, create)
    if (answer === 'exists') {
      if (!create) throw new Error('the fake: only a creation can be refused as existing')
      return { state: 'exists', requestId: null }
    }
    if (answer === 'lost-answer')
      throw new UpstreamUnavailableError('Identity Center', operation, 'the answer was lost', true)
    return { state: 'succeeded', requestId: null }
  }

  private async status(operation: string, requestId: string): Promise<ProvisioningOutcome> {
    await this.onCall?.()
    this.calls.push(operation)
    const answer = this.take()
    const fail = this.failure(operation, answer === 'lost-answer' ? 'throttled' : answer)
    if (fail) throw fail
    const request = this.requests.get(requestId)
    if (answer === 'in-progress') return { state: 'in_progress', requestId }
    if (answer === 'failed') return { state: 'failed', requestId, reason: 'refused by the fake' }
    if (request) this.apply(request.target, request.create)
    return { state: 'succeeded', requestId }
  }

  /** The answer the current call meets; the ones after it find Identity Center working. */
  private take(): IdentityCenterAnswer {
    const answer = this.next
    this.next = 'done'
    return answer
  }

  private failure(operation: string, answer: IdentityCenterAnswer): UpstreamUnavailableError | undefined {
    return answer === 'throttled'
      ? new UpstreamUnavailableError('Identity Center', operation, 'ThrottlingException', true)
      : undefined
  }

  private apply(target: AccessTarget, create: boolean): void {
    if (create) this.assigned.add(keyOf(target))
    else this.assigned.delete(keyOf(target))
  }
}

export function keyOf(target: AccessTarget): string {
  if (target.kind === 'membership') return `${target.userId}|group|${target.groupId}`
  return `${target.userId}|${target.accountId}|${target.permissionSetArn}`
}

function unused(method: string): never {
  throw new Error(`MemoryCoverageStore.${method}: the in-memory store keeps coverage only`)
}
