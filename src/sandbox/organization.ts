import {
  CreateAccountCommand,
  CreateOrganizationalUnitCommand,
  CreateOrganizationCommand,
  DescribeOrganizationCommand,
  ListRootsCommand,
  MoveAccountCommand,
  OrganizationsClient,
  TagResourceCommand,
} from '@aws-sdk/client-organizations'

/** Creates the organization unless the server has one already (the cut-off policies and the OU tree both need it). */
export async function ensureOrganization(client: OrganizationsClient): Promise<void> {
  try {
    await client.send(new DescribeOrganizationCommand({}))
  } catch {
    await client.send(new CreateOrganizationCommand({ FeatureSet: 'ALL' }))
  }
}

/**
 * A demo organization three OUs deep, in moto (the sandbox; the tests), for policies that name OUs and tags:
 *
 *     root ─┬─ workloads ── prod ─┬─ payments ── payments-prod (environment=production), payments-batch (no tags)
 *           │                     └─ analytics-prod (environment=production, directly in prod)
 *           └─ sandbox ── sandbox-dev (environment=development)
 *
 * moto chooses the ids (OUs, accounts), so they differ at every start: they are answered here.
 */
export async function seedOrganization(endpoint: string, region: string) {
  const client = new OrganizationsClient({ region, endpoint })
  await ensureOrganization(client)
  const rootId = (await client.send(new ListRootsCommand({}))).Roots?.[0]?.Id as string
  const unit = async (name: string, parentId: string) =>
    (await client.send(new CreateOrganizationalUnitCommand({ Name: name, ParentId: parentId }))).OrganizationalUnit
      ?.Id as string
  const workloads = await unit('workloads', rootId)
  const prod = await unit('prod', workloads)
  const payments = await unit('payments', prod)
  const sandbox = await unit('sandbox', rootId)
  const account = async (name: string, parentId: string, tags: Record<string, string> = {}) => {
    const created = await client.send(new CreateAccountCommand({ AccountName: name, Email: `${name}@example.com` }))
    const id = created.CreateAccountStatus?.AccountId as string
    await client.send(new MoveAccountCommand({ AccountId: id, SourceParentId: rootId, DestinationParentId: parentId }))
    if (Object.keys(tags).length > 0)
      await client.send(
        new TagResourceCommand({ ResourceId: id, Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) }),
      )
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

export type DemoOrganization = Awaited<ReturnType<typeof seedOrganization>>
