import { DeleteGroupMembershipCommand, ListGroupMembershipsForMemberCommand } from '@aws-sdk/client-identitystore'
import { DeletePermissionSetCommand } from '@aws-sdk/client-sso-admin'
import t from 'tap'
import { build, grantBody, PROD } from './helpers/app.ts'
import { expectStatus } from './helpers/http-status.ts'
import { startMoto } from './helpers/moto.ts'
import { bearer, mintToken } from './helpers/tokens.ts'

const moto = await startMoto(t)

type Built = Awaited<ReturnType<typeof build>>
type Inject = Built['app']['inject']
const MINUTE = 60_000

const at = (clock: Built['clock'], minutesAhead: number) =>
  new Date(clock.now().getTime() + minutesAhead * MINUTE).toISOString()
const sweep = async (app: Built['app']) =>
  (await app.inject({ method: 'POST', url: '/revocations', headers: bearer() })).json()
const auditOf = async (app: Built['app'], grantId: string) =>
  (await app.inject({ method: 'GET', url: `/audit?grantId=${grantId}`, headers: bearer() })).json().items as {
    action: string
    detail: string
    actor: string
  }[]
const patch = (inject: Inject, id: string, body: unknown, headers: Record<string, string> = {}) =>
  inject({
    method: 'PATCH',
    url: `/grants/${id}`,
    headers: { ...bearer(), 'content-type': 'application/merge-patch+json', ...headers },
    payload: JSON.stringify(body),
  })

async function removeFromGroup(built: Built, userName: string) {
  const client = built.clients.identityStore
  const memberships = await client.send(
    new ListGroupMembershipsForMemberCommand({
      IdentityStoreId: built.instance.identityStoreId,
      MemberId: { UserId: built.seeded.userIds[userName] as string },
    }),
  )
  for (const membership of memberships.GroupMemberships ?? []) {
    await client.send(
      new DeleteGroupMembershipCommand({
        IdentityStoreId: built.instance.identityStoreId,
        MembershipId: membership.MembershipId as string,
      }),
    )
  }
}

t.test(
  'a grant with a later start is scheduled, creates nothing, and is started by the first sweep after its start',
  async (t) => {
    const { app, clock, hasAssignment } = await build(t, moto)
    const startsAt = at(clock, 2)

    const response = await app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: grantBody({ startsAt, durationMinutes: 30 }),
    })

    t.equal(response.statusCode, 201, response.body)
    const grant = response.json()
    t.match(grant, { status: 'scheduled', startsAt, coveredBy: null })
    t.equal(
      Date.parse(grant.expiresAt) - Date.parse(startsAt),
      30 * MINUTE,
      'expiresAt is startsAt plus durationMinutes',
    )
    t.equal(Date.parse(grant.accessEndsBy) - Date.parse(grant.expiresAt), 3600_000)
    t.notOk(await hasAssignment('alice', PROD, 'AdministratorAccess'), 'nothing exists before the start')
    const listed = (await app.inject({ method: 'GET', url: '/grants?status=scheduled', headers: bearer() })).json()
    t.same(
      listed.items.map((g: { id: string }) => g.id),
      [grant.id],
      'GET /grants?status=scheduled lists it',
    )

    clock.advanceMinutes(1)
    t.match(await sweep(app), { activated: 0, remaining: 0 }, 'a sweep before the start leaves it')
    t.equal(
      (await app.inject({ method: 'GET', url: `/grants/${grant.id}`, headers: bearer() })).json().status,
      'scheduled',
    )
    t.notOk(await hasAssignment('alice', PROD, 'AdministratorAccess'))

    clock.advanceMinutes(1.5)
    t.match(await sweep(app), { activated: 1, failed: 0, remaining: 0 }, 'the first sweep after the start starts it')
    const started = (await app.inject({ method: 'GET', url: `/grants/${grant.id}`, headers: bearer() })).json()
    t.match(started, { status: 'active', coveredBy: 'jit', expiresAt: grant.expiresAt })
    t.ok(await hasAssignment('alice', PROD, 'AdministratorAccess'))
    t.same((await auditOf(app, grant.id)).map((e) => e.action).reverse(), [
      'grant.scheduled',
      'grant.start_requested',
      'grant.activated',
    ])

    clock.advanceMinutes(30)
    t.match(await sweep(app), { revoked: 1 })
    t.notOk(await hasAssignment('alice', PROD, 'AdministratorAccess'), 'removed after its end')
  },
)

