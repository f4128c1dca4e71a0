import { DescribePolicyCommand, type OrganizationsClient, UpdatePolicyCommand } from '@aws-sdk/client-organizations'
import { ensureTimeFor } from '../core/deadline.ts'
import type { CutoffPolicies } from '../core/ports.ts'
import { type BackoffLimits, backoffMs, pause } from '../core/retry.ts'
import { callAws } from './aws-errors.ts'

// The Organizations client, for src/adapters/aws.ts to load with this module (see lazilyLoaded there).
export { OrganizationsClient } from '@aws-sdk/client-organizations'

const SERVICE = 'Organizations'
/**
 * Organizations answers ConcurrentModificationException while another change to the organization's policies is
 * under way (from anyone: another tool, an administrator), and TooManyRequestsException past its rate: both
 * pass, so each call is sent again, up to this many times in all, with jittered backoff.
 */
export const MAX_ORGANIZATIONS_ATTEMPTS = 4
const RETRY_BACKOFF: BackoffLimits = { baseMs: 200 }
const RETRIED = new Set(['ConcurrentModificationException', 'TooManyRequestsException'])

/** The service control policies the service owns (JIT_CUTOFF_POLICY_IDS), read and written whole. */
export class OrganizationsCutoffPolicies implements CutoffPolicies {
  readonly policyIds: readonly string[]
  readonly partition: string
  readonly unreachableAccounts: readonly string[]
  private readonly client: OrganizationsClient

  constructor(
    client: OrganizationsClient,
    settings: Pick<CutoffPolicies, 'policyIds' | 'partition' | 'unreachableAccounts'>,
  ) {
    this.client = client
    this.policyIds = settings.policyIds
    this.partition = settings.partition
    this.unreachableAccounts = settings.unreachableAccounts
  }

  async read(policyId: string): Promise<string> {
    const result = await this.send('DescribePolicy', () =>
      this.client.send(new DescribePolicyCommand({ PolicyId: policyId })),
    )
    const content = result.Policy?.Content
    if (content === undefined) throw new Error(`Organizations described policy ${policyId} without its content`)
    return content
  }

  async write(policyId: string, content: string): Promise<void> {
    await this.send('UpdatePolicy', () =>
      this.client.send(new UpdatePolicyCommand({ PolicyId: policyId, Content: content })),
    )
  }

  /**
   * Sending an update again is safe: the content is the whole policy, computed under the lease, so a second
   * send writes the same thing.
   */
  private async send<T>(operation: string, call: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await call()
      } catch (error) {
        if (!RETRIED.has((error as Error).name) || attempt === MAX_ORGANIZATIONS_ATTEMPTS)
          return callAws(SERVICE, operation, () => Promise.reject(error))
        const backoff = backoffMs(attempt - 1, RETRY_BACKOFF)
        ensureTimeFor(backoff)
        await pause(backoff)
      }
    }
  }
}
