import { CloseAccountCommand, MoveAccountCommand } from '@aws-sdk/client-organizations'
import t from 'tap'
import { UpstreamUnavailableError } from '../src/core/errors.ts'
import {
  evaluatePolicy,
  type PolicyDocument,
  PolicyInvalidError,
  parsePolicy,
  resolvePolicy,
} from '../src/core/policy.ts'
import type { AccountDirectory } from '../src/core/ports.ts'
import { build, grantBody } from './helpers/app.ts'
import { startMoto } from './helpers/moto.ts'
import type { StagedOrganization } from './helpers/organizations.ts'
import { bearer } from './helpers/tokens.ts'

const ORGANIZATIONS_OPERATIONS = [
  'ListParents',
  'ListChildren',
  'ListAccountsForParent',
  'ListTagsForResource',
  'DescribeAccount',
]

/** alice may have AdministratorAccess on every account under the workloads OU (three levels of OUs below the root). */
const workloadsPolicy = (
  org: StagedOrganization,
  extra: Partial<PolicyDocument['rules'][number]> = {},
): PolicyDocument => ({
  rules: [
    {
      name: 'workloads-admin',
      users: ['alice'],
      accounts: [org.units.workloads],
      permissionSets: ['AdministratorAccess'],
      maxDurationMinutes: 120,
      ...extra,
    },
  ],
})

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

t.test('the policy format', async (t) => {
  t.test('accepts organizational units, the root and account tags', async (t) => {
    const policy = parsePolicy({
      rules: [
        {
          name: 'r',
          users: ['alice'],
          accounts: ['ou-ab12-cdef3456', 'r-ab12', '111111111111'],
          accountTags: { environment: 'production' },
          permissionSets: ['*'],
          maxDurationMinutes: 60,
        },
      ],
    })
    t.same(policy.rules[0]?.accounts, ['ou-ab12-cdef3456', 'r-ab12', '111111111111'])
  })
  t.test('refuses what is neither an account, an OU nor a root, and empty tag sets', async (t) => {
    t.throws(
      () =>
        parsePolicy({
          rules: [{ name: 'r', users: ['alice'], accounts: ['ou-'], permissionSets: ['*'], maxDurationMinutes: 60 }],
        }),
      PolicyInvalidError,
    )
    t.throws(
      () =>
        parsePolicy({
          rules: [
            {
              name: 'r',
              users: ['alice'],
              accounts: ['*'],
              accountTags: {},
              permissionSets: ['*'],
              maxDurationMinutes: 60,
            },
          ],
        }),
      PolicyInvalidError,
    )
  })
})

t.test('the policy asks the organization only for rules that need it, and fails closed', async (t) => {
  const request = {
    userName: 'alice',
    accountId: '111111111111',
    permissionSet: 'ReadOnlyAccess',
    durationMinutes: 30,
    ticketId: 'CHG0000001',
  }
  const failing: AccountDirectory = {
    ancestorsOf: async () => {
      throw new UpstreamUnavailableError('Organizations', 'ListParents', new Error('down'))
    },
    tagsOf: async () => {
      throw new UpstreamUnavailableError('Organizations', 'ListTagsForResource', new Error('down'))
    },
    describe: async () => {
      throw new UpstreamUnavailableError('Organizations', 'DescribeAccount', new Error('down'))
    },
    accountsUnder: async () => {
      throw new UpstreamUnavailableError('Organizations', 'ListChildren', new Error('down'))
    },
  }
  const byUnit = {
    name: 'by-unit',
    users: ['alice'],
    accounts: ['ou-ab12-cdef3456'],
    permissionSets: ['*'],
    maxDurationMinutes: 60,
  }
  const byId = {
    name: 'by-id',
    users: ['alice'],
    accounts: ['111111111111'],
    permissionSets: ['*'],
    maxDurationMinutes: 60,
  }
  const noGroups = async () => []

  t.same(
    await evaluatePolicy(
      await resolvePolicy(parsePolicy({ rules: [byId] }), async () => undefined),
      request,
      noGroups,
      failing,
    ),
    { allowed: true, rule: 'by-id' },
    'a policy of account ids never asks (the failing directory would have thrown)',
  )
  t.same(
    await evaluatePolicy(
      await resolvePolicy(parsePolicy({ rules: [byUnit, byId] }), async () => undefined),
      request,
      noGroups,
      failing,
    ),
    { allowed: true, rule: 'by-id' },
    'a rule that cannot be decided does not stop another rule from allowing',
  )
  await t.rejects(
    evaluatePolicy(
      await resolvePolicy(
        parsePolicy({ rules: [byUnit, { ...byId, accounts: ['222222222222'] }] }),
        async () => undefined,
      ),
      request,
      noGroups,
      failing,
    ),
    UpstreamUnavailableError,
    'no rule allows without the organization: the failure is the answer, never an allow',
  )
})

