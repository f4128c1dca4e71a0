import t from 'tap'
import { CoverageReconciler, type CoverageState, LEASE_MS, SEND_MARGIN_MS } from '../src/core/coverage.ts'
import type { Coverage, CoverageWrite } from '../src/core/ports.ts'
import { ManualClock } from './helpers/clock.ts'
import {
  IDENTITY_CENTER_ANSWERS,
  type IdentityCenterAnswer,
  keyOf,
  MemoryCoverageStore,
  MemoryIdentityCenter,
} from './helpers/memory-ports.ts'

// The reconciler's state machine on in-memory ports: every coverage state it may meet × every answer Identity
// Center may give × what becomes of the lease meanwhile. No server and no waits, so the whole table runs in well
// under a second; the moto tests (grant-lifecycle, lost-answers, faults, chaos) prove the same against a server.

const TARGET = {
  userId: 'user-1',
  accountId: '111111111111',
  permissionSetArn: 'arn:aws:sso:::permissionSet/ssoins-1/ps-admin',
}
const START = new Date('2026-01-01T00:00:00Z')
const OTHER = 'another process'

/** What Identity Center holds and what is under way there before the reconcile, and the record that says so. */
interface Before {
  coverage: Partial<Coverage>
  /** Whether the assignment exists in Identity Center (given the answer the case meets). */
  assigned: (answer: IdentityCenterAnswer) => boolean
  /** A request accepted earlier whose id the record keeps: a creation (true) or a removal (false). */
  accepted?: boolean
  /** Answers that cannot meet this state's first call (a status poll is never a conflict, nor 'already'). */
  impossible?: IdentityCenterAnswer[]
  /** The intent recorded before this state's first call to Identity Center, if it records one before. */
  intentFirst?: Coverage['assignment']
}

type After = { state: CoverageState; record: Coverage['assignment'] | 'gone'; assigned: boolean }

const ago = (ms: number) => START.getTime() - ms
const wanted = { holders: ['grant-1'] }
const idle = { holders: [] as string[] }

const STATES: Record<string, Before> = {
  'wanted, nothing assigned': {
    coverage: { ...wanted, assignment: 'absent' },
    assigned: (answer) => answer === 'already',
  },
  'wanted, a creation sent and its answer lost': {
    coverage: { ...wanted, assignment: 'creating', creationIntendedAt: ago(1000) },
    assigned: (answer) => answer === 'already',
  },
  'wanted, a creation accepted': {
    coverage: { ...wanted, assignment: 'creating', creationIntendedAt: ago(1000) },
    assigned: () => false,
    accepted: true,
    impossible: ['already', 'conflict', 'exists'],
  },
  'unwanted, ours assigned': {
    coverage: { ...idle, assignment: 'present', creationIntendedAt: ago(600_000) },
    assigned: (answer) => answer !== 'already',
    intentFirst: 'deleting',
    impossible: ['exists'],
  },
  'unwanted, a removal sent and its answer lost': {
    coverage: { ...idle, assignment: 'deleting', creationIntendedAt: ago(600_000) },
    assigned: (answer) => answer !== 'already',
    impossible: ['exists'],
  },
  'unwanted, a removal accepted': {
    coverage: { ...idle, assignment: 'deleting', creationIntendedAt: ago(600_000) },
    assigned: () => true,
    accepted: false,
    impossible: ['already', 'conflict', 'exists'],
  },
}

const present = (external = false): CoverageState => ({ kind: 'present', external })
const PENDING: CoverageState = { kind: 'pending' }
const ABSENT: CoverageState = { kind: 'absent' }
const FAILED: CoverageState = { kind: 'failed', reason: 'refused by the fake' }

/** Where a wanted assignment goes when Identity Center creates it, accepts, throttles, loses the answer or refuses. */
const CREATION: Partial<Record<IdentityCenterAnswer, After>> = {
  done: { state: present(), record: 'present', assigned: true },
  'in-progress': { state: PENDING, record: 'creating', assigned: false },
  throttled: { state: present(), record: 'present', assigned: true },
  'lost-answer': { state: present(), record: 'present', assigned: true },
  failed: { state: FAILED, record: 'absent', assigned: false },
}

