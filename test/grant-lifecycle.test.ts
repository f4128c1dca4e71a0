import { CreatePermissionSetCommand } from '@aws-sdk/client-sso-admin'
import t from 'tap'
import { build, grantBody, PROD, STAGING } from './helpers/app.ts'
import { expectStatus } from './helpers/http-status.ts'
import { startMoto } from './helpers/moto.ts'
import { bearer, mintToken } from './helpers/tokens.ts'

const moto = await startMoto(t)

t.test('a granted request creates the assignment in Identity Center and answers 201 active', async (t) => {
  const { app, hasAssignment } = await build(t, moto)

  const response = await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() })

  expectStatus(t, response, 201)
  t.match(response.headers['content-type'], /^application\/json/)
  const grant = response.json()
  t.match(grant, {
    status: 'active',
    userName: 'alice',
    accountId: PROD,
    permissionSet: 'AdministratorAccess',
    ticketId: 'CHG0001234',
    justification: 'Deploy hotfix',
    requestedBy: 'servicenow-workflow',
    coveredBy: 'jit',
    endedAt: null,
  })
  t.equal(response.headers.location, `/grants/${grant.id}`)
  t.equal(new Date(grant.expiresAt).getTime() - new Date(grant.createdAt).getTime(), 60 * 60_000)
  t.equal(
    new Date(grant.accessEndsBy).getTime() - new Date(grant.expiresAt).getTime(),
    3600_000,
    'AdministratorAccess sessions last PT1H',
  )
  t.ok(await hasAssignment('alice', PROD, 'AdministratorAccess'))
})

t.test('the permission set is whichever the request names, not a hard-coded one', async (t) => {
  const { app, hasAssignment } = await build(t, moto)

  const response = await app.inject({
    method: 'POST',
    url: '/grants',
    headers: bearer(),
    payload: grantBody({ permissionSet: 'ReadOnlyAccess' }),
  })

  expectStatus(t, response, 201)
  t.equal(
    new Date(response.json().accessEndsBy).getTime() - new Date(response.json().expiresAt).getTime(),
    8 * 3600_000,
  )
  t.ok(await hasAssignment('alice', PROD, 'ReadOnlyAccess'))
  t.notOk(await hasAssignment('alice', PROD, 'AdministratorAccess'))
})

t.test(
  'a permission set whose session duration cannot be read falls back to one hour, with a warning, instead of blocking every grant',
  async (t) => {
    // moto answers SessionDuration as the number 3600 for a set created without one (AWS sends an ISO 8601 string).
    const policy = {
      rules: [
        {
          name: 'alice',
          users: ['alice'],
          accounts: ['*'],
          permissionSets: ['NoSessionDuration', 'ReadOnlyAccess'],
          maxDurationMinutes: 240,
        },
      ],
    }
    const { app, clients, instance, logLines } = await build(t, moto, { policy })
    await clients.ssoAdmin.send(
      new CreatePermissionSetCommand({ InstanceArn: instance.instanceArn, Name: 'NoSessionDuration' }),
    )

    const odd = await app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: grantBody({ permissionSet: 'NoSessionDuration' }),
    })
    const usual = await app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: grantBody({ permissionSet: 'ReadOnlyAccess' }),
    })

    t.equal(odd.statusCode, 201, odd.body)
    t.equal(
      new Date(odd.json().accessEndsBy).getTime() - new Date(odd.json().expiresAt).getTime(),
      3600_000,
      "Identity Center's default, PT1H",
    )
    t.equal(usual.statusCode, 201, `the other permission sets are not held up: ${usual.body}`)
    t.equal(new Date(usual.json().accessEndsBy).getTime() - new Date(usual.json().expiresAt).getTime(), 8 * 3600_000)
    t.ok(
      logLines.some((line) => /unreadable permission set session duration/.test(line)),
      'the fallback is logged',
    )
  },
)

