import { randomBytes } from 'node:crypto'
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

t.test('a cursor made up, edited, for another user or under another policy is a 400 INVALID_CURSOR', async (t) => {
  const cursorKeys = [randomBytes(32).toString('base64url')]
  const { app } = await build(t, moto, { organization: true, policy: policyOf, cursorKeys })
  // Another deployment's policy (its organization's OU ids differ) under the same cursor secret.
  const other = await build(t, await startMoto(t), { organization: true, policy: policyOf, cursorKeys })
  const cursor = (await eligibility(app, 'userName=alice&limit=1')).json().rules[0].nextCursor as string
  t.ok(cursor, 'a first page gives a cursor')
  const made = (position: number) => Buffer.from(JSON.stringify(['workloads-admin', position])).toString('base64url')
  const edited = `${cursor.slice(0, -2)}${cursor.endsWith('AA') ? 'AB' : 'AA'}`

  const refused: [string, Awaited<ReturnType<typeof eligibility>>][] = [
    ['a position made up', await eligibility(app, `userName=alice&cursor=${made(1_000_000)}`)],
    ['an edited cursor', await eligibility(app, `userName=alice&cursor=${edited}`)],
    ["alice's cursor for bob", await eligibility(app, `userName=bob&cursor=${cursor}`)],
    ['a cursor minted under another policy', await eligibility(other.app, `userName=alice&cursor=${cursor}`)],
    ['not a cursor at all', await eligibility(app, 'userName=alice&cursor=AAAA')],
    ['not base64url', await eligibility(app, 'userName=alice&cursor=%2F%2F')],
  ]
  for (const [why, answer] of refused) {
    t.equal(answer.statusCode, 400, `${why}: ${answer.body}`)
    t.equal(
      answer.json().code,
      answer.statusCode === 400 && why === 'not base64url' ? 'VALIDATION_FAILED' : 'INVALID_CURSOR',
      why,
    )
    t.match(answer.headers['content-type'], /application\/problem\+json/)
  }
  const honest = await eligibility(app, `userName=alice&cursor=${cursor}`)
  t.equal(honest.statusCode, 200, honest.body)
})

t.test(
  'an account named by id is listed as the policy decides: any status without tags, active with them',
  async (t) => {
    const { app, organization, proxy } = await build(t, moto, {
      organization: true,
      proxy: true,
      policy: (org) => ({
        rules: [
          {
            name: 'named',
            users: ['alice'],
            accounts: [org.accounts.paymentsProd],
            permissionSets: ['ReadOnlyAccess'],
            maxDurationMinutes: 60,
          },
          {
            name: 'named-tagged',
            users: ['alice'],
            accounts: [org.units.payments, org.accounts.paymentsProd],
            accountTags: { environment: 'production' },
            permissionSets: ['ReadOnlyAccess'],
            maxDurationMinutes: 60,
          },
        ],
      }),
    })
    const { accounts } = organization!
    // Every account closing (still tagged, as AWS keeps a closing account's tags): none is active.
    proxy!.inject('DescribeAccount', 'report-pending-closure', Number.POSITIVE_INFINITY)
    proxy!.inject('ListAccountsForParent', 'report-pending-closure', Number.POSITIVE_INFINITY)

    const rules = (await eligibility(app, 'userName=alice')).json().rules
    t.same(
      rules[0].accounts.map((a: { id: string }) => a.id),
      [accounts.paymentsProd],
      'named without tags: listed, as the policy allows it whatever its status',
    )
    for (const size of [1, 2, 100]) {
      const pages = [(await eligibility(app, `userName=alice&limit=${size}`)).json().rules[1]]
      while (pages.at(-1).nextCursor && pages.length < 10) {
        pages.push(
          (await eligibility(app, `userName=alice&limit=${size}&cursor=${pages.at(-1).nextCursor}`)).json().rules[0],
        )
      }
      t.same(
        pages.flatMap((page: { accounts: unknown[] }) => page.accounts),
        [],
        `with tags, pages of ${size}: a closing account is listed neither under its OU nor by its id`,
      )
    }
    t.ok(proxy!.injected['report-pending-closure'], 'Organizations reported them closing')
  },
)
