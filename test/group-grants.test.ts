import {
  CreateGroupCommand,
  CreateGroupMembershipCommand,
  DeleteGroupCommand,
  DeleteGroupMembershipCommand,
  GetGroupIdCommand,
  paginateListGroupMembershipsForMember,
} from '@aws-sdk/client-identitystore'
import { DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb'
import t from 'tap'
import { createAwsClients } from '../src/adapters/aws.ts'
import { AwsGroupMemberships } from '../src/adapters/group-memberships.ts'
import { IdentityCenterRateLimiter } from '../src/adapters/rate-limiter.ts'
import { CREATION_SETTLE_MS } from '../src/core/coverage.ts'
import { cutoffOf } from '../src/core/cutoff-policy.ts'
import type { PolicyDocument } from '../src/core/policy.ts'
import { BREAKGLASS_RULE, DEMO_POLICY } from '../src/sandbox/seed.ts'
import { build, PROD } from './helpers/app.ts'
import { expectStatus } from './helpers/http-status.ts'
import { startMoto } from './helpers/moto.ts'
import { subscribeQueue } from './helpers/sns.ts'
import { bearer } from './helpers/tokens.ts'

/*
 * Group grants: a grant that adds the user to an Identity Store group for its duration, through the real SDK
 * clients against moto (strict: one membership per user and group, as AWS keeps them). Carol is a permanent
 * member of prod-breakglass (the demo directory), which no grant may ever remove.
 */
const moto = await startMoto(t)

const GROUP = 'prod-breakglass'
const POLICY: PolicyDocument = {
  rules: [
    ...DEMO_POLICY.rules,
    BREAKGLASS_RULE,
    { name: 'carol-breakglass', users: ['carol'], grantableGroups: [GROUP], maxDurationMinutes: 60 },
  ],
}

type World = Awaited<ReturnType<typeof build>>

const groupBody = (overrides: Record<string, unknown> = {}) => ({
  userName: 'alice',
  groupName: GROUP,
  durationMinutes: 60,
  ticketId: 'INC0001234',
  justification: 'Incident 1234',
  ...overrides,
})

async function setUp(t: Parameters<typeof build>[0], options: Parameters<typeof build>[2] = {}) {
  const world = await build(t, moto, { policy: POLICY, ...options })
  const { clients, instance, seeded } = world
  const groupId = async (displayName: string) =>
    (
      await clients.identityStore.send(
        new GetGroupIdCommand({
          IdentityStoreId: instance.identityStoreId,
          AlternateIdentifier: { UniqueAttribute: { AttributePath: 'displayName', AttributeValue: displayName } },
        }),
      )
    ).GroupId as string
  const breakglass = await groupId(GROUP)
  /** The Identity Store's own answer: this user's memberships of the group (never more than one in AWS). */
  const memberships = async (userName: string, group = breakglass) => {
    const found: string[] = []
    const pages = paginateListGroupMembershipsForMember(
      { client: clients.identityStore },
      { IdentityStoreId: instance.identityStoreId, MemberId: { UserId: seeded.userIds[userName] as string } },
    )
    for await (const page of pages)
      for (const m of page.GroupMemberships ?? []) if (m.GroupId === group) found.push(m.MembershipId as string)
    return found
  }
  return { ...world, breakglass, groupId, memberships }
}

const post = (app: World['app'], payload: unknown) =>
  app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: payload as Record<string, unknown> })
const getGrant = async (app: World['app'], id: string) =>
  (await app.inject({ method: 'GET', url: `/grants/${id}`, headers: bearer() })).json()
const sweep = async (app: World['app']) =>
  (await app.inject({ method: 'POST', url: '/revocations', headers: bearer() })).json()
const story = async (app: World['app'], id: string) =>
  (await app.inject({ method: 'GET', url: `/audit?grantId=${id}`, headers: bearer() })).json().items as Record<
    string,
    unknown
  >[]

