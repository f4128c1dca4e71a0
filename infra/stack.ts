import type { CreateTableCommandInput } from '@aws-sdk/client-dynamodb'
import { CfnOutput, Duration, Fn, RemovalPolicy, Stack, type StackProps, Validations } from 'aws-cdk-lib'
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway'
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
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources'
import * as logs from 'aws-cdk-lib/aws-logs'
import * as organizations from 'aws-cdk-lib/aws-organizations'
import * as s3 from 'aws-cdk-lib/aws-s3'
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager'
import * as sns from 'aws-cdk-lib/aws-sns'
import * as sqs from 'aws-cdk-lib/aws-sqs'
import type { Construct } from 'constructs'
import { auditTableDefinition, GRANTS_TTL_ATTRIBUTE, grantsTableDefinition } from '../src/adapters/dynamodb/tables.ts'
import { DEFAULT_ANCHOR_RETENTION_DAYS } from '../src/adapters/s3-anchors.ts'
import { MAX_CUTOFF_POLICIES } from '../src/config.ts'
import { EMPTY_CUTOFF_POLICY } from '../src/core/cutoff-policy.ts'

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
  /**
   * The permission sets jit-access may assign (at least one): IAM allows CreateAccountAssignment and
   * DeleteAccountAssignment on these only, whatever the eligibility policy says.
   */
  permissionSetArns: string[]
  /** Accounts jit-access may assign on; default: any. */
  accountIds?: string[] | undefined
  /**
   * Identity Store group ids whose membership group grants may change (the policy's grantableGroups); IAM allows
   * GetGroupMembershipId, CreateGroupMembership and DeleteGroupMembership on these only. Opt-in: unset (or empty),
   * the role may change no group membership at all, and group grants fail.
   */
  grantableGroupIds?: string[] | undefined
  /**
   * Work notes on tickets, and with `verify` approval verification (docs/servicenow.md): the instance's URL, who
   * signs in (an OAuth client id or an integration user's name), and the Secrets Manager secret holding the
   * client secret or password (its value never enters the template). Unset: no ServiceNow.
   */
  serviceNow?:
    | {
        url: string
        clientId?: string | undefined
        username?: string | undefined
        secretArn: string
        verify?: boolean | undefined
      }
    | undefined
  /** Requests per second (and burst) the HTTP API accepts. */
  throttle?: { rateLimit: number; burstLimit: number } | undefined
  /**
   * At most this many concurrent invocations of the API function (the sweep function has its own
   * SWEEP_RESERVED_CONCURRENCY): with the Identity Center rate limit each process applies, the two bound the
   * whole deployment's share of the organisation's quota (README, Performance).
   */
  reservedConcurrency?: number | undefined
  /** Identity Center calls per second per execution environment (JIT_IDENTITY_CENTER_TPS); default 10. */
  identityCenterTps?: number | undefined
  /**
   * How long S3 keeps each anchor of the audit chain's head where nobody, the account's root user included, can
   * delete or change it (Object Lock, compliance mode); default DEFAULT_ANCHOR_RETENTION_DAYS. It cannot be
   * shortened for anchors already written.
   */
  auditAnchorRetentionDays?: number | undefined
  /**
   * End live role sessions when a grant's access ends (JIT_SESSION_CUTOFF=scp): the stack creates `policies`
   * (default 1, at most 5) service control policies of the service's own and attaches them to `targetIds` (the
   * organization's root r-…, or the OUs ou-… that hold the accounts jit-access grants on). Needs a deployment in
   * the management account or in a delegated administrator for Organizations policy management. Unset: off.
   */
  sessionCutoff?: { targetIds: string[]; policies?: number | undefined } | undefined
  /**
   * The eligibility policy names organizational units, the root or account tags (infra/app.ts sets this from the
   * policy file): the role may then read the organization's structure, tags and account status, and nothing else
   * of it. Organizations answers these only in the management account or in a delegated administrator for
   * Organizations (a member account registered with RegisterDelegatedAdministrator or a delegation policy).
   */
  readOrganization?: boolean | undefined
}

/**
 * Copies of the sweep function that may run at once. Reserved for it alone, so that no burst of API requests
 * can take the capacity the one-minute schedule needs. One is enough: a run ends about when the next begins (its
 * budget is 55 s; the next waits for its lease), and a second copy would only contend for the same due grants.
 */
export const SWEEP_RESERVED_CONCURRENCY = 1

/**
 * Copies of the due function (the due queue's consumer) that may run at once: two, the least an SQS event source
 * mapping polls with. Messages are spread over the minute, one or two a second at most in practice.
 */
export const DUE_RESERVED_CONCURRENCY = 2

/**
 * The HTTP API's access log line. `requestId` is the id the service puts on its own log lines, problem bodies and
 * audit events (src/lambda.ts), so one request can be followed from the gateway into the function. No headers
 * or query strings: they can carry tokens.
 */