t.test('GET /grants/:id answers the grant and 404 for an unknown id', async (t) => {
  const { app } = await build(t, moto)
  const created = (await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() })).json()

  const found = await app.inject({ method: 'GET', url: `/grants/${created.id}`, headers: bearer() })
  const missing = await app.inject({
    method: 'GET',
    url: '/grants/01a21000-0000-7000-8000-000000000000',
    headers: bearer(),
  })

  expectStatus(t, found, 200)
  t.same(found.json(), created)
  expectStatus(t, missing, 404)
  t.equal(missing.json().code, 'GRANT_NOT_FOUND')
  t.equal(missing.headers['content-type'], 'application/problem+json; charset=utf-8')
})

t.test('DELETE ends a grant early and removes the assignment; a second DELETE changes nothing', async (t) => {
  const { app, hasAssignment } = await build(t, moto)
  const created = (await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() })).json()
  const revoker = mintToken({ sub: 'security-oncall' })

  const ended = await app.inject({ method: 'DELETE', url: `/grants/${created.id}`, headers: bearer(revoker) })
  const again = await app.inject({ method: 'DELETE', url: `/grants/${created.id}`, headers: bearer(revoker) })

  expectStatus(t, ended, 200)
  t.match(ended.json(), { status: 'revoked', endReason: 'revoked', endedBy: 'security-oncall' })
  t.ok(ended.json().endedAt)
  t.notOk(await hasAssignment('alice', PROD, 'AdministratorAccess'))
  expectStatus(t, again, 200)
  t.same(again.json(), ended.json())
  const audit = (await app.inject({ method: 'GET', url: `/audit?grantId=${created.id}`, headers: bearer() })).json()
  t.same(
    audit.items.map((e: { action: string }) => e.action),
    ['grant.revoked', 'grant.revoke_requested', 'grant.activated', 'grant.requested'],
  )
})

t.test('DELETE of an unknown grant is a 404', async (t) => {
  const { app } = await build(t, moto)
  const response = await app.inject({ method: 'DELETE', url: '/grants/nope', headers: bearer() })
  expectStatus(t, response, 404)
  t.equal(response.json().code, 'GRANT_NOT_FOUND')
})

t.test('a 1-minute grant is removed by the first sweep after its expiry, not before', async (t) => {
  const { app, clock, hasAssignment } = await build(t, moto)
  const created = (
    await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody({ durationMinutes: 1 }) })
  ).json()

  clock.advance(59_000)
  const early = await app.inject({ method: 'POST', url: '/revocations', headers: bearer() })
  t.match(early.json(), { revoked: 0, activated: 0, failed: 0, remaining: 0 })
  t.ok(await hasAssignment('alice', PROD, 'AdministratorAccess'), 'still there before expiry')

  clock.advance(1_000)
  const sweep = await app.inject({ method: 'POST', url: '/revocations', headers: bearer() })

  expectStatus(t, sweep, 200)
  t.match(sweep.json(), { revoked: 1, activated: 0, failed: 0, remaining: 0 })
  t.notOk(await hasAssignment('alice', PROD, 'AdministratorAccess'))
  const grant = (await app.inject({ method: 'GET', url: `/grants/${created.id}`, headers: bearer() })).json()
  t.match(grant, { status: 'expired', endReason: 'expired', endedBy: 'system:sweep' })
  const expired = (
    await app.inject({ method: 'GET', url: `/audit?grantId=${created.id}&action=grant.expired`, headers: bearer() })
  ).json()
  t.equal(expired.items.length, 1)
  t.match(expired.items[0], { actor: 'system:sweep', ticketId: 'CHG0001234', userName: 'alice' })
})

