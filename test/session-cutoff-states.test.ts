import t from 'tap'
import type { AuditEvent } from '../src/core/audit.ts'
import { cutoffOf, EMPTY_CUTOFF_POLICY } from '../src/core/cutoff-policy.ts'
import type { Grant } from '../src/core/grant-model.ts'
import type { CutoffIntent, CutoffLedger, CutoffPolicies, SessionsCutChange } from '../src/core/ports.ts'
import { SessionCutoffs } from '../src/core/session-cutoff.ts'
import { ManualClock } from './helpers/clock.ts'

// The cut-off's transitions against in-memory fakes: cheap to read and to change. The moto tests are the proof.

class MemoryLedger implements CutoffLedger {
  intents = new Map<string, CutoffIntent>()
  ended = new Set<string>()
  reports: { grantId: string; change: SessionsCutChange; action: string }[] = []
  leaseOwner: string | undefined
  pruneAt: number | null = null
  /** The index intents are read through does not show them yet (DynamoDB's indexes are eventually consistent). */
  lagging = false
  async recordIntent(intent: CutoffIntent) {
    if (!this.intents.has(intent.grantId)) this.intents.set(intent.grantId, structuredClone(intent))
  }
  async openIntents(limit: number) {
    if (this.lagging) return []
    return [...this.intents.values()].slice(0, limit).map((intent) => structuredClone(intent))
  }
  async acquireLease(owner: string) {
    if (this.leaseOwner && this.leaseOwner !== owner) return false
    this.leaseOwner = owner
    return true
  }
  /** What renewing costs in real time: a process frozen (a Lambda between invocations) while it renews. */
  renewalTakesMs = 0
  async renewLease() {
    if (this.renewalTakesMs > 0) frozenFor(this.renewalTakesMs)
  }
  async releaseLease(_owner: string, nextPruneAt: number | null | undefined) {
    this.leaseOwner = undefined
    if (nextPruneAt !== undefined) this.pruneAt = nextPruneAt
  }
  async nextPruneAt() {
    return this.pruneAt
  }
  async recordOutcome(grantIds: string[], outcome: CutoffIntent['outcome']) {
    for (const id of grantIds) {
      const intent = this.intents.get(id)
      if (intent) intent.outcome = outcome
    }
  }
  async report(intent: CutoffIntent, change: SessionsCutChange, event: AuditEvent) {
    if (!this.ended.has(intent.grantId)) return false
    this.intents.delete(intent.grantId)
    this.reports.push({ grantId: intent.grantId, change, action: event.action })
    return true
  }
}

function setUp() {
  const clock = new ManualClock(new Date('2026-12-01T12:00:00.250Z'))
  const ledger = new MemoryLedger()
  const contents = new Map([['p-owned0001', JSON.stringify(EMPTY_CUTOFF_POLICY)]])
  const writes: string[] = []
  const policies: CutoffPolicies = {
    policyIds: ['p-owned0001'],
    partition: 'aws',
    unreachableAccounts: [],
    read: async (id) => contents.get(id) as string,
    write: async (id, content) => {
      writes.push(id)
      contents.set(id, content)
    },
  }
  const cutoffs = new SessionCutoffs({
    ledger,
    policies,
    clock,
    sessionSeconds: async () => 3600,
    eventFor: (grant, action, actor, detail) => ({
      id: `e-${ledger.reports.length}`,
      at: clock.now().toISOString(),
      action,
      actor: actor.id,
      grantId: grant.id,
      userName: grant.userName,
      accountId: grant.accountId,
      permissionSet: grant.permissionSet,
      ticketId: grant.ticketId,
      detail,
      requestId: null,
      correlationId: null,
    }),
    outboxFor: () => undefined,
    deliver: () => {},
    notify: async () => {},
  })
  const statements = () =>
    (JSON.parse(contents.get('p-owned0001') as string) as typeof EMPTY_CUTOFF_POLICY).Statement.filter((s) =>
      cutoffOf(s),
    )
  return { clock, ledger, cutoffs, writes, statements }
}

