import type { SNSClient } from '@aws-sdk/client-sns'
import t from 'tap'
import { build, grantBody, PROD, STAGING } from './helpers/app.ts'
import { expectStatus } from './helpers/http-status.ts'
import { startMoto } from './helpers/moto.ts'
import { subscribeQueue as subscribeQueueAt } from './helpers/sns.ts'
import { bearer, mintToken } from './helpers/tokens.ts'

const moto = await startMoto(t)

const subscribeQueue = (sns: SNSClient, topicArn: string) => subscribeQueueAt(moto.endpoint, sns, topicArn)

t.test(
  'Identity Center failing during a grant: 503 with the grant id, intent kept, alert sent, and the sweep finishes it',
  async (t) => {
    const { app, clock, proxy, clients, topicArn, hasAssignment } = await build(t, moto, { awsLike: true, proxy: true })
    const messages = await subscribeQueue(clients.sns, topicArn)
    const token = mintToken()
    proxy?.inject('CreateAccountAssignment', 'server-error')

    const response = await app.inject({ method: 'POST', url: '/grants', headers: bearer(token), payload: grantBody() })

    expectStatus(t, response, 503)
    t.match(response.json(), { code: 'UPSTREAM_UNAVAILABLE', grantId: String })
    t.equal(response.headers['retry-after'], '5')
    t.ok((proxy?.injected['server-error'] ?? 0) >= 1)
    const grantId = response.json().grantId
    t.equal(
      (await app.inject({ method: 'GET', url: `/grants/${grantId}`, headers: bearer() })).json().status,
      'provisioning',
      'intent recorded',
    )
    t.notOk(await hasAssignment('alice', PROD, 'AdministratorAccess'))

    await app.flushNotifications()
    const alerts = await messages()
    t.ok(alerts.length >= 1, 'an alert reached the SNS subscriber')
    t.ok(alerts.some((m) => m.includes(grantId)))
    t.notOk(
      alerts.some((m) => m.includes(token.split('.')[2] as string)),
      'no token in alerts',
    )

    proxy?.clear()
    clock.advanceMinutes(2)
    const sweep = (await app.inject({ method: 'POST', url: '/revocations', headers: bearer() })).json()

    t.match(sweep, { revoked: 0, activated: 1, failed: 0, remaining: 0 })
    t.ok(await hasAssignment('alice', PROD, 'AdministratorAccess'))
    t.equal((await app.inject({ method: 'GET', url: `/grants/${grantId}`, headers: bearer() })).json().status, 'active')
  },
)

t.test(
  'a create whose answer was lost is sent again rather than guessed from a listing, makes one assignment, and expires cleanly',
  async (t) => {
    const { app, clock, proxy, countAssignments } = await build(t, moto, { awsLike: true, proxy: true })
    // AWS creates the assignment, but the connection drops before the answer reaches us; AWS is still
    // provisioning it, so a listing cannot tell whether it was sent.
    proxy?.inject('CreateAccountAssignment', 'drop-after-upstream', 1)

    const response = await app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: grantBody({ durationMinutes: 5 }),
    })

    t.equal(response.statusCode, 202, response.body)
    t.equal(response.json().status, 'provisioning')
    t.ok(
      (proxy?.calls.CreateAccountAssignment ?? 0) >= 2,
      'sent again, since a listing during provisioning proves nothing',
    )
    t.ok((proxy?.injected.conflict ?? 0) >= 1, 'AWS answered the second with a conflict: the first is under way')
    t.equal(await countAssignments('alice', PROD, 'AdministratorAccess'), 1, 'no duplicate')

    clock.advanceMinutes(2)
    t.match((await app.inject({ method: 'POST', url: '/revocations', headers: bearer() })).json(), {
      activated: 1,
      failed: 0,
      remaining: 0,
    })
    t.match((await app.inject({ method: 'GET', url: `/grants/${response.json().id}`, headers: bearer() })).json(), {
      status: 'active',
      coveredBy: 'jit',
    })

    clock.advanceMinutes(4)
    const sweep = (await app.inject({ method: 'POST', url: '/revocations', headers: bearer() })).json()

    t.match(sweep, { revoked: 1, activated: 0, failed: 0, remaining: 0 })
    t.equal(await countAssignments('alice', PROD, 'AdministratorAccess'), 0, 'no orphaned access')
    t.equal(
      (await app.inject({ method: 'GET', url: `/grants/${response.json().id}`, headers: bearer() })).json().status,
      'expired',
    )
  },
)

