import {
  type AccountAssignmentOperationStatus,
  CreateAccountAssignmentCommand,
  DeleteAccountAssignmentCommand,
  DescribeAccountAssignmentCreationStatusCommand,
  DescribeAccountAssignmentDeletionStatusCommand,
  DescribePermissionSetCommand,
  ListAccountAssignmentsForPrincipalCommand,
  ListInstancesCommand,
  ListPermissionSetsCommand,
  type SSOAdminClient,
} from '@aws-sdk/client-sso-admin'
import type { FastifyBaseLogger } from 'fastify'
import { timeLeftMs, withoutDeadline } from '../core/deadline.ts'
import type { AssignmentTarget } from '../core/grant-model.ts'
import type { BeforeSend, IdentityCenter, PermissionSetInfo, ProvisioningOutcome } from '../core/ports.ts'
import { pause } from '../core/retry.ts'
import { callAws } from './aws-errors.ts'
import type { IdentityCenterRateLimiter } from './rate-limiter.ts'

const SERVICE = 'Identity Center'
/** Identity Center's default when a permission set does not say (PT1H). */
const DEFAULT_SESSION_SECONDS = 3600
/** The least time between two listings of the permission sets, whatever asks for them. */
export const MIN_RELIST_MS = 10_000

export interface IdentityCenterOptions {
  instanceArn: string
  /** Every call this adapter makes takes a token from it. */
  limiter: IdentityCenterRateLimiter
  /** How long to wait for Identity Center to finish an assignment before answering "still provisioning". */
  provisioningWaitMs: number
  cacheTtlMs: number
  log?: Pick<FastifyBaseLogger, 'warn'>
}

/** A permission set as the last listing found it, and when its details (name, session duration) were read. */
interface ListedPermissionSet {
  info: PermissionSetInfo
  describedAt: number
}

export class AwsIdentityCenter implements IdentityCenter {
  /** The last complete listing, by name. */
  private permissionSetsByName = new Map<string, ListedPermissionSet>()
  private lastListedAt = 0
  private listing: Promise<void> | undefined

  private readonly client: SSOAdminClient
  private readonly mutations: SSOAdminClient
  private readonly options: IdentityCenterOptions
  readonly limiter: IdentityCenterRateLimiter

  constructor(client: SSOAdminClient, mutations: SSOAdminClient, options: IdentityCenterOptions) {
    this.client = client
    this.mutations = mutations
    this.limiter = options.limiter
    this.options = options
  }

  /**
   * A permission set's details are read again once they are older than the cache TTL (at the first lookup
   * MIN_RELIST_MS allows after that), so a changed session duration reaches `accessEndsBy` without a restart.
   */
  async findPermissionSet(name: string): Promise<PermissionSetInfo | undefined> {
    const cached = this.permissionSetsByName.get(name)
    if (cached && this.isFresh(cached)) return cached.info
    // A miss or an expired entry lists the instance again, so a permission set created after start-up is found
    // without a restart: at most once per MIN_RELIST_MS, so requests naming unknown sets cannot spend the
    // Identity Center quota, and concurrent misses share one listing instead of each starting its own.
    if (!this.listing && Date.now() - this.lastListedAt >= MIN_RELIST_MS) {
      this.lastListedAt = Date.now()
      this.listing = withoutDeadline(() => this.listPermissionSets())
        .catch((error: unknown) => {
          // A listing that failed proves nothing about what exists: the next miss must list again.
          this.lastListedAt = 0
          throw error
        })
        .finally(() => {
          this.listing = undefined
        })
    }
    if (this.listing) await this.listing
    // Not listed again yet (too soon after the last listing): the last listing's answer, expired or not, is
    // better than calling an existing permission set unknown.
    return this.permissionSetsByName.get(name)?.info
  }

  private isFresh(entry: ListedPermissionSet): boolean {
    return Date.now() - entry.describedAt < this.options.cacheTtlMs
  }

