import { UpdatePermissionSetCommand } from '@aws-sdk/client-sso-admin'
import t from 'tap'
import { MIN_RELIST_MS } from '../src/adapters/identity-center.ts'
import { build, grantBody, STAGING } from './helpers/app.ts'
import type { FaultProxy } from './helpers/fault-proxy.ts'
import { expectStatus } from './helpers/http-status.ts'
import { startMoto } from './helpers/moto.ts'
import { bearer } from './helpers/tokens.ts'

// Identity Center's permission sets as the service reads them: listed on a miss, described when their details
// are older than the cache TTL. Real waits: the relisting limit is real time, not the app's clock.
const moto = await startMoto(t)
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const sessionMs = (grant: { expiresAt: string; accessEndsBy: string }) =>
  Date.parse(grant.accessEndsBy) - Date.parse(grant.expiresAt)
const HOUR = 3600_000

t.test(
  'a changed session duration reaches accessEndsBy once the cached details expire, without a restart',
  async (t) => {
    const { app, clients, instance, seeded } = await build(t, moto, { cacheTtlMs: 1000 })
    const first = await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() })
    t.equal(first.statusCode, 201, first.body)
    t.equal(sessionMs(first.json()), HOUR, 'AdministratorAccess starts at PT1H')
    const listedAt = Date.now()

    await clients.ssoAdmin.send(
      new UpdatePermissionSetCommand({
        InstanceArn: instance.instanceArn,
        PermissionSetArn: seeded.permissionSetArns.AdministratorAccess,
        SessionDuration: 'PT4H',
      }),
    )

    // Expired, but too soon to list again: the last listing still answers, rather than "no such permission set".
    await sleep(1100)
    const tooSoon = await app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: grantBody({ userName: 'bob' }),
    })
    t.equal(tooSoon.statusCode, 201, tooSoon.body)
    t.equal(sessionMs(tooSoon.json()), HOUR)

    await sleep(Math.max(0, listedAt + MIN_RELIST_MS + 100 - Date.now()))
    const refreshed = await app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: grantBody({ accountId: STAGING, ticketId: 'CHG0001235' }),
    })
    t.equal(refreshed.statusCode, 201, refreshed.body)
    t.equal(sessionMs(refreshed.json()), 4 * HOUR, 'the new session duration')
  },
)

t.test('a relisting forced by an unknown name describes no permission set whose details are still fresh', async (t) => {
  const { app, proxy } = await build(t, moto, { proxy: true })
  expectStatus(t, await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() }), 201)
  const listedAt = Date.now()
  await sleep(Math.max(0, listedAt + MIN_RELIST_MS + 100 - Date.now()))

  const before = { ...(proxy as FaultProxy).calls }
  const unknown = await app.inject({
    method: 'POST',
    url: '/grants',
    headers: bearer(),
    payload: grantBody({ permissionSet: 'NoSuchAccess' }),
  })
  t.equal(unknown.statusCode, 422, unknown.body)
  const calls = (operation: string) => ((proxy as FaultProxy).calls[operation] ?? 0) - (before[operation] ?? 0)
  t.equal(calls('ListPermissionSets'), 1, 'listed again, to find a set created since')
  t.equal(
    calls('DescribePermissionSet'),
    0,
    'however many sets there are, naming unknown ones costs a listing, not a description of each',
  )
})
