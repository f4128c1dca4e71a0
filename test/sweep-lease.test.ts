import t from 'tap'
import { build, grantBody, PROD } from './helpers/app.ts'
import { startMoto } from './helpers/moto.ts'
import { bearer } from './helpers/tokens.ts'

const moto = await startMoto(t)
const sweepRun = { actor: 'system:sweep', triggeredBy: 'test' }

t.test('a sweep started while another process sweeps does nothing, and the one sweeping ends the grant', async (t) => {
  const { instances, clock, proxy, hasAssignment } = await build(t, moto, { instances: 2, proxy: true })
  const [first, second] = instances as [(typeof instances)[number], (typeof instances)[number]]
  const created = await first.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody({ durationMinutes: 30 }) })
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
})

t.test('the lease is given up when a sweep ends, so the next run, from any process, sweeps', async (t) => {
  const { instances, clock } = await build(t, moto, { instances: 2 })
  const [first, second] = instances as [(typeof instances)[number], (typeof instances)[number]]
  const created = await first.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody({ durationMinutes: 30 }) })
  t.equal(created.statusCode, 201, created.body)

  await first.runSweep(sweepRun)
  clock.advanceMinutes(31)
  const swept = await second.runSweep(sweepRun)

  t.match(swept, { revoked: 1 })
})

t.test('a lease whose holder died is taken over once its time has run out', async (t) => {
  const { app, clock } = await build(t, moto)
  const created = await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody({ durationMinutes: 30 }) })
  t.equal(created.statusCode, 201, created.body)
  const { DynamoDBDocumentClient, UpdateCommand } = await import('@aws-sdk/lib-dynamodb')
  const { createAwsClients } = await import('../src/adapters/aws.ts')
  const doc = DynamoDBDocumentClient.from(createAwsClients({ region: 'us-east-1', endpoint: moto.endpoint }).dynamo)
  clock.advanceMinutes(31)
  // A process that took the lease for a minute and died.
  await doc.send(new UpdateCommand({ TableName: 'jit-grants', Key: { pk: 'sweep#lease' }, UpdateExpression: 'SET leaseOwner = :o, leaseUntil = :u', ExpressionAttributeValues: { ':o': 'dead', ':u': clock.now().getTime() + 60_000 } }))

  t.match(await app.runSweep(sweepRun), { revoked: 0 }, 'held: nothing swept')
  clock.advanceMinutes(2)
  t.match(await app.runSweep(sweepRun), { revoked: 1 }, 'run out: taken over')
})
