import { Writable } from 'node:stream'
import t from 'tap'
import { buildApp, type ServiceAdapters } from '../src/app.ts'
import { systemClock } from '../src/core/clock.ts'
import { parsePolicy } from '../src/core/policy.ts'
import { DEMO_POLICY } from '../src/sandbox/seed.ts'
import { bearer, mintToken, TEST_SECRET } from './helpers/tokens.ts'

/** Internal detail an error may carry (a table, a key, an ARN): the caller never sees it, whatever it is. */
const INTERNAL =
  'table jit-grants-internal, key grant#42, arn:aws:dynamodb:us-east-1:111111111111:table/jit-grants-internal'

/** A store whose read fails with an error no layer maps: a bug, or an AWS SDK error that escaped its adapter. */
const failingStore = new Proxy(
  {},
  { get: () => () => Promise.reject(new Error(`unexpected failure near ${INTERNAL}`)) },
) as never
const unused = new Proxy({}, { get: () => () => Promise.reject(new Error('not used here')) }) as never

t.test(
  'an unexpected error answers a 500 problem with a fixed detail: what the error said goes only to the log',
  async (t) => {
    const lines: string[] = []
    const stream = new Writable({
      write: (chunk, _encoding, done) => {
        lines.push(chunk.toString())
        done()
      },
    })
    const adapters: ServiceAdapters = {
      store: failingStore,
      auditLog: unused,
      identityCenter: unused,
      directory: unused,
      notifier: { error: () => Promise.resolve(), flush: () => Promise.resolve() },
      idempotency: unused,
      cursors: unused,
    }
    const app = await buildApp({
      ...adapters,
      clock: systemClock,
      policy: parsePolicy(DEMO_POLICY),
      jwt: { secret: TEST_SECRET },
      maxDurationMinutes: 720,
      sweepBudgetMs: 1000,
      logger: { level: 'error', stream },
    })
    t.teardown(() => app.close())

    const response = await app.inject({
      method: 'GET',
      url: '/grants/019a7c1e-5b2a-7c3d-9e4f-0a1b2c3d4e5f',
      headers: bearer(mintToken({ issuer: undefined, audience: undefined })),
    })

    t.equal(response.statusCode, 500, response.body)
    t.match(response.headers['content-type'], /^application\/problem\+json/)
    t.match(response.json(), {
      code: 'INTERNAL_ERROR',
      detail: 'An unexpected error occurred; it has been logged with this request id',
      requestId: String,
    })
    t.notMatch(
      response.body,
      /jit-grants-internal|arn:aws|unexpected failure/,
      'nothing of the error reaches the caller',
    )
    t.match(lines.join(''), 'unexpected failure near', 'the error is in the log, under the request id')
    t.match(lines.join(''), response.json().requestId)
  },
)
