import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { App } from 'aws-cdk-lib'
import { Match, Template } from 'aws-cdk-lib/assertions'
import t from 'tap'
import { auditTableDefinition, grantsTableDefinition, GRANTS_TTL_ATTRIBUTE } from '../src/adapters/dynamodb/tables.ts'
import { readDeploymentContext } from '../infra/context.ts'
import { JitAccessStack, SWEEP_FAILURE_PATTERN, type JitAccessStackProps } from '../infra/stack.ts'

const ROOT = resolve(import.meta.dirname, '..')
const INSTANCE = 'arn:aws:sso:::instance/ssoins-1111111111111111'
const PERMISSION_SET = 'arn:aws:sso:::permissionSet/ssoins-1111111111111111/ps-2222222222222222'
const SECRET = 'arn:aws:secretsmanager:us-east-1:111111111111:secret:jit-access-jwt-AbCdEf'
const codeDir = mkdtempSync(join(tmpdir(), 'jit-asset-'))
t.teardown(() => rmSync(codeDir, { recursive: true, force: true }))
writeFileSync(join(codeDir, 'lambda.mjs'), 'export const handler = () => {}')

const settings: JitAccessStackProps = {
  env: { account: '333333333333', region: 'us-east-1' },
  codeDir,
  instanceArn: INSTANCE,
  identityStoreId: 'd-1111111111',
  managementAccountId: '111111111111',
  jwtIssuer: 'https://example.service-now.com',
  jwtAudience: 'jit-access',
  jwtSecretArn: SECRET,
  accountIds: ['222222222222'],
}
// Synthesized once for the whole file: synthesis is the slow part.
const template = Template.fromStack(new JitAccessStack(new App(), 'Test', settings))

type Resource = { Properties: Record<string, unknown>; DeletionPolicy?: string; UpdateReplacePolicy?: string }
type Statement = { Sid?: string; Action: string | string[]; Resource: unknown; Principal?: unknown }
const resources = (type: string) => Object.values(template.findResources(type)) as Resource[]
const statements = resources('AWS::IAM::Policy').flatMap((policy) => (policy.Properties.PolicyDocument as { Statement: Statement[] }).Statement)
const bySid = Object.fromEntries(statements.map((s) => [s.Sid, s]))
const join_ = (...parts: unknown[]) => ({ 'Fn::Join': ['', parts] })
const partition = { Ref: 'AWS::Partition' }

t.test('the function runs on Node 24 on arm64, with its configuration and no JWT secret in its environment', async (t) => {
  template.hasResourceProperties('AWS::Lambda::Function', {
    Runtime: 'nodejs24.x',
    Architectures: ['arm64'],
    Handler: 'lambda.handler',
    Timeout: 60,
    ReservedConcurrentExecutions: 5,
    Environment: { Variables: Match.objectLike({ JIT_JWT_SECRET_ARN: SECRET, JIT_POLICY_FILE: '/var/task/policy.json', JIT_INSTANCE_ARN: INSTANCE, JIT_IDENTITY_STORE_ID: 'd-1111111111' }) },
  })
  const variables = (resources('AWS::Lambda::Function')[0]?.Properties.Environment as { Variables: Record<string, unknown> }).Variables
  t.notOk('JIT_JWT_SECRET' in variables, 'the secret itself is never in the template')
})

