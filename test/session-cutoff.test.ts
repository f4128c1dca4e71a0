import t from 'tap'
import {
  cutoffOf,
  EMPTY_CUTOFF_POLICY,
  type PolicyDocument,
  policySize,
  SCP_MAX_CHARS,
  statementOf,
} from '../src/core/cutoff-policy.ts'
import { CUTOFF_PROPAGATION_MS } from '../src/core/session-cutoff.ts'
import { build, grantBody, PROD, STAGING } from './helpers/app.ts'
import { startMoto } from './helpers/moto.ts'
import { decide } from './helpers/simulator.ts'
import { subscribeQueue } from './helpers/sns.ts'
import { bearer } from './helpers/tokens.ts'

const moto = await startMoto(t)
const MINUTE = 60_000

/** The cut-off statements in force across the owned policies. */
const cutStatements = (documents: PolicyDocument[]) =>
  documents.flatMap((document) => document.Statement.filter((statement) => cutoffOf(statement)))
const shifted = (iso: string, ms: number) => new Date(Date.parse(iso) + ms)

async function grantAndEnd(app: Awaited<ReturnType<typeof build>>['app'], overrides: Record<string, unknown> = {}) {
  const granted = await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody(overrides) })
  if (granted.statusCode !== 201) throw new Error(granted.body)
  return app.inject({ method: 'DELETE', url: `/grants/${granted.json().id}`, headers: bearer() })
}

async function auditActions(app: Awaited<ReturnType<typeof build>>['app'], grantId: string): Promise<string[]> {
  const page = await app.inject({ method: 'GET', url: `/audit?grantId=${grantId}`, headers: bearer() })
  return page.json().items.map((event: { action: string }) => event.action)
}

t.test(
  "ending a grant adds one statement that denies that user's sessions through that role in that account issued before the end, and nothing else",
  async (t) => {
    const { app, cutoff, seeded } = await build(t, moto, { sessionCutoff: true })
    const alice = seeded.userIds.alice as string
    const bob = seeded.userIds.bob as string

    const ended = await grantAndEnd(app)

    t.equal(ended.statusCode, 200, ended.body)
    const grant = ended.json()
    t.equal(grant.status, 'revoked')
    t.type(grant.sessionsCutAt, 'string', 'the cut is on the grant')
    t.equal(
      Date.parse(grant.accessEndsBy),
      Date.parse(grant.sessionsCutAt) + CUTOFF_PROPAGATION_MS,
      'access ends once the policy is in force, not after the session duration',
    )
    const documents = await cutoff!.documents()
    t.equal(cutStatements(documents).length, 1, JSON.stringify(documents))
    t.ok(documents.every((document) => policySize(document) <= SCP_MAX_CHARS))
    const before = shifted(grant.sessionsCutAt, -10 * MINUTE)
    const after = shifted(grant.sessionsCutAt, 1000)
    const session = { userId: alice, accountId: PROD, permissionSet: 'AdministratorAccess', issuedAt: before }
    t.equal(await decide(documents, session), 'ExplicitlyDenied', 'the ended session is denied')
    t.equal(
      await decide(documents, { ...session, regionPath: 'eu-west-1' }),
      'ExplicitlyDenied',
      'also under the role path with a region',
    )
    t.equal(
      await decide(documents, { ...session, issuedAt: after }),
      'Allowed',
      'a session issued after the end (a new grant) is not',
    )
    t.equal(await decide(documents, { ...session, userId: bob }), 'Allowed', 'another user is not')
    t.equal(
      await decide(documents, { ...session, permissionSet: 'ReadOnlyAccess' }),
      'Allowed',
      'another permission set is not',
    )
    t.equal(
      await decide(documents, { ...session, permissionSet: 'AdministratorAccess_Ops' }),
      'Allowed',
      'nor one whose name starts with the same name',
    )
    t.equal(await decide(documents, { ...session, accountId: STAGING }), 'Allowed', 'another account is not')
    t.match(await auditActions(app, grant.id), ['grant.sessions_cut', 'grant.revoked'])
  },
)

