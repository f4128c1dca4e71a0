import { CloseAccountCommand } from '@aws-sdk/client-organizations'
import t from 'tap'
import { type PolicyDocument, policyVersion } from '../src/core/policy.ts'
import { build } from './helpers/app.ts'
import { startMoto } from './helpers/moto.ts'
import type { StagedOrganization } from './helpers/organizations.ts'
import { bearer, mintToken } from './helpers/tokens.ts'

const moto = await startMoto(t)

const policyOf = (org: StagedOrganization): PolicyDocument => ({
  rules: [
    {
      name: 'workloads-admin',
      users: ['alice'],
      accounts: [org.units.workloads],
      permissionSets: ['AdministratorAccess'],
      maxDurationMinutes: 120,
    },
    {
      name: 'oncall-payments',
      groups: ['oncall'],
      accounts: [org.units.payments, '111111111111'],
      permissionSets: ['ReadOnlyAccess'],
      maxDurationMinutes: 60,
      maxLeadDays: 3,
      ticketPattern: 'CHG[0-9]{7}',
    },
    {
      name: 'development',
      users: ['alice'],
      accounts: [org.rootId],
      accountTags: { environment: 'development' },
      permissionSets: ['*'],
      maxDurationMinutes: 900,
    },
    {
      name: 'carol-anywhere',
      users: ['carol'],
      accounts: ['*'],
      permissionSets: ['ReadOnlyAccess'],
      maxDurationMinutes: 30,
    },
  ],
})

const eligibility = (app: Awaited<ReturnType<typeof build>>['app'], query: string) =>
  app.inject({ method: 'GET', url: `/eligibility?${query}`, headers: bearer(mintToken({ scope: 'grants:read' })) })

t.test('GET /eligibility lists exactly the rules, accounts and limits alice may request', async (t) => {
  const { app, organization } = await build(t, moto, { organization: true, maxDurationMinutes: 720, policy: policyOf })
  const { accounts } = organization!
  await organization!.client.send(new CloseAccountCommand({ AccountId: accounts.paymentsBatch }))

  const answer = await eligibility(app, 'userName=alice')

  t.equal(answer.statusCode, 200, answer.body)
  const body = answer.json()
  t.equal(body.policyVersion, policyVersion(policyOf(organization!)))
  t.same(
    body.rules.map((r: { rule: string }) => r.rule),
    ['workloads-admin', 'oncall-payments', 'development'],
    "alice is named in two rules and in oncall; not carol's",
  )
  const [admin, payments, development] = body.rules
  t.same(
    new Set(admin.accounts.map((a: { id: string }) => a.id)),
    new Set([accounts.analyticsProd, accounts.paymentsProd]),
    'the OU expanded to every active account nested below it; the closed one left out',
  )
  t.match(admin.accounts, [{ name: String }, { name: String }], 'with their names')
  t.match(admin, {
    permissionSets: ['AdministratorAccess'],
    maxDurationMinutes: 120,
    maxLeadDays: 14,
    ticketPattern: null,
    truncated: false,
    anyAccount: false,
  })
  t.same(
    payments.accounts.map((a: { id: string }) => a.id),
    [accounts.paymentsProd, '111111111111'],
    'an OU and a listed account',
  )
  t.match(payments, { maxLeadDays: 3, ticketPattern: 'CHG[0-9]{7}', permissionSets: ['ReadOnlyAccess'] })
  t.same(
    development.accounts.map((a: { id: string }) => a.id),
    [accounts.sandboxDev],
    "the root filtered by the rule's tags",
  )
  t.equal(development.maxDurationMinutes, 720, 'bounded by the service maximum')
})

t.test(
  'GET /eligibility for others: a group member, a rule for any account, someone with nothing, and the cap',
  async (t) => {
    const { app, organization } = await build(t, moto, { organization: true, policy: policyOf })

    const bob = (await eligibility(app, 'userName=bob')).json()
    const carol = (await eligibility(app, 'userName=carol')).json()
    const dave = (await eligibility(app, 'userName=dave')).json()
    const capped = (await eligibility(app, 'userName=alice&limit=1')).json()
    const nobody = await eligibility(app, 'userName=nobody')

    t.same(
      bob.rules.map((r: { rule: string }) => r.rule),
      ['oncall-payments'],
    )
    t.match(carol.rules, [{ rule: 'carol-anywhere', anyAccount: true, accounts: [], truncated: false }])
    t.same(dave.rules, [])
    t.match(capped.rules[0], { rule: 'workloads-admin', truncated: true })
    t.equal(capped.rules[0].accounts.length, 1)
    t.equal(nobody.statusCode, 422, nobody.body)
    t.ok(organization)
  },
)