t.test('EventBridge invokes the function every minute, directly; a failed or late sweep waits for the next minute', async (t) => {
  const [rule] = resources('AWS::Events::Rule')
  t.match(rule?.Properties, {
    ScheduleExpression: 'rate(1 minute)',
    State: 'ENABLED',
    Targets: [{ Arn: { 'Fn::GetAtt': [/^Function/, 'Arn'] }, RetryPolicy: { MaximumRetryAttempts: 0 } }],
  })
  template.hasResourceProperties('AWS::Lambda::Permission', { Principal: 'events.amazonaws.com', SourceArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^SweepSchedule'), 'Arn'] } })
  template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', { MaximumRetryAttempts: 0, MaximumEventAgeInSeconds: 60 })
})

t.test('both tables have exactly the keys and indexes the service defines, on-demand, point-in-time recovery, retained', async (t) => {
  const tables = resources('AWS::DynamoDB::Table')
  t.equal(tables.length, 2)
  for (const table of tables) {
    t.equal(table.Properties.BillingMode, 'PAY_PER_REQUEST')
    t.same(table.Properties.PointInTimeRecoverySpecification, { PointInTimeRecoveryEnabled: true })
    t.equal(table.Properties.DeletionProtectionEnabled, true)
    t.equal(table.DeletionPolicy, 'Retain')
    t.equal(table.UpdateReplacePolicy, 'Retain')
  }
  const shape = (source: { KeySchema?: unknown; AttributeDefinitions?: { AttributeName?: string }[]; GlobalSecondaryIndexes?: { IndexName?: string; KeySchema?: unknown }[] }) => ({
    keys: source.KeySchema,
    attributes: [...(source.AttributeDefinitions ?? [])].sort((a, b) => String(a.AttributeName).localeCompare(String(b.AttributeName))),
    indexes: (source.GlobalSecondaryIndexes ?? []).map((index) => ({ name: index.IndexName, keys: index.KeySchema })).sort((a, b) => String(a.name).localeCompare(String(b.name))),
  })
  const grantsTable = tables.find((table) => table.Properties.TimeToLiveSpecification)
  const auditTable = tables.find((table) => !table.Properties.TimeToLiveSpecification)
  t.same(shape(grantsTable?.Properties ?? {}), shape(grantsTableDefinition('x')), 'grants table: the definition in src/adapters/dynamodb/tables.ts')
  t.same(shape(auditTable?.Properties ?? {}), shape(auditTableDefinition('x')), 'audit table: the definition in src/adapters/dynamodb/tables.ts')
})

t.test('only the grants table expires items, by the attribute idempotency records carry; the audit table never does', async (t) => {
  const withTtl = resources('AWS::DynamoDB::Table').filter((table) => table.Properties.TimeToLiveSpecification)
  t.equal(withTtl.length, 1)
  t.same(withTtl[0]?.Properties.TimeToLiveSpecification, { AttributeName: GRANTS_TTL_ATTRIBUTE, Enabled: true })
  t.ok((withTtl[0]?.Properties.GlobalSecondaryIndexes as { IndexName: string }[]).some((index) => index.IndexName === 'due'), 'it is the grants table')
})

t.test('alerts: an encrypted topic, a log group with retention, alarms on errors and on sweep failures', async (t) => {
  template.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: { 'Fn::GetAtt': [Match.stringLikeRegexp('^AlertsKey'), 'Arn'] } })
  template.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true })
  template.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 365 })
  template.hasResourceProperties('AWS::Lambda::Function', { LoggingConfig: { LogGroup: { Ref: Match.stringLikeRegexp('^Logs') } } })
  template.hasResourceProperties('AWS::Logs::MetricFilter', {
    FilterPattern: SWEEP_FAILURE_PATTERN,
    MetricTransformations: [Match.objectLike({ MetricValue: '$.failed', MetricNamespace: 'JitAccess', MetricName: 'SweepFailures' })],
  })
  const alarms = resources('AWS::CloudWatch::Alarm')
  t.same(alarms.map((alarm) => alarm.Properties.MetricName).sort(), ['Errors', 'SweepFailures'])
  for (const alarm of alarms) t.match(alarm.Properties.AlarmActions, [{ Ref: /^Alerts/ }], 'publishes to the topic')
  const keyPolicy = (resources('AWS::KMS::Key')[0]?.Properties.KeyPolicy as { Statement: Statement[] }).Statement
  t.match(keyPolicy.find((s) => s.Sid === 'CloudWatchAlarmsPublishToTopic'), { Principal: { Service: 'cloudwatch.amazonaws.com' }, Action: ['kms:Decrypt', 'kms:GenerateDataKey'] }, 'CloudWatch may use the topic key')
})

t.test('the sweep-failure filter matches the line the service logs', async (t) => {
  // The service logs `app.log.info({ triggeredBy, ...summary }, 'revocation sweep finished')` (src/app.ts).
  const source = readFileSync(join(ROOT, 'src', 'app.ts'), 'utf8')
  t.match(source, /'revocation sweep finished'/)
  t.match(SWEEP_FAILURE_PATTERN, /\$\.msg = "revocation sweep finished"/)
  t.match(SWEEP_FAILURE_PATTERN, /\$\.failed > 0/)
})

t.test('the HTTP API is throttled and sends every route to the function', async (t) => {
  template.hasResourceProperties('AWS::ApiGatewayV2::Api', { ProtocolType: 'HTTP' })
  template.hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: '$default' })
  template.hasResourceProperties('AWS::ApiGatewayV2::Integration', { IntegrationType: 'AWS_PROXY', PayloadFormatVersion: '2.0' })
  template.hasResourceProperties('AWS::ApiGatewayV2::Stage', { StageName: '$default', AutoDeploy: true, DefaultRouteSettings: { ThrottlingRateLimit: 20, ThrottlingBurstLimit: 40 } })
  t.pass()
})

