import {
  AttachPolicyCommand,
  CreatePolicyCommand,
  DescribePolicyCommand,
  ListRootsCommand,
  OrganizationsClient,
} from '@aws-sdk/client-organizations'
import { EMPTY_CUTOFF_POLICY, type PolicyDocument } from '../../src/core/cutoff-policy.ts'
import { type DemoOrganization, ensureOrganization, seedOrganization } from '../../src/sandbox/organization.ts'

/**
 * What the CDK stack stages once for JIT_SESSION_CUTOFF=scp, in moto: an organization, and `count` service control
 * policies of the service's own, empty, attached to the root.
 */
export async function stageCutoffPolicies(endpoint: string, region: string, count: number) {
  const client = new OrganizationsClient({ region, endpoint })
  await ensureOrganization(client)
  const rootId = (await client.send(new ListRootsCommand({}))).Roots?.[0]?.Id as string
  const policyIds: string[] = []
  for (let i = 0; i < count; i++) {
    const created = await client.send(
      new CreatePolicyCommand({
        Name: `jit-access-session-cutoff-${i + 1}`,
        Description: 'jit-access: ends live role sessions of ended grants',
        Type: 'SERVICE_CONTROL_POLICY',
        Content: JSON.stringify(EMPTY_CUTOFF_POLICY),
      }),
    )
    const id = created.Policy?.PolicySummary?.Id as string
    await client.send(new AttachPolicyCommand({ PolicyId: id, TargetId: rootId }))
    policyIds.push(id)
  }
  return {
    client,
    policyIds,
    rootId,
    /** Every owned policy's document, in order. */
    documents: async (): Promise<PolicyDocument[]> =>
      Promise.all(
        policyIds.map(
          async (id) =>
            JSON.parse(
              (await client.send(new DescribePolicyCommand({ PolicyId: id }))).Policy?.Content as string,
            ) as PolicyDocument,
        ),
      ),
  }
}

/** The sandbox's demo organization (see seedOrganization): an OU tree three levels deep with tagged accounts. */
export const stageOrganizationTree = seedOrganization
export type StagedOrganization = DemoOrganization