t.test(
  'startsAt is checked: in the future, within the service maximum and the rule’s lead time, RFC 3339 with a zone',
  async (t) => {
    const policy = {
      rules: [
        {
          name: 'planned',
          users: ['alice'],
          accounts: [PROD],
          permissionSets: ['AdministratorAccess'],
          maxDurationMinutes: 240,
          maxLeadDays: 2,
        },
        {
          name: 'bob-now-only',
          users: ['bob'],
          accounts: [PROD],
          permissionSets: ['AdministratorAccess'],
          maxDurationMinutes: 240,
          maxLeadDays: 0,
        },
      ],
    }
    const { app, clock } = await build(t, moto, { policy, maxLeadDays: 7 })
    const post = (body: Record<string, unknown>) =>
      app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody(body) })

    const past = await post({ startsAt: at(clock, -1) })
    t.equal(past.statusCode, 400, past.body)
    t.match(past.json(), { code: 'VALIDATION_FAILED', detail: /not in the future/ })
    const tooFar = await post({ startsAt: at(clock, 8 * 24 * 60) })
    expectStatus(t, tooFar, 400)
    t.match(tooFar.json().detail, /7 days/)
    const noZone = await post({ startsAt: at(clock, 60).replace(/\.\d+Z$/, '') })
    expectStatus(t, noZone, 400, 'a time without a zone is ambiguous and refused')

    const beyondRule = await post({ startsAt: at(clock, 3 * 24 * 60) })
    t.equal(beyondRule.statusCode, 403, beyondRule.body)
    t.match(beyondRule.json(), { code: 'POLICY_DENIED', failedCondition: 'leadTime' })
    const bobScheduled = await post({ userName: 'bob', startsAt: at(clock, 60) })
    expectStatus(t, bobScheduled, 403)
    t.match(bobScheduled.json(), { failedCondition: 'leadTime', detail: /no scheduled start/ })
    const bobNow = await post({ userName: 'bob' })
    expectStatus(t, bobNow, 201, 'a rule with maxLeadDays 0 still allows access now')

    const denials = (await app.inject({ method: 'GET', url: '/audit?action=grant.denied', headers: bearer() })).json()
      .items
    t.equal(denials.length, 2, 'both lead-time denials are audited')
    t.ok(denials.every((e: { detail: string }) => /leadTime/.test(e.detail)))

    const withinRule = await post({ startsAt: at(clock, 24 * 60) })
    expectStatus(t, withinRule, 201)
    t.equal(withinRule.json().status, 'scheduled')
  },
)

t.test('scheduling can be turned off for the whole service', async (t) => {
  const { app, clock } = await build(t, moto, { maxLeadDays: 0 })
  const response = await app.inject({
    method: 'POST',
    url: '/grants',
    headers: bearer(),
    payload: grantBody({ startsAt: at(clock, 10) }),
  })
  expectStatus(t, response, 400)
  t.match(response.json().detail, /JIT_MAX_LEAD_DAYS=0/)
})

t.test('cancelling a scheduled grant leaves Identity Center untouched, and it never starts', async (t) => {
  const { app, clock, proxy, hasAssignment } = await build(t, moto, { proxy: true })
  const grant = (
    await app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: grantBody({ startsAt: at(clock, 5) }),
    })
  ).json()
  const calls = proxy?.identityCenterCallTimes.length ?? 0

  const cancelled = await app.inject({
    method: 'DELETE',
    url: `/grants/${grant.id}`,
    headers: bearer(mintToken({ sub: 'change-manager' })),
  })

  t.equal(cancelled.statusCode, 200, cancelled.body)
  t.match(cancelled.json(), { status: 'cancelled', endedBy: 'change-manager', endReason: null })
  t.equal(proxy?.identityCenterCallTimes.length, calls, 'no call to Identity Center')
  const events = await auditOf(app, grant.id)
  t.match(events[0], { action: 'grant.cancelled', actor: 'change-manager' })

  clock.advanceMinutes(10)
  t.match(await sweep(app), { activated: 0, revoked: 0, failed: 0, remaining: 0 })
  t.notOk(await hasAssignment('alice', PROD, 'AdministratorAccess'))
  const again = await app.inject({ method: 'DELETE', url: `/grants/${grant.id}`, headers: bearer() })
  expectStatus(t, again, 200, 'cancelling twice answers its final state')
  t.equal(again.json().status, 'cancelled')
})

