import t from 'tap'
import { build, grantBody } from './helpers/app.ts'
import { startMoto } from './helpers/moto.ts'
import { bearer } from './helpers/tokens.ts'

const moto = await startMoto(t)
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

t.test(
  'a caller’s x-request-id is kept as its correlation id: in the answer, the audit events and every log line, never as the request id',
  async (t) => {
    const { app, logLines } = await build(t, moto)
    const callerId = 'RITM0010042.attempt-1'

    const response = await app.inject({
      method: 'POST',
      url: '/grants',
      headers: { ...bearer(), 'x-request-id': callerId },
      payload: grantBody(),
    })

    t.equal(response.statusCode, 201, response.body)
    const requestId = response.headers['x-request-id'] as string
    t.match(requestId, UUID, 'the request id is the service’s own')
    t.equal(response.headers['x-correlation-id'], callerId, 'the caller’s id comes back as the correlation id')
    const events = (
      await app.inject({ method: 'GET', url: `/audit?grantId=${response.json().id}`, headers: bearer() })
    ).json().items
    t.same(
      events.map((event: { action: string; requestId: string; correlationId: string }) => [
        event.action,
        event.requestId,
        event.correlationId,
      ]),
      [
        ['grant.activated', requestId, callerId],
        ['grant.requested', requestId, callerId],
      ],
    )
    const lines = logLines.map((line) => JSON.parse(line)).filter((line) => line.reqId === requestId)
    t.ok(
      lines.some((line) => line.msg === 'incoming request'),
      'Fastify’s own lines are among them',
    )
    for (const line of lines) t.equal(line.correlationId, callerId, `log line '${line.msg}'`)
  },
)

t.test(
  'an x-request-id that is not a short printable token is ignored, and a valid one is echoed on problems too',
  async (t) => {
    const { app } = await build(t, moto)
    const refused = ['two words', 'a'.repeat(129), 'semi;colon', '<script>', 'quote"d', '']
    for (const value of refused) {
      const response = await app.inject({ method: 'GET', url: '/health', headers: { 'x-request-id': value } })
      t.match(response.headers['x-request-id'], UUID, JSON.stringify(value))
      t.notOk('x-correlation-id' in response.headers, `${JSON.stringify(value)} is not echoed`)
    }
    const twice = await app.inject({ method: 'GET', url: '/health', headers: { 'x-request-id': ['first', 'second'] } })
    t.notOk('x-correlation-id' in twice.headers, 'a header sent twice is not one id')

    const problem = await app.inject({
      method: 'POST',
      url: '/grants',
      headers: { ...bearer(), 'x-request-id': 'trace=4bf9+2a/b:c_d' },
      payload: grantBody({ durationMinutes: 0 }),
    })
    t.equal(problem.statusCode, 400, problem.body)
    t.equal(problem.headers['x-correlation-id'], 'trace=4bf9+2a/b:c_d')
    t.equal(
      problem.json().requestId,
      problem.headers['x-request-id'],
      'the problem body names the service’s request id',
    )
    t.match(problem.json().requestId, UUID)
  },
)

t.test('events of a request without a correlation id record null', async (t) => {
  const { app } = await build(t, moto)
  await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() })
  const events = (await app.inject({ method: 'GET', url: '/audit', headers: bearer() })).json().items
  t.equal(events.length, 2)
  for (const event of events) t.match(event, { requestId: UUID, correlationId: null }, event.action)
})
