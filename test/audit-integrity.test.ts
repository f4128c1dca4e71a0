import { DeleteItemCommand, GetItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb'
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb'
import t from 'tap'
import { DynamoAuditChain } from '../src/adapters/dynamodb/audit-chain.ts'
import type { AuditEvent } from '../src/core/audit.ts'
import { build, grantBody } from './helpers/app.ts'
import { startMoto } from './helpers/moto.ts'
import { bearer } from './helpers/tokens.ts'

const moto = await startMoto(t)
type Event = AuditEvent & { seq: number; hash: string; prevHash: string }

async function eventsOldestFirst(app: Awaited<ReturnType<typeof build>>['app']): Promise<Event[]> {
  const page = (await app.inject({ method: 'GET', url: '/audit?limit=100', headers: bearer() })).json()
  return [...page.items].reverse()
}

t.test('every event is linked into one chain and verify recomputes it', async (t) => {
  const { app } = await build(t, moto)
  const grant = (await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() })).json()
  await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody({ userName: 'dave' }) })
  await app.inject({ method: 'DELETE', url: `/grants/${grant.id}`, headers: bearer() })

  const events = await eventsOldestFirst(app)
  t.same(
    events.map((e) => e.seq),
    [1, 2, 3, 4, 5],
  )
  t.equal(events[0]?.prevHash, '0'.repeat(64))
  for (let i = 1; i < events.length; i++)
    t.equal(events[i]?.prevHash, events[i - 1]?.hash, `event ${i + 1} links to event ${i}`)
  const verified = (await app.inject({ method: 'GET', url: '/audit/verify', headers: bearer() })).json()
  t.same(verified, { ok: true, events: 5, firstSeq: 1, head: events[4]?.hash, anchored: false })
})

t.test('an event edited directly in DynamoDB is named by verify', async (t) => {
  const { app, clients } = await build(t, moto)
  for (let i = 0; i < 3; i++)
    await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() })
  const events = await eventsOldestFirst(app)
  const target = events[2] as Event

  await clients.dynamo.send(
    new UpdateItemCommand({
      TableName: 'jit-audit',
      Key: { pk: { S: `event#${target.id}` } },
      UpdateExpression: 'SET actor = :someone',
      ExpressionAttributeValues: { ':someone': { S: 'someone-else' } },
    }),
  )
  const verified = (await app.inject({ method: 'GET', url: '/audit/verify', headers: bearer() })).json()

  t.match(verified, { ok: false, firstBadEventId: target.id, firstBadSeq: 3, reason: /changed/ })
})

t.test(
  'an event deleted directly is detected at the event after it, and a deleted last event against the head',
  async (t) => {
    const { app, clients } = await build(t, moto)
    for (let i = 0; i < 3; i++)
      await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() })
    const events = await eventsOldestFirst(app)
    const remove = (event: Event) =>
      clients.dynamo.send(new DeleteItemCommand({ TableName: 'jit-audit', Key: { pk: { S: `event#${event.id}` } } }))

    await remove(events[5] as Event)
    const tail = (await app.inject({ method: 'GET', url: '/audit/verify', headers: bearer() })).json()
    t.match(tail, { ok: false, firstBadEventId: null, firstBadSeq: 6, reason: /end are missing/ })

    await remove(events[1] as Event)
    const middle = (await app.inject({ method: 'GET', url: '/audit/verify', headers: bearer() })).json()
    t.match(middle, { ok: false, firstBadEventId: events[2]?.id, firstBadSeq: 3, reason: /missing/ })
  },
)

