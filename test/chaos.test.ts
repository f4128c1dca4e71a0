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
const SEEDS = [1, 2, 3]

for (const seed of SEEDS) {
  t.test(`under throttling, 5xx and dropped connections (seed ${seed}) every request is answered, and after one clean sweep the invariants hold exactly`, async (t) => {
    const { app, clock, proxy, countAssignments } = await build(t, moto, { proxy: true })
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
    proxy?.injectRandomly({ probability: 0.15, faults: ['throttle', 'server-error', 'drop', 'drop-after-upstream', 'transaction-conflict'], seed })

    // Phase 1: 30 concurrent grant requests (every fifth sent twice with the same Idempotency-Key), all faulty.
    const posts = await Promise.all(requests.flatMap((body, i) => {
      const headers = { ...bearer(), 'idempotency-key': `approval-${seed}-${i}` }
      const send = () => app.inject({ method: 'POST', url: '/grants', headers, payload: body })
      return i % 5 === 0 ? [send(), send()] : [send()]
    }))
    // Phase 2: end a third of what was recorded, concurrently, still faulty.
    const recorded = [...new Set(posts.map((r) => (r.statusCode < 300 ? r.json().id : r.json().grantId)).filter(Boolean))] as string[]
    const deletes = await Promise.all(recorded.filter((_, i) => i % 3 === 0).map((id) =>
      app.inject({ method: 'DELETE', url: `/grants/${id}`, headers: bearer() })))

    const answers = [...posts, ...deletes]
    // Every request is eligible and names things that exist: a 403 or 422 here would be a fault taken for a decision.
    const bad = answers.filter((r) => ![200, 201, 202, 409, 503].includes(r.statusCode))
    t.same(bad.map((r) => `${r.statusCode} ${r.body}`), [], 'only documented answers: no 500, no bare error')
    for (const response of answers.filter((r) => r.statusCode >= 400)) {
      t.match(response.headers['content-type'], /^application\/problem\+json/)
      t.match(response.json(), { code: String, requestId: String })
    }
    const faults = proxy?.totalInjected() ?? 0
    t.ok(faults > 10, `${faults} faults injected`)

    // Phase 3: faults stop; one sweep after the provisioning grace, the lease time and the time an accepted
    // creation may take to show (an ended grant's unconfirmed creation waits that long) finishes everything.
    proxy?.clear()
    clock.advance(CREATION_SETTLE_MS + 1_000)
    const sweep = (await app.inject({ method: 'POST', url: '/revocations', headers: bearer() })).json()
    t.match(sweep, { failed: 0, remaining: 0 })
    const during = await checkInvariants(app, universe, countAssignments)
    t.same(during.violations, [], 'invariants hold with grants still running')

    // Phase 4: everything expires; one sweep removes it all, leaving only the permanent assignment.
    clock.advanceMinutes(61)
    const final = (await app.inject({ method: 'POST', url: '/revocations', headers: bearer() })).json()
    t.match(final, { failed: 0, remaining: 0 })
    const after = await checkInvariants(app, universe, countAssignments)
    t.same(after.violations, [], 'invariants hold after expiry')
    t.equal(after.assignments, 1, 'only the permanent assignment is left')
    t.same(after.grants.filter((g) => g.status === 'active'), [])

    t.comment(`seed ${seed}: ${answers.length} requests (${posts.length} POST, ${deletes.length} DELETE), ${faults} faults ${JSON.stringify(proxy?.injected)}, ` +
      `answers ${JSON.stringify(countBy(answers.map((r) => r.statusCode)))}, grants ${during.grants.length}, ` +
      `first sweep ${JSON.stringify(sweep)}, orphans/duplicates/missing after: ${after.violations.length}`)
  })
}

function countBy(values: number[]): Record<number, number> {
  return values.reduce<Record<number, number>>((acc, v) => ({ ...acc, [v]: (acc[v] ?? 0) + 1 }), {})
}
