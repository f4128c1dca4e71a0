import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { App } from 'aws-cdk-lib'
import { Match, Template } from 'aws-cdk-lib/assertions'
import t from 'tap'
import { readDeploymentContext, refuseUnscopedGroupGrants } from '../infra/context.ts'
import {
  API_ACCESS_LOG_FORMAT,
  DUE_RESERVED_CONCURRENCY,
  JitAccessStack,
  type JitAccessStackProps,
  SWEEP_FAILURE_PATTERN,
  SWEEP_RESERVED_CONCURRENCY,
} from '../infra/stack.ts'
import { auditTableDefinition, GRANTS_TTL_ATTRIBUTE, grantsTableDefinition } from '../src/adapters/dynamodb/tables.ts'
import { DEFAULT_ANCHOR_RETENTION_DAYS } from '../src/adapters/s3-anchors.ts'
import { EMPTY_CUTOFF_POLICY } from '../src/core/cutoff-policy.ts'

const ROOT = resolve(import.meta.dirname, '..')
const INSTANCE = 'arn:aws:sso:::instance/ssoins-1111111111111111'
const PERMISSION_SET = 'arn:aws:sso:::permissionSet/ssoins-1111111111111111/ps-2222222222222222'
const GROUP_ID = '11111111-2222-3333-4444-555555555555'
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
  permissionSetArns: [PERMISSION_SET],
  grantableGroupIds: [GROUP_ID],
  sessionCutoff: { targetIds: ['r-ab12'], policies: 2 },
  readOrganization: true,
}
// Synthesized once for the whole file: synthesis is the slow part.
const template = Template.fromStack(new JitAccessStack(new App(), 'Test', settings))

type Resource = { Properties: Record<string, unknown>; DeletionPolicy?: string; UpdateReplacePolicy?: string }
type Statement = { Sid?: string; Action: string | string[]; Resource: unknown; Principal?: unknown }
const resources = (type: string) => Object.values(template.findResources(type)) as Resource[]
const statements = resources('AWS::IAM::Policy').flatMap(
  (policy) => (policy.Properties.PolicyDocument as { Statement: Statement[] }).Statement,
)
const bySid = Object.fromEntries(statements.map((s) => [s.Sid, s]))
const join_ = (...parts: unknown[]) => ({ 'Fn::Join': ['', parts] })
const functionId = (prefix: RegExp) => {
  const ids = Object.keys(template.findResources('AWS::Lambda::Function')).filter((id) => prefix.test(id))
  if (ids.length !== 1) throw new Error(`expected one function matching ${prefix}, found ${ids.join(', ') || 'none'}`)
  return ids[0] as string
}
const apiFunctionId = () => functionId(/^Function[0-9A-F]{8}$/)
const sweepFunctionId = () => functionId(/^SweepFunction[0-9A-F]{8}$/)
const apiFunction = () => template.findResources('AWS::Lambda::Function')[apiFunctionId()] as Resource
const sweepFunction = () => template.findResources('AWS::Lambda::Function')[sweepFunctionId()] as Resource
const dueFunctionId = () => functionId(/^DueFunction[0-9A-F]{8}$/)
const dueFunction = () => template.findResources('AWS::Lambda::Function')[dueFunctionId()] as Resource
const partition = { Ref: 'AWS::Partition' }

