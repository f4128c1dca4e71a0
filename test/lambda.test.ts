import { spawnSync } from 'node:child_process'
import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { CreateSecretCommand } from '@aws-sdk/client-secrets-manager'
import { CreateTopicCommand } from '@aws-sdk/client-sns'
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs'
import { DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb'
import t from 'tap'
import { buildLambda, lambdaMetafile } from '../infra/build.ts'
import { createAwsClients, resolveJwtSecret } from '../src/adapters/aws.ts'
import { ensureTables } from '../src/adapters/dynamodb/tables.ts'
import { resolveInstance } from '../src/adapters/identity-center.ts'
import { SCHEDULER_ACTOR } from '../src/core/audit.ts'
import { DEMO_POLICY, seedDirectory } from '../src/sandbox/seed.ts'
import { PROD, TEST_DIRECTORY } from './helpers/app.ts'
import { withCommittedEndExample } from './helpers/contract.ts'
import { FaultProxy } from './helpers/fault-proxy.ts'
import { expectStatus } from './helpers/http-status.ts'
import { startMoto } from './helpers/moto.ts'
import { mintToken, TEST_AUDIENCE, TEST_ISSUER, TEST_SECRET } from './helpers/tokens.ts'

/**
 * The built bundle (dist/lambda.mjs as `npm run build` makes it), not src/lambda.ts: what Lambda runs. It is
 * built into an empty directory with no node_modules, so it also proves the bundle needs nothing but its own
 * chunks and files beside it.
 */
const bundleDir = mkdtempSync(join(tmpdir(), 'jit-lambda-'))
t.teardown(() => rmSync(bundleDir, { recursive: true, force: true }))
const built = buildLambda(bundleDir)
const moto = await startMoto(t)

// Everything the bundle reads at module load, as the stack sets it, against moto.
const clients = createAwsClients({ region: 'us-east-1', endpoint: moto.endpoint })
const instance = await resolveInstance(clients.ssoAdmin, {})
const tables = { grants: 'lambda-grants', audit: 'lambda-audit' }
await ensureTables(clients.dynamo, tables)
await seedDirectory(clients, instance, TEST_DIRECTORY)
const topic = await clients.sns.send(new CreateTopicCommand({ Name: 'lambda-alerts' }))
const secret = await clients.secrets.send(new CreateSecretCommand({ Name: 'jit-jwt', SecretString: TEST_SECRET }))
const cursorKey = await clients.secrets.send(
  new CreateSecretCommand({ Name: 'jit-cursor-key', SecretString: randomBytes(32).toString('base64url') }),
)
// The due queue, as the stack creates it: each sweep sends it the grants due before the next run.
const sqs = new SQSClient({ region: 'us-east-1', endpoint: moto.endpoint })
const dueQueue = await sqs.send(new CreateQueueCommand({ QueueName: 'lambda-due' }))
const dueQueueArn = (
  await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dueQueue.QueueUrl, AttributeNames: ['QueueArn'] }))
).Attributes?.QueueArn as string
const policyFile = join(bundleDir, 'policy.json')
writeFileSync(policyFile, JSON.stringify(DEMO_POLICY))
// The function reaches moto through a proxy, so that a test can hold one of its calls.
const proxy = new FaultProxy(moto.endpoint)
const proxyEndpoint = await proxy.start()
t.teardown(() => proxy.stop())
Object.assign(process.env, {
  LOG_LEVEL: 'silent',
  AWS_ENDPOINT_URL: proxyEndpoint,
  AWS_REGION: 'us-east-1',
  JIT_GRANTS_TABLE: tables.grants,
  JIT_AUDIT_TABLE: tables.audit,
  JIT_SNS_TOPIC_ARN: topic.TopicArn,
  JIT_INSTANCE_ARN: instance.instanceArn,
  JIT_IDENTITY_STORE_ID: instance.identityStoreId,
  JIT_JWT_SECRET_ARN: secret.ARN,
  JIT_CURSOR_KEY_ARN: cursorKey.ARN,
  JIT_JWT_ISSUER: TEST_ISSUER,
  JIT_JWT_AUDIENCE: TEST_AUDIENCE,
  JIT_POLICY_FILE: policyFile,
  JIT_DUE_QUEUE_URL: dueQueue.QueueUrl,
  JIT_DUE_QUEUE_ARN: dueQueueArn,
})
await built
const { handler } = (await import(pathToFileURL(join(bundleDir, 'lambda.mjs')).href)) as {
  handler: (event: unknown, context: unknown) => Promise<LambdaResponse>
}

