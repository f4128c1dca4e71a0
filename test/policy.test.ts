import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  CreateGroupCommand,
  CreateGroupMembershipCommand,
  GetGroupIdCommand,
  GetGroupMembershipIdCommand,
  UpdateGroupCommand,
} from '@aws-sdk/client-identitystore'
import t from 'tap'
import { loadConfig } from '../src/config.ts'
import {
  evaluatePolicy,
  MAX_TICKET_PATTERN_LENGTH,
  mightAllow,
  type PolicyDocument,
  PolicyGroupNotFoundError,
  PolicyInvalidError,
  PolicyNotResolvedError,
  parsePolicy,
  resolvePolicy,
} from '../src/core/policy.ts'
import { findMotoPython, startMotoServer } from '../src/sandbox/moto-server.ts'
import { BREAKGLASS_RULE, DEMO_POLICY } from '../src/sandbox/seed.ts'
import { createService } from '../src/service.ts'
import { build, grantBody, PROD, STAGING } from './helpers/app.ts'
import { expectStatus } from './helpers/http-status.ts'
import { bearer, TEST_AUDIENCE, TEST_ISSUER, TEST_SECRET } from './helpers/tokens.ts'

const rule = {
  name: 'sre-prod',
  groups: ['sre'],
  accounts: ['111111111111'],
  permissionSets: ['AdministratorAccess'],
  maxDurationMinutes: 60,
  ticketPattern: 'CHG[0-9]{7}',
}
const request = {
  userName: 'alice',
  accountId: '111111111111',
  permissionSet: 'AdministratorAccess',
  durationMinutes: 30,
  ticketId: 'CHG0000001',
}
/** Group ids as a directory would give them: nothing like the display names the policy uses. */
const GROUP_IDS: Record<string, string> = { sre: '9067a4e2-1111', dba: '9067a4e2-2222', breakglass: '9067a4e2-3333' }
const inSre = async () => [GROUP_IDS.sre as string]
const inNothing = async () => []
/** Parsed and resolved against GROUP_IDS, as the service does at start. */
const policyOf = (document: unknown) => resolvePolicy(parsePolicy(document), async (name) => GROUP_IDS[name])

t.test('a request matching every condition of one rule is allowed', async (t) => {
  const policy = await policyOf({ rules: [rule] })
  t.same(await evaluatePolicy(policy, request, inSre), { allowed: true, rule: 'sre-prod' })
})

t.test('each failed condition is named', async (t) => {
  const policy = await policyOf({ rules: [rule] })
  const policy2 = await policyOf({ rules: [{ ...rule, maxLeadDays: 2 }] })
  t.match(
    await evaluatePolicy(policy2, { ...request, leadMs: 3 * 86_400_000 }, inSre),
    { allowed: false, failedCondition: 'leadTime' },
    'scheduled too far ahead',
  )
  t.match(
    await evaluatePolicy(policy2, { ...request, leadMs: 2 * 86_400_000 }, inSre),
    { allowed: true },
    'scheduled within the rule',
  )
  t.match(
    await evaluatePolicy(policy, { ...request, leadMs: 300 * 86_400_000 }, inSre),
    { allowed: true },
    'a rule without maxLeadDays leaves it to the service maximum',
  )
  const cases: [string, typeof request, () => Promise<string[]>, string][] = [
    ['not in the group', request, inNothing, 'principal'],
    ['another account', { ...request, accountId: '222222222222' }, inSre, 'account'],
    ['another permission set', { ...request, permissionSet: 'ReadOnlyAccess' }, inSre, 'permissionSet'],
    ['too long', { ...request, durationMinutes: 61 }, inSre, 'duration'],
    ['ticket does not match', { ...request, ticketId: 'INC0000001' }, inSre, 'ticket'],
    ['ticket only contains a match', { ...request, ticketId: 'xCHG0000001' }, inSre, 'ticket'],
  ]
  for (const [name, input, groups, failedCondition] of cases) {
    const decision = await evaluatePolicy(policy, input, groups)
    t.match(decision, { allowed: false, failedCondition }, name)
  }
})