t.test(
  'a group grant adds the membership, and the sweep removes it at expiry; every event names the group',
  async (t) => {
    const { app, clock, clients, memberships, breakglass } = await setUp(t)
    const doc = DynamoDBDocumentClient.from(clients.dynamo)

    const response = await post(app, groupBody())
    const grant = response.json()
    t.equal(response.statusCode, 201, response.body)
    t.match(grant, {
      status: 'active',
      coveredBy: 'jit',
      groupName: GROUP,
      groupId: breakglass,
      accountId: null,
      permissionSet: null,
      permissionSetArn: null,
    })
    t.equal(grant.accessEndsBy, grant.expiresAt, 'a membership has no role sessions that outlast it')
    t.equal((await memberships('alice')).length, 1, 'alice is in the group')

    clock.advanceMinutes(61)
    const swept = await sweep(app)

    t.match(swept, { revoked: 1, failed: 0 })
    t.match(await getGrant(app, grant.id), { status: 'expired' })
    t.same(await memberships('alice'), [], 'the membership is removed')
    const events = await story(app, grant.id)
    t.same(events.map((e) => e.action).reverse(), [
      'grant.requested',
      'grant.activated',
      'grant.revoke_requested',
      'grant.expired',
    ])
    for (const event of events)
      t.match(event, { groupName: GROUP, accountId: null, permissionSet: null }, `${event.action} names the group`)
    t.match(
      events.find((e) => e.action === 'grant.expired'),
      { detail: 'group membership removed' },
    )
    const verify = async () => (await app.inject({ method: 'GET', url: '/audit/verify', headers: bearer() })).json()
    t.match(await verify(), { ok: true }, 'the chain, group names included, verifies')
    // The group is part of the hashed content: an event whose group is changed afterwards fails verification.
    const activated = events.find((e) => e.action === 'grant.activated') as { id: string }
    await doc.send(
      new UpdateCommand({
        TableName: 'jit-audit',
        Key: { pk: `event#${activated.id}` },
        UpdateExpression: 'SET groupName = :g',
        ExpressionAttributeValues: { ':g': 'prod-readonly' },
      }),
    )
    t.match(await verify(), { ok: false, firstBadEventId: activated.id }, 'a changed group name is detected')
  },
)

t.test('a membership that existed before the grant is never removed', async (t) => {
  const { app, clock, memberships } = await setUp(t)
  const before = await memberships('carol')
  t.equal(before.length, 1, 'carol is a permanent member (the demo directory)')

  const grant = (await post(app, groupBody({ userName: 'carol' }))).json()
  t.match(grant, { status: 'active', coveredBy: 'pre-existing' })
  clock.advanceMinutes(61)
  await sweep(app)
  const ended = (await post(app, groupBody({ userName: 'carol', durationMinutes: 30 }))).json()
  await app.inject({ method: 'DELETE', url: `/grants/${ended.id}`, headers: bearer() })

  t.match(await getGrant(app, grant.id), { status: 'expired' })
  t.match(await getGrant(app, ended.id), { status: 'revoked', coveredBy: 'pre-existing' })
  t.same(await memberships('carol'), before, 'the same membership, untouched')
})

t.test('overlapping grants share one membership, removed when the last one ends', async (t) => {
  const { app, clock, memberships } = await setUp(t)
  const short = (await post(app, groupBody({ durationMinutes: 30 }))).json()
  const long = (await post(app, groupBody({ durationMinutes: 90 }))).json()
  t.match([short.status, long.status], ['active', 'active'])
  t.equal((await memberships('alice')).length, 1, 'one membership for both')

  clock.advanceMinutes(31)
  await sweep(app)
  t.match(await getGrant(app, short.id), { status: 'expired' })
  t.equal((await memberships('alice')).length, 1, 'kept for the grant still running')
  t.match((await story(app, short.id))[0], {
    action: 'grant.expired',
    detail: 'group membership kept: another active grant still covers it',
  })

  clock.advanceMinutes(60)
  await sweep(app)
  t.match(await getGrant(app, long.id), { status: 'expired' })
  t.same(await memberships('alice'), [], 'removed with the last grant')
})

