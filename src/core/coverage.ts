import { randomUUID } from 'node:crypto'
import type { Clock } from './clock.ts'
import { ensureTimeFor, timeLeftMs } from './deadline.ts'
import { LeaseLostError, UpstreamUnavailableError } from './errors.ts'
import { type AccessTarget, isMembership } from './grant-model.ts'
import type { BeforeSend, Coverage, CoverageWrite, GrantStore, IdentityCenter, ProvisioningOutcome } from './ports.ts'
import { type BackoffLimits, backoffMs, pause } from './retry.ts'

/** How often the sweep checks that an assignment our grants rely on still exists in Identity Center. */
export const COVERAGE_CHECK_INTERVAL_MS = 5 * 60_000
/** How long one process may hold the right to change an assignment before another may take over. */
export const LEASE_MS = 60_000
/**
 * The lease time a holder must have left when a request to Identity Center leaves, renewing it first if not:
 * longer than any such call can be under way (the adapters abandon one after 13 s at most), so a request is
 * never still on its way when the lease runs out and another process, finding nothing, concludes it was
 * never sent.
 */
export const SEND_MARGIN_MS = 30_000
/**
 * How long after a creation was recorded an accepted one may still be provisioning (and so not yet listed).
 * Identity Center usually takes seconds; this leaves a wide margin.
 */
export const CREATION_SETTLE_MS = 5 * 60_000
/**
 * How long after a creation of ours was last intended an assignment that shows up is still taken for ours
 * (and removed if no grant holds it), when the creation was never confirmed: its record is kept that long and
 * looked at on every sweep. Well past any provisioning time Identity Center has shown.
 */
export const ORPHAN_WATCH_MS = 60 * 60_000
/**
 * How long Identity Center may answer ConflictException (another operation on the assignment under way) before
 * that counts as a failure, alerted on every sweep: its own operations finish in seconds.
 */
export const CONFLICT_PATIENCE_MS = 5 * 60_000
/** How long to wait for another process's change to an assignment when nothing says otherwise. */
export const DEFAULT_LEASE_WAIT_MS = 2000
/** Rounds one reconcile takes (a change, then a look at what came of it, …) before it leaves the rest to the sweep. */
const MAX_ROUNDS = 4
/** Backoff between rounds after Identity Center failed (throttled, 5xx, dropped connection). */
const ROUND_BACKOFF: BackoffLimits = { baseMs: 100 }
/** Backoff between attempts to take a lease another process holds (see acquireLease). */
const LEASE_BACKOFF: BackoffLimits = { baseMs: 25, maxMs: 400 }

/** What an attempt to take the lease came to: the coverage under it, or a state that needs no change. */
type LeaseTaking = { kind: 'acquired'; coverage: Coverage; until: number } | { kind: 'settled'; state: CoverageState }
/** The caller's own transition, carrying the reconciler's last write; false when it could not be written. */
export type Finish = (write: CoverageWrite) => Promise<boolean>

/**
 * What a new grant's own record did besides recording the grant (see GrantStore.createGrant with a lease): it
 * probably took the coverage lease for `owner` (the owner's first conditional write finds out), and perhaps
 * recorded the creation as intended.
 */
export interface LeaseTakenWithGrant {
  /** The grant whose record it was: the coverage's holder as that record wrote it. */
  grantId: string
  owner: string
  /** When that lease runs out. */
  until: Date
  /**
   * The record also recorded the creation as intended, under `owner`, and nothing has been sent: the first
   * step sends it. Should that call fail, the record says 'creating' and the next round asks Identity Center
   * what became of it, like after any interrupted creation.
   */
  creationIntended: boolean
  /**
   * Whether the assignment exists, asked before the record was written (a round trip saved before a creation).
   * Only a 'no' is used as it is: no assignment of ours can appear between that answer and a write that finds the
   * record 'absent' under our lease (ours are recorded 'creating' before they are made), so it is as good as
   * asking afterwards. Anything else is asked again under the lease. Undefined: nobody asked.
   */
  lookedBefore: Promise<boolean | undefined> | undefined
}

