import { randomBytes } from 'node:crypto'
import { Writable } from 'node:stream'
import { S3Client } from '@aws-sdk/client-s3'
import { CreateTopicCommand } from '@aws-sdk/client-sns'
import { paginateListAccountAssignmentsForPrincipal } from '@aws-sdk/client-sso-admin'
import { pino } from 'pino'
import { type AwsClients, createAwsAdapters, createAwsClients } from '../../src/adapters/aws.ts'
import { ensureTables } from '../../src/adapters/dynamodb/tables.ts'
import { resolveInstance } from '../../src/adapters/identity-center.ts'
import {
  type ApprovalRules,
  ServiceNowApprovals,
  ServiceNowClient,
  type ServiceNowSettings,
  ServiceNowWorkNotes,
} from '../../src/adapters/servicenow.ts'
import { type AppDependencies, buildApp } from '../../src/app.ts'
import { type PolicyDocument, parsePolicy, resolvePolicy } from '../../src/core/policy.ts'
import { ensureAnchorBucket } from '../../src/sandbox/anchor-bucket.ts'
import type { MotoServer } from '../../src/sandbox/moto-server.ts'
import {
  DEMO_ACCOUNTS,
  DEMO_DIRECTORY,
  DEMO_POLICY,
  type SeededDirectory,
  seedDirectory,
} from '../../src/sandbox/seed.ts'
import { ManualClock } from './clock.ts'
import { FaultProxy } from './fault-proxy.ts'
import { resetMoto } from './moto.ts'
import { type StagedOrganization, stageCutoffPolicies, stageOrganizationTree } from './organizations.ts'
import { TEST_AUDIENCE, TEST_ISSUER, TEST_SECRET } from './tokens.ts'

export const PROD = DEMO_ACCOUNTS.production
export const STAGING = DEMO_ACCOUNTS.staging
export const REGION = 'us-east-1'
export const ANCHOR_BUCKET = 'jit-audit-anchors'
/** How long Identity Center takes to carry out an account assignment in the AWS-like world (AWS: seconds). */
export const AWS_LIKE_PROVISIONING_MS = 1000

export const TEST_DIRECTORY = {
  ...DEMO_DIRECTORY,
  users: [...DEMO_DIRECTORY.users, 'dave'],
  permissionSets: { ...DEMO_DIRECTORY.permissionSets, BillingAccess: 'PT2H' },
}

export interface BuildOptions {
  /** The eligibility policy; a function of the organization when `organization` is on (its OU and account ids are moto's). */
  policy?: PolicyDocument | ((organization: StagedOrganization) => PolicyDocument)
  /** Stage an organization with an OU tree three levels deep and tagged accounts in moto (see stageOrganizationTree). */
  organization?: boolean
  maxDurationMinutes?: number
  maxLeadDays?: number
  /** Put a fault-injecting proxy between the service and moto. */
  proxy?: boolean
  jwt?: AppDependencies['jwt']
  sweepPageSize?: number
  /** A sweep run's budget (JIT_SWEEP_BUDGET_SECONDS; default 50 s). */
  sweepBudgetMs?: number
  /** How long a sweep waits for another run's lease (default the service's, SWEEP_LEASE_WAIT_MS). */
  sweepLeaseWaitMs?: number
  /** Identity Center calls per second; tests that are not about the rate use a high one. */
  identityCenterTps?: number
  maxConcurrentCreations?: number
  /** How long an AWS call may take before it is abandoned (default 1 s here, to keep hanging-connection tests short). */
  requestTimeoutMs?: number
  /**
   * Make the proxy (implied) run Identity Center's account assignments as AWS does: asynchronous for
   * `provisioningMs` of real time plus the clock's advance, no duplicates, conflicts (see AwsWorld).
   */
  awsLike?: boolean | { provisioningMs?: number; provisioningJitterMs?: number; seed?: number }
  /** How long a grant or revocation request may take before answering with what is recorded. */
  requestDeadlineMs?: number
  /** Service instances on the same tables and AWS world, each with its own caches and rate limiter (default 1). */
  instances?: number
  /** How long a request waits for Identity Center to finish an assignment (default 1 s). */
  provisioningWaitMs?: number
  /** How long directory and permission-set lookups are cached (default 60 s). */
  cacheTtlMs?: number
  /**
   * The page-cursor secret of each instance, by position; unset, all instances share one made for this build,
   * as the instances of one deployment do.
   */
  cursorKeys?: string[]
  /**
   * Anchor the audit chain's head in an S3 bucket with Object Lock: true creates ANCHOR_BUCKET in moto;
   * `{ bucket }` names one and creates nothing (to give the service a bucket that is not there).
   */
  anchors?: boolean | { bucket: string }
  /** Write work notes to (and, with `verify`, check approvals against) a ServiceNow instance, e.g. the stand-in. */
  serviceNow?: { settings: ServiceNowSettings; verify?: ApprovalRules }
  /** How long the outbox tries to deliver a message before giving up (default a day). */
  outboxGiveUpMs?: number
  /** How long one delivery attempt may take (default 40 s). */
  outboxDeliveryBudgetMs?: number
  /**
   * JIT_SESSION_CUTOFF=scp: an organization in moto with the service's own service control policies attached to its
   * root (true: one; or how many), as the CDK stack stages them.
   */
  sessionCutoff?: boolean | { policies: number; managementAccountId?: string }
  /** In-process due timers, as the container runs them (AppDependencies.dueTimers). */
  dueTimers?: AppDependencies['dueTimers']
}