t.test('20 concurrent grants still give one valid chain', async (t) => {
  const { app } = await build(t, moto)
  const responses = await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      app.inject({
        method: 'POST',
        url: '/grants',
        headers: bearer(),
        payload: grantBody({ userName: i % 2 ? 'alice' : 'bob', ticketId: `CHG00002${String(i).padStart(2, '0')}` }),
      }),
    ),
  )
  t.same(
    responses.filter((r) => r.statusCode !== 201).map((r) => r.body),
    [],
  )

  const verified = (await app.inject({ method: 'GET', url: '/audit/verify', headers: bearer() })).json()
  t.match(verified, { ok: true, events: 40 })
  const seqs = (await eventsOldestFirst(app)).map((e) => e.seq).sort((a, b) => a - b)
  t.same(
    seqs,
    Array.from({ length: 40 }, (_, i) => i + 1),
    'no gaps, no duplicates',
  )
})

t.test('verify over a time range checks that range and links it to the head', async (t) => {
  const { app, clock } = await build(t, moto)
  await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() })
  clock.advanceMinutes(5)
  const from = clock.now().toISOString()
  await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() })
  const to = clock.now().toISOString()
  clock.advanceMinutes(5)
  await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() })

  const range = (
    await app.inject({ method: 'GET', url: `/audit/verify?from=${from}&to=${to}`, headers: bearer() })
  ).json()
  const open = (await app.inject({ method: 'GET', url: `/audit/verify?from=${from}`, headers: bearer() })).json()
  t.match(range, { ok: true, events: 2, firstSeq: 3 })
  t.match(open, { ok: true, events: 4, firstSeq: 3 })
})

t.test('audit records have no TTL and are never updated: the table receives only puts', async (t) => {
  const { app, proxy } = await build(t, moto, { proxy: true })
  const grant = (await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() })).json()
  await app.inject({ method: 'DELETE', url: `/grants/${grant.id}`, headers: bearer() })
  t.notOk(proxy?.calls.UpdateTimeToLive, 'no TTL set by the service')
  const events = (await app.inject({ method: 'GET', url: '/audit', headers: bearer() })).json().items
  t.ok(events.every((e: Record<string, unknown>) => !('ttl' in e)))
})

t.test(
  'an event whose id is already recorded is never overwritten, alone or with the state change it records',
  async (t) => {
    const { app, clients } = await build(t, moto)
    await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() })
    const before = await eventsOldestFirst(app)
    const recorded = before[0] as Event
    const chain = new DynamoAuditChain(DynamoDBDocumentClient.from(clients.dynamo), {
      grants: 'jit-grants',
      audit: 'jit-audit',
    })
    const rewritten = { ...recorded, actor: 'someone-else', detail: 'never happened' }
    const stateChange = {
      Put: {
        TableName: 'jit-grants',
        Item: { pk: 'grant#rewritten', kind: 'grant' },
        ConditionExpression: 'attribute_not_exists(pk)',
      },
    }

    await t.rejects(
      chain.write(rewritten, []),
      { name: 'AuditEventExistsError', message: new RegExp(recorded.id) },
      'a plain append',
    )
    await t.rejects(
      chain.write(rewritten, [stateChange]),
      { name: 'AuditEventExistsError' },
      'in a transaction with a state change',
    )

    t.same(await eventsOldestFirst(app), before, 'the log is as it was')
    t.notOk(
      (
        await clients.dynamo.send(
          new GetItemCommand({ TableName: 'jit-grants', Key: { pk: { S: 'grant#rewritten' } } }),
        )
      ).Item,
      'nor was the state change written',
    )
    t.match((await app.inject({ method: 'GET', url: '/audit/verify', headers: bearer() })).json(), {
      ok: true,
      events: 2,
    })
  },
)

t.test('an append sent again after it took effect (its answer lost) is recorded once', async (t) => {
  const { app, clients } = await build(t, moto)
  await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() })
  const before = await eventsOldestFirst(app)
  const chain = new DynamoAuditChain(DynamoDBDocumentClient.from(clients.dynamo), {
    grants: 'jit-grants',
    audit: 'jit-audit',
  })

  t.same(await chain.write(before[1] as Event, []), { written: true })

  t.same(await eventsOldestFirst(app), before)
})