export const API_ACCESS_LOG_FORMAT = {
  requestId: '$context.requestId',
  requestTime: '$context.requestTime',
  sourceIp: '$context.identity.sourceIp',
  userAgent: '$context.identity.userAgent',
  method: '$context.httpMethod',
  path: '$context.path',
  protocol: '$context.protocol',
  status: '$context.status',
  responseLength: '$context.responseLength',
  responseLatency: '$context.responseLatency',
  integrationStatus: '$context.integrationStatus',
  integrationLatency: '$context.integrationLatency',
  integrationError: '$context.integrationErrorMessage',
  error: '$context.error.message',
}

/** Where infra/app.ts puts the eligibility policy inside the function's code. */
export const POLICY_FILE_IN_FUNCTION = 'policy.json'

/** Sweep runs whose summary reports failures, from the function's JSON log line (src/app.ts logs it). */
export const SWEEP_FAILURE_PATTERN = '{ ($.msg = "revocation sweep finished") && ($.failed > 0) }'

const INSTANCE_ARN = /^arn:(aws[a-z-]*):sso:::instance\/(ssoins-[0-9a-f]{16})$/
const PERMISSION_SET_ARN = /^arn:aws[a-z-]*:sso:::permissionSet\/(ssoins-[0-9a-f]{16})\/ps-[0-9a-f]{16}$/
const ACCOUNT_ID = /^\d{12}$/
const IDENTITY_STORE_ID = /^d-[0-9a-z]{10}$/
const ORGANIZATION_TARGET = /^(r-[0-9a-z]{4,32}|ou-[0-9a-z]{4,32}-[a-z0-9]{8,32})$/

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
    // Whoever holds the function's role may put items in both tables: they could cut the audit log short and
    // move its head pointer back to match. The sweep records the head here, where that role may only add
    // objects, and verify checks the log against it (src/adapters/s3-anchors.ts).
    const anchors = new s3.Bucket(this, 'AuditAnchors', {
      objectLockEnabled: true,
      objectLockDefaultRetention: s3.ObjectLockRetention.compliance(
        Duration.days(props.auditAnchorRetentionDays ?? DEFAULT_ANCHOR_RETENTION_DAYS),
      ),
      versioned: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      removalPolicy: RemovalPolicy.RETAIN,
    })
    Validations.of(anchors).acknowledge({
      id: 'AwsSolutions-S1',
      reason:
        'Who wrote an anchor, or tried to delete one, is for CloudTrail data events, which name the caller and whose log files can be ' +
        'validated; server access logs would be a second, unvalidated record in one more bucket to protect. Verify does not depend on either.',
    })

    const topicKey = new kms.Key(this, 'AlertsKey', { enableKeyRotation: true, description: 'jit-access alerts topic' })
    // CloudWatch alarms publish to the encrypted topic, so the alarm service may use the key, but only for
    // alarms of this account and region: without the source conditions, any account's alarm could (the
    // confused-deputy problem). Not narrowed to this stack's alarms: they name the topic, which names the key.
    topicKey.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'CloudWatchAlarmsPublishToTopic',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
        resources: ['*'],
        conditions: {
          StringEquals: { 'aws:SourceAccount': this.account },
          ArnLike: { 'aws:SourceArn': `arn:${this.partition}:cloudwatch:${this.region}:${this.account}:alarm:*` },
        },
      }),
    )
    const topic = new sns.Topic(this, 'Alerts', { masterKey: topicKey, displayName: 'jit-access' })

    // Generated by Secrets Manager, so its value is never in the template; losing or rotating it only makes
    // clients start their listings again (an unknown cursor is a 400).
    const cursorKey = new secretsmanager.Secret(this, 'CursorKey', {
      description: 'jit-access: seals page cursors (JIT_CURSOR_KEY_ARN)',
      generateSecretString: { passwordLength: 64, excludePunctuation: true },
    })
    Validations.of(cursorKey).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason:
        'No scheduled rotation: the secret only seals page cursors (AES-GCM over a DynamoDB key, no credential), and each execution ' +
        "environment reads it once at start, so a rotation would leave old and new environments refusing each other's cursors until they " +
        'recycle. Replace it by hand if it leaks; clients then restart their listings.',
    })

    const cutoffPolicies = sessionCutoffPolicies(this, props.sessionCutoff)

    const logGroup = new logs.LogGroup(this, 'Logs', {
      retention: logs.RetentionDays.ONE_YEAR,
      removalPolicy: RemovalPolicy.RETAIN,
    })
    // Its own log group: Lambda's log stream names do not say which function wrote them.
    const sweepLogGroup = new logs.LogGroup(this, 'SweepLogs', {
      retention: logs.RetentionDays.ONE_YEAR,
      removalPolicy: RemovalPolicy.RETAIN,
    })
    // An explicit role: the managed AWSLambdaBasicExecutionRole would allow writing to any log group. One role
    // for both functions: they run the same code, which builds every adapter at start-up.
    const role = new iam.Role(this, 'FunctionRole', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') })
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'WriteOwnLogs',
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [logGroup.logGroupArn, sweepLogGroup.logGroupArn],
      }),
    )

    // The API and the sweep run the same bundle and handler (src/lambda.ts tells their events apart) as two
    // functions, so that each has its own reserved concurrency: when both shared one pool, a flood of
    // requests, authenticated or not, could throttle the scheduled sweep and let access outlive its grants.
    // The due queue: each sweep puts on it the grants due before the next run, each delayed to its second, and the
    // due function acts on them then (src/lambda.ts): expiry to the second, at no cost while idle. The sweep stays
    // the safety net, so a message that keeps failing is moved aside after a few tries rather than kept.
    const dueDeadLetters = new sqs.Queue(this, 'DueDeadLetterQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(1),
    })
    const dueQueue = new sqs.Queue(this, 'DueQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // A message is of use for minutes at most: the next sweep has acted on it by then.
      retentionPeriod: Duration.minutes(30),
      // Six times the function's timeout, as AWS advises for a Lambda event source.
      visibilityTimeout: Duration.minutes(6),
      deadLetterQueue: { queue: dueDeadLetters, maxReceiveCount: 3 },
    })
    const functionProps: lambda.FunctionProps = {
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      handler: 'lambda.handler',
      code: lambda.Code.fromAsset(props.codeDir),
      memorySize: 1024,
      // The sweep uses all but SWEEP_SAFETY_MARGIN_MS of it (src/lambda.ts); JIT_SWEEP_BUDGET_SECONDS caps it below.
      timeout: Duration.seconds(60),
      role,
      // No NODE_OPTIONS=--enable-source-maps: with it, Node parses the bundle's map during init (pino asks
      // for call sites), about 140 ms of every cold start. The .map files are deployed beside the bundle, so
      // setting it on the function later needs no new build (README, Deploy).
      environment: {
        JIT_GRANTS_TABLE: grants.tableName,
        JIT_AUDIT_TABLE: audit.tableName,
        JIT_AUDIT_ANCHOR_BUCKET: anchors.bucketName,
        JIT_SNS_TOPIC_ARN: topic.topicArn,
        JIT_INSTANCE_ARN: props.instanceArn,
        JIT_IDENTITY_STORE_ID: props.identityStoreId,
        JIT_JWT_ISSUER: props.jwtIssuer,
        JIT_JWT_AUDIENCE: props.jwtAudience,
        ...(props.jwtPublicKey ? { JIT_JWT_PUBLIC_KEY: props.jwtPublicKey } : {}),
        ...(props.jwtSecretArn ? { JIT_JWT_SECRET_ARN: props.jwtSecretArn } : {}),
        ...(props.jwksUrl ? { JIT_JWKS_URL: props.jwksUrl } : {}),
        JIT_CURSOR_KEY_ARN: cursorKey.secretArn,
        JIT_POLICY_FILE: `/var/task/${POLICY_FILE_IN_FUNCTION}`,
        JIT_SWEEP_BUDGET_SECONDS: '55',
        JIT_DUE_QUEUE_URL: dueQueue.queueUrl,
        JIT_DUE_QUEUE_ARN: dueQueue.queueArn,
        ...(props.identityCenterTps !== undefined ? { JIT_IDENTITY_CENTER_TPS: String(props.identityCenterTps) } : {}),
        ...(cutoffPolicies.length > 0
          ? {
              JIT_SESSION_CUTOFF: 'scp',
              JIT_CUTOFF_POLICY_IDS: Fn.join(
                ',',
                cutoffPolicies.map((policy) => policy.attrId),
              ),
            }
          : {}),
        ...(cutoffPolicies.length > 0 && props.managementAccountId
          ? { JIT_MANAGEMENT_ACCOUNT_ID: props.managementAccountId }
          : {}),
        ...serviceNowEnvironment(props.serviceNow),
      },
    }
    const fn = new lambda.Function(this, 'Function', {
      ...functionProps,
      description: 'jit-access: HTTP API requests',
      reservedConcurrentExecutions: props.reservedConcurrency ?? 5,
      logGroup,
    })
    const sweepFn = new lambda.Function(this, 'SweepFunction', {
      ...functionProps,
      description: 'jit-access: the one-minute revocation sweep (EventBridge only)',
      reservedConcurrentExecutions: SWEEP_RESERVED_CONCURRENCY,
      logGroup: sweepLogGroup,
    })

    const dueFn = new lambda.Function(this, 'DueFunction', {
      ...functionProps,
      description: 'jit-access: grants due at their second (the due queue only)',
      reservedConcurrentExecutions: DUE_RESERVED_CONCURRENCY,
      logGroup: sweepLogGroup,
    })
    // Partial batch answers (src/lambda.ts): only the messages whose work failed come back.
    dueFn.addEventSource(
      new SqsEventSource(dueQueue, {
        batchSize: 10,
        reportBatchItemFailures: true,
        maxConcurrency: DUE_RESERVED_CONCURRENCY,
      }),
    )
    // Send only: the sweep (either function) queues; receiving is the event source mapping's, granted by it above.
    role.addToPolicy(
      new iam.PolicyStatement({ sid: 'QueueDueGrants', actions: ['sqs:SendMessage'], resources: [dueQueue.queueArn] }),
    )

    // Resource-level permissions as the Service Authorization Reference defines them for each action: Identity
    // Center's assignment calls on the instance, permission set and account; its reads on the instance (and
    // permission set); Identity Store's on the store and the user, group or membership (ids unknown at deploy time).
    const partition = this.partition
    const allPermissionSets = `arn:${partition}:sso:::permissionSet/${instanceId}/*`
    const accounts = (props.accountIds ?? ['*']).map((accountId) => `arn:${partition}:sso:::account/${accountId}`)
    const identityStore = `arn:${partition}:identitystore::${props.managementAccountId ?? '*'}:identitystore/${props.identityStoreId}`
    // cdk-nag's AwsSolutions-IAM5 flags each wildcard resource: each is acknowledged here, with why it cannot be
    // narrowed, in the form cdk-nag reports it (test/cdk-nag.test.ts fails on any it does not cover).
    const acknowledgeWildcard = (resource: string, reason: string) =>
      Validations.of(role).acknowledge({ id: `AwsSolutions-IAM5[Resource::${resource}]`, reason })
    // Named permission sets, not a tag condition: whoever may tag permission sets in the instance could then
    // make any of them (AdministratorAccess included) grantable; a list changes only with a reviewed deployment.
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'AssignAndRemoveAccess',
        actions: ['sso:CreateAccountAssignment', 'sso:DeleteAccountAssignment'],
        resources: [props.instanceArn, ...props.permissionSetArns, ...accounts],
      }),
    )
    if (!props.accountIds) {
      acknowledgeWildcard(
        'arn:<AWS::Partition>:sso:::account/*',
        'Assignments on any account of the organisation, because the deployment names none ' +
          '(accountIds); the permission sets are still only the listed ones, and the eligibility policy decides which accounts each rule allows.',
      )
    }
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ReadAssignmentsAndStatus',
        actions: [
          'sso:ListAccountAssignmentsForPrincipal',
          'sso:DescribeAccountAssignmentCreationStatus',
          'sso:DescribeAccountAssignmentDeletionStatus',
          'sso:ListPermissionSets',
        ],
        resources: [props.instanceArn],
      }),
    )
    // Every permission set of the instance, not only the grantable ones: the service finds the names the
    // eligibility policy uses by describing each set the instance lists (src/adapters/identity-center.ts), and one
    // refused description fails that whole listing, and so every request. Reading a name grants nothing.
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ReadPermissionSets',
        actions: ['sso:DescribePermissionSet'],
        resources: [props.instanceArn, allPermissionSets],
      }),
    )
    acknowledgeWildcard(
      `arn:<AWS::Partition>:sso:::permissionSet/${instanceId}/*`,
      'sso:DescribePermissionSet only, on the permission sets of the one ' +
        'instance: the service resolves permission set names by describing every set the instance lists, and one refused description would fail ' +
        'every request. Assignment itself (AssignAndRemoveAccess) is limited to permissionSetArns.',
    )
    if (!props.managementAccountId) {
      acknowledgeWildcard(
        `arn:<AWS::Partition>:identitystore::*:identitystore/${props.identityStoreId}`,
        'The identity store is named by its ' +
          'id (unique to one store); only the account in its ARN is left open, because the deployment does not give managementAccountId.',
      )
    }
    acknowledgeWildcard(
      'arn:<AWS::Partition>:identitystore:::user/*',
      'Identity Store user ids are created with the users and looked up by ' +
        'user name at request time (GetUserId), so they cannot be listed at deploy time; every statement naming users also names the one identity store, which each of these actions requires.',
    )
    acknowledgeWildcard(
      'arn:<AWS::Partition>:identitystore:::group/*',
      "Group ids are looked up by the policy's group names at start " +
        '(GetGroupId, read only), so they cannot be listed at deploy time; the statement also names the one identity store. Group grants ' +
        '(AddAndRemoveGroupMembers) name each group in grantableGroupIds, and exist only when the deployment names some.',
    )
    acknowledgeWildcard(
      'arn:<AWS::Partition>:identitystore:::membership/*',
      "Membership ids are unknown until a user's memberships are " +
        'listed (ListGroupMembershipsForMember) or looked up (GetGroupMembershipId), both read only; the statements also name the one identity store and users.',
    )
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ResolveUsers',
        // GetUserId finds the user by name; DescribeUser reads the directory's own spelling of it, which is what is recorded.
        actions: ['identitystore:GetUserId', 'identitystore:DescribeUser'],
        resources: [identityStore, `arn:${partition}:identitystore:::user/*`],
      }),
    )
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ReadGroupMemberships',
        actions: ['identitystore:ListGroupMembershipsForMember'],
        resources: [
          identityStore,
          `arn:${partition}:identitystore:::user/*`,
          `arn:${partition}:identitystore:::membership/*`,
        ],
      }),
    )
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ResolveGroups',
        // The policy's group names are resolved to ids once, at start; memberships are then matched by id.
        actions: ['identitystore:GetGroupId'],
        resources: [identityStore, `arn:${partition}:identitystore:::group/*`],
      }),
    )
    // Group grants (grantableGroups in the policy): find a user's membership of a group (GetGroupMembershipId, read
    // only), add a user to a group and remove the membership again. The Service Authorization Reference requires the
    // store, the group, the user and (to remove) the membership. Only on the groups the deployment names, and only
    // when it names some: a default of every group would let a stolen role join any group, past every limit on
    // permission sets and accounts (a group can carry any assignment).
    if (props.grantableGroupIds?.length) {
      role.addToPolicy(
        new iam.PolicyStatement({
          sid: 'AddAndRemoveGroupMembers',
          actions: [
            'identitystore:GetGroupMembershipId',
            'identitystore:CreateGroupMembership',
            'identitystore:DeleteGroupMembership',
          ],
          resources: [
            identityStore,
            ...props.grantableGroupIds.map((groupId) => `arn:${partition}:identitystore:::group/${groupId}`),
            `arn:${partition}:identitystore:::user/*`,
            `arn:${partition}:identitystore:::membership/*`,
          ],
        }),
      )
    }
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'GrantState',
        actions: [
          'dynamodb:GetItem',
          'dynamodb:PutItem',
          'dynamodb:UpdateItem',
          'dynamodb:DeleteItem',
          'dynamodb:Query',
        ],
        resources: [grants.tableArn, ...indexArns(grants, grantsTableDefinition('unused'))],
      }),
    )
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'AppendAndReadAudit',
        actions: ['dynamodb:PutItem', 'dynamodb:Query'],
        resources: [audit.tableArn, ...indexArns(audit, auditTableDefinition('unused'))],
      }),
    )
    // Add and list anchors, nothing else: no delete, no retention or legal-hold change, no governance bypass,
    // no bucket configuration. (Compliance mode would refuse most of those anyway; a delete without a version
    // would still hide an anchor behind a marker.) Not anchors.grantPut: that adds PutObjectRetention and PutObjectLegalHold.
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'WriteAuditAnchors',
        actions: ['s3:PutObject'],
        resources: [anchors.arnForObjects('anchors/*')],
      }),
    )
    acknowledgeWildcard(
      `<${this.resolve((anchors.node.defaultChild as s3.CfnBucket).logicalId)}.Arn>/anchors/*`,
      's3:PutObject only, under ' +
        'anchors/ in the one anchor bucket: each anchor is a new key named after the head it records (seq and hash), unknown at deploy time. ' +
        'Object Lock keeps every version written, so a put can add anchors but never replace one.',
    )
    role.addToPolicy(
      new iam.PolicyStatement({ sid: 'ListAuditAnchors', actions: ['s3:ListBucket'], resources: [anchors.bucketArn] }),
    )
    role.addToPolicy(
      new iam.PolicyStatement({ sid: 'PublishAlerts', actions: ['sns:Publish'], resources: [topic.topicArn] }),
    )
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'EncryptAlerts',
        actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
        resources: [topicKey.keyArn],
      }),
    )
    // Not cursorKey.grantRead: that adds DescribeSecret, which the service never calls.
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ReadCursorKey',
        actions: ['secretsmanager:GetSecretValue'],
        resources: [cursorKey.secretArn],
      }),
    )
    if (cutoffPolicies.length > 0) {
      // Read and rewrite the service's own policies, by ARN: not create, delete, attach or detach any policy, nor touch another.
      role.addToPolicy(
        new iam.PolicyStatement({
          sid: 'CutSessions',
          actions: ['organizations:DescribePolicy', 'organizations:UpdatePolicy'],
          resources: cutoffPolicies.map((policy) => policy.attrArn),
        }),
      )
    }
    if (props.serviceNow) {
      role.addToPolicy(
        new iam.PolicyStatement({
          sid: 'ReadServiceNowSecret',
          actions: ['secretsmanager:GetSecretValue'],
          resources: [props.serviceNow.secretArn],
        }),
      )
    }
    if (props.readOrganization) {
      // Read only: where an account sits (its parents, up to the root), an OU's accounts and OUs (GET /eligibility),
      // its tags and status. Not one action that changes the organization. The ARNs name the management account when
      // the deployment gives it; the organization id, OU ids and account ids are reached at run time.
      const organizationArn = (kind: string) =>
        `arn:${partition}:organizations::${props.managementAccountId ?? '*'}:${kind}`
      const organizationResources = [
        organizationArn('account/o-*/*'),
        organizationArn('ou/o-*/ou-*'),
        organizationArn('root/o-*/r-*'),
      ]
      role.addToPolicy(
        new iam.PolicyStatement({
          sid: 'ReadOrganization',
          actions: [
            'organizations:ListParents',
            'organizations:ListChildren',
            'organizations:ListAccountsForParent',
            'organizations:ListTagsForResource',
            'organizations:DescribeAccount',
          ],
          resources: organizationResources,
        }),
      )
      for (const resource of organizationResources) {
        acknowledgeWildcard(
          resource.replace(`arn:${partition}:`, 'arn:<AWS::Partition>:'),
          'Organizations read actions only (ListParents, ListChildren, ' +
            'ListAccountsForParent, ListTagsForResource, DescribeAccount) on accounts, OUs and the root: the eligibility policy reaches accounts ' +
            'through OUs at run time, and the organization id is not a deployment setting.',
        )
      }
    }
    if (props.jwtSecretArn) {
      role.addToPolicy(
        new iam.PolicyStatement({
          sid: 'ReadJwtSecret',
          actions: ['secretsmanager:GetSecretValue'],
          resources: [props.jwtSecretArn],
        }),
      )
    }

    const api = new apigw.HttpApi(this, 'Api', {
      defaultIntegration: new HttpLambdaIntegration('Service', fn),
      createDefaultStage: false,
      description: 'jit-access',
    })
    Validations.of(api).acknowledge({
      id: 'AwsSolutions-APIG4',
      reason:
        'The service authenticates every route but /health, /openapi.json and /docs itself: a bearer JWT checked for signature, issuer ' +
        'and audience, then the scope each route needs (src/http/auth.ts). An API Gateway JWT authorizer cannot take its place: it reads keys ' +
        "only from an issuer's JWKS, so not the HS256 secret or PEM key the stack also accepts, and the one $default route has no per-route scopes.",
    })
    // Requests the throttle or a gateway error refused never reach the function: only these logs show them.
    const accessLogs = new logs.LogGroup(this, 'ApiAccessLogs', {
      retention: logs.RetentionDays.ONE_YEAR,
      removalPolicy: RemovalPolicy.RETAIN,
    })
    const stage = new apigw.HttpStage(this, 'Stage', {
      httpApi: api,
      stageName: '$default',
      autoDeploy: true,
      throttle: props.throttle ?? { rateLimit: 20, burstLimit: 40 },
      accessLogSettings: {
        destination: new apigw.LogGroupLogDestination(accessLogs),
        format: AccessLogFormat.custom(JSON.stringify(API_ACCESS_LOG_FORMAT)),
      },
    })

    // Every minute, so that no access outlives its grant by more than about a minute. EventBridge invokes the
    // sweep function directly (asynchronously): the sweep never goes through an HTTP route. Neither EventBridge nor
    // Lambda retries a sweep, and one that waited a minute for a free copy is dropped: the next minute is the retry.
    sweepFn.configureAsyncInvoke({ retryAttempts: 0, maxEventAge: Duration.minutes(1) })
    new events.Rule(this, 'SweepSchedule', {
      description: 'jit-access revocation sweep',
      schedule: events.Schedule.rate(Duration.minutes(1)),
      targets: [new targets.LambdaFunction(sweepFn, { retryAttempts: 0, maxEventAge: Duration.minutes(1) })],
    })

    const alarmAction = new cloudwatchActions.SnsAction(topic)
    for (const [id, which, watched] of [
      ['FunctionErrors', 'API', fn],
      ['SweepFunctionErrors', 'sweep', sweepFn],
      ['DueFunctionErrors', 'due', dueFn],
    ] as const) {
      new cloudwatch.Alarm(this, id, {
        alarmDescription: `jit-access ${which} Lambda invocations failed (a failed init, an unhandled error, a timeout)`,
        metric: watched.metricErrors({ period: Duration.minutes(1) }),
        threshold: 1,
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }).addAlarmAction(alarmAction)
    }
    // Scheduled sweeps log in the sweep function, sweeps on demand (POST /revocations) in the API function: both
    // feed the one metric.
    const sweepFailuresIn = (id: string, group: logs.ILogGroup) =>
      new logs.MetricFilter(this, id, {
        logGroup: group,
        filterPattern: logs.FilterPattern.literal(SWEEP_FAILURE_PATTERN),
        metricNamespace: 'JitAccess',
        metricName: 'SweepFailures',
        metricValue: '$.failed',
        defaultValue: 0,
      })
    const sweepFailures = sweepFailuresIn('SweepFailuresFilter', logGroup)
    sweepFailuresIn('ScheduledSweepFailuresFilter', sweepLogGroup)
    new cloudwatch.Alarm(this, 'SweepFailuresAlarm', {
      alarmDescription:
        'The revocation sweep could not finish some grants two minutes running; access may outlive its grant',
      metric: sweepFailures.metric({ period: Duration.minutes(1), statistic: 'Sum' }),
      threshold: 1,
      evaluationPeriods: 2,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    }).addAlarmAction(alarmAction)

    new CfnOutput(this, 'ApiUrl', { value: stage.url })
    new CfnOutput(this, 'AlertsTopicArn', { value: topic.topicArn })
    new CfnOutput(this, 'FunctionName', { value: fn.functionName })
    new CfnOutput(this, 'SweepFunctionName', { value: sweepFn.functionName })
    new CfnOutput(this, 'DueFunctionName', { value: dueFn.functionName })
  }
}

