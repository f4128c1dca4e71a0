import t from 'tap'
import { build, grantBody, PROD, STAGING } from './helpers/app.ts'
import { startMoto } from './helpers/moto.ts'
import { bearer } from './helpers/tokens.ts'

const moto = await startMoto(t)
const sweepRun = { actor: 'system:sweep', triggeredBy: 'test' }

t.test(
  'a sweep that finds another process sweeping past its wait does nothing, and the one sweeping ends the grant',
  async (t) => {
    const { instances, clock, proxy, hasAssignment } = await build(t, moto, {
      instances: 2,
      proxy: true,
      sweepLeaseWaitMs: 0,
    })
    const [first, second] = instances as [(typeof instances)[number], (typeof instances)[number]]
    const created = await first.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: grantBody({ durationMinutes: 30 }),
    })
    t.equal(created.statusCode, 201, created.body)
    clock.advanceMinutes(31)
    // The first sweep is held at its first page of due items, with the lease taken.
    const held = proxy?.holdNext('Query')

    const sweeping = first.runSweep(sweepRun)
    await held?.arrived
    const skipped = await second.runSweep(sweepRun)
    held?.release()
    const swept = await sweeping

    t.match(skipped, { revoked: 0, remaining: 0, failed: 0 }, 'the second process found the lease taken')
    t.match(swept, { revoked: 1, failed: 0 })
    t.notOk(await hasAssignment('alice', PROD, 'AdministratorAccess'))
  },
)

t.test('a sweep started while the run before finishes waits for its lease, then sweeps', async (t) => {
  const { instances, clock, proxy } = await build(t, moto, { instances: 2, proxy: true, sweepLeaseWaitMs: 10_000 })
  const [first, second] = instances as [(typeof instances)[number], (typeof instances)[number]]
  for (const accountId of [PROD, STAGING]) {
    const created = await first.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: grantBody({ accountId, durationMinutes: 30 }),
    })
    t.equal(created.statusCode, 201, created.body)
  }
  clock.advanceMinutes(31)
  // The first run is held at its first page with the lease taken, as a run overrunning its minute is.
  const held = proxy?.holdNext('Query')
  const sweeping = first.runSweep(sweepRun)
  await held?.arrived
  const queriesBefore = proxy?.calls.Query ?? 0
  const waiting = second.runSweep(sweepRun)
  await new Promise((resolve) => setTimeout(resolve, 600))
  t.equal(proxy?.calls.Query ?? 0, queriesBefore, 'the second run has not started: it waits for the lease')
  held?.release()
  const [swept, next] = await Promise.all([sweeping, waiting])

  t.match(swept, { revoked: 2, failed: 0 })
  t.match(next, { revoked: 0, failed: 0 }, 'nothing left for it')
  t.ok((proxy?.calls.Query ?? 0) > queriesBefore + 1, 'but it ran: it read the due index once the lease was given up')
})

t.test('the lease is given up when a sweep ends, so the next run, from any process, sweeps', async (t) => {
  const { instances, clock } = await build(t, moto, { instances: 2 })
  const [first, second] = instances as [(typeof instances)[number], (typeof instances)[number]]
  const created = await first.inject({
    method: 'POST',
    url: '/grants',
    headers: bearer(),
    payload: grantBody({ durationMinutes: 30 }),
  })
  t.equal(created.statusCode, 201, created.body)

  await first.runSweep(sweepRun)
  clock.advanceMinutes(31)
  const swept = await second.runSweep(sweepRun)

  t.match(swept, { revoked: 1 })
})

t.test('a lease whose holder died is taken over once its time has run out', async (t) => {
  const { app, clock } = await build(t, moto, { sweepLeaseWaitMs: 0 })
  const created = await app.inject({
    method: 'POST',
    url: '/grants',
    headers: bearer(),
    payload: grantBody({ durationMinutes: 30 }),
  })
  t.equal(created.statusCode, 201, created.body)
  const { DynamoDBDocumentClient, UpdateCommand } = await import('@aws-sdk/lib-dynamodb')
  const { createAwsClients } = await import('../src/adapters/aws.ts')
  const doc = DynamoDBDocumentClient.from(createAwsClients({ region: 'us-east-1', endpoint: moto.endpoint }).dynamo)
  clock.advanceMinutes(31)
  // A process that took the lease for a minute and died.
  await doc.send(
    new UpdateCommand({
      TableName: 'jit-grants',
      Key: { pk: 'sweep#lease' },
      UpdateExpression: 'SET leaseOwner = :o, leaseUntil = :u',
      ExpressionAttributeValues: { ':o': 'dead', ':u': clock.now().getTime() + 60_000 },
    }),
  )

  t.match(await app.runSweep(sweepRun), { revoked: 0 }, 'held: nothing swept')
  clock.advanceMinutes(2)
  t.match(await app.runSweep(sweepRun), { revoked: 1 }, 'run out: taken over')
})

t.test('the sweep reads its next page of due grants while the page before is still under way', async (t) => {
  // A page of one: each grant's removal is on a page of its own. The held call must not time out meanwhile.
  const { app, clock, proxy } = await build(t, moto, { proxy: true, sweepPageSize: 1, requestTimeoutMs: 10_000 })
  for (const body of [
    grantBody({ durationMinutes: 30 }),
    grantBody({ durationMinutes: 30, accountId: STAGING }),
    grantBody({ durationMinutes: 30, userName: 'bob' }),
  ]) {
    const created = await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: body })
    t.equal(created.statusCode, 201, created.body)
  }
  clock.advanceMinutes(31)
  const removals = () => proxy?.calls.DeleteAccountAssignment ?? 0
  // The first removal is held: its page is not done until it is released.
  const held = proxy?.holdNext('DeleteAccountAssignment')
  const sweeping = app.runSweep(sweepRun)
  await held?.arrived
  const waitUntil = Date.now() + 3000
  while (removals() < 3 && Date.now() < waitUntil) await new Promise((resolve) => setTimeout(resolve, 20))
  t.equal(removals(), 3, 'the grants of the later pages were removed while the first was held')
  held?.release()

  t.match(await sweeping, { revoked: 3, failed: 0 })
})