const grant = (id: string): Grant => ({
  id,
  status: 'revoking',
  userName: 'alice',
  userId: 'u-alice',
  accountId: '111111111111',
  permissionSet: 'AdministratorAccess',
  permissionSetArn: 'arn:aws:sso:::permissionSet/ssoins-1111111111111111/ps-2222222222222222',
  ticketId: 'CHG0000001',
  justification: null,
  requestedBy: 'x',
  createdAt: '2026-12-01T11:00:00Z',
  startsAt: '2026-12-01T11:00:00Z',
  expiresAt: '2026-12-01T13:00:00Z',
  accessEndsBy: '2026-12-01T14:00:00Z',
  endedAt: null,
  endedBy: 'x',
  endReason: 'revoked',
  coveredBy: 'jit',
  failureReason: null,
  sessionsCutAt: null,
  groupName: null,
  groupId: null,
})
const actor = { id: 'system:sweep', requestId: null }

t.test('an intent is cut as of its end, rounded up to the second, for as long as the sessions last', async (t) => {
  const { ledger, cutoffs } = setUp()

  await cutoffs.intend(grant('g1'))

  t.match(
    [...ledger.intents.values()],
    [{ cutAt: '2026-12-01T12:00:01Z', keepUntil: Date.parse('2026-12-01T13:00:01Z'), outcome: 'pending' }],
  )
})

t.test(
  "a cut-off drained before its grant's end is written goes into the policy at once and onto the grant once it has ended",
  async (t) => {
    const { ledger, cutoffs, writes, statements } = setUp()
    await cutoffs.intend(grant('g1'))

    await cutoffs.drain(actor)

    t.equal(statements().length, 1, 'the sessions are denied already')
    t.same(ledger.reports, [], 'but nothing is reported on a grant still revoking')
    t.equal(ledger.intents.get('g1')?.outcome, 'cut')

    ledger.ended.add('g1')
    await cutoffs.drain(actor)

    t.match(ledger.reports, [
      { grantId: 'g1', action: 'grant.sessions_cut', change: { sessionsCutAt: '2026-12-01T12:00:01Z' } },
    ])
    t.equal(writes.length, 1, 'the policy is not written again')
  },
)

t.test(
  'a process frozen while it renewed the lease writes nothing when it wakes: its lease may be another’s',
  async (t) => {
    const { ledger, cutoffs, writes } = setUp()
    await cutoffs.intend(grant('g1'))
    ledger.renewalTakesMs = 60_000

    await t.rejects(cutoffs.drain(actor), { code: 'LEASE_LOST' })
    t.same(writes, [], 'no stale whole-policy write')
    t.equal(ledger.intents.get('g1')?.outcome, 'pending', 'the intent waits for the next drain')
  },
)

t.test('a drain that finds the lease held leaves the intent to the holder', async (t) => {
  const { ledger, cutoffs, writes } = setUp()
  await cutoffs.intend(grant('g1'))
  ledger.leaseOwner = 'another process'

  await cutoffs.drain(actor)

  t.same(writes, [])
  t.equal(ledger.intents.get('g1')?.outcome, 'pending')
})

t.test('nothing open and nothing to prune: a drain reads, and writes nothing', async (t) => {
  const { ledger, cutoffs, writes, clock } = setUp()
  await cutoffs.intend(grant('g1'))
  ledger.ended.add('g1')
  await cutoffs.drain(actor)
  t.equal(ledger.pruneAt, Date.parse('2026-12-01T13:00:01Z'))

  clock.advanceMinutes(30)
  await cutoffs.drain(actor)
  t.equal(writes.length, 1)

  clock.advanceMinutes(31)
  await cutoffs.drain(actor)
  t.equal(writes.length, 2, 'pruned once due')
  t.equal(ledger.pruneAt, null)
})

t.test('an ending does not wait for the index to show its own intent', async (t) => {
  const { ledger, cutoffs, statements } = setUp()
  ledger.lagging = true
  await cutoffs.intend(grant('g1'))
  ledger.ended.add('g1')

  await cutoffs.drain(actor)

  t.equal(statements().length, 1)
  t.match(ledger.reports, [{ grantId: 'g1', action: 'grant.sessions_cut' }])
})

/** Real time jumps ahead, as it does for a process that was frozen: Date.now runs that far ahead from here on. */
let realTimeAhead = 0
const realNow = Date.now
function frozenFor(ms: number) {
  realTimeAhead += ms
  Date.now = () => realNow() + realTimeAhead
}
t.teardown(() => {
  Date.now = realNow
})