interface Teardown {
  teardown(fn: () => unknown): void
}

/**
 * A service built on real adapters against a freshly reset moto, with the test directory seeded. `moto.services`:
 * DynamoDB on a moto_server of its own and the other services on another (the benchmark's, test/bench/split-moto.ts),
 * which the proxy sends each request to directly; `moto.endpoint` routes them too, for what skips the proxy.
 */
export async function build(
  t: Teardown,
  moto: MotoServer & { services?: { dynamodb: string; others: string } },
  options: BuildOptions = {},
) {
  await resetMoto(moto.endpoint)
  const clients = createAwsClients({ region: REGION, endpoint: moto.endpoint })
  const instance = await resolveInstance(clients.ssoAdmin, {})
  const tables = { grants: 'jit-grants', audit: 'jit-audit' }
  await ensureTables(clients.dynamo, tables)
  const topic = await clients.sns.send(new CreateTopicCommand({ Name: 'jit-alerts' }))
  const s3 = new S3Client({ region: REGION, endpoint: moto.endpoint, forcePathStyle: true })
  const anchorBucket = options.anchors === true ? ANCHOR_BUCKET : options.anchors ? options.anchors.bucket : undefined
  if (options.anchors === true) await ensureAnchorBucket(s3, ANCHOR_BUCKET)
  const seeded = await seedDirectory(clients, instance, TEST_DIRECTORY)
  const cutoff = options.sessionCutoff
    ? await stageCutoffPolicies(
        moto.endpoint,
        REGION,
        options.sessionCutoff === true ? 1 : options.sessionCutoff.policies,
      )
    : undefined

  const organization = options.organization ? await stageOrganizationTree(moto.endpoint, REGION) : undefined
  const policyDocument =
    typeof options.policy === 'function'
      ? options.policy(
          organization ??
            (() => {
              throw new Error('a policy function needs organization: true')
            })(),
        )
      : (options.policy ?? DEMO_POLICY)

  const clock = new ManualClock()
  let proxy: FaultProxy | undefined
  let serviceEndpoint = moto.endpoint
  if (options.proxy || options.awsLike) {
    const awsLike = options.awsLike
      ? {
          now: () => Date.now() + clock.advancedMs,
          provisioningMs: AWS_LIKE_PROVISIONING_MS,
          ...(typeof options.awsLike === 'object' ? options.awsLike : {}),
        }
      : undefined
    proxy = new FaultProxy(moto.services?.others ?? moto.endpoint, { awsLike, dynamodbTarget: moto.services?.dynamodb })
    serviceEndpoint = await proxy.start()
    t.teardown(() => proxy?.stop())
  }
  const logLines: string[] = []
  const logStream = new Writable({
    write(chunk, _encoding, done) {
      logLines.push(String(chunk))
      done()
    },
  })
  /**
   * One service process: its own adapters (caches, rate limiter, SDK clients) and app, as each Lambda execution
   * environment or container has; all of them share the tables, the AWS world and the clock.
   */
  // In the AWS-like world an assignment takes AWS_LIKE_PROVISIONING_MS: the service waits longer than that, as
  // it does in production (5 s against AWS's usual few seconds), so that only faults leave a grant unfinished.
  const provisioningWaitMs = options.provisioningWaitMs ?? (options.awsLike ? 3 * AWS_LIKE_PROVISIONING_MS : 1000)
  const sharedCursorKey = randomBytes(32).toString('base64url')
  const startInstance = async (position: number) => {
    const adapters = await createAwsAdapters(
      {
        region: REGION,
        endpoint: serviceEndpoint,
        tables,
        cursorKey: options.cursorKeys?.[position] ?? sharedCursorKey,
        snsTopicArn: topic.TopicArn,
        auditAnchorBucket: anchorBucket,
        ...instance,
        provisioningWaitMs,
        cacheTtlMs: options.cacheTtlMs ?? 60_000,
        identityCenterTps: options.identityCenterTps ?? 500,
        ...(options.maxConcurrentCreations ? { maxConcurrentCreations: options.maxConcurrentCreations } : {}),
        cutoffPolicyIds: cutoff?.policyIds,
        managementAccountId:
          typeof options.sessionCutoff === 'object' ? options.sessionCutoff.managementAccountId : undefined,
      },
      pino({ level: 'warn' }, logStream),
      // Short timeouts, so that a hanging connection is abandoned in about a second, as 10 s would be in production.
      createAwsClients({
        region: REGION,
        endpoint: serviceEndpoint,
        requestTimeoutMs: options.requestTimeoutMs ?? 1000,
      }),
    )
    const serviceNowClient = options.serviceNow ? new ServiceNowClient(options.serviceNow.settings) : undefined
    const started = await buildApp({
      ...adapters,
      messageChannels: [
        ...(adapters.messageChannels ?? []),
        ...(serviceNowClient ? [new ServiceNowWorkNotes(serviceNowClient)] : []),
      ],
      ticketApproval:
        serviceNowClient && options.serviceNow?.verify
          ? new ServiceNowApprovals(serviceNowClient, options.serviceNow.verify)
          : undefined,
      ...(options.outboxGiveUpMs ? { outboxGiveUpMs: options.outboxGiveUpMs } : {}),
      ...(options.outboxDeliveryBudgetMs ? { outboxDeliveryBudgetMs: options.outboxDeliveryBudgetMs } : {}),
      leaseWaitMs: provisioningWaitMs + 1000,
      clock,
      // Resolved as createService does outside the sandbox: a group the directory lacks refuses the start.
      policy: await resolvePolicy(parsePolicy(policyDocument), (name) => adapters.directory.groupIdOf(name)),
      jwt: options.jwt ?? { secret: TEST_SECRET, issuer: TEST_ISSUER, audience: TEST_AUDIENCE },
      maxDurationMinutes: options.maxDurationMinutes ?? 720,
      ...(options.maxLeadDays !== undefined ? { maxLeadDays: options.maxLeadDays } : {}),
      sweepBudgetMs: options.sweepBudgetMs ?? 50_000,
      ...(options.sweepLeaseWaitMs !== undefined ? { sweepLeaseWaitMs: options.sweepLeaseWaitMs } : {}),
      ...(options.requestDeadlineMs ? { requestDeadlineMs: options.requestDeadlineMs } : {}),
      ...(options.sweepPageSize ? { sweepPageSize: options.sweepPageSize } : {}),
      ...(options.dueTimers ? { dueTimers: options.dueTimers } : {}),
      logger: { level: 'trace', stream: logStream },
    })
    t.teardown(() => started.close())
    return started
  }
  const instances = [await startInstance(0)]
  for (let i = 1; i < (options.instances ?? 1); i++) instances.push(await startInstance(i))
  const app = instances[0] as (typeof instances)[number]

  return {
    app,
    /** Every service instance (see `instances` in BuildOptions); the first is `app`. */
    instances,
    clock,
    clients,
    instance,
    seeded,
    proxy,
    topicArn: topic.TopicArn as string,
    /** moto's S3, for looking at (and tampering with) the anchor bucket. */
    s3,
    logLines,
    /** The owned service control policies in moto, when `sessionCutoff` is on. */
    cutoff,
    /** The organization's OU tree and accounts in moto, when `organization` is on. */
    organization,
    /** Identity Center's own answer: does this user hold this permission set on this account? */
    hasAssignment: (userName: string, accountId: string, permissionSet: string) =>
      countAssignments(clients, instance.instanceArn, seeded, userName, accountId, permissionSet).then((n) => n > 0),
    countAssignments: (userName: string, accountId: string, permissionSet: string) =>
      countAssignments(clients, instance.instanceArn, seeded, userName, accountId, permissionSet),
  }
}

async function countAssignments(
  clients: AwsClients,
  instanceArn: string,
  seeded: SeededDirectory,
  userName: string,
  accountId: string,
  permissionSet: string,
): Promise<number> {
  let count = 0
  const pages = paginateListAccountAssignmentsForPrincipal(
    { client: clients.ssoAdmin },
    {
      InstanceArn: instanceArn,
      PrincipalId: seeded.userIds[userName],
      PrincipalType: 'USER',
      Filter: { AccountId: accountId },
    },
  )
  for await (const page of pages) {
    count += (page.AccountAssignments ?? []).filter(
      (a) => a.PermissionSetArn === seeded.permissionSetArns[permissionSet],
    ).length
  }
  return count
}

export const grantBody = (overrides: Record<string, unknown> = {}) => ({
  userName: 'alice',
  accountId: PROD,
  permissionSet: 'AdministratorAccess',
  durationMinutes: 60,
  ticketId: 'CHG0001234',
  justification: 'Deploy hotfix',
  ...overrides,
})