interface LambdaResponse {
  statusCode: number
  headers: Record<string, string>
  body: string
  isBase64Encoded?: boolean
}
const context = (remainingMs = 60_000) => ({ getRemainingTimeInMillis: () => remainingMs, awsRequestId: randomUUID() })
const token = mintToken()
const grantRequest = {
  userName: 'alice',
  accountId: PROD,
  permissionSet: 'AdministratorAccess',
  durationMinutes: 60,
  ticketId: 'CHG0000007',
}

/*
 * Events are made from samples shaped like those AWS publishes (test/fixtures/lambda-events), changed only where
 * a request differs, and filled in as API Gateway fills them: @fastify/aws-lambda reads the parsed query maps
 * and never rawQueryString, so an event with only the raw query would reach the app without one.
 */

type EventTemplate = 'http-api' | 'function-url' | 'rest-api' | 'scheduled' | 's3' | 'sqs'
const fixture = (name: EventTemplate) =>
  JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures', 'lambda-events', `${name}.json`), 'utf8'))

interface RequestOptions {
  query?: string
  headers?: Record<string, string>
  body?: unknown
  /** API Gateway's requestContext.requestId; a new one of the right form unless given. */
  requestId?: string
}

/** The query's values by name, decoded, in order: what API Gateway makes its query maps from. */
function queryValues(query: string): Record<string, string[]> {
  const values: Record<string, string[]> = {}
  for (const [name, value] of new URLSearchParams(query)) {
    values[name] ??= []
    values[name].push(value)
  }
  return values
}

function jsonBody(body: unknown) {
  if (body === undefined) return undefined
  const text = JSON.stringify(body)
  return { text, headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) } }
}

/** An HTTP API request id has this form (e.g. LV7fzho-PHcEJPw=); a REST API's and a function URL's are UUIDs. */
const httpApiRequestId = () => `${randomBytes(12).toString('base64url').slice(0, 15)}=`

/** Payload 2.0: duplicate query values are joined with commas in queryStringParameters, which is absent without a query. */
function payloadV2Event(template: 'http-api' | 'function-url', method: string, path: string, options: RequestOptions) {
  const { queryStringParameters: _sample, ...event } = fixture(template)
  const values = queryValues(options.query ?? '')
  const body = jsonBody(options.body)
  return {
    ...event,
    rawPath: path,
    rawQueryString: options.query ?? '',
    ...(Object.keys(values).length > 0
      ? {
          queryStringParameters: Object.fromEntries(Object.entries(values).map(([name, all]) => [name, all.join(',')])),
        }
      : {}),
    headers: { ...event.headers, ...options.headers, ...body?.headers },
    requestContext: {
      ...event.requestContext,
      http: { ...event.requestContext.http, method, path },
      requestId: options.requestId ?? (template === 'http-api' ? httpApiRequestId() : randomUUID()),
    },
    ...(body ? { body: body.text } : {}),
  }
}

/** An API Gateway HTTP API request (payload 2.0). */
const httpApiEvent = (method: string, path: string, options: RequestOptions = {}) =>
  payloadV2Event('http-api', method, path, options)

/** A function URL request: payload 2.0 too, from a lambda-url domain. */
const functionUrlEvent = (method: string, path: string, options: RequestOptions = {}) =>
  payloadV2Event('function-url', method, path, options)

/**
 * An API Gateway REST API request (payload 1.0): every header and query value also in the multi-value maps, the
 * single-value query map holding the last of each; both maps are null without a query.
 */
function restApiEvent(method: string, path: string, options: RequestOptions = {}) {
  const event = fixture('rest-api')
  const values = queryValues(options.query ?? '')
  const hasQuery = Object.keys(values).length > 0
  const body = jsonBody(options.body)
  const headers: Record<string, string> = { ...event.headers, ...options.headers, ...body?.headers }
  return {
    ...event,
    path,
    httpMethod: method,
    headers,
    multiValueHeaders: Object.fromEntries(Object.entries(headers).map(([name, value]) => [name, [value]])),
    queryStringParameters: hasQuery
      ? Object.fromEntries(Object.entries(values).map(([name, all]) => [name, all.at(-1)]))
      : null,
    multiValueQueryStringParameters: hasQuery ? values : null,
    pathParameters: { proxy: path.slice(1) },
    requestContext: {
      ...event.requestContext,
      httpMethod: method,
      path: `/${event.requestContext.stage}${path}`,
      requestId: options.requestId ?? randomUUID(),
    },
    body: body?.text ?? null,
  }
}

