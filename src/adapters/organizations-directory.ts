import {
  DescribeAccountCommand,
  ListAccountsForParentCommand,
  ListChildrenCommand,
  ListParentsCommand,
  ListTagsForResourceCommand,
  type OrganizationsClient,
} from '@aws-sdk/client-organizations'
import type { AccountDirectory, OrganizationAccount } from '../core/ports.ts'
import { callAws } from './aws-errors.ts'
import type { IdentityCenterRateLimiter } from './rate-limiter.ts'

// The Organizations client, for src/adapters/aws.ts to load with this module (see lazilyLoaded there).
export { OrganizationsClient } from '@aws-sdk/client-organizations'

const SERVICE = 'Organizations'
/**
 * Organizations' read quotas are low and shared by the whole organization (its console, other tools): a process
 * asks at most this many times per second, whatever its load, and lives on its cache in between.
 */
export const ORGANIZATIONS_TPS = 4
/** Organizations nests OUs at most five deep under the root: a longer chain of parents is a broken answer. */
const MAX_DEPTH = 8
/** Entries kept at most: an organization's accounts and OUs, several answers each. */
const MAX_ENTRIES = 20_000
/** Answers that mean "the organization has no such account or OU": an answer (not eligible), not a failure. */
const NOT_IN_ORGANIZATION = new Set([
  'AccountNotFoundException',
  'ChildNotFoundException',
  'ParentNotFoundException',
  'TargetNotFoundException',
])

type Parent = { id: string; type: string } | undefined

/**
 * The organization's accounts, OUs and tags, read through AWS Organizations and kept for `cacheTtlMs`: each
 * answer is cached on its own (an account's parent, an OU's parent, an account's tags and status), so that with
 * warm caches a decision costs no call, and an account moved to another OU is seen within one TTL. Lookups are
 * shared: concurrent requests that need the same answer wait for one call (single flight). A failed lookup is
 * not cached. Every call takes a token from `limiter` (reads are retried there on throttling and 5xx).
 */
export class OrganizationsAccountDirectory implements AccountDirectory {
  private readonly client: OrganizationsClient
  private readonly limiter: IdentityCenterRateLimiter
  private readonly lookups: SharedLookups

  constructor(
    client: OrganizationsClient,
    options: { cacheTtlMs: number; limiter: IdentityCenterRateLimiter; now?: () => number },
  ) {
    this.client = client
    this.limiter = options.limiter
    this.lookups = new SharedLookups(options.cacheTtlMs, options.now ?? Date.now)
  }

  async ancestorsOf(accountId: string): Promise<readonly string[]> {
    const ancestors: string[] = []
    let child = accountId
    for (let depth = 0; depth < MAX_DEPTH; depth++) {
      const parent = await this.parentOf(child)
      if (!parent) break
      ancestors.push(parent.id)
      if (parent.type === 'ROOT') break
      child = parent.id
    }
    return ancestors
  }

  tagsOf(accountId: string): Promise<Readonly<Record<string, string>>> {
    return this.lookups.get(`tags#${accountId}`, () =>
      this.read(
        'ListTagsForResource',
        async () => {
          const tags: Record<string, string> = {}
          let token: string | undefined
          do {
            const page = await this.client.send(
              new ListTagsForResourceCommand({ ResourceId: accountId, NextToken: token }),
            )
            for (const tag of page.Tags ?? []) if (tag.Key !== undefined) tags[tag.Key] = tag.Value ?? ''
            token = page.NextToken
          } while (token)
          return tags
        },
        {},
      ),
    )
  }

  describe(accountId: string): Promise<OrganizationAccount | undefined> {
    return this.lookups.get(`account#${accountId}`, () =>
      this.read(
        'DescribeAccount',
        async () => {
          const { Account: account } = await this.client.send(new DescribeAccountCommand({ AccountId: accountId }))
          return account ? accountOf(account, accountId) : undefined
        },
        undefined,
      ),
    )
  }