/**
 * The service control policies that cut live sessions, staged once: created holding only a statement no token can
 * match, attached where the accounts are. The service rewrites their content from then on; CloudFormation sends
 * this content again only when a property here changes (README: change the targets when nothing is cut).
 */
function sessionCutoffPolicies(
  scope: Construct,
  settings: JitAccessStackProps['sessionCutoff'],
): organizations.CfnPolicy[] {
  if (!settings) return []
  return Array.from(
    { length: settings.policies ?? 1 },
    (_, index) =>
      new organizations.CfnPolicy(scope, `SessionCutoffPolicy${index + 1}`, {
        name: `${Stack.of(scope).stackName}-session-cutoff-${index + 1}`,
        description:
          'jit-access: denies role sessions of ended grants issued before their end; written by the service, do not edit',
        type: 'SERVICE_CONTROL_POLICY',
        content: EMPTY_CUTOFF_POLICY,
        targetIds: settings.targetIds,
      }),
  )
}

/**
 * Wrong identifiers would give an IAM policy that silently matches nothing (or too much): refuse them at synth.
 * Returns the instance id.
 */
function checkSettings(props: JitAccessStackProps): string {
  const instance = INSTANCE_ARN.exec(props.instanceArn)
  if (!instance)
    throw new Error(
      `instanceArn '${props.instanceArn}' is not an Identity Center instance ARN (arn:aws:sso:::instance/ssoins-…)`,
    )
  const instanceId = instance[2] as string
  if (!IDENTITY_STORE_ID.test(props.identityStoreId))
    throw new Error(`identityStoreId '${props.identityStoreId}' is not an identity store id (d-…)`)
  if (props.managementAccountId !== undefined && !ACCOUNT_ID.test(props.managementAccountId))
    throw new Error(`managementAccountId '${props.managementAccountId}' is not an account id`)
  for (const accountId of props.accountIds ?? []) {
    if (!ACCOUNT_ID.test(accountId)) throw new Error(`accountIds: '${accountId}' is not an account id`)
  }
  for (const groupId of props.grantableGroupIds ?? []) {
    if (
      !/^([0-9a-f]{10}-)?[A-Fa-f0-9]{8}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{12}$/.test(groupId)
    ) {
      throw new Error(`grantableGroupIds: '${groupId}' is not an Identity Store group id`)
    }
  }
  if (props.permissionSetArns.length === 0)
    throw new Error('permissionSetArns: name at least one permission set jit-access may assign')
  for (const arn of props.permissionSetArns) {
    const match = PERMISSION_SET_ARN.exec(arn)
    if (!match) throw new Error(`permissionSetArns: '${arn}' is not a permission set ARN`)
    if (match[1] !== instanceId)
      throw new Error(`permissionSetArns: '${arn}' belongs to another instance than ${props.instanceArn}`)
  }
  const keySources = [props.jwtPublicKey, props.jwtSecretArn, props.jwksUrl].filter(Boolean).length
  if (keySources !== 1) throw new Error('Give exactly one JWT key source: jwtPublicKey(File), jwtSecretArn or jwksUrl')
  if (
    props.jwtSecretArn &&
    !/^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+-[A-Za-z0-9]{6}$/.test(props.jwtSecretArn)
  ) {
    // IAM matches the secret's complete ARN, including the six characters Secrets Manager appends to its name.
    throw new Error(`jwtSecretArn '${props.jwtSecretArn}' must be the secret's complete ARN (ending in -XXXXXX)`)
  }
  if (props.serviceNow) checkServiceNow(props.serviceNow)
  if (
    props.reservedConcurrency !== undefined &&
    !(Number.isInteger(props.reservedConcurrency) && props.reservedConcurrency >= 1)
  ) {
    throw new Error('reservedConcurrency must be a whole number of at least 1')
  }
  const retention = props.auditAnchorRetentionDays
  if (retention !== undefined && !(Number.isInteger(retention) && retention >= 1 && retention <= 36_500)) {
    throw new Error('auditAnchorRetentionDays must be a whole number of days from 1 to 36500')
  }
  if (props.identityCenterTps !== undefined && !(props.identityCenterTps > 0 && props.identityCenterTps <= 20)) {
    throw new Error('identityCenterTps must be above 0 and at most 20')
  }
  checkSessionCutoff(props.sessionCutoff)
  return instanceId
}