t.test(
  'every function runs on Node 24 on arm64, with the same code and configuration and no JWT secret in their environment',
  async (t) => {
    const functions = resources('AWS::Lambda::Function')
    t.equal(functions.length, 3, 'the API function, the sweep function and the due function')
    for (const fn of functions) {
      t.match(fn.Properties, {
        Runtime: 'nodejs24.x',
        Architectures: ['arm64'],
        Handler: 'lambda.handler',
        Timeout: 60,
        Environment: {
          Variables: {
            JIT_JWT_SECRET_ARN: SECRET,
            JIT_POLICY_FILE: '/var/task/policy.json',
            JIT_INSTANCE_ARN: INSTANCE,
            JIT_IDENTITY_STORE_ID: 'd-1111111111',
          },
        },
      })
      t.notOk(
        'JIT_JWT_SECRET' in (fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables,
        'the secret itself is never in the template',
      )
    }
    const [api, sweep] = [apiFunction(), sweepFunction()]
    t.same(sweep.Properties.Code, api.Properties.Code, 'one bundle: src/lambda.ts routes each event')
    t.same(sweep.Properties.Environment, api.Properties.Environment)
    t.same(sweep.Properties.Role, api.Properties.Role)
    t.same(dueFunction().Properties.Code, api.Properties.Code)
    t.same(dueFunction().Properties.Environment, api.Properties.Environment)
    template.hasOutput('FunctionName', { Value: { Ref: apiFunctionId() } })
    template.hasOutput('SweepFunctionName', { Value: { Ref: sweepFunctionId() } })
  },
)

t.test(
  'the sweep has its own reserved concurrency, so API traffic cannot throttle it; the API has its own',
  async (t) => {
    t.equal(apiFunction().Properties.ReservedConcurrentExecutions, 5)
    t.equal(sweepFunction().Properties.ReservedConcurrentExecutions, SWEEP_RESERVED_CONCURRENCY)
    t.ok(SWEEP_RESERVED_CONCURRENCY >= 1 && SWEEP_RESERVED_CONCURRENCY <= 2, 'small: one run a minute')
    const custom = Template.fromStack(new JitAccessStack(new App(), 'Custom', { ...settings, reservedConcurrency: 3 }))
    const concurrency = Object.values(custom.findResources('AWS::Lambda::Function'))
      .map((fn) => fn.Properties.ReservedConcurrentExecutions)
      .sort()
    t.same(
      concurrency,
      [SWEEP_RESERVED_CONCURRENCY, DUE_RESERVED_CONCURRENCY, 3].sort(),
      'reservedConcurrency sizes the API function only',
    )
  },
)

t.test('the HTTP API invokes only the API function; EventBridge only the sweep function', async (t) => {
  template.hasResourceProperties('AWS::ApiGatewayV2::Integration', {
    IntegrationUri: { 'Fn::GetAtt': [apiFunctionId(), 'Arn'] },
  })
  const permissions = resources('AWS::Lambda::Permission').map((permission) => permission.Properties)
  const invokedBy = (id: string) =>
    permissions.filter((p) => JSON.stringify(p.FunctionName).includes(`"${id}"`)).map((p) => p.Principal)
  t.same(invokedBy(apiFunctionId()), ['apigateway.amazonaws.com'])
  t.same(invokedBy(sweepFunctionId()), ['events.amazonaws.com'])
})

t.test(
  'the due queue: encrypted, TLS only, short-lived, with a dead-letter queue, consumed by the due function alone with partial batch answers',
  async (t) => {
    const queues = template.findResources('AWS::SQS::Queue')
    const dueId = Object.keys(queues).find((id) => /^DueQueue/.test(id)) as string
    const deadId = Object.keys(queues).find((id) => /^DueDeadLetterQueue/.test(id)) as string
    t.match(queues[dueId]?.Properties, {
      SqsManagedSseEnabled: true,
      MessageRetentionPeriod: 1800,
      VisibilityTimeout: 360,
      RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': [deadId, 'Arn'] }, maxReceiveCount: 3 },
    })
    t.match(queues[deadId]?.Properties, { SqsManagedSseEnabled: true })
    t.equal(resources('AWS::SQS::QueuePolicy').length, 2, 'TLS only, on both')
    const mappings = resources('AWS::Lambda::EventSourceMapping')
    t.equal(mappings.length, 1)
    t.match(mappings[0]?.Properties, {
      EventSourceArn: { 'Fn::GetAtt': [dueId, 'Arn'] },
      FunctionName: { Ref: dueFunctionId() },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: DUE_RESERVED_CONCURRENCY },
    })
    t.equal(dueFunction().Properties.ReservedConcurrentExecutions, DUE_RESERVED_CONCURRENCY)
    t.match(apiFunction().Properties.Environment, {
      Variables: { JIT_DUE_QUEUE_URL: { Ref: dueId }, JIT_DUE_QUEUE_ARN: { 'Fn::GetAtt': [dueId, 'Arn'] } },
    })
    t.match(bySid.QueueDueGrants, { Action: 'sqs:SendMessage', Resource: { 'Fn::GetAtt': [dueId, 'Arn'] } })
    const sqsActions = statements.filter((s) => [s.Action].flat().some((a) => a.startsWith('sqs:')))
    t.ok(
      sqsActions.every((s) => JSON.stringify(s.Resource) === JSON.stringify({ 'Fn::GetAtt': [dueId, 'Arn'] })),
      'every SQS permission is on the due queue alone',
    )
    template.hasOutput('DueFunctionName', { Value: { Ref: dueFunctionId() } })
  },
)

t.test(
  'EventBridge invokes the sweep function every minute, directly; a failed or late sweep waits for the next minute',
  async (t) => {
    const [rule] = resources('AWS::Events::Rule')
    t.match(rule?.Properties, {
      ScheduleExpression: 'rate(1 minute)',
      State: 'ENABLED',
      Targets: [{ Arn: { 'Fn::GetAtt': [sweepFunctionId(), 'Arn'] }, RetryPolicy: { MaximumRetryAttempts: 0 } }],
    })
    t.equal((rule!.Properties.Targets as unknown[]).length, 1)
    template.hasResourceProperties('AWS::Lambda::Permission', {
      Principal: 'events.amazonaws.com',
      SourceArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^SweepSchedule'), 'Arn'] },
    })
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: sweepFunctionId() },
      MaximumRetryAttempts: 0,
      MaximumEventAgeInSeconds: 60,
    })
  },
)

t.test(
  'both tables have exactly the keys and indexes the service defines, on-demand, point-in-time recovery, retained',
  async (t) => {
    const tables = resources('AWS::DynamoDB::Table')
    t.equal(tables.length, 2)
    for (const table of tables) {
      t.equal(table.Properties.BillingMode, 'PAY_PER_REQUEST')
      t.same(table.Properties.PointInTimeRecoverySpecification, { PointInTimeRecoveryEnabled: true })
      t.equal(table.Properties.DeletionProtectionEnabled, true)
      t.equal(table.DeletionPolicy, 'Retain')
      t.equal(table.UpdateReplacePolicy, 'Retain')
    }
    const shape = (source: {
      KeySchema?: unknown
      AttributeDefinitions?: { AttributeName?: string }[]
      GlobalSecondaryIndexes?: { IndexName?: string; KeySchema?: unknown }[]
    }) => ({
      keys: source.KeySchema,
      attributes: [...(source.AttributeDefinitions ?? [])].sort((a, b) =>
        String(a.AttributeName).localeCompare(String(b.AttributeName)),
      ),
      indexes: (source.GlobalSecondaryIndexes ?? [])
        .map((index) => ({ name: index.IndexName, keys: index.KeySchema }))
        .sort((a, b) => String(a.name).localeCompare(String(b.name))),
    })
    const grantsTable = tables.find((table) => table.Properties.TimeToLiveSpecification)
    const auditTable = tables.find((table) => !table.Properties.TimeToLiveSpecification)
    t.same(
      shape(grantsTable?.Properties ?? {}),
      shape(grantsTableDefinition('x')),
      'grants table: the definition in src/adapters/dynamodb/tables.ts',
    )
    t.same(
      shape(auditTable?.Properties ?? {}),
      shape(auditTableDefinition('x')),
      'audit table: the definition in src/adapters/dynamodb/tables.ts',
    )
  },
)