const httpEventKinds = [
  { kind: 'an HTTP API request', build: httpApiEvent, requestIds: ['LV7fzho-PHcEJPw=', 'LV7f3gBgPHcEJQx='] },
  {
    kind: 'a REST API request',
    build: restApiEvent,
    requestIds: ['c6af9ac6-7b61-11e6-9a41-93e8deadbeef', '1f2e3d4c-5b6a-4798-8a7b-6c5d4e3f2a1b'],
  },
  {
    kind: 'a function URL request',
    build: functionUrlEvent,
    requestIds: ['0f5e8a3c-6d2b-4c1e-9a7f-3b8d2e1c4a5f', '9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d'],
  },
] as const

const scheduledEvent = fixture('scheduled')

/** The bundle runs on the real clock: rather than wait out a grant, move its expiry into the past. */
async function expireNow(grantId: string) {
  const past = Date.now() - 1000
  await DynamoDBDocumentClient.from(clients.dynamo).send(
    new UpdateCommand({
      TableName: tables.grants,
      Key: { pk: `grant#${grantId}` },
      UpdateExpression: 'SET dueAt = :past, expiresAt = :pastIso',
      ExpressionAttributeValues: { ':past': past, ':pastIso': new Date(past).toISOString() },
    }),
  )
}

async function createGrant(ticketId: string): Promise<{ id: string; status: string }> {
  const response = await handler(
    httpApiEvent('POST', '/grants', {
      headers: { authorization: `Bearer ${token}` },
      body: { ...grantRequest, ticketId },
    }),
    context(),
  )
  if (response.statusCode !== 201) throw new Error(`POST /grants answered ${response.statusCode}: ${response.body}`)
  return JSON.parse(response.body)
}

t.test(
  'an HTTP API (payload 2.0) event is answered as the server answers, with the JWT secret read from Secrets Manager',
  async (t) => {
    const response = await handler(
      httpApiEvent('POST', '/grants', { headers: { authorization: `Bearer ${token}` }, body: grantRequest }),
      context(),
    )
    expectStatus(t, response, 201)
    t.match(response.headers['content-type'], /^application\/json/)
    t.match(JSON.parse(response.body), {
      status: 'active',
      userName: 'alice',
      accountId: PROD,
      requestedBy: 'servicenow-workflow',
    })

    const forged = await handler(
      httpApiEvent('GET', '/grants', {
        headers: { authorization: `Bearer ${mintToken({ key: 'another-secret-that-is-long-enough-for-hs256' })}` },
      }),
      context(),
    )
    expectStatus(t, forged, 401, 'a token signed with another secret is refused')
  },
)

t.test('the function returns only once its SNS messages are sent: a frozen environment would hold them', async (t) => {
  const publish = proxy.holdNext('Publish')
  let returned = false
  const invocation = handler(
    httpApiEvent('POST', '/grants', {
      headers: { authorization: `Bearer ${token}` },
      body: { ...grantRequest, userName: 'bob', ticketId: 'CHG0000070' },
    }),
    context(),
  ).finally(() => (returned = true))
  await publish.arrived
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.notOk(returned, 'still waiting for the message')
  publish.release()
  expectStatus(t, await invocation, 201)
})

t.test(
  'waiting for SNS never runs an invocation into its timeout: the function returns a second before it',
  async (t) => {
    const publish = proxy.holdNext('Publish')
    const invocation = handler(
      httpApiEvent('POST', '/grants', {
        headers: { authorization: `Bearer ${token}` },
        body: { ...grantRequest, userName: 'bob', ticketId: 'CHG0000071' },
      }),
      context(1_500),
    )
    await publish.arrived
    const late = new Promise<'late'>((resolve) => setTimeout(() => resolve('late'), 3_000))
    const first = await Promise.race([invocation, late])
    publish.release()
    t.not(first, 'late', 'returned while the message was still held')
    expectStatus(t, await invocation, 201)
  },
)

t.test(
  'an HTTP answer waits for its messages 2 s at most, however long the invocation may run: the outbox keeps the rest for the sweep',
  async (t) => {
    const publish = proxy.holdNext('Publish')
    const invocation = handler(
      httpApiEvent('POST', '/grants', {
        headers: { authorization: `Bearer ${token}` },
        body: { ...grantRequest, userName: 'bob', ticketId: 'CHG0000072' },
      }),
      context(60_000),
    )
    await publish.arrived
    const late = new Promise<'late'>((resolve) => setTimeout(() => resolve('late'), 4_000))
    const first = await Promise.race([invocation, late])
    publish.release()
    t.not(first, 'late', 'answered while the message was still held, long before the invocation’s own limit')
    expectStatus(t, await invocation, 201)
  },
)