t.test(
  'a scheduled grant whose user left the eligible group is denied at its start, audited and published',
  async (t) => {
    const built = await build(t, moto)
    const { app, clock, hasAssignment } = built
    const grant = (
      await app.inject({
        method: 'POST',
        url: '/grants',
        headers: bearer(),
        payload: grantBody({ startsAt: at(clock, 5) }),
      })
    ).json()
    t.equal(grant.status, 'scheduled')

    await removeFromGroup(built, 'alice')
    clock.advanceMinutes(6)
    t.match(await sweep(app), { denied: 1, activated: 0, failed: 0 })

    const denied = (await app.inject({ method: 'GET', url: `/grants/${grant.id}`, headers: bearer() })).json()
    t.match(denied, { status: 'denied', failureReason: /not eligible.*failed condition: principal/ })
    t.notOk(await hasAssignment('alice', PROD, 'AdministratorAccess'))
    const event = (await auditOf(app, grant.id))[0]
    t.match(event, { action: 'grant.denied', actor: 'system:sweep', detail: /at its scheduled start/ })
  },
)

t.test('a scheduled grant whose whole window passed before any sweep fails rather than starting late', async (t) => {
  const { app, clock, hasAssignment } = await build(t, moto)
  const grant = (
    await app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: grantBody({ startsAt: at(clock, 5), durationMinutes: 10 }),
    })
  ).json()

  clock.advanceMinutes(20)
  t.match(await sweep(app), { failed: 1, activated: 0 })

  t.match((await app.inject({ method: 'GET', url: `/grants/${grant.id}`, headers: bearer() })).json(), {
    status: 'failed',
    failureReason: /window ended/,
  })
  t.notOk(await hasAssignment('alice', PROD, 'AdministratorAccess'))
})

t.test('a scheduled grant starts beside a permanent assignment and leaves it in place at its end', async (t) => {
  const { app, clock, hasAssignment } = await build(t, moto)
  // carol holds ReadOnlyAccess on staging permanently (the demo directory).
  const staging = '222222222222'
  const grant = (
    await app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: grantBody({
        userName: 'carol',
        accountId: staging,
        permissionSet: 'ReadOnlyAccess',
        ticketId: 'CHG0009999',
        startsAt: at(clock, 3),
        durationMinutes: 30,
      }),
    })
  ).json()

  clock.advanceMinutes(4)
  await sweep(app)
  t.match((await app.inject({ method: 'GET', url: `/grants/${grant.id}`, headers: bearer() })).json(), {
    status: 'active',
    coveredBy: 'pre-existing',
  })
  clock.advanceMinutes(30)
  await sweep(app)
  t.ok(await hasAssignment('carol', staging, 'ReadOnlyAccess'), 'the permanent assignment is never removed')
})

t.test(
  'extending an active grant keeps the access past its old end; the sweep removes it after the new end',
  async (t) => {
    const { app, clock, hasAssignment } = await build(t, moto)
    const grant = (
      await app.inject({
        method: 'POST',
        url: '/grants',
        headers: bearer(),
        payload: grantBody({ durationMinutes: 60 }),
      })
    ).json()
    const newEnd = new Date(Date.parse(grant.expiresAt) + 90 * MINUTE).toISOString()

    const extended = await patch(app.inject.bind(app), grant.id, { expiresAt: newEnd })

    t.equal(extended.statusCode, 200, extended.body)
    t.match(extended.json(), { status: 'active', expiresAt: newEnd })
    t.equal(Date.parse(extended.json().accessEndsBy) - Date.parse(newEnd), 3600_000, 'accessEndsBy follows the new end')
    t.match((await auditOf(app, grant.id))[0], {
      action: 'grant.extended',
      detail: new RegExp(`from ${grant.expiresAt} to ${newEnd}`),
    })

    clock.advanceMinutes(61)
    t.match(await sweep(app), { revoked: 0 })
    t.ok(await hasAssignment('alice', PROD, 'AdministratorAccess'), 'still in place after the old end')
    clock.advanceMinutes(90)
    t.match(await sweep(app), { revoked: 1 })
    t.notOk(await hasAssignment('alice', PROD, 'AdministratorAccess'))
    t.match((await app.inject({ method: 'GET', url: `/grants/${grant.id}`, headers: bearer() })).json(), {
      status: 'expired',
      endReason: 'expired',
    })
  },
)