t.test('ending one of two overlapping grants adds nothing: the other still covers the access', async (t) => {
  const { app, cutoff, seeded } = await build(t, moto, { sessionCutoff: true })
  const first = (await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() })).json()
  const second = (
    await app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: grantBody({ ticketId: 'CHG0005678' }),
    })
  ).json()

  const ended = await app.inject({ method: 'DELETE', url: `/grants/${first.id}`, headers: bearer() })

  t.equal(ended.json().sessionsCutAt, null, ended.body)
  t.equal(ended.json().accessEndsBy, first.accessEndsBy, 'the honest time stays')
  t.same(cutStatements(await cutoff!.documents()), [])
  const session = {
    userId: seeded.userIds.alice as string,
    accountId: PROD,
    permissionSet: 'AdministratorAccess',
    issuedAt: new Date(first.createdAt),
  }
  t.equal(await decide(await cutoff!.documents(), session), 'Allowed')
  t.notOk((await auditActions(app, first.id)).includes('grant.sessions_cut'))

  const last = await app.inject({ method: 'DELETE', url: `/grants/${second.id}`, headers: bearer() })

  t.type(last.json().sessionsCutAt, 'string', 'the last one ends the access, and cuts')
  t.equal(cutStatements(await cutoff!.documents()).length, 1)
})

t.test(
  'a grant over a permanent assignment cuts nothing: the assignment is left, and so are its sessions',
  async (t) => {
    const { app, cutoff } = await build(t, moto, { sessionCutoff: true })

    const ended = await grantAndEnd(app, { userName: 'carol', accountId: STAGING, permissionSet: 'ReadOnlyAccess' })

    t.equal(ended.json().coveredBy, 'pre-existing', ended.body)
    t.equal(ended.json().sessionsCutAt, null)
    t.same(cutStatements(await cutoff!.documents()), [])
    const revoked = (
      await app.inject({
        method: 'GET',
        url: `/audit?grantId=${ended.json().id}&action=grant.revoked`,
        headers: bearer(),
      })
    ).json().items
    t.match(
      revoked,
      [{ detail: 'permanent assignment left in place' }],
      'and the audit says so, not that an assignment was removed',
    )
  },
)

t.test(
  'a statement stays while a session it targets may live, and the sweep removes it after the session duration',
  async (t) => {
    const { app, clock, cutoff } = await build(t, moto, { sessionCutoff: true })
    await grantAndEnd(app)

    clock.advanceMinutes(59)
    await app.inject({ method: 'POST', url: '/revocations', headers: bearer() })
    t.equal(cutStatements(await cutoff!.documents()).length, 1, 'AdministratorAccess sessions last PT1H: still needed')

    clock.advanceMinutes(2)
    await app.inject({ method: 'POST', url: '/revocations', headers: bearer() })
    t.same(await cutoff!.documents(), [EMPTY_CUTOFF_POLICY], 'pruned, back to the empty policy')
  },
)

t.test('the same access ended twice keeps one statement, with the later time', async (t) => {
  const { app, clock, cutoff } = await build(t, moto, { sessionCutoff: true })
  await grantAndEnd(app)
  clock.advanceMinutes(10)

  const second = (await grantAndEnd(app, { ticketId: 'CHG0005678' })).json()

  const statements = cutStatements(await cutoff!.documents())
  t.equal(statements.length, 1)
  t.equal(cutoffOf(statements[0] as Record<string, unknown>)?.cutAt, second.sessionsCutAt)
})

t.test('the sweep writes the cut-offs of all the grants it ends in one policy update', async (t) => {
  const { app, clock, cutoff, proxy } = await build(t, moto, { sessionCutoff: true, proxy: true })
  for (const [userName, permissionSet] of [
    ['alice', 'AdministratorAccess'],
    ['alice', 'ReadOnlyAccess'],
    ['bob', 'AdministratorAccess'],
    ['bob', 'ReadOnlyAccess'],
  ]) {
    const granted = await app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: grantBody({ userName, permissionSet, durationMinutes: 30 }),
    })
    t.equal(granted.statusCode, 201, granted.body)
  }
  clock.advanceMinutes(31)

  const swept = await app.inject({ method: 'POST', url: '/revocations', headers: bearer() })

  t.equal(swept.json().revoked, 4, swept.body)
  t.equal(cutStatements(await cutoff!.documents()).length, 4)
  t.equal(proxy!.calls.UpdatePolicy, 1, 'one write for the four')
  t.equal(proxy!.calls.DescribePolicy, 1)
})