t.test('no IAM statement has a wildcard action or a "*" resource, and the role has no managed policies', async (t) => {
  t.ok(statements.length >= 12)
  for (const statement of statements) {
    t.notOk([statement.Action].flat().some((action) => action.includes('*')), `${statement.Sid}: actions named one by one`)
    t.notOk([statement.Resource].flat().includes('*'), `${statement.Sid}: resources scoped`)
  }
  t.notOk(resources('AWS::IAM::Role').some((role) => role.Properties.ManagedPolicyArns), 'no managed policies')
})

t.test('Identity Center and Identity Store actions are scoped to the instance, permission sets, accounts and identity store', async (t) => {
  const permissionSets = join_('arn:', partition, ':sso:::permissionSet/ssoins-1111111111111111/*')
  t.same(bySid.AssignAndRemoveAccess?.Resource, [INSTANCE, permissionSets, join_('arn:', partition, ':sso:::account/222222222222')])
  t.same(bySid.ReadAssignmentsAndStatus?.Resource, INSTANCE)
  t.same(bySid.ReadPermissionSets?.Resource, [INSTANCE, permissionSets])
  const store = join_('arn:', partition, ':identitystore::111111111111:identitystore/d-1111111111')
  t.same(bySid.ResolveUsers?.Resource, [store, join_('arn:', partition, ':identitystore:::user/*')])
  t.same(bySid.ReadGroupMemberships?.Resource, [store, join_('arn:', partition, ':identitystore:::user/*'), join_('arn:', partition, ':identitystore:::membership/*')])
  t.same(bySid.ReadGroups?.Resource, [store, join_('arn:', partition, ':identitystore:::group/*')])
})

t.test('the audit table can be appended to and read, never updated or deleted; the rest is scoped to its resource', async (t) => {
  t.same([bySid.AppendAndReadAudit?.Action].flat().sort(), ['dynamodb:PutItem', 'dynamodb:Query'])
  t.match(bySid.AppendAndReadAudit?.Resource, [{ 'Fn::GetAtt': [/^AuditTable/, 'Arn'] }, { 'Fn::Join': ['', [{ 'Fn::GetAtt': [/^AuditTable/, 'Arn'] }, '/index/*']] }])
  t.match(bySid.GrantState?.Resource, [{ 'Fn::GetAtt': [/^GrantsTable/, 'Arn'] }, { 'Fn::Join': ['', [{ 'Fn::GetAtt': [/^GrantsTable/, 'Arn'] }, '/index/*']] }])
  t.same(bySid.ReadJwtSecret, { Sid: 'ReadJwtSecret', Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: SECRET })
  t.match(bySid.PublishAlerts, { Action: 'sns:Publish', Resource: { Ref: /^Alerts/ } })
  t.match(bySid.EncryptAlerts, { Action: ['kms:GenerateDataKey', 'kms:Decrypt'], Resource: { 'Fn::GetAtt': [/^AlertsKey/, 'Arn'] } })
  t.match(bySid.WriteOwnLogs, { Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Resource: { 'Fn::GetAtt': [/^Logs/, 'Arn'] } })
})

t.test('the role allows exactly the AWS operations the service’s adapters call', async (t) => {
  const granted = new Set(statements.flatMap((s) => [s.Action].flat()).filter((action) => /^(sso|identitystore|dynamodb|sns|secretsmanager):/.test(action)))
  t.same([...adapterOperations()].sort(), [...granted].sort(), 'a call the role does not allow fails in production; a permission no call needs is too much')
})

t.test('settings that would give a wrong policy are refused at synth', async (t) => {
  const cases: [string, Partial<JitAccessStackProps>, RegExp][] = [
    ['an instance ARN that is not one', { instanceArn: 'ssoins-1111111111111111' }, /instanceArn/],
    ['an identity store id that is not one', { identityStoreId: 'store' }, /identityStoreId/],
    ['an account id that is not one', { accountIds: ['12345'] }, /accountIds/],
    ['a permission set of another instance', { permissionSetArns: ['arn:aws:sso:::permissionSet/ssoins-9999999999999999/ps-2222222222222222'] }, /another instance/],
    ['two JWT key sources', { jwksUrl: 'https://idp.example.com/jwks' }, /exactly one JWT key source/],
    ['no JWT key source', { jwtSecretArn: undefined }, /exactly one JWT key source/],
    ['a secret named without its ARN suffix', { jwtSecretArn: 'arn:aws:secretsmanager:us-east-1:111111111111:secret:jit-access-jwt' }, /complete ARN/],
    ['no reserved concurrency', { reservedConcurrency: 0 }, /reservedConcurrency/],
    ['an Identity Center rate above the quota', { identityCenterTps: 25 }, /identityCenterTps/],
  ]
  for (const [name, change, message] of cases) {
    t.throws(() => new JitAccessStack(new App(), 'Bad', { ...settings, ...change }), { message }, name)
  }
  t.doesNotThrow(() => new JitAccessStack(new App(), 'Good', { ...settings, permissionSetArns: [PERMISSION_SET] }), 'a permission set of the instance')
})