t.test(
  'an extension beyond the policy is 403 and audited; over the service maximum is 400; the end stays',
  async (t) => {
    const { app } = await build(t, moto, { maxDurationMinutes: 300 })
    const grant = (
      await app.inject({
        method: 'POST',
        url: '/grants',
        headers: bearer(),
        payload: grantBody({ durationMinutes: 60 }),
      })
    ).json()
    const plus = (minutes: number) => new Date(Date.parse(grant.createdAt) + minutes * MINUTE).toISOString()

    const overRule = await patch(app.inject.bind(app), grant.id, { expiresAt: plus(241) })
    t.equal(overRule.statusCode, 403, overRule.body)
    t.match(overRule.json(), { code: 'POLICY_DENIED', failedCondition: 'duration' })
    t.match((await auditOf(app, grant.id))[0], { action: 'grant.denied', detail: /extension refused/ })

    const overService = await patch(app.inject.bind(app), grant.id, { expiresAt: plus(301) })
    expectStatus(t, overService, 400)
    t.match(overService.json().detail, /service maximum of 300/)

    const withinRule = await patch(app.inject.bind(app), grant.id, { expiresAt: plus(240) })
    expectStatus(t, withinRule, 200, 'the rule’s whole maximum counts from the grant’s start')
  },
)

t.test(
  'shortening is always allowed, even once the user is no longer eligible; an end in the past is 400',
  async (t) => {
    const built = await build(t, moto)
    const { app, clock, hasAssignment } = built
    const grant = (
      await app.inject({
        method: 'POST',
        url: '/grants',
        headers: bearer(),
        payload: grantBody({ durationMinutes: 120 }),
      })
    ).json()
    await removeFromGroup(built, 'alice')

    const past = await patch(app.inject.bind(app), grant.id, { expiresAt: at(clock, -1) })
    expectStatus(t, past, 400)
    t.match(past.json().detail, /not in the future/)

    const shortened = await patch(app.inject.bind(app), grant.id, { expiresAt: at(clock, 10) })
    t.equal(shortened.statusCode, 200, shortened.body)
    t.equal((await auditOf(app, grant.id))[0]?.action, 'grant.shortened')
    clock.advanceMinutes(11)
    t.match(await sweep(app), { revoked: 1 })
    t.notOk(await hasAssignment('alice', PROD, 'AdministratorAccess'))
  },
)

t.test('a scheduled grant can be extended, and its start is unchanged', async (t) => {
  const { app, clock } = await build(t, moto)
  const grant = (
    await app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: grantBody({ startsAt: at(clock, 60), durationMinutes: 60 }),
    })
  ).json()

  const before = await patch(app.inject.bind(app), grant.id, { expiresAt: grant.startsAt })
  expectStatus(t, before, 400, 'an end at or before the start is refused')
  const extended = await patch(app.inject.bind(app), grant.id, { expiresAt: at(clock, 60 + 180) })
  t.equal(extended.statusCode, 200, extended.body)
  t.match(extended.json(), { status: 'scheduled', startsAt: grant.startsAt })

  clock.advanceMinutes(61)
  t.match(await sweep(app), { activated: 1 })
  t.equal(
    (await app.inject({ method: 'GET', url: `/grants/${grant.id}`, headers: bearer() })).json().expiresAt,
    at(clock, 179),
  )
})

