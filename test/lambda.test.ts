import { generateKeyPairSync, randomUUID } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { CreateSecretCommand } from '@aws-sdk/client-secrets-manager'
import { CreateTopicCommand } from '@aws-sdk/client-sns'
import { DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb'
import t from 'tap'
import { createAwsClients, resolveJwtSecret } from '../src/adapters/aws.ts'
import { ensureTables } from '../src/adapters/dynamodb/tables.ts'
import { resolveInstance } from '../src/adapters/identity-center.ts'
import { SCHEDULER_ACTOR } from '../src/core/audit.ts'
import { DEMO_POLICY, seedDirectory } from '../src/sandbox/seed.ts'
import { buildLambda } from '../infra/build.ts'
import { PROD, TEST_DIRECTORY } from './helpers/app.ts'
import { FaultProxy } from './helpers/fault-proxy.ts'
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
  JIT_JWT_ISSUER: TEST_ISSUER,
  JIT_JWT_AUDIENCE: TEST_AUDIENCE,
  JIT_POLICY_FILE: policyFile,
})
await built
const { handler } = (await import(pathToFileURL(join(bundleDir, 'lambda.mjs')).href)) as { handler: (event: unknown, context: unknown) => Promise<LambdaResponse> }

interface LambdaResponse {
  statusCode: number
  headers: Record<string, string>
  body: string
  isBase64Encoded?: boolean
}
const context = (remainingMs = 60_000) => ({ getRemainingTimeInMillis: () => remainingMs, awsRequestId: randomUUID() })
const token = mintToken()
const grantRequest = { userName: 'alice', accountId: PROD, permissionSet: 'AdministratorAccess', durationMinutes: 60, ticketId: 'CHG0000007' }

/** An API Gateway HTTP API (payload 2.0) event; a function URL sends the same shape with a lambda-url domain. */
function httpApiEvent(method: string, path: string, options: { query?: string; headers?: Record<string, string>; body?: unknown; domainName?: string } = {}) {
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: path,
    rawQueryString: options.query ?? '',
    headers: { ...options.headers, ...(options.body ? { 'content-type': 'application/json' } : {}) },
    requestContext: { http: { method, path, sourceIp: '127.0.0.1' }, requestId: randomUUID(), ...(options.domainName ? { domainName: options.domainName } : {}) },
    ...(options.body ? { body: JSON.stringify(options.body) } : {}),
    isBase64Encoded: false,
  }
}

const scheduledEvent = { version: '0', source: 'aws.events', 'detail-type': 'Scheduled Event', resources: ['arn:aws:events:us-east-1:123456789012:rule/JitAccess-SweepSchedule'], detail: {} }

/** The bundle runs on the real clock: rather than wait out a grant, move its expiry into the past. */
async function expireNow(grantId: string) {
  const past = Date.now() - 1000
  await DynamoDBDocumentClient.from(clients.dynamo).send(new UpdateCommand({
    TableName: tables.grants,
    Key: { pk: `grant#${grantId}` },
    UpdateExpression: 'SET dueAt = :past, expiresAt = :pastIso',
    ExpressionAttributeValues: { ':past': past, ':pastIso': new Date(past).toISOString() },
  }))
}

async function createGrant(ticketId: string): Promise<{ id: string; status: string }> {
  const response = await handler(httpApiEvent('POST', '/grants', { headers: { authorization: `Bearer ${token}` }, body: { ...grantRequest, ticketId } }), context())
  if (response.statusCode !== 201) throw new Error(`POST /grants answered ${response.statusCode}: ${response.body}`)
  return JSON.parse(response.body)
}

t.test('an HTTP API (payload 2.0) event is answered as the server answers, with the JWT secret read from Secrets Manager', async (t) => {
  const response = await handler(httpApiEvent('POST', '/grants', { headers: { authorization: `Bearer ${token}` }, body: grantRequest }), context())
  t.equal(response.statusCode, 201)
  t.match(response.headers['content-type'], /^application\/json/)
  t.match(JSON.parse(response.body), { status: 'active', userName: 'alice', accountId: PROD, requestedBy: 'servicenow-workflow' })

  const forged = await handler(httpApiEvent('GET', '/grants', { headers: { authorization: `Bearer ${mintToken({ key: 'another-secret-that-is-long-enough-for-hs256' })}` } }), context())
  t.equal(forged.statusCode, 401, 'a token signed with another secret is refused')
})