t.test('mightAllow is false only for requests that no group membership could make allowed', async (t) => {
  const policy = await policyOf({
    rules: [rule, { ...rule, name: 'bob-dev', groups: undefined, users: ['bob'], accounts: ['333333333333'] }],
  })
  const requests = [
    request,
    { ...request, accountId: '222222222222' },
    { ...request, permissionSet: 'ReadOnlyAccess' },
    { ...request, durationMinutes: 61 },
    { ...request, ticketId: 'INC0000001' },
    { ...request, userName: 'bob', accountId: '333333333333' },
    { ...request, userName: 'carol', accountId: '333333333333' },
  ]
  const groupSets = [
    inSre,
    inNothing,
    async () => [GROUP_IDS.dba as string],
    async () => [GROUP_IDS.sre as string, GROUP_IDS.dba as string],
  ]
  for (const input of requests) {
    const allowedBySomeGroups = (
      await Promise.all(groupSets.map((groups) => evaluatePolicy(policy, input, groups)))
    ).some((d) => d.allowed)
    t.equal(mightAllow(policy, input), allowedBySomeGroups, JSON.stringify(input))
  }
})

t.test(
  "group grants: a rule's grantableGroups decide the group; account rules never allow one, nor group rules an account",
  async (t) => {
    const breakglass = {
      name: 'sre-breakglass',
      groups: ['sre'],
      grantableGroups: ['breakglass'],
      maxDurationMinutes: 30,
      ticketPattern: 'INC[0-9]{7}',
    }
    const policy = await policyOf({ rules: [rule, breakglass] })
    const groupRequest = { userName: 'alice', groupName: 'breakglass', durationMinutes: 20, ticketId: 'INC0000001' }
    t.same(await evaluatePolicy(policy, groupRequest, inSre), { allowed: true, rule: 'sre-breakglass' })
    const cases: [string, Record<string, unknown>, () => Promise<string[]>, string, string][] = [
      ['not in the group', groupRequest, inNothing, 'principal', 'sre-prod'],
      ['a group no rule grants', { ...groupRequest, groupName: 'sre' }, inSre, 'group', 'sre-breakglass'],
      ['too long', { ...groupRequest, durationMinutes: 31 }, inSre, 'duration', 'sre-breakglass'],
      ['ticket does not match', { ...groupRequest, ticketId: 'CHG0000001' }, inSre, 'ticket', 'sre-breakglass'],
    ]
    for (const [name, input, groups, failedCondition, closest] of cases) {
      t.match(
        await evaluatePolicy(policy, input as typeof groupRequest, groups),
        { allowed: false, failedCondition, rule: closest },
        name,
      )
    }
    // An account request on a policy whose only matching rule grants groups: the group rule comes less close.
    const groupsOnly = await policyOf({ rules: [{ ...rule, name: 'dba-prod', groups: ['dba'] }, breakglass] })
    t.match(await evaluatePolicy(groupsOnly, request, inSre), {
      allowed: false,
      failedCondition: 'account',
      rule: 'sre-breakglass',
    })
    for (const input of [
      groupRequest,
      { ...groupRequest, groupName: 'sre' },
      { ...groupRequest, durationMinutes: 31 },
      { ...groupRequest, userName: 'bob' },
    ]) {
      const allowedBySomeGroups = (
        await Promise.all([inSre, inNothing].map((groups) => evaluatePolicy(policy, input, groups)))
      ).some((d) => d.allowed)
      t.equal(mightAllow(policy, input), allowedBySomeGroups, `mightAllow ${JSON.stringify(input)}`)
    }
  },
)

t.test('users are matched by name; groups are looked up only when needed', async (t) => {
  const policy = await policyOf({ rules: [{ ...rule, groups: undefined, users: ['alice'] }] })
  let lookups = 0
  const decision = await evaluatePolicy(policy, request, async () => {
    lookups++
    return []
  })
  t.same(decision, { allowed: true, rule: 'sre-prod' })
  t.equal(lookups, 0)
})

