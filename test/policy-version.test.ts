import t from 'tap'
import { type PolicyDocument, parsePolicy, policyVersion } from '../src/core/policy.ts'
import { DEMO_POLICY } from '../src/sandbox/seed.ts'
import { build, grantBody } from './helpers/app.ts'
import { startMoto } from './helpers/moto.ts'
import { bearer, mintToken } from './helpers/tokens.ts'

t.test('the version is a hash of the content: the same whatever the key order, another for any change', async (t) => {
  const reordered = JSON.parse(
    JSON.stringify({ rules: DEMO_POLICY.rules.map((rule) => Object.fromEntries(Object.entries(rule).reverse())) }),
  ) as PolicyDocument
  const changed: PolicyDocument = {
    rules: DEMO_POLICY.rules.map((rule, i) =>
      i === 0 ? { ...rule, maxDurationMinutes: rule.maxDurationMinutes + 1 } : rule,
    ),
  }

  t.match(policyVersion(DEMO_POLICY), /^[0-9a-f]{12}$/)
  t.equal(policyVersion(reordered), policyVersion(DEMO_POLICY), 'key order does not matter')
  t.not(policyVersion(changed), policyVersion(DEMO_POLICY), 'a changed limit is another version')
  t.equal(parsePolicy(DEMO_POLICY).version, policyVersion(DEMO_POLICY), 'the parsed policy carries it')
})

t.test('through the service', async (t) => {
  const moto = await startMoto(t)
  const version = policyVersion(DEMO_POLICY)

  t.test('GET /policy answers the loaded document and its version, with the policy:read scope only', async (t) => {
    const { app } = await build(t, moto)

    const answer = await app.inject({
      method: 'GET',
      url: '/policy',
      headers: bearer(mintToken({ scope: 'policy:read' })),
    })
    const refused = await app.inject({
      method: 'GET',
      url: '/policy',
      headers: bearer(mintToken({ scope: 'grants:read audit:read' })),
    })

    t.equal(answer.statusCode, 200, answer.body)
    t.same(answer.json(), { version, document: DEMO_POLICY })
    t.equal(refused.statusCode, 403, refused.body)
    t.match(refused.json(), { code: 'INSUFFICIENT_SCOPE' })
  })

  t.test(
    "every decision's audit event names the policy version and the rule that allowed or came closest",
    async (t) => {
      const { app } = await build(t, moto)
      const allowed = await app.inject({
        method: 'POST',
        url: '/grants',
        headers: bearer(),
        payload: grantBody({ ticketId: 'CHG0000001' }),
      })
      const denied = await app.inject({
        method: 'POST',
        url: '/grants',
        headers: bearer(),
        payload: grantBody({ ticketId: 'CHG0000002', durationMinutes: 600 }),
      })
      const extended = await app.inject({
        method: 'PATCH',
        url: `/grants/${allowed.json().id}`,
        headers: { ...bearer(), 'content-type': 'application/merge-patch+json' },
        payload: { expiresAt: new Date(Date.parse(allowed.json().expiresAt) + 30 * 60_000).toISOString() },
      })
      t.equal(allowed.statusCode, 201, allowed.body)
      t.equal(denied.statusCode, 403, denied.body)
      t.equal(extended.statusCode, 200, extended.body)

      const events = (await app.inject({ method: 'GET', url: '/audit?userName=alice', headers: bearer() })).json()
        .items as { action: string; ticketId: string; detail: string }[]
      const detailOf = (action: string, ticketId: string) =>
        events.find((e) => e.action === action && e.ticketId === ticketId)?.detail ?? ''

      t.match(detailOf('grant.requested', 'CHG0000001'), `allowed by rule 'oncall-incident-access' (policy ${version})`)
      t.match(
        detailOf('grant.denied', 'CHG0000002'),
        `failed condition: duration; closest rule 'oncall-incident-access'; policy ${version}`,
      )
      t.match(detailOf('grant.extended', 'CHG0000001'), `allowed by rule 'oncall-incident-access' (policy ${version})`)
    },
  )
})