t.test(
  'only the grants table expires items, by the attribute idempotency records carry; the audit table never does',
  async (t) => {
    const withTtl = resources('AWS::DynamoDB::Table').filter((table) => table.Properties.TimeToLiveSpecification)
    t.equal(withTtl.length, 1)
    t.same(withTtl[0]?.Properties.TimeToLiveSpecification, { AttributeName: GRANTS_TTL_ATTRIBUTE, Enabled: true })
    t.ok(
      (withTtl[0]!.Properties.GlobalSecondaryIndexes as { IndexName: string }[]).some(
        (index) => index.IndexName === 'due',
      ),
      'it is the grants table',
    )
  },
)

t.test('alerts: an encrypted topic, a log group with retention, alarms on errors and on sweep failures', async (t) => {
  template.hasResourceProperties('AWS::SNS::Topic', {
    KmsMasterKeyId: { 'Fn::GetAtt': [Match.stringLikeRegexp('^AlertsKey'), 'Arn'] },
  })
  template.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true })
  template.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 365 })
  t.match(apiFunction().Properties.LoggingConfig, { LogGroup: { Ref: /^Logs/ } })
  t.match(
    sweepFunction().Properties.LoggingConfig,
    { LogGroup: { Ref: /^SweepLogs/ } },
    'the sweep logs apart from the requests',
  )
  const filters = resources('AWS::Logs::MetricFilter')
  t.same(
    filters.map((filter) => (filter.Properties.LogGroupName as { Ref: string }).Ref.replace(/[0-9A-F]{8}$/, '')).sort(),
    ['Logs', 'SweepLogs'],
    'sweeps on demand and scheduled',
  )
  for (const filter of filters) {
    t.match(filter.Properties, {
      FilterPattern: SWEEP_FAILURE_PATTERN,
      MetricTransformations: [{ MetricValue: '$.failed', MetricNamespace: 'JitAccess', MetricName: 'SweepFailures' }],
    })
  }
  const alarms = resources('AWS::CloudWatch::Alarm')
  t.same(alarms.map((alarm) => alarm.Properties.MetricName).sort(), ['Errors', 'Errors', 'Errors', 'SweepFailures'])
  const erroring = alarms
    .filter((alarm) => alarm.Properties.MetricName === 'Errors')
    .map((alarm) => (alarm.Properties.Dimensions as { Value: { Ref: string } }[])[0]?.Value.Ref)
    .sort()
  t.same(erroring, [apiFunctionId(), sweepFunctionId(), dueFunctionId()].sort(), 'an error alarm on each function')
  for (const alarm of alarms) t.match(alarm.Properties.AlarmActions, [{ Ref: /^Alerts/ }], 'publishes to the topic')
  const keyPolicy = (resources('AWS::KMS::Key')[0]!.Properties.KeyPolicy as { Statement: Statement[] }).Statement
  t.match(
    keyPolicy.find((s) => s.Sid === 'CloudWatchAlarmsPublishToTopic'),
    { Principal: { Service: 'cloudwatch.amazonaws.com' }, Action: ['kms:Decrypt', 'kms:GenerateDataKey'] },
    'CloudWatch may use the topic key',
  )
})

t.test('KMS keys let AWS services use them only on behalf of this account’s own resources', async (t) => {
  type Conditioned = Statement & { Condition?: Record<string, Record<string, unknown>> }
  const keyStatements = resources('AWS::KMS::Key').flatMap(
    (key) => (key.Properties.KeyPolicy as { Statement: Conditioned[] }).Statement,
  )
  const services = keyStatements.filter((s) => JSON.stringify(s.Principal ?? {}).includes('"Service"'))
  t.ok(services.length >= 1)
  for (const statement of services) {
    t.match(
      statement.Condition,
      { StringEquals: { 'aws:SourceAccount': '333333333333' } },
      `${statement.Sid}: for this account only`,
    )
    t.ok(
      Object.values(statement.Condition ?? {}).some((keys) => 'aws:SourceArn' in keys),
      `${statement.Sid}: for named source resources only`,
    )
  }
  const alarmsOnly = services.find((s) => s.Sid === 'CloudWatchAlarmsPublishToTopic')
  t.same(alarmsOnly?.Condition, {
    StringEquals: { 'aws:SourceAccount': '333333333333' },
    ArnLike: { 'aws:SourceArn': join_('arn:', partition, ':cloudwatch:us-east-1:333333333333:alarm:*') },
  })
})

t.test('the sweep-failure filter matches the line the service logs', async (t) => {
  // The service logs `app.log.info({ triggeredBy, ...summary }, 'revocation sweep finished')` (src/app.ts).
  const source = readFileSync(join(ROOT, 'src', 'app.ts'), 'utf8')
  t.match(source, /'revocation sweep finished'/)
  t.match(SWEEP_FAILURE_PATTERN, /\$\.msg = "revocation sweep finished"/)
  t.match(SWEEP_FAILURE_PATTERN, /\$\.failed > 0/)
})

