import t from 'tap'
import { evaluatePolicy, mightAllow, parsePolicy, PolicyInvalidError, type PolicyDocument } from '../src/core/policy.ts'
import { build, grantBody, PROD } from './helpers/app.ts'
import { startMoto } from './helpers/moto.ts'
import { bearer } from './helpers/tokens.ts'

const rule = {
  name: 'sre-prod',
  groups: ['sre'],
  accounts: ['111111111111'],
  permissionSets: ['AdministratorAccess'],
  maxDurationMinutes: 60,
  ticketPattern: 'CHG[0-9]{7}',
}
const request = { userName: 'alice', accountId: '111111111111', permissionSet: 'AdministratorAccess', durationMinutes: 30, ticketId: 'CHG0000001' }
const inSre = async () => ['sre']
const inNothing = async () => []

t.test('a request matching every condition of one rule is allowed', async (t) => {
  const policy = parsePolicy({ rules: [rule] })
  t.same(await evaluatePolicy(policy, request, inSre), { allowed: true, rule: 'sre-prod' })
})

t.test('each failed condition is named', async (t) => {
  const policy = parsePolicy({ rules: [rule] })
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
  const policy = parsePolicy({ rules: [rule, { ...rule, name: 'bob-dev', groups: undefined, users: ['bob'], accounts: ['333333333333'] }] })
  const requests = [
    request,
    { ...request, accountId: '222222222222' },
    { ...request, permissionSet: 'ReadOnlyAccess' },
    { ...request, durationMinutes: 61 },
    { ...request, ticketId: 'INC0000001' },
    { ...request, userName: 'bob', accountId: '333333333333' },
    { ...request, userName: 'carol', accountId: '333333333333' },
  ]
  const groupSets = [inSre, inNothing, async () => ['dba'], async () => ['sre', 'dba']]
  for (const input of requests) {
    const allowedBySomeGroups = (await Promise.all(groupSets.map((groups) => evaluatePolicy(policy, input, groups)))).some((d) => d.allowed)
    t.equal(mightAllow(policy, input), allowedBySomeGroups, JSON.stringify(input))
  }
})

t.test('users are matched by name; groups are looked up only when needed', async (t) => {
  const policy = parsePolicy({ rules: [{ ...rule, groups: undefined, users: ['alice'] }] })
  let lookups = 0
  const decision = await evaluatePolicy(policy, request, async () => (lookups++, []))
  t.same(decision, { allowed: true, rule: 'sre-prod' })
  t.equal(lookups, 0)
})

t.test('wildcards match any account and any permission set', async (t) => {
  const policy = parsePolicy({ rules: [{ ...rule, accounts: ['*'], permissionSets: ['*'] }] })
  t.match(await evaluatePolicy(policy, { ...request, accountId: '999999999999', permissionSet: 'Anything' }, inSre), { allowed: true })
})

t.test('the denial explains the rule that came closest', async (t) => {
  const policy = parsePolicy({
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
    ['bad regular expression', { rules: [{ ...rule, ticketPattern: '(' }] }, /ticketPattern/],
    ['duplicate names', { rules: [rule, rule] }, /used twice/],
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

const moto = await startMoto(t)

t.test('over HTTP: a denial is a 403 naming the condition, and is audited with who, whom, what and why', async (t) => {
  const { app, hasAssignment } = await build(t, moto)
  const response = await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody({ userName: 'dave' }) })

  t.equal(response.statusCode, 403)
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
  const bob = await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody({ userName: 'bob' }) })
  t.equal(bob.statusCode, 201, 'bob is in oncall')
  const wrongTicket = await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody({ userName: 'bob', ticketId: 'JIRA-1' }) })
  t.match(wrongTicket.json(), { code: 'POLICY_DENIED', failedCondition: 'ticket' })
})

t.test('over HTTP: an unknown user or permission set is a 422, audited as denied, creating nothing', async (t) => {
  const { app } = await build(t, moto)
  const noUser = await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody({ userName: 'mallory' }) })
  const noSet = await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody({ permissionSet: 'PowerUserAccess' }) })

  t.equal(noUser.statusCode, 422)
  t.equal(noUser.json().code, 'USER_NOT_FOUND')
  t.equal(noSet.statusCode, 422)
  t.equal(noSet.json().code, 'PERMISSION_SET_NOT_FOUND')
  const denied = (await app.inject({ method: 'GET', url: '/audit?action=grant.denied', headers: bearer() })).json()
  t.equal(denied.items.length, 2)
  t.equal((await app.inject({ method: 'GET', url: '/grants', headers: bearer() })).json().items.length, 0)
})