export interface ReconcileOptions {
  /** The lease a new grant's record took, and what that record wrote (a request's first reconcile only). */
  takenWithGrant?: LeaseTakenWithGrant
  /**
   * Ask Identity Center whether the assignment exists while the lease is taken, rather than after (unless
   * `takenWithGrant` brings an answer already). Used by the first step that needs it, and only by that one.
   */
  lookAhead?: boolean
  /**
   * For a grant whose settling follows the change: its transition records the change too (one transaction
   * instead of two writes). When it returns true the grant has moved, and the state answered is final. Passed
   * to every step until one makes a change it can carry.
   */
  finish?: Finish
}

/**
 * What one step of the reconcile came to: `progress`, the coverage its last write left (to go on from the next
 * round); or `settled`, a state to answer. `leaseReleased`: that last write gave the lease up (or the record is
 * gone), so there is nothing to release at the end.
 */
type Step =
  | { kind: 'progress'; coverage: Coverage; leaseReleased: boolean }
  | { kind: 'settled'; state: CoverageState; leaseReleased: boolean }

const progress = (coverage: Coverage, leaseReleased = false): Step => ({ kind: 'progress', coverage, leaseReleased })
const settled = (state: CoverageState, leaseReleased = false): Step => ({ kind: 'settled', state, leaseReleased })

export type CoverageState =
  /** Access is in place for the holders: our assignment, or a permanent one we never touch. */
  | { kind: 'present'; external: boolean }
  /**
   * No access is in place and none is needed. `watching`: a creation of ours was never confirmed, so Identity
   * Center is still watched for it (see removeOrphan). `external`: none of ours, that is; a permanent assignment
   * we never touch still gives the access.
   */
  | { kind: 'absent'; watching?: boolean; external?: boolean }
  /** Identity Center has not finished, or another process holds the lease: the sweep will look again. */
  | { kind: 'pending' }
  /** Identity Center refused to create the assignment. */
  | { kind: 'failed'; reason: string }

/**
 * One reconcile's hold on an assignment's lease: its owner, until when it runs, whether this process may hold
 * it now, and the renewal that every request to Identity Center waits for before it leaves.
 */
class CoverageLease {
  readonly owner: string
  /** Whether this process may hold the lease: released at the end if so (a no-op when it turns out it did not). */
  held: boolean
  private until: number | undefined
  private readonly store: GrantStore
  private readonly clock: Clock
  private readonly target: AccessTarget

  constructor(store: GrantStore, clock: Clock, target: AccessTarget, takenWithGrant: LeaseTakenWithGrant | undefined) {
    this.store = store
    this.clock = clock
    this.target = target
    this.owner = takenWithGrant?.owner ?? randomUUID()
    // A lease probably taken with the grant's record: released at the end even if it was not (a no-op then).
    this.held = takenWithGrant !== undefined
    this.until = takenWithGrant?.until.getTime()
  }

  /** The lease was taken, until `until` (epoch ms). */
  taken(until: number): void {
    this.until = until
    this.held = true
  }

  /**
   * Runs immediately before a request to Identity Center leaves: the lease must have SEND_MARGIN_MS left, so
   * when waiting for the rate or a creation slot took it near its end, it is renewed, or nothing is sent
   * (LeaseLostError).
   */
  readonly renewBeforeSend: BeforeSend = async () => {
    const now = this.clock.now().getTime()
    if (this.until !== undefined && this.until - now >= SEND_MARGIN_MS) return
    await this.store.renewLease(this.target, this.owner, new Date(now), new Date(now + LEASE_MS))
    this.until = now + LEASE_MS
  }

  /** Gives the lease up at the end, if this process may still hold it. */
  async releaseIfHeld(): Promise<void> {
    if (this.held) await this.store.releaseLease(this.target, this.owner)
  }
}

/** One reconcile under way: its lease, the caller's transition, and what the first steps still have to use. */
interface Run {
  target: AccessTarget
  lease: CoverageLease
  finish: Finish | undefined
  /** An early answer on whether the assignment exists, until a step has used it (see `lookedBefore`). */
  look: Promise<boolean | undefined> | undefined
  /** A creation recorded with the grant and not yet sent: the first step sends it. */
  creationToSend: boolean
}

/**
 * Brings one Identity Center assignment in line with the grants that hold it: present while any grant holds
 * it, absent once none does, never touching a permanent assignment that existed before our first grant.
 *
 * Only the holder of the coverage lease calls Identity Center, and it writes what it is about to do
 * ('creating', 'deleting') before doing it, so a crash at any point leaves a record the next call can finish.
 * Holders come and go without the lease (a transaction on the grant and the coverage); whoever holds the
 * lease re-reads them after every change in Identity Center, so no arrival or departure is missed.
 */
