import {
  CreateGroupMembershipCommand,
  DeleteGroupMembershipCommand,
  ListGroupMembershipsForMemberCommand,
  type IdentitystoreClient,
} from '@aws-sdk/client-identitystore'
import { isMembership, type AccessTarget, type MembershipTarget } from '../core/grant-model.ts'
import type { BeforeSend, IdentityCenter, PermissionSetInfo, ProvisioningOutcome } from '../core/ports.ts'
import { callAws } from './aws-errors.ts'
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
 * answer is settled by looking (ListGroupMembershipsForMember), as the reconciler does before sending anything again.
 */
export class AwsGroupMemberships {
  private readonly client: IdentitystoreClient
  private readonly mutations: IdentitystoreClient
  private readonly identityStoreId: string
  readonly limiter: IdentityCenterRateLimiter

  /** `mutations`: a client that does not retry (after a dropped answer the reconciler looks before sending again). */
  constructor(client: IdentitystoreClient, mutations: IdentitystoreClient, identityStoreId: string, limiter: IdentityCenterRateLimiter) {
    this.client = client
    this.mutations = mutations
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
      await this.mutations.send(new CreateGroupMembershipCommand({
        IdentityStoreId: this.identityStoreId,
        GroupId: target.groupId,
        MemberId: { UserId: target.userId },
      }))
    })
  }

  /** Removes the user from the group; a membership already gone is what was wanted. */
  async delete(target: MembershipTarget, beforeSend?: BeforeSend): Promise<ProvisioningOutcome> {
    // The Identity Store removes a membership by its id, which is looked up first.
    const membershipId = await this.membershipId(target)
    if (membershipId === undefined) return SUCCEEDED
    return this.mutation('DeleteGroupMembership', async () => {
      await beforeSend?.()
      await this.mutations.send(new DeleteGroupMembershipCommand({ IdentityStoreId: this.identityStoreId, MembershipId: membershipId }))
    })
  }

  /**
   * The id of the user's membership of the group, from a listing of the user's memberships (a user is in few
   * groups: a page or two), each page paced and retried by the limiter; undefined when there is none.
   */
  private membershipId(target: MembershipTarget): Promise<string | undefined> {
    return callAws(SERVICE, 'ListGroupMembershipsForMember', async () => {
      let nextToken: string | undefined
      do {
        const page = await this.limiter.read(() => this.client.send(new ListGroupMembershipsForMemberCommand({
          IdentityStoreId: this.identityStoreId,
          MemberId: { UserId: target.userId },
          NextToken: nextToken,
        })))
        const found = (page.GroupMemberships ?? []).find((membership) => membership.GroupId === target.groupId)
        if (found) return found.MembershipId ?? undefined
        nextToken = page.NextToken
      } while (nextToken)
      return undefined
    })
  }

  private async mutation(operation: 'CreateGroupMembership' | 'DeleteGroupMembership', send: () => Promise<void>): Promise<ProvisioningOutcome> {
    try {
      await this.limiter.mutate(send)
      return SUCCEEDED
    } catch (error) {
      const { name, Reason } = error as { name?: string; Reason?: string }
      if (name === 'ConflictException') return Reason === 'UNIQUENESS_CONSTRAINT_VIOLATION' && operation === 'CreateGroupMembership' ? EXISTS : UNDER_WAY
      if (name === 'ResourceNotFoundException' && operation === 'DeleteGroupMembership') return SUCCEEDED
      // The group (or user) is gone: refused for good, as Identity Center refuses an assignment (the grant fails).
      if (name === 'ResourceNotFoundException') return { state: 'failed', requestId: null, reason: (error as Error).message || 'the group or user does not exist' }
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
    return isMembership(target) ? this.memberships.create(target, beforeSend) : this.assignments.createAssignment(target, beforeSend)
  }

  deleteAssignment(target: AccessTarget, beforeSend?: BeforeSend): Promise<ProvisioningOutcome> {
    return isMembership(target) ? this.memberships.delete(target, beforeSend) : this.assignments.deleteAssignment(target, beforeSend)
  }

  creationStatus(requestId: string): Promise<ProvisioningOutcome> {
    return this.assignments.creationStatus(requestId)
  }

  deletionStatus(requestId: string): Promise<ProvisioningOutcome> {
    return this.assignments.deletionStatus(requestId)
  }
}
