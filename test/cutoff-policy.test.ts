import t from 'tap'
import {
  type Cutoff,
  cutoffOf,
  EMPTY_CUTOFF_POLICY,
  type OwnedPolicy,
  type PolicyDocument,
  planCutoffs,
  policySize,
  SCP_MAX_CHARS,
} from '../src/core/cutoff-policy.ts'
import { decide } from './helpers/simulator.ts'

const NOW = Date.parse('2026-12-01T12:00:00Z')
const HOUR = 3600_000
const emptyPolicies = (count: number): OwnedPolicy[] =>
  Array.from({ length: count }, (_, i) => ({
    id: `p-owned${String(i).padStart(4, '0')}`,
    document: EMPTY_CUTOFF_POLICY,
  }))
const secondsIso = (ms: number) => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z')

/** The n-th of many users ending AdministratorAccess on one of ten accounts, n seconds apart, within one session duration. */
function cutoffOfUser(n: number, durationMs = HOUR): Cutoff {
  const cutAt = NOW + n * 1000
  return {
    userId: `94482488-3041-7026-18f5-${String(n).padStart(12, '0')}`,
    accountId: String(111111111100 + (n % 10)),
    permissionSet: 'AdministratorAccess',
    cutAt: secondsIso(cutAt),
    keepUntil: cutAt + durationMs,
  }
}

const applied = (policies: OwnedPolicy[], writes: Map<string, PolicyDocument>): OwnedPolicy[] =>
  policies.map((policy) => ({ id: policy.id, document: writes.get(policy.id) ?? policy.document }))
const inForce = (policies: OwnedPolicy[]) =>
  policies.flatMap((policy) => policy.document.Statement.map(cutoffOf).filter((c) => c !== undefined))

t.test(
  '200 grants ending within one session duration never overflow a policy: what fits is spread over the five, the rest is rejected, none dropped',
  async (t) => {
    const additions = Array.from({ length: 200 }, (_, n) => cutoffOfUser(n))

    const plan = planCutoffs(emptyPolicies(5), additions, NOW)

    t.equal(plan.writes.size, 5, 'every policy takes its share')
    for (const document of plan.writes.values())
      t.ok(policySize(document) <= SCP_MAX_CHARS, `${policySize(document)} characters`)
    t.equal(plan.inForce.length + plan.rejected.length, 200, 'each cut-off is placed or reported')
    t.ok(plan.inForce.length >= 60, `${plan.inForce.length} fit`)
    t.same(
      plan.rejected,
      additions.slice(plan.inForce.length),
      'the first ones in are kept; later ones are the ones refused',
    )

    const again = planCutoffs(applied(emptyPolicies(5), plan.writes), [cutoffOfUser(500)], NOW + 10_000)
    t.equal(again.writes.size, 0, 'a full set of policies is not rewritten')
    t.equal(again.rejected.length, 1)
  },
)

t.test('the same target ended many times keeps one statement with its latest time', async (t) => {
  const additions = Array.from({ length: 200 }, (_, n) => ({
    ...cutoffOfUser(n % 10),
    cutAt: secondsIso(NOW + n * 1000),
    keepUntil: NOW + n * 1000 + HOUR,
  }))

  const plan = planCutoffs(emptyPolicies(1), additions, NOW)

  t.equal(plan.inForce.length, 10)
  t.same(plan.rejected, [])
  for (const cutoff of plan.inForce)
    t.equal(cutoff.cutAt, secondsIso(NOW + (190 + Number(cutoff.userId.slice(-2))) * 1000))
})

t.test("the compacted statement still lets a later grant's sessions through, by the simulator", async (t) => {
  const first = cutoffOfUser(1)
  const later = { ...first, cutAt: secondsIso(NOW + 600_000), keepUntil: NOW + 600_000 + HOUR }
  const plan = planCutoffs(emptyPolicies(1), [first, later], NOW)
  const documents = [...plan.writes.values()]
  const session = { userId: first.userId, accountId: first.accountId, permissionSet: 'AdministratorAccess' }

  t.equal(
    await decide(documents, { ...session, issuedAt: new Date(NOW + 300_000) }),
    'ExplicitlyDenied',
    'a session of the second grant, which ended too',
  )
  t.equal(
    await decide(documents, { ...session, issuedAt: new Date(NOW + 601_000) }),
    'Allowed',
    'a session issued after the last end',
  )
})

t.test(
  'statements are pruned once every session they target has expired; statements the service did not write are kept',
  async (t) => {
    const foreign = { Sid: 'BreakGlassDeny', Effect: 'Deny', Action: 'organizations:LeaveOrganization', Resource: '*' }
    const first = planCutoffs(emptyPolicies(1), [cutoffOfUser(1), cutoffOfUser(2, 8 * HOUR)], NOW)
    const withForeign = applied(emptyPolicies(1), first.writes).map((p) => ({
      ...p,
      document: { ...p.document, Statement: [foreign, ...p.document.Statement] },
    }))

    const pruned = planCutoffs(withForeign, [], NOW + 2 * HOUR)

    t.same(
      inForce(applied(withForeign, pruned.writes)).map((c) => c.userId),
      [cutoffOfUser(2).userId],
      'the PT8H one stays',
    )
    t.same(applied(withForeign, pruned.writes)[0]?.document.Statement[0], foreign)
    const emptied = planCutoffs(
      applied(withForeign, pruned.writes).map((p) => ({
        ...p,
        document: { ...p.document, Statement: p.document.Statement.slice(1) },
      })),
      [],
      NOW + 9 * HOUR,
    )
    t.same(
      [...emptied.writes.values()],
      [EMPTY_CUTOFF_POLICY],
      'an empty policy still holds a statement, one no token can match',
    )
  },
)

t.test('a cut-off whose sessions have all expired before it could be written needs no statement', async (t) => {
  const plan = planCutoffs(emptyPolicies(1), [cutoffOfUser(1)], NOW + 2 * HOUR)

  t.equal(plan.lapsed.length, 1)
  t.equal(plan.writes.size, 0)
})