t.test('a REST API (payload 1.0) event is answered too', async (t) => {
  const response = await handler(
    restApiEvent('GET', '/grants', { query: 'userName=alice', headers: { Authorization: `Bearer ${token}` } }),
    context(),
  )
  expectStatus(t, response, 200)
  t.equal(JSON.parse(response.body).items.length, 1)
})

t.test('a function URL event is answered too, and without a token it is refused as everywhere', async (t) => {
  const refused = await handler(functionUrlEvent('GET', '/grants'), context())
  expectStatus(t, refused, 401)
  t.match(refused.headers['content-type'], /^application\/problem\+json/)
  t.equal(JSON.parse(refused.body).code, 'UNAUTHORIZED')

  const answered = await handler(
    functionUrlEvent('GET', '/grants', { query: 'userName=alice', headers: { authorization: `Bearer ${token}` } }),
    context(),
  )
  expectStatus(t, answered, 200)
})

t.test(
  'the samples of each HTTP event are taken as requests, under the request id API Gateway gave them',
  async (t) => {
    for (const template of ['http-api', 'rest-api', 'function-url'] as const) {
      const sample = fixture(template)
      const response = await handler(sample, context())
      expectStatus(t, response, 401, `${template}: a request without a token`)
      t.equal(response.headers['x-request-id'], sample.requestContext.requestId, template)
    }
  },
)

t.test('the query string reaches the app, from each kind of HTTP event', async (t) => {
  const grant = await createGrant('CHG0000030')
  await createGrant('CHG0000031')
  for (const { kind, build } of httpEventKinds) {
    const list = async (query: string) => {
      const response = await handler(
        build('GET', '/grants', { query, headers: { authorization: `Bearer ${token}` } }),
        context(),
      )
      expectStatus(t, response, 200, `${kind}: ${query}`)
      return JSON.parse(response.body) as { items: { id: string }[]; nextCursor: string | null }
    }
    t.same(
      (await list('ticketId=CHG0000030')).items.map(({ id }) => id),
      [grant.id],
      `${kind}: filtered by ticket`,
    )
    t.same((await list('ticketId=CHG0000030&status=expired')).items, [], `${kind}: filters combine`)
    const page = await list('limit=1')
    t.equal(page.items.length, 1, `${kind}: limited to one`)
    t.type(page.nextCursor, 'string', `${kind}: with more to follow`)
  }
})

for (const [
  index,
  {
    kind,
    build,
    requestIds: [created, refused],
  },
] of httpEventKinds.entries()) {
  t.test(
    `${kind} is handled under API Gateway's request id, whatever x-request-id the caller sends: in the answer, in a problem body and in the audit log`,
    async (t) => {
      const callerId = 'caller-chosen-correlation-id'
      const ticketId = `CHG000004${index}`
      const response = await handler(
        build('POST', '/grants', {
          requestId: created,
          headers: { authorization: `Bearer ${token}`, 'x-request-id': callerId },
          body: { ...grantRequest, ticketId },
        }),
        context(),
      )
      expectStatus(t, response, 201)
      t.equal(response.headers['x-request-id'], created, 'the answer’s x-request-id')

      const audit = await handler(
        build('GET', '/audit', {
          query: `grantId=${JSON.parse(response.body).id}&action=grant.requested`,
          headers: { authorization: `Bearer ${token}` },
        }),
        context(),
      )
      const [requested, ...others] = JSON.parse(audit.body).items
      t.same(others, [], 'the query picked the one event')
      t.match(requested, { action: 'grant.requested', ticketId, requestId: created }, 'the audit event’s requestId')

      const invalid = await handler(
        build('POST', '/grants', {
          requestId: refused,
          headers: { authorization: `Bearer ${token}`, 'x-request-id': callerId },
          body: { ...grantRequest, durationMinutes: 'sixty' },
        }),
        context(),
      )
      expectStatus(t, invalid, 400)
      t.equal(JSON.parse(invalid.body).requestId, refused, 'the problem body’s requestId')
      t.equal(invalid.headers['x-request-id'], refused, 'the problem’s x-request-id')
    },
  )
}

t.test(
  'without a usable request id from API Gateway (an invoke by hand), the invocation’s id is used, never the caller’s',
  async (t) => {
    const invocation = context()
    const { requestId: _none, ...requestContext } = httpApiEvent('GET', '/health').requestContext
    const missing = await handler(
      {
        ...httpApiEvent('GET', '/health', { headers: { 'x-request-id': 'caller-chosen-correlation-id' } }),
        requestContext,
      },
      invocation,
    )
    t.equal(missing.headers['x-request-id'], invocation.awsRequestId, 'an event without one')
    const unsafe = await handler(httpApiEvent('GET', '/health', { requestId: 'two\r\nlines' }), invocation)
    expectStatus(t, unsafe, 200)
    t.equal(unsafe.headers['x-request-id'], invocation.awsRequestId, 'an id that could not go in a header as it is')
  },
)