t.test('wildcards match any account and any permission set', async (t) => {
  const policy = await policyOf({ rules: [{ ...rule, accounts: ['*'], permissionSets: ['*'] }] })
  t.match(await evaluatePolicy(policy, { ...request, accountId: '999999999999', permissionSet: 'Anything' }, inSre), {
    allowed: true,
  })
})

t.test('the denial explains the rule that came closest', async (t) => {
  const policy = await policyOf({
    rules: [
      { ...rule, name: 'other-team', groups: ['dba'] },
      { ...rule, name: 'sre-short', maxDurationMinutes: 15 },
    ],
  })
  const decision = await evaluatePolicy(policy, request, inSre)
  t.match(decision, { allowed: false, failedCondition: 'duration', reason: /sre-short.*15 minutes/ })
})

t.test('invalid policies are refused whole, naming the problem', async (t) => {
  const cases: [string, unknown, RegExp][] = [
    ['not an object', 'allow everything', /\//],
    ['no rules', { rules: [] }, /rules/],
    ['unknown field', { rules: [{ ...rule, admins: ['x'] }] }, /rules\/0/],
    ['rule with neither users nor groups', { rules: [{ ...rule, groups: undefined }] }, /neither users nor groups/],
    ['bad account', { rules: [{ ...rule, accounts: ['prod'] }] }, /accounts/],
    ['zero duration', { rules: [{ ...rule, maxDurationMinutes: 0 }] }, /maxDurationMinutes/],
    ['negative lead time', { rules: [{ ...rule, maxLeadDays: -1 }] }, /maxLeadDays/],
    ['bad regular expression', { rules: [{ ...rule, ticketPattern: '(' }] }, /ticketPattern of rule 'sre-prod'/],
    [
      'lookaround, which RE2 does not run',
      { rules: [{ ...rule, ticketPattern: 'CHG(?=\\d)\\d+' }] },
      /ticketPattern of rule 'sre-prod' is not a valid RE2/,
    ],
    ['duplicate names', { rules: [rule, rule] }, /used twice/],
    [
      'accounts without permission sets',
      { rules: [{ ...rule, permissionSets: undefined }] },
      /accounts without permissionSets/,
    ],
    [
      'permission sets without accounts',
      { rules: [{ ...rule, accounts: undefined, grantableGroups: ['breakglass'] }] },
      /permissionSets without accounts/,
    ],
    [
      'neither accounts nor grantable groups',
      { rules: [{ ...rule, accounts: undefined, permissionSets: undefined }] },
      /neither accounts and permissionSets nor grantableGroups/,
    ],
    ['no grantable group listed', { rules: [{ ...rule, grantableGroups: [] }] }, /grantableGroups/],
    [
      'account tags without accounts',
      {
        rules: [
          {
            ...rule,
            accounts: undefined,
            permissionSets: undefined,
            grantableGroups: ['breakglass'],
            accountTags: { env: 'prod' },
          },
        ],
      },
      /accountTags without accounts/,
    ],
    [
      'a tag key with a line break, whose value is not a string',
      { rules: [{ ...rule, accountTags: { 'env\nteam': 5 } }] },
      /accountTags\/env\nteam must be string/,
    ],
    ['an empty tag key', { rules: [{ ...rule, accountTags: { '': 'prod' } }] }, /accountTags/],
    [
      'a tag key over 128 characters',
      { rules: [{ ...rule, accountTags: { ['k'.repeat(129)]: 'prod' } }] },
      /accountTags/,
    ],
    ['a tag value over 256 characters', { rules: [{ ...rule, accountTags: { env: 'v'.repeat(257) } }] }, /accountTags/],
  ]
  for (const [name, document, message] of cases) {
    t.throws(() => parsePolicy(document as PolicyDocument), PolicyInvalidError, name)
    try {
      parsePolicy(document as PolicyDocument)
    } catch (error) {
      t.match((error as Error).message, message, name)
    }
  }
})

t.test('an unknown field of a rule is named at its own path, and so is a missing one', async (t) => {
  const { name: _name, ...unnamed } = rule
  t.throws(() => parsePolicy({ rules: [{ ...unnamed, admins: ['x'] }] }), {
    name: 'PolicyInvalidError',
    message: /\/rules\/0\/name is required; \/rules\/0\/admins is an unknown property/,
  })
})

t.test('group rules match group ids: a group of the same name with another id does not match', async (t) => {
  const policy = await policyOf({ rules: [rule] })
  t.match(
    await evaluatePolicy(policy, request, async () => ['sre']),
    { allowed: false, failedCondition: 'principal' },
    'the display name is not an id',
  )
  t.match(await evaluatePolicy(policy, request, inSre), { allowed: true })
})

t.test('a policy whose groups were never resolved is refused when evaluated, not taken for a denial', async (t) => {
  const policy = parsePolicy({ rules: [rule] })
  await t.rejects(evaluatePolicy(policy, request, inSre), PolicyNotResolvedError)
  t.throws(() => mightAllow(policy, request), PolicyNotResolvedError)
})

t.test('resolving a policy that names a missing group refuses it, naming the group and its rules', async (t) => {
  const document = {
    rules: [
      { ...rule, groups: ['sre', 'ghosts'] },
      { ...rule, name: 'ghosts-read', groups: ['ghosts'] },
    ],
  }
  const refused = resolvePolicy(parsePolicy(document), async (name) => GROUP_IDS[name])
  await t.rejects(refused, PolicyGroupNotFoundError)
  await t.rejects(refused, { message: /group 'ghosts' \(rule 'sre-prod', 'ghosts-read'\)/ })
})

t.test(
  "in the sandbox a missing group is warned about and matches nobody; the rule's other groups still match",
  async (t) => {
    const warnings: string[] = []
    const document = {
      rules: [
        { ...rule, groups: ['sre', 'ghosts'] },
        { ...rule, name: 'ghosts-only', groups: ['ghosts'] },
      ],
    }
    const policy = await resolvePolicy(parsePolicy(document), async (name) => GROUP_IDS[name], {
      warnMissing: (message) => warnings.push(message),
    })
    t.match(warnings, [/'ghosts'.*matches nobody/])
    t.match(await evaluatePolicy(policy, request, inSre), { allowed: true, rule: 'sre-prod' })
    t.match(await evaluatePolicy(policy, request, async () => ['ghosts']), {
      allowed: false,
      failedCondition: 'principal',
    })
  },
)

t.test(
  'a ticket pattern is checked on its own before it is anchored, so one that would escape the anchors is refused',
  async (t) => {
    // Wrapped as ^(?:CHG\d+)|(.*)$ its parentheses balance, and the second branch allows every ticket.
    const escaping = { rules: [{ ...rule, ticketPattern: 'CHG\\d+)|(.*' }] }
    t.throws(() => parsePolicy(escaping), {
      name: 'PolicyInvalidError',
      message: /ticketPattern of rule 'sre-prod' is not a valid RE2 regular expression/,
    })
  },
)

t.test('a ticket pattern longer than the limit is refused, naming the rule', async (t) => {
  const long = { rules: [{ ...rule, ticketPattern: `CHG${'[0-9]'.repeat(MAX_TICKET_PATTERN_LENGTH)}` }] }
  t.throws(() => parsePolicy(long), {
    name: 'PolicyInvalidError',
    message: new RegExp(`ticketPattern of rule 'sre-prod' is longer than ${MAX_TICKET_PATTERN_LENGTH} characters`),
  })
})

t.test('patterns that make a backtracking engine run for seconds are decided in milliseconds', async (t) => {
  // Nested repetition (the review's 28-character ticket held the event loop 28 s) and repeated alternation of
  // overlapping classes: RE2 runs both in time linear in the ticket.
  const attacks: [string, string][] = [
    ['([\\w.]+)+Z', 'a'.repeat(28)],
    ['(\\w|\\d)*Z', '1'.repeat(26)],
  ]
  for (const [ticketPattern, ticketId] of attacks) {
    const policy = await policyOf({ rules: [{ ...rule, ticketPattern }] })
    const started = performance.now()
    const decision = await evaluatePolicy(policy, { ...request, ticketId }, inSre)
    const elapsedMs = performance.now() - started
    t.match(decision, { allowed: false, failedCondition: 'ticket' }, ticketPattern)
    t.ok(elapsedMs < 100, `${ticketPattern} against ${ticketId.length} characters took ${elapsedMs.toFixed(0)} ms`)
    t.match(
      await evaluatePolicy(policy, { ...request, ticketId: `${ticketId}Z` }, inSre),
      { allowed: true },
      `${ticketPattern} still matches`,
    )
  }
})

t.test('ordinary ticket patterns still match whole ticket ids only', async (t) => {
  const cases: [string, string, boolean][] = [
    ['(CHG|INC)[0-9]{7}', 'INC0000001', true],
    ['(CHG|INC)[0-9]{7}', 'INC0000001x', false],
    ['[A-Z]+-\\d+', 'OPS-42', true],
    ['[A-Z]+-\\d+', 'x OPS-42', false],
    ['(?i)chg\\d{7}', 'CHG0000001', true],
    ['CHG\\d{7}|INC\\d{7}', 'xINC0000001', false],
  ]
  for (const [ticketPattern, ticketId, allowed] of cases) {
    const policy = await policyOf({ rules: [{ ...rule, ticketPattern }] })
    t.match(
      await evaluatePolicy(policy, { ...request, ticketId }, inSre),
      { allowed },
      `${ticketPattern} / ${ticketId}`,
    )
  }
})

// Moto with UpdateGroup and a userName lookup that ignores case (see identity_store_moto.py).
const moto = await startIdentityStoreMoto()

t.test('over HTTP: a denial is a 403 naming the condition, and is audited with who, whom, what and why', async (t) => {
  const { app, hasAssignment } = await build(t, moto)
  const response = await app.inject({
    method: 'POST',
    url: '/grants',
    headers: bearer(),
    payload: grantBody({ userName: 'dave' }),
  })

  expectStatus(t, response, 403)
  t.match(response.json(), { code: 'POLICY_DENIED', failedCondition: 'principal', detail: /dave/ })
  t.notOk(await hasAssignment('dave', PROD, 'AdministratorAccess'))
  const audit = (await app.inject({ method: 'GET', url: '/audit?action=grant.denied', headers: bearer() })).json()
  t.equal(audit.items.length, 1)
  t.match(audit.items[0], {
    actor: 'servicenow-workflow',
    userName: 'dave',
    accountId: PROD,
    permissionSet: 'AdministratorAccess',
    ticketId: 'CHG0001234',
    grantId: null,
    detail: /failed condition: principal/,
    requestId: response.json().requestId,
  })
})

t.test('over HTTP: group membership from the Identity Store makes a user eligible', async (t) => {
  const { app } = await build(t, moto)
  const bob = await app.inject({
    method: 'POST',
    url: '/grants',
    headers: bearer(),
    payload: grantBody({ userName: 'bob' }),
  })
  expectStatus(t, bob, 201, 'bob is in oncall')
  const wrongTicket = await app.inject({
    method: 'POST',
    url: '/grants',
    headers: bearer(),
    payload: grantBody({ userName: 'bob', ticketId: 'JIRA-1' }),
  })
  t.match(wrongTicket.json(), { code: 'POLICY_DENIED', failedCondition: 'ticket' })
})

t.test('over HTTP: an unknown user or permission set is a 422, audited as denied, creating nothing', async (t) => {
  const { app } = await build(t, moto)
  const noUser = await app.inject({
    method: 'POST',
    url: '/grants',
    headers: bearer(),
    payload: grantBody({ userName: 'mallory' }),
  })
  const noSet = await app.inject({
    method: 'POST',
    url: '/grants',
    headers: bearer(),
    payload: grantBody({ permissionSet: 'PowerUserAccess' }),
  })

  expectStatus(t, noUser, 422)
  t.equal(noUser.json().code, 'USER_NOT_FOUND')
  expectStatus(t, noSet, 422)
  t.equal(noSet.json().code, 'PERMISSION_SET_NOT_FOUND')
  const denied = (await app.inject({ method: 'GET', url: '/audit?action=grant.denied', headers: bearer() })).json()
  t.equal(denied.items.length, 2)
  t.equal((await app.inject({ method: 'GET', url: '/grants', headers: bearer() })).json().items.length, 0)
})

async function startIdentityStoreMoto() {
  const python = findMotoPython(join(import.meta.dirname, '..'))
  if (!python) throw new Error('The policy tests need a Python with moto 5 (pip install "moto[server]>=5,<6")')
  const server = await startMotoServer(python, 30_000, [join(import.meta.dirname, 'helpers', 'identity_store_moto.py')])
  t.teardown(() => server.stop())
  return server
}

t.test(
  'renaming a group after start changes no decision: its members still match, a new group given its name does not',
  async (t) => {
    const { app, clients, instance, seeded } = await build(t, moto)
    const IdentityStoreId = instance.identityStoreId
    const oncall = await clients.identityStore.send(
      new GetGroupIdCommand({
        IdentityStoreId,
        AlternateIdentifier: { UniqueAttribute: { AttributePath: 'displayName', AttributeValue: 'oncall' } },
      }),
    )
    await clients.identityStore.send(
      new UpdateGroupCommand({
        IdentityStoreId,
        GroupId: oncall.GroupId,
        Operations: [{ AttributePath: 'displayName', AttributeValue: 'oncall-2025' }],
      }),
    )
    const impostor = await clients.identityStore.send(
      new CreateGroupCommand({ IdentityStoreId, DisplayName: 'oncall' }),
    )
    await clients.identityStore.send(
      new CreateGroupMembershipCommand({
        IdentityStoreId,
        GroupId: impostor.GroupId,
        MemberId: { UserId: seeded.userIds.dave as string },
      }),
    )

    const bob = await app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: grantBody({ userName: 'bob' }),
    })
    const dave = await app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: grantBody({ userName: 'dave' }),
    })

    t.equal(bob.statusCode, 201, `bob is still a member of the group the policy was resolved to: ${bob.body}`)
    t.equal(dave.statusCode, 403, `dave is in a group that only took the name: ${dave.body}`)
    t.match(dave.json(), { code: 'POLICY_DENIED', failedCondition: 'principal' })
  },
)

