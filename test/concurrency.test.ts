import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb'
import t from 'tap'
import { coverageKey } from '../src/adapters/dynamodb/items.ts'
import { PROVISIONING_GRACE_MS } from '../src/core/grant-service.ts'
import { build, grantBody, PROD } from './helpers/app.ts'
import { expectStatus, expectStatuses } from './helpers/http-status.ts'
import { startMoto } from './helpers/moto.ts'
import { bearer } from './helpers/tokens.ts'

const moto = await startMoto(t)

t.test('20 concurrent requests for one assignment give 20 consistent grants and exactly one assignment', async (t) => {
  const { app, countAssignments } = await build(t, moto, { awsLike: true })

  const responses = await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      app.inject({
        method: 'POST',
        url: '/grants',
        headers: bearer(),
        payload: grantBody({ ticketId: `CHG00001${String(i).padStart(2, '0')}` }),
      }),
    ),
  )

  expectStatuses(t, responses, 201, 'every request answered 201')
  t.equal(new Set(responses.map((r) => r.json().id)).size, 20)
  t.equal(await countAssignments('alice', PROD, 'AdministratorAccess'), 1)
})

t.test('20 concurrent endings remove the assignment exactly once, after the last', async (t) => {
  const { app, countAssignments } = await build(t, moto, { awsLike: true })
  const ids: string[] = []
  for (let i = 0; i < 20; i++) {
    ids.push((await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() })).json().id)
  }

  const responses = await Promise.all(
    ids.map((id) => app.inject({ method: 'DELETE', url: `/grants/${id}`, headers: bearer() })),
  )

  expectStatuses(t, responses, 200, 'every ending answered 200')
  t.same(
    responses.map((r) => r.json().status).filter((s) => s !== 'revoked'),
    [],
  )
  t.equal(await countAssignments('alice', PROD, 'AdministratorAccess'), 0)
})

t.test('a DynamoDB transaction cancelled by a concurrent one is sent again', async (t) => {
  const { app, proxy, countAssignments } = await build(t, moto, { awsLike: true, proxy: true })
  proxy?.inject('TransactWriteItems', 'transaction-conflict', 2)

  const response = await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() })

  expectStatus(t, response, 201)
  t.equal(proxy?.injected['transaction-conflict'], 2)
  t.equal(await countAssignments('alice', PROD, 'AdministratorAccess'), 1)
})

t.test(
  'a lease another process still holds, or left behind when it died, is waited for or taken over, never ignored',
  async (t) => {
    const { app, clock, clients, seeded, hasAssignment } = await build(t, moto, { awsLike: true })
    const doc = DynamoDBDocumentClient.from(clients.dynamo)
    const target = {
      userId: seeded.userIds.alice as string,
      accountId: PROD,
      permissionSetArn: seeded.permissionSetArns.AdministratorAccess as string,
    }
    const leftBy = async (owner: string, until: number) =>
      doc.send(
        new PutCommand({
          TableName: 'jit-grants',
          Item: {
            ...coverageKey(target),
            kind: 'coverage',
            target,
            assignment: 'absent',
            leaseOwner: owner,
            leaseUntil: until,
          },
        }),
      )

    // Held by a live process: the grant's own record cannot take it, so the request waits, then leaves the work to the sweep.
    await leftBy('another-process', clock.now().getTime() + 60_000)
    const waiting = await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() })
    expectStatus(t, waiting, 202)
    t.equal(waiting.json().status, 'provisioning')
    t.notOk(await hasAssignment('alice', PROD, 'AdministratorAccess'), "nothing done under another process's lease")

    // That process died: once its lease has run out, the sweep takes it over and finishes the grant.
    clock.advanceMinutes(2)
    const swept = await app.inject({ method: 'POST', url: '/revocations', headers: bearer() })
    t.match(swept.json(), { activated: 1, failed: 0 })
    t.ok(await hasAssignment('alice', PROD, 'AdministratorAccess'))

    // A lease left behind long ago does not hold up a new grant on another assignment either.
    const readOnly = { ...target, permissionSetArn: seeded.permissionSetArns.ReadOnlyAccess as string }
    await doc.send(
      new PutCommand({
        TableName: 'jit-grants',
        Item: {
          ...coverageKey(readOnly),
          kind: 'coverage',
          target: readOnly,
          assignment: 'absent',
          leaseOwner: 'dead-process',
          leaseUntil: clock.now().getTime() - 1,
        },
      }),
    )
    const immediate = await app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: grantBody({ permissionSet: 'ReadOnlyAccess' }),
    })
    expectStatus(t, immediate, 201)
    t.equal(immediate.json().status, 'active')
    t.ok(await hasAssignment('alice', PROD, 'ReadOnlyAccess'))
  },
)