for (const fault of ['drop-after-upstream', 'server-error-after-upstream'] as const) {
  t.test(
    `a creation whose answer is lost (${fault}) is found by looking: one membership, active, removed at the end`,
    async (t) => {
      const { app, clock, proxy, memberships } = await setUp(t, { proxy: true })
      proxy!.inject('CreateGroupMembership', fault, 1)

      const response = await post(app, groupBody())
      const id = response.json().id
      clock.advanceMinutes(2)
      await sweep(app)

      t.ok([201, 202].includes(response.statusCode), response.body)
      t.equal(proxy!.injected[fault], 1, 'the answer was lost')
      t.equal(proxy!.calls.CreateGroupMembership, 1, 'not sent again: the look found it')
      t.match(
        await getGrant(app, id),
        { status: 'active', coveredBy: 'jit' },
        'ours, not taken for a permanent membership',
      )
      t.equal((await memberships('alice')).length, 1)

      clock.advanceMinutes(60)
      await sweep(app)
      t.match(await getGrant(app, id), { status: 'expired' })
      t.same(await memberships('alice'), [], 'no membership outlives the grant')
    },
  )

  t.test(`a removal whose answer is lost (${fault}) is confirmed by looking, leaving no orphan`, async (t) => {
    const { app, clock, proxy, memberships } = await setUp(t, { proxy: true })
    const grant = (await post(app, groupBody())).json()
    proxy!.inject('DeleteGroupMembership', fault, 1)

    const ended = await app.inject({ method: 'DELETE', url: `/grants/${grant.id}`, headers: bearer() })
    clock.advanceMinutes(2)
    const swept = await sweep(app)

    t.ok([200, 202].includes(ended.statusCode), ended.body)
    t.equal(proxy!.injected[fault], 1, 'the answer was lost')
    t.match(swept, { failed: 0 })
    t.match(await getGrant(app, grant.id), { status: 'revoked' })
    t.same(await memberships('alice'), [], 'removed once, nothing left behind')
    t.equal((await memberships('carol')).length, 1, 'the permanent member is untouched')
  })
}

t.test('throttled membership calls are retried: the grant is made and ended as usual', async (t) => {
  const { app, clock, proxy, memberships } = await setUp(t, { proxy: true })
  proxy!.inject('CreateGroupMembership', 'throttle', 2)
  proxy!.inject('GetGroupMembershipId', 'throttle', 2)
  proxy!.inject('DeleteGroupMembership', 'throttle', 2)

  const response = await post(app, groupBody())
  t.equal(response.statusCode, 201, response.body)
  t.equal((await memberships('alice')).length, 1)
  clock.advanceMinutes(61)
  const swept = await sweep(app)

  t.equal(proxy!.injected.throttle, 6, 'every throttle was met')
  t.equal(proxy!.injectedOn['GetGroupMembershipId throttle'], 2, 'the lookups were throttled too')
  t.match(swept, { revoked: 1, failed: 0 })
  t.same(await memberships('alice'), [])
})

t.test(
  'membership lookups are retried by the rate limiter, not hidden by SDK retries: the limiter sees every throttle',
  async (t) => {
    const { proxy, instance, seeded, breakglass } = await setUp(t, { proxy: true })
    const clients = createAwsClients({ region: 'us-east-1', endpoint: proxy!.endpoint })
    const limiter = new IdentityCenterRateLimiter({ ratePerSecond: 20, maxConcurrentCreations: 1 })
    const adapter = new AwsGroupMemberships(clients.identityStoreMemberships, instance.identityStoreId, limiter)
    proxy!.inject('GetGroupMembershipId', 'throttle', 2)

    const exists = await adapter.exists({
      kind: 'membership',
      userId: seeded.userIds.carol as string,
      groupId: breakglass,
    })

    t.equal(exists, true, 'carol is a member')
    t.equal(proxy!.injectedOn['GetGroupMembershipId throttle'], 2)
    t.equal(limiter.stats.throttled, 2, 'both throttles reached the limiter, which slowed down')
    t.equal(limiter.stats.calls, 3, 'every attempt paid a token')
  },
)

t.test(
  "a removal finds the membership by a direct lookup: a listing of the user's memberships that shows none changes nothing",
  async (t) => {
    const { app, clock, proxy, memberships } = await setUp(t, { proxy: true })
    const grant = (await post(app, groupBody())).json()
    t.equal(grant.status, 'active')
    // Stale or cut short: the user's memberships listed as none, on every listing.
    proxy!.inject('ListGroupMembershipsForMember', 'report-none')

    clock.advanceMinutes(61)
    const swept = await sweep(app)

    t.match(swept, { revoked: 1, failed: 0 })
    t.match(await getGrant(app, grant.id), { status: 'expired' })
    t.equal(proxy!.calls.DeleteGroupMembership, 1, 'the removal was sent')
    proxy!.clear()
    t.same(await memberships('alice'), [], 'the membership is gone with its grant')
  },
)