t.test('the function returns only once its SNS messages are sent: a frozen environment would hold them', async (t) => {
  const publish = proxy.holdNext('Publish')
  let returned = false
  const invocation = handler(httpApiEvent('POST', '/grants', { headers: { authorization: `Bearer ${token}` }, body: { ...grantRequest, userName: 'bob', ticketId: 'CHG0000070' } }), context())
    .finally(() => (returned = true))
  await publish.arrived
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.notOk(returned, 'still waiting for the message')
  publish.release()
  t.equal((await invocation).statusCode, 201)
})

t.test('waiting for SNS never runs an invocation into its timeout: the function returns a second before it', async (t) => {
  const publish = proxy.holdNext('Publish')
  const invocation = handler(httpApiEvent('POST', '/grants', { headers: { authorization: `Bearer ${token}` }, body: { ...grantRequest, userName: 'bob', ticketId: 'CHG0000071' } }), context(1_500))
  await publish.arrived
  const late = new Promise<'late'>((resolve) => setTimeout(() => resolve('late'), 3_000))
  const first = await Promise.race([invocation, late])
  publish.release()
  t.not(first, 'late', 'returned while the message was still held')
  t.equal((await invocation).statusCode, 201)
})

t.test('a REST API (payload 1.0) event is answered too', async (t) => {
  const response = await handler({
    resource: '/{proxy+}',
    path: '/grants',
    httpMethod: 'GET',
    headers: { authorization: `Bearer ${token}` },
    multiValueHeaders: { authorization: [`Bearer ${token}`] },
    queryStringParameters: { userName: 'alice' },
    multiValueQueryStringParameters: { userName: ['alice'] },
    requestContext: { requestId: randomUUID(), identity: { sourceIp: '127.0.0.1' } },
    body: null,
    isBase64Encoded: false,
  }, context())
  t.equal(response.statusCode, 200)
  t.equal(JSON.parse(response.body).items.length, 1)
})

t.test('a function URL event is answered too, and without a token it is refused as everywhere', async (t) => {
  const refused = await handler(httpApiEvent('GET', '/grants', { domainName: 'abcdefghij.lambda-url.us-east-1.on.aws' }), context())
  t.equal(refused.statusCode, 401)
  t.match(refused.headers['content-type'], /^application\/problem\+json/)
  t.equal(JSON.parse(refused.body).code, 'UNAUTHORIZED')

  const answered = await handler(httpApiEvent('GET', '/grants', { query: 'userName=alice', headers: { authorization: `Bearer ${token}` }, domainName: 'abcdefghij.lambda-url.us-east-1.on.aws' }), context())
  t.equal(answered.statusCode, 200)
})

t.test('the docs page works through the HTTP API, from the files shipped beside the bundle, icons intact', async (t) => {
  const page = await handler(httpApiEvent('GET', '/docs'), context())
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /^text\/html/)
  const script = await handler(httpApiEvent('GET', '/docs/static/swagger-ui-bundle.js'), context())
  t.equal(script.statusCode, 200)
  t.equal(script.body.length, readFileSync(join(bundleDir, 'static', 'swagger-ui-bundle.js'), 'utf8').length)
  const icon = await handler(httpApiEvent('GET', '/docs/static/favicon-32x32.png'), context())
  t.equal(icon.statusCode, 200)
  t.equal(icon.isBase64Encoded, true, 'binary bodies go back base64-encoded, as API Gateway expects')
  t.same(Buffer.from(icon.body, 'base64'), readFileSync(join(bundleDir, 'static', 'favicon-32x32.png')))
  const contract = await handler(httpApiEvent('GET', '/openapi.json'), context())
  t.equal(contract.statusCode, 200)
  t.same(JSON.parse(contract.body), JSON.parse(readFileSync(join(import.meta.dirname, '..', 'openapi', 'openapi.json'), 'utf8')), 'the committed contract')
})