t.test('PATCH: media types, body shape, scope, ended grants, idempotency', async (t) => {
  const { app, clock } = await build(t, moto)
  const grant = (await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() })).json()
  const inject = app.inject.bind(app)
  const end = at(clock, 90)

  const asJson = await patch(inject, grant.id, { expiresAt: end }, { 'content-type': 'application/json' })
  expectStatus(t, asJson, 200, 'application/json is accepted too')
  const text = await patch(inject, grant.id, { expiresAt: end }, { 'content-type': 'text/plain' })
  expectStatus(t, text, 415)
  const mergePatchPost = await app.inject({
    method: 'POST',
    url: '/grants',
    headers: { ...bearer(), 'content-type': 'application/merge-patch+json' },
    payload: JSON.stringify(grantBody()),
  })
  expectStatus(t, mergePatchPost, 415, 'merge patch is the PATCH route’s media type only')
  const other = await patch(inject, grant.id, { expiresAt: end, userName: 'bob' })
  expectStatus(t, other, 400, 'expiresAt is the only field that can change')
  const removal = await patch(inject, grant.id, { expiresAt: null })
  expectStatus(t, removal, 400, 'an end cannot be removed')
  const noScope = await patch(
    inject,
    grant.id,
    { expiresAt: end },
    { authorization: `Bearer ${mintToken({ scope: 'grants:read grants:revoke' })}` },
  )
  expectStatus(t, noScope, 403)
  t.equal(noScope.json().code, 'INSUFFICIENT_SCOPE')
  const unknown = await patch(inject, '01a21000-0000-7000-8000-000000000000', { expiresAt: end })
  expectStatus(t, unknown, 404)

  const same = await patch(inject, grant.id, { expiresAt: end })
  expectStatus(t, same, 200)
  t.equal(
    (await auditOf(app, grant.id)).filter((e) => e.action === 'grant.extended').length,
    1,
    'moving the end to where it is records nothing',
  )

  const keyed = { 'idempotency-key': 'extend-CHG0001234-1' }
  const first = await patch(inject, grant.id, { expiresAt: at(clock, 120) }, keyed)
  const replay = await patch(inject, grant.id, { expiresAt: at(clock, 120) }, keyed)
  expectStatus(t, first, 200)
  t.equal(replay.headers['idempotent-replayed'], 'true')
  t.same(replay.json(), first.json())
  const reused = await patch(inject, grant.id, { expiresAt: at(clock, 150) }, keyed)
  expectStatus(t, reused, 409)

  await app.inject({ method: 'DELETE', url: `/grants/${grant.id}`, headers: bearer() })
  const ended = await patch(inject, grant.id, { expiresAt: at(clock, 200) })
  expectStatus(t, ended, 409)
  t.match(ended.json(), { code: 'GRANT_ALREADY_ENDED', status: 409, grantStatus: 'revoked' })
  t.match(ended.headers['content-type'], /^application\/problem\+json/)
})

t.test('a sweep that read a grant before its extension does not end it at its old end', async (t) => {
  // Two processes: one process's audit writes take turns, so a write it holds would hold the other back too.
  const { app, instances, clock, proxy, hasAssignment } = await build(t, moto, { proxy: true, instances: 2 })
  const other = instances[1] as Built['app']
  const grant = (
    await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody({ durationMinutes: 30 }) })
  ).json()
  clock.advanceMinutes(31)
  // The sweep has read the grant as expired and is writing 'revoking' when the extension lands.
  const hold = proxy?.holdNext('TransactWriteItems')
  const sweeping = sweep(app)
  await hold?.arrived
  const extended = await patch(other.inject.bind(other), grant.id, { expiresAt: at(clock, 60) })
  t.equal(extended.statusCode, 200, extended.body)
  hold?.release()

  t.match(await sweeping, { revoked: 0, failed: 0 })
  t.match((await app.inject({ method: 'GET', url: `/grants/${grant.id}`, headers: bearer() })).json(), {
    status: 'active',
    expiresAt: extended.json().expiresAt,
  })
  t.ok(await hasAssignment('alice', PROD, 'AdministratorAccess'), 'the extended access is still in place')
  clock.advanceMinutes(61)
  t.match(await sweep(app), { revoked: 1 })
  t.notOk(await hasAssignment('alice', PROD, 'AdministratorAccess'))
})