t.test(
  'the docs page works through the HTTP API, from the files shipped beside the bundle, icons intact',
  async (t) => {
    const page = await handler(httpApiEvent('GET', '/docs'), context())
    expectStatus(t, page, 200)
    t.match(page.headers['content-type'], /^text\/html/)
    const script = await handler(httpApiEvent('GET', '/docs/static/swagger-ui-bundle.js'), context())
    expectStatus(t, script, 200)
    t.equal(script.body.length, readFileSync(join(bundleDir, 'static', 'swagger-ui-bundle.js'), 'utf8').length)
    t.match(script.headers['content-type'], /^application\/javascript/)
    const style = await handler(httpApiEvent('GET', '/docs/static/swagger-ui.css'), context())
    expectStatus(t, style, 200)
    t.match(style.headers['content-type'], /^text\/css/)
    const icon = await handler(httpApiEvent('GET', '/docs/static/favicon-32x32.png'), context())
    expectStatus(t, icon, 200)
    t.equal(icon.isBase64Encoded, true, 'binary bodies go back base64-encoded, as API Gateway expects')
    t.same(Buffer.from(icon.body, 'base64'), readFileSync(join(bundleDir, 'static', 'favicon-32x32.png')))
    t.equal(icon.headers['content-type'], 'image/png')
    const contract = await handler(httpApiEvent('GET', '/openapi.json'), context())
    expectStatus(t, contract, 200)
    const committed = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'openapi', 'openapi.json'), 'utf8'))
    const ahead = (expiresAt: string, media: string) =>
      t.ok(Date.parse(expiresAt) > Date.now(), `the PATCH example end (${media}) lies ahead`)
    const { servers, ...served } = withCommittedEndExample(JSON.parse(contract.body), committed, ahead)
    const { servers: placeholder, ...expected } = committed
    t.same(served, expected, 'the committed contract')
    t.match(placeholder, [{ url: '{origin}' }])
    t.same(
      servers,
      [
        {
          url: 'https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com',
          description: 'The service that served this document',
        },
      ],
      'naming the API it was served from',
    )
  },
)

t.test('the bundle keeps only the AWS SDK commands the service sends, lazily loaded clients included', async (t) => {
  const commands = new Map<string, string[]>()
  for (const output of Object.values(lambdaMetafile()?.outputs ?? {})) {
    for (const input of Object.keys(output.inputs)) {
      const [, client, command] = /(@aws-sdk\/client-[\w-]+)\/dist-es\/commands\/(\w+)Command\.js$/.exec(input) ?? []
      if (client && command) commands.set(client, [...(commands.get(client) ?? []), command])
    }
  }
  // A dynamic import of an SDK package keeps all of it: S3's 112 commands, Organizations' 63, SQS's 23.
  for (const client of [
    '@aws-sdk/client-s3',
    '@aws-sdk/client-organizations',
    '@aws-sdk/client-sqs',
    '@aws-sdk/client-dynamodb',
    '@aws-sdk/client-sso-admin',
  ]) {
    const kept = commands.get(client) ?? []
    t.ok(kept.length > 0 && kept.length <= 10, `${client}: ${kept.length} commands (${kept.join(', ')})`)
  }
})