t.test(
  'lookups that are throttled, dropped or lose their answer at the removal still end with the membership removed',
  async (t) => {
    const { app, clock, proxy, memberships } = await setUp(t, { proxy: true })
    const grant = (await post(app, groupBody())).json()
    for (const fault of ['throttle', 'drop', 'drop-after-upstream', 'server-error-after-upstream'] as const)
      proxy!.inject('GetGroupMembershipId', fault, 1)

    const ended = await app.inject({ method: 'DELETE', url: `/grants/${grant.id}`, headers: bearer() })
    clock.advanceMinutes(2)
    await sweep(app)

    t.ok([200, 202].includes(ended.statusCode), ended.body)
    for (const fault of ['throttle', 'drop', 'drop-after-upstream', 'server-error-after-upstream'])
      t.equal(proxy!.injectedOn[`GetGroupMembershipId ${fault}`], 1, `${fault} struck a lookup`)
    t.match(await getGrant(app, grant.id), { status: 'revoked' })
    t.same(await memberships('alice'), [], 'removed')
    t.equal((await memberships('carol')).length, 1, 'the permanent member is untouched')
  },
)

t.test(
  'an administrator who adds the user while our first creation is on its way keeps the membership: pre-existing, never removed',
  async (t) => {
    const { app, clock, proxy, clients, instance, seeded, breakglass, memberships } = await setUp(t, { proxy: true })
    t.same(await memberships('alice'), [])
    const held = proxy!.holdNext('CreateGroupMembership')
    const posting = post(app, groupBody())
    await held.arrived
    // Straight to the Identity Store, not through jit-access: after our look found nothing, before our creation.
    await clients.identityStore.send(
      new CreateGroupMembershipCommand({
        IdentityStoreId: instance.identityStoreId,
        GroupId: breakglass,
        MemberId: { UserId: seeded.userIds.alice as string },
      }),
    )
    const made = await memberships('alice')
    held.release()
    const response = await posting

    t.equal(response.statusCode, 201, response.body)
    t.match(
      response.json(),
      { status: 'active', coveredBy: 'pre-existing' },
      'the refusal of our first creation says someone else made it',
    )
    t.equal(proxy!.calls.CreateGroupMembership, 1)
    clock.advanceMinutes(61)
    t.match(await sweep(app), { revoked: 1, failed: 0 })
    t.match(await getGrant(app, response.json().id), { status: 'expired', coveredBy: 'pre-existing' })
    t.same(await memberships('alice'), made, "the administrator's membership is left in place")
    t.match((await story(app, response.json().id))[0], {
      action: 'grant.expired',
      detail: 'permanent group membership left in place',
    })
  },
)

t.test(
  'under the Identity Store quota, group grants asked for at once all end up active on one membership each',
  async (t) => {
    const { app, clock, proxy, memberships } = await setUp(t, { proxy: true })
    proxy!.enforceMembershipQuota(3)
    const responses = await Promise.all(
      ['alice', 'bob', 'alice', 'bob', 'alice', 'bob'].map((userName, i) =>
        post(app, groupBody({ userName, ticketId: `INC000000${i}` })),
      ),
    )
    clock.advanceMinutes(2)
    await sweep(app)
    clock.advanceMinutes(2)
    await sweep(app)

    t.ok(proxy!.injected.quota, 'the quota throttled calls')
    // 503 before anything was recorded is a refusal to retry; once recorded, the sweep finishes what the request could not.
    for (const response of responses) t.ok([201, 202, 503].includes(response.statusCode), response.body)
    const recorded = responses.map((response) => response.json().id ?? response.json().grantId).filter(Boolean)
    t.ok(recorded.length > 0)
    for (const id of recorded) t.match(await getGrant(app, id), { status: 'active' })
    t.ok((await memberships('alice')).length <= 1 && (await memberships('bob')).length <= 1, 'never two memberships')
    for (const userName of ['alice', 'bob']) {
      const granted = await Promise.all(recorded.map((id) => getGrant(app, id)))
      if (granted.some((grant) => grant.userName === userName))
        t.equal((await memberships(userName)).length, 1, `${userName} is in the group`)
    }
  },
)

t.test(
  'a membership removed by hand is drift: found by the sweep, audited, the grants ended rather than the access restored',
  async (t) => {
    const { app, clock, clients, instance, memberships } = await setUp(t)
    const grant = (await post(app, groupBody({ durationMinutes: 120 }))).json()
    const [membershipId] = await memberships('alice')
    await clients.identityStore.send(
      new DeleteGroupMembershipCommand({ IdentityStoreId: instance.identityStoreId, MembershipId: membershipId }),
    )

    clock.advanceMinutes(6)
    const swept = await sweep(app)

    t.match(swept, { checked: 1, drifted: 1, failed: 0 })
    t.same(await memberships('alice'), [], 'not restored')
    t.match(await getGrant(app, grant.id), { status: 'revoked', endedBy: 'system:sweep' })
    const events = await story(app, grant.id)
    t.match(
      events.find((e) => e.action === 'grant.drift_detected'),
      { groupName: GROUP, detail: /group membership was removed outside jit-access/ },
    )
  },
)