/** Where an unwanted assignment of ours goes on the same answers to its removal. */
const REMOVAL: Partial<Record<IdentityCenterAnswer, After>> = {
  done: { state: ABSENT, record: 'gone', assigned: false },
  'in-progress': { state: PENDING, record: 'deleting', assigned: true },
  throttled: { state: ABSENT, record: 'gone', assigned: false },
  'lost-answer': { state: ABSENT, record: 'gone', assigned: false },
  // A refused removal leaves our assignment recorded present, for the next sweep to try again.
  failed: { state: PENDING, record: 'present', assigned: true },
}

/** Where each state goes on each answer while the lease stays ours (state → answer → after). */
const EXPECTED: Record<string, Partial<Record<IdentityCenterAnswer, After>>> = {
  'wanted, nothing assigned': {
    ...CREATION,
    // Found before any creation of ours: a permanent assignment, never to be removed.
    already: { state: present(true), record: 'absent', assigned: true },
    // Nothing of ours can be under way: the operation is someone else's, and ours was refused.
    conflict: { state: PENDING, record: 'absent', assigned: false },
    // Refused as existing on our first creation: someone else made it after our look; permanent, never removed.
    exists: { state: present(true), record: 'absent', assigned: true },
  },
  'wanted, a creation sent and its answer lost': {
    ...CREATION,
    // Listed: the creation took effect; ours, not permanent.
    already: { state: present(), record: 'present', assigned: true },
    conflict: { state: PENDING, record: 'creating', assigned: false },
    // Refused as existing when sent again after a lost answer: ours, made by the first send.
    exists: { state: present(), record: 'present', assigned: true },
  },
  'wanted, a creation accepted': CREATION,
  'unwanted, ours assigned': {
    ...REMOVAL,
    already: { state: ABSENT, record: 'gone', assigned: false },
    conflict: { state: PENDING, record: 'deleting', assigned: true },
  },
  'unwanted, a removal sent and its answer lost': {
    ...REMOVAL,
    // Not listed: the removal took effect.
    already: { state: ABSENT, record: 'gone', assigned: false },
    conflict: { state: PENDING, record: 'deleting', assigned: true },
  },
  'unwanted, a removal accepted': REMOVAL,
}

/**
 * What becomes of our lease at the first call to Identity Center: kept; near its end (waiting for the rate),
 * so that it is renewed before anything is sent; or run out and taken over by another process.
 */
type LeaseOutcome = 'held' | 'renewed' | 'lost'
const LEASE_OUTCOMES: LeaseOutcome[] = ['held', 'renewed', 'lost']

function coverageOf(partial: Partial<Coverage>): Coverage {
  return {
    target: TARGET,
    holders: [],
    assignment: 'absent',
    external: false,
    requestId: null,
    lastFailure: null,
    creationIntendedAt: null,
    lastGrantId: null,
    conflictSince: null,
    ...partial,
  }
}

function world() {
  const clock = new ManualClock(START)
  const store = new MemoryCoverageStore()
  const identityCenter = new MemoryIdentityCenter()
  // No lease waits and no backoff waits: the table runs in milliseconds.
  const reconciler = new CoverageReconciler(store, identityCenter, clock, { leaseWaitMs: 0, pause: async () => {} })
  return { clock, store, identityCenter, reconciler }
}

function setUp(before: Before, answer: IdentityCenterAnswer, lease: LeaseOutcome) {
  const w = world()
  const requestId = before.accepted === undefined ? null : w.identityCenter.accepted(TARGET, before.accepted)
  const coverage = coverageOf({ ...before.coverage, requestId })
  w.store.put(coverage)
  if (before.assigned(answer)) w.identityCenter.assigned.add(keyOf(TARGET))
  w.identityCenter.next = answer
  let struck = false
  w.identityCenter.onCall = () => {
    if (struck || lease === 'held') return
    struck = true
    if (lease === 'renewed') return w.clock.advance(LEASE_MS - SEND_MARGIN_MS + 1)
    w.clock.advance(LEASE_MS + 1)
    w.store.takeOver(TARGET, OTHER, w.clock.now().getTime() + LEASE_MS)
  }
  return { ...w, coverage }
}