t.test('CDK context: -c strings and cdk.json lists both work, paths are relative to infra/, missing values are named', async (t) => {
  const keyFile = join(codeDir, 'public.pem')
  writeFileSync(keyFile, '-----BEGIN PUBLIC KEY-----\nx\n-----END PUBLIC KEY-----\n')
  const context: Record<string, unknown> = {
    instanceArn: INSTANCE, identityStoreId: 'd-1111111111', jwtIssuer: 'i', jwtAudience: 'a', jwtPublicKeyFile: 'public.pem',
    policyFile: 'policy.json', accountIds: '111111111111, 222222222222', permissionSetArns: [PERMISSION_SET], reservedConcurrency: '3',
  }
  const read = readDeploymentContext((name) => context[name], codeDir)
  t.match(read, {
    stackName: 'JitAccess',
    policyFile: join(codeDir, 'policy.json'),
    stack: { accountIds: ['111111111111', '222222222222'], permissionSetArns: [PERMISSION_SET], reservedConcurrency: 3, jwtPublicKey: /BEGIN PUBLIC KEY/, jwtSecretArn: undefined },
  })
  t.throws(() => readDeploymentContext((name) => ({ ...context, instanceArn: undefined })[name], codeDir), { message: /Missing CDK context value 'instanceArn'/ })
  t.throws(() => readDeploymentContext((name) => ({ ...context, reservedConcurrency: 'five' })[name], codeDir), { message: /reservedConcurrency/ })
})

/**
 * The IAM actions behind every AWS SDK command the adapters import. Left out on purpose: tables.ts (creates
 * tables for the sandbox and tests; in AWS the stack does) and sso:ListInstances (called only when the
 * instance is not configured; the stack always configures it).
 */
function adapterOperations(): Set<string> {
  const dir = join(ROOT, 'src', 'adapters')
  const files = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((file) => file.endsWith('.ts') && !file.endsWith('tables.ts'))
  const prefixes: Record<string, string> = {
    '@aws-sdk/client-sso-admin': 'sso',
    '@aws-sdk/client-identitystore': 'identitystore',
    '@aws-sdk/client-dynamodb': 'dynamodb',
    '@aws-sdk/client-sns': 'sns',
    '@aws-sdk/client-secrets-manager': 'secretsmanager',
  }
  const documentClient: Record<string, string[]> = {
    Get: ['GetItem'], Put: ['PutItem'], Update: ['UpdateItem'], Delete: ['DeleteItem'], Query: ['Query'], Scan: ['Scan'],
    BatchGet: ['BatchGetItem'], BatchWrite: ['BatchWriteItem'], TransactGet: ['GetItem'],
  }
  const transactItem: Record<string, string> = { Put: 'PutItem', Update: 'UpdateItem', Delete: 'DeleteItem', ConditionCheck: 'ConditionCheckItem' }
  const operations = new Set<string>()
  for (const file of files) {
    const source = readFileSync(join(dir, file), 'utf8')
    for (const [, names = '', module = ''] of source.matchAll(/import\s*\{([^}]*)\}\s*from\s*'(@aws-sdk\/[^']+)'/g)) {
      const imported = names.split(',').map((name) => name.trim()).filter((name) => name && !name.startsWith('type '))
      for (const name of imported) {
        const operation = /^paginate(\w+)$/.exec(name)?.[1] ?? /^(\w+)Command$/.exec(name)?.[1]
        if (!operation) continue
        if (module === '@aws-sdk/lib-dynamodb') {
          if (operation === 'TransactWrite') {
            for (const [, kind = ''] of source.matchAll(/\{\s*(Put|Update|Delete|ConditionCheck)\s*:/g)) operations.add(`dynamodb:${transactItem[kind]}`)
          } else {
            for (const action of documentClient[operation] ?? [`unmapped:${operation}`]) operations.add(`dynamodb:${action}`)
          }
        } else if (prefixes[module]) {
          operations.add(`${prefixes[module]}:${operation}`)
        }
      }
    }
  }
  operations.delete('sso:ListInstances')
  return operations
}