t.test(
  'a creation AWS accepted but does not list yet is never taken for unsent once its grant has ended: the record stays until it shows, then it is removed',
  async (t) => {
    const { app, clock, proxy, countAssignments } = await build(t, moto, { awsLike: true, proxy: true })
    // AWS creates the assignment but the answer is lost; listings do not show it yet (still provisioning);
    // every later creation fails, so the request gives up with the creation unconfirmed.
    proxy?.inject('CreateAccountAssignment', 'drop-after-upstream', 1)
    proxy?.inject('CreateAccountAssignment', 'server-error')
    proxy?.inject('ListAccountAssignmentsForPrincipal', 'report-none')
    const response = await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() })
    expectStatus(t, response, 503)
    t.equal(await countAssignments('alice', PROD, 'AdministratorAccess'), 1, 'the assignment exists in Identity Center')

    const ended = await app.inject({ method: 'DELETE', url: `/grants/${response.json().grantId}`, headers: bearer() })
    expectStatus(t, ended, 202)
    t.equal(ended.json().status, 'revoking', 'not finished while the creation may still show up')

    proxy?.clear()
    clock.advanceMinutes(1)
    t.match((await app.inject({ method: 'POST', url: '/revocations', headers: bearer() })).json(), {
      revoked: 1,
      failed: 0,
      remaining: 0,
    })
    t.equal(await countAssignments('alice', PROD, 'AdministratorAccess'), 0, 'no access left behind')
    t.equal(
      (await app.inject({ method: 'GET', url: `/grants/${response.json().grantId}`, headers: bearer() })).json().status,
      'revoked',
    )
  },
)

t.test(
  'a creation that never reached AWS and was ended meanwhile is given up once any accepted one would show',
  async (t) => {
    const { app, clock, proxy, countAssignments } = await build(t, moto, { awsLike: true, proxy: true })
    proxy?.inject('CreateAccountAssignment', 'server-error')
    const response = await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() })
    expectStatus(t, response, 503)
    t.equal(
      (await app.inject({ method: 'DELETE', url: `/grants/${response.json().grantId}`, headers: bearer() })).json()
        .status,
      'revoking',
    )

    proxy?.clear()
    clock.advanceMinutes(2)
    t.match((await app.inject({ method: 'POST', url: '/revocations', headers: bearer() })).json(), {
      revoked: 0,
      failed: 0,
      remaining: 1,
    })
    clock.advanceMinutes(4)
    t.match((await app.inject({ method: 'POST', url: '/revocations', headers: bearer() })).json(), {
      revoked: 1,
      failed: 0,
      remaining: 0,
    })
    t.equal(await countAssignments('alice', PROD, 'AdministratorAccess'), 0)
    t.equal(
      (await app.inject({ method: 'GET', url: `/grants/${response.json().grantId}`, headers: bearer() })).json().status,
      'revoked',
    )
  },
)

