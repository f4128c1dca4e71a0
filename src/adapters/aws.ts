import { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { IdentitystoreClient } from '@aws-sdk/client-identitystore'
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager'
import { SNSClient } from '@aws-sdk/client-sns'
import { SSOAdminClient } from '@aws-sdk/client-sso-admin'
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb'
import type { FastifyBaseLogger } from 'fastify'
import type { AccountDirectory, AuditAnchors, CutoffPolicies, DueQueue } from '../core/ports.ts'
import type { ServiceAdapters } from '../service-adapters.ts'
import { callAws } from './aws-errors.ts'
import { DynamoAuditChain } from './dynamodb/audit-chain.ts'
import { DynamoAuditLog } from './dynamodb/audit-log.ts'
import { PageCursors } from './dynamodb/cursor.ts'
import { DynamoCutoffLedger } from './dynamodb/cutoff-ledger.ts'
import { DynamoGrantStore } from './dynamodb/grant-store.ts'
import { DynamoIdempotencyStore } from './dynamodb/idempotency-store.ts'
import { DynamoOutboxStore } from './dynamodb/outbox-store.ts'
import { AccessTargets, AwsGroupMemberships } from './group-memberships.ts'
import { AwsIdentityCenter, resolveInstance } from './identity-center.ts'
import { AwsIdentityStore } from './identity-store.ts'
import { onFirstUse } from './on-first-use.ts'
import { IdentityCenterRateLimiter } from './rate-limiter.ts'
import { SnsLifecycleChannel, SnsNotifier } from './sns.ts'

export interface AwsSettings {
  region: string
  /** An AWS-compatible endpoint (the local sandbox, tests); unset in AWS. */
  endpoint?: string | undefined
  tables: { grants: string; audit: string }
  /** The S3 bucket (Object Lock, compliance mode) where the sweep anchors the audit chain's head; unset, nothing is anchored. */
  auditAnchorBucket?: string | undefined
  /** Seals page cursors (see PageCursors); the same for every instance of a deployment (resolveCursorKey). */
  cursorKey: string
  snsTopicArn?: string | undefined
  instanceArn?: string | undefined
  identityStoreId?: string | undefined
  provisioningWaitMs: number
  cacheTtlMs: number
  /** Identity Center calls per second for this process (the organisation's quota is about 20). */
  identityCenterTps?: number
  /** Assignment creations this process keeps in flight at once (default 10, Identity Center's own limit). */
  maxConcurrentCreations?: number
  /** How long one AWS call may take before it is abandoned and retried (default 10 s). */
  requestTimeoutMs?: number
  /** The service control policies that cut live sessions (JIT_SESSION_CUTOFF=scp); unset, nothing is cut. */
  cutoffPolicyIds?: readonly string[] | undefined
  /** The organization's management account, which no service control policy reaches: its grants' sessions are not cut. */
  managementAccountId?: string | undefined
  /** The due queue's URL (Lambda): each sweep sends it the grants due before the next run. */
  dueQueueUrl?: string | undefined
}

/** Half the organisation's quota of about 20 calls per second, leaving room for people and other tools. */
export const DEFAULT_IDENTITY_CENTER_TPS = 10

export interface AwsClients {
  ssoAdmin: SSOAdminClient
  /**
   * For CreateAccountAssignment/DeleteAccountAssignment only: no automatic retries. After a dropped
   * connection the request may have taken effect; the reconciler looks at Identity Center before sending again.
   */
  ssoAdminMutations: SSOAdminClient
  identityStore: IdentitystoreClient
  /**
   * For the group-membership adapter, its reads and its changes: no automatic retries. Reads are retried by its
   * rate limiter, each attempt paying a token (so a throttle reaches the limiter); changes for the same reason
   * as ssoAdminMutations.
   */
  identityStoreMemberships: IdentitystoreClient
  dynamo: DynamoDBClient
  sns: SNSClient
  secrets: SecretsManagerClient
}

/** One client per service, created once per process and shared by every request. */
export function createAwsClients(settings: Pick<AwsSettings, 'region' | 'endpoint' | 'requestTimeoutMs'>): AwsClients {
  const common = clientOptions(settings)
  return {
    // Identity Center calls are retried by the shared rate limiter instead, so every attempt pays a token.
    ssoAdmin: new SSOAdminClient({ ...common, maxAttempts: 1 }),
    ssoAdminMutations: new SSOAdminClient({ ...common, maxAttempts: 1 }),
    identityStore: new IdentitystoreClient(common),
    identityStoreMemberships: new IdentitystoreClient({ ...common, maxAttempts: 1 }),
    dynamo: new DynamoDBClient(common),
    sns: new SNSClient(common),
    secrets: new SecretsManagerClient(common),
  }
}

function clientOptions(settings: Pick<AwsSettings, 'region' | 'endpoint' | 'requestTimeoutMs'>) {
  return {
    region: settings.region,
    ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
    maxAttempts: 3,
    // Bounded waits: a hung connection must become an error the sweep can retry, not a request that never ends.
    requestHandler: {
      connectionTimeout: 3000,
      requestTimeout: settings.requestTimeoutMs ?? 10_000,
      throwOnRequestTimeout: true,
    },
  }
}

export interface AwsAdapters extends ServiceAdapters {
  instance: { instanceArn: string; identityStoreId: string }
}

export async function createAwsAdapters(
  settings: AwsSettings,
  log: Pick<FastifyBaseLogger, 'warn' | 'error'>,
  clients: AwsClients = createAwsClients(settings),
): Promise<AwsAdapters> {
  const instance = await resolveInstance(clients.ssoAdmin, settings)
  const doc = DynamoDBDocumentClient.from(clients.dynamo, { marshallOptions: { removeUndefinedValues: true } })
  const chain = new DynamoAuditChain(doc, settings.tables)
  const cursors = new PageCursors(settings.cursorKey)
  const auditAnchors = settings.auditAnchorBucket
    ? s3AnchorsOnFirstUse(settings, settings.auditAnchorBucket)
    : undefined
  return {
    store: new DynamoGrantStore(doc, settings.tables, chain, cursors),
    cursors,
    auditLog: new DynamoAuditLog(doc, settings.tables.audit, chain, cursors, auditAnchors),
    auditAnchors,
    // Account assignments through Identity Center, group memberships through the Identity Store, each paced by
    // its own limiter (the two services have separate quotas).
    identityCenter: new AccessTargets(
      new AwsIdentityCenter(clients.ssoAdmin, clients.ssoAdminMutations, {
        limiter: new IdentityCenterRateLimiter({
          ratePerSecond: settings.identityCenterTps ?? DEFAULT_IDENTITY_CENTER_TPS,
          maxConcurrentCreations: settings.maxConcurrentCreations ?? 10,
        }),
        instanceArn: instance.instanceArn,
        provisioningWaitMs: settings.provisioningWaitMs,
        cacheTtlMs: settings.cacheTtlMs,
        log,
      }),
      new AwsGroupMemberships(
        clients.identityStoreMemberships,
        instance.identityStoreId,
        new IdentityCenterRateLimiter({
          ratePerSecond: settings.identityCenterTps ?? DEFAULT_IDENTITY_CENTER_TPS,
          maxConcurrentCreations: 1,
        }),
      ),
    ),
    directory: new AwsIdentityStore(clients.identityStore, instance.identityStoreId, settings.cacheTtlMs),
    notifier: new SnsNotifier(clients.sns, settings.snsTopicArn, log),
    outboxStore: new DynamoOutboxStore(doc, settings.tables.grants, chain),
    messageChannels: settings.snsTopicArn ? [new SnsLifecycleChannel(clients.sns, settings.snsTopicArn)] : [],
    idempotency: new DynamoIdempotencyStore(doc, settings.tables.grants),
    accounts: accountDirectoryOnFirstUse(settings),
    sessionCutoff: settings.cutoffPolicyIds?.length
      ? {
          ledger: new DynamoCutoffLedger(doc, settings.tables.grants, chain),
          policies: cutoffPoliciesOnFirstUse(settings, settings.cutoffPolicyIds, instance.instanceArn),
        }
      : undefined,
    dueQueue: settings.dueQueueUrl ? sqsDueQueueOnFirstUse(settings, settings.dueQueueUrl) : undefined,
    instance,
  }
}

/*
 * lazilyLoaded: each adapter below imports its SDK client when first used, through the adapter's own module,
 * which re-exports the client. Never `import('@aws-sdk/client-…')` itself: a bundler cannot see which names a
 * dynamic import's namespace is used for, so it keeps every command and shape of the SDK package (S3's 112
 * commands for the 2 we send, a third of the Lambda bundle's lazily loaded code); imported by name in the
 * adapter's module, it keeps only the commands that module sends. onFirstUse shares each load, forgets one that
 * failed (the next call imports again) and makes its error a retryable UpstreamUnavailableError (503, not 500).
 */

/** The due queue, its SQS SDK imported when first used (by a sweep): a chunk of its own in the Lambda bundle. */
function sqsDueQueueOnFirstUse(settings: AwsSettings, queueUrl: string): DueQueue {
  const load = onFirstUse('SQS', () =>
    import('./sqs-due-queue.ts').then(
      ({ SQSClient, SqsDueQueue }) => new SqsDueQueue(new SQSClient(clientOptions(settings)), queueUrl),
    ),
  )
  return { send: async (due, now) => (await load()).send(due, now) }
}

/**
 * The owned service control policies, the Organizations SDK imported when first used (an ended grant): like the
 * anchor store, a chunk of its own in the Lambda bundle. Its client is the mutations' kind: the adapter retries.
 */
function cutoffPoliciesOnFirstUse(
  settings: AwsSettings,
  policyIds: readonly string[],
  instanceArn: string,
): CutoffPolicies {
  const described = {
    policyIds,
    partition: instanceArn.split(':')[1] ?? 'aws',
    unreachableAccounts: settings.managementAccountId ? [settings.managementAccountId] : [],
  }
  const load = onFirstUse('Organizations', () =>
    import('./organizations.ts').then(
      ({ OrganizationsClient, OrganizationsCutoffPolicies }) =>
        new OrganizationsCutoffPolicies(
          new OrganizationsClient({ ...clientOptions(settings), maxAttempts: 1 }),
          described,
        ),
    ),
  )
  return {
    ...described,
    read: async (policyId) => (await load()).read(policyId),
    write: async (policyId, content) => (await load()).write(policyId, content),
  }
}

/**
 * The organization's accounts, OUs and tags (AWS Organizations), the SDK imported when a policy rule first needs
 * them: a policy of account ids never loads it. One directory per process, so its cache and pace are shared by
 * every request. Its client does not retry: the limiter does, each attempt paying a token.
 */
function accountDirectoryOnFirstUse(settings: AwsSettings): AccountDirectory {
  const load = onFirstUse('Organizations', () =>
    import('./organizations-directory.ts').then(
      ({ OrganizationsClient, OrganizationsAccountDirectory, ORGANIZATIONS_TPS }) =>
        new OrganizationsAccountDirectory(new OrganizationsClient({ ...clientOptions(settings), maxAttempts: 1 }), {
          cacheTtlMs: settings.cacheTtlMs,
          limiter: new IdentityCenterRateLimiter({ ratePerSecond: ORGANIZATIONS_TPS, maxConcurrentCreations: 1 }),
        }),
    ),
  )
  return {
    ancestorsOf: async (accountId) => (await load()).ancestorsOf(accountId),
    tagsOf: async (accountId) => (await load()).tagsOf(accountId),
    describe: async (accountId) => (await load()).describe(accountId),
    accountsUnder: async (parentId, limit) => (await load()).accountsUnder(parentId, limit),
  }
}

/**
 * The anchor store, its S3 SDK imported when first used: the Lambda bundle keeps it in a chunk of its own,
 * which an execution environment that neither sweeps nor verifies never parses.
 */
function s3AnchorsOnFirstUse(settings: AwsSettings, bucket: string): AuditAnchors {
  const load = onFirstUse('S3', () =>
    import('./s3-anchors.ts').then(
      ({ S3Client, S3AuditAnchors }) =>
        // Path-style URLs for an AWS-compatible endpoint, which has no per-bucket host names.
        new S3AuditAnchors(
          new S3Client({ ...clientOptions(settings), forcePathStyle: settings.endpoint !== undefined }),
          bucket,
        ),
    ),
  )
  return {
    write: async (head) => (await load()).write(head),
    list: async function* (afterSeq, throughSeq) {
      yield* (await load()).list(afterSeq, throughSeq)
    },
  }
}

/** The HS256 secret: from the environment, or read once at start from Secrets Manager (never put in a template). */
export function resolveJwtSecret(
  settings: { jwt: { secret?: string | undefined }; jwtSecretArn?: string | undefined },
  secrets: SecretsManagerClient,
): Promise<string | undefined> {
  return resolveSecret('JIT_JWT_SECRET_ARN', settings.jwtSecretArn, settings.jwt.secret, secrets)
}

/**
 * The page-cursor secret: from the environment, or read once at start from Secrets Manager, so that every
 * execution environment of a deployment opens the cursors any other one minted.
 */
export async function resolveCursorKey(
  settings: { cursorKey?: string | undefined; cursorKeyArn?: string | undefined },
  secrets: SecretsManagerClient,
): Promise<string> {
  if (!settings.cursorKeyArn && !settings.cursorKey)
    throw new Error('Set JIT_CURSOR_KEY or JIT_CURSOR_KEY_ARN: page cursors are sealed with it')
  return (await resolveSecret('JIT_CURSOR_KEY_ARN', settings.cursorKeyArn, settings.cursorKey, secrets)) as string
}

/** A secret given in the environment, or read once at start from the Secrets Manager secret `arn` names. */
export async function resolveSecret(
  name: string,
  arn: string | undefined,
  given: string | undefined,
  secrets: SecretsManagerClient,
  minLength = 32,
): Promise<string | undefined> {
  if (!arn) return given
  const result = await callAws('Secrets Manager', 'GetSecretValue', () =>
    secrets.send(new GetSecretValueCommand({ SecretId: arn })),
  )
  if (!result.SecretString || result.SecretString.length < minLength) {
    throw new Error(`The secret named by ${name} must be a string of at least ${minLength} characters`)
  }
  return result.SecretString
}