t.test(
  "the bundle carries none of what the function does without: Fastify's default validator, every MIME type",
  async (t) => {
    const inputs = Object.values(lambdaMetafile()?.outputs ?? {}).flatMap((output) => Object.keys(output.inputs))
    // Our validator compiler is given to Fastify; the docs page's files are of a few types (infra/build.ts).
    t.same(
      inputs.filter((input) => /node_modules\/(@fastify\/ajv-compiler|mime)\//.test(input)),
      [],
    )
  },
)

t.test('the bundle has one fast-uri, which Ajv, fast-json-stringify and the docs page share', async (t) => {
  const inputs = Object.values(lambdaMetafile()?.outputs ?? {}).flatMap((output) => Object.keys(output.inputs))
  const copies = new Set(inputs.flatMap((input) => /^(.*node_modules\/fast-uri)\//.exec(input)?.[1] ?? []))
  t.equal(copies.size, 1, [...copies].join(', '))
})

t.test('configured with a JWKS URL, the bundle verifies tokens by kid', async (t) => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
  const jwks = createServer((_request, response) => {
    response
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ keys: [{ ...publicKey.export({ format: 'jwk' }), kid: 'k1', alg: 'ES256', use: 'sig' }] }))
  })
  await new Promise<void>((listening) => jwks.listen(0, '127.0.0.1', listening))
  t.teardown(() => new Promise((closed) => jwks.close(closed)))
  const secretArn = process.env.JIT_JWT_SECRET_ARN
  t.teardown(() => {
    process.env.JIT_JWT_SECRET_ARN = secretArn
    delete process.env.JIT_JWKS_URL
  })
  delete process.env.JIT_JWT_SECRET_ARN
  process.env.JIT_JWKS_URL = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks`
  // A second instance of the entry module, which reads this configuration when it loads.
  const withJwks = (await import(`${pathToFileURL(join(bundleDir, 'lambda.mjs')).href}?jwks`)) as {
    handler: typeof handler
  }

  const signed = mintToken({
    algorithm: 'ES256',
    key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    kid: 'k1',
  })
  const answered = await withJwks.handler(
    httpApiEvent('GET', '/grants', { query: 'userName=alice', headers: { authorization: `Bearer ${signed}` } }),
    context(),
  )
  expectStatus(t, answered, 200)
  const hs256 = await withJwks.handler(
    httpApiEvent('GET', '/grants', { headers: { authorization: `Bearer ${token}` } }),
    context(),
  )
  expectStatus(t, hs256, 401, 'the shared-secret token is refused: this instance trusts only the key set')
})

t.test(
  'an EventBridge scheduled event runs the sweep in process, and its audit events name system:scheduler',
  async (t) => {
    const grant = await createGrant('CHG0000008')
    await expireNow(grant.id)

    const summary = await handler(scheduledEvent, context())

    t.match(summary, { revoked: 1, failed: 0, remaining: 0 })
    const audit = await handler(
      httpApiEvent('GET', '/audit', {
        query: `grantId=${grant.id}&action=grant.expired`,
        headers: { authorization: `Bearer ${token}` },
      }),
      context(),
    )
    const [expired, ...others] = JSON.parse(audit.body).items
    t.same(others, [], 'the query picked the one event')
    t.equal(expired?.actor, SCHEDULER_ACTOR)
  },
)

t.test(
  'the sweep stops starting work before Lambda’s time runs out, and leaves the rest due for the next minute',
  async (t) => {
    const grant = await createGrant('CHG0000009')
    await expireNow(grant.id)

    const summary = await handler(scheduledEvent, context(4_000))

    t.match(summary, { revoked: 0, failed: 0, remaining: 1 })
    const read = await handler(
      httpApiEvent('GET', `/grants/${grant.id}`, { headers: { authorization: `Bearer ${token}` } }),
      context(),
    )
    t.equal(JSON.parse(read.body).status, 'active', 'still active: the next run ends it')
    t.match(await handler(scheduledEvent, context()), { revoked: 1, remaining: 0 })
  },
)

t.test(
  'the scheduled sweep is no HTTP route: POST /revocations still needs a token with revocations:run',
  async (t) => {
    const anonymous = await handler(httpApiEvent('POST', '/revocations'), context())
    expectStatus(t, anonymous, 401)
    const wrongScope = await handler(
      httpApiEvent('POST', '/revocations', {
        headers: { authorization: `Bearer ${mintToken({ scope: 'grants:read' })}` },
      }),
      context(),
    )
    expectStatus(t, wrongScope, 403)
    const scheduledLookalike = await handler(
      httpApiEvent('POST', '/revocations', { headers: { 'x-source': 'aws.events' }, body: scheduledEvent }),
      context(),
    )
    expectStatus(t, scheduledLookalike, 401, 'an HTTP request shaped like a schedule event is still an HTTP request')
  },
)

t.test(
  'the bundle checks the configuration and the policy with Ajv validators compiled when it was built',
  async (t) => {
    const inputs = Object.values(lambdaMetafile()?.outputs ?? {}).flatMap((output) => Object.keys(output.inputs))
    t.ok(inputs.length > 100, 'the bundle’s inputs were read')
    // TypeBox's checker is not needed at all, nor is compiling the checks at start (infra/build.ts,
    // precompiledChecks); nor TypeBox's TypeScript syntax parser, which its Type namespace and Type.Record keep
    // (src/core/schema-builders.ts; a few of its character tokens, 0.3 KiB, are shared with the builders).
    t.same(
      inputs.filter((input) =>
        /node_modules\/typebox\/build\/(value\/|type\/script\/(parser|script|mapping)\.mjs)/.test(input),
      ),
      [],
    )
    const badPolicy = join(bundleDir, 'bad-policy.json')
    writeFileSync(badPolicy, JSON.stringify({ rules: [{ ...DEMO_POLICY.rules[0], admins: ['mallory'] }] }))
    const start = (env: Record<string, string>) =>
      spawnSync(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `await import(${JSON.stringify(pathToFileURL(join(bundleDir, 'lambda.mjs')).href)})`,
        ],
        {
          env: { ...process.env, ...env },
          encoding: 'utf8',
        },
      )
    const badSettings = start({ JIT_MAX_DURATION_MINUTES: '0', LOG_LEVEL: 'loud' })
    t.not(badSettings.status, 0)
    t.match(badSettings.stderr, /JIT_MAX_DURATION_MINUTES must be >= 1/)
    t.match(badSettings.stderr, /LOG_LEVEL must be one of fatal, error/)
    const unknownField = start({ JIT_POLICY_FILE: badPolicy })
    t.not(unknownField.status, 0)
    t.match(unknownField.stderr, /JIT_POLICY_FILE .*\/rules\/0\/admins is an unknown property/)
  },
)

t.test('a JWT secret from Secrets Manager that is missing or too short stops the start', async (t) => {
  const short = await clients.secrets.send(new CreateSecretCommand({ Name: 'jit-jwt-short', SecretString: 'short' }))
  await t.rejects(resolveJwtSecret({ jwt: {}, jwtSecretArn: short.ARN }, clients.secrets), {
    message: /at least 32 characters/,
  })
  const missing = `arn:aws:secretsmanager:us-east-1:123456789012:secret:jit-jwt-absent-AbCdEf`
  await t.rejects(resolveJwtSecret({ jwt: {}, jwtSecretArn: missing }, clients.secrets), {
    message: /Secrets Manager.*GetSecretValue/,
  })
})

/** Moves a grant's end (and due time) to `ms` from now, as if it had been asked for that long. */
async function expireIn(grantId: string, ms: number) {
  const at = Date.now() + ms
  await DynamoDBDocumentClient.from(clients.dynamo).send(
    new UpdateCommand({
      TableName: tables.grants,
      Key: { pk: `grant#${grantId}` },
      UpdateExpression: 'SET dueAt = :at, expiresAt = :atIso',
      ExpressionAttributeValues: { ':at': at, ':atIso': new Date(at).toISOString() },
    }),
  )
}

