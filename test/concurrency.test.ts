import t from 'tap'
import { build, grantBody, PROD } from './helpers/app.ts'
import { startMoto } from './helpers/moto.ts'
import { bearer } from './helpers/tokens.ts'

const moto = await startMoto(t)

t.test('20 concurrent requests for one assignment give 20 consistent grants and exactly one assignment', async (t) => {
  const { app, countAssignments } = await build(t, moto)

  const responses = await Promise.all(Array.from({ length: 20 }, (_, i) =>
    app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody({ ticketId: `CHG00001${String(i).padStart(2, '0')}` }) })))

  t.same(responses.map((r) => r.statusCode).filter((s) => s !== 201), [], 'every request answered 201')
  t.equal(new Set(responses.map((r) => r.json().id)).size, 20)
  t.equal(await countAssignments('alice', PROD, 'AdministratorAccess'), 1)
})

t.test('20 concurrent endings remove the assignment exactly once, after the last', async (t) => {
  const { app, countAssignments } = await build(t, moto)
  const ids: string[] = []
  for (let i = 0; i < 20; i++) {
    ids.push((await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() })).json().id)
  }

  const responses = await Promise.all(ids.map((id) => app.inject({ method: 'DELETE', url: `/grants/${id}`, headers: bearer() })))

  t.same(responses.map((r) => r.statusCode).filter((s) => s !== 200), [], 'every ending answered 200')
  t.same(responses.map((r) => r.json().status).filter((s) => s !== 'revoked'), [])
  t.equal(await countAssignments('alice', PROD, 'AdministratorAccess'), 0)
})

t.test('a DynamoDB transaction cancelled by a concurrent one is sent again', async (t) => {
  const { app, proxy, countAssignments } = await build(t, moto, { proxy: true })
  proxy?.inject('TransactWriteItems', 'transaction-conflict', 2)

  const response = await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() })

  t.equal(response.statusCode, 201)
  t.equal(proxy?.injected['transaction-conflict'], 2)
  t.equal(await countAssignments('alice', PROD, 'AdministratorAccess'), 1)
})
