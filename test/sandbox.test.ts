import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DescribeTableCommand } from '@aws-sdk/client-dynamodb'
import { GetUserIdCommand, ListGroupMembershipsForMemberCommand, ListUsersCommand } from '@aws-sdk/client-identitystore'
import t from 'tap'
import { createAwsClients } from '../src/adapters/aws.ts'
import type { PolicyDocument } from '../src/core/policy.ts'
import { DEMO_POLICY, SANDBOX_POLICY, WORKLOADS_RULE, withCurrentUnit } from '../src/sandbox/seed.ts'
import { startSandbox } from '../src/sandbox.ts'
import { startMoto } from './helpers/moto.ts'

const quiet = { PORT: '0', LOG_LEVEL: 'silent', PATH: process.env.PATH ?? '' }

t.test('npm start brings up moto, tables, a demo directory and a token that works over a real socket', async (t) => {
  const printed: string[] = []
  const policyDir = mkdtempSync(join(tmpdir(), 'jit-sandbox-'))
  t.teardown(() => rmSync(policyDir, { recursive: true, force: true }))
  const policyFile = join(policyDir, 'policy.json')
  writeFileSync(policyFile, JSON.stringify(DEMO_POLICY))

  const sandbox = await startSandbox({
    env: { ...quiet, JIT_POLICY_FILE: policyFile },
    print: (line) => printed.push(line),
  })
  t.teardown(async () => {
    await sandbox.app.close()
    await sandbox.moto?.stop()
  })

  const text = printed.join('\n')
  t.match(text, sandbox.baseUrl)
  t.match(text, `${sandbox.baseUrl}/docs`)
  t.match(text, /export TOKEN=ey/)
  t.ok(sandbox.token)
  const headers = { authorization: `Bearer ${sandbox.token}`, 'content-type': 'application/json' }

  const created = await fetch(`${sandbox.baseUrl}/grants`, {
    method: 'POST',
    headers,
    body: JSON.stringify({
      userName: 'alice',
      accountId: '111111111111',
      permissionSet: 'AdministratorAccess',
      durationMinutes: 30,
      ticketId: 'CHG0000001',
    }),
  })
  t.equal(created.status, 201)
  t.equal(((await created.json()) as { status: string }).status, 'active')
  const revoked = await fetch(`${sandbox.baseUrl}/revocations`, {
    method: 'POST',
    headers: { authorization: headers.authorization },
  })
  t.equal(revoked.status, 200)
  const verified = await fetch(`${sandbox.baseUrl}/audit/verify`, { headers: { authorization: headers.authorization } })
  t.match(
    await verified.json(),
    { ok: true, anchored: true, anchor: { seq: 2 } },
    'the sweep anchored the head in the sandbox’s Object Lock bucket',
  )
  const docs = await fetch(`${sandbox.baseUrl}/docs`)
  t.equal(docs.status, 200)
})

t.test(
  'npm start seeds a demo organization, and its policy lets carol take AdministratorAccess on the development account',
  async (t) => {
    const printed: string[] = []
    const sandboxDir = mkdtempSync(join(tmpdir(), 'jit-sandbox-'))
    t.teardown(() => rmSync(sandboxDir, { recursive: true, force: true }))
    // As npm start runs it: no JIT_POLICY_FILE, so the sandbox writes its own policy (SANDBOX_POLICY) and keeps it current.
    const sandbox = await startSandbox({ env: quiet, sandboxDir, print: (line) => printed.push(line) })
    t.teardown(async () => {
      await sandbox.app.close()
      await sandbox.moto?.stop()
    })
    const { accounts } = sandbox.organization!
    const headers = { authorization: `Bearer ${sandbox.token}`, 'content-type': 'application/json' }
    const ask = (accountId: string) =>
      fetch(`${sandbox.baseUrl}/grants`, {
        method: 'POST',
        headers,
        body: JSON.stringify({
          userName: 'carol',
          accountId,
          permissionSet: 'AdministratorAccess',
          durationMinutes: 30,
          ticketId: 'CHG0000001',
        }),
      })

    t.match(printed.join('\n'), `sandbox-dev ${accounts.sandboxDev} (environment=development)`, 'the ids are printed')
    const development = await ask(accounts.sandboxDev)
    t.equal(development.status, 201, await development.text())
    const production = await ask(accounts.paymentsProd)
    t.equal(production.status, 403, 'not on an account without the tag')
    const eligibility = await fetch(`${sandbox.baseUrl}/eligibility?userName=carol`, { headers })
    t.match(await eligibility.json(), {
      rules: [
        { rule: 'carol-read-only', anyAccount: true },
        { rule: 'carol-development-admin', anyAccount: true, accountTags: { environment: 'development' } },
      ],
    })

    // The OU rule names this start's workloads OU: an account two levels below it is granted, one outside is not.
    const written = JSON.parse(readFileSync(join(sandboxDir, 'policy.json'), 'utf8')) as PolicyDocument
    t.same(
      written.rules.find((rule) => rule.name === WORKLOADS_RULE.name)?.accounts,
      [sandbox.organization!.units.workloads],
      'the policy file names the OU moto made',
    )
    const bob = (accountId: string) =>
      fetch(`${sandbox.baseUrl}/grants`, {
        method: 'POST',
        headers,
        body: JSON.stringify({
          userName: 'bob',
          accountId,
          permissionSet: 'ReadOnlyAccess',
          durationMinutes: 30,
          ticketId: 'CHG0000002',
          dryRun: true,
        }),
      })
    const below = await bob(accounts.analyticsProd)
    t.match(
      await below.json(),
      { allowed: true, rule: WORKLOADS_RULE.name },
      'analytics-prod sits two levels below workloads',
    )
    const outside = await bob(accounts.sandboxDev)
    t.match(await outside.json(), { allowed: false, failedCondition: 'account' }, 'sandbox-dev is outside it')

    // The README's group grant: bob joins prod-breakglass, and leaves it when the grant ends.
    const group = await fetch(`${sandbox.baseUrl}/grants`, {
      method: 'POST',
      headers,
      body: JSON.stringify({
        userName: 'bob',
        groupName: 'prod-breakglass',
        durationMinutes: 30,
        ticketId: 'INC0000001',
      }),
    })
    const groupGrant = (await group.json()) as { id: string; status: string; groupName: string }
    t.equal(group.status, 201, JSON.stringify(groupGrant))
    t.match(groupGrant, { status: 'active', groupName: 'prod-breakglass' })
    const clients = createAwsClients({ region: 'us-east-1', endpoint: sandbox.moto!.endpoint })
    const bobsGroups = async () =>
      (
        await clients.identityStore.send(
          new ListGroupMembershipsForMemberCommand({
            IdentityStoreId: sandbox.config.identityStoreId,
            MemberId: {
              UserId: (
                await clients.identityStore.send(
                  new GetUserIdCommand({
                    IdentityStoreId: sandbox.config.identityStoreId,
                    AlternateIdentifier: { UniqueAttribute: { AttributePath: 'userName', AttributeValue: 'bob' } },
                  }),
                )
              ).UserId as string,
            },
          }),
        )
      ).GroupMemberships?.length ?? 0
    t.equal(await bobsGroups(), 2, 'oncall and prod-breakglass')
    const ended = await fetch(`${sandbox.baseUrl}/grants/${groupGrant.id}`, {
      method: 'DELETE',
      headers: { authorization: headers.authorization },
    })
    t.match(await ended.json(), { status: 'revoked' })
    t.equal(await bobsGroups(), 1, 'back to oncall alone')
  },
)