t.test('a scheduled grant extended while the sweep starts it starts with the new end', async (t) => {
  const { app, instances, clock, proxy } = await build(t, moto, { proxy: true, instances: 2 })
  const other = instances[1] as Built['app']
  const grant = (
    await app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: grantBody({ startsAt: at(clock, 5), durationMinutes: 30 }),
    })
  ).json()
  clock.advanceMinutes(6)
  const hold = proxy?.holdNext('TransactWriteItems')
  const sweeping = sweep(app)
  await hold?.arrived
  const newEnd = at(clock, 120)
  expectStatus(t, await patch(other.inject.bind(other), grant.id, { expiresAt: newEnd }), 200)
  hold?.release()

  t.match(await sweeping, { activated: 1 })
  const started = (await app.inject({ method: 'GET', url: `/grants/${grant.id}`, headers: bearer() })).json()
  t.match(started, { status: 'active', expiresAt: newEnd })
  clock.advanceMinutes(30)
  t.match(await sweep(app), { revoked: 0 }, 'not ended at the end it was scheduled with')
})

t.test('a cancellation racing the start: one of them wins, and the answers say which', async (t) => {
  // Two processes: one process's audit writes take turns, so a write it holds would hold the other back too.
  const { app, instances, clock, proxy, hasAssignment } = await build(t, moto, { proxy: true, instances: 2 })
  const other = instances[1] as Built['app']
  const grant = (
    await app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: grantBody({ startsAt: at(clock, 5) }),
    })
  ).json()
  clock.advanceMinutes(6)
  const hold = proxy?.holdNext('TransactWriteItems')
  const sweeping = sweep(app)
  await hold?.arrived
  const cancelled = await other.inject({ method: 'DELETE', url: `/grants/${grant.id}`, headers: bearer() })
  hold?.release()

  expectStatus(t, cancelled, 200)
  t.equal(cancelled.json().status, 'cancelled', 'the cancellation was written first')
  t.match(await sweeping, { activated: 0, failed: 0 })
  t.equal(
    (await app.inject({ method: 'GET', url: `/grants/${grant.id}`, headers: bearer() })).json().status,
    'cancelled',
  )
  t.notOk(await hasAssignment('alice', PROD, 'AdministratorAccess'), 'a cancelled grant never starts')
})

t.test(
  'concurrent PATCH, DELETE and sweeps on one grant: every answer is consistent with the final state, and the access ends at the end recorded',
  async (t) => {
    for (let round = 0; round < 4; round++) {
      const { app, instances, clock, hasAssignment } = await build(t, moto, { awsLike: true, instances: 2 })
      const [first, second] = instances as [Built['app'], Built['app']]
      const grant = (
        await first.inject({
          method: 'POST',
          url: '/grants',
          headers: bearer(),
          payload: grantBody({ durationMinutes: 30 }),
        })
      ).json()
      // The old end has passed: a sweep would end it, unless the extension lands first.
      clock.advanceMinutes(31)
      const extendTo = at(clock, 60)
      const patching = patch(second.inject.bind(second), grant.id, { expiresAt: extendTo })
      // The sweeps leave later each round, so that the extension wins some races and loses others.
      await new Promise((resolve) => setTimeout(resolve, [0, 10, 30, 80][round]))
      const racers = [
        patching,
        first.inject({ method: 'POST', url: '/revocations', headers: bearer() }),
        round % 2 === 0
          ? second.inject({ method: 'POST', url: '/revocations', headers: bearer() })
          : app.inject({ method: 'GET', url: `/grants/${grant.id}`, headers: bearer() }),
        ...(round % 3 === 0 ? [first.inject({ method: 'DELETE', url: `/grants/${grant.id}`, headers: bearer() })] : []),
      ]
      const [patched] = await Promise.all(racers)
      await first.inject({ method: 'POST', url: '/revocations', headers: bearer() })
      const final = (await app.inject({ method: 'GET', url: `/grants/${grant.id}`, headers: bearer() })).json()
      const held = await hasAssignment('alice', PROD, 'AdministratorAccess')

      if (patched?.statusCode === 200) {
        // The extension was recorded: unless a DELETE ended it, the access lives to the new end, and no longer.
        if (final.status === 'active') {
          t.equal(final.expiresAt, extendTo, `round ${round}: the extension won, and the recorded end is its`)
          t.ok(held, `round ${round}: an extended grant is not ended at its old end`)
          clock.advanceMinutes(61)
          await first.inject({ method: 'POST', url: '/revocations', headers: bearer() })
          t.notOk(
            await hasAssignment('alice', PROD, 'AdministratorAccess'),
            `round ${round}: removed after the new end`,
          )
        } else {
          t.match(final.status, /^(revoked|revoking)$/, `round ${round}: only a DELETE ends an extended grant early`)
          t.equal(round % 3, 0)
        }
      } else {
        t.equal(patched?.statusCode, 409, `round ${round}: an extension that lost the race says so: ${patched?.body}`)
        t.match(final.status, /^(expired|revoked)$/)
        t.notOk(held, `round ${round}: a grant that was ended holds nothing`)
      }
    }
  },
)

