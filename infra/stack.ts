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
  /** Directory with lambda.mjs, static/ and policy.json (see infra/app.ts). */
  codeDir: string
  instanceArn: string
  identityStoreId: string
  jwtIssuer: string
  jwtAudience: string
  /** RS256/ES256 public key (PEM); or: */
  jwtPublicKey?: string | undefined
  /** A Secrets Manager secret holding the HS256 secret; its value never enters the template. */
  jwtSecretArn?: string | undefined
  /** Permission sets jit-access may assign; default: any in the instance. */
  permissionSetArns?: string[] | undefined
  /** Accounts jit-access may assign on; default: any. */
  accountIds?: string[] | undefined
  /** Requests per second (and burst) the HTTP API accepts. */
  throttle?: { rateLimit: number; burstLimit: number } | undefined
  /**
   * At most this many concurrent invocations: with the Identity Center rate limit each process applies,
   * it bounds the whole deployment's share of the organisation's 20 calls per second.
   */
  reservedConcurrency?: number | undefined
}

/** Sweep runs whose summary reports failures, from the function's JSON log line. */
export const SWEEP_FAILURE_PATTERN = '{ $.msg = "revocation sweep finished" && $.failed > 0 }'

export class JitAccessStack extends Stack {
  constructor(scope: Construct, id: string, props: JitAccessStackProps) {
    super(scope, id, props)
    if (!props.jwtPublicKey === !props.jwtSecretArn) throw new Error('Give exactly one of jwtPublicKey and jwtSecretArn')
    const instanceId = props.instanceArn.split('/').pop() as string

    const grants = tableFrom(this, 'GrantsTable', grantsTableDefinition('unused'), GRANTS_TTL_ATTRIBUTE)
    // The audit trail: no TTL, and (below) no update or delete permission for the service either.
    const audit = tableFrom(this, 'AuditTable', auditTableDefinition('unused'))

    const topicKey = new kms.Key(this, 'AlertsKey', { enableKeyRotation: true, description: 'jit-access alerts topic' })
    // CloudWatch alarms publish to the encrypted topic, so the alarm service may use the key.
    topicKey.addToResourcePolicy(new iam.PolicyStatement({
      principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
      actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
      resources: ['*'],
    }))
    const topic = new sns.Topic(this, 'Alerts', { masterKey: topicKey, displayName: 'jit-access' })

    const logGroup = new logs.LogGroup(this, 'Logs', { retention: logs.RetentionDays.ONE_YEAR, removalPolicy: RemovalPolicy.RETAIN })
    // An explicit role: the managed AWSLambdaBasicExecutionRole would allow writing to any log group.
    const role = new iam.Role(this, 'FunctionRole', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') })
    role.addToPolicy(new iam.PolicyStatement({ actions: ['logs:CreateLogStream', 'logs:PutLogEvents'], resources: [logGroup.logGroupArn] }))

    const fn = new lambda.Function(this, 'Function', {
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      handler: 'lambda.handler',
      code: lambda.Code.fromAsset(props.codeDir),
      memorySize: 1024,
      timeout: Duration.seconds(60),
      reservedConcurrentExecutions: props.reservedConcurrency ?? 5,
      role,
      logGroup,
      environment: {
        NODE_OPTIONS: '--enable-source-maps',
        JIT_GRANTS_TABLE: grants.tableName,
        JIT_AUDIT_TABLE: audit.tableName,
        JIT_SNS_TOPIC_ARN: topic.topicArn,
        JIT_INSTANCE_ARN: props.instanceArn,
        JIT_IDENTITY_STORE_ID: props.identityStoreId,
        JIT_JWT_ISSUER: props.jwtIssuer,
        JIT_JWT_AUDIENCE: props.jwtAudience,
        ...(props.jwtPublicKey ? { JIT_JWT_PUBLIC_KEY: props.jwtPublicKey } : { JIT_JWT_SECRET_ARN: props.jwtSecretArn as string }),
        JIT_POLICY_FILE: '/var/task/policy.json',
        JIT_SWEEP_BUDGET_SECONDS: '50',
      },
    })

    const permissionSets = props.permissionSetArns ?? [`arn:${this.partition}:sso:::permissionSet/${instanceId}/*`]
    const accounts = (props.accountIds ?? ['*']).map((id) => `arn:${this.partition}:sso:::account/${id}`)
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
    role.addToPolicy(new iam.PolicyStatement({
      sid: 'ReadPermissionSets',
      actions: ['sso:DescribePermissionSet'],
      resources: [props.instanceArn, ...permissionSets],
    }))
    role.addToPolicy(new iam.PolicyStatement({
      sid: 'ResolveUsersAndGroups',
      actions: ['identitystore:GetUserId', 'identitystore:ListGroupMembershipsForMember', 'identitystore:DescribeGroup'],
      resources: [
        `arn:${this.partition}:identitystore::${this.account}:identitystore/${props.identityStoreId}`,
        `arn:${this.partition}:identitystore:::user/*`,
        `arn:${this.partition}:identitystore:::group/*`,
        `arn:${this.partition}:identitystore:::membership/*`,
      ],
    }))
    role.addToPolicy(new iam.PolicyStatement({
      sid: 'GrantState',
      actions: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:ConditionCheckItem', 'dynamodb:Query'],
      resources: [grants.tableArn, `${grants.tableArn}/index/*`],
    }))
    role.addToPolicy(new iam.PolicyStatement({
      sid: 'AppendAndReadAudit',
      actions: ['dynamodb:PutItem', 'dynamodb:GetItem', 'dynamodb:Query'],
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

    // Every minute, so that no access outlives its grant by more than a minute; invoked directly, not over HTTP.
    new events.Rule(this, 'SweepSchedule', {
      description: 'jit-access revocation sweep',
      schedule: events.Schedule.rate(Duration.minutes(1)),
      targets: [new targets.LambdaFunction(fn, { retryAttempts: 0, maxEventAge: Duration.minutes(1) })],
    })

    const alarmAction = new cloudwatchActions.SnsAction(topic)
    new cloudwatch.Alarm(this, 'FunctionErrors', {
      alarmDescription: 'jit-access Lambda invocations failed',
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
      alarmDescription: 'The revocation sweep could not finish some grants; access may outlive its grant',
      metric: sweepFailures.metric({ period: Duration.minutes(1), statistic: 'Sum' }),
      threshold: 1,
      evaluationPeriods: 2,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    }).addAlarmAction(alarmAction)

    new CfnOutput(this, 'ApiUrl', { value: stage.url })
    new CfnOutput(this, 'AlertsTopicArn', { value: topic.topicArn })
  }
}

/** A CDK table with exactly the keys and indexes the service creates locally: one definition for both. */
function tableFrom(scope: Construct, id: string, definition: CreateTableCommandInput, ttlAttribute?: string): dynamodb.Table {
  const typeOf = (name: string) =>
    definition.AttributeDefinitions?.find((a) => a.AttributeName === name)?.AttributeType === 'N' ? dynamodb.AttributeType.NUMBER : dynamodb.AttributeType.STRING
  const table = new dynamodb.Table(scope, id, {
    partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
    billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
    pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
    removalPolicy: RemovalPolicy.RETAIN,
    deletionProtection: true,
    ...(ttlAttribute ? { timeToLiveAttribute: ttlAttribute } : {}),
  })
  for (const index of definition.GlobalSecondaryIndexes ?? []) {
    const [hash, range] = index.KeySchema ?? []
    table.addGlobalSecondaryIndex({
      indexName: index.IndexName as string,
      partitionKey: { name: hash?.AttributeName as string, type: typeOf(hash?.AttributeName as string) },
      ...(range ? { sortKey: { name: range.AttributeName as string, type: typeOf(range.AttributeName as string) } } : {}),
      projectionType: dynamodb.ProjectionType.ALL,
    })
  }
  return table
}