t.test(
  'a grant that mixes the two kinds, or names neither, is refused 400 problem+json before anything is done',
  async (t) => {
    const { app, memberships } = await setUp(t)
    const mixes: [string, Record<string, unknown>, string[]][] = [
      ['both kinds', { accountId: PROD, permissionSet: 'AdministratorAccess' }, ['/accountId', '/permissionSet']],
      ['group and account', { accountId: PROD }, ['/accountId']],
      ['group and permission set', { permissionSet: 'AdministratorAccess' }, ['/permissionSet']],
    ]
    for (const [name, extra, paths] of mixes) {
      const response = await post(app, groupBody(extra))
      expectStatus(t, response, 400, name)
      t.match(response.headers['content-type'], /application\/problem\+json/)
      t.match(response.json(), { code: 'VALIDATION_FAILED' })
      t.same(
        response.json().errors.map((e: { path: string }) => e.path),
        paths,
        `${name}: ${response.body}`,
      )
    }
    const { groupName: _, ...neither } = groupBody()
    const halves: [string, Record<string, unknown>, string[]][] = [
      ['neither kind', neither, ['/accountId', '/permissionSet']],
      ['an account without a permission set', { ...neither, accountId: PROD }, ['/permissionSet']],
      ['a permission set without an account', { ...neither, permissionSet: 'AdministratorAccess' }, ['/accountId']],
    ]
    for (const [name, payload, paths] of halves) {
      const response = await post(app, payload)
      expectStatus(t, response, 400, name)
      t.same(
        response.json().errors.map((e: { path: string }) => e.path),
        paths,
        `${name}: ${response.body}`,
      )
    }
    const dryRun = await post(app, { ...groupBody({ accountId: PROD }), dryRun: true })
    expectStatus(t, dryRun, 400, 'a dry run is refused alike')
    t.same(await memberships('alice'), [])
    const audit = (await app.inject({ method: 'GET', url: '/audit', headers: bearer() })).json()
    t.same(audit.items, [], 'nothing decided, nothing audited')
  },
)

t.test('a group the policy does not make grantable is denied 403, audited with the group', async (t) => {
  const { app, clients, instance, groupId, memberships } = await setUp(t)
  await clients.identityStore.send(
    new CreateGroupCommand({ IdentityStoreId: instance.identityStoreId, DisplayName: 'auditors' }),
  )

  const denied = await post(app, groupBody({ groupName: 'auditors' }))
  const unknown = await post(app, groupBody({ groupName: 'no-such-group' }))

  t.equal(denied.statusCode, 403, denied.body)
  t.match(denied.json(), { code: 'POLICY_DENIED', failedCondition: 'group' })
  t.same(await memberships('alice', await groupId('auditors')), [], 'nothing granted')
  t.equal(unknown.statusCode, 422, unknown.body)
  t.match(unknown.json(), { code: 'GROUP_NOT_FOUND' })
  const audit = (await app.inject({ method: 'GET', url: '/audit?action=grant.denied', headers: bearer() })).json().items
  t.match(
    audit.find((e: { groupName: string }) => e.groupName === 'auditors'),
    { userName: 'alice', accountId: null, detail: /failed condition: group; closest rule 'oncall-breakglass'/ },
  )
  t.ok(
    audit.find((e: { groupName: string }) => e.groupName === 'no-such-group'),
    'an unknown group is audited as denied too',
  )
})

t.test('an account grant cannot name a group rule, nor a group grant an account rule', async (t) => {
  const { app } = await setUp(t)
  // carol's only account rules allow ReadOnlyAccess; her group rule allows no account.
  const account = await post(app, {
    userName: 'carol',
    accountId: PROD,
    permissionSet: 'AdministratorAccess',
    durationMinutes: 30,
    ticketId: 'INC0000001',
  })
  // bob is on call (account and group rules) but may not be given the oncall group itself.
  const group = await post(app, groupBody({ userName: 'bob', groupName: 'oncall' }))
  expectStatus(t, account, 403)
  expectStatus(t, group, 403)
  t.match(group.json(), { failedCondition: 'group' })
})