t.test(
  "a grant that arrives while the last holder's assignment is being removed gets it back; the ended grant says so",
  async (t) => {
    const { app, clock, proxy, hasAssignment } = await build(t, moto, { awsLike: true, proxy: true })
    const first = (
      await app.inject({
        method: 'POST',
        url: '/grants',
        headers: bearer(),
        payload: grantBody({ durationMinutes: 15 }),
      })
    ).json()
    t.equal(first.status, 'active')
    clock.advanceMinutes(15)

    // The sweep removes the assignment; while the removal is under way, a new grant records itself as a holder.
    const deletion = proxy!.holdNext('DeleteAccountAssignment')
    const sweeping = app.inject({ method: 'POST', url: '/revocations', headers: bearer() })
    await deletion.arrived
    const transactionsBefore = proxy!.timings.filter((call) => call.operation === 'TransactWriteItems').length
    const second = app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: grantBody({ ticketId: 'CHG0005678' }),
    })
    while (proxy!.timings.filter((call) => call.operation === 'TransactWriteItems').length === transactionsBefore)
      await new Promise((resolve) => setTimeout(resolve, 5))
    deletion.release()

    const swept = (await sweeping).json()
    t.match(swept, { failed: 0 })
    let created = (await second).json()
    let revoked = swept.revoked
    if (created.status === 'provisioning' || swept.remaining > 0) {
      // On a loaded machine one side stopped waiting for the other's lease: the request's grant is left
      // provisioning, or the sweep leaves the ended grant to its next run. The sweep after the grace finishes both.
      clock.advance(PROVISIONING_GRACE_MS)
      const next = (await app.inject({ method: 'POST', url: '/revocations', headers: bearer() })).json()
      t.match(next, { failed: 0, remaining: 0 })
      revoked += next.revoked
      created = (await app.inject({ method: 'GET', url: `/grants/${created.id}`, headers: bearer() })).json()
    }
    t.equal(revoked, 1, 'the ended grant was revoked, once')
    t.equal(created.status, 'active')
    t.ok(await hasAssignment('alice', PROD, 'AdministratorAccess'), 'the new grant has its access')

    const ended = (
      await app.inject({ method: 'GET', url: `/audit?grantId=${first.id}&action=grant.expired`, headers: bearer() })
    ).json()
    t.equal(ended.items.length, 1)
    t.equal(ended.items[0].detail, 'account assignment kept: another active grant still covers it')

    await app.inject({ method: 'DELETE', url: `/grants/${created.id}`, headers: bearer() })
    t.notOk(await hasAssignment('alice', PROD, 'AdministratorAccess'), 'removed with its last holder')
  },
)