t.test('a leap second is valid RFC 3339 but no time this service can hold: 400, not 500', async (t) => {
  const { app } = await build(t, moto)
  const scheduled = await app.inject({
    method: 'POST',
    url: '/grants',
    headers: bearer(),
    payload: grantBody({ startsAt: '2026-12-31T23:59:60Z' }),
  })
  t.equal(scheduled.statusCode, 400, scheduled.body)
  t.match(scheduled.json(), { code: 'VALIDATION_FAILED', detail: /startsAt .* leap second/ })
  const grant = (await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() })).json()
  const moved = await patch(app.inject.bind(app), grant.id, { expiresAt: '2026-12-31T23:59:60Z' })
  t.equal(moved.statusCode, 400, moved.body)
})

t.test(
  'a scheduled grant whose permission set was deleted before its start is denied, not left failing in Identity Center',
  async (t) => {
    // The start is swept by another process, whose cache has never seen the set: as a start days after the
    // request would find every cache long expired.
    const { app, instances, clock, clients, instance, seeded, hasAssignment } = await build(t, moto, {
      instances: 2,
      cacheTtlMs: 0,
    })
    const grant = (
      await app.inject({
        method: 'POST',
        url: '/grants',
        headers: bearer(),
        payload: grantBody({ permissionSet: 'ReadOnlyAccess', startsAt: at(clock, 5) }),
      })
    ).json()
    await clients.ssoAdmin.send(
      new DeletePermissionSetCommand({
        InstanceArn: instance.instanceArn,
        PermissionSetArn: seeded.permissionSetArns.ReadOnlyAccess as string,
      }),
    )

    clock.advanceMinutes(6)
    const summary = await sweep(instances[1] as Built['app'])
    t.match(summary, { denied: 1, failed: 0 }, JSON.stringify(summary))
    t.match((await app.inject({ method: 'GET', url: `/grants/${grant.id}`, headers: bearer() })).json(), {
      status: 'denied',
      failureReason: /no longer exists/,
    })
    t.notOk(await hasAssignment('alice', PROD, 'ReadOnlyAccess'))
  },
)

t.test('an extension answered 503 at its deadline does not move the end afterwards', async (t) => {
  const { app, proxy } = await build(t, moto, { proxy: true, requestDeadlineMs: 1000 })
  const grant = (
    await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody({ durationMinutes: 60 }) })
  ).json()
  // The extension's group lookup is held past the request's deadline.
  const lookup = proxy?.holdNext('ListGroupMembershipsForMember')
  const extending = patch(app.inject.bind(app), grant.id, {
    expiresAt: new Date(Date.parse(grant.expiresAt) + 60 * MINUTE).toISOString(),
  })
  await lookup?.arrived
  const answered = await extending
  t.equal(answered.statusCode, 503, answered.body)
  lookup?.release()
  await new Promise((resolve) => setTimeout(resolve, 500))

  const now = (await app.inject({ method: 'GET', url: `/grants/${grant.id}`, headers: bearer() })).json()
  t.equal(now.expiresAt, grant.expiresAt, 'the end is where it was')
  t.equal(
    (await auditOf(app, grant.id)).filter((e) => e.action === 'grant.extended').length,
    0,
    'nothing recorded after the answer',
  )
})
