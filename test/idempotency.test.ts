import t from 'tap'
import { build, grantBody, PROD } from './helpers/app.ts'
import { expectStatus } from './helpers/http-status.ts'
import { startMoto } from './helpers/moto.ts'
import { bearer, mintToken } from './helpers/tokens.ts'

const moto = await startMoto(t)
const withKey = (key: string, token?: string) => ({ ...bearer(token), 'idempotency-key': key })

t.test('the same key and body replay the first answer and make one grant', async (t) => {
  const { app, countAssignments } = await build(t, moto)

  const first = await app.inject({
    method: 'POST',
    url: '/grants',
    headers: withKey('approval-1'),
    payload: grantBody(),
  })
  const again = await app.inject({
    method: 'POST',
    url: '/grants',
    headers: withKey('approval-1'),
    payload: grantBody(),
  })

  expectStatus(t, first, 201)
  expectStatus(t, again, 201)
  t.same(again.json(), first.json())
  t.equal(again.headers['idempotent-replayed'], 'true')
  t.equal(again.headers.location, first.headers.location)
  t.equal((await app.inject({ method: 'GET', url: '/grants', headers: bearer() })).json().items.length, 1)
  t.equal(
    (await app.inject({ method: 'GET', url: '/audit?action=grant.requested', headers: bearer() })).json().items.length,
    1,
  )
  t.equal(await countAssignments('alice', PROD, 'AdministratorAccess'), 1)
})

t.test('the same key with a different body is a 409 and changes nothing', async (t) => {
  const { app } = await build(t, moto)
  await app.inject({ method: 'POST', url: '/grants', headers: withKey('approval-2'), payload: grantBody() })

  const reused = await app.inject({
    method: 'POST',
    url: '/grants',
    headers: withKey('approval-2'),
    payload: grantBody({ durationMinutes: 90 }),
  })

  expectStatus(t, reused, 409)
  t.equal(reused.json().code, 'IDEMPOTENCY_KEY_REUSED')
  t.equal((await app.inject({ method: 'GET', url: '/grants', headers: bearer() })).json().items.length, 1)
})

t.test('a replayed refusal stays a refusal: the answer, not the outcome of a new attempt', async (t) => {
  const { app } = await build(t, moto)
  const denied = await app.inject({
    method: 'POST',
    url: '/grants',
    headers: withKey('approval-3'),
    payload: grantBody({ userName: 'dave' }),
  })
  const replay = await app.inject({
    method: 'POST',
    url: '/grants',
    headers: withKey('approval-3'),
    payload: grantBody({ userName: 'dave' }),
  })
  expectStatus(t, denied, 403)
  expectStatus(t, replay, 403)
  t.same(replay.json(), denied.json())
  t.equal(
    (await app.inject({ method: 'GET', url: '/audit?action=grant.denied', headers: bearer() })).json().items.length,
    1,
    'decided once',
  )
})

t.test('keys are scoped to the token subject', async (t) => {
  const { app } = await build(t, moto)
  const one = await app.inject({
    method: 'POST',
    url: '/grants',
    headers: withKey('shared-key', mintToken({ sub: 'workflow-a' })),
    payload: grantBody(),
  })
  const two = await app.inject({
    method: 'POST',
    url: '/grants',
    headers: withKey('shared-key', mintToken({ sub: 'workflow-b' })),
    payload: grantBody(),
  })
  expectStatus(t, one, 201)
  expectStatus(t, two, 201)
  t.not(one.json().id, two.json().id)
})

t.test(
  'concurrent requests with one key make one grant; the others wait their turn or get the same grant',
  async (t) => {
    const { app, countAssignments } = await build(t, moto)
    const responses = await Promise.all(
      Array.from({ length: 10 }, () =>
        app.inject({ method: 'POST', url: '/grants', headers: withKey('approval-4'), payload: grantBody() }),
      ),
    )

    const granted = responses.filter((r) => r.statusCode === 201)
    const busy = responses.filter((r) => r.statusCode === 409)
    t.equal(granted.length + busy.length, 10, 'every answer is a 201 or a 409')
    t.ok(granted.length >= 1)
    t.equal(new Set(granted.map((r) => r.json().id)).size, 1, 'one grant id')
    for (const response of busy) {
      t.equal(response.json().code, 'REQUEST_IN_PROGRESS')
      t.equal(response.headers['retry-after'], '1')
    }
    t.equal((await app.inject({ method: 'GET', url: '/grants', headers: bearer() })).json().items.length, 1)
    t.equal(await countAssignments('alice', PROD, 'AdministratorAccess'), 1)
  },
)

