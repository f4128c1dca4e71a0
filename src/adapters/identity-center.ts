import {
  CreateAccountAssignmentCommand,
  DeleteAccountAssignmentCommand,
  DescribeAccountAssignmentCreationStatusCommand,
  DescribeAccountAssignmentDeletionStatusCommand,
  DescribePermissionSetCommand,
  ListInstancesCommand,
  ListAccountAssignmentsForPrincipalCommand,
  ListPermissionSetsCommand,
  type AccountAssignmentOperationStatus,
  type SSOAdminClient,
} from '@aws-sdk/client-sso-admin'
import type { AssignmentTarget } from '../core/grant.ts'
import type { BeforeSend, IdentityCenter, PermissionSetInfo, ProvisioningOutcome } from '../core/ports.ts'
import { callAws } from './aws-errors.ts'
import type { IdentityCenterRateLimiter } from './rate-limiter.ts'
import { TtlCache } from './ttl-cache.ts'

const SERVICE = 'Identity Center'
/** Identity Center's default when a permission set does not say (PT1H). */
const DEFAULT_SESSION_SECONDS = 3600
const MIN_RELIST_MS = 10_000

export interface IdentityCenterOptions {
  instanceArn: string
  /** Every call this adapter makes takes a token from it. */
  limiter: IdentityCenterRateLimiter
  /** How long to wait for Identity Center to finish an assignment before answering "still provisioning". */
  provisioningWaitMs: number
  cacheTtlMs: number
}

