import { randomUUID } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager'
import { CreateTopicCommand } from '@aws-sdk/client-sns'
import t from 'tap'
import { createAwsClients } from '../src/adapters/aws.ts'
import { ensureTables } from '../src/adapters/dynamodb/tables.ts'
import { resolveInstance } from '../src/adapters/identity-center.ts'
import { DEMO_POLICY, seedDirectory } from '../src/sandbox/seed.ts'
import { buildAll } from '../infra/build.ts'
import { TEST_DIRECTORY } from './helpers/app.ts'
import { startMoto } from './helpers/moto.ts'
import { mintToken, TEST_AUDIENCE, TEST_ISSUER, TEST_SECRET } from './helpers/tokens.ts'

const ROOT = resolve(import.meta.dirname, '..')
const DIST = join(ROOT, 'dist')
const moto = await startMoto(t)
const context = { getRemainingTimeInMillis: () => 60_000, awsRequestId: randomUUID() }

// Everything the bundle reads at module load: an environment as CDK would set it, against moto.
const clients = createAwsClients({ region: 'us-east-1', endpoint: moto.endpoint })
const instance = await resolveInstance(clients.ssoAdmin, {})
await ensureTables(clients.dynamo, { grants: 'lambda-grants', audit: 'lambda-audit' })
await seedDirectory(clients, instance, TEST_DIRECTORY)
const topic = await clients.sns.send(new CreateTopicCommand({ Name: 'lambda-alerts' }))
const secret = await new SecretsManagerClient({ region: 'us-east-1', endpoint: moto.endpoint }).send(new CreateSecretCommand({ Name: 'jit-jwt', SecretString: TEST_SECRET }))
const policyFile = join(DIST, 'test-policy.json')
await buildAll(DIST)
writeFileSync(policyFile, JSON.stringify(DEMO_POLICY))
Object.assign(process.env, {
  LOG_LEVEL: 'silent',
  AWS_ENDPOINT_URL: moto.endpoint,
  AWS_REGION: 'us-east-1',
  JIT_GRANTS_TABLE: 'lambda-grants',
  JIT_AUDIT_TABLE: 'lambda-audit',
  JIT_SNS_TOPIC_ARN: topic.TopicArn,
  JIT_INSTANCE_ARN: instance.instanceArn,
  JIT_IDENTITY_STORE_ID: instance.identityStoreId,
  JIT_JWT_SECRET_ARN: secret.ARN,
  JIT_JWT_ISSUER: TEST_ISSUER,
  JIT_JWT_AUDIENCE: TEST_AUDIENCE,
  JIT_POLICY_FILE: policyFile,
})
const { handler } = await import(join(DIST, 'lambda.mjs'))
const token = mintToken()
const body = JSON.stringify({ userName: 'alice', accountId: '111111111111', permissionSet: 'AdministratorAccess', durationMinutes: 60, ticketId: 'CHG0000007' })

t.test('an HTTP API (payload v2) event is answered like the server answers it, with the secret read from Secrets Manager', async (t) => {
  const response = await handler({
    version: '2.0',
    routeKey: 'POST /grants',
    rawPath: '/grants',
    rawQueryString: '',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    requestContext: { http: { method: 'POST', path: '/grants', sourceIp: '127.0.0.1' }, requestId: 'r1' },
    body,
    isBase64Encoded: false,
  }, context)
  t.equal(response.statusCode, 201)
  t.match(JSON.parse(response.body), { status: 'active', userName: 'alice', requestedBy: 'servicenow-workflow' })
})

t.test('REST API (v1) and function URL events work too, and refuse a missing token', async (t) => {
  const v1 = await handler({
    httpMethod: 'GET',
    path: '/grants',
    headers: { authorization: `Bearer ${token}` },
    multiValueHeaders: {},
    queryStringParameters: { userName: 'alice' },
    requestContext: { requestId: 'r2' },
    body: null,
    isBase64Encoded: false,
  }, context)
  t.equal(v1.statusCode, 200)
  t.equal(JSON.parse(v1.body).items.length, 1)

  const functionUrl = await handler({
    version: '2.0',
    rawPath: '/grants',
    rawQueryString: '',
    headers: {},
    requestContext: { http: { method: 'GET', path: '/grants', sourceIp: '127.0.0.1' }, requestId: 'r3', domainName: 'abc.lambda-url.us-east-1.on.aws' },
    isBase64Encoded: false,
  }, context)
  t.equal(functionUrl.statusCode, 401)
  t.equal(JSON.parse(functionUrl.body).code, 'UNAUTHORIZED')
})

t.test('an EventBridge scheduled event runs the sweep in process as system:scheduler', async (t) => {
  const created = await handler({
    version: '2.0', rawPath: '/grants', rawQueryString: '',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    requestContext: { http: { method: 'POST', path: '/grants', sourceIp: '127.0.0.1' }, requestId: 'r4' },
    body: JSON.stringify({ ...JSON.parse(body), ticketId: 'CHG0000008', durationMinutes: 1 }),
    isBase64Encoded: false,
  }, context)
  const grant = JSON.parse(created.body)
  // The bundle runs on the real clock: wait out the one-minute grant by moving its expiry instead.
  const { UpdateCommand, DynamoDBDocumentClient } = await import('@aws-sdk/lib-dynamodb')
  await DynamoDBDocumentClient.from(clients.dynamo).send(new UpdateCommand({
    TableName: 'lambda-grants', Key: { pk: `grant#${grant.id}` },
    UpdateExpression: 'SET dueAt = :past, expiresAt = :pastIso',
    ExpressionAttributeValues: { ':past': Date.now() - 1000, ':pastIso': new Date(Date.now() - 1000).toISOString() },
  }))

  const summary = await handler({ source: 'aws.events', 'detail-type': 'Scheduled Event', resources: ['arn:aws:events:us-east-1:123456789012:rule/jit-sweep'], detail: {} }, context)

  t.match(summary, { revoked: 1, failed: 0 })
  const audit = await handler({
    version: '2.0', rawPath: '/audit', rawQueryString: `grantId=${grant.id}&action=grant.expired`,
    headers: { authorization: `Bearer ${token}` },
    requestContext: { http: { method: 'GET', path: '/audit', sourceIp: '127.0.0.1' }, requestId: 'r5' },
    isBase64Encoded: false,
  }, context)
  t.equal(JSON.parse(audit.body).items[0]?.actor, 'system:scheduler')
})

t.test('a scheduled event is not an HTTP route: POST /revocations still needs a token', async (t) => {
  const response = await handler({
    version: '2.0', rawPath: '/revocations', rawQueryString: '', headers: {},
    requestContext: { http: { method: 'POST', path: '/revocations', sourceIp: '127.0.0.1' }, requestId: 'r6' },
    isBase64Encoded: false,
  }, context)
  t.equal(response.statusCode, 401)
})