t.test('a retry after a 503 resumes the grant the failed attempt recorded', async (t) => {
  const { app, proxy } = await build(t, moto, { proxy: true })
  proxy?.inject('CreateAccountAssignment', 'server-error')
  const failed = await app.inject({
    method: 'POST',
    url: '/grants',
    headers: withKey('approval-5'),
    payload: grantBody(),
  })
  expectStatus(t, failed, 503)

  proxy?.clear()
  const retry = await app.inject({
    method: 'POST',
    url: '/grants',
    headers: withKey('approval-5'),
    payload: grantBody(),
  })

  expectStatus(t, retry, 201)
  t.equal(retry.json().id, failed.json().grantId, 'the same grant, not a second one')
  t.equal(retry.json().status, 'active')
  t.equal((await app.inject({ method: 'GET', url: '/grants', headers: bearer() })).json().items.length, 1)
})

t.test(
  'a request that died after recording its intent is taken over by a retry, with no second grant or assignment',
  async (t) => {
    const { app, clock, proxy, countAssignments } = await build(t, moto, { proxy: true })
    proxy?.inject('CreateAccountAssignment', 'hang', 1)
    const dying = app.inject({ method: 'POST', url: '/grants', headers: withKey('approval-6'), payload: grantBody() })
    await waitFor(() => (proxy?.injected.hang ?? 0) === 1)

    const tooSoon = await app.inject({
      method: 'POST',
      url: '/grants',
      headers: withKey('approval-6'),
      payload: grantBody(),
    })
    expectStatus(t, tooSoon, 409)
    t.equal(tooSoon.json().code, 'REQUEST_IN_PROGRESS')

    clock.advance(61_000)
    const retry = await app.inject({
      method: 'POST',
      url: '/grants',
      headers: withKey('approval-6'),
      payload: grantBody(),
    })

    expectStatus(t, retry, 201)
    t.equal(retry.json().status, 'active')
    proxy?.releaseHung()
    await dying
    const grants = (await app.inject({ method: 'GET', url: '/grants', headers: bearer() })).json().items
    t.equal(grants.length, 1)
    t.equal(grants[0].id, retry.json().id)
    t.equal(await countAssignments('alice', PROD, 'AdministratorAccess'), 1)
  },
)

t.test('DELETE with a key replays its answer', async (t) => {
  const { app } = await build(t, moto)
  const grant = (await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() })).json()
  const ended = await app.inject({ method: 'DELETE', url: `/grants/${grant.id}`, headers: withKey('end-1') })
  const again = await app.inject({ method: 'DELETE', url: `/grants/${grant.id}`, headers: withKey('end-1') })
  expectStatus(t, ended, 200)
  t.equal(again.headers['idempotent-replayed'], 'true')
  t.same(again.json(), ended.json())
})

t.test('a key that is too long or not printable is a 400', async (t) => {
  const { app } = await build(t, moto)
  for (const key of ['x'.repeat(256), 'tab\there']) {
    const response = await app.inject({ method: 'POST', url: '/grants', headers: withKey(key), payload: grantBody() })
    expectStatus(t, response, 400)
    t.equal(response.json().code, 'VALIDATION_FAILED')
  }
})

async function waitFor(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not reached')
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

t.test('a request whose key claim was stored but whose answer was lost still proceeds as the owner', async (t) => {
  const { app, proxy } = await build(t, moto, { proxy: true })
  proxy?.inject('PutItem', 'drop-after-upstream', 1)

  const response = await app.inject({
    method: 'POST',
    url: '/grants',
    headers: withKey('approval-7'),
    payload: grantBody(),
  })

  t.equal(proxy?.injected['drop-after-upstream'], 1)
  expectStatus(t, response, 201, 'not a 409 against its own claim')
})