export class AwsIdentityCenter implements IdentityCenter {
  private readonly permissionSetsByName: TtlCache<PermissionSetInfo>
  /** Describe results by ARN; a permission set's ARN never changes, so these only need refreshing for renames. */
  private readonly permissionSetsByArn = new Map<string, PermissionSetInfo>()
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
    this.permissionSetsByName = new TtlCache(options.cacheTtlMs)
  }

  async findPermissionSet(name: string): Promise<PermissionSetInfo | undefined> {
    const cached = this.permissionSetsByName.get(name)
    if (cached) return cached
    // A miss lists the instance again, so a permission set created after start-up is found without a restart:
    // at most once per MIN_RELIST_MS, so requests naming unknown sets cannot spend the Identity Center quota,
    // and concurrent misses share one listing instead of each starting its own.
    if (!this.listing && Date.now() - this.lastListedAt >= MIN_RELIST_MS) {
      this.lastListedAt = Date.now()
      this.listing = this.listPermissionSets()
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
    return this.permissionSetsByName.get(name)
  }

  private async listPermissionSets(): Promise<void> {
    const instanceArn = this.options.instanceArn
    const found = new Map<string, PermissionSetInfo>()
    await callAws(SERVICE, 'ListPermissionSets', async () => {
      let nextToken: string | undefined
      do {
        const page = await this.limiter.read(() => this.client.send(new ListPermissionSetsCommand({ InstanceArn: instanceArn, NextToken: nextToken })))
        for (const arn of page.PermissionSets ?? []) {
          let info = this.permissionSetsByArn.get(arn)
          if (!info) {
            const described = await this.limiter.read(() => this.client.send(new DescribePermissionSetCommand({ InstanceArn: instanceArn, PermissionSetArn: arn })))
            info = {
              arn,
              name: described.PermissionSet?.Name ?? arn,
              sessionDurationSeconds: parseIsoDuration(described.PermissionSet?.SessionDuration) ?? DEFAULT_SESSION_SECONDS,
            }
            this.permissionSetsByArn.set(arn, info)
          }
          found.set(info.name, info)
        }
        nextToken = page.NextToken
      } while (nextToken)
    })
    // Replace the name index only once the whole listing succeeded, so a failed listing never empties it.
    this.permissionSetsByName.clear()
    for (const [setName, info] of found) this.permissionSetsByName.set(setName, info)
  }

  async assignmentExists(target: AssignmentTarget): Promise<boolean> {
    return callAws(SERVICE, 'ListAccountAssignmentsForPrincipal', async () => {
      let nextToken: string | undefined
      do {
        const page = await this.limiter.read(() => this.client.send(new ListAccountAssignmentsForPrincipalCommand({
          InstanceArn: this.options.instanceArn,
          PrincipalId: target.userId,
          PrincipalType: 'USER',
          Filter: { AccountId: target.accountId },
          NextToken: nextToken,
        })))
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
    return this.limiter.creation(async () => {
      const result = await callAws(SERVICE, 'CreateAccountAssignment', () =>
        this.limiter.mutate(async () => {
          await beforeSend?.()
          return this.mutations.send(new CreateAccountAssignmentCommand(this.assignmentInput(target)))
        }),
      )
      return this.awaitOutcome(toOutcome(result.AccountAssignmentCreationStatus), (id) => this.creationStatus(id))
    })
  }

  async deleteAssignment(target: AssignmentTarget, beforeSend?: BeforeSend): Promise<ProvisioningOutcome> {
    try {
      const result = await this.limiter.mutate(async () => {
        await beforeSend?.()
        return this.mutations.send(new DeleteAccountAssignmentCommand(this.assignmentInput(target)))
      })
      return this.awaitOutcome(toOutcome(result.AccountAssignmentDeletionStatus), (id) => this.deletionStatus(id))
    } catch (error) {
      // Already gone (removed by someone else, or by our own earlier attempt): what we wanted.
      if ((error as Error).name === 'ResourceNotFoundException') return { state: 'succeeded', requestId: null }
      return callAws(SERVICE, 'DeleteAccountAssignment', () => Promise.reject(error))
    }
  }

  async creationStatus(requestId: string): Promise<ProvisioningOutcome> {
    const result = await callAws(SERVICE, 'DescribeAccountAssignmentCreationStatus', () =>
      this.limiter.read(() => this.client.send(new DescribeAccountAssignmentCreationStatusCommand({
        InstanceArn: this.options.instanceArn,
        AccountAssignmentCreationRequestId: requestId,
      }))),
    )
    return toOutcome(result.AccountAssignmentCreationStatus)
  }

  async deletionStatus(requestId: string): Promise<ProvisioningOutcome> {
    const result = await callAws(SERVICE, 'DescribeAccountAssignmentDeletionStatus', () =>
      this.limiter.read(() => this.client.send(new DescribeAccountAssignmentDeletionStatusCommand({
        InstanceArn: this.options.instanceArn,
        AccountAssignmentDeletionRequestId: requestId,
      }))),
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

  /** Polls an asynchronous request with growing pauses until it finishes or the wait budget is spent. */
  private async awaitOutcome(first: ProvisioningOutcome, status: (id: string) => Promise<ProvisioningOutcome>): Promise<ProvisioningOutcome> {
    let outcome = first
    const deadline = Date.now() + this.options.provisioningWaitMs
    let pause = 250
    while (outcome.state === 'in_progress' && Date.now() + pause <= deadline) {
      await new Promise((resolve) => setTimeout(resolve, pause))
      pause = Math.min(pause * 2, 2000)
      outcome = await status(outcome.requestId)
    }
    return outcome
  }
}

function toOutcome(status: AccountAssignmentOperationStatus | undefined): ProvisioningOutcome {
  const requestId = status?.RequestId ?? null
  switch (status?.Status) {
    case 'SUCCEEDED':
      return { state: 'succeeded', requestId }
    case 'FAILED':
      return { state: 'failed', requestId, reason: status.FailureReason ?? 'no reason given' }
    default:
      return requestId ? { state: 'in_progress', requestId } : { state: 'failed', requestId, reason: 'no request id returned' }
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
  const instances = (result.Instances ?? []).filter((i) => !configured.instanceArn || i.InstanceArn === configured.instanceArn)
  const only = instances[0]
  if (instances.length !== 1 || !only?.InstanceArn || !only.IdentityStoreId) {
    throw new Error(
      `Found ${instances.length} Identity Center instances; set JIT_INSTANCE_ARN and JIT_IDENTITY_STORE_ID to choose one`,
    )
  }
  return { instanceArn: only.InstanceArn, identityStoreId: configured.identityStoreId ?? only.IdentityStoreId }
}