t.test(
  'a creation that waited past its lease is never sent: the process that took the lease over may already have concluded it was not',
  async (t) => {
    // One creation slot, held by bob's creation (its status poll held at the proxy), so that alice's creation
    // waits in this process after its intent is recorded, while its lease runs out.
    const { app, clock, proxy, clients, seeded, hasAssignment } = await build(t, moto, {
      awsLike: true,
      proxy: true,
      maxConcurrentCreations: 1,
      requestTimeoutMs: 30_000,
    })
    const doc = DynamoDBDocumentClient.from(clients.dynamo)
    proxy!.inject('CreateAccountAssignment', 'report-in-progress', 1)
    const bobsPoll = proxy!.holdNext('DescribeAccountAssignmentCreationStatus')
    const bob = app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: grantBody({ userName: 'bob', ticketId: 'CHG0007001' }),
    })
    await bobsPoll.arrived

    const alice = app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: grantBody({ durationMinutes: 1, ticketId: 'CHG0007002' }),
    })
    const aliceTarget = {
      userId: seeded.userIds.alice as string,
      accountId: PROD,
      permissionSetArn: seeded.permissionSetArns.AdministratorAccess as string,
    }
    const intended = async () =>
      (await doc.send(new GetCommand({ TableName: 'jit-grants', Key: coverageKey(aliceTarget), ConsistentRead: true })))
        .Item?.assignment === 'creating'
    while (!(await intended())) await new Promise((resolve) => setTimeout(resolve, 10))

    // Alice's grant and lease run out; the sweep takes the lease over, finds no assignment and ends the grant.
    clock.advanceMinutes(2)
    t.match((await app.inject({ method: 'POST', url: '/revocations', headers: bearer() })).json(), { failed: 0 })
    bobsPoll.release()
    await bob
    const aliceGrant = (await alice).json()

    t.notOk(await hasAssignment('alice', PROD, 'AdministratorAccess'), 'no assignment outlives the ended grant')
    t.equal(proxy!.calls.CreateAccountAssignment, 1, "only bob's creation was sent")
    // The sweep cannot know that alice's creation never left: it gives it up once an accepted one would show.
    clock.advanceMinutes(4)
    t.match((await app.inject({ method: 'POST', url: '/revocations', headers: bearer() })).json(), {
      failed: 0,
      remaining: 0,
    })
    t.equal(
      (await app.inject({ method: 'GET', url: `/grants/${aliceGrant.id}`, headers: bearer() })).json().status,
      'expired',
    )
    t.notOk(await hasAssignment('alice', PROD, 'AdministratorAccess'))
  },
)

t.test('a creation that waited until its lease was nearly over renews the lease before it is sent', async (t) => {
  const { app, clock, proxy, clients, seeded } = await build(t, moto, {
    awsLike: true,
    proxy: true,
    maxConcurrentCreations: 1,
    requestTimeoutMs: 30_000,
  })
  const doc = DynamoDBDocumentClient.from(clients.dynamo)
  proxy!.inject('CreateAccountAssignment', 'report-in-progress', 1)
  const bobsPoll = proxy!.holdNext('DescribeAccountAssignmentCreationStatus')
  const bob = app.inject({
    method: 'POST',
    url: '/grants',
    headers: bearer(),
    payload: grantBody({ userName: 'bob', ticketId: 'CHG0007003' }),
  })
  await bobsPoll.arrived

  const alice = app.inject({
    method: 'POST',
    url: '/grants',
    headers: bearer(),
    payload: grantBody({ ticketId: 'CHG0007004' }),
  })
  const aliceTarget = {
    userId: seeded.userIds.alice as string,
    accountId: PROD,
    permissionSetArn: seeded.permissionSetArns.AdministratorAccess as string,
  }
  const coverage = async () =>
    (await doc.send(new GetCommand({ TableName: 'jit-grants', Key: coverageKey(aliceTarget), ConsistentRead: true })))
      .Item
  while ((await coverage())?.assignment !== 'creating') await new Promise((resolve) => setTimeout(resolve, 10))

  // 45 of the lease's 60 seconds pass while the creation waits for its slot: less than the margin is left.
  clock.advanceMinutes(0.75)
  const from = proxy!.timings.length
  bobsPoll.release()
  await bob
  t.equal((await alice).json().status, 'active')
  const after = proxy!.timings.slice(from).map((call) => call.operation)
  t.ok(
    after.indexOf('UpdateItem') >= 0 && after.indexOf('UpdateItem') < after.indexOf('CreateAccountAssignment'),
    `the lease was renewed before the creation left: ${after.join(', ')}`,
  )
  t.equal(proxy!.calls.CreateAccountAssignment, 2)
})
