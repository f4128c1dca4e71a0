import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import t from 'tap'
import { buildApp, type ServiceAdapters } from '../src/app.ts'
import { systemClock } from '../src/core/clock.ts'
import { parsePolicy } from '../src/core/policy.ts'
import { DEMO_POLICY } from '../src/sandbox/seed.ts'
import { withCommittedEndExample } from './helpers/contract.ts'
import { expectStatus } from './helpers/http-status.ts'

const ROOT = resolve(import.meta.dirname, '..')
const SWAGGER_UI_FILES = join(ROOT, 'node_modules', '@fastify', 'swagger-ui', 'static')

/** Serving the docs calls no adapter. */
const unused = new Proxy({}, { get: () => () => Promise.reject(new Error('no adapter is used by the docs')) }) as never
/** Closing the app waits for messages on their way: there are none. */
const silentNotifier = {
  error: () => Promise.reject(new Error('no adapter is used by the docs')),
  flush: () => Promise.resolve(),
}
const adapters: ServiceAdapters = {
  store: unused,
  auditLog: unused,
  identityCenter: unused,
  directory: unused,
  notifier: silentNotifier,
  idempotency: unused,
  cursors: unused,
}

async function docsApp(t: { teardown(fn: () => unknown): void }) {
  const app = await buildApp({
    ...adapters,
    clock: systemClock,
    policy: parsePolicy(DEMO_POLICY),
    jwt: { secret: 'x'.repeat(32) },
    maxDurationMinutes: 720,
    sweepBudgetMs: 1000,
  })
  t.teardown(() => app.close())
  return app
}

const committed = () =>
  JSON.parse(readFileSync(join(ROOT, 'openapi', 'openapi.json'), 'utf8')) as Record<string, unknown>
const servedFrom = (url: string) => ({
  ...committed(),
  servers: [{ url, description: 'The service that served this document' }],
})

t.test(
  'the contract is served as committed but for its server, and only once the app knows all its routes',
  async (t) => {
    const app = await docsApp(t)
    await t.rejects(app.openapi(), { message: /once the app is ready/ })
    await app.ready()
    const served = await app.inject({ method: 'GET', url: '/openapi.json', headers: { host: '127.0.0.1:4123' } })
    t.equal(served.statusCode, 200, served.body)
    t.match(served.headers['content-type'], /^application\/json/)
    const ahead = (expiresAt: string, media: string) =>
      t.ok(Date.parse(expiresAt) > Date.now(), `the PATCH example end (${media}) lies ahead`)
    t.same(withCommittedEndExample(served.json(), committed(), ahead), servedFrom('http://127.0.0.1:4123'))
  },
)

t.test('the served document names the server it was served from, so that the docs page calls that one', async (t) => {
  const app = await docsApp(t)
  const behindGateway = { host: 'a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com', 'x-forwarded-proto': 'https' }
  for (const url of ['/openapi.json', '/docs/json']) {
    const local = await app.inject({ method: 'GET', url, headers: { host: 'localhost:3917' } })
    t.same(
      local.json().servers,
      [{ url: 'http://localhost:3917', description: 'The service that served this document' }],
      `${url} on a local port`,
    )
    const deployed = await app.inject({ method: 'GET', url, headers: behindGateway })
    t.equal(
      deployed.json().servers[0].url,
      'https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com',
      `${url} behind API Gateway`,
    )
    const forged = await app.inject({
      method: 'GET',
      url,
      headers: { host: 'evil.test/"><script>', 'x-forwarded-proto': 'javascript' },
    })
    t.equal(
      forged.json().servers[0].url,
      '/',
      `${url}: a malformed Host header names no server, and the page resolves '/' against itself`,
    )
  }
  t.match(
    committed().servers,
    [{ url: '{origin}', variables: { origin: { default: 'http://127.0.0.1:3000' } } }],
    'the committed contract keeps its placeholder',
  )
})

t.test('the docs page is answered by the service, with its headers, from @fastify/swagger-ui’s files', async (t) => {
  const app = await docsApp(t)
  const page = await app.inject({ method: 'GET', url: '/docs', headers: { 'x-request-id': 'docs-request-1' } })
  expectStatus(t, page, 200)
  t.match(page.headers['content-type'], /^text\/html/)
  t.match(page.body, /swagger-ui/)
  t.equal(
    page.headers['x-correlation-id'],
    'docs-request-1',
    "the service’s own hooks still apply: the caller's id is echoed as its correlation id",
  )

  const head = await app.inject({ method: 'HEAD', url: '/docs' })
  expectStatus(t, head, 200)
  t.equal(head.body, '')
  t.equal(head.headers['content-length'], String(page.rawPayload.length))

  const icon = await app.inject({ method: 'GET', url: '/docs/static/favicon-32x32.png' })
  expectStatus(t, icon, 200)
  t.equal(icon.headers['content-type'], 'image/png')
  t.same(icon.rawPayload, readFileSync(join(SWAGGER_UI_FILES, 'favicon-32x32.png')))

  const redirect = await app.inject({ method: 'GET', url: '/docs/static/index.html' })
  expectStatus(t, redirect, 302)
  t.equal(redirect.headers.location, '/docs/')
  t.notOk(redirect.headers['content-type'], 'an empty answer has no content type')
})

t.test('a path under /docs that the page does not have is the service’s own 404', async (t) => {
  const app = await docsApp(t)
  const missing = await app.inject({ method: 'GET', url: '/docs/static/missing.js' })
  expectStatus(t, missing, 404)
  t.match(missing.headers['content-type'], /^application\/problem\+json/)
  t.match(missing.json(), { code: 'ROUTE_NOT_FOUND', instance: '/docs/static/missing.js' })
})