export class CoverageReconciler {
  private readonly store: GrantStore
  private readonly identityCenter: IdentityCenter
  private readonly clock: Clock

  private readonly leaseWaitMs: number
  private readonly pause: (ms: number) => Promise<void>

  /**
   * `leaseWaitMs`: how long to wait for another process's change to the same assignment (see acquireLease).
   * `pause`: how a backoff waits (real time, unless a unit test runs the waits at once).
   */
  constructor(
    store: GrantStore,
    identityCenter: IdentityCenter,
    clock: Clock,
    options: { leaseWaitMs?: number | undefined; pause?: (ms: number) => Promise<void> } = {},
  ) {
    this.store = store
    this.identityCenter = identityCenter
    this.clock = clock
    this.leaseWaitMs = options.leaseWaitMs ?? DEFAULT_LEASE_WAIT_MS
    this.pause = options.pause ?? pause
  }

  /**
   * Takes the assignment towards the state its holders want, in up to MAX_ROUNDS rounds of one step each, and
   * answers where it got: 'pending' when Identity Center has not finished, another process holds the lease or
   * took it over (LeaseLostError), or the rounds ran out. Throws UpstreamUnavailableError when Identity Center
   * still fails on the last round, or fails in a way a retry cannot help (a conflict stuck for
   * CONFLICT_PATIENCE_MS); whatever was under way is recorded, and the sweep goes on from there.
   */
  async reconcile(target: AccessTarget, options: ReconcileOptions = {}): Promise<CoverageState> {
    const { takenWithGrant } = options
    const run: Run = {
      target,
      lease: new CoverageLease(this.store, this.clock, target, takenWithGrant),
      finish: options.finish,
      look: takenWithGrant?.lookedBefore ?? (options.lookAhead ? this.look(target) : undefined),
      creationToSend: takenWithGrant?.creationIntended === true,
    }
    try {
      return await this.rounds(run, takenWithGrant && (await this.coverageRecordedWithGrant(run, takenWithGrant)))
    } catch (error) {
      // Another process took over the assignment (our lease ran out): it finishes the work, and the next
      // sweep looks again; nothing here is lost, as every step was recorded before it was taken.
      if (error instanceof LeaseLostError) return { kind: 'pending' }
      throw error
    } finally {
      await run.lease.releaseIfHeld()
    }
  }

  /**
   * The coverage a new grant's own record wrote, as its writer knows it without reading it back: 'creating'
   * when it intended the creation, 'absent' when a look found no assignment (the first write,
   * recordCreationIntent, checks that before anything is done); otherwise unknown (read under the lease).
   */
  private async coverageRecordedWithGrant(run: Run, grant: LeaseTakenWithGrant): Promise<Coverage | undefined> {
    const recorded = (assignment: 'absent' | 'creating', creationIntendedAt: number | null): Coverage => ({
      target: run.target,
      holders: [grant.grantId],
      assignment,
      external: false,
      requestId: null,
      lastFailure: null,
      creationIntendedAt,
      lastGrantId: null,
      conflictSince: null,
    })
    if (run.creationToSend) return recorded('creating', this.clock.now().getTime())
    if ((await run.look) === false) return recorded('absent', null)
    return undefined
  }