t.test('a revocation interrupted by a dropped connection is finished by the next sweep', async (t) => {
  const { app, clock, proxy, hasAssignment, countAssignments } = await build(t, moto, { awsLike: true, proxy: true })
  const grant = (
    await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody({ durationMinutes: 5 }) })
  ).json()
  proxy?.inject('DeleteAccountAssignment', 'drop')

  const response = await app.inject({ method: 'DELETE', url: `/grants/${grant.id}`, headers: bearer() })
  expectStatus(t, response, 503)
  t.equal(
    (await app.inject({ method: 'GET', url: `/grants/${grant.id}`, headers: bearer() })).json().status,
    'revoking',
    'intent recorded',
  )
  t.ok(await hasAssignment('alice', PROD, 'AdministratorAccess'))

  proxy?.clear()
  clock.advance(1000)
  const sweep = (await app.inject({ method: 'POST', url: '/revocations', headers: bearer() })).json()

  t.match(sweep, { revoked: 1, activated: 0, failed: 0, remaining: 0 })
  t.equal(await countAssignments('alice', PROD, 'AdministratorAccess'), 0)
  t.equal((await app.inject({ method: 'GET', url: `/grants/${grant.id}`, headers: bearer() })).json().status, 'revoked')
})

t.test('a sweep that meets a throttled Identity Center counts the failure and the next sweep completes', async (t) => {
  const { app, clock, proxy, hasAssignment } = await build(t, moto, { awsLike: true, proxy: true })
  await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody({ durationMinutes: 1 }) })
  clock.advanceMinutes(2)
  proxy?.inject('DeleteAccountAssignment', 'throttle')

  const first = (await app.inject({ method: 'POST', url: '/revocations', headers: bearer() })).json()
  t.match(first, { revoked: 0, activated: 0, failed: 1, remaining: 0 })
  t.ok(await hasAssignment('alice', PROD, 'AdministratorAccess'))

  proxy?.clear()
  clock.advanceMinutes(1)
  const second = (await app.inject({ method: 'POST', url: '/revocations', headers: bearer() })).json()
  t.match(second, { revoked: 1, activated: 0, failed: 0, remaining: 0 })
  t.notOk(await hasAssignment('alice', PROD, 'AdministratorAccess'))
})

t.test('DynamoDB unavailable before anything is recorded: 503 and no access granted', async (t) => {
  const { app, proxy, hasAssignment } = await build(t, moto, { awsLike: true, proxy: true })
  proxy?.inject('TransactWriteItems', 'server-error')

  const response = await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() })

  expectStatus(t, response, 503)
  t.equal(response.json().code, 'UPSTREAM_UNAVAILABLE')
  t.notOk(response.json().grantId)
  t.notOk(await hasAssignment('alice', PROD, 'AdministratorAccess'), 'no side effect without recorded intent')
})

t.test('a failed permission-set lookup is a 503, never taken for "no such permission set"', async (t) => {
  const { app, proxy } = await build(t, moto, { awsLike: true, proxy: true })
  proxy?.inject('ListPermissionSets', 'server-error', 3)

  const during = await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() })
  const after = await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() })

  expectStatus(t, during, 503)
  expectStatus(t, after, 201, 'the next request lists again')
  t.equal(
    (await app.inject({ method: 'GET', url: '/audit?action=grant.denied', headers: bearer() })).json().items.length,
    0,
    'no false denial audited',
  )
})

t.test(
  'Identity Center still provisioning after the wait budget: 202 provisioning, and the sweep confirms it later',
  async (t) => {
    const { app, clock, proxy } = await build(t, moto, { awsLike: true, proxy: true })
    proxy?.inject('CreateAccountAssignment', 'report-in-progress', 1)
    proxy?.inject('DescribeAccountAssignmentCreationStatus', 'report-in-progress')

    const response = await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() })

    expectStatus(t, response, 202)
    t.equal(response.json().status, 'provisioning')
    t.ok((proxy?.calls.DescribeAccountAssignmentCreationStatus ?? 0) >= 1, 'the status was polled')

    proxy?.clear()
    clock.advanceMinutes(2)
    const sweep = (await app.inject({ method: 'POST', url: '/revocations', headers: bearer() })).json()
    t.match(sweep, { activated: 1, failed: 0, remaining: 0 })
    t.equal(
      (await app.inject({ method: 'GET', url: `/grants/${response.json().id}`, headers: bearer() })).json().status,
      'active',
    )
  },
)