function checkSessionCutoff(settings: JitAccessStackProps['sessionCutoff']): void {
  if (!settings) return
  if (settings.targetIds.length === 0)
    throw new Error('sessionCutoffTargets: name the root (r-…) or the OUs (ou-…) the cut-off policies attach to')
  for (const target of settings.targetIds) {
    if (!ORGANIZATION_TARGET.test(target))
      throw new Error(`sessionCutoffTargets: '${target}' is not a root (r-…) or OU (ou-…) id`)
  }
  const count = settings.policies ?? 1
  if (!(Number.isInteger(count) && count >= 1 && count <= MAX_CUTOFF_POLICIES)) {
    throw new Error(
      `sessionCutoffPolicies must be a whole number from 1 to ${MAX_CUTOFF_POLICIES} (service control policies per target)`,
    )
  }
}

/** Each index by name rather than `index/*`: the adapters query only indexes the table definitions declare. */
function indexArns(table: dynamodb.Table, definition: CreateTableCommandInput): string[] {
  return (definition.GlobalSecondaryIndexes ?? []).map((index) => `${table.tableArn}/index/${index.IndexName}`)
}

/** A CDK table with exactly the keys and indexes the service creates locally: one definition for both. */
function tableFrom(
  scope: Construct,
  id: string,
  definition: CreateTableCommandInput,
  options: { timeToLiveAttribute?: string },
): dynamodb.Table {
  const key = (name: string | undefined): dynamodb.Attribute => {
    const type = definition.AttributeDefinitions?.find((a) => a.AttributeName === name)?.AttributeType
    if (!name || !type) throw new Error(`${id}: key attribute '${name}' has no definition`)
    return {
      name,
      type:
        type === 'N'
          ? dynamodb.AttributeType.NUMBER
          : type === 'B'
            ? dynamodb.AttributeType.BINARY
            : dynamodb.AttributeType.STRING,
    }
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
    if (index.Projection?.ProjectionType !== 'ALL')
      throw new Error(`${id}: index ${index.IndexName} must project ALL (the service reads whole items from it)`)
    table.addGlobalSecondaryIndex({
      indexName: index.IndexName as string,
      partitionKey: key(hash?.AttributeName),
      ...(range ? { sortKey: key(range.AttributeName) } : {}),
      projectionType: dynamodb.ProjectionType.ALL,
    })
  }
  return table
}

