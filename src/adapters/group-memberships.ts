import {
  CreateGroupMembershipCommand,
  DeleteGroupMembershipCommand,
  GetGroupMembershipIdCommand,
  type IdentitystoreClient,
} from '@aws-sdk/client-identitystore'
import { type AccessTarget, isMembership, type MembershipTarget } from '../core/grant-model.ts'
import type { BeforeSend, IdentityCenter, PermissionSetInfo, ProvisioningOutcome } from '../core/ports.ts'
import { callAws, callAwsUnlessNotFound } from './aws-errors.ts'
import type { IdentityCenterRateLimiter } from './rate-limiter.ts'

const SERVICE = 'Identity Store'
const SUCCEEDED: ProvisioningOutcome = { state: 'succeeded', requestId: null }
/** Another change to the same membership is under way (ConflictException, CONCURRENT_MODIFICATION): it decides. */
const UNDER_WAY: ProvisioningOutcome = { state: 'in_progress', requestId: null }
/** The Identity Store refused the creation: the membership exists (ConflictException, UNIQUENESS_CONSTRAINT_VIOLATION). */
const EXISTS: ProvisioningOutcome = { state: 'exists', requestId: null }

/**
 * Temporary group membership (Identity Store): the second kind of access a grant can stand for. Unlike an
 * account assignment, a membership is made or removed at once, so an outcome never carries a request id; a lost
 * answer is settled by looking (GetGroupMembershipId), as the reconciler does before sending anything again.
 *
 * Every call goes through one client without automatic retries: the limiter retries the reads (each attempt
 * paying a token, so a throttle slows the limiter down instead of being hidden by the SDK), and after a dropped
 * answer to a change the reconciler looks before sending again.
 */
export class AwsGroupMemberships {
  private readonly client: IdentitystoreClient
  private readonly identityStoreId: string
  readonly limiter: IdentityCenterRateLimiter

  /** `client`: an Identity Store client with maxAttempts 1 (see the class). */
  constructor(client: IdentitystoreClient, identityStoreId: string, limiter: IdentityCenterRateLimiter) {
    this.client = client
    this.identityStoreId = identityStoreId
    this.limiter = limiter
  }

  async exists(target: MembershipTarget): Promise<boolean> {
    return (await this.membershipId(target)) !== undefined
  }

  /**
   * Adds the user to the group. The Identity Store keeps one membership per user and group and refuses a second
   * (ConflictException, UNIQUENESS_CONSTRAINT_VIOLATION): answered `exists`, not `succeeded`, because whose
   * membership that is depends on what was sent before (see ProvisioningOutcome), which only the reconciler knows.
   */
  create(target: MembershipTarget, beforeSend?: BeforeSend): Promise<ProvisioningOutcome> {
    return this.mutation('CreateGroupMembership', async () => {
      await beforeSend?.()
      await this.client.send(
        new CreateGroupMembershipCommand({
          IdentityStoreId: this.identityStoreId,
          GroupId: target.groupId,
          MemberId: { UserId: target.userId },
        }),
      )
    })
  }

  /**
   * Removes the user from the group, by the membership's id, looked up directly (GetGroupMembershipId) rather
   * than found in a listing of the user's memberships: a listing that missed it (stale, or cut short) would
   * have ended the grant with the membership left in place, and nobody would look again. None found, or
   * ResourceNotFoundException on the removal: already gone, which is what was wanted.
   */
  async delete(target: MembershipTarget, beforeSend?: BeforeSend): Promise<ProvisioningOutcome> {
    const membershipId = await this.membershipId(target)
    if (membershipId === undefined) return SUCCEEDED
    return this.mutation('DeleteGroupMembership', async () => {
      await beforeSend?.()
      await this.client.send(
        new DeleteGroupMembershipCommand({ IdentityStoreId: this.identityStoreId, MembershipId: membershipId }),
      )
    })
  }