  async accountsUnder(
    parentId: string,
    limit: number,
  ): Promise<{ accounts: OrganizationAccount[]; truncated: boolean }> {
    const accounts: OrganizationAccount[] = []
    const queue = [parentId]
    for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
      for (const account of await this.accountsIn(next)) {
        if (accounts.length === limit) return { accounts, truncated: true }
        accounts.push(account)
      }
      queue.push(...(await this.unitsIn(next)))
    }
    return { accounts, truncated: false }
  }

  private parentOf(childId: string): Promise<Parent> {
    return this.lookups.get(`parent#${childId}`, () =>
      this.read(
        'ListParents',
        async () => {
          // An account or OU has exactly one parent: the first page's first entry.
          const { Parents: parents } = await this.client.send(new ListParentsCommand({ ChildId: childId }))
          const parent = parents?.[0]
          return parent?.Id ? { id: parent.Id, type: parent.Type ?? 'ORGANIZATIONAL_UNIT' } : undefined
        },
        undefined,
      ),
    )
  }

  private accountsIn(parentId: string): Promise<OrganizationAccount[]> {
    return this.lookups.get(`accounts-in#${parentId}`, () =>
      this.read('ListAccountsForParent', async () => {
        const found: OrganizationAccount[] = []
        let token: string | undefined
        do {
          const page = await this.client.send(
            new ListAccountsForParentCommand({ ParentId: parentId, NextToken: token }),
          )
          for (const account of page.Accounts ?? []) if (account.Id) found.push(accountOf(account, account.Id))
          token = page.NextToken
        } while (token)
        return found
      }, []),
    )
  }

  private unitsIn(parentId: string): Promise<string[]> {
    return this.lookups.get(`units-in#${parentId}`, () =>
      this.read('ListChildren', async () => {
        const found: string[] = []
        let token: string | undefined
        do {
          const page = await this.client.send(
            new ListChildrenCommand({ ParentId: parentId, ChildType: 'ORGANIZATIONAL_UNIT', NextToken: token }),
          )
          for (const child of page.Children ?? []) if (child.Id) found.push(child.Id)
          token = page.NextToken
        } while (token)
        return found
      }, []),
    )
  }

  /** One paced, retried lookup; "no such account or OU" answers `absent`, anything else unanswered is UpstreamUnavailableError. */
  private read<T>(operation: string, call: () => Promise<T>, absent: T): Promise<T> {
    return callAws(SERVICE, operation, async () => {
      try {
        return await this.limiter.read(call)
      } catch (error) {
        if (NOT_IN_ORGANIZATION.has((error as Error).name)) return absent
        throw error
      }
    })
  }
}

function accountOf(
  account: { Name?: string | undefined; Status?: string | undefined; State?: string | undefined },
  id: string,
): OrganizationAccount {
  // State is the newer field (ACTIVE, SUSPENDED, PENDING_CLOSURE, CLOSED, PENDING_ACTIVATION); Status the older one.
  const state = account.State ?? account.Status
  return { id, name: account.Name ?? id, active: state === 'ACTIVE' }
}

/**
 * Answers kept for a time, each loaded once however many ask at the same moment: a caller that finds a load in
 * flight waits for it. The time counts from the answer; a failed load is forgotten at once, so the next caller
 * asks again. The oldest entries go first when there are too many.
 */
class SharedLookups {
  private readonly entries = new Map<string, { value: Promise<unknown>; expires: number }>()
  private readonly ttlMs: number
  private readonly now: () => number

  constructor(ttlMs: number, now: () => number) {
    this.ttlMs = ttlMs
    this.now = now
  }

  get<T>(key: string, load: () => Promise<T>): Promise<T> {
    const cached = this.entries.get(key)
    if (cached && cached.expires > this.now()) return cached.value as Promise<T>
    this.entries.delete(key)
    if (this.entries.size >= MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value as string)
    const entry = { value: load() as Promise<unknown>, expires: Infinity }
    this.entries.set(key, entry)
    entry.value.then(
      () => {
        entry.expires = this.now() + this.ttlMs
      },
      () => {
        if (this.entries.get(key) === entry) this.entries.delete(key)
      },
    )
    return entry.value as Promise<T>
  }
}