t.test('a permanent assignment that existed before the grant survives its end', async (t) => {
  const { app, clock, hasAssignment } = await build(t, moto)
  t.ok(await hasAssignment('carol', STAGING, 'ReadOnlyAccess'), 'seeded as permanent')

  const early = (
    await app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: grantBody({
        userName: 'carol',
        accountId: STAGING,
        permissionSet: 'ReadOnlyAccess',
        ticketId: 'INC0000001',
      }),
    })
  ).json()
  const expiring = (
    await app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: grantBody({
        userName: 'carol',
        accountId: STAGING,
        permissionSet: 'ReadOnlyAccess',
        durationMinutes: 5,
        ticketId: 'INC0000002',
      }),
    })
  ).json()
  t.equal(early.coveredBy, 'pre-existing')
  t.equal(expiring.coveredBy, 'pre-existing')

  const ended = await app.inject({ method: 'DELETE', url: `/grants/${early.id}`, headers: bearer() })
  t.equal(ended.json().status, 'revoked')
  t.ok(await hasAssignment('carol', STAGING, 'ReadOnlyAccess'), 'kept after DELETE')

  clock.advanceMinutes(6)
  const sweep = (await app.inject({ method: 'POST', url: '/revocations', headers: bearer() })).json()
  t.equal(sweep.revoked, 1)
  t.ok(await hasAssignment('carol', STAGING, 'ReadOnlyAccess'), 'kept after expiry')

  // A later grant must not mistake the permanent assignment for one of ours either.
  const later = (
    await app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: grantBody({
        userName: 'carol',
        accountId: STAGING,
        permissionSet: 'ReadOnlyAccess',
        durationMinutes: 5,
        ticketId: 'INC0000003',
      }),
    })
  ).json()
  t.equal(later.coveredBy, 'pre-existing')
  await app.inject({ method: 'DELETE', url: `/grants/${later.id}`, headers: bearer() })
  t.ok(await hasAssignment('carol', STAGING, 'ReadOnlyAccess'))
})

t.test('of two overlapping grants, ending one keeps the access and ending the last removes it', async (t) => {
  const { app, clock, countAssignments } = await build(t, moto)
  const first = (
    await app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: grantBody({ durationMinutes: 30, ticketId: 'INC0000010' }),
    })
  ).json()
  const second = (
    await app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: grantBody({ durationMinutes: 90, ticketId: 'INC0000011' }),
    })
  ).json()
  t.equal(first.status, 'active')
  t.equal(second.status, 'active')
  t.equal(await countAssignments('alice', PROD, 'AdministratorAccess'), 1, 'one assignment serves both grants')

  const endFirst = await app.inject({ method: 'DELETE', url: `/grants/${first.id}`, headers: bearer() })
  t.equal(endFirst.json().status, 'revoked')
  t.equal(await countAssignments('alice', PROD, 'AdministratorAccess'), 1, 'still covered by the second grant')

  clock.advanceMinutes(91)
  const sweep = (await app.inject({ method: 'POST', url: '/revocations', headers: bearer() })).json()
  t.equal(sweep.revoked, 1)
  t.equal(await countAssignments('alice', PROD, 'AdministratorAccess'), 0)
})

t.test('an overlapping grant that expires first leaves the longer grant’s access in place', async (t) => {
  const { app, clock, countAssignments } = await build(t, moto)
  await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody({ durationMinutes: 10 }) })
  const longer = (
    await app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: grantBody({ durationMinutes: 120 }),
    })
  ).json()

  clock.advanceMinutes(11)
  const sweep = (await app.inject({ method: 'POST', url: '/revocations', headers: bearer() })).json()

  t.equal(sweep.revoked, 1)
  t.equal(await countAssignments('alice', PROD, 'AdministratorAccess'), 1)
  t.equal((await app.inject({ method: 'GET', url: `/grants/${longer.id}`, headers: bearer() })).json().status, 'active')
})