t.test(
  'the HTTP API logs every request as JSON, with API Gateway’s request id, to a log group kept a year',
  async (t) => {
    const [stage] = resources('AWS::ApiGatewayV2::Stage')
    const accessLog = stage?.Properties.AccessLogSettings as { DestinationArn: unknown; Format: string } | undefined
    t.match(accessLog?.DestinationArn, { 'Fn::GetAtt': [/^ApiAccessLogs/, 'Arn'] })
    const format = JSON.parse(accessLog?.Format ?? 'null') as Record<string, string>
    t.same(format, API_ACCESS_LOG_FORMAT)
    t.equal(format.requestId, '$context.requestId', 'the id the service logs and answers with')
    t.notOk(
      Object.values(format).some((variable) => /header|querystring|authorizer\.claims/i.test(variable)),
      'nothing that can carry a token',
    )
    const accessLogs = Object.entries(template.findResources('AWS::Logs::LogGroup')).find(([id]) =>
      id.startsWith('ApiAccessLogs'),
    )?.[1] as Resource | undefined
    t.match(accessLogs, { Properties: { RetentionInDays: 365 }, DeletionPolicy: 'Retain' })
  },
)

t.test('the HTTP API is throttled and sends every route to the function', async (t) => {
  template.hasResourceProperties('AWS::ApiGatewayV2::Api', { ProtocolType: 'HTTP' })
  template.hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: '$default' })
  template.hasResourceProperties('AWS::ApiGatewayV2::Integration', {
    IntegrationType: 'AWS_PROXY',
    PayloadFormatVersion: '2.0',
  })
  template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
    StageName: '$default',
    AutoDeploy: true,
    DefaultRouteSettings: { ThrottlingRateLimit: 20, ThrottlingBurstLimit: 40 },
  })
  t.pass()
})

t.test('no IAM statement has a wildcard action or a "*" resource, and the role has no managed policies', async (t) => {
  t.ok(statements.length >= 12)
  for (const statement of statements) {
    t.notOk(
      [statement.Action].flat().some((action) => action.includes('*')),
      `${statement.Sid}: actions named one by one`,
    )
    t.notOk([statement.Resource].flat().includes('*'), `${statement.Sid}: resources scoped`)
  }
  t.notOk(
    resources('AWS::IAM::Role').some((role) => role.Properties.ManagedPolicyArns),
    'no managed policies',
  )
})

t.test(
  'Identity Center and Identity Store actions are scoped to the instance, permission sets, accounts and identity store',
  async (t) => {
    t.same(
      bySid.AssignAndRemoveAccess?.Resource,
      [INSTANCE, PERMISSION_SET, join_('arn:', partition, ':sso:::account/222222222222')],
      'only the grantable permission sets',
    )
    t.same(bySid.ReadAssignmentsAndStatus?.Resource, INSTANCE)
    // Names are resolved by describing every set the instance lists: one refused description would fail them all.
    t.same(bySid.ReadPermissionSets?.Resource, [
      INSTANCE,
      join_('arn:', partition, ':sso:::permissionSet/ssoins-1111111111111111/*'),
    ])
    const store = join_('arn:', partition, ':identitystore::111111111111:identitystore/d-1111111111')
    t.same(bySid.ResolveUsers?.Resource, [store, join_('arn:', partition, ':identitystore:::user/*')])
    t.same(bySid.ReadGroupMemberships?.Resource, [
      store,
      join_('arn:', partition, ':identitystore:::user/*'),
      join_('arn:', partition, ':identitystore:::membership/*'),
    ])
    t.same(bySid.ResolveGroups?.Resource, [store, join_('arn:', partition, ':identitystore:::group/*')])
    t.same(bySid.AddAndRemoveGroupMembers?.Action, [
      'identitystore:GetGroupMembershipId',
      'identitystore:CreateGroupMembership',
      'identitystore:DeleteGroupMembership',
    ])
    t.same(
      bySid.AddAndRemoveGroupMembers?.Resource,
      [
        store,
        join_('arn:', partition, `:identitystore:::group/${GROUP_ID}`),
        join_('arn:', partition, ':identitystore:::user/*'),
        join_('arn:', partition, ':identitystore:::membership/*'),
      ],
      'only the named groups',
    )
    // Opt-in: a deployment that names no groups may change no membership (a stolen role could otherwise join any group).
    for (const [name, grantableGroupIds] of [
      ['NoGroups', undefined],
      ['EmptyGroups', []],
    ] as [string, string[] | undefined][]) {
      const withoutGroups = (
        Object.values(
          Template.fromStack(new JitAccessStack(new App(), name, { ...settings, grantableGroupIds })).findResources(
            'AWS::IAM::Policy',
          ),
        ) as Resource[]
      ).flatMap((policy) => (policy.Properties.PolicyDocument as { Statement: Statement[] }).Statement)
      t.notOk(
        withoutGroups.some((s) => s.Sid === 'AddAndRemoveGroupMembers'),
        `${name}: no membership statement`,
      )
      t.notOk(
        withoutGroups.some((s) =>
          [s.Action].flat().some((action) => /GroupMembership(Id)?$/.test(action) && !action.endsWith('ForMember')),
        ),
        `${name}: no membership action anywhere`,
      )
    }
    t.throws(
      () => new JitAccessStack(new App(), 'BadGroup', { ...settings, grantableGroupIds: ['prod-breakglass'] }),
      /grantableGroupIds/,
    )
  },
)