t.test('a scheduled group grant to a group renamed after start starts in that same group', async (t) => {
  const { app, clock, clients, instance, seeded } = await build(t, moto, {
    policy: { rules: [...DEMO_POLICY.rules, BREAKGLASS_RULE] },
  })
  const IdentityStoreId = instance.identityStoreId
  const group = (
    await clients.identityStore.send(
      new GetGroupIdCommand({
        IdentityStoreId,
        AlternateIdentifier: { UniqueAttribute: { AttributePath: 'displayName', AttributeValue: 'prod-breakglass' } },
      }),
    )
  ).GroupId as string
  const startsAt = new Date(clock.now().getTime() + 10 * 60_000).toISOString()
  const payload = {
    userName: 'alice',
    groupName: 'prod-breakglass',
    durationMinutes: 60,
    ticketId: 'INC0001234',
    startsAt,
  }
  const scheduled = await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload })
  expectStatus(t, scheduled, 201)
  await clients.identityStore.send(
    new UpdateGroupCommand({
      IdentityStoreId,
      GroupId: group,
      Operations: [{ AttributePath: 'displayName', AttributeValue: 'prod-breakglass-2026' }],
    }),
  )

  clock.advanceMinutes(11)
  await app.inject({ method: 'POST', url: '/revocations', headers: bearer() })

  const grant = (await app.inject({ method: 'GET', url: `/grants/${scheduled.json().id}`, headers: bearer() })).json()
  t.match(grant, { status: 'active', groupId: group }, `renaming changes no decision: ${JSON.stringify(grant)}`)
  const membership = await clients.identityStore.send(
    new GetGroupMembershipIdCommand({
      IdentityStoreId,
      GroupId: group,
      MemberId: { UserId: seeded.userIds.alice as string },
    }),
  )
  t.ok(membership.MembershipId, 'alice is in the renamed group')
})