  /**
   * The id of the user's membership of the group (GetGroupMembershipId: one call, by group and member, paced
   * and retried by the limiter); undefined when there is none (ResourceNotFoundException, also when the group
   * or user is gone: a creation then fails for good).
   */
  private membershipId(target: MembershipTarget): Promise<string | undefined> {
    return callAwsUnlessNotFound(SERVICE, 'GetGroupMembershipId', async () => {
      const found = await this.limiter.read(() =>
        this.client.send(
          new GetGroupMembershipIdCommand({
            IdentityStoreId: this.identityStoreId,
            GroupId: target.groupId,
            MemberId: { UserId: target.userId },
          }),
        ),
      )
      return found.MembershipId ?? undefined
    })
  }

  private async mutation(
    operation: 'CreateGroupMembership' | 'DeleteGroupMembership',
    send: () => Promise<void>,
  ): Promise<ProvisioningOutcome> {
    try {
      await this.limiter.mutate(send)
      return SUCCEEDED
    } catch (error) {
      const { name, Reason } = error as { name?: string; Reason?: string }
      if (name === 'ConflictException')
        return Reason === 'UNIQUENESS_CONSTRAINT_VIOLATION' && operation === 'CreateGroupMembership'
          ? EXISTS
          : UNDER_WAY
      if (name === 'ResourceNotFoundException' && operation === 'DeleteGroupMembership') return SUCCEEDED
      // The group (or user) is gone: refused for good, as Identity Center refuses an assignment (the grant fails).
      if (name === 'ResourceNotFoundException')
        return {
          state: 'failed',
          requestId: null,
          reason: (error as Error).message || 'the group or user does not exist',
        }
      // The service's role may not add members to this group: the deployment's IAM policy names the groups it may
      // change (the stack's grantableGroupIds). Asking again changes nothing, so the grant fails, audited, as a
      // refused assignment does, rather than staying in provisioning, alerted on at every sweep, until it expires.
      if (name === 'AccessDeniedException' && operation === 'CreateGroupMembership')
        return {
          state: 'failed',
          requestId: null,
          reason:
            "access denied: the service's role may not change this group's membership: is it in the stack's " +
            `grantableGroupIds? (${(error as Error).message || 'no message'})`,
        }
      return callAws(SERVICE, operation, () => Promise.reject(error))
    }
  }
}

/**
 * The IdentityCenter port over both kinds of access: account assignments go to Identity Center (SSO Admin), group
 * memberships to the Identity Store. Only assignments have request ids, so status questions go to Identity Center.
 */
export class AccessTargets implements IdentityCenter {
  private readonly assignments: IdentityCenter
  private readonly memberships: AwsGroupMemberships

  constructor(assignments: IdentityCenter, memberships: AwsGroupMemberships) {
    this.assignments = assignments
    this.memberships = memberships
  }

  findPermissionSet(name: string): Promise<PermissionSetInfo | undefined> {
    return this.assignments.findPermissionSet(name)
  }

  assignmentExists(target: AccessTarget): Promise<boolean> {
    return isMembership(target) ? this.memberships.exists(target) : this.assignments.assignmentExists(target)
  }

  createAssignment(target: AccessTarget, beforeSend?: BeforeSend): Promise<ProvisioningOutcome> {
    return isMembership(target)
      ? this.memberships.create(target, beforeSend)
      : this.assignments.createAssignment(target, beforeSend)
  }

  deleteAssignment(target: AccessTarget, beforeSend?: BeforeSend): Promise<ProvisioningOutcome> {
    return isMembership(target)
      ? this.memberships.delete(target, beforeSend)
      : this.assignments.deleteAssignment(target, beforeSend)
  }

  creationStatus(requestId: string): Promise<ProvisioningOutcome> {
    return this.assignments.creationStatus(requestId)
  }

  deletionStatus(requestId: string): Promise<ProvisioningOutcome> {
    return this.assignments.deletionStatus(requestId)
  }
}