const dueRecord = (body: string, queueArn = dueQueueArn) => ({
  messageId: randomUUID(),
  receiptHandle: 'handle',
  body,
  attributes: {},
  messageAttributes: {},
  md5OfBody: '',
  eventSource: 'aws:sqs',
  eventSourceARN: queueArn,
  awsRegion: 'us-east-1',
})

t.test(
  'a scheduled sweep sends each grant due before the next run to the due queue, delayed to its second',
  async (t) => {
    const grant = await createGrant('CHG0000030')
    await expireIn(grant.id, 2_000)

    await handler(scheduledEvent, context())

    const early = await sqs.send(new ReceiveMessageCommand({ QueueUrl: dueQueue.QueueUrl, WaitTimeSeconds: 0 }))
    t.same(early.Messages ?? [], [], 'not delivered before its second')
    const received = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: dueQueue.QueueUrl, WaitTimeSeconds: 4, MaxNumberOfMessages: 10 }),
    )
    const bodies = (received.Messages ?? []).map((message) => JSON.parse(message.Body as string))
    t.match(bodies, [{ grantId: grant.id }])
  },
)

t.test(
  'a due-queue message ends its expired grant at once, without waiting for the sweep, as system:timer',
  async (t) => {
    const grant = await createGrant('CHG0000031')
    await expireNow(grant.id)

    const answer = (await handler(
      { Records: [dueRecord(JSON.stringify({ grantId: grant.id, dueAt: new Date().toISOString() }))] },
      context(),
    )) as unknown

    t.same(answer, { batchItemFailures: [] })
    const read = await handler(
      httpApiEvent('GET', `/grants/${grant.id}`, { headers: { authorization: `Bearer ${token}` } }),
      context(),
    )
    t.match(JSON.parse(read.body), { status: 'expired', endedBy: 'system:timer' })
  },
)

t.test('a due-queue message that arrives a moment before its grant is due waits for it, then ends it', async (t) => {
  const grant = await createGrant('CHG0000035')
  await expireIn(grant.id, 1_000)

  const answer = (await handler(
    { Records: [dueRecord(JSON.stringify({ grantId: grant.id, dueAt: new Date().toISOString() }))] },
    context(),
  )) as unknown

  t.same(answer, { batchItemFailures: [] })
  const read = await handler(
    httpApiEvent('GET', `/grants/${grant.id}`, { headers: { authorization: `Bearer ${token}` } }),
    context(),
  )
  t.match(JSON.parse(read.body), { status: 'expired', endedBy: 'system:timer' })
})