t.test(
  'a policy naming a group the directory does not have stops the start, naming the group and its rule',
  async (t) => {
    const policy = {
      rules: [
        {
          name: 'ghost-admins',
          groups: ['ghosts'],
          accounts: [PROD],
          permissionSets: ['AdministratorAccess'],
          maxDurationMinutes: 60,
        },
      ],
    }
    await t.rejects(build(t, moto, { policy }), {
      name: 'PolicyGroupNotFoundError',
      message: /group 'ghosts' \(rule 'ghost-admins'\)/,
    })
  },
)

t.test(
  'createService refuses a missing group outside the sandbox, and in the sandbox starts with the group matching nobody',
  async (t) => {
    const { instance } = await build(t, moto)
    const dir = mkdtempSync(join(tmpdir(), 'jit-policy-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const policyFile = join(dir, 'policy.json')
    writeFileSync(
      policyFile,
      JSON.stringify({
        rules: [
          {
            name: 'ghost-admins',
            groups: ['ghosts', 'oncall'],
            accounts: [PROD],
            permissionSets: ['AdministratorAccess'],
            maxDurationMinutes: 60,
          },
        ],
      }),
    )
    const env = {
      LOG_LEVEL: 'silent',
      AWS_ENDPOINT_URL: moto.endpoint,
      AWS_REGION: 'us-east-1',
      JIT_POLICY_FILE: policyFile,
      JIT_JWT_SECRET: TEST_SECRET,
      JIT_JWT_ISSUER: TEST_ISSUER,
      JIT_JWT_AUDIENCE: TEST_AUDIENCE,
      JIT_CURSOR_KEY: 'k'.repeat(32),
      JIT_INSTANCE_ARN: instance.instanceArn,
      JIT_IDENTITY_STORE_ID: instance.identityStoreId,
      JIT_GRANTS_TABLE: 'jit-grants',
      JIT_AUDIT_TABLE: 'jit-audit',
    }

    await t.rejects(createService(loadConfig(env)), {
      name: 'PolicyGroupNotFoundError',
      message: /group 'ghosts' \(rule 'ghost-admins'\)/,
    })

    const sandbox = await createService(loadConfig({ ...env, JIT_SANDBOX: 'true' }))
    t.teardown(() => sandbox.close())
    const bob = await sandbox.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: grantBody({ userName: 'bob' }),
    })
    t.equal(bob.statusCode, 201, `the rule's group that exists still counts: ${bob.body}`)
  },
)