t.test('scheduled group grants start, move their end and are cancelled like account grants', async (t) => {
  const { app, clock, memberships } = await setUp(t)
  const startsAt = new Date(clock.now().getTime() + 10 * 60_000).toISOString()
  const scheduled = await post(app, groupBody({ startsAt }))
  const cancelled = (await post(app, groupBody({ userName: 'bob', startsAt }))).json()
  t.equal(scheduled.statusCode, 201, scheduled.body)
  t.match(scheduled.json(), { status: 'scheduled', groupName: GROUP })
  t.same(await memberships('alice'), [], 'nothing before the start')
  const cancel = await app.inject({ method: 'DELETE', url: `/grants/${cancelled.id}`, headers: bearer() })
  t.match(cancel.json(), { status: 'cancelled' })

  clock.advanceMinutes(11)
  await sweep(app)
  t.match(await getGrant(app, scheduled.json().id), { status: 'active' })
  t.equal((await memberships('alice')).length, 1)
  t.same(await memberships('bob'), [], 'the cancelled grant gave nothing')

  const end = new Date(Date.parse(scheduled.json().expiresAt) + 30 * 60_000).toISOString()
  const extended = await app.inject({
    method: 'PATCH',
    url: `/grants/${scheduled.json().id}`,
    headers: { ...bearer(), 'content-type': 'application/merge-patch+json' },
    payload: { expiresAt: end },
  })
  t.equal(extended.statusCode, 200, extended.body)
  t.match(extended.json(), { expiresAt: end, accessEndsBy: end })
  const tooLong = await app.inject({
    method: 'PATCH',
    url: `/grants/${scheduled.json().id}`,
    headers: { ...bearer(), 'content-type': 'application/merge-patch+json' },
    payload: { expiresAt: new Date(Date.parse(end) + 60 * 60_000).toISOString() },
  })
  expectStatus(t, tooLong, 403, 'an extension past the rule is denied')

  clock.advanceMinutes(61)
  await sweep(app)
  t.equal((await memberships('alice')).length, 1, 'still there: the end was moved')
  clock.advanceMinutes(30)
  await sweep(app)
  t.match(await getGrant(app, scheduled.json().id), { status: 'expired' })
  t.same(await memberships('alice'), [])
})

t.test(
  "a group grant's decisions are published naming the group; with the session cut-off on, nothing is cut for it",
  async (t) => {
    const { app, clock, clients, topicArn, cutoff, memberships } = await setUp(t, { sessionCutoff: true })
    const messages = await subscribeQueue(moto.endpoint, clients.sns, topicArn)

    const grant = (await post(app, groupBody())).json()
    const ended = (await app.inject({ method: 'DELETE', url: `/grants/${grant.id}`, headers: bearer() })).json()
    clock.advanceMinutes(1)
    await sweep(app)
    await app.flushNotifications()

    t.match(ended, { status: 'revoked', sessionsCutAt: null, accessEndsBy: grant.expiresAt })
    t.same(await memberships('alice'), [])
    const published = (await messages()).map(
      (body) =>
        JSON.parse(body) as { Subject: string; Message: string; MessageAttributes: Record<string, { Value: string }> },
    )
    const revoked = published.find((m) => m.Subject.includes('grant.revoked'))
    t.match(revoked, {
      Subject: `jit-access: grant.revoked group ${GROUP}`,
      MessageAttributes: { groupName: { Value: GROUP }, action: { Value: 'grant.revoked' } },
    })
    t.notOk(revoked?.MessageAttributes.accountId, 'no account attribute')
    t.match(JSON.parse(revoked?.Message ?? '{}'), { groupName: GROUP, grantId: grant.id })
    t.ok(published.some((m) => m.Subject.includes('grant.activated')))
    t.same(
      (await cutoff!.documents()).flatMap((document) => document.Statement.filter((statement) => cutoffOf(statement))),
      [],
      'no session cut-off written',
    )
    t.notOk(
      (await story(app, grant.id)).some((e) => e.action === 'grant.sessions_cut' || e.action === 'grant.cutoff_failed'),
    )
  },
)

