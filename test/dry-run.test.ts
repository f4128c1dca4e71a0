import t, { type Test } from 'tap'
import { policyVersion } from '../src/core/policy.ts'
import { DEMO_POLICY } from '../src/sandbox/seed.ts'
import { build, grantBody } from './helpers/app.ts'
import { startMoto } from './helpers/moto.ts'
import type { StagedOrganization } from './helpers/organizations.ts'
import { ServiceNowStandIn } from './helpers/servicenow-standin.ts'
import { bearer } from './helpers/tokens.ts'

const moto = await startMoto(t)
const IDENTITY_CENTER_CHANGES = ['CreateAccountAssignment', 'DeleteAccountAssignment']

async function nothingRecorded(t: Test, app: Awaited<ReturnType<typeof build>>['app']) {
  const grants = await app.inject({ method: 'GET', url: '/grants', headers: bearer() })
  const audit = await app.inject({ method: 'GET', url: '/audit', headers: bearer() })
  t.same(grants.json().items, [], 'no grant recorded')
  t.same(audit.json().items, [], 'no audit event')
}

t.test(
  'a dry run that would be allowed answers 200 with the rule and the policy version, and records and creates nothing',
  async (t) => {
    const { app, proxy, logLines, hasAssignment } = await build(t, moto, { proxy: true })

    const answer = await app.inject({
      method: 'POST',
      url: '/grants',
      headers: { ...bearer(), 'idempotency-key': 'dry-1' },
      payload: grantBody({ dryRun: true }),
    })

    t.equal(answer.statusCode, 200, answer.body)
    t.same(answer.json(), {
      allowed: true,
      rule: 'oncall-incident-access',
      failedCondition: null,
      detail: `60 minutes allowed by rule 'oncall-incident-access' (policy ${policyVersion(DEMO_POLICY)})`,
      policyVersion: policyVersion(DEMO_POLICY),
    })
    await nothingRecorded(t, app)
    t.same(
      IDENTITY_CENTER_CHANGES.filter((op) => proxy!.calls[op]),
      [],
      'no Identity Center change was asked for',
    )
    t.equal(proxy!.calls.ListAccountAssignmentsForPrincipal ?? 0, 0, 'not even the look ahead at the assignment')
    t.notOk(await hasAssignment('alice', grantBody().accountId as string, 'AdministratorAccess'))
    t.ok(
      logLines.some((line) => line.includes('"dryRun":true') && line.includes('grant dry run')),
      'counted in the log',
    )

    const real = await app.inject({
      method: 'POST',
      url: '/grants',
      headers: { ...bearer(), 'idempotency-key': 'dry-1' },
      payload: grantBody(),
    })
    t.equal(real.statusCode, 201, `the dry run left the Idempotency-Key unused: ${real.body}`)
  },
)

t.test('a dry run that would be refused names the failed condition and the closest rule, unaudited', async (t) => {
  const { app } = await build(t, moto)

  const answer = await app.inject({
    method: 'POST',
    url: '/grants',
    headers: bearer(),
    payload: grantBody({ dryRun: true, durationMinutes: 600 }),
  })
  const unknown = await app.inject({
    method: 'POST',
    url: '/grants',
    headers: bearer(),
    payload: grantBody({ dryRun: true, userName: 'nobody' }),
  })
  const tooLong = await app.inject({
    method: 'POST',
    url: '/grants',
    headers: bearer(),
    payload: grantBody({ dryRun: true, durationMinutes: 100_000 }),
  })

  t.equal(answer.statusCode, 200, answer.body)
  t.match(answer.json(), {
    allowed: false,
    rule: 'oncall-incident-access',
    failedCondition: 'duration',
    detail: /at most 240 minutes/,
    policyVersion: policyVersion(DEMO_POLICY),
  })
  t.equal(unknown.statusCode, 422, `input a request would refuse is refused alike: ${unknown.body}`)
  t.equal(tooLong.statusCode, 400, tooLong.body)
  await nothingRecorded(t, app)
})

