import { createHash } from 'node:crypto'
import { GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb'
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb'
import { stringify } from 'safe-stable-stringify'
import t from 'tap'
import { newId } from '../src/core/ids.ts'
import { build, grantBody, PROD, STAGING } from './helpers/app.ts'
import { startMoto } from './helpers/moto.ts'
import { bearer, mintToken } from './helpers/tokens.ts'

const moto = await startMoto(t)

t.test('GET /audit tells a grant’s whole story with ticket and actor', async (t) => {
  const { app, clock } = await build(t, moto)
  const workflow = mintToken({ sub: 'servicenow-workflow' })
  await app.inject({
    method: 'POST',
    url: '/grants',
    headers: bearer(workflow),
    payload: grantBody({ userName: 'dave' }),
  })
  const grant = (
    await app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(workflow),
      payload: grantBody({ durationMinutes: 1 }),
    })
  ).json()
  clock.advanceMinutes(2)
  await app.inject({ method: 'POST', url: '/revocations', headers: bearer(mintToken({ sub: 'eventbridge' })) })

  const story = (await app.inject({ method: 'GET', url: '/audit?ticketId=CHG0001234', headers: bearer() })).json()

  t.same(
    story.items.map((e: { action: string; actor: string }) => [e.action, e.actor]),
    [
      ['grant.expired', 'system:sweep'],
      ['grant.revoke_requested', 'system:sweep'],
      ['grant.activated', 'servicenow-workflow'],
      ['grant.requested', 'servicenow-workflow'],
      ['grant.denied', 'servicenow-workflow'],
    ],
  )
  for (const event of story.items) {
    t.match(event, {
      ticketId: 'CHG0001234',
      accountId: PROD,
      permissionSet: 'AdministratorAccess',
      at: String,
      id: String,
      detail: String,
    })
  }
  t.equal(story.items[0].grantId, grant.id)
  t.equal(story.items[0].userName, 'alice')
  t.equal(story.items[4].userName, 'dave')
})

t.test('audit filters combine and time bounds are inclusive', async (t) => {
  const { app, clock } = await build(t, moto)
  const start = clock.now()
  const alice = (
    await app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(mintToken({ sub: 'portal' })),
      payload: grantBody(),
    })
  ).json()
  clock.advanceMinutes(10)
  const middle = clock.now()
  const bob = (
    await app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: grantBody({ userName: 'bob', accountId: STAGING, ticketId: 'INC0000042' }),
    })
  ).json()
  clock.advanceMinutes(10)
  await app.inject({ method: 'DELETE', url: `/grants/${alice.id}`, headers: bearer(mintToken({ sub: 'security' })) })

  const query = async (qs: string) =>
    (await app.inject({ method: 'GET', url: `/audit?${qs}`, headers: bearer() })).json().items as {
      action: string
      grantId: string
    }[]

  t.same(
    (await query(`grantId=${bob.id}`)).map((e) => e.action),
    ['grant.activated', 'grant.requested'],
  )
  t.same(
    (await query('actor=security')).map((e) => e.action),
    ['grant.revoked', 'grant.revoke_requested'],
  )
  t.same(
    (await query('actor=portal&action=grant.requested')).map((e) => e.grantId),
    [alice.id],
  )
  t.same(
    (await query(`accountId=${STAGING}&action=grant.activated`)).map((e) => e.grantId),
    [bob.id],
  )
  t.same(
    (await query('userName=alice&action=grant.revoked')).map((e) => e.grantId),
    [alice.id],
  )
  t.equal(
    (await query(`from=${middle.toISOString()}&to=${middle.toISOString()}`)).length,
    2,
    'bob’s two events at exactly that instant',
  )
  t.equal((await query(`to=${start.toISOString()}`)).length, 2, 'alice’s two events at the start')
  t.equal((await query(`from=${new Date(middle.getTime() + 1).toISOString()}`)).length, 2, 'only the revocation')
  t.equal((await query('userName=nobody')).length, 0)
})

t.test(
  'an event written before correlationId was recorded still verifies, in a chain with events that have one',
  async (t) => {
    const { app, clients, clock } = await build(t, moto)
    await app.inject({
      method: 'POST',
      url: '/grants',
      headers: { ...bearer(), 'x-request-id': 'before-1' },
      payload: grantBody(),
    })
    const head = unmarshall(
      (
        await clients.dynamo.send(
          new GetItemCommand({ TableName: 'jit-grants', Key: { pk: { S: 'audit-chain#head' } }, ConsistentRead: true }),
        )
      ).Item ?? {},
    )
    clock.advance(1000)
    // The event as the service wrote it before correlationId existed: these fields were all that was hashed.
    const old = {
      seq: Number(head.seq) + 1,
      prevHash: String(head.hash),
      id: newId(clock),
      at: clock.now().toISOString(),
      action: 'grant.revoke_requested',
      actor: 'security',
      grantId: 'g-old',
      userName: 'alice',
      accountId: PROD,
      permissionSet: 'AdministratorAccess',
      ticketId: 'CHG0001234',
      detail: 'written by an earlier version',
      requestId: 'r-old',
    }
    const hash = createHash('sha256')
      .update(stringify(old) ?? '')
      .digest('hex')
    await clients.dynamo.send(
      new PutItemCommand({
        TableName: 'jit-audit',
        Item: marshall({ pk: `event#${old.id}`, stream: 'all', ...old, hash }),
      }),
    )
    await clients.dynamo.send(
      new PutItemCommand({ TableName: 'jit-grants', Item: marshall({ pk: 'audit-chain#head', seq: old.seq, hash }) }),
    )
    clock.advance(1000)
    await app.inject({
      method: 'POST',
      url: '/grants',
      headers: { ...bearer(), 'x-request-id': 'after-1' },
      payload: grantBody({ userName: 'bob' }),
    })

    const verified = (await app.inject({ method: 'GET', url: '/audit/verify', headers: bearer() })).json()
    const events = (await app.inject({ method: 'GET', url: '/audit', headers: bearer() })).json().items

    t.match(verified, { ok: true, events: 5 }, JSON.stringify(verified))
    t.same(
      events.map((event: { seq: number; correlationId: string | null }) => [event.seq, event.correlationId]),
      [
        [5, 'after-1'],
        [4, 'after-1'],
        [3, null],
        [2, 'before-1'],
        [1, 'before-1'],
      ],
    )
  },
)