t.test('GET /eligibility lists grantable groups, and a dry run decides a group grant without making it', async (t) => {
  const { app, memberships } = await setUp(t)
  const eligibility = (
    await app.inject({ method: 'GET', url: '/eligibility?userName=alice', headers: bearer() })
  ).json()
  t.match(
    eligibility.rules.find((r: { rule: string }) => r.rule === 'oncall-breakglass'),
    { grantableGroups: [GROUP], permissionSets: [], accountScope: [], accounts: [], maxDurationMinutes: 120 },
  )
  t.match(
    eligibility.rules.find((r: { rule: string }) => r.rule === 'oncall-incident-access'),
    { grantableGroups: [] },
  )

  const allowed = await post(app, { ...groupBody(), dryRun: true })
  const refused = await post(app, { ...groupBody({ durationMinutes: 600 }), dryRun: true })
  t.equal(allowed.statusCode, 200, allowed.body)
  t.match(allowed.json(), { allowed: true, rule: 'oncall-breakglass' })
  t.match(refused.json(), { allowed: false, failedCondition: 'duration' })
  t.same(await memberships('alice'), [], 'nothing created')
  t.same((await app.inject({ method: 'GET', url: '/grants', headers: bearer() })).json().items, [], 'nothing recorded')
})

t.test('a group grant is expired by its due timer at its end, without a sweep', async (t) => {
  const fired: (() => void)[] = []
  const timers = { set: (fire: () => void) => fired.push(fire), clear: () => {} }
  const { app, clock, memberships } = await setUp(t, { dueTimers: { horizonMs: 2 * 3600_000, timers } })
  const grant = (await post(app, groupBody())).json()
  t.equal(fired.length, 1, 'armed for its end')

  clock.advanceMinutes(60)
  for (const fire of fired.splice(0)) fire()
  await app.dueTimers?.idle()

  t.match(await getGrant(app, grant.id), { status: 'expired', endedBy: 'system:timer' })
  t.same(await memberships('alice'), [], 'removed without a sweep')
})

t.test(
  'a scheduled group grant whose group was deleted before its start fails at its start, as a request does, and nothing is made',
  async (t) => {
    const { app, clock, clients, instance, breakglass, memberships } = await setUp(t)
    const startsAt = new Date(clock.now().getTime() + 10 * 60_000).toISOString()
    const scheduled = (await post(app, groupBody({ startsAt }))).json()
    await clients.identityStore.send(
      new DeleteGroupCommand({ IdentityStoreId: instance.identityStoreId, GroupId: breakglass }),
    )

    clock.advanceMinutes(11)
    await sweep(app)

    // The policy resolved the group to its id at start, so the start is decided on that id (a rename would change
    // nothing); the Identity Store then refuses the membership of a group that is gone.
    t.match(await getGrant(app, scheduled.id), {
      status: 'failed',
      groupId: breakglass,
      failureReason: /not found|does not exist/i,
    })
    t.same(await memberships('alice'), [])
  },
)