t.test(
  'the audit table can be appended to and read, never updated or deleted; the rest is scoped to its resource',
  async (t) => {
    t.same([bySid.AppendAndReadAudit?.Action].flat().sort(), ['dynamodb:PutItem', 'dynamodb:Query'])
    const tableAndIndexes = (prefix: string, definition: ReturnType<typeof grantsTableDefinition>) => {
      const arn = {
        'Fn::GetAtt': [
          Object.keys(template.findResources('AWS::DynamoDB::Table')).find((id) => id.startsWith(prefix)),
          'Arn',
        ],
      }
      return [arn, ...(definition.GlobalSecondaryIndexes ?? []).map((index) => join_(arn, `/index/${index.IndexName}`))]
    }
    t.same(
      bySid.AppendAndReadAudit?.Resource,
      tableAndIndexes('AuditTable', auditTableDefinition('x')),
      'the table and each of its indexes by name',
    )
    t.same(
      bySid.GrantState?.Resource,
      tableAndIndexes('GrantsTable', grantsTableDefinition('x')),
      'the table and each of its indexes by name',
    )
    t.same(bySid.ReadJwtSecret, {
      Sid: 'ReadJwtSecret',
      Effect: 'Allow',
      Action: 'secretsmanager:GetSecretValue',
      Resource: SECRET,
    })
    t.match(bySid.PublishAlerts, { Action: 'sns:Publish', Resource: { Ref: /^Alerts/ } })
    t.match(bySid.EncryptAlerts, {
      Action: ['kms:GenerateDataKey', 'kms:Decrypt'],
      Resource: { 'Fn::GetAtt': [/^AlertsKey/, 'Arn'] },
    })
    t.match(bySid.WriteOwnLogs, {
      Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
      Resource: [{ 'Fn::GetAtt': [/^Logs/, 'Arn'] }, { 'Fn::GetAtt': [/^SweepLogs/, 'Arn'] }],
    })
    t.equal((bySid.WriteOwnLogs!.Resource as unknown[]).length, 2, 'the two functions’ log groups, no other')
  },
)

t.test(
  'the cursor key is generated by Secrets Manager, named in every function’s environment, and readable by the role',
  async (t) => {
    const secrets = template.findResources('AWS::SecretsManager::Secret') as Record<string, Resource>
    const [cursorKeyId = '', ...others] = Object.keys(secrets)
    t.same(others, [], 'one secret: the cursor key')
    t.match(secrets[cursorKeyId]?.Properties, {
      GenerateSecretString: { PasswordLength: 64, ExcludePunctuation: true },
    })
    t.notOk('SecretString' in (secrets[cursorKeyId]?.Properties ?? {}), 'its value is never in the template')
    for (const fn of resources('AWS::Lambda::Function')) {
      const variables = (fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables
      t.same(
        variables.JIT_CURSOR_KEY_ARN,
        { Ref: cursorKeyId },
        'every instance opens the cursors any other one minted',
      )
      t.notOk('JIT_CURSOR_KEY' in variables)
    }
    t.same(bySid.ReadCursorKey, {
      Sid: 'ReadCursorKey',
      Effect: 'Allow',
      Action: 'secretsmanager:GetSecretValue',
      Resource: { Ref: cursorKeyId },
    })
    const secretReads = statements.filter((s) =>
      [s.Action].flat().some((action) => action.startsWith('secretsmanager:')),
    )
    t.same(secretReads.map((s) => s.Sid).sort(), ['ReadCursorKey', 'ReadJwtSecret'], 'no other secret is readable')
  },
)

t.test(
  'the audit anchors: Object Lock in compliance mode for 400 days, versioned, private, encrypted, TLS only, retained',
  async (t) => {
    const anchorsId = Object.keys(template.findResources('AWS::S3::Bucket')).find((id) =>
      /^AuditAnchors[0-9A-F]{8}$/.test(id),
    ) as string
    const anchors = template.findResources('AWS::S3::Bucket')[anchorsId] as Resource

    t.match(anchors, {
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
      Properties: {
        ObjectLockEnabled: true,
        ObjectLockConfiguration: {
          ObjectLockEnabled: 'Enabled',
          Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: DEFAULT_ANCHOR_RETENTION_DAYS } },
        },
        VersioningConfiguration: { Status: 'Enabled' },
        PublicAccessBlockConfiguration: {
          BlockPublicAcls: true,
          BlockPublicPolicy: true,
          IgnorePublicAcls: true,
          RestrictPublicBuckets: true,
        },
        BucketEncryption: {
          ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
        },
      },
    })
    t.equal(DEFAULT_ANCHOR_RETENTION_DAYS, 400)
    const bucketPolicy = resources('AWS::S3::BucketPolicy').find(
      (policy) => (policy.Properties.Bucket as { Ref?: string }).Ref === anchorsId,
    )
    t.match(
      (bucketPolicy!.Properties.PolicyDocument as { Statement: unknown[] }).Statement,
      [
        {
          Effect: 'Deny',
          Action: 's3:*',
          Principal: { AWS: '*' },
          Condition: { Bool: { 'aws:SecureTransport': 'false' } },
        },
      ],
      'TLS only',
    )
    for (const fn of resources('AWS::Lambda::Function')) {
      t.same((fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables.JIT_AUDIT_ANCHOR_BUCKET, {
        Ref: anchorsId,
      })
    }
  },
)

t.test('the anchors’ retention is a setting of the stack, in whole days', async (t) => {
  const custom = Template.fromStack(
    new JitAccessStack(new App(), 'Retention', { ...settings, auditAnchorRetentionDays: 2555 }),
  )
  custom.hasResourceProperties('AWS::S3::Bucket', {
    ObjectLockConfiguration: {
      ObjectLockEnabled: 'Enabled',
      Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: 2555 } },
    },
  })
  for (const days of [0, 1.5, 40_000]) {
    t.throws(
      () => new JitAccessStack(new App(), 'BadRetention', { ...settings, auditAnchorRetentionDays: days }),
      { message: /auditAnchorRetentionDays/ },
      `${days} days`,
    )
  }
})