t.test('with AWS_ENDPOINT_URL set, npm start uses that server, creates its tables, and seeds nothing', async (t) => {
  const moto = await startMoto(t)
  const policyDir = mkdtempSync(join(tmpdir(), 'jit-sandbox-'))
  t.teardown(() => rmSync(policyDir, { recursive: true, force: true }))
  const policyFile = join(policyDir, 'policy.json')
  writeFileSync(policyFile, JSON.stringify(DEMO_POLICY))
  const env = {
    ...quiet,
    AWS_ENDPOINT_URL: moto.endpoint,
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
    JIT_POLICY_FILE: policyFile,
    JIT_GRANTS_TABLE: 'external-grants',
  }

  const sandbox = await startSandbox({ env, print: () => {} })
  t.teardown(() => sandbox.app.close())

  t.equal(sandbox.moto, undefined, 'no moto of its own')
  const clients = createAwsClients({ region: 'us-east-1', endpoint: moto.endpoint })
  const table = await clients.dynamo.send(new DescribeTableCommand({ TableName: 'external-grants' }))
  t.ok(
    table.Table?.GlobalSecondaryIndexes?.some((index) => index.IndexName === 'due'),
    'due index created',
  )
  const users = await clients.identityStore.send(
    new ListUsersCommand({ IdentityStoreId: sandbox.config.identityStoreId }),
  )
  t.equal(users.Users?.length ?? 0, 0, 'nothing seeded')
})

t.test(
  'the sandbox writes the current OU id into its OU rule, and leaves a policy edited otherwise alone',
  async (t) => {
    const unit = 'ou-ab12-cdef3456'
    const refreshed = withCurrentUnit(SANDBOX_POLICY, unit)
    t.same(refreshed?.rules.find((rule) => rule.name === WORKLOADS_RULE.name)?.accounts, [unit])
    t.same(
      refreshed?.rules.filter((rule) => rule.name !== WORKLOADS_RULE.name),
      SANDBOX_POLICY.rules.filter((rule) => rule.name !== WORKLOADS_RULE.name),
      'every other rule as it was',
    )
    t.equal(withCurrentUnit(refreshed!, unit), undefined, 'already current: nothing to write')
    t.equal(withCurrentUnit(DEMO_POLICY, unit), undefined, 'no such rule')
    const edited = { rules: [{ ...WORKLOADS_RULE, accounts: ['111111111111'] }] }
    t.equal(withCurrentUnit(edited, unit), undefined, 'a rule edited to name accounts keeps them')
    for (const malformed of [
      null,
      42,
      {},
      { rules: {} },
      { rules: [null] },
      { rules: [{ name: WORKLOADS_RULE.name, accounts: [123] }] },
      { rules: [{ name: WORKLOADS_RULE.name, accounts: 'ou-x' }] },
    ]) {
      t.equal(
        withCurrentUnit(malformed, unit),
        undefined,
        `left for the service to refuse: ${JSON.stringify(malformed)}`,
      )
    }
  },
)