  /**
   * Lists the instance's permission sets and describes those whose details are older than the cache TTL. One
   * described more recently keeps its details: a listing that an unknown name forces describes only new sets,
   * so it costs a page or two however many sets there are.
   */
  private async listPermissionSets(): Promise<void> {
    const instanceArn = this.options.instanceArn
    const previousByArn = new Map([...this.permissionSetsByName.values()].map((entry) => [entry.info.arn, entry]))
    const found = new Map<string, ListedPermissionSet>()
    await callAws(SERVICE, 'ListPermissionSets', async () => {
      let nextToken: string | undefined
      do {
        const page = await this.limiter.read(() =>
          this.client.send(new ListPermissionSetsCommand({ InstanceArn: instanceArn, NextToken: nextToken })),
        )
        for (const arn of page.PermissionSets ?? []) {
          let entry = previousByArn.get(arn)
          if (!entry || !this.isFresh(entry)) {
            const describedAt = Date.now()
            const described = await this.limiter.read(() =>
              this.client.send(new DescribePermissionSetCommand({ InstanceArn: instanceArn, PermissionSetArn: arn })),
            )
            entry = {
              info: {
                arn,
                name: described.PermissionSet?.Name ?? arn,
                sessionDurationSeconds: this.sessionSeconds(arn, described.PermissionSet?.SessionDuration),
              },
              describedAt,
            }
          }
          found.set(entry.info.name, entry)
        }
        nextToken = page.NextToken
      } while (nextToken)
    })
    // Replace the index only once the whole listing succeeded, so a failed listing never empties it.
    this.permissionSetsByName = found
  }

  /**
   * A permission set's session length, which only informs `accessEndsBy`: one that cannot be read (AWS always
   * sends an ISO 8601 string; moto sends a number when none was set) must not block every grant, so it falls
   * back to Identity Center's default, and says so.
   */
  private sessionSeconds(arn: string, value: unknown): number {
    if (value === undefined) return DEFAULT_SESSION_SECONDS
    const seconds = typeof value === 'string' ? parseIsoDuration(value) : undefined
    if (seconds !== undefined) return seconds
    this.options.log?.warn(
      { permissionSetArn: arn, sessionDuration: String(value).slice(0, 40) },
      'unreadable permission set session duration; assuming PT1H',
    )
    return DEFAULT_SESSION_SECONDS
  }

  async assignmentExists(target: AssignmentTarget): Promise<boolean> {
    return callAws(SERVICE, 'ListAccountAssignmentsForPrincipal', async () => {
      let nextToken: string | undefined
      do {
        const page = await this.limiter.read(() =>
          this.client.send(
            new ListAccountAssignmentsForPrincipalCommand({
              InstanceArn: this.options.instanceArn,
              PrincipalId: target.userId,
              PrincipalType: 'USER',
              Filter: { AccountId: target.accountId },
              NextToken: nextToken,
            }),
          ),
        )
        const found = (page.AccountAssignments ?? []).some(
          (a) => a.AccountId === target.accountId && a.PermissionSetArn === target.permissionSetArn,
        )
        if (found) return true
        nextToken = page.NextToken
      } while (nextToken)
      return false
    })
  }

  createAssignment(target: AssignmentTarget, beforeSend?: BeforeSend): Promise<ProvisioningOutcome> {
    return this.limiter.creation(() =>
      this.mutation(
        'CreateAccountAssignment',
        async () => {
          await beforeSend?.()
          return (await this.mutations.send(new CreateAccountAssignmentCommand(this.assignmentInput(target))))
            .AccountAssignmentCreationStatus
        },
        (id) => this.creationStatus(id),
      ),
    )
  }

  deleteAssignment(target: AssignmentTarget, beforeSend?: BeforeSend): Promise<ProvisioningOutcome> {
    return this.mutation(
      'DeleteAccountAssignment',
      async () => {
        await beforeSend?.()
        return (await this.mutations.send(new DeleteAccountAssignmentCommand(this.assignmentInput(target))))
          .AccountAssignmentDeletionStatus
      },
      (id) => this.deletionStatus(id),
    )
  }

  /**
   * A creation or removal, sent once, then waited for. Two refusals are not failures: a conflict (another
   * operation on the same assignment is under way, as after a lost answer: it decides, and the caller looks
   * again later) and, for a removal, not found (already gone, which is what was wanted).
   */
  private async mutation(
    operation: 'CreateAccountAssignment' | 'DeleteAccountAssignment',
    send: () => Promise<AccountAssignmentOperationStatus | undefined>,
    status: (requestId: string) => Promise<ProvisioningOutcome>,
  ): Promise<ProvisioningOutcome> {
    let accepted: AccountAssignmentOperationStatus | undefined
    try {
      accepted = await this.limiter.mutate(send)
    } catch (error) {
      const name = (error as Error).name
      if (name === 'ConflictException') return UNDER_WAY
      if (name === 'ResourceNotFoundException' && operation === 'DeleteAccountAssignment')
        return { state: 'succeeded', requestId: null }
      return callAws(SERVICE, operation, () => Promise.reject(error))
    }
    return this.awaitOutcome(toOutcome(accepted), status)
  }