t.test(
  'Organizations answering ConcurrentModificationException and TooManyRequestsException is waited out',
  async (t) => {
    const { app, cutoff, proxy } = await build(t, moto, { sessionCutoff: true, proxy: true })
    proxy!.inject('DescribePolicy', 'too-many-requests', 1)
    proxy!.inject('UpdatePolicy', 'concurrent-modification', 2)

    const ended = await grantAndEnd(app)

    t.type(ended.json().sessionsCutAt, 'string', ended.body)
    t.equal(cutStatements(await cutoff!.documents()).length, 1)
    t.equal(proxy!.injected['concurrent-modification'], 2)
  },
)

t.test(
  'when the owned policies are full, a new cut-off is refused rather than an earlier one dropped: audited, alerted, and the grant keeps its honest time',
  async (t) => {
    const { app, cutoff, clients, topicArn, clock } = await build(t, moto, { sessionCutoff: true })
    const messages = await subscribeQueue(moto.endpoint, clients.sns, topicArn)
    const earlier = fillerCutoffs(clock.now().getTime(), 100).filter(
      (_, i, all) =>
        policySize({ Version: '2012-10-17', Statement: all.slice(0, i + 1).map((c) => statementOf(c)) }) <=
        SCP_MAX_CHARS,
    )
    const { UpdatePolicyCommand } = await import('@aws-sdk/client-organizations')
    await cutoff!.client.send(
      new UpdatePolicyCommand({
        PolicyId: cutoff!.policyIds[0],
        Content: JSON.stringify({ Version: '2012-10-17', Statement: earlier.map((c) => statementOf(c)) }),
      }),
    )

    const ended = await grantAndEnd(app)

    const grant = ended.json()
    t.equal(grant.status, 'revoked', ended.body)
    t.equal(grant.sessionsCutAt, null)
    t.equal(Date.parse(grant.accessEndsBy), Date.parse(grant.expiresAt) + 3600_000, 'the honest later time')
    t.equal(cutStatements(await cutoff!.documents()).length, earlier.length, 'every earlier cut-off is still there')
    t.match(await auditActions(app, grant.id), ['grant.cutoff_failed', 'grant.revoked'])
    await app.flushNotifications()
    const alerts = await messages()
    const lifecycle = alerts.find((body) => body.includes('grant.cutoff_failed'))
    t.match(
      JSON.parse(lifecycle ?? '{}').MessageAttributes,
      { severity: { Value: 'warning' } },
      'published as a lifecycle event, a warning',
    )
    t.ok(
      alerts.some((body) => /policies are full/.test(body)),
      'and as an error',
    )
  },
)

t.test("a crash between the assignment's removal and the policy update is finished by the next sweep", async (t) => {
  const { app, instances, clock, cutoff, proxy } = await build(t, moto, {
    sessionCutoff: true,
    proxy: true,
    instances: 2,
    requestDeadlineMs: 3000,
  })
  const granted = (await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() })).json()
  // The first process dies holding the policies' lease, its intent recorded and its grant ended.
  const frozen = proxy!.holdNext('DescribePolicy')
  const ending = app.inject({ method: 'DELETE', url: `/grants/${granted.id}`, headers: bearer() })
  await frozen.arrived
  t.equal((await ending).json().sessionsCutAt ?? null, null)
  t.same(cutStatements(await cutoff!.documents()), [])

  clock.advanceMinutes(2)
  const swept = await instances[1]!.inject({ method: 'POST', url: '/revocations', headers: bearer() })

  t.equal(swept.statusCode, 200, swept.body)
  t.equal(cutStatements(await cutoff!.documents()).length, 1, 'the other process wrote it once the lease ran out')
  const grant = (await instances[1]!.inject({ method: 'GET', url: `/grants/${granted.id}`, headers: bearer() })).json()
  t.equal(grant.status, 'revoked')
  t.type(grant.sessionsCutAt, 'string')
  t.equal(
    Date.parse(grant.accessEndsBy),
    clock.now().getTime() + CUTOFF_PROPAGATION_MS,
    'a cut written late takes effect late',
  )
  t.match(await auditActions(app, granted.id), ['grant.sessions_cut', 'grant.revoked'])
})