for (const seed of [1, 2]) {
  t.test(
    `under random throttling, 5xx, dropped connections and lost answers on two instances (seed ${seed}), group grants settle to exactly the memberships their grants need`,
    async (t) => {
      const { instances, clock, proxy, memberships } = await setUp(t, { proxy: true, instances: 2 })
      const app = instances[0] as World['app']
      const on = (i: number) => instances[i % instances.length] as World['app']
      const carolsBefore = await memberships('carol')
      // The direct lookups the adapter makes (before a creation, after a lost answer, before every removal) meet each
      // fault at least once, whatever the draw; everything else meets them at random.
      const lookupFaults = ['throttle', 'drop', 'drop-after-upstream', 'server-error-after-upstream'] as const
      for (const fault of lookupFaults) proxy!.inject('GetGroupMembershipId', fault, 1)
      proxy!.injectRandomly({
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

      const posts = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          on(i).inject({
            method: 'POST',
            url: '/grants',
            headers: { ...bearer(), 'idempotency-key': `group-${seed}-${i}` },
            payload: groupBody({
              userName: ['alice', 'bob', 'carol'][i % 3],
              durationMinutes: 10 + (i % 4) * 10,
              ticketId: `INC${1_000_000 + i}`,
            }),
          }),
        ),
      )
      const recorded = [
        ...new Set(posts.map((r) => (r.statusCode < 300 ? r.json().id : r.json().grantId)).filter(Boolean)),
      ] as string[]
      const deletes = await Promise.all(
        recorded
          .filter((_, i) => i % 3 === 0)
          .map((id, i) => on(i + 1).inject({ method: 'DELETE', url: `/grants/${id}`, headers: bearer() })),
      )
      t.same(
        [...posts, ...deletes]
          .filter((r) => ![200, 201, 202, 409, 503].includes(r.statusCode))
          .map((r) => `${r.statusCode} ${r.body}`),
        [],
        'only documented answers',
      )
      t.ok(proxy!.totalInjected() > 0, `${proxy!.totalInjected()} faults injected`)
      for (const fault of lookupFaults)
        t.ok(proxy!.injectedOn[`GetGroupMembershipId ${fault}`], `a membership lookup met ${fault}`)

      proxy!.clear()
      clock.advance(CREATION_SETTLE_MS + 1_000)
      for (let round = 0; round < 4; round++) {
        clock.advanceMinutes(1)
        await Promise.all(instances.map((instance) => sweep(instance)))
      }
      const grants = (await app.inject({ method: 'GET', url: '/grants?limit=100', headers: bearer() })).json()
        .items as { userName: string; status: string; coveredBy: string | null }[]
      t.same(
        grants.filter((g) => ['provisioning', 'revoking'].includes(g.status)),
        [],
        'nothing left unfinished',
      )
      t.notOk(
        grants.some((g) => g.userName !== 'carol' && g.coveredBy === 'pre-existing'),
        'nothing of ours taken for a permanent membership',
      )
      for (const userName of ['alice', 'bob']) {
        const needed = grants.some((g) => g.userName === userName && g.status === 'active')
        t.equal(
          (await memberships(userName)).length,
          needed ? 1 : 0,
          `${userName}: a membership exactly while a grant needs it`,
        )
      }
      t.same(await memberships('carol'), carolsBefore, 'the permanent membership is untouched')

      clock.advanceMinutes(61)
      for (let round = 0; round < 2; round++) {
        clock.advanceMinutes(1)
        await Promise.all(instances.map((instance) => sweep(instance)))
      }
      t.same(await memberships('alice'), [], 'all expired: nothing left')
      t.same(await memberships('bob'), [])
      t.same(await memberships('carol'), carolsBefore)
    },
  )
}

t.test(
  'the group granted is the one the policy meant at start: a new group given the name is never granted, the grant fails',
  async (t) => {
    const { app, clients, instance, breakglass, memberships } = await setUp(t)
    // An administrator deletes the group and creates another with its name (or renames another group to it).
    await clients.identityStore.send(
      new DeleteGroupCommand({ IdentityStoreId: instance.identityStoreId, GroupId: breakglass }),
    )
    const impostor = (
      await clients.identityStore.send(
        new CreateGroupCommand({ IdentityStoreId: instance.identityStoreId, DisplayName: GROUP }),
      )
    ).GroupId as string

    const response = await post(app, groupBody())

    t.equal(response.statusCode, 502, response.body)
    t.match(response.json(), { code: 'PROVISIONING_FAILED' })
    t.same(await memberships('alice', impostor), [], 'not added to the group that took the name')
    const [grant] = (await app.inject({ method: 'GET', url: '/grants?userName=alice', headers: bearer() })).json().items
    t.match(grant, { status: 'failed', groupId: breakglass, failureReason: /not found|does not exist/i })
  },
)

t.test(
  "a group the service's role may not change (AccessDeniedException) fails the grant 502, audited, nothing left due",
  async (t) => {
    const { app, clock, proxy, memberships } = await setUp(t, { proxy: true })
    proxy!.inject('CreateGroupMembership', 'access-denied')

    const response = await post(app, groupBody())

    expectStatus(t, response, 502)
    t.match(response.json(), { code: 'PROVISIONING_FAILED' })
    t.equal(proxy!.injected['access-denied'], 1, 'refused once, not asked again')
    const [grant] = (await app.inject({ method: 'GET', url: '/grants?userName=alice', headers: bearer() })).json().items
    t.match(grant, { status: 'failed', failureReason: /grantableGroupIds/ })
    t.match(
      (await story(app, grant.id)).find((e) => e.action === 'grant.failed'),
      { groupName: GROUP, detail: /grantableGroupIds/ },
    )
    t.same(await memberships('alice'), [])

    for (const minutes of [2, 10, 61]) {
      clock.advanceMinutes(minutes)
      t.match(await sweep(app), { failed: 0 }, `nothing due or alerted on ${minutes} minutes later`)
    }
    t.equal(proxy!.calls.CreateGroupMembership, 1, 'never sent again')
    t.match(await getGrant(app, grant.id), { status: 'failed' })
  },
)