const sends = (calls: string[]) =>
  calls.filter((call) => call === 'createAssignment' || call === 'deleteAssignment').length

t.test('each coverage state × each Identity Center answer × each lease outcome', async (t) => {
  const started = performance.now()
  let cases = 0
  for (const [name, before] of Object.entries(STATES)) {
    for (const answer of IDENTITY_CENTER_ANSWERS) {
      if (before.impossible?.includes(answer)) continue
      const expected = EXPECTED[name]?.[answer]
      if (!expected) throw new Error(`no expectation for '${name}' × ${answer}`)
      for (const lease of LEASE_OUTCOMES) {
        cases++
        const { store, identityCenter, reconciler, coverage } = setUp(before, answer, lease)
        const label = `${name}, Identity Center answers ${answer}, lease ${lease}`
        const state = await reconciler.reconcile(TARGET)
        const record = store.peek(TARGET)
        const seen = `state ${JSON.stringify(state)}, record ${JSON.stringify(record)}, calls ${identityCenter.calls.join(' ')}`
        if (lease === 'lost') {
          // Another process has the assignment: nothing more is sent or written by us, and its lease stands.
          t.same(state, PENDING, `${label}: pending (${seen})`)
          t.equal(sends(identityCenter.calls), 0, `${label}: nothing sent after the lease was lost (${seen})`)
          const recorded = before.intentFirst ?? coverage.assignment
          t.equal(
            record?.assignment,
            recorded,
            `${label}: the record is as it was, or says the intent recorded before the call (${seen})`,
          )
          t.equal(record?.leaseOwner, OTHER, `${label}: the other process keeps the lease (${seen})`)
          continue
        }
        t.same(state, expected.state, `${label}: answers ${JSON.stringify(expected.state)} (${seen})`)
        t.equal(record?.assignment ?? 'gone', expected.record, `${label}: the record says ${expected.record} (${seen})`)
        t.equal(
          identityCenter.assigned.has(keyOf(TARGET)),
          expected.assigned,
          `${label}: assigned in Identity Center: ${expected.assigned} (${seen})`,
        )
        t.equal(record?.leaseOwner, undefined, `${label}: the lease is given up (${seen})`)
        const renewals = store.calls.filter((call) => call === 'renewLease').length
        t.equal(
          renewals,
          lease === 'renewed' && sends(identityCenter.calls) > 0 ? 1 : 0,
          `${label}: the lease renewed only before a send near its end (${seen})`,
        )
      }
    }
  }
  t.equal(cases, 3 * (6 * 8 - 8), 'every combination ran')
  t.ok(performance.now() - started < 1000, `the table ran in ${Math.round(performance.now() - started)} ms`)
})

t.test('a stuck conflict throws once it has lasted past the patience, as a failure to alert on', async (t) => {
  const { store, identityCenter, reconciler } = world()
  store.put(
    coverageOf({ ...wanted, assignment: 'creating', creationIntendedAt: ago(1000), conflictSince: ago(6 * 60_000) }),
  )
  identityCenter.next = 'conflict'
  await t.rejects(reconciler.reconcile(TARGET), { name: 'UpstreamUnavailableError', retryable: false })
  t.equal(store.peek(TARGET)?.leaseOwner, undefined, 'the lease is given up')
})