t.test(
  'a user is recorded, audited and matched as the directory spells them, whatever case the request used',
  async (t) => {
    const { app } = await build(t, moto)

    const alice = await app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: grantBody({ userName: 'ALICE' }),
    })
    t.equal(alice.statusCode, 201, alice.body)
    t.equal(alice.json().userName, 'alice')
    const events = (
      await app.inject({ method: 'GET', url: `/audit?grantId=${alice.json().id}`, headers: bearer() })
    ).json()
    t.ok(events.items.length >= 2, JSON.stringify(events))
    t.same(
      [...new Set(events.items.map((e: { userName: string }) => e.userName))],
      ['alice'],
      'every event of the grant',
    )
    t.equal(
      (await app.inject({ method: 'GET', url: '/grants?userName=alice', headers: bearer() })).json().items.length,
      1,
      "found under the directory's name",
    )

    // carol is eligible by name ('users': ['carol']): the policy is asked about the directory's spelling.
    const carol = await app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: grantBody({
        userName: 'Carol',
        accountId: STAGING,
        permissionSet: 'ReadOnlyAccess',
        durationMinutes: 30,
      }),
    })
    t.equal(carol.statusCode, 201, carol.body)
    t.equal(carol.json().userName, 'carol')

    const denied = await app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: grantBody({ userName: 'BOB', ticketId: 'JIRA-1' }),
    })
    t.match(denied.json(), { code: 'POLICY_DENIED', failedCondition: 'ticket' })
    const denials = (await app.inject({ method: 'GET', url: '/audit?action=grant.denied', headers: bearer() })).json()
    t.same(
      denials.items.map((e: { userName: string }) => e.userName),
      ['bob'],
      "a denial after the lookup names the directory's user",
    )
  },
)