t.test(
  'Identity Center reporting FAILED: the grant fails with AWS’s reason, audited and alerted, holding nothing',
  async (t) => {
    const { app, proxy } = await build(t, moto, { awsLike: true, proxy: true })
    proxy?.inject('CreateAccountAssignment', 'report-failed', 1)

    const response = await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() })

    expectStatus(t, response, 502)
    t.match(response.json(), { code: 'PROVISIONING_FAILED', grantId: String, detail: /Not supported account/ })
    const grant = (
      await app.inject({ method: 'GET', url: `/grants/${response.json().grantId}`, headers: bearer() })
    ).json()
    t.match(grant, { status: 'failed', failureReason: /Not supported account/ })
    const failed = (await app.inject({ method: 'GET', url: '/audit?action=grant.failed', headers: bearer() })).json()
      .items
    t.equal(failed.length, 1)
    t.match(failed[0], { grantId: grant.id, ticketId: 'CHG0001234', detail: /Not supported account/ })
  },
)

t.test('a hanging connection is abandoned: the request gets a 503 in bounded time, not a hang', async (t) => {
  const { app, proxy } = await build(t, moto, { awsLike: true, proxy: true })
  proxy?.inject('ListAccountAssignmentsForPrincipal', 'hang')
  const started = Date.now()

  const response = await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() })

  expectStatus(t, response, 503)
  t.match(response.json(), { code: 'UPSTREAM_UNAVAILABLE', grantId: String })
  t.ok(Date.now() - started < 20_000, 'answered within the retry budget')
})

t.test('a look for a permanent assignment that fails is asked again, never taken as "none"', async (t) => {
  const { app, proxy, hasAssignment } = await build(t, moto, { awsLike: true, proxy: true })
  t.ok(await hasAssignment('carol', STAGING, 'ReadOnlyAccess'), 'seeded as permanent')
  // The first look is the one asked while the lease is taken: all three of its attempts fail.
  proxy?.inject('ListAccountAssignmentsForPrincipal', 'server-error', 3)

  const response = await app.inject({
    method: 'POST',
    url: '/grants',
    headers: bearer(),
    payload: grantBody({ userName: 'carol', accountId: STAGING, permissionSet: 'ReadOnlyAccess' }),
  })
  expectStatus(t, response, 201)
  t.equal(response.json().coveredBy, 'pre-existing')
  t.equal(proxy?.injected['server-error'], 3)
  t.equal(proxy?.calls.CreateAccountAssignment, undefined, 'nothing created over the permanent assignment')

  await app.inject({ method: 'DELETE', url: `/grants/${response.json().id}`, headers: bearer() })
  t.ok(await hasAssignment('carol', STAGING, 'ReadOnlyAccess'), 'the permanent assignment survives the grant')
})

t.test(
  'lifecycle messages go through the outbox: SNS failing at the commit delays them, never loses them, never fails the grant',
  async (t) => {
    const { app, clock, proxy, clients, topicArn } = await build(t, moto, { proxy: true })
    const messages = await subscribeQueue(clients.sns, topicArn)
    // Every attempt the SDK makes (3) fails: the message stays in the outbox.
    proxy?.inject('Publish', 'server-error', 3)

    const response = await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() })
    expectStatus(t, response, 201)
    await app.flushNotifications()
    t.same(
      (await messages()).filter((m) => m.includes('grant.activated')),
      [],
      'not delivered while SNS fails',
    )

    clock.advance(40_000)
    t.match((await app.inject({ method: 'POST', url: '/revocations', headers: bearer() })).json(), { undelivered: 0 })
    const delivered = (await messages()).filter((m) => m.includes('grant.activated'))
    t.equal(delivered.length, 1, 'delivered by the sweep, once')
    t.match(
      JSON.parse(delivered[0] as string).MessageAttributes,
      { eventId: { Value: String } },
      'subscribers can drop a repeat by eventId',
    )
  },
)
