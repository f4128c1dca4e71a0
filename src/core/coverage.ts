import { randomUUID } from 'node:crypto'
import type { Clock } from './clock.ts'
import type { AccessTarget } from './grant.ts'
import { ensureTimeFor, timeLeftMs } from './deadline.ts'
import { LeaseLostError, UpstreamUnavailableError } from './errors.ts'
import type { BeforeSend, Coverage, CoverageWrite, GrantStore, IdentityCenter, ProvisioningOutcome } from './ports.ts'

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
const MAX_ROUNDS = 4
const RETRY_BASE_MS = 100

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

type Lease = { kind: 'acquired'; coverage: Coverage; until: number } | { kind: 'settled'; state: CoverageState }
/** The caller's own transition, carrying the reconciler's last write; false when it could not be written. */
export type Finish = (write: CoverageWrite) => Promise<boolean>

export interface ReconcileOptions {
  /**
   * Whether an assignment exists, asked before the lease was taken (a round trip saved before a creation).
   * Only a 'no' is used as it is: no assignment of ours can appear between that answer and a write that finds
   * the record 'absent' under our lease (ours are recorded 'creating' before they are made), so it is as good
   * as asking afterwards. Anything else is asked again under the lease.
   */
  earlyLook?: Promise<boolean | undefined>
  /** Start such a look now, while the lease is taken. */
  lookAhead?: boolean
  /** The owner under which the grant's record took the lease, when it did (see GrantStore.createGrant). */
  leaseOwner?: string
  /** When that lease runs out. */
  leaseUntil?: Date
  /**
   * The grant's record also recorded the creation as intended, under `leaseOwner`, and nothing has been sent:
   * the first step sends it. Should that call fail, the record says 'creating' and the next round asks
   * Identity Center what became of it, like after any interrupted creation.
   */
  creationIntended?: boolean
  /**
   * For a grant whose settling follows the change: its transition records the change too (one transaction
   * instead of two writes). When it returns true the grant has moved, and the state answered is final.
   */
  finish?: Finish
}
/** Where a step left the coverage, and whether its last write gave the lease up. */
type Progress = { coverage: Coverage; leaseReleased: boolean }

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

  /** `leaseWaitMs`: how long to wait for another process's change to the same assignment (see acquireLease). */
  constructor(store: GrantStore, identityCenter: IdentityCenter, clock: Clock, options: { leaseWaitMs?: number | undefined } = {}) {
    this.store = store
    this.identityCenter = identityCenter
    this.clock = clock
    this.leaseWaitMs = options.leaseWaitMs ?? DEFAULT_LEASE_WAIT_MS
  }

  async reconcile(target: AccessTarget, options: ReconcileOptions = {}): Promise<CoverageState> {
    const owner = options.leaseOwner ?? randomUUID()
    let earlyLook = options.earlyLook ?? (options.lookAhead ? this.look(target) : undefined)
    // The coverage as last read or written (writes answer the item as they left it), so no round re-reads it.
    let coverage: Coverage | undefined
    // A lease probably taken with the grant's record: released at the end even if it was not (a no-op then).
    let held = options.leaseOwner !== undefined
    let leaseUntil = options.leaseUntil?.getTime()
    const beforeSend: BeforeSend = async () => {
      const now = this.clock.now().getTime()
      if (leaseUntil !== undefined && leaseUntil - now >= SEND_MARGIN_MS) return
      // Waiting for the rate or a creation slot took the lease near its end: renew it, or send nothing.
      await this.store.renewLease(target, owner, new Date(now), new Date(now + LEASE_MS))
      leaseUntil = now + LEASE_MS
    }
    // A creation recorded with the grant and not yet sent.
    let unsent = held && options.creationIntended === true
    if (unsent) {
      coverage = newGrantsCoverage(target, 'creating', this.clock.now().getTime())
    } else if (held && (await earlyLook) === false) {
      // What a new grant expects to find; the first write (recordCreationIntent) checks it before anything is done.
      coverage = newGrantsCoverage(target, 'absent', null)
    }
    try {
      for (let round = 0; round < MAX_ROUNDS; round++) {
        if (!held || !coverage) {
          const settled = !held && coverage ? settledState(coverage) : undefined
          if (settled?.kind === 'present') return settled
          const lease = await this.acquireLease(target, owner)
          if (lease.kind === 'settled') return lease.state
          coverage = lease.coverage
          leaseUntil = lease.until
          held = true
        }
        const current = coverage as Coverage
        const state = settledState(current)
        if (state?.kind === 'absent') {
          // A creation of ours that never showed may still appear: keep the record, so that it is looked for and
          // an assignment found here is known to be ours (see removeOrphan).
          if (this.isWatched(current)) return { kind: 'absent', watching: true }
          // Nothing held and nothing assigned: drop the record, so that a later grant looks at Identity Center afresh.
          if (await this.store.deleteIdleCoverage(target, owner)) {
            held = false
            return current.external ? { kind: 'absent', external: true } : { kind: 'absent' }
          }
          coverage = await this.store.getCoverage(target)
          if (!coverage) return { kind: 'absent' }
          continue
        }
        if (state) return state
        try {
          const sendNow = unsent
          unsent = false
          const next = sendNow
            ? await this.create(current, owner, beforeSend, true, options.finish)
            : await this.step(current, owner, beforeSend, earlyLook, options.finish)
          earlyLook = undefined
          if ('kind' in next) {
            // Only a finishing write ends a step as 'absent' or 'present', and it takes the lease with it.
            if (next.kind === 'absent' || next.kind === 'present') held = false
            return next
          }
          coverage = next.coverage
          held = !next.leaseReleased
        } catch (error) {
          // Throttled, 5xx or a dropped connection: the next round first looks at what Identity Center
          // actually did (the intent is recorded), so a retry never duplicates or orphans an assignment.
          const lastRound = round === MAX_ROUNDS - 1
          if (!(error instanceof UpstreamUnavailableError) || !error.retryable || lastRound) throw error
          const backoff = RETRY_BASE_MS * 2 ** round * (0.5 + Math.random())
          ensureTimeFor(backoff)
          await pause(backoff)
          coverage = await this.store.getCoverage(target)
          if (!coverage) return { kind: 'absent' }
        }
      }
      return { kind: 'pending' }
    } catch (error) {
      // Another process took over the assignment (our lease ran out): it finishes the work, and the next
      // sweep looks again; nothing here is lost, as every step was recorded before it was taken.
      if (error instanceof LeaseLostError) return { kind: 'pending' }
      throw error
    } finally {
      if (held) await this.store.releaseLease(target, owner)
    }
  }

  /**
   * Asks Identity Center whether an assignment exists, ahead of the lease (see `earlyLook`); a failure is
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
  private async acquireLease(target: AccessTarget, owner: string): Promise<Lease> {
    const giveUpAt = performance.now() + this.leaseWaitMs
    for (let attempt = 0; ; attempt++) {
      const now = this.clock.now()
      const until = now.getTime() + LEASE_MS
      const lease = await this.store.acquireLease(target, owner, now, new Date(until))
      if (lease.acquired) return { kind: 'acquired', coverage: lease.coverage, until }
      if (!lease.coverage) return { kind: 'settled', state: { kind: 'absent' } }
      const settled = settledState(lease.coverage)
      if (settled?.kind === 'present') return { kind: 'settled', state: settled }
      const wait = Math.min(25 * 2 ** attempt, 400) * (0.5 + Math.random())
      // Out of patience, or of the request's time: the sweep looks again.
      if (performance.now() + wait > giveUpAt || wait > timeLeftMs()) break
      await pause(wait)
    }
    return { kind: 'settled', state: { kind: 'pending' } }
  }

  /** One change towards the wanted state: the coverage it left (to go on from), or a final state. */
  private async step(coverage: Coverage, owner: string, beforeSend: BeforeSend, earlyLook?: Promise<boolean | undefined>, finish?: Finish): Promise<Progress | CoverageState> {
    const { target } = coverage
    const wanted = coverage.holders.length > 0

    if (coverage.assignment === 'creating' || coverage.assignment === 'deleting') {
      const creating = coverage.assignment === 'creating'
      const outcome = await this.pendingOutcome(coverage)
      if (outcome === 'unconfirmed') return { kind: 'pending' }
      if (outcome === 'given-up') {
        // Nobody needs it and nothing showed in the settle window: the grant may end, while the record stays
        // (creationIntendedAt kept) and is watched, from the next sweep on, in case it was accepted after all.
        const given = await this.store.updateCoverage(target, owner, { assignment: 'absent', requestId: null, conflictSince: null })
        await this.store.scheduleCoverageCheck(target, this.clock.now())
        return { coverage: given, leaseReleased: false }
      }
      if (outcome === 'send-again') {
        // Whether the last request took effect cannot be known from a listing, so it is sent again: Identity
        // Center makes no second assignment and removes none twice, and answers a conflict while one is under way.
        if (!creating) return this.remove(coverage, owner, beforeSend, finish)
        await this.store.updateCoverage(target, owner, { creationIntendedAt: this.clock.now().getTime() })
        return this.create(coverage, owner, beforeSend, false, finish)
      }
      return this.record(coverage, owner, coverage.assignment, outcome, false, finish)
    }

    if (wanted) {
      // assignment is 'absent': before creating, find out whether an assignment is already there.
      const exists = (await earlyLook) === false ? false : await this.identityCenter.assignmentExists(target)
      if (exists) {
        // Permanent only if no creation of ours may be behind it (one accepted but not yet listed when we last looked).
        const external = coverage.creationIntendedAt === null
        const patch = external ? { external: true, lastFailure: null, conflictSince: null } : { assignment: 'present' as const, lastFailure: null, conflictSince: null }
        return { coverage: await this.store.updateCoverage(target, owner, patch, { releaseLease: true }), leaseReleased: true }
      }
      const intent = await this.store.recordCreationIntent(target, owner, this.clock.now())
      if (!intent.recorded) return goOnFrom(intent)
      return this.create(coverage, owner, beforeSend, coverage.creationIntendedAt === null, finish)
    }

    // Not wanted and assignment 'present' (ours): remove it, unless a grant joined since the coverage was read.
    const intent = await this.store.recordRemovalIntent(target, owner)
    if (!intent.recorded) return goOnFrom(intent)
    return this.remove(coverage, owner, beforeSend, finish)
  }

  /**
   * Sends the creation whose intent is recorded, and records what came of it. `first`: no creation of ours
   * can be under way besides this one (nothing was intended since our last confirmed removal).
   */
  private async create(coverage: Coverage, owner: string, beforeSend: BeforeSend, first: boolean, finish?: Finish): Promise<Progress | CoverageState> {
    const outcome = await this.identityCenter.createAssignment(coverage.target, beforeSend)
    return this.record(coverage, owner, 'creating', outcome, first, finish)
  }

  /** Sends the removal whose intent ('deleting') is recorded, and records what came of it. */
  private async remove(coverage: Coverage, owner: string, beforeSend: BeforeSend, finish?: Finish): Promise<Progress | CoverageState> {
    const outcome = await this.identityCenter.deleteAssignment(coverage.target, beforeSend)
    return this.record(coverage, owner, 'deleting', outcome, false, finish)
  }

  private async record(
    coverage: Coverage,
    owner: string,
    operation: 'creating' | 'deleting',
    outcome: ProvisioningOutcome,
    first: boolean,
    finish?: Finish,
  ): Promise<Progress | CoverageState> {
    const { target } = coverage
    const creating = operation === 'creating'
    if (outcome.state === 'in_progress' && outcome.requestId === null) {
      // A conflict: another operation on the assignment is under way, and it decides; we look again later.
      const now = this.clock.now().getTime()
      const conflictSince = coverage.conflictSince ?? now
      if (now - conflictSince > CONFLICT_PATIENCE_MS) {
        // Identity Center's own operations finish in seconds: one this long is stuck, and is counted and
        // alerted on every sweep until it is not.
        throw new UpstreamUnavailableError('Identity Center', creating ? 'CreateAccountAssignment' : 'DeleteAccountAssignment',
          `ConflictException for ${Math.round((now - conflictSince) / 60_000)} minutes`, false)
      }
      // If no creation of ours can be under way, the operation is someone else's (an administrator's assignment
      // still provisioning): ours was refused, nothing of ours is pending, and what shows up later is theirs.
      const patch = first && creating ? { assignment: 'absent' as const, creationIntendedAt: null } : {}
      await this.store.updateCoverage(target, owner, { ...patch, requestId: null, conflictSince })
      return { kind: 'pending' }
    }
    if (outcome.state === 'in_progress') {
      await this.store.updateCoverage(target, owner, { requestId: outcome.requestId, conflictSince: null })
      return { kind: 'pending' }
    }
    if (outcome.state === 'succeeded') return this.succeeded(coverage, owner, operation, finish)
    const reverted = await this.store.updateCoverage(target, owner, {
      assignment: creating ? 'absent' : 'present',
      requestId: null,
      lastFailure: outcome.reason,
      conflictSince: null,
      // A refused creation leaves nothing of ours behind, unless an earlier one may still be under way.
      ...(creating && first ? { creationIntendedAt: null } : {}),
    })
    if (creating && coverage.holders.length > 0) return { kind: 'failed', reason: outcome.reason }
    return creating ? { coverage: reverted, leaseReleased: false } : { kind: 'pending' }
  }

  /**
   * Records a change Identity Center has made: with the caller's own transition when it can carry it
   * (`finish`), otherwise on its own. A new assignment is recorded and the lease given up in one write; a
   * removed one takes its idle record with it. A write on its own answers the holders as they are now, so a
   * grant that came or went meanwhile is seen in the next round.
   */
  private async succeeded(coverage: Coverage, owner: string, operation: 'creating' | 'deleting', finish?: Finish): Promise<Progress | CoverageState> {
    const { target } = coverage
    if (operation === 'creating') {
      // The grant that finishes here is a holder (it is activated from 'provisioning'): the access is wanted.
      if (finish && (await finish({ kind: 'assigned', target, owner }))) return { kind: 'present', external: false }
      const written = await this.store.updateCoverage(target, owner, { assignment: 'present', requestId: null, lastFailure: null, conflictSince: null }, { releaseLease: true })
      return { coverage: written, leaseReleased: true }
    }
    if (finish && (await finish({ kind: 'removed', target, owner }))) return { kind: 'absent' }
    if (await this.store.deleteIdleCoverage(target, owner)) return { kind: 'absent' }
    // Removal confirmed: nothing of ours is left, so an assignment seen here from now on is someone else's.
    const patch = { assignment: 'absent' as const, requestId: null, lastFailure: null, creationIntendedAt: null, conflictSince: null }
    return { coverage: await this.store.updateCoverage(target, owner, patch), leaseReleased: false }
  }

  /**
   * What became of a request recorded before a crash, a timeout or a lost answer. With its id, Identity
   * Center says. Without it, a listing decides only what a listing can show: a creation is listed only once it
   * is provisioned, a removal until it is done. So an assignment listed confirms a creation, one not listed
   * confirms a removal; anything else is sent again while it is wanted (a removal always is), waited for
   * while an accepted creation could still show ('unconfirmed'), and given up after that.
   */
  private async pendingOutcome(coverage: Coverage): Promise<ProvisioningOutcome | 'send-again' | 'unconfirmed' | 'given-up'> {
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
    return coverage.creationIntendedAt !== null && this.clock.now().getTime() - coverage.creationIntendedAt < CREATION_SETTLE_MS
  }

  /**
   * An idle record whose last creation was never confirmed, recent enough that its assignment could still
   * appear: it is kept, and looked at on every sweep.
   */
  isWatched(coverage: Coverage): boolean {
    return coverage.holders.length === 0 && !coverage.external && coverage.assignment === 'absent' && coverage.creationIntendedAt !== null &&
      this.clock.now().getTime() - coverage.creationIntendedAt < ORPHAN_WATCH_MS
  }

  /**
   * The other direction of the periodic check: an idle record kept for a creation that never showed is looked
   * at in Identity Center, and an assignment found there is ours (nothing else may be taken for a permanent
   * one while a creation of ours could be behind it), so it is recorded as present and removed, unless a grant
   * for it arrives first. `beforeRemoval` records the decision, with the record as it was when the assignment
   * was found (its `lastGrantId` says for whom it was made). Answers whether there was one.
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
      await this.store.updateCoverage(target, owner, { assignment: 'present', lastFailure: null }, { releaseLease: true })
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
 * grant's assignment is already there, or the lease is not ours): go on from the coverage as it is.
 */
function goOnFrom(intent: { coverage: Coverage | undefined; leaseHeld: boolean }): Progress | CoverageState {
  if (!intent.coverage) return { kind: 'absent' }
  return { coverage: intent.coverage, leaseReleased: !intent.leaseHeld }
}

/** The coverage a new grant's own record wrote, as its writer knows it without reading it back. */
function newGrantsCoverage(target: AccessTarget, assignment: 'absent' | 'creating', creationIntendedAt: number | null): Coverage {
  return { target, holders: ['(this grant)'], assignment, external: false, requestId: null, lastFailure: null, creationIntendedAt, lastGrantId: null, conflictSince: null }
}

/** The state a coverage is in when no Identity Center call is needed, or undefined when one is. */
function settledState(coverage: Coverage): CoverageState | undefined {
  const wanted = coverage.holders.length > 0
  if (coverage.assignment === 'creating' || coverage.assignment === 'deleting') return undefined
  if (coverage.external) return wanted ? { kind: 'present', external: true } : { kind: 'absent', external: true }
  if (wanted && coverage.assignment === 'present') return { kind: 'present', external: false }
  if (!wanted && coverage.assignment === 'absent') return { kind: 'absent' }
  return undefined
}
