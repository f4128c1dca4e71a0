import { CfnOutput, Duration, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib'
import * as apigw from 'aws-cdk-lib/aws-apigatewayv2'
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations'
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch'
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions'
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb'
import * as events from 'aws-cdk-lib/aws-events'
import * as targets from 'aws-cdk-lib/aws-events-targets'
import * as iam from 'aws-cdk-lib/aws-iam'
import * as kms from 'aws-cdk-lib/aws-kms'
import * as lambda from 'aws-cdk-lib/aws-lambda'
import * as logs from 'aws-cdk-lib/aws-logs'
import * as sns from 'aws-cdk-lib/aws-sns'
import type { Construct } from 'constructs'
import type { CreateTableCommandInput } from '@aws-sdk/client-dynamodb'
import { auditTableDefinition, grantsTableDefinition, GRANTS_TTL_ATTRIBUTE } from '../src/adapters/dynamodb/tables.ts'

export interface JitAccessStackProps extends StackProps {
  /** Directory with lambda.mjs, static/ and the policy (see infra/app.ts). */
  codeDir: string
  instanceArn: string
  identityStoreId: string
  /**
   * The account that owns the Identity Center instance (the organization's management account), which appears
   * in the identity store's ARN. Unset, the policy names the identity store by its id in any account.
   */
  managementAccountId?: string | undefined
  jwtIssuer: string
  jwtAudience: string
  /** Exactly one key source: an RS256/ES256 public key (PEM); */
  jwtPublicKey?: string | undefined
  /** or a Secrets Manager secret holding the HS256 secret (its value never enters the template); */
  jwtSecretArn?: string | undefined
  /** or a JWKS endpoint. */
  jwksUrl?: string | undefined
  /** Permission sets jit-access may assign; default: any in the instance. */
  permissionSetArns?: string[] | undefined
  /** Accounts jit-access may assign on; default: any. */
  accountIds?: string[] | undefined
  /** Requests per second (and burst) the HTTP API accepts. */
  throttle?: { rateLimit: number; burstLimit: number } | undefined
  /**
   * At most this many concurrent invocations: with the Identity Center rate limit each process applies, it
   * bounds the whole deployment's share of the organisation's quota (README, Performance).
   */
  reservedConcurrency?: number | undefined
  /** Identity Center calls per second per execution environment (JIT_IDENTITY_CENTER_TPS); default 10. */
  identityCenterTps?: number | undefined
}

/** Where infra/app.ts puts the eligibility policy inside the function's code. */
export const POLICY_FILE_IN_FUNCTION = 'policy.json'

/** Sweep runs whose summary reports failures, from the function's JSON log line (src/app.ts logs it). */
export const SWEEP_FAILURE_PATTERN = '{ ($.msg = "revocation sweep finished") && ($.failed > 0) }'

const INSTANCE_ARN = /^arn:(aws[a-z-]*):sso:::instance\/(ssoins-[0-9a-f]{16})$/
const PERMISSION_SET_ARN = /^arn:aws[a-z-]*:sso:::permissionSet\/(ssoins-[0-9a-f]{16})\/ps-[0-9a-f]{16}$/
const ACCOUNT_ID = /^\d{12}$/
const IDENTITY_STORE_ID = /^d-[0-9a-z]{10}$/

export class JitAccessStack extends Stack {
  constructor(scope: Construct, id: string, props: JitAccessStackProps) {
    super(scope, id, props)
    const instanceId = checkSettings(props)

    const grants = tableFrom(this, 'GrantsTable', grantsTableDefinition('unused'), {
      // Only idempotency records carry this attribute: grants and coverage records never expire by TTL.
      timeToLiveAttribute: GRANTS_TTL_ATTRIBUTE,
    })
    // The audit trail: no TTL, and (below) no update or delete permission for the service either.
    const audit = tableFrom(this, 'AuditTable', auditTableDefinition('unused'), {})

    const topicKey = new kms.Key(this, 'AlertsKey', { enableKeyRotation: true, description: 'jit-access alerts topic' })
    // CloudWatch alarms publish to the encrypted topic, so the alarm service may use the key.
    topicKey.addToResourcePolicy(new iam.PolicyStatement({
      sid: 'CloudWatchAlarmsPublishToTopic',
      principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
      actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
      resources: ['*'],
    }))
    const topic = new sns.Topic(this, 'Alerts', { masterKey: topicKey, displayName: 'jit-access' })

    const logGroup = new logs.LogGroup(this, 'Logs', { retention: logs.RetentionDays.ONE_YEAR, removalPolicy: RemovalPolicy.RETAIN })
    // An explicit role: the managed AWSLambdaBasicExecutionRole would allow writing to any log group.
    const role = new iam.Role(this, 'FunctionRole', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') })
    role.addToPolicy(new iam.PolicyStatement({ sid: 'WriteOwnLogs', actions: ['logs:CreateLogStream', 'logs:PutLogEvents'], resources: [logGroup.logGroupArn] }))

    const fn = new lambda.Function(this, 'Function', {
      description: 'jit-access: HTTP API requests and the one-minute revocation sweep',
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      handler: 'lambda.handler',
      code: lambda.Code.fromAsset(props.codeDir),
      memorySize: 1024,
      // The sweep uses all but SWEEP_SAFETY_MARGIN_MS of it (src/lambda.ts); JIT_SWEEP_BUDGET_SECONDS caps it below.
      timeout: Duration.seconds(60),
      reservedConcurrentExecutions: props.reservedConcurrency ?? 5,
      role,
      logGroup,
      // No NODE_OPTIONS=--enable-source-maps: with it, Node parses the bundle's map during init (pino asks
      // for call sites), about 140 ms of every cold start. The .map files are deployed beside the bundle, so
      // setting it on the function later needs no new build (README, Deploy).
      environment: {
        JIT_GRANTS_TABLE: grants.tableName,
        JIT_AUDIT_TABLE: audit.tableName,
        JIT_SNS_TOPIC_ARN: topic.topicArn,
        JIT_INSTANCE_ARN: props.instanceArn,
        JIT_IDENTITY_STORE_ID: props.identityStoreId,
        JIT_JWT_ISSUER: props.jwtIssuer,
        JIT_JWT_AUDIENCE: props.jwtAudience,
        ...(props.jwtPublicKey ? { JIT_JWT_PUBLIC_KEY: props.jwtPublicKey } : {}),
        ...(props.jwtSecretArn ? { JIT_JWT_SECRET_ARN: props.jwtSecretArn } : {}),
        ...(props.jwksUrl ? { JIT_JWKS_URL: props.jwksUrl } : {}),
        JIT_POLICY_FILE: `/var/task/${POLICY_FILE_IN_FUNCTION}`,
        JIT_SWEEP_BUDGET_SECONDS: '50',
        ...(props.identityCenterTps !== undefined ? { JIT_IDENTITY_CENTER_TPS: String(props.identityCenterTps) } : {}),
      },
    })

    // Resource-level permissions as the Service Authorization Reference defines them for each action: Identity
    // Center's assignment calls on the instance, permission set and account; its reads on the instance (and
    // permission set); Identity Store's on the store and the user, group or membership (ids unknown at deploy time).
    const partition = this.partition
    const permissionSets = props.permissionSetArns ?? [`arn:${partition}:sso:::permissionSet/${instanceId}/*`]
    const accounts = (props.accountIds ?? ['*']).map((accountId) => `arn:${partition}:sso:::account/${accountId}`)
    const identityStore = `arn:${partition}:identitystore::${props.managementAccountId ?? '*'}:identitystore/${props.identityStoreId}`
    role.addToPolicy(new iam.PolicyStatement({
      sid: 'AssignAndRemoveAccess',
      actions: ['sso:CreateAccountAssignment', 'sso:DeleteAccountAssignment'],
      resources: [props.instanceArn, ...permissionSets, ...accounts],
    }))
    role.addToPolicy(new iam.PolicyStatement({
      sid: 'ReadAssignmentsAndStatus',
      actions: [
        'sso:ListAccountAssignmentsForPrincipal',
        'sso:DescribeAccountAssignmentCreationStatus',
        'sso:DescribeAccountAssignmentDeletionStatus',
        'sso:ListPermissionSets',
      ],
      resources: [props.instanceArn],
    }))
    role.addToPolicy(new iam.PolicyStatement({ sid: 'ReadPermissionSets', actions: ['sso:DescribePermissionSet'], resources: [props.instanceArn, ...permissionSets] }))
    role.addToPolicy(new iam.PolicyStatement({
      sid: 'ResolveUsers',
      actions: ['identitystore:GetUserId'],
      resources: [identityStore, `arn:${partition}:identitystore:::user/*`],
    }))
    role.addToPolicy(new iam.PolicyStatement({
      sid: 'ReadGroupMemberships',
      actions: ['identitystore:ListGroupMembershipsForMember'],
      resources: [identityStore, `arn:${partition}:identitystore:::user/*`, `arn:${partition}:identitystore:::membership/*`],
    }))
    role.addToPolicy(new iam.PolicyStatement({
      sid: 'ReadGroups',
      actions: ['identitystore:DescribeGroup'],
      resources: [identityStore, `arn:${partition}:identitystore:::group/*`],
    }))
    role.addToPolicy(new iam.PolicyStatement({
      sid: 'GrantState',
      actions: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:Query'],
      resources: [grants.tableArn, `${grants.tableArn}/index/*`],
    }))
    role.addToPolicy(new iam.PolicyStatement({
      sid: 'AppendAndReadAudit',
      actions: ['dynamodb:PutItem', 'dynamodb:Query'],
      resources: [audit.tableArn, `${audit.tableArn}/index/*`],
    }))
    role.addToPolicy(new iam.PolicyStatement({ sid: 'PublishAlerts', actions: ['sns:Publish'], resources: [topic.topicArn] }))
    role.addToPolicy(new iam.PolicyStatement({ sid: 'EncryptAlerts', actions: ['kms:GenerateDataKey', 'kms:Decrypt'], resources: [topicKey.keyArn] }))
    if (props.jwtSecretArn) {
      role.addToPolicy(new iam.PolicyStatement({ sid: 'ReadJwtSecret', actions: ['secretsmanager:GetSecretValue'], resources: [props.jwtSecretArn] }))
    }

    const api = new apigw.HttpApi(this, 'Api', {
      defaultIntegration: new HttpLambdaIntegration('Service', fn),
      createDefaultStage: false,
      description: 'jit-access',
    })
    const stage = new apigw.HttpStage(this, 'Stage', {
      httpApi: api,
      stageName: '$default',
      autoDeploy: true,
      throttle: props.throttle ?? { rateLimit: 20, burstLimit: 40 },
    })

    // Every minute, so that no access outlives its grant by more than about a minute. EventBridge invokes the
    // function directly (asynchronously): the sweep never goes through an HTTP route. Neither EventBridge nor
    // Lambda retries a sweep, and one that waited a minute for a free copy is dropped: the next minute is the retry.
    fn.configureAsyncInvoke({ retryAttempts: 0, maxEventAge: Duration.minutes(1) })
    new events.Rule(this, 'SweepSchedule', {
      description: 'jit-access revocation sweep',
      schedule: events.Schedule.rate(Duration.minutes(1)),
      targets: [new targets.LambdaFunction(fn, { retryAttempts: 0, maxEventAge: Duration.minutes(1) })],
    })

    const alarmAction = new cloudwatchActions.SnsAction(topic)
    new cloudwatch.Alarm(this, 'FunctionErrors', {
      alarmDescription: 'jit-access Lambda invocations failed (a failed init, an unhandled error, a timeout)',
      metric: fn.metricErrors({ period: Duration.minutes(1) }),
      threshold: 1,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    }).addAlarmAction(alarmAction)
    const sweepFailures = new logs.MetricFilter(this, 'SweepFailuresFilter', {
      logGroup,
      filterPattern: logs.FilterPattern.literal(SWEEP_FAILURE_PATTERN),
      metricNamespace: 'JitAccess',
      metricName: 'SweepFailures',
      metricValue: '$.failed',
      defaultValue: 0,
    })
    new cloudwatch.Alarm(this, 'SweepFailuresAlarm', {
      alarmDescription: 'The revocation sweep could not finish some grants two minutes running; access may outlive its grant',
      metric: sweepFailures.metric({ period: Duration.minutes(1), statistic: 'Sum' }),
      threshold: 1,
      evaluationPeriods: 2,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    }).addAlarmAction(alarmAction)

    new CfnOutput(this, 'ApiUrl', { value: stage.url })
    new CfnOutput(this, 'AlertsTopicArn', { value: topic.topicArn })
    new CfnOutput(this, 'FunctionName', { value: fn.functionName })
  }
}

/**
 * Wrong identifiers would give an IAM policy that silently matches nothing (or too much): refuse them at synth.
 * Returns the instance id.
 */
function checkSettings(props: JitAccessStackProps): string {
  const instance = INSTANCE_ARN.exec(props.instanceArn)
  if (!instance) throw new Error(`instanceArn '${props.instanceArn}' is not an Identity Center instance ARN (arn:aws:sso:::instance/ssoins-…)`)
  const instanceId = instance[2] as string
  if (!IDENTITY_STORE_ID.test(props.identityStoreId)) throw new Error(`identityStoreId '${props.identityStoreId}' is not an identity store id (d-…)`)
  if (props.managementAccountId !== undefined && !ACCOUNT_ID.test(props.managementAccountId)) throw new Error(`managementAccountId '${props.managementAccountId}' is not an account id`)
  for (const accountId of props.accountIds ?? []) {
    if (!ACCOUNT_ID.test(accountId)) throw new Error(`accountIds: '${accountId}' is not an account id`)
  }
  for (const arn of props.permissionSetArns ?? []) {
    const match = PERMISSION_SET_ARN.exec(arn)
    if (!match) throw new Error(`permissionSetArns: '${arn}' is not a permission set ARN`)
    if (match[1] !== instanceId) throw new Error(`permissionSetArns: '${arn}' belongs to another instance than ${props.instanceArn}`)
  }
  const keySources = [props.jwtPublicKey, props.jwtSecretArn, props.jwksUrl].filter(Boolean).length
  if (keySources !== 1) throw new Error('Give exactly one JWT key source: jwtPublicKey(File), jwtSecretArn or jwksUrl')
  if (props.jwtSecretArn && !/^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+-[A-Za-z0-9]{6}$/.test(props.jwtSecretArn)) {
    // IAM matches the secret's complete ARN, including the six characters Secrets Manager appends to its name.
    throw new Error(`jwtSecretArn '${props.jwtSecretArn}' must be the secret's complete ARN (ending in -XXXXXX)`)
  }
  if (props.reservedConcurrency !== undefined && !(Number.isInteger(props.reservedConcurrency) && props.reservedConcurrency >= 1)) {
    throw new Error('reservedConcurrency must be a whole number of at least 1')
  }
  if (props.identityCenterTps !== undefined && !(props.identityCenterTps > 0 && props.identityCenterTps <= 20)) {
    throw new Error('identityCenterTps must be above 0 and at most 20')
  }
  return instanceId
}

/** A CDK table with exactly the keys and indexes the service creates locally: one definition for both. */
function tableFrom(scope: Construct, id: string, definition: CreateTableCommandInput, options: { timeToLiveAttribute?: string }): dynamodb.Table {
  const key = (name: string | undefined): dynamodb.Attribute => {
    const type = definition.AttributeDefinitions?.find((a) => a.AttributeName === name)?.AttributeType
    if (!name || !type) throw new Error(`${id}: key attribute '${name}' has no definition`)
    return { name, type: type === 'N' ? dynamodb.AttributeType.NUMBER : type === 'B' ? dynamodb.AttributeType.BINARY : dynamodb.AttributeType.STRING }
  }
  const [tableHash, tableRange] = definition.KeySchema ?? []
  const table = new dynamodb.Table(scope, id, {
    partitionKey: key(tableHash?.AttributeName),
    ...(tableRange ? { sortKey: key(tableRange.AttributeName) } : {}),
    billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
    pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
    removalPolicy: RemovalPolicy.RETAIN,
    deletionProtection: true,
    ...(options.timeToLiveAttribute ? { timeToLiveAttribute: options.timeToLiveAttribute } : {}),
  })
  for (const index of definition.GlobalSecondaryIndexes ?? []) {
    const [hash, range] = index.KeySchema ?? []
    if (index.Projection?.ProjectionType !== 'ALL') throw new Error(`${id}: index ${index.IndexName} must project ALL (the service reads whole items from it)`)
    table.addGlobalSecondaryIndex({
      indexName: index.IndexName as string,
      partitionKey: key(hash?.AttributeName),
      ...(range ? { sortKey: key(range.AttributeName) } : {}),
      projectionType: dynamodb.ProjectionType.ALL,
    })
  }
  return table
}