t.test('the sweep follows every DynamoDB page of expired grants', async (t) => {
  const { app, clock, hasAssignment } = await build(t, moto, { sweepPageSize: 4 })
  const users = ['alice', 'bob']
  const accounts = [PROD, STAGING]
  const sets = ['AdministratorAccess', 'ReadOnlyAccess']
  let made = 0
  for (const userName of users) {
    for (const accountId of accounts) {
      for (const permissionSet of sets) {
        for (let copy = 0; copy < 2; copy++) {
          const response = await app.inject({
            method: 'POST',
            url: '/grants',
            headers: bearer(),
            payload: grantBody({ userName, accountId, permissionSet, durationMinutes: 5 + copy }),
          })
          expectStatus(t, response, 201)
          made++
        }
      }
    }
  }
  t.equal(made, 16, '16 grants over 8 assignments: four pages of four')

  clock.advanceMinutes(7)
  const sweep = (await app.inject({ method: 'POST', url: '/revocations', headers: bearer() })).json()

  t.match(sweep, { revoked: 16, activated: 0, failed: 0, remaining: 0 })
  for (const userName of users)
    for (const accountId of accounts)
      for (const permissionSet of sets) {
        t.notOk(
          await hasAssignment(userName, accountId, permissionSet),
          `${userName} ${accountId} ${permissionSet} removed`,
        )
      }
  const open = (await app.inject({ method: 'GET', url: '/grants?status=active', headers: bearer() })).json()
  t.equal(open.items.length, 0)
})

t.test('GET /grants lists newest first, filters, and pages with a cursor', async (t) => {
  const { app, clock } = await build(t, moto)
  const ids: string[] = []
  for (const [i, userName] of ['alice', 'bob', 'alice', 'bob', 'alice'].entries()) {
    clock.advance(1000)
    const response = await app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: grantBody({ userName, ticketId: `CHG000000${i}`, accountId: i === 4 ? STAGING : PROD }),
    })
    ids.push(response.json().id)
  }
  await app.inject({ method: 'DELETE', url: `/grants/${ids[0]}`, headers: bearer() })

  const all = (await app.inject({ method: 'GET', url: '/grants', headers: bearer() })).json()
  t.same(
    all.items.map((g: { id: string }) => g.id),
    [...ids].reverse(),
  )
  t.equal(all.nextCursor, null)

  const alice = (await app.inject({ method: 'GET', url: '/grants?userName=alice', headers: bearer() })).json()
  t.same(
    alice.items.map((g: { id: string }) => g.id),
    [ids[4], ids[2], ids[0]],
  )
  const aliceActiveProd = (
    await app.inject({
      method: 'GET',
      url: `/grants?userName=alice&status=active&accountId=${PROD}`,
      headers: bearer(),
    })
  ).json()
  t.same(
    aliceActiveProd.items.map((g: { id: string }) => g.id),
    [ids[2]],
  )
  const byTicket = (await app.inject({ method: 'GET', url: '/grants?ticketId=CHG0000003', headers: bearer() })).json()
  t.same(
    byTicket.items.map((g: { id: string }) => g.id),
    [ids[3]],
  )
  const revoked = (await app.inject({ method: 'GET', url: '/grants?status=revoked', headers: bearer() })).json()
  t.same(
    revoked.items.map((g: { id: string }) => g.id),
    [ids[0]],
  )

  const seen: string[] = []
  let cursor: string | null = null
  let pages = 0
  do {
    const url: string = `/grants?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`
    const page = (await app.inject({ method: 'GET', url, headers: bearer() })).json()
    t.ok(page.items.length <= 2)
    seen.push(...page.items.map((g: { id: string }) => g.id))
    cursor = page.nextCursor
    pages++
  } while (cursor && pages < 10)
  t.same(seen, [...ids].reverse(), 'pages cover every grant once, in order')
})

t.test('grants sharing one assignment that expire together all end in the same sweep', async (t) => {
  const { app, clock, countAssignments } = await build(t, moto)
  for (let i = 0; i < 4; i++) {
    const response = await app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: grantBody({ durationMinutes: 5, ticketId: `INC000010${i}` }),
    })
    expectStatus(t, response, 201)
  }

  clock.advanceMinutes(5)
  const sweep = (await app.inject({ method: 'POST', url: '/revocations', headers: bearer() })).json()

  t.match(sweep, { revoked: 4, activated: 0, failed: 0, remaining: 0 })
  t.equal(await countAssignments('alice', PROD, 'AdministratorAccess'), 0)
})