t.test(
  'the role may add anchors and list them, nothing else in S3: no delete, no retention or lock change, no bypass',
  async (t) => {
    const anchorsArn = {
      'Fn::GetAtt': [
        Object.keys(template.findResources('AWS::S3::Bucket')).find((id) => /^AuditAnchors[0-9A-F]{8}$/.test(id)),
        'Arn',
      ],
    }
    const s3Statements = statements.filter((s) => [s.Action].flat().some((action) => action.startsWith('s3:')))

    t.same(
      s3Statements.map((s) => [s.Sid, s.Action]),
      [
        ['WriteAuditAnchors', 's3:PutObject'],
        ['ListAuditAnchors', 's3:ListBucket'],
      ],
    )
    t.same(bySid.WriteAuditAnchors?.Resource, join_(anchorsArn, '/anchors/*'))
    t.same(bySid.ListAuditAnchors?.Resource, anchorsArn)
    const granted = statements.flatMap((s) => [s.Action].flat())
    for (const action of [
      's3:DeleteObject',
      's3:DeleteObjectVersion',
      's3:PutObjectRetention',
      's3:BypassGovernanceRetention',
      's3:PutObjectLegalHold',
      's3:PutBucketObjectLockConfiguration',
      's3:PutBucketVersioning',
      's3:PutLifecycleConfiguration',
      's3:PutBucketPolicy',
    ]) {
      t.notOk(granted.includes(action), `not ${action}`)
    }
  },
)

t.test(
  'session cut-off: the stack creates the service control policies, attaches them, and lets the role read and rewrite only those',
  async (t) => {
    const policies = template.findResources('AWS::Organizations::Policy')
    const ids = Object.keys(policies)
    t.equal(ids.length, 2)
    for (const policy of Object.values(policies) as Resource[]) {
      t.match(policy.Properties, {
        Type: 'SERVICE_CONTROL_POLICY',
        TargetIds: ['r-ab12'],
        Content: EMPTY_CUTOFF_POLICY,
      })
    }
    t.same(bySid.CutSessions?.Action, ['organizations:DescribePolicy', 'organizations:UpdatePolicy'])
    t.same(
      bySid.CutSessions?.Resource,
      ids.map((id) => ({ 'Fn::GetAtt': [id, 'Arn'] })),
      'the owned policies by ARN, nothing else',
    )
    t.notOk(
      statements.some((s) =>
        [s.Action].flat().some((action) => /^organizations:(Create|Delete|Attach|Detach)/.test(action)),
      ),
      'no other Organizations action',
    )
    const variables = (apiFunction().Properties.Environment as { Variables: Record<string, unknown> }).Variables
    t.equal(variables.JIT_SESSION_CUTOFF, 'scp')
    t.equal(
      variables.JIT_MANAGEMENT_ACCOUNT_ID,
      '111111111111',
      'no SCP reaches the management account: its grants are not reported cut',
    )
    t.same(variables.JIT_CUTOFF_POLICY_IDS, { 'Fn::Join': [',', ids.map((id) => ({ 'Fn::GetAtt': [id, 'Id'] }))] })
  },
)

t.test('a policy naming OUs or tags lets the role read the organization, and change nothing in it', async (t) => {
  t.same(bySid.ReadOrganization?.Action, [
    'organizations:ListParents',
    'organizations:ListChildren',
    'organizations:ListAccountsForParent',
    'organizations:ListTagsForResource',
    'organizations:DescribeAccount',
  ])
  const readOnly = Template.fromStack(
    new JitAccessStack(new App(), 'ReadOnlyOrg', { ...settings, sessionCutoff: undefined }),
  )
  const actions = (Object.values(readOnly.findResources('AWS::IAM::Policy')) as Resource[])
    .flatMap((policy) => (policy.Properties.PolicyDocument as { Statement: Statement[] }).Statement)
    .flatMap((s) => [s.Action].flat())
    .filter((a) => a.startsWith('organizations:'))
  t.same(
    actions.filter((a) => !/^organizations:(List|Describe)/.test(a)),
    [],
    'reads only',
  )
})

t.test('session cut-off is off unless configured: no policies, no Organizations permission, no setting', async (t) => {
  const off = Template.fromStack(
    new JitAccessStack(new App(), 'NoCutoff', { ...settings, sessionCutoff: undefined, readOrganization: false }),
  )
  off.resourceCountIs('AWS::Organizations::Policy', 0)
  t.notMatch(JSON.stringify(off.findResources('AWS::IAM::Policy')), /organizations:/)
  t.notMatch(JSON.stringify(off.findResources('AWS::Lambda::Function')), /JIT_SESSION_CUTOFF/)
  t.throws(
    () => new JitAccessStack(new App(), 'BadTarget', { ...settings, sessionCutoff: { targetIds: ['111111111111'] } }),
    /not a root \(r-…\) or OU/,
  )
  t.throws(
    () =>
      new JitAccessStack(new App(), 'TooMany', { ...settings, sessionCutoff: { targetIds: ['r-ab12'], policies: 6 } }),
    /from 1 to 5/,
  )
})

