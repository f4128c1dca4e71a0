import {
  DescribeUserCommand,
  GetGroupIdCommand,
  GetUserIdCommand,
  type IdentitystoreClient,
  paginateListGroupMembershipsForMember,
} from '@aws-sdk/client-identitystore'
import type { Directory, DirectoryUser } from '../core/ports.ts'
import { callAws, callAwsUnlessNotFound } from './aws-errors.ts'
import { TtlCache } from './ttl-cache.ts'

const SERVICE = 'Identity Store'

export class AwsIdentityStore implements Directory {
  private readonly users: TtlCache<DirectoryUser>

  private readonly client: IdentitystoreClient
  private readonly identityStoreId: string

  constructor(client: IdentitystoreClient, identityStoreId: string, cacheTtlMs: number) {
    this.client = client
    this.identityStoreId = identityStoreId
    this.users = new TtlCache(cacheTtlMs)
  }

  async findUser(userName: string): Promise<DirectoryUser | undefined> {
    const cached = this.users.get(userName)
    if (cached) return cached
    const userId = await callAwsUnlessNotFound(SERVICE, 'GetUserId', () =>
      this.client
        .send(
          new GetUserIdCommand({
            IdentityStoreId: this.identityStoreId,
            AlternateIdentifier: { UniqueAttribute: { AttributePath: 'userName', AttributeValue: userName } },
          }),
        )
        .then((result) => result.UserId),
    )
    if (!userId) return undefined
    // GetUserId answers only the id: the name is read back so that what we record is the directory's spelling,
    // not whatever spelling the caller's lookup happened to match.
    const described = await callAwsUnlessNotFound(SERVICE, 'DescribeUser', () =>
      this.client
        .send(new DescribeUserCommand({ IdentityStoreId: this.identityStoreId, UserId: userId }))
        .then((result) => result.UserName),
    )
    if (!described) return undefined
    const user = { id: userId, userName: described }
    this.users.set(userName, user)
    return user
  }

  /** Looked up only when a policy rule names groups, and never cached, so removing someone from a group takes effect at once. */
  async groupIdsOf(userId: string): Promise<string[]> {
    return callAws(SERVICE, 'ListGroupMembershipsForMember', async () => {
      const ids: string[] = []
      const pages = paginateListGroupMembershipsForMember(
        { client: this.client },
        {
          IdentityStoreId: this.identityStoreId,
          MemberId: { UserId: userId },
        },
      )
      for await (const page of pages) {
        for (const membership of page.GroupMemberships ?? []) if (membership.GroupId) ids.push(membership.GroupId)
      }
      return ids
    })
  }

  async groupIdOf(displayName: string): Promise<string | undefined> {
    return callAwsUnlessNotFound(SERVICE, 'GetGroupId', () =>
      this.client
        .send(
          new GetGroupIdCommand({
            IdentityStoreId: this.identityStoreId,
            AlternateIdentifier: { UniqueAttribute: { AttributePath: 'displayName', AttributeValue: displayName } },
          }),
        )
        .then((result) => result.GroupId),
    )
  }
}
