import { randomUUID } from 'node:crypto'
import type { Clock } from './clock.ts'
import type { AssignmentTarget } from './grant.ts'
import { UpstreamUnavailableError } from './errors.ts'
import type { Coverage, GrantStore, IdentityCenter, ProvisioningOutcome } from './ports.ts'

/** How often the sweep checks that an assignment our grants rely on still exists in Identity Center. */
export const COVERAGE_CHECK_INTERVAL_MS = 5 * 60_000
/** How long one process may hold the right to change an assignment before another may take over. */
export const LEASE_MS = 60_000
const MAX_ROUNDS = 4
const LEASE_ATTEMPTS = 8
const RETRY_BASE_MS = 100

export type Pause = (ms: number) => Promise<void>
const realPause: Pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

export type CoverageState =
  /** Access is in place for the holders: our assignment, or a permanent one we never touch. */
  | { kind: 'present'; external: boolean }
  /** No access is in place and none is needed. */
  | { kind: 'absent' }
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
  private readonly pause: Pause

  constructor(store: GrantStore, identityCenter: IdentityCenter, clock: Clock, pause: Pause = realPause) {
    this.store = store
    this.identityCenter = identityCenter
    this.clock = clock
    this.pause = pause
  }

  async reconcile(target: AssignmentTarget): Promise<CoverageState> {
    const owner = randomUUID()
    const waited = await this.acquireLease(target, owner)
    if (waited !== 'acquired') return waited
    let released = false
    try {
      for (let round = 0; round < MAX_ROUNDS; round++) {
        const coverage = await this.store.getCoverage(target)
        if (!coverage) return { kind: 'absent' }
        const state = settledState(coverage)
        if (state) {
          if (state.kind === 'absent') {
            // Nothing held and nothing assigned: drop the record, so that a later grant looks at Identity Center afresh.
            if (await this.store.deleteIdleCoverage(target, owner)) {
              released = true
              return { kind: 'absent' }
            }
            continue
          }
          return state
        }
        try {
          const step = await this.step(coverage, owner)
          if (step) return step
        } catch (error) {
          // Throttled, 5xx or a dropped connection: the next round first looks at what Identity Center
          // actually did (the intent is recorded), so a retry never duplicates or orphans an assignment.
          const lastRound = round === MAX_ROUNDS - 1
          if (!(error instanceof UpstreamUnavailableError) || !error.retryable || lastRound) throw error
          await this.pause(RETRY_BASE_MS * 2 ** round * (0.5 + Math.random()))
        }
      }
      return { kind: 'pending' }
    } catch (error) {
      // Another process took over the assignment (our lease ran out): it finishes the work, and the next
      // sweep looks again; nothing here is lost, as every step was recorded before it was taken.
      if ((error as { code?: string }).code === 'LEASE_LOST') return { kind: 'pending' }
      throw error
    } finally {
      if (!released) await this.store.releaseLease(target, owner)
    }
  }

  /**
   * Takes the lease unless there is nothing to do. Another process holding it is usually done within a
   * second (one Identity Center call), so wait a little for it, looking again each time: it may have
   * settled the assignment, or removed the record, meanwhile.
   */
  private async acquireLease(target: AssignmentTarget, owner: string): Promise<'acquired' | CoverageState> {
    for (let attempt = 0; attempt < LEASE_ATTEMPTS; attempt++) {
      const coverage = await this.store.getCoverage(target)
      if (!coverage) return { kind: 'absent' }
      const settled = settledState(coverage)
      if (settled?.kind === 'present') return settled
      const now = this.clock.now()
      if (await this.store.acquireLease(target, owner, now, new Date(now.getTime() + LEASE_MS))) return 'acquired'
      if (attempt < LEASE_ATTEMPTS - 1) await this.pause(Math.min(25 * 2 ** attempt, 400) * (0.5 + Math.random()))
    }
    return { kind: 'pending' }
  }

  /** One change towards the wanted state; returns a final state when nothing more can be done now. */
  private async step(coverage: Coverage, owner: string): Promise<CoverageState | undefined> {
    const { target } = coverage
    const wanted = coverage.holders.length > 0

    if (coverage.assignment === 'creating' || coverage.assignment === 'deleting') {
      const outcome = await this.pendingOutcome(coverage)
      if (outcome === 'not-sent') {
        // The request never took effect: go back to the last known state and decide afresh, in this same round.
        const assignment = coverage.assignment === 'creating' ? 'absent' : 'present'
        await this.store.updateCoverage(target, owner, { assignment, requestId: null })
        return this.step({ ...coverage, assignment, requestId: null }, owner)
      }
      if (outcome.state === 'in_progress') return { kind: 'pending' }
      const creating = coverage.assignment === 'creating'
      if (outcome.state === 'succeeded') {
        await this.store.updateCoverage(target, owner, { assignment: creating ? 'present' : 'absent', requestId: null, lastFailure: null })
        return undefined
      }
      await this.store.updateCoverage(target, owner, { assignment: creating ? 'absent' : 'present', requestId: null, lastFailure: outcome.reason })
      return creating && wanted ? { kind: 'failed', reason: outcome.reason } : undefined
    }

    if (wanted) {
      // assignment is 'absent': before creating, find out whether a permanent assignment is already there.
      if (await this.identityCenter.assignmentExists(target)) {
        await this.store.updateCoverage(target, owner, { external: true, lastFailure: null })
        return undefined
      }
      await this.store.updateCoverage(target, owner, { assignment: 'creating', requestId: null })
      const outcome = await this.identityCenter.createAssignment(target)
      return this.record(coverage, owner, 'creating', outcome)
    }

    // Not wanted and assignment 'present' (ours): remove it.
    await this.store.updateCoverage(target, owner, { assignment: 'deleting', requestId: null })
    const outcome = await this.identityCenter.deleteAssignment(target)
    return this.record(coverage, owner, 'deleting', outcome)
  }

  private async record(
    coverage: Coverage,
    owner: string,
    operation: 'creating' | 'deleting',
    outcome: ProvisioningOutcome,
  ): Promise<CoverageState | undefined> {
    const { target } = coverage
    if (outcome.state === 'in_progress') {
      await this.store.updateCoverage(target, owner, { requestId: outcome.requestId })
      return { kind: 'pending' }
    }
    if (outcome.state === 'succeeded') {
      await this.store.updateCoverage(target, owner, {
        assignment: operation === 'creating' ? 'present' : 'absent',
        requestId: null,
        lastFailure: null,
      })
      return undefined
    }
    await this.store.updateCoverage(target, owner, {
      assignment: operation === 'creating' ? 'absent' : 'present',
      requestId: null,
      lastFailure: outcome.reason,
    })
    return operation === 'creating' ? { kind: 'failed', reason: outcome.reason } : { kind: 'pending' }
  }

  /** What became of a request recorded before a crash or a timeout; without its id, Identity Center's state decides. */
  private async pendingOutcome(coverage: Coverage): Promise<ProvisioningOutcome | 'not-sent'> {
    const creating = coverage.assignment === 'creating'
    if (coverage.requestId) {
      return creating
        ? this.identityCenter.creationStatus(coverage.requestId)
        : this.identityCenter.deletionStatus(coverage.requestId)
    }
    const exists = await this.identityCenter.assignmentExists(coverage.target)
    return exists === creating ? { state: 'succeeded', requestId: null } : 'not-sent'
  }
}

/** The state a coverage is in when no Identity Center call is needed, or undefined when one is. */
function settledState(coverage: Coverage): CoverageState | undefined {
  const wanted = coverage.holders.length > 0
  if (coverage.assignment === 'creating' || coverage.assignment === 'deleting') return undefined
  if (coverage.external) return wanted ? { kind: 'present', external: true } : { kind: 'absent' }
  if (wanted && coverage.assignment === 'present') return { kind: 'present', external: false }
  if (!wanted && coverage.assignment === 'absent') return { kind: 'absent' }
  return undefined
}