t.test('through the service, against AWS Organizations in moto', async (t) => {
  const moto = await startMoto(t)

  t.test(
    'a rule naming a parent OU grants an account nested two OUs below it, and refuses one outside it',
    async (t) => {
      const { app, organization, hasAssignment } = await build(t, moto, {
        organization: true,
        policy: (org) => workloadsPolicy(org),
      })
      const { accounts } = organization!

      const inside = await app.inject({
        method: 'POST',
        url: '/grants',
        headers: bearer(),
        payload: grantBody({ accountId: accounts.paymentsProd }),
      })
      const outside = await app.inject({
        method: 'POST',
        url: '/grants',
        headers: bearer(),
        payload: grantBody({ accountId: accounts.sandboxDev }),
      })

      t.equal(inside.statusCode, 201, inside.body)
      t.ok(
        await hasAssignment('alice', accounts.paymentsProd, 'AdministratorAccess'),
        'the assignment exists in Identity Center',
      )
      t.equal(outside.statusCode, 403, outside.body)
      t.match(outside.json(), { code: 'POLICY_DENIED', failedCondition: 'account' })
    },
  )

  t.test('the root names every account of the organization, and nothing outside it', async (t) => {
    const { app, organization } = await build(t, moto, {
      organization: true,
      policy: (org) => workloadsPolicy(org, { accounts: [org.rootId] }),
    })

    const member = await app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: grantBody({ accountId: organization!.accounts.sandboxDev }),
    })
    const stranger = await app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: grantBody({ accountId: '999999999999' }),
    })

    t.equal(member.statusCode, 201, member.body)
    t.equal(stranger.statusCode, 403, stranger.body)
    t.match(stranger.json(), { failedCondition: 'account' })
  })

  t.test(
    'a policy of account ids costs no Organizations call, and an OU rule none once the cache is warm',
    async (t) => {
      const { app, organization, proxy } = await build(t, moto, {
        organization: true,
        proxy: true,
        policy: (org) => workloadsPolicy(org),
      })
      const calls = () => ORGANIZATIONS_OPERATIONS.reduce((sum, op) => sum + (proxy!.calls[op] ?? 0), 0)

      const first = await app.inject({
        method: 'POST',
        url: '/grants',
        headers: bearer(),
        payload: grantBody({ accountId: organization!.accounts.paymentsProd }),
      })
      const cold = calls()
      const second = await app.inject({
        method: 'POST',
        url: '/grants',
        headers: bearer(),
        payload: grantBody({
          accountId: organization!.accounts.paymentsProd,
          permissionSet: 'AdministratorAccess',
          ticketId: 'CHG0000002',
        }),
      })

      t.equal(first.statusCode, 201, first.body)
      t.equal(second.statusCode, 201, second.body)
      t.ok(cold > 0, `the first decision read the organization (${cold} calls)`)
      t.equal(calls(), cold, 'the second decision was answered from the cache')

      const plain = await build(t, moto, { proxy: true })
      const granted = await plain.app.inject({
        method: 'POST',
        url: '/grants',
        headers: bearer(),
        payload: grantBody(),
      })
      t.equal(granted.statusCode, 201, granted.body)
      t.same(
        ORGANIZATIONS_OPERATIONS.filter((op) => plain.proxy!.calls[op]),
        [],
        'the demo policy (account ids) never asks Organizations',
      )
    },
  )

  t.test('concurrent decisions on a cold cache share one lookup per answer', async (t) => {
    const { app, organization, proxy } = await build(t, moto, {
      organization: true,
      proxy: true,
      policy: (org) => workloadsPolicy(org),
    })

    const answers = await Promise.all(
      ['CHG0000011', 'CHG0000012', 'CHG0000013'].map((ticketId) =>
        app.inject({
          method: 'POST',
          url: '/grants',
          headers: bearer(),
          payload: grantBody({ accountId: organization!.accounts.paymentsProd, ticketId }),
        }),
      ),
    )

    for (const answer of answers) t.equal(answer.statusCode, 201, answer.body)
    // payments-prod → payments → prod → workloads → root: four parents read, once each, however many asked.
    t.equal(proxy!.calls.ListParents, 4, 'each parent read once')
    t.equal(proxy!.calls.DescribeAccount, 1, 'the account read once')
  })

  t.test(
    'an account moved out of the OU is refused once the cached answer expires (JIT_CACHE_TTL_SECONDS)',
    async (t) => {
      const ttlMs = 1500
      const { app, organization } = await build(t, moto, {
        organization: true,
        cacheTtlMs: ttlMs,
        policy: (org) => workloadsPolicy(org),
      })
      const { client, accounts, units } = organization!
      const ask = (ticketId: string) =>
        app.inject({
          method: 'POST',
          url: '/grants',
          headers: bearer(),
          payload: grantBody({ accountId: accounts.paymentsBatch, ticketId }),
        })

      const before = await ask('CHG0000021')
      await client.send(
        new MoveAccountCommand({
          AccountId: accounts.paymentsBatch,
          SourceParentId: units.payments,
          DestinationParentId: units.sandbox,
        }),
      )
      const cached = await ask('CHG0000022')
      await sleep(ttlMs + 200)
      const after = await ask('CHG0000023')

      t.equal(before.statusCode, 201, before.body)
      t.equal(cached.statusCode, 201, `within the TTL the old answer stands: ${cached.body}`)
      t.equal(after.statusCode, 403, after.body)
      t.match(after.json(), { failedCondition: 'account' })
    },
  )

  t.test('a rule with account tags allows only the accounts that carry them', async (t) => {
    const { app, organization } = await build(t, moto, {
      organization: true,
      policy: (org) => workloadsPolicy(org, { accountTags: { environment: 'production' } }),
    })
    const { accounts } = organization!

    const tagged = await app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: grantBody({ accountId: accounts.analyticsProd }),
    })
    const untagged = await app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: grantBody({ accountId: accounts.paymentsBatch }),
    })

    t.equal(tagged.statusCode, 201, tagged.body)
    t.equal(untagged.statusCode, 403, untagged.body)
    t.match(untagged.json(), { failedCondition: 'account', detail: /environment=production/ })
  })

  t.test('a suspended (closed) account is never granted, whatever the rule says', async (t) => {
    const { app, organization } = await build(t, moto, { organization: true, policy: (org) => workloadsPolicy(org) })
    await organization!.client.send(new CloseAccountCommand({ AccountId: organization!.accounts.paymentsProd }))

    const answer = await app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: grantBody({ accountId: organization!.accounts.paymentsProd }),
    })

    t.equal(answer.statusCode, 403, answer.body)
    t.match(answer.json(), { failedCondition: 'account', detail: /not active/ })
  })

  t.test(
    'an account pending closure (CloseAccount, before AWS suspends it) is never granted, nor listed as eligible',
    async (t) => {
      const { app, organization, proxy, hasAssignment } = await build(t, moto, {
        organization: true,
        proxy: true,
        policy: (org) => workloadsPolicy(org),
      })
      const { accounts } = organization!
      const open = await app.inject({
        method: 'POST',
        url: '/grants',
        headers: bearer(),
        payload: grantBody({ accountId: accounts.analyticsProd }),
      })
      proxy!.inject('DescribeAccount', 'report-pending-closure')
      proxy!.inject('ListAccountsForParent', 'report-pending-closure')

      const answer = await app.inject({
        method: 'POST',
        url: '/grants',
        headers: bearer(),
        payload: grantBody({ accountId: accounts.paymentsProd }),
      })
      const dryRun = await app.inject({
        method: 'POST',
        url: '/grants',
        headers: bearer(),
        payload: { ...grantBody({ accountId: accounts.paymentsBatch }), dryRun: true },
      })
      const eligibility = (
        await app.inject({ method: 'GET', url: '/eligibility?userName=alice', headers: bearer() })
      ).json()

      t.equal(open.statusCode, 201, `an active account is granted: ${open.body}`)
      t.equal(answer.statusCode, 403, answer.body)
      t.match(answer.json(), { failedCondition: 'account', detail: /not active/ })
      t.notOk(await hasAssignment('alice', accounts.paymentsProd, 'AdministratorAccess'), 'no assignment')
      t.match(dryRun.json(), { allowed: false, failedCondition: 'account' })
      const listed = eligibility.rules.flatMap((rule: { accounts: { id: string }[] }) =>
        rule.accounts.map((account) => account.id),
      )
      t.notOk(listed.includes(accounts.paymentsProd), 'not offered as eligible')
      t.ok(proxy!.injected['report-pending-closure'], 'Organizations reported it pending closure')
    },
  )

  t.test('Organizations failing answers 503 with Retry-After, records nothing and grants nothing', async (t) => {
    const { app, organization, proxy, hasAssignment } = await build(t, moto, {
      organization: true,
      proxy: true,
      policy: (org) => workloadsPolicy(org),
    })
    // Every attempt the limiter makes (3) fails; the next request finds Organizations back.
    proxy!.inject('ListParents', 'server-error', 3)

    const answer = await app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: grantBody({ accountId: organization!.accounts.paymentsProd }),
    })

    t.equal(answer.statusCode, 503, answer.body)
    t.ok(answer.headers['retry-after'], 'Retry-After is set')
    t.match(answer.json(), { code: 'UPSTREAM_UNAVAILABLE', detail: /Organizations/ })
    t.ok((proxy!.calls.ListParents ?? 0) >= 2, 'the read was retried before giving up')
    const grants = await app.inject({ method: 'GET', url: '/grants?userName=alice', headers: bearer() })
    t.same(grants.json().items, [], 'no grant recorded')
    t.notOk(await hasAssignment('alice', organization!.accounts.paymentsProd, 'AdministratorAccess'), 'no assignment')

    const later = await app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: grantBody({ accountId: organization!.accounts.paymentsProd }),
    })
    t.equal(later.statusCode, 201, `the failure was not cached: ${later.body}`)
  })

  t.test(
    'Organizations throttling is waited out within the request: the read is retried, the grant made',
    async (t) => {
      const { app, organization, proxy } = await build(t, moto, {
        organization: true,
        proxy: true,
        policy: (org) => workloadsPolicy(org),
      })
      proxy!.inject('ListParents', 'too-many-requests', 2)

      const answer = await app.inject({
        method: 'POST',
        url: '/grants',
        headers: bearer(),
        payload: grantBody({ accountId: organization!.accounts.paymentsProd }),
      })

      t.equal(answer.statusCode, 201, answer.body)
      t.equal(proxy!.injected['too-many-requests'], 2, 'both throttled answers were met')
    },
  )

  t.test('an extension is decided again with the account where it is now', async (t) => {
    const ttlMs = 1000
    const { app, organization } = await build(t, moto, {
      organization: true,
      cacheTtlMs: ttlMs,
      policy: (org) => workloadsPolicy(org),
    })
    const { client, accounts, units } = organization!
    const granted = await app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: grantBody({ accountId: accounts.paymentsBatch }),
    })
    t.equal(granted.statusCode, 201, granted.body)

    await client.send(
      new MoveAccountCommand({
        AccountId: accounts.paymentsBatch,
        SourceParentId: units.payments,
        DestinationParentId: units.sandbox,
      }),
    )
    await sleep(ttlMs + 200)
    const extended = await app.inject({
      method: 'PATCH',
      url: `/grants/${granted.json().id}`,
      headers: { ...bearer(), 'content-type': 'application/merge-patch+json' },
      payload: { expiresAt: new Date(Date.parse(granted.json().expiresAt) + 30 * 60_000).toISOString() },
    })

    t.equal(extended.statusCode, 403, extended.body)
    t.match(extended.json(), { code: 'POLICY_DENIED', failedCondition: 'account' })
  })

  t.test('a scheduled grant is decided again at its start, with the account where it is then', async (t) => {
    const ttlMs = 1000
    const { app, clock, organization } = await build(t, moto, {
      organization: true,
      cacheTtlMs: ttlMs,
      policy: (org) => workloadsPolicy(org),
    })
    const { client, accounts, units } = organization!
    const startsAt = new Date(clock.now().getTime() + 10 * 60_000).toISOString()
    const scheduled = await app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: grantBody({ accountId: accounts.paymentsBatch, startsAt }),
    })
    t.equal(scheduled.statusCode, 201, scheduled.body)

    await client.send(
      new MoveAccountCommand({
        AccountId: accounts.paymentsBatch,
        SourceParentId: units.payments,
        DestinationParentId: units.sandbox,
      }),
    )
    await sleep(ttlMs + 200)
    clock.advance(11 * 60_000)
    await app.runSweep({ actor: 'system:sweep', triggeredBy: 'test' })

    const grant = await app.inject({ method: 'GET', url: `/grants/${scheduled.json().id}`, headers: bearer() })
    t.equal(grant.json().status, 'denied', grant.body)
    t.match(grant.json().failureReason, /not eligible/)
  })
})
