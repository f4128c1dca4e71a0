import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { CREATION_SETTLE_MS } from '../src/core/coverage.ts'
import { build, grantBody, PROD, STAGING } from './helpers/app.ts'
import { checkInvariants, type Universe } from './helpers/invariants.ts'
import { startMoto } from './helpers/moto.ts'
import { bearer } from './helpers/tokens.ts'

const moto = await startMoto(t)

const universe: Universe = {
  users: ['alice', 'bob', 'carol'],
  accounts: [PROD, STAGING],
  permissionSets: ['AdministratorAccess', 'ReadOnlyAccess'],
  permanent: [`carol|${STAGING}|ReadOnlyAccess`],
}
/** Seeds, each with how many service instances share the tables (as Lambda execution environments do). */
const RUNS = [
  { seed: 1, instances: 1 },
  { seed: 2, instances: 3 },
  { seed: 3, instances: 3 },
  { seed: 4, instances: 2 },
]

for (const { seed, instances: count } of RUNS) {
  t.test(
    `in an AWS-like world, under throttling, 5xx, dropped connections and lost answers, with ${count} instance(s) and concurrent sweeps (seed ${seed}), every request is answered, and once faults stop the sweeps restore the invariants exactly`,
    async (t) => {
      const { instances, clock, proxy, countAssignments } = await build(t, moto, {
        proxy: true,
        awsLike: { provisioningMs: 1000, provisioningJitterMs: 900, seed },
        instances: count,
      })
      const app = instances[0] as (typeof instances)[number]
      const on = (i: number) => instances[i % instances.length] as typeof app
      const requests = Array.from({ length: 30 }, (_, i) => {
        const carol = i % 5 === 4
        return grantBody({
          userName: carol ? 'carol' : i % 2 ? 'alice' : 'bob',
          accountId: i % 3 ? PROD : STAGING,
          permissionSet: carol || i % 4 === 1 ? 'ReadOnlyAccess' : 'AdministratorAccess',
          durationMinutes: 10 + (i % 6) * 10,
          ticketId: `INC${String(1_000_000 + i)}`,
        })
      })
      proxy?.injectRandomly({
        probability: 0.15,
        faults: [
          'throttle',
          'server-error',
          'drop',
          'drop-after-upstream',
          'server-error-after-upstream',
          'transaction-conflict',
        ],
        seed,
      })

      // Phase 1: 30 concurrent grant requests spread over the instances (every fifth sent twice with the same
      // Idempotency-Key, to two different instances), all faulty, while a sweep runs on every instance.
      const sweepsDuring = Promise.all(
        instances.map((instance) => instance.inject({ method: 'POST', url: '/revocations', headers: bearer() })),
      )
      const posts = await Promise.all(
        requests.flatMap((body, i) => {
          const headers = { ...bearer(), 'idempotency-key': `approval-${seed}-${i}` }
          const send = (instance: typeof app) =>
            instance.inject({ method: 'POST', url: '/grants', headers, payload: body })
          return i % 5 === 0 ? [send(on(i)), send(on(i + 1))] : [send(on(i))]
        }),
      )
      // Phase 2: end a third of what was recorded, concurrently, on other instances, still faulty.
      const recorded = [
        ...new Set(posts.map((r) => (r.statusCode < 300 ? r.json().id : r.json().grantId)).filter(Boolean)),
      ] as string[]
      const deletes = await Promise.all(
        recorded
          .filter((_, i) => i % 3 === 0)
          .map((id, i) => on(i + 1).inject({ method: 'DELETE', url: `/grants/${id}`, headers: bearer() })),
      )
      await sweepsDuring

      const answers = [...posts, ...deletes]
      // Every request is eligible and names things that exist: a 403 or 422 here would be a fault taken for a decision.
      const bad = answers.filter((r) => ![200, 201, 202, 409, 503].includes(r.statusCode))
      t.same(
        bad.map((r) => `${r.statusCode} ${r.body}`),
        [],
        'only documented answers: no 500, no bare error',
      )
      for (const response of answers.filter((r) => r.statusCode >= 400)) {
        t.match(response.headers['content-type'], /^application\/problem\+json/)
        t.match(response.json(), { code: String, requestId: String })
      }
      t.notOk(
        posts.some((r) => r.statusCode < 300 && r.json().coveredBy === 'pre-existing' && r.json().userName !== 'carol'),
        'nothing of ours is ever taken for a permanent assignment',
      )
      const faults = proxy?.totalInjected() ?? 0
      t.ok(faults > 10, `${faults} faults injected`)

      // Phase 3: faults stop; every instance sweeps at once, a minute apart, past the provisioning grace, the
      // lease time and the time an accepted creation may take to show, until nothing is left.
      proxy?.clear()
      clock.advance(CREATION_SETTLE_MS + 1_000)
      const during = await sweepUntilSettled(instances, clock)
      t.match(during.at(-1), { failed: 0, remaining: 0 }, `settled: ${JSON.stringify(during)}`)
      const running = await checkInvariants(app, universe, countAssignments)
      t.same(running.violations, [], 'invariants hold with grants still running')
      t.notOk(
        running.grants.some(
          (g) =>
            g.status === 'active' &&
            g.userName !== 'carol' &&
            (g as { coveredBy?: string }).coveredBy === 'pre-existing',
        ),
        'no grant of ours is covered by a "permanent" assignment',
      )

      // Phase 4: everything expires; the sweeps remove it all, leaving only the permanent assignment.
      clock.advanceMinutes(61)
      const final = await sweepUntilSettled(instances, clock)
      t.match(final.at(-1), { failed: 0, remaining: 0 }, `settled: ${JSON.stringify(final)}`)
      const after = await checkInvariants(app, universe, countAssignments)
      t.same(after.violations, [], 'invariants hold after expiry')
      t.equal(after.assignments, 1, 'only the permanent assignment is left')
      t.same(
        after.grants.filter((g) => g.status === 'active'),
        [],
      )

      t.comment(
        `seed ${seed}, ${count} instance(s): ${answers.length} requests (${posts.length} POST, ${deletes.length} DELETE), ${faults} faults ${JSON.stringify(proxy?.injected)}, ` +
          `answers ${JSON.stringify(countBy(answers.map((r) => r.statusCode)))}, grants ${running.grants.length}, ` +
          `sweeps to settle ${during.length} then ${final.length}, orphans/duplicates/missing after: ${after.violations.length}`,
      )
    },
  )
}

/**
 * Sweeps on every instance at once, a minute apart, until a round leaves nothing (at most 4 rounds): two
 * sweeps meeting on one assignment leave it to whoever holds its lease, so a round may end with work the
 * next finishes. Answers each round's totals.
 */
async function sweepUntilSettled(instances: FastifyInstance[], clock: { advanceMinutes(n: number): void }) {
  const rounds: { failed: number; remaining: number }[] = []
  for (let round = 0; round < 4; round++) {
    if (round > 0) clock.advanceMinutes(1)
    const summaries = await Promise.all(
      instances.map(async (instance) =>
        (await instance.inject({ method: 'POST', url: '/revocations', headers: bearer() })).json(),
      ),
    )
    const total = summaries.reduce(
      (sum, s) => ({ failed: sum.failed + s.failed, remaining: sum.remaining + s.remaining }),
      { failed: 0, remaining: 0 },
    )
    rounds.push(total)
    if (total.failed === 0 && total.remaining === 0) break
  }
  return rounds
}

function countBy(values: number[]): Record<number, number> {
  const counts: Record<number, number> = {}
  for (const v of values) counts[v] = (counts[v] ?? 0) + 1
  return counts
}
