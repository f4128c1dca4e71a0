import t from 'tap'
import { IdentityCenterRateLimiter } from '../src/adapters/rate-limiter.ts'
import { withDeadline } from '../src/core/deadline.ts'
import { DeadlineExceededError } from '../src/core/errors.ts'
import { inBackground } from '../src/core/priority.ts'
import { build, grantBody, PROD, STAGING } from './helpers/app.ts'
import { expectStatuses } from './helpers/http-status.ts'
import { startMoto } from './helpers/moto.ts'
import { bearer } from './helpers/tokens.ts'

const moto = await startMoto(t)

/** The most calls that fell into any one-second window. */
function busiestSecond(times: number[]): number {
  let most = 0
  for (let i = 0; i < times.length; i++) {
    const start = times[i] as number
    most = Math.max(most, times.filter((time) => time >= start && time < start + 1000).length)
  }
  return most
}

const requests = () =>
  ['alice', 'bob'].flatMap((userName) =>
    [PROD, STAGING].flatMap((accountId) =>
      ['AdministratorAccess', 'ReadOnlyAccess'].map((permissionSet) =>
        grantBody({ userName, accountId, permissionSet }),
      ),
    ),
  )

t.test('every Identity Center call in the process keeps to the configured rate', async (t) => {
  const { app, proxy } = await build(t, moto, { proxy: true, identityCenterTps: 5 })
  const responses = await Promise.all(
    requests().map((payload) => app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload })),
  )

  expectStatuses(t, responses, 201)
  const times = proxy?.identityCenterCallTimes ?? []
  t.ok(times.length >= 16, `${times.length} Identity Center calls`)
  t.ok(
    busiestSecond(times) <= 7,
    `at most 5 per second plus the burst of 2: busiest second had ${busiestSecond(times)}`,
  )
})

t.test('an idle limiter lets a burst through at once, then spaces calls at the rate', async (t) => {
  const limiter = new IdentityCenterRateLimiter({ ratePerSecond: 4, maxConcurrentCreations: 10, burst: 2 })
  const started = Date.now()
  const times: number[] = []
  await Promise.all(Array.from({ length: 4 }, () => limiter.read(async () => void times.push(Date.now() - started))))
  const [first, second, third, fourth] = times as [number, number, number, number]
  t.ok(second - first < 100, `a grant's two calls are not held apart on an idle process (${second - first} ms)`)
  t.ok(third >= 200 && fourth - third >= 200, `after the burst, one call per 250 ms (${times.join(', ')} ms)`)
})

t.test('throttling answers slow the process down instead of failing grants', async (t) => {
  const { app, proxy } = await build(t, moto, { proxy: true, identityCenterTps: 20 })
  proxy?.enforceIdentityCenterQuota(4)

  const responses = await Promise.all(
    requests().map((payload) => app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload })),
  )

  t.ok((proxy?.injected.quota ?? 0) > 0, `${proxy?.injected.quota} calls throttled by the quota`)
  expectStatuses(t, responses, 201, 'every grant still succeeds')
})

t.test('the limiter halves its rate on throttling and recovers on success', async (t) => {
  const limiter = new IdentityCenterRateLimiter({ ratePerSecond: 10, maxConcurrentCreations: 10, readAttempts: 1 })
  const throttled = Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' })
  await t.rejects(limiter.read(() => Promise.reject(throttled)))
  t.equal(limiter.currentRate, 5)
  await t.rejects(limiter.read(() => Promise.reject(throttled)))
  t.equal(limiter.currentRate, 2.5)
  for (let i = 0; i < 20; i++) await limiter.read(async () => 'ok')
  t.equal(limiter.currentRate, 10, 'back to the configured rate, never above it')
})

t.test('at most 10 assignment creations are in flight at once', async (t) => {
  const limiter = new IdentityCenterRateLimiter({ ratePerSecond: 1000, maxConcurrentCreations: 10 })
  let inFlight = 0
  let most = 0
  await Promise.all(
    Array.from({ length: 30 }, () =>
      limiter.creation(async () => {
        inFlight++
        most = Math.max(most, inFlight)
        await new Promise((resolve) => setTimeout(resolve, 5))
        inFlight--
      }),
    ),
  )
  t.equal(most, 10)
})

t.test(
  'a caller whose deadline would pass while queued gives its turn up at once, and the queue behind it still runs',
  async (t) => {
    // Prepare: 2 calls per second and a burst of 2, so the fifth call of a burst would wait about 1.5 s.
    const limiter = new IdentityCenterRateLimiter({ ratePerSecond: 2, maxConcurrentCreations: 10, burst: 2 })
    const started = Date.now()
    const unbounded = Array.from({ length: 4 }, () => limiter.read(async () => 'served'))

    // Act: a call that must be done within 300 ms joins the back of the queue.
    const bounded = withDeadline(Date.now() + 300, () => limiter.read(async () => 'served'))

    // Assess: it is refused before its deadline, and the calls queued ahead of it are all still served.
    await t.rejects(bounded, DeadlineExceededError)
    t.ok(Date.now() - started < 1000, `refused in ${Date.now() - started} ms, not after waiting its turn`)
    t.same(await Promise.all(unbounded), ['served', 'served', 'served', 'served'])
    t.equal(
      await limiter.read(async () => 'after'),
      'after',
      'a caller refused does not break the queue for later ones',
    )
  },
)

t.test('a read is not retried when the backoff would end past its deadline: the last error stands', async (t) => {
  const limiter = new IdentityCenterRateLimiter({ ratePerSecond: 100, maxConcurrentCreations: 10, readAttempts: 5 })
  let attempts = 0
  const throttled = () => {
    attempts++
    return Promise.reject(
      Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException', $metadata: { httpStatusCode: 400 } }),
    )
  }

  await t.rejects(
    withDeadline(Date.now() + 20, () => limiter.read(throttled)),
    { name: 'ThrottlingException' },
  )
  t.equal(attempts, 1, 'no retry was started that could not finish in time')
  attempts = 0
  await t.rejects(limiter.read(throttled), { name: 'ThrottlingException' })
  t.equal(attempts, 5, 'without a deadline, every attempt is made')
})

t.test(
  "a request's call goes ahead of the sweep's calls queued before it: grants get the shared quota first",
  async (t) => {
    // Prepare: 5 calls per second, no burst to speak of, and a sweep with five calls already waiting.
    const limiter = new IdentityCenterRateLimiter({ ratePerSecond: 5, maxConcurrentCreations: 10, burst: 1 })
    const order: string[] = []
    const sweep = inBackground(() =>
      Promise.all(Array.from({ length: 5 }, (_, i) => limiter.read(async () => void order.push(`sweep ${i}`)))),
    )
    await new Promise((resolve) => setTimeout(resolve, 50))

    // Act: a grant's call arrives behind them.
    const started = Date.now()
    await limiter.read(async () => void order.push('grant'))
    const waited = Date.now() - started
    await sweep

    // Assess: it took the next token, not the sixth, and the sweep's calls were all still made.
    t.same(order, ['sweep 0', 'grant', 'sweep 1', 'sweep 2', 'sweep 3', 'sweep 4'])
    t.ok(waited < 400, `the grant waited ${waited} ms: one token's time, not the sweep's five`)
  },
)