t.test(
  'a stuck conflict on a group membership names the Identity Store and its operations, not Identity Center',
  async (t) => {
    const membership = { kind: 'membership' as const, userId: 'user-1', groupId: 'group-1' }
    for (const [assignment, holders, operation] of [
      ['creating', ['grant-1'], 'CreateGroupMembership'],
      ['deleting', [], 'DeleteGroupMembership'],
    ] as const) {
      const { store, identityCenter, reconciler } = world()
      store.put(
        coverageOf({
          target: membership,
          holders: [...holders],
          assignment,
          creationIntendedAt: ago(1000),
          conflictSince: ago(6 * 60_000),
        }),
      )
      // Not listed yet for the creation, still listed for the removal: each is sent again, and meets the conflict.
      if (assignment === 'deleting') identityCenter.assigned.add(keyOf(membership))
      identityCenter.next = 'conflict'
      const error = await reconciler.reconcile(membership).then(
        () => undefined,
        (e: Error & { service?: string }) => e,
      )
      t.match(
        error,
        { name: 'UpstreamUnavailableError', service: 'Identity Store', retryable: false },
        `${assignment}: ${error?.message}`,
      )
      t.match(error?.message, new RegExp(`^Identity Store ${operation} failed: ConflictException for 6 minutes`))
    }
  },
)

t.test('throttled on every round, the last failure is thrown with the intent recorded', async (t) => {
  const { store, identityCenter, reconciler } = world()
  store.put(coverageOf({ ...wanted, assignment: 'absent' }))
  identityCenter.onCall = () => {
    identityCenter.next = 'throttled'
  }
  await t.rejects(reconciler.reconcile(TARGET), { name: 'UpstreamUnavailableError', retryable: true })
  t.equal(store.peek(TARGET)?.assignment, 'creating', 'the creation is recorded as intended, for the sweep to finish')
  t.equal(store.peek(TARGET)?.leaseOwner, undefined, 'the lease is given up')
})

t.test('states that need no call to Identity Center', async (t) => {
  const cases: {
    name: string
    coverage: Partial<Coverage>
    lease?: boolean
    expected: CoverageState
    record: Coverage['assignment'] | 'gone'
  }[] = [
    {
      name: 'an idle record with nothing of ours is dropped',
      coverage: { ...idle, assignment: 'absent' },
      expected: ABSENT,
      record: 'gone',
    },
    {
      name: 'an idle record of a creation never confirmed is kept and watched',
      coverage: { ...idle, assignment: 'absent', creationIntendedAt: ago(10 * 60_000) },
      expected: { kind: 'absent', watching: true },
      record: 'absent',
    },
    {
      name: 'a permanent assignment gives the access without the lease',
      coverage: { ...wanted, assignment: 'absent', external: true },
      expected: present(true),
      record: 'absent',
    },
    {
      name: 'an idle permanent assignment is left, its record dropped',
      coverage: { ...idle, assignment: 'absent', external: true },
      expected: { kind: 'absent', external: true },
      record: 'gone',
    },
    {
      name: 'our assignment in place for its holders needs nothing',
      coverage: { ...wanted, assignment: 'present' },
      expected: present(),
      record: 'present',
    },
    {
      name: 'another process holding the lease leaves it pending',
      coverage: { ...wanted, assignment: 'absent' },
      lease: true,
      expected: PENDING,
      record: 'absent',
    },
  ]
  for (const c of cases) {
    const { store, identityCenter, reconciler } = world()
    store.put(coverageOf(c.coverage), c.lease ? { owner: OTHER, until: START.getTime() + LEASE_MS } : undefined)
    const state = await reconciler.reconcile(TARGET)
    t.same(state, c.expected, `${c.name}: ${JSON.stringify(state)}`)
    t.equal(store.peek(TARGET)?.assignment ?? 'gone', c.record, `${c.name}: the record`)
    t.same(identityCenter.calls, [], `${c.name}: no call to Identity Center`)
  }
  const { reconciler } = world()
  t.same(await reconciler.reconcile(TARGET), ABSENT, 'no record at all is absent')
})