t.test(
  'a due-queue message for a grant not yet due, or naming no grant, changes nothing and is not retried',
  async (t) => {
    const grant = await createGrant('CHG0000032')

    const answer = (await handler(
      {
        Records: [
          dueRecord(JSON.stringify({ grantId: grant.id, dueAt: new Date().toISOString() })),
          dueRecord('not a due message'),
          dueRecord(
            JSON.stringify({ grantId: '01234567-89ab-7def-8123-456789abcdef', dueAt: new Date().toISOString() }),
          ),
        ],
      },
      context(),
    )) as unknown

    t.same(answer, { batchItemFailures: [] })
    const read = await handler(
      httpApiEvent('GET', `/grants/${grant.id}`, { headers: { authorization: `Bearer ${token}` } }),
      context(),
    )
    t.equal(JSON.parse(read.body).status, 'active', 'its end has not come')
  },
)

t.test(
  'a due-queue message whose grant cannot be read is reported as a batch item failure, for SQS to deliver again',
  async (t) => {
    const grant = await createGrant('CHG0000033')
    await expireNow(grant.id)
    proxy.inject('GetItem', 'server-error')
    t.teardown(() => proxy.clear())
    const record = dueRecord(JSON.stringify({ grantId: grant.id, dueAt: new Date().toISOString() }))

    const answer = (await handler({ Records: [record] }, context())) as unknown

    t.same(answer, { batchItemFailures: [{ itemIdentifier: record.messageId }] })
  },
)

t.test('messages from any other queue are refused whole, and nothing is acted on', async (t) => {
  const grant = await createGrant('CHG0000034')
  await expireNow(grant.id)

  const error = await refusalOf({
    Records: [
      dueRecord(
        JSON.stringify({ grantId: grant.id, dueAt: new Date().toISOString() }),
        'arn:aws:sqs:us-east-1:123456789012:someone-elses-queue',
      ),
    ],
  })

  t.equal(error.name, 'UnsupportedEventError')
  const read = await handler(
    httpApiEvent('GET', `/grants/${grant.id}`, { headers: { authorization: `Bearer ${token}` } }),
    context(),
  )
  t.equal(JSON.parse(read.body).status, 'active')
})

/** The error an invocation failed with; it fails the test if the invocation succeeded. */
async function refusalOf(event: unknown): Promise<Error> {
  try {
    const answered = await handler(event, context())
    throw new Error(`answered ${JSON.stringify(answered).slice(0, 200)}`)
  } catch (error) {
    return error as Error
  }
}

t.test(
  'an event that is neither an HTTP request nor the schedule fails its invocation, naming its kind and none of its content',
  async (t) => {
    const { requestContext: _context, ...withoutContext } = httpApiEvent('GET', '/grants')
    const cases: [string, unknown, RegExp][] = [
      ['an S3 notification', fixture('s3'), /received a batch of 1 record\(s\) from aws:s3$/],
      ['an SQS batch', fixture('sqs'), /received a batch of 2 record\(s\) from aws:sqs$/],
      [
        'an EventBridge event that is not the schedule',
        {
          ...scheduledEvent,
          source: 'aws.s3',
          'detail-type': 'Object Created',
          detail: { object: { key: 'secret-in-the-key' } },
        },
        /received an EventBridge event from aws\.s3 of type Object Created$/,
      ],
      [
        'an Application Load Balancer request',
        {
          ...restApiEvent('GET', '/grants'),
          requestContext: {
            elb: {
              targetGroupArn: 'arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/jit/0123456789abcdef',
            },
          },
        },
        /received an Application Load Balancer request$/,
      ],
      [
        'an HTTP API event without its request context',
        withoutContext,
        /received an HTTP request event without a method, a path or a request context/,
      ],
      [
        'a REST API event whose body is not text',
        { ...restApiEvent('POST', '/grants'), body: { secret: 'secret-in-the-body' } },
        /received an HTTP request event .* a body that is not text$/,
      ],
      ['an empty object', {}, /received an empty object$/],
      ['an object of another shape', { password: 'secret-value' }, /received an object of no known shape$/],
      ['a string', 'secret-string', /received a string$/],
      ['a number', 42, /received a number$/],
      ['an array', [], /received an array$/],
      ['null', null, /received null$/],
      ['undefined', undefined, /received undefined$/],
    ]
    for (const [name, event, message] of cases) {
      const error = await refusalOf(event)
      t.equal(error.name, 'UnsupportedEventError', name)
      t.match(error.message, message, name)
      t.notMatch(error.message, /secret/, `${name}: nothing of the event's content`)
    }
  },
)