t.test('a dry run asks the organization like a request', async (t) => {
  const policy = (org: StagedOrganization) => ({
    rules: [
      {
        name: 'workloads',
        users: ['alice'],
        accounts: [org.units.workloads],
        permissionSets: ['AdministratorAccess'],
        maxDurationMinutes: 120,
      },
    ],
  })
  const { app, organization, proxy } = await build(t, moto, { organization: true, proxy: true, policy })

  const inside = await app.inject({
    method: 'POST',
    url: '/grants',
    headers: bearer(),
    payload: grantBody({ dryRun: true, accountId: organization!.accounts.paymentsProd }),
  })
  const outside = await app.inject({
    method: 'POST',
    url: '/grants',
    headers: bearer(),
    payload: grantBody({ dryRun: true, accountId: organization!.accounts.sandboxDev }),
  })
  proxy!.inject('ListParents', 'server-error')
  const unreachable = await app.inject({
    method: 'POST',
    url: '/grants',
    headers: bearer(),
    payload: grantBody({ dryRun: true, accountId: organization!.accounts.paymentsBatch }),
  })

  t.match(inside.json(), { allowed: true, rule: 'workloads' })
  t.match(outside.json(), { allowed: false, failedCondition: 'account' })
  t.equal(unreachable.statusCode, 503, `fails closed, never answers allowed: ${unreachable.body}`)
  await nothingRecorded(t, app)
})

t.test('a dry run asks the ticket when approval verification is on', async (t) => {
  const snow = new ServiceNowStandIn()
  await snow.start()
  t.teardown(() => snow.stop())
  const settings = {
    url: snow.url,
    credentials: { kind: 'oauth' as const, clientId: snow.clientId, clientSecret: snow.clientSecret },
    timeoutMs: 2000,
  }
  const { app, clock } = await build(t, moto, {
    serviceNow: { settings, verify: { windowLeadMs: 15 * 60_000, retryAfterSeconds: 30 } },
  })
  const at = (minutes: number) =>
    new Date(clock.now().getTime() + minutes * 60_000)
      .toISOString()
      .replace('T', ' ')
      .replace(/\.\d+Z$/, '')
  snow.addTicket('change_request', {
    number: 'CHG0000001',
    state: '-1',
    approval: 'approved',
    start_date: at(-10),
    end_date: at(120),
  })
  snow.addTicket('change_request', {
    number: 'CHG0000002',
    state: '-1',
    approval: 'requested',
    start_date: at(-10),
    end_date: at(120),
  })

  const approved = await app.inject({
    method: 'POST',
    url: '/grants',
    headers: bearer(),
    payload: grantBody({ dryRun: true, ticketId: 'CHG0000001' }),
  })
  const notApproved = await app.inject({
    method: 'POST',
    url: '/grants',
    headers: bearer(),
    payload: grantBody({ dryRun: true, ticketId: 'CHG0000002' }),
  })

  t.equal(approved.statusCode, 200, approved.body)
  t.match(approved.json(), { allowed: true })
  t.match(notApproved.json(), { allowed: false, rule: 'oncall-incident-access', failedCondition: 'ticketApproval' })
  await nothingRecorded(t, app)
})

t.test(
  'a dry run answers within the request deadline, as a real request does: 503 when the directory is too slow',
  async (t) => {
    const { app, proxy } = await build(t, moto, { proxy: true, requestDeadlineMs: 1000 })
    const lookup = proxy?.holdNext('ListGroupMembershipsForMember')
    const started = Date.now()
    const answering = app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: { ...grantBody(), dryRun: true },
    })
    await lookup?.arrived
    const answer = await answering
    lookup?.release()
    t.equal(answer.statusCode, 503, answer.body)
    t.ok(Date.now() - started < 3000, 'answered by its deadline, not when the directory did')
    await nothingRecorded(t, app)
  },
)