t.test('a policy of account ids lists them without asking Organizations', async (t) => {
  const { app, proxy } = await build(t, moto, { proxy: true })

  const answer = await eligibility(app, 'userName=alice')

  t.equal(answer.statusCode, 200, answer.body)
  t.match(answer.json().rules, [
    {
      rule: 'oncall-incident-access',
      accounts: [
        { id: '111111111111', name: null },
        { id: '222222222222', name: null },
      ],
    },
  ])
  t.same(
    ['ListParents', 'ListChildren', 'ListAccountsForParent', 'DescribeAccount', 'ListTagsForResource'].filter(
      (op) => proxy!.calls[op],
    ),
    [],
  )
})

t.test('Organizations failing makes GET /eligibility a 503, not a shorter list', async (t) => {
  const { app, proxy } = await build(t, moto, { organization: true, proxy: true, policy: policyOf })
  proxy!.inject('ListAccountsForParent', 'server-error')

  const answer = await eligibility(app, 'userName=alice')

  t.equal(answer.statusCode, 503, answer.body)
  t.ok(answer.headers['retry-after'])
})

t.test('a rule longer than limit is read page by page with its nextCursor, each account once', async (t) => {
  const { app, organization } = await build(t, moto, { organization: true, policy: policyOf })
  const { accounts } = organization!

  const first = (await eligibility(app, 'userName=alice&limit=1')).json()
  const pages = [first.rules[0]]
  t.same(
    first.rules.map((r: { rule: string }) => r.rule),
    ['workloads-admin', 'oncall-payments', 'development'],
    'the first page lists every rule',
  )
  while (pages.at(-1).nextCursor !== null && pages.length < 10) {
    const answer = await eligibility(app, `userName=alice&limit=1&cursor=${pages.at(-1).nextCursor}`)
    t.equal(answer.statusCode, 200, answer.body)
    t.same(
      answer.json().rules.map((r: { rule: string }) => r.rule),
      ['workloads-admin'],
      'a cursor answers only its rule',
    )
    pages.push(answer.json().rules[0])
  }
  const listed = pages.flatMap((page: { accounts: { id: string }[] }) => page.accounts.map((a) => a.id))
  t.same(
    new Set(listed),
    new Set([accounts.analyticsProd, accounts.paymentsProd, accounts.paymentsBatch]),
    'every account the OU reaches',
  )
  t.equal(listed.length, new Set(listed).size, 'none twice')
  t.ok(
    pages.slice(0, -1).every((page: { truncated: boolean }) => page.truncated),
    'truncated on every page but the last',
  )
  t.match(pages.at(-1), { truncated: false, nextCursor: null })
})

t.test('a cursor from another policy, another rule or made up is a 400 INVALID_CURSOR', async (t) => {
  const { app } = await build(t, moto, { organization: true, policy: policyOf })
  const cursor = (await eligibility(app, 'userName=alice&limit=1')).json().rules[0].nextCursor as string
  const other = (version: string, position = 1, rule = 'workloads-admin') =>
    Buffer.from(JSON.stringify([rule, position, version])).toString('base64url')
  const version = JSON.parse(Buffer.from(cursor, 'base64url').toString())[2] as string

  const refused: [string, string][] = [
    ['another policy version', other('0000000000ab')],
    ['a position of 0', other(version, 0)],
    ['a negative position', other(version, -5)],
    ['a position past any organization', other(version, 2_000_000)],
    ['not JSON', 'bm90LWpzb24'],
    ['not a cursor at all', 'AAAA'],
  ]
  for (const [why, bad] of refused) {
    const answer = await eligibility(app, `userName=alice&cursor=${bad}`)
    t.equal(answer.statusCode, 400, `${why}: ${answer.body}`)
    t.equal(answer.json().code, 'INVALID_CURSOR', why)
    t.match(answer.headers['content-type'], /application\/problem\+json/)
  }
  const notBase64 = await eligibility(app, 'userName=alice&cursor=%2F%2F')
  t.equal(notBase64.statusCode, 400, notBase64.body)
  const gone = await eligibility(app, `userName=alice&cursor=${other(version, 1, 'no-such-rule')}`)
  t.equal(gone.statusCode, 200, gone.body)
  t.same(gone.json().rules, [], 'a rule that does not (or no longer) include the user lists nothing')
})
