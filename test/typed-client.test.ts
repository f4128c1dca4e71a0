import createClient from 'openapi-fetch'
import t from 'tap'
import type { paths } from '../openapi/schema.d.ts'
import { BREAKGLASS_RULE, DEMO_POLICY } from '../src/sandbox/seed.ts'
import { build, grantBody } from './helpers/app.ts'
import { startMoto } from './helpers/moto.ts'
import { mintToken } from './helpers/tokens.ts'

const moto = await startMoto(t)

t.test('a client typed from the committed contract drives the running service over a real socket', async (t) => {
  const { app } = await build(t, moto, { policy: { rules: [...DEMO_POLICY.rules, BREAKGLASS_RULE] } })
  const baseUrl = await app.listen({ port: 0, host: '127.0.0.1' })
  const client = createClient<paths>({ baseUrl, headers: { authorization: `Bearer ${mintToken()}` } })

  const created = await client.POST('/grants', {
    body: {
      userName: 'alice',
      accountId: '111111111111',
      permissionSet: 'AdministratorAccess',
      durationMinutes: 30,
      ticketId: 'CHG0000042',
    },
    params: { header: { 'idempotency-key': 'typed-client-1' } },
  })
  t.equal(created.response.status, 201)
  // POST /grants also answers a dry run's verdict (200), so the typed answer is a union: a grant has an id.
  const grant = created.data && 'id' in created.data ? created.data : undefined
  t.equal(grant?.status, 'active')

  const fetched = await client.GET('/grants/{id}', { params: { path: { id: grant?.id ?? '' } } })
  t.equal(fetched.data?.ticketId, 'CHG0000042')

  const listed = await client.GET('/grants', { params: { query: { userName: 'alice', status: 'active', limit: 10 } } })
  t.same(
    listed.data?.items.map((g) => g.id),
    [grant?.id],
  )
  t.equal(listed.data?.nextCursor, null)

  const ended = await client.DELETE('/grants/{id}', { params: { path: { id: grant?.id ?? '' } } })
  t.equal(ended.data?.status, 'revoked')

  const audit = await client.GET('/audit', { params: { query: { ticketId: 'CHG0000042' } } })
  // /audit may also answer CSV or NDJSON (by Accept), so the typed answer is a union: JSON is the default.
  const events = typeof audit.data === 'object' ? audit.data.items : []
  t.same(
    events.map((e) => e.action),
    ['grant.revoked', 'grant.revoke_requested', 'grant.activated', 'grant.requested'],
  )

  // A change window: scheduled ahead, moved by PATCH (merge patch), cancelled before it starts.
  const startsAt = new Date(Date.now() + 3600_000).toISOString()
  const scheduled = await client.POST('/grants', {
    body: {
      userName: 'alice',
      accountId: '111111111111',
      permissionSet: 'ReadOnlyAccess',
      durationMinutes: 60,
      ticketId: 'CHG0000043',
      startsAt,
    },
  })
  t.equal(scheduled.response.status, 201)
  const scheduledGrant = scheduled.data && 'id' in scheduled.data ? scheduled.data : undefined
  t.equal(scheduledGrant?.status, 'scheduled')
  const later = new Date(Date.parse(startsAt) + 120 * 60_000).toISOString()
  const moved = await client.PATCH('/grants/{id}', {
    params: { path: { id: scheduledGrant?.id ?? '' } },
    body: { expiresAt: later },
    headers: { 'content-type': 'application/merge-patch+json' },
  })
  t.equal(moved.response.status, 200, JSON.stringify(moved.error))
  t.equal(moved.data?.expiresAt, later)
  const cancelled = await client.DELETE('/grants/{id}', { params: { path: { id: scheduledGrant?.id ?? '' } } })
  t.equal(cancelled.data?.status, 'cancelled')

  const denied = await client.POST('/grants', {
    body: { ...grantBody({ userName: 'dave' }), durationMinutes: 30 } as never,
  })
  t.equal(denied.response.status, 403)
  t.equal(denied.error?.code, 'POLICY_DENIED', 'problem bodies are typed too')

  const dryRun = await client.POST('/grants', {
    body: {
      userName: 'alice',
      accountId: '111111111111',
      permissionSet: 'ReadOnlyAccess',
      durationMinutes: 30,
      ticketId: 'CHG0000044',
      dryRun: true,
    },
  })
  t.equal(dryRun.response.status, 200)
  t.equal(
    dryRun.data && 'allowed' in dryRun.data ? dryRun.data.allowed : undefined,
    true,
    "the dry run's verdict is typed",
  )

  // A group grant: groupName instead of accountId and permissionSet, both optional in the contract.
  const group = await client.POST('/grants', {
    body: { userName: 'bob', groupName: 'prod-breakglass', durationMinutes: 30, ticketId: 'INC0000045' },
  })
  t.equal(group.response.status, 201, JSON.stringify(group.error))
  const groupGrant = group.data && 'id' in group.data ? group.data : undefined
  t.match(groupGrant, { status: 'active', groupName: 'prod-breakglass', accountId: null, permissionSet: null })
  const mixed = await client.POST('/grants', {
    body: {
      userName: 'bob',
      groupName: 'prod-breakglass',
      accountId: '111111111111',
      durationMinutes: 30,
      ticketId: 'INC0000046',
    },
  })
  t.equal(mixed.response.status, 400, 'a mix of the two kinds is refused')
  t.equal(mixed.error?.code, 'VALIDATION_FAILED')

  const served = await (await fetch(`${baseUrl}/openapi.json`)).json()
  t.equal((served as { openapi: string }).openapi, '3.0.3', 'the service serves the contract')
})