t.test('the role allows exactly the AWS operations the service’s adapters call', async (t) => {
  const granted = new Set(
    statements
      .flatMap((s) => [s.Action].flat())
      .filter((action) => /^(sso|identitystore|dynamodb|sns|secretsmanager|s3|organizations):/.test(action)),
  )
  t.same(
    [...adapterOperations()].sort(),
    [...granted].sort(),
    'a call the role does not allow fails in production; a permission no call needs is too much',
  )
})

t.test(
  'with ServiceNow, the functions get its URL, who signs in and the secret ARN (never the secret), and may read that secret only',
  async (t) => {
    const snowSecret = 'arn:aws:secretsmanager:us-east-1:333333333333:secret:jit-servicenow-XyZ123'
    const withSnow = Template.fromStack(
      new JitAccessStack(new App(), 'Snow', {
        ...settings,
        serviceNow: {
          url: 'https://example.service-now.com',
          clientId: 'jit-client',
          secretArn: snowSecret,
          verify: true,
        },
      }),
    )
    for (const fn of Object.values(withSnow.findResources('AWS::Lambda::Function')) as Resource[]) {
      const variables = (fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables
      t.match(variables, {
        JIT_SERVICENOW_URL: 'https://example.service-now.com',
        JIT_SERVICENOW_CLIENT_ID: 'jit-client',
        JIT_SERVICENOW_SECRET_ARN: snowSecret,
        JIT_SERVICENOW_VERIFY: 'true',
      })
      t.notOk(
        'JIT_SERVICENOW_CLIENT_SECRET' in variables || 'JIT_SERVICENOW_PASSWORD' in variables,
        'no secret in the template',
      )
    }
    const snowStatements = (Object.values(withSnow.findResources('AWS::IAM::Policy')) as Resource[]).flatMap(
      (policy) => (policy.Properties.PolicyDocument as { Statement: Statement[] }).Statement,
    )
    t.same(
      snowStatements.filter((s) => s.Sid === 'ReadServiceNowSecret'),
      [{ Sid: 'ReadServiceNowSecret', Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: snowSecret }],
    )
    t.notOk(
      statements.some((s) => s.Sid === 'ReadServiceNowSecret'),
      'without ServiceNow, no such permission',
    )
  },
)

t.test('settings that would give a wrong policy are refused at synth', async (t) => {
  const cases: [string, Partial<JitAccessStackProps>, RegExp][] = [
    ['an instance ARN that is not one', { instanceArn: 'ssoins-1111111111111111' }, /instanceArn/],
    ['an identity store id that is not one', { identityStoreId: 'store' }, /identityStoreId/],
    ['an account id that is not one', { accountIds: ['12345'] }, /accountIds/],
    [
      'a permission set of another instance',
      { permissionSetArns: ['arn:aws:sso:::permissionSet/ssoins-9999999999999999/ps-2222222222222222'] },
      /another instance/,
    ],
    ['two JWT key sources', { jwksUrl: 'https://idp.example.com/jwks' }, /exactly one JWT key source/],
    ['no JWT key source', { jwtSecretArn: undefined }, /exactly one JWT key source/],
    [
      'a secret named without its ARN suffix',
      { jwtSecretArn: 'arn:aws:secretsmanager:us-east-1:111111111111:secret:jit-access-jwt' },
      /complete ARN/,
    ],
    ['no reserved concurrency', { reservedConcurrency: 0 }, /reservedConcurrency/],
    ['no grantable permission set', { permissionSetArns: [] }, /permissionSetArns: name at least one/],
    ['an Identity Center rate above the quota', { identityCenterTps: 25 }, /identityCenterTps/],
    [
      'ServiceNow over plain http',
      { serviceNow: { url: 'http://example.service-now.com', clientId: 'c', secretArn: `${SECRET}` } },
      /https URL/,
    ],
    [
      'ServiceNow with both ways to sign in',
      { serviceNow: { url: 'https://example.service-now.com', clientId: 'c', username: 'u', secretArn: SECRET } },
      /exactly one of serviceNowClientId/,
    ],
    [
      'a ServiceNow secret without its ARN suffix',
      {
        serviceNow: {
          url: 'https://example.service-now.com',
          clientId: 'c',
          secretArn: 'arn:aws:secretsmanager:us-east-1:111111111111:secret:snow',
        },
      },
      /serviceNowSecretArn .* complete ARN/,
    ],
  ]
  for (const [name, change, message] of cases) {
    t.throws(() => new JitAccessStack(new App(), 'Bad', { ...settings, ...change }), { message }, name)
  }
  t.doesNotThrow(
    () => new JitAccessStack(new App(), 'Good', { ...settings, permissionSetArns: [PERMISSION_SET] }),
    'a permission set of the instance',
  )
})

t.test(
  'CDK context: -c strings and cdk.json lists both work, paths are relative to infra/, missing values are named',
  async (t) => {
    const keyFile = join(codeDir, 'public.pem')
    writeFileSync(keyFile, '-----BEGIN PUBLIC KEY-----\nx\n-----END PUBLIC KEY-----\n')
    const context: Record<string, unknown> = {
      instanceArn: INSTANCE,
      identityStoreId: 'd-1111111111',
      jwtIssuer: 'i',
      jwtAudience: 'a',
      jwtPublicKeyFile: 'public.pem',
      policyFile: 'policy.json',
      accountIds: '111111111111, 222222222222',
      permissionSetArns: [PERMISSION_SET],
      reservedConcurrency: '3',
      sessionCutoffTargets: 'r-ab12, ou-ab12-cdef3456',
      sessionCutoffPolicies: '2',
    }
    const read = readDeploymentContext((name) => context[name], codeDir)
    t.match(read, {
      stackName: 'JitAccess',
      policyFile: join(codeDir, 'policy.json'),
      stack: {
        accountIds: ['111111111111', '222222222222'],
        permissionSetArns: [PERMISSION_SET],
        reservedConcurrency: 3,
        jwtPublicKey: /BEGIN PUBLIC KEY/,
        jwtSecretArn: undefined,
      },
    })
    t.same(read.stack.sessionCutoff, { targetIds: ['r-ab12', 'ou-ab12-cdef3456'], policies: 2 })
    t.equal(
      readDeploymentContext((name) => ({ ...context, sessionCutoffTargets: undefined })[name], codeDir).stack
        .sessionCutoff,
      undefined,
      'off without targets',
    )
    t.throws(() => readDeploymentContext((name) => ({ ...context, instanceArn: undefined })[name], codeDir), {
      message: /Missing CDK context value 'instanceArn'/,
    })
    t.throws(() => readDeploymentContext((name) => ({ ...context, permissionSetArns: undefined })[name], codeDir), {
      message: /Missing CDK context value 'permissionSetArns'/,
    })
    t.throws(() => readDeploymentContext((name) => ({ ...context, permissionSetArns: ' , ' })[name], codeDir), {
      message: /Missing CDK context value 'permissionSetArns'/,
    })
    t.throws(() => readDeploymentContext((name) => ({ ...context, reservedConcurrency: 'five' })[name], codeDir), {
      message: /reservedConcurrency/,
    })
  },
)

/**
 * The IAM actions behind every AWS SDK command the adapters import. Left out on purpose: tables.ts (creates
 * tables for the sandbox and tests; in AWS the stack does) and sso:ListInstances (called only when the
 * instance is not configured; the stack always configures it).
 */
function adapterOperations(): Set<string> {
  const dir = join(ROOT, 'src', 'adapters')
  const files = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter(
    (file) => file.endsWith('.ts') && !file.endsWith('tables.ts'),
  )
  const prefixes: Record<string, string> = {
    '@aws-sdk/client-sso-admin': 'sso',
    '@aws-sdk/client-identitystore': 'identitystore',
    '@aws-sdk/client-dynamodb': 'dynamodb',
    '@aws-sdk/client-sns': 'sns',
    '@aws-sdk/client-secrets-manager': 'secretsmanager',
    '@aws-sdk/client-s3': 's3',
    '@aws-sdk/client-organizations': 'organizations',
  }
  // Where the IAM action is not named after the API operation (Service Authorization Reference, Amazon S3).
  const actionOf: Record<string, string> = {
    's3:ListObjectsV2': 's3:ListBucket',
    's3:ListObjectVersions': 's3:ListBucketVersions',
    's3:HeadObject': 's3:GetObject',
    's3:HeadBucket': 's3:ListBucket',
  }
  const documentClient: Record<string, string[]> = {
    Get: ['GetItem'],
    Put: ['PutItem'],
    Update: ['UpdateItem'],
    Delete: ['DeleteItem'],
    Query: ['Query'],
    Scan: ['Scan'],
    BatchGet: ['BatchGetItem'],
    BatchWrite: ['BatchWriteItem'],
    TransactGet: ['GetItem'],
  }
  const transactItem: Record<string, string> = {
    Put: 'PutItem',
    Update: 'UpdateItem',
    Delete: 'DeleteItem',
    ConditionCheck: 'ConditionCheckItem',
  }
  const operations = new Set<string>()
  for (const file of files) {
    const source = readFileSync(join(dir, file), 'utf8')
    for (const [, names = '', module = ''] of source.matchAll(/import\s*\{([^}]*)\}\s*from\s*'(@aws-sdk\/[^']+)'/g)) {
      const imported = names
        .split(',')
        .map((name) => name.trim())
        .filter((name) => name && !name.startsWith('type '))
      for (const name of imported) {
        const operation = /^paginate(\w+)$/.exec(name)?.[1] ?? /^(\w+)Command$/.exec(name)?.[1]
        if (!operation) continue
        if (module === '@aws-sdk/lib-dynamodb') {
          if (operation === 'TransactWrite') {
            for (const [, kind = ''] of source.matchAll(/\{\s*(Put|Update|Delete|ConditionCheck)\s*:/g))
              operations.add(`dynamodb:${transactItem[kind]}`)
          } else {
            for (const action of documentClient[operation] ?? [`unmapped:${operation}`])
              operations.add(`dynamodb:${action}`)
          }
        } else if (prefixes[module]) {
          const action = `${prefixes[module]}:${operation}`
          operations.add(actionOf[action] ?? action)
        }
      }
    }
  }
  operations.delete('sso:ListInstances')
  return operations
}

t.test('a policy that grants groups is refused at synth unless the deployment names the groups', async (t) => {
  const groupRule = { grantableGroups: ['prod-breakglass'] }
  const accountRule = { grantableGroups: undefined }
  for (const grantableGroupIds of [undefined, []])
    t.throws(
      () => refuseUnscopedGroupGrants({ rules: [accountRule, groupRule] } as never, { grantableGroupIds }),
      /grantableGroupIds is not set/,
      `grantableGroupIds ${JSON.stringify(grantableGroupIds)}: refused`,
    )
  t.doesNotThrow(
    () => refuseUnscopedGroupGrants({ rules: [groupRule] } as never, { grantableGroupIds: [GROUP_ID] }),
    'with the groups named: accepted',
  )
  t.doesNotThrow(
    () => refuseUnscopedGroupGrants({ rules: [accountRule, { grantableGroups: [] }] } as never, {}),
    'a policy without group grants needs no group ids',
  )
})