  /** The rounds of one reconcile, from the coverage as last read or written (writes answer the item as they left it). */
  private async rounds(run: Run, known: Coverage | undefined): Promise<CoverageState> {
    let coverage = known
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const leased =
        run.lease.held && coverage ? { kind: 'acquired' as const, coverage } : await this.leaseFor(run, coverage)
      if (leased.kind === 'settled') return leased.state
      const step = await this.round(run, leased.coverage, round)
      if (step.leaseReleased) run.lease.held = false
      if (step.kind === 'settled') return step.state
      coverage = step.coverage
    }
    return { kind: 'pending' }
  }

  /**
   * Takes the lease for the next round. A coverage last seen after our lease went with a write is not worth
   * a lease when it already shows the access in place.
   */
  private async leaseFor(run: Run, lastSeen: Coverage | undefined): Promise<LeaseTaking> {
    const state = !run.lease.held && lastSeen ? stateNeedingNoChange(lastSeen) : undefined
    if (state?.kind === 'present') return { kind: 'settled', state }
    const lease = await this.acquireLease(run.target, run.lease.owner)
    if (lease.kind === 'acquired') run.lease.taken(lease.until)
    return lease
  }

  /**
   * One round under the lease: an idle record is dropped (or kept while watched), a settled one answered, and
   * anything else takes one step. A retryable failure of Identity Center is waited out and the coverage read
   * again, so that the next round first looks at what Identity Center actually did (the intent is recorded):
   * a retry never duplicates or orphans an assignment.
   */
  private async round(run: Run, coverage: Coverage, round: number): Promise<Step> {
    const state = stateNeedingNoChange(coverage)
    if (state?.kind === 'absent') return this.idle(run, coverage)
    if (state) return settled(state)
    try {
      const step = await this.firstOrNextStep(run, coverage)
      run.look = undefined
      return step
    } catch (error) {
      if (!(error instanceof UpstreamUnavailableError) || !error.retryable || round === MAX_ROUNDS - 1) throw error
      const wait = backoffMs(round, ROUND_BACKOFF)
      ensureTimeFor(wait)
      await this.pause(wait)
      const reread = await this.store.getCoverage(run.target)
      return reread ? progress(reread) : settled({ kind: 'absent' })
    }
  }

  /** The creation a new grant's record intended, sent at once; otherwise the step the coverage calls for. */
  private firstOrNextStep(run: Run, coverage: Coverage): Promise<Step> {
    if (!run.creationToSend) return this.step(run, coverage)
    run.creationToSend = false
    return this.create(run, coverage, true)
  }

  /**
   * No holder and nothing of ours assigned. A creation of ours that never showed may still appear: the record is
   * kept, so that it is looked for and an assignment found here is known to be ours (see removeOrphan).
   * Otherwise it is dropped, so that a later grant looks at Identity Center afresh; if a holder arrived
   * meanwhile, the next round goes on from the record as it is.
   */
  private async idle(run: Run, coverage: Coverage): Promise<Step> {
    if (this.isWatched(coverage)) return settled({ kind: 'absent', watching: true })
    if (await this.store.deleteIdleCoverage(run.target, run.lease.owner)) {
      return settled(coverage.external ? { kind: 'absent', external: true } : { kind: 'absent' }, true)
    }
    const current = await this.store.getCoverage(run.target)
    return current ? progress(current) : settled({ kind: 'absent' })
  }

  /**
   * Asks Identity Center whether an assignment exists, ahead of the lease (see `lookAhead`); a failure is
   * no answer, never 'no'.
   */
  private look(target: AccessTarget): Promise<boolean | undefined> {
    return this.identityCenter.assignmentExists(target).catch(() => undefined)
  }

  /**
   * Takes the lease unless there is nothing to do. Another process holding it is usually done once Identity
   * Center has carried out one change (seconds), so wait for it, up to `leaseWaitMs` of real time: each
   * refusal shows the coverage as it is, which may meanwhile be settled or gone.
   */
  private async acquireLease(target: AccessTarget, owner: string): Promise<LeaseTaking> {
    const giveUpAt = performance.now() + this.leaseWaitMs
    for (let attempt = 0; ; attempt++) {
      const now = this.clock.now()
      const until = now.getTime() + LEASE_MS
      const lease = await this.store.acquireLease(target, owner, now, new Date(until))
      if (lease.acquired) return { kind: 'acquired', coverage: lease.coverage, until }
      if (!lease.coverage) return { kind: 'settled', state: { kind: 'absent' } }
      const state = stateNeedingNoChange(lease.coverage)
      if (state?.kind === 'present') return { kind: 'settled', state }
      const wait = backoffMs(attempt, LEASE_BACKOFF)
      // Out of patience, or of the request's time: the sweep looks again.
      if (performance.now() + wait > giveUpAt || wait > timeLeftMs()) break
      await this.pause(wait)
    }
    return { kind: 'settled', state: { kind: 'pending' } }
  }

  /** One change towards the wanted state: the coverage it left (to go on from), or a final state. */
  private async step(run: Run, coverage: Coverage): Promise<Step> {
    if (coverage.assignment === 'creating' || coverage.assignment === 'deleting') return this.followUp(run, coverage)
    if (coverage.holders.length > 0) return this.createUnlessThere(run, coverage)
    // Not wanted and assignment 'present' (ours): remove it, unless a grant joined since the coverage was read.
    const intent = await this.store.recordRemovalIntent(run.target, run.lease.owner)
    if (!intent.recorded) return goOnFrom(intent)
    return this.remove(run, coverage)
  }

  /** A change recorded as under way ('creating', 'deleting'): finds out what became of it, and goes on from there. */
  private async followUp(run: Run, coverage: Coverage): Promise<Step> {
    const { target } = run
    const creating = coverage.assignment === 'creating'
    const outcome = await this.pendingOutcome(coverage)
    if (outcome === 'unconfirmed') return settled({ kind: 'pending' })
    if (outcome === 'given-up') {
      // Nobody needs it and nothing showed in the settle window: the grant may end, while the record stays
      // (creationIntendedAt kept) and is watched, from the next sweep on, in case it was accepted after all.
      const given = await this.store.updateCoverage(target, run.lease.owner, {
        assignment: 'absent',
        requestId: null,
        conflictSince: null,
      })
      await this.store.scheduleCoverageCheck(target, this.clock.now())
      return progress(given)
    }
    if (outcome === 'send-again') {
      // Whether the last request took effect cannot be known from a listing, so it is sent again: Identity
      // Center makes no second assignment and removes none twice, and answers a conflict while one is under way.
      if (!creating) return this.remove(run, coverage)
      await this.store.updateCoverage(target, run.lease.owner, { creationIntendedAt: this.clock.now().getTime() })
      return this.create(run, coverage, false)
    }
    return this.record(run, coverage, creating ? 'creating' : 'deleting', outcome, false)
  }

  /**
   * The assignment is wanted and recorded 'absent': before creating, find out whether one is already there (the
   * early look's 'no' stands for the answer). One found is permanent only if no creation of ours may be behind
   * it (one accepted but not yet listed when we last looked); otherwise it is ours, now in place.
   */
  private async createUnlessThere(run: Run, coverage: Coverage): Promise<Step> {
    const { target } = run
    const exists = (await run.look) === false ? false : await this.identityCenter.assignmentExists(target)
    if (exists) {
      const external = coverage.creationIntendedAt === null
      const patch = external
        ? { external: true, lastFailure: null, conflictSince: null }
        : { assignment: 'present' as const, lastFailure: null, conflictSince: null }
      return progress(await this.store.updateCoverage(target, run.lease.owner, patch, { releaseLease: true }), true)
    }
    const intent = await this.store.recordCreationIntent(target, run.lease.owner, this.clock.now())
    if (!intent.recorded) return goOnFrom(intent)
    return this.create(run, coverage, coverage.creationIntendedAt === null)
  }

  /**
   * Sends the creation whose intent is recorded, and records what came of it. `first`: no creation of ours
   * can be under way besides this one (nothing was intended since our last confirmed removal).
   */
  private async create(run: Run, coverage: Coverage, first: boolean): Promise<Step> {
    const outcome = await this.identityCenter.createAssignment(run.target, run.lease.renewBeforeSend)
    return this.record(run, coverage, 'creating', outcome, first)
  }

  /** Sends the removal whose intent ('deleting') is recorded, and records what came of it. */
  private async remove(run: Run, coverage: Coverage): Promise<Step> {
    const outcome = await this.identityCenter.deleteAssignment(run.target, run.lease.renewBeforeSend)
    return this.record(run, coverage, 'deleting', outcome, false)
  }

  /**
   * Records what Identity Center answered a creation or removal: under way (its request id kept), a conflict with
   * another operation, done (see succeeded), already there (ours unless `first`: see foundOnCreation), or refused.
   * `first` as for create.
   */
  private async record(
    run: Run,
    coverage: Coverage,
    operation: 'creating' | 'deleting',
    outcome: ProvisioningOutcome,
    first: boolean,
  ): Promise<Step> {
    if (outcome.state === 'in_progress' && outcome.requestId === null)
      return this.conflicted(run, coverage, operation, first)
    if (outcome.state === 'in_progress') {
      await this.store.updateCoverage(run.target, run.lease.owner, {
        requestId: outcome.requestId,
        conflictSince: null,
      })
      return settled({ kind: 'pending' })
    }
    if (outcome.state === 'succeeded') return this.succeeded(run, operation)
    if (outcome.state === 'exists') return first ? this.foundOnCreation(run) : this.succeeded(run, operation)
    const creating = operation === 'creating'
    const reverted = await this.store.updateCoverage(run.target, run.lease.owner, {
      assignment: creating ? 'absent' : 'present',
      requestId: null,
      lastFailure: outcome.reason,
      conflictSince: null,
      // A refused creation leaves nothing of ours behind, unless an earlier one may still be under way.
      ...(creating && first ? { creationIntendedAt: null } : {}),
    })
    if (creating && coverage.holders.length > 0) return settled({ kind: 'failed', reason: outcome.reason })
    return creating ? progress(reverted) : settled({ kind: 'pending' })
  }

  /**
   * A first creation refused because the access exists (see ProvisioningOutcome `exists`): no creation of ours can
   * be behind it, so someone else made it after we looked (an administrator adding the user meanwhile). It is
   * recorded as pre-existing, as if the look before the creation had found it, and so never removed (invariant 2).
   */
  private async foundOnCreation(run: Run): Promise<Step> {
    const patch = {
      assignment: 'absent' as const,
      external: true,
      creationIntendedAt: null,
      requestId: null,
      lastFailure: null,
      conflictSince: null,
    }
    return progress(await this.store.updateCoverage(run.target, run.lease.owner, patch, { releaseLease: true }), true)
  }

  /**
   * A conflict (ConflictException): another operation on the assignment is under way, and it decides; we look
   * again later. Identity Center's own operations finish in seconds: one that lasts past CONFLICT_PATIENCE_MS is
   * stuck, and is thrown (UpstreamUnavailableError, not retryable), so that it is counted and alerted on every
   * sweep until it is not.
   */
  private async conflicted(
    run: Run,
    coverage: Coverage,
    operation: 'creating' | 'deleting',
    first: boolean,
  ): Promise<Step> {
    const creating = operation === 'creating'
    const now = this.clock.now().getTime()
    const conflictSince = coverage.conflictSince ?? now
    if (now - conflictSince > CONFLICT_PATIENCE_MS) {
      // Named after the service and operation that answered, so that an alert points where to look.
      const [service, operation] = isMembership(run.target)
        ? ['Identity Store', creating ? 'CreateGroupMembership' : 'DeleteGroupMembership']
        : ['Identity Center', creating ? 'CreateAccountAssignment' : 'DeleteAccountAssignment']
      throw new UpstreamUnavailableError(
        service,
        operation,
        `ConflictException for ${Math.round((now - conflictSince) / 60_000)} minutes`,
        false,
      )
    }
    // If no creation of ours can be under way, the operation is someone else's (an administrator's assignment
    // still provisioning): ours was refused, nothing of ours is pending, and what shows up later is theirs.
    const patch = first && creating ? { assignment: 'absent' as const, creationIntendedAt: null } : {}
    await this.store.updateCoverage(run.target, run.lease.owner, { ...patch, requestId: null, conflictSince })
    return settled({ kind: 'pending' })
  }

  /**
   * Records a change Identity Center has made: with the caller's own transition when it can carry it
   * (`finish`), otherwise on its own. A new assignment is recorded and the lease given up in one write; a
   * removed one takes its idle record with it. A write on its own answers the holders as they are now, so a
   * grant that came or went meanwhile is seen in the next round.
   */
  private async succeeded(run: Run, operation: 'creating' | 'deleting'): Promise<Step> {
    const { target, finish } = run
    const owner = run.lease.owner
    if (operation === 'creating') {
      // The grant that finishes here is a holder (it is activated from 'provisioning'): the access is wanted.
      if (finish && (await finish({ kind: 'assigned', target, owner })))
        return settled({ kind: 'present', external: false }, true)
      const written = await this.store.updateCoverage(
        target,
        owner,
        { assignment: 'present', requestId: null, lastFailure: null, conflictSince: null },
        { releaseLease: true },
      )
      return progress(written, true)
    }
    if (finish && (await finish({ kind: 'removed', target, owner }))) return settled({ kind: 'absent' }, true)
    if (await this.store.deleteIdleCoverage(target, owner)) return settled({ kind: 'absent' }, true)
    // Removal confirmed: nothing of ours is left, so an assignment seen here from now on is someone else's.
    const patch = {
      assignment: 'absent' as const,
      requestId: null,
      lastFailure: null,
      creationIntendedAt: null,
      conflictSince: null,
    }
    return progress(await this.store.updateCoverage(target, owner, patch))
  }

  /**
   * What became of a request recorded before a crash, a timeout or a lost answer. With its id, Identity
   * Center says. Without it, a listing decides only what a listing can show: a creation is listed only once it
   * is provisioned, a removal until it is done. So an assignment listed confirms a creation, one not listed
   * confirms a removal; anything else is sent again while it is wanted (a removal always is), waited for
   * while an accepted creation could still show ('unconfirmed'), and given up after that.
   */
  private async pendingOutcome(
    coverage: Coverage,
  ): Promise<ProvisioningOutcome | 'send-again' | 'unconfirmed' | 'given-up'> {
    const creating = coverage.assignment === 'creating'
    if (coverage.requestId) {
      return creating
        ? this.identityCenter.creationStatus(coverage.requestId)
        : this.identityCenter.deletionStatus(coverage.requestId)
    }
    const exists = await this.identityCenter.assignmentExists(coverage.target)
    if (exists === creating) return { state: 'succeeded', requestId: null }
    if (!creating || coverage.holders.length > 0) return 'send-again'
    return this.withinSettle(coverage) ? 'unconfirmed' : 'given-up'
  }

  private withinSettle(coverage: Coverage): boolean {
    return (
      coverage.creationIntendedAt !== null &&
      this.clock.now().getTime() - coverage.creationIntendedAt < CREATION_SETTLE_MS
    )
  }

  /**
   * An idle record whose last creation was never confirmed, recent enough that its assignment could still
   * appear: it is kept, and looked at on every sweep. Reads nothing; never throws.
   */
  isWatched(coverage: Coverage): boolean {
    return (
      coverage.holders.length === 0 &&
      !coverage.external &&
      coverage.assignment === 'absent' &&
      coverage.creationIntendedAt !== null &&
      this.clock.now().getTime() - coverage.creationIntendedAt < ORPHAN_WATCH_MS
    )
  }

  /**
   * The other direction of the periodic check: an idle record kept for a creation that never showed is looked
   * at in Identity Center, and an assignment found there is ours (nothing else may be taken for a permanent
   * one while a creation of ours could be behind it), so it is recorded as present and removed, unless a grant
   * for it arrives first. `beforeRemoval` records the decision, with the record as it was when the assignment
   * was found (its `lastGrantId` says for whom it was made). Answers whether there was one. Throws
   * UpstreamUnavailableError when AWS fails, and what `beforeRemoval` throws (nothing is removed then).
   */
  async removeOrphan(target: AccessTarget, beforeRemoval: (coverage: Coverage) => Promise<void>): Promise<boolean> {
    const kept = await this.store.getCoverage(target)
    if (!kept || !this.isWatched(kept) || !(await this.identityCenter.assignmentExists(target))) return false
    const owner = randomUUID()
    const lease = await this.acquireLease(target, owner)
    if (lease.kind === 'settled') return false
    let released = false
    try {
      // Still idle and still unconfirmed under the lease: a grant that arrived meanwhile found the assignment itself.
      if (!this.isWatched(lease.coverage)) return false
      await beforeRemoval(lease.coverage)
      await this.store.updateCoverage(
        target,
        owner,
        { assignment: 'present', lastFailure: null },
        { releaseLease: true },
      )
      released = true
    } finally {
      if (!released) await this.store.releaseLease(target, owner)
    }
    await this.reconcile(target)
    return true
  }
}

/**
 * After an intent that was not recorded because the coverage was not as expected (a grant joined, another
 * grant's assignment is already there, or the lease is not ours): go on from the coverage as it is. A record
 * gone is settled: nothing is held, nothing of ours assigned.
 */
function goOnFrom(intent: { coverage: Coverage | undefined; leaseHeld: boolean }): Step {
  if (!intent.coverage) return settled({ kind: 'absent' }, true)
  return progress(intent.coverage, !intent.leaseHeld)
}

/** The state a coverage is in when no Identity Center call is needed, or undefined when one is. */
function stateNeedingNoChange(coverage: Coverage): CoverageState | undefined {
  const wanted = coverage.holders.length > 0
  if (coverage.assignment === 'creating' || coverage.assignment === 'deleting') return undefined
  if (coverage.external) return wanted ? { kind: 'present', external: true } : { kind: 'absent', external: true }
  if (wanted && coverage.assignment === 'present') return { kind: 'present', external: false }
  if (!wanted && coverage.assignment === 'absent') return { kind: 'absent' }
  return undefined
}
