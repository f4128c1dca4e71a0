import {
  DescribeGroupCommand,
  GetUserIdCommand,
  paginateListGroupMembershipsForMember,
  type IdentitystoreClient,
} from '@aws-sdk/client-identitystore'
import type { Directory, DirectoryUser } from '../core/ports.ts'
import { callAws } from './aws-errors.ts'
import { TtlCache } from './ttl-cache.ts'

const SERVICE = 'Identity Store'

export class AwsIdentityStore implements Directory {
  private readonly users: TtlCache<DirectoryUser>
  private readonly groupNames: TtlCache<string>

  private readonly client: IdentitystoreClient
  private readonly identityStoreId: string

  constructor(client: IdentitystoreClient, identityStoreId: string, cacheTtlMs: number) {
    this.client = client
    this.identityStoreId = identityStoreId
    this.users = new TtlCache(cacheTtlMs)
    this.groupNames = new TtlCache(cacheTtlMs)
  }

  async findUser(userName: string): Promise<DirectoryUser | undefined> {
    const cached = this.users.get(userName)
    if (cached) return cached
    try {
      const result = await this.client.send(new GetUserIdCommand({
        IdentityStoreId: this.identityStoreId,
        AlternateIdentifier: { UniqueAttribute: { AttributePath: 'userName', AttributeValue: userName } },
      }))
      if (!result.UserId) return undefined
      const user = { id: result.UserId, userName }
      this.users.set(userName, user)
      return user
    } catch (error) {
      if ((error as Error).name === 'ResourceNotFoundException') return undefined
      return callAws(SERVICE, 'GetUserId', () => Promise.reject(error))
    }
  }

  /** Looked up only when a policy rule names groups, and never cached, so removing someone from a group takes effect at once. */
  async groupNamesOf(userId: string): Promise<string[]> {
    const groupIds = await callAws(SERVICE, 'ListGroupMembershipsForMember', async () => {
      const ids: string[] = []
      const pages = paginateListGroupMembershipsForMember({ client: this.client }, {
        IdentityStoreId: this.identityStoreId,
        MemberId: { UserId: userId },
      })
      for await (const page of pages) {
        for (const membership of page.GroupMemberships ?? []) if (membership.GroupId) ids.push(membership.GroupId)
      }
      return ids
    })
    return Promise.all(groupIds.map((id) => this.groupName(id)))
  }

  private async groupName(groupId: string): Promise<string> {
    const cached = this.groupNames.get(groupId)
    if (cached) return cached
    const result = await callAws(SERVICE, 'DescribeGroup', () =>
      this.client.send(new DescribeGroupCommand({ IdentityStoreId: this.identityStoreId, GroupId: groupId })),
    )
    const name = result.DisplayName ?? groupId
    this.groupNames.set(groupId, name)
    return name
  }
}