  async creationStatus(requestId: string): Promise<ProvisioningOutcome> {
    const result = await callAws(SERVICE, 'DescribeAccountAssignmentCreationStatus', () =>
      this.limiter.read(() =>
        this.client.send(
          new DescribeAccountAssignmentCreationStatusCommand({
            InstanceArn: this.options.instanceArn,
            AccountAssignmentCreationRequestId: requestId,
          }),
        ),
      ),
    )
    return toOutcome(result.AccountAssignmentCreationStatus)
  }

  async deletionStatus(requestId: string): Promise<ProvisioningOutcome> {
    const result = await callAws(SERVICE, 'DescribeAccountAssignmentDeletionStatus', () =>
      this.limiter.read(() =>
        this.client.send(
          new DescribeAccountAssignmentDeletionStatusCommand({
            InstanceArn: this.options.instanceArn,
            AccountAssignmentDeletionRequestId: requestId,
          }),
        ),
      ),
    )
    return toOutcome(result.AccountAssignmentDeletionStatus)
  }

  private assignmentInput(target: AssignmentTarget) {
    return {
      InstanceArn: this.options.instanceArn,
      TargetId: target.accountId,
      TargetType: 'AWS_ACCOUNT' as const,
      PermissionSetArn: target.permissionSetArn,
      PrincipalType: 'USER' as const,
      PrincipalId: target.userId,
    }
  }

  /**
   * Polls an asynchronous request with growing pauses until it finishes or the wait budget is spent. A poll
   * that fails (throttled, 5xx) ends the wait with the request still in progress: it was accepted, and its id
   * is all the caller needs to ask again later.
   */
  private async awaitOutcome(
    first: ProvisioningOutcome,
    status: (id: string) => Promise<ProvisioningOutcome>,
  ): Promise<ProvisioningOutcome> {
    let outcome = first
    // Never past the request's own deadline: a request still provisioning then is answered as such.
    const deadline = Date.now() + Math.min(this.options.provisioningWaitMs, timeLeftMs() - 1000)
    let wait = 250
    while (outcome.state === 'in_progress' && outcome.requestId && Date.now() + wait <= deadline) {
      await pause(wait)
      wait = Math.min(wait * 2, 2000)
      try {
        outcome = await status(outcome.requestId)
      } catch {
        return outcome
      }
    }
    return outcome
  }
}

const UNDER_WAY: ProvisioningOutcome = { state: 'in_progress', requestId: null }

function toOutcome(status: AccountAssignmentOperationStatus | undefined): ProvisioningOutcome {
  const requestId = status?.RequestId ?? null
  switch (status?.Status) {
    case 'SUCCEEDED':
      return { state: 'succeeded', requestId }
    case 'FAILED':
      return { state: 'failed', requestId, reason: status.FailureReason ?? 'no reason given' }
    default:
      return requestId
        ? { state: 'in_progress', requestId }
        : { state: 'failed', requestId, reason: 'no request id returned' }
  }
}

/** Seconds in an ISO 8601 duration such as PT1H or PT8H30M; undefined when absent or not understood. */
export function parseIsoDuration(value: string | undefined): number | undefined {
  const match = value?.match(/^PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?$/)
  if (!match || (!match[1] && !match[2] && !match[3])) return undefined
  return Number(match[1] ?? 0) * 3600 + Number(match[2] ?? 0) * 60 + Number(match[3] ?? 0)
}

/** The Identity Center instance to use: the configured one, or the organisation's only one. */
export async function resolveInstance(
  client: SSOAdminClient,
  configured: { instanceArn?: string | undefined; identityStoreId?: string | undefined },
): Promise<{ instanceArn: string; identityStoreId: string }> {
  if (configured.instanceArn && configured.identityStoreId) {
    return { instanceArn: configured.instanceArn, identityStoreId: configured.identityStoreId }
  }
  const result = await callAws(SERVICE, 'ListInstances', () => client.send(new ListInstancesCommand({})))
  const instances = (result.Instances ?? []).filter(
    (i) => !configured.instanceArn || i.InstanceArn === configured.instanceArn,
  )
  const only = instances[0]
  if (instances.length !== 1 || !only?.InstanceArn || !only.IdentityStoreId) {
    throw new Error(
      `Found ${instances.length} Identity Center instances; set JIT_INSTANCE_ARN and JIT_IDENTITY_STORE_ID to choose one`,
    )
  }
  return { instanceArn: only.InstanceArn, identityStoreId: configured.identityStoreId ?? only.IdentityStoreId }
}