t.test('two processes ending grants at once lose no statement', async (t) => {
  const { app, instances, cutoff, proxy } = await build(t, moto, {
    sessionCutoff: { policies: 2 },
    proxy: true,
    instances: 2,
  })
  const targets = ['alice', 'bob'].flatMap((userName) =>
    ['AdministratorAccess', 'ReadOnlyAccess'].flatMap((permissionSet) =>
      [PROD, STAGING].map((accountId) => ({ userName, permissionSet, accountId })),
    ),
  )
  const grants = []
  for (const target of targets)
    grants.push(
      (await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody(target) })).json(),
    )
  proxy!.inject('UpdatePolicy', 'concurrent-modification', 1)

  const ended = await Promise.all(
    grants.map((grant, i) =>
      instances[i % 2]!.inject({ method: 'DELETE', url: `/grants/${grant.id}`, headers: bearer() }),
    ),
  )

  t.ok(
    ended.every((response) => response.statusCode === 200),
    ended.map((r) => r.body).join('\n'),
  )
  t.equal(cutStatements(await cutoff!.documents()).length, targets.length, 'one statement per ended target')
  const reported = await Promise.all(
    grants.map(
      async (grant) =>
        (await app.inject({ method: 'GET', url: `/grants/${grant.id}`, headers: bearer() })).json().sessionsCutAt,
    ),
  )
  t.ok(
    reported.every((cutAt) => typeof cutAt === 'string'),
    'each grant reports its cut',
  )
})

/** Cut-offs of made-up users, in force for hours, to fill a policy. */
function fillerCutoffs(now: number, count: number) {
  return Array.from({ length: count }, (_, i) => ({
    userId: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    accountId: '333333333333',
    permissionSet: 'AdministratorAccess',
    cutAt: new Date(Math.floor(now / 1000) * 1000).toISOString().replace('.000Z', 'Z'),
    keepUntil: now + 6 * 3600_000,
  }))
}

t.test(
  'more grants ending at once than the policy holds: each is cut or audited as failed, and no write goes over the limit',
  async (t) => {
    const policy = {
      rules: [
        {
          name: 'everyone',
          users: ['alice', 'bob', 'carol', 'dave'],
          accounts: ['*'],
          permissionSets: ['*'],
          maxDurationMinutes: 240,
        },
      ],
    }
    const { app, clock, cutoff } = await build(t, moto, { sessionCutoff: true, policy })
    const ids: string[] = []
    for (const userName of policy.rules[0]!.users) {
      for (const permissionSet of ['AdministratorAccess', 'ReadOnlyAccess', 'BillingAccess']) {
        for (const accountId of [PROD, STAGING]) {
          const granted = await app.inject({
            method: 'POST',
            url: '/grants',
            headers: bearer(),
            payload: grantBody({ userName, permissionSet, accountId, durationMinutes: 30 }),
          })
          t.equal(granted.statusCode, 201, granted.body)
          ids.push(granted.json().id)
        }
      }
    }
    clock.advanceMinutes(31)

    await app.inject({ method: 'POST', url: '/revocations', headers: bearer() })

    const documents = await cutoff!.documents()
    t.ok(documents.every((document) => policySize(document) <= SCP_MAX_CHARS))
    const grants = await Promise.all(
      ids.map(async (id) => (await app.inject({ method: 'GET', url: `/grants/${id}`, headers: bearer() })).json()),
    )
    const fates = await Promise.all(
      ids.map(async (id) =>
        (await auditActions(app, id)).filter((action) => /sessions_cut|cutoff_failed/.test(action)),
      ),
    )
    const cut = grants.filter((grant) => grant.sessionsCutAt !== null)
    t.equal(cutStatements(documents).length, cut.length, 'a statement for every grant that reports a cut')
    t.ok(cut.length > 0 && cut.length < ids.length - 1, `${cut.length} of ${ids.length} fit`)
    t.equal(
      fates.filter((f) => f[0] === 'grant.cutoff_failed').length,
      ids.length - 1 - cut.length,
      'the rest are audited as failed',
    )
    t.same(
      fates.filter((f) => f.length === 0).length,
      1,
      "only carol's permanent ReadOnlyAccess on staging has nothing to cut",
    )
  },
)

