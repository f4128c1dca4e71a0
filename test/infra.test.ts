import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { App } from 'aws-cdk-lib'
import { Match, Template } from 'aws-cdk-lib/assertions'
import t from 'tap'
import { AUDIT_INDEXES, GRANT_INDEXES, GRANTS_TTL_ATTRIBUTE } from '../src/adapters/dynamodb/tables.ts'
import { JitAccessStack } from '../infra/stack.ts'

const INSTANCE = 'arn:aws:sso:::instance/ssoins-1111111111111111'
const SECRET = 'arn:aws:secretsmanager:us-east-1:111111111111:secret:jit-access-jwt-AbCdEf'
const codeDir = mkdtempSync(join(tmpdir(), 'jit-asset-'))
t.teardown(() => rmSync(codeDir, { recursive: true, force: true }))
writeFileSync(join(codeDir, 'lambda.mjs'), 'export const handler = () => {}')
const stack = new JitAccessStack(new App(), 'Test', {
  env: { account: '111111111111', region: 'us-east-1' },
  codeDir,
  instanceArn: INSTANCE,
  identityStoreId: 'd-1111111111',
  jwtIssuer: 'https://example.service-now.com',
  jwtAudience: 'jit-access',
  jwtSecretArn: SECRET,
  accountIds: ['222222222222'],
})
const template = Template.fromStack(stack)
const resources = (type: string) => Object.values(template.findResources(type)) as { Properties: Record<string, unknown>; DeletionPolicy?: string; UpdateReplacePolicy?: string }[]

t.test('the function runs on Node 24, arm64, with no JWT secret in its environment', async (t) => {
  template.hasResourceProperties('AWS::Lambda::Function', {
    Runtime: 'nodejs24.x',
    Architectures: ['arm64'],
    Handler: 'lambda.handler',
    Timeout: 60,
    ReservedConcurrentExecutions: 5,
    Environment: { Variables: Match.objectLike({ JIT_JWT_SECRET_ARN: SECRET, JIT_POLICY_FILE: '/var/task/policy.json', JIT_INSTANCE_ARN: INSTANCE }) },
  })
  const variables = (resources('AWS::Lambda::Function')[0]?.Properties.Environment as { Variables: Record<string, unknown> }).Variables
  t.notOk('JIT_JWT_SECRET' in variables, 'the secret itself is never in the template')
})

t.test('EventBridge invokes the function every minute, directly', async (t) => {
  template.hasResourceProperties('AWS::Events::Rule', {
    ScheduleExpression: 'rate(1 minute)',
    State: 'ENABLED',
    Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^Function'), 'Arn'] } })],
  })
  t.pass('schedule present')
})

t.test('both tables are protected: on-demand, point-in-time recovery, retained, deletion protection, the service’s indexes', async (t) => {
  const tables = resources('AWS::DynamoDB::Table')
  t.equal(tables.length, 2)
  for (const table of tables) {
    t.equal(table.Properties.BillingMode, 'PAY_PER_REQUEST')
    t.same(table.Properties.PointInTimeRecoverySpecification, { PointInTimeRecoveryEnabled: true })
    t.equal(table.Properties.DeletionProtectionEnabled, true)
    t.equal(table.DeletionPolicy, 'Retain')
    t.equal(table.UpdateReplacePolicy, 'Retain')
  }
  const indexNames = (table: (typeof tables)[number]) => ((table.Properties.GlobalSecondaryIndexes as { IndexName: string }[]) ?? []).map((i) => i.IndexName).sort()
  const withTtl = tables.filter((table) => table.Properties.TimeToLiveSpecification)
  t.equal(withTtl.length, 1, 'only one table has a TTL')
  t.same(withTtl[0]?.Properties.TimeToLiveSpecification, { AttributeName: GRANTS_TTL_ATTRIBUTE, Enabled: true })
  t.same(indexNames(withTtl[0] as (typeof tables)[number]), Object.values(GRANT_INDEXES).map((i) => i.name).sort(), 'the grants table')
  const auditTable = tables.find((table) => !table.Properties.TimeToLiveSpecification) as (typeof tables)[number]
  t.same(indexNames(auditTable), Object.values(AUDIT_INDEXES).map((i) => i.name).sort(), 'the audit table has no TTL')
})

t.test('alerts: an encrypted topic, a log group with retention, alarms on errors and on sweep failures', async (t) => {
  template.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue() })
  template.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true })
  template.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 365 })
  template.hasResourceProperties('AWS::Logs::MetricFilter', { FilterPattern: '{ $.msg = "revocation sweep finished" && $.failed > 0 }' })
  const alarms = resources('AWS::CloudWatch::Alarm')
  t.equal(alarms.length, 2)
  for (const alarm of alarms) t.match(alarm.Properties.AlarmActions, [{ Ref: /^Alerts/ }])
})

t.test('the HTTP API is throttled and forwards everything to the function', async (t) => {
  template.hasResourceProperties('AWS::ApiGatewayV2::Api', { ProtocolType: 'HTTP' })
  template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
    StageName: '$default',
    DefaultRouteSettings: { ThrottlingRateLimit: 20, ThrottlingBurstLimit: 40 },
  })
  t.pass('throttled')
})

t.test('every IAM statement names its actions and scopes its resources', async (t) => {
  const statements = resources('AWS::IAM::Policy').flatMap((policy) => (policy.Properties.PolicyDocument as { Statement: { Sid?: string; Action: string | string[]; Resource: unknown }[] }).Statement)
  t.ok(statements.length >= 9)
  for (const statement of statements) {
    const actions = [statement.Action].flat()
    t.notOk(actions.some((action) => action.includes('*') && !action.startsWith('kms:GenerateDataKey')), `${statement.Sid}: no wildcard actions`)
    t.notOk([statement.Resource].flat().includes('*'), `${statement.Sid}: no '*' resource`)
  }
  const bySid = Object.fromEntries(statements.map((s) => [s.Sid, s]))
  t.same(bySid.AssignAndRemoveAccess?.Resource, [INSTANCE, { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':sso:::permissionSet/ssoins-1111111111111111/*']] }, { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':sso:::account/222222222222']] }])
  t.same(bySid.ReadAssignmentsAndStatus?.Resource, INSTANCE)
  t.same([bySid.AppendAndReadAudit?.Action].flat().sort(), ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query'], 'the audit table can be appended to and read, never updated or deleted')
  t.same(bySid.ReadJwtSecret?.Resource, SECRET)
  t.match(bySid.PublishAlerts, { Action: 'sns:Publish', Resource: { Ref: /^Alerts/ } })
  t.notOk(resources('AWS::IAM::Role').some((role) => role.Properties.ManagedPolicyArns), 'no managed policies')
})
