import {
  AttachPolicyCommand,
  CreateAccountCommand,
  CreateOrganizationalUnitCommand,
  CreateOrganizationCommand,
  CreatePolicyCommand,
  DescribeOrganizationCommand,
  DescribePolicyCommand,
  ListRootsCommand,
  MoveAccountCommand,
  OrganizationsClient,
  TagResourceCommand,
} from '@aws-sdk/client-organizations'
import { EMPTY_CUTOFF_POLICY, type PolicyDocument } from '../../src/core/cutoff-policy.ts'

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
    const created = await client.send(new CreatePolicyCommand({
      Name: `jit-access-session-cutoff-${i + 1}`,
      Description: 'jit-access: ends live role sessions of ended grants',
      Type: 'SERVICE_CONTROL_POLICY',
      Content: JSON.stringify(EMPTY_CUTOFF_POLICY),
    }))
    const id = created.Policy?.PolicySummary?.Id as string
    await client.send(new AttachPolicyCommand({ PolicyId: id, TargetId: rootId }))
    policyIds.push(id)
  }
  return {
    client,
    policyIds,
    rootId,
    /** Every owned policy's document, in order. */
    documents: async (): Promise<PolicyDocument[]> => Promise.all(policyIds.map(async (id) =>
      JSON.parse((await client.send(new DescribePolicyCommand({ PolicyId: id }))).Policy?.Content as string) as PolicyDocument)),
  }
}

/** Creates the organization unless moto has one already (the cut-off policies and the OU tree both need it). */
async function ensureOrganization(client: OrganizationsClient): Promise<void> {
  try {
    await client.send(new DescribeOrganizationCommand({}))
  } catch {
    await client.send(new CreateOrganizationCommand({ FeatureSet: 'ALL' }))
  }
}

/**
 * An organization three OUs deep, in moto:
 *
 *     root ─┬─ workloads ── prod ── payments ── payments-prod (environment=production), payments-batch (no tags)
 *           │                    └─ analytics-prod (environment=production, directly in prod)
 *           └─ sandbox ── sandbox-dev (environment=development)
 */
export async function stageOrganizationTree(endpoint: string, region: string) {
  const client = new OrganizationsClient({ region, endpoint })
  await ensureOrganization(client)
  const rootId = (await client.send(new ListRootsCommand({}))).Roots?.[0]?.Id as string
  const unit = async (name: string, parentId: string) =>
    (await client.send(new CreateOrganizationalUnitCommand({ Name: name, ParentId: parentId }))).OrganizationalUnit?.Id as string
  const workloads = await unit('workloads', rootId)
  const prod = await unit('prod', workloads)
  const payments = await unit('payments', prod)
  const sandbox = await unit('sandbox', rootId)
  const account = async (name: string, parentId: string, tags: Record<string, string> = {}) => {
    const created = await client.send(new CreateAccountCommand({ AccountName: name, Email: `${name}@example.com` }))
    const id = created.CreateAccountStatus?.AccountId as string
    await client.send(new MoveAccountCommand({ AccountId: id, SourceParentId: rootId, DestinationParentId: parentId }))
    if (Object.keys(tags).length > 0) await client.send(new TagResourceCommand({ ResourceId: id, Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) }))
    return id
  }
  const accounts = {
    paymentsProd: await account('payments-prod', payments, { environment: 'production' }),
    paymentsBatch: await account('payments-batch', payments),
    analyticsProd: await account('analytics-prod', prod, { environment: 'production' }),
    sandboxDev: await account('sandbox-dev', sandbox, { environment: 'development' }),
  }
  return { client, rootId, units: { workloads, prod, payments, sandbox }, accounts }
}

export type StagedOrganization = Awaited<ReturnType<typeof stageOrganizationTree>>