t.test('with the mode off nothing is cut and Organizations is never called', async (t) => {
  const { app, proxy } = await build(t, moto, { proxy: true })

  const ended = await grantAndEnd(app)

  t.equal(ended.json().sessionsCutAt, null, ended.body)
  t.equal(Date.parse(ended.json().accessEndsBy), Date.parse(ended.json().expiresAt) + 3600_000)
  t.notOk(Object.keys(proxy!.calls).some((operation) => /Policy/.test(operation)))
})

t.test(
  'a grant on the management account, which no service control policy reaches, is audited as not cut and keeps its honest time',
  async (t) => {
    const { app, cutoff } = await build(t, moto, { sessionCutoff: { policies: 1, managementAccountId: PROD } })

    const ended = await grantAndEnd(app)

    const grant = ended.json()
    t.equal(grant.sessionsCutAt, null, ended.body)
    t.equal(Date.parse(grant.accessEndsBy), Date.parse(grant.expiresAt) + 3600_000)
    t.same(cutStatements(await cutoff!.documents()), [], 'no statement that would change nothing')
    const events = (
      await app.inject({
        method: 'GET',
        url: `/audit?grantId=${grant.id}&action=grant.cutoff_failed`,
        headers: bearer(),
      })
    ).json().items
    t.match(events, [{ detail: /never apply to the organization's management account/ }])
  },
)

t.test(
  '200 grants ending within one session duration: compacted to one statement per access, never over the limit',
  async (t) => {
    const policy = {
      rules: [
        {
          name: 'everyone',
          users: ['alice', 'bob', 'carol', 'dave'],
          accounts: ['*'],
          permissionSets: ['*'],
          maxDurationMinutes: 240,
        },
      ],
    }
    const { app, clock, cutoff } = await build(t, moto, { sessionCutoff: { policies: 2 }, policy })
    const accesses = policy.rules[0]!.users.flatMap((userName) =>
      ['AdministratorAccess', 'ReadOnlyAccess', 'BillingAccess'].flatMap((permissionSet) =>
        [PROD, STAGING].map((accountId) => ({ userName, permissionSet, accountId })),
      ),
    )
    const ids: string[] = []
    // Rounds of grants that all expire together, five minutes apart: 200 endings within AdministratorAccess's hour.
    for (let round = 0; ids.length < 200; round++) {
      for (const access of accesses.slice(0, Math.min(accesses.length, 200 - ids.length))) {
        const granted = await app.inject({
          method: 'POST',
          url: '/grants',
          headers: bearer(),
          payload: grantBody({ ...access, durationMinutes: 5 }),
        })
        if (granted.statusCode !== 201) throw new Error(granted.body)
        ids.push(granted.json().id)
      }
      clock.advanceMinutes(5)
      await app.inject({ method: 'POST', url: '/revocations', headers: bearer() })
      t.ok(
        (await cutoff!.documents()).every((document) => policySize(document) <= SCP_MAX_CHARS),
        `round ${round}: within the limit`,
      )
    }

    const statements = cutStatements(await cutoff!.documents())
    t.equal(statements.length, accesses.length - 1, "one statement per access ended (carol's permanent one has none)")
    const failed = (
      await app.inject({ method: 'GET', url: '/audit?action=grant.cutoff_failed&limit=100', headers: bearer() })
    ).json().items
    t.same(failed, [], 'all fit once compacted')
    const latest = (await app.inject({ method: 'GET', url: `/grants/${ids.at(-1)}`, headers: bearer() })).json()
    t.ok(
      statements.some((statement) => cutoffOf(statement)?.cutAt === latest.sessionsCutAt),
      'each statement keeps its latest cut',
    )
  },
)