t.test('configured with a JWKS URL, the bundle loads JWKS support (a chunk of its own) and verifies tokens by kid', async (t) => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
  const jwks = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [{ ...publicKey.export({ format: 'jwk' }), kid: 'k1', alg: 'ES256', use: 'sig' }] }))
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
  const withJwks = (await import(`${pathToFileURL(join(bundleDir, 'lambda.mjs')).href}?jwks`)) as { handler: typeof handler }

  const signed = mintToken({ algorithm: 'ES256', key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), kid: 'k1' })
  const answered = await withJwks.handler(httpApiEvent('GET', '/grants', { query: 'userName=alice', headers: { authorization: `Bearer ${signed}` } }), context())
  t.equal(answered.statusCode, 200)
  const hs256 = await withJwks.handler(httpApiEvent('GET', '/grants', { headers: { authorization: `Bearer ${token}` } }), context())
  t.equal(hs256.statusCode, 401, 'the shared-secret token is refused: this instance trusts only the key set')
})

t.test('an EventBridge scheduled event runs the sweep in process, and its audit events name system:scheduler', async (t) => {
  const grant = await createGrant('CHG0000008')
  await expireNow(grant.id)

  const summary = await handler(scheduledEvent, context())

  t.match(summary, { revoked: 1, failed: 0, remaining: 0 })
  const audit = await handler(httpApiEvent('GET', '/audit', { query: `grantId=${grant.id}&action=grant.expired`, headers: { authorization: `Bearer ${token}` } }), context())
  const [expired] = JSON.parse(audit.body).items
  t.equal(expired?.actor, SCHEDULER_ACTOR)
})

t.test('the sweep stops starting work before Lambda’s time runs out, and leaves the rest due for the next minute', async (t) => {
  const grant = await createGrant('CHG0000009')
  await expireNow(grant.id)

  const summary = await handler(scheduledEvent, context(4_000))

  t.match(summary, { revoked: 0, failed: 0, remaining: 1 })
  const read = await handler(httpApiEvent('GET', `/grants/${grant.id}`, { headers: { authorization: `Bearer ${token}` } }), context())
  t.equal(JSON.parse(read.body).status, 'active', 'still active: the next run ends it')
  t.match(await handler(scheduledEvent, context()), { revoked: 1, remaining: 0 })
})

t.test('the scheduled sweep is no HTTP route: POST /revocations still needs a token with revocations:run', async (t) => {
  const anonymous = await handler(httpApiEvent('POST', '/revocations'), context())
  t.equal(anonymous.statusCode, 401)
  const wrongScope = await handler(httpApiEvent('POST', '/revocations', { headers: { authorization: `Bearer ${mintToken({ scope: 'grants:read' })}` } }), context())
  t.equal(wrongScope.statusCode, 403)
  const scheduledLookalike = await handler(httpApiEvent('POST', '/revocations', { headers: { 'x-source': 'aws.events' }, body: scheduledEvent }), context())
  t.equal(scheduledLookalike.statusCode, 401, 'an HTTP request shaped like a schedule event is still an HTTP request')
})

t.test('a JWT secret from Secrets Manager that is missing or too short stops the start', async (t) => {
  const short = await clients.secrets.send(new CreateSecretCommand({ Name: 'jit-jwt-short', SecretString: 'short' }))
  await t.rejects(resolveJwtSecret({ jwt: {}, jwtSecretArn: short.ARN }, clients.secrets), { message: /at least 32 characters/ })
  const missing = `arn:aws:secretsmanager:us-east-1:123456789012:secret:jit-jwt-absent-AbCdEf`
  await t.rejects(resolveJwtSecret({ jwt: {}, jwtSecretArn: missing }, clients.secrets), { message: /Secrets Manager.*GetSecretValue/ })
})