t.test('a creation whose grant left: waited for while it could still show, then given up and watched', async (t) => {
  const waiting = world()
  waiting.store.put(coverageOf({ ...idle, assignment: 'creating', creationIntendedAt: ago(60_000) }))
  t.same(await waiting.reconciler.reconcile(TARGET), PENDING, 'unconfirmed within the settle time')
  t.equal(waiting.store.peek(TARGET)?.assignment, 'creating')

  const late = world()
  late.store.put(coverageOf({ ...idle, assignment: 'creating', creationIntendedAt: ago(6 * 60_000) }))
  t.same(
    await late.reconciler.reconcile(TARGET),
    { kind: 'absent', watching: true },
    'given up past the settle time, and watched',
  )
  t.equal(late.store.peek(TARGET)?.assignment, 'absent')
  t.ok(late.store.checks.has(keyOf(TARGET)), 'its check is scheduled at once')
})

t.test(
  "a new grant's record: its intended creation is sent at once, and its transition carries the last write",
  async (t) => {
    const { store, identityCenter, reconciler } = world()
    const until = new Date(START.getTime() + LEASE_MS)
    store.put(coverageOf({ holders: ['grant-1'], assignment: 'creating', creationIntendedAt: START.getTime() }), {
      owner: 'owner-1',
      until: until.getTime(),
    })
    const written: CoverageWrite[] = []
    const state = await reconciler.reconcile(TARGET, {
      takenWithGrant: {
        grantId: 'grant-1',
        owner: 'owner-1',
        until,
        creationIntended: true,
        lookedBefore: Promise.resolve(false),
      },
      finish: async (write) => {
        written.push(write)
        await store.updateCoverage(
          TARGET,
          write.owner,
          { assignment: 'present', requestId: null },
          { releaseLease: true },
        )
        return true
      },
    })
    t.same(state, present(), 'in place')
    t.same(identityCenter.calls, ['createAssignment'], 'the creation is the only call')
    t.same(written, [{ kind: 'assigned', target: TARGET, owner: 'owner-1' }], 'the transition carried the assignment')
    t.equal(
      store.calls.filter((call) => call === 'getCoverage' || call === 'acquireLease').length,
      0,
      'the record was neither read nor leased again',
    )
  },
)

t.test(
  "a new grant's record with no creation intended: a 'no' looked before stands, and the intent is recorded",
  async (t) => {
    const { store, identityCenter, reconciler } = world()
    const until = new Date(START.getTime() + LEASE_MS)
    store.put(coverageOf({ holders: ['grant-1'], assignment: 'absent' }), { owner: 'owner-1', until: until.getTime() })
    const state = await reconciler.reconcile(TARGET, {
      takenWithGrant: {
        grantId: 'grant-1',
        owner: 'owner-1',
        until,
        creationIntended: false,
        lookedBefore: Promise.resolve(false),
      },
    })
    t.same(state, present(), 'in place')
    t.same(identityCenter.calls, ['createAssignment'], 'no second look before the creation')
    t.equal(store.peek(TARGET)?.assignment, 'present')
  },
)

t.test(
  "a new grant's first creation refused as existing (someone added it after our look) is permanent: kept, never removed",
  async (t) => {
    const { store, identityCenter, reconciler } = world()
    const until = new Date(START.getTime() + LEASE_MS)
    store.put(coverageOf({ holders: ['grant-1'], assignment: 'creating', creationIntendedAt: START.getTime() }), {
      owner: 'owner-1',
      until: until.getTime(),
    })
    identityCenter.next = 'exists'
    const state = await reconciler.reconcile(TARGET, {
      takenWithGrant: {
        grantId: 'grant-1',
        owner: 'owner-1',
        until,
        creationIntended: true,
        lookedBefore: Promise.resolve(false),
      },
    })
    t.same(state, present(true), 'covered by the pre-existing access')
    t.match(
      store.peek(TARGET),
      { external: true, assignment: 'absent', creationIntendedAt: null, leaseOwner: undefined },
      'recorded as pre-existing, nothing of ours intended',
    )

    // The grant leaves: nothing is removed.
    store.put({ ...(store.peek(TARGET) as Coverage), holders: [] })
    t.same(await reconciler.reconcile(TARGET), { kind: 'absent', external: true })
    t.notOk(identityCenter.calls.includes('deleteAssignment'), 'never removed')
    t.ok(identityCenter.assigned.has(keyOf(TARGET)), 'still there')
  },
)