/** The secret half is read from Secrets Manager at start (JIT_SERVICENOW_SECRET_ARN): no secret in the template. */
function serviceNowEnvironment(serviceNow: JitAccessStackProps['serviceNow']): Record<string, string> {
  if (!serviceNow) return {}
  return {
    JIT_SERVICENOW_URL: serviceNow.url,
    ...(serviceNow.clientId
      ? { JIT_SERVICENOW_CLIENT_ID: serviceNow.clientId }
      : { JIT_SERVICENOW_USERNAME: serviceNow.username as string }),
    JIT_SERVICENOW_SECRET_ARN: serviceNow.secretArn,
    ...(serviceNow.verify ? { JIT_SERVICENOW_VERIFY: 'true' } : {}),
  }
}

function checkServiceNow(serviceNow: NonNullable<JitAccessStackProps['serviceNow']>): void {
  if (!/^https:\/\/[^/]+/.test(serviceNow.url))
    throw new Error(`serviceNowUrl '${serviceNow.url}' must be the instance's https URL`)
  if (!serviceNow.clientId === !serviceNow.username)
    throw new Error(
      'Give exactly one of serviceNowClientId (OAuth client credentials) or serviceNowUsername (basic auth)',
    )
  if (!/^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+-[A-Za-z0-9]{6}$/.test(serviceNow.secretArn)) {
    throw new Error(
      `serviceNowSecretArn '${serviceNow.secretArn}' must be the secret's complete ARN (ending in -XXXXXX)`,
    )
  }
}
