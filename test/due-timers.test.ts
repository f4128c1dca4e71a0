import t from 'tap'
import { TIMER_ACTOR, type TimerHost } from '../src/core/due-timers.ts'
import { build, grantBody, PROD } from './helpers/app.ts'
import { startMoto } from './helpers/moto.ts'
import { bearer } from './helpers/tokens.ts'

const moto = await startMoto(t)

/** Timers the test fires by hand once it has moved the manual clock: nothing sleeps. */
class HandFiredTimers implements TimerHost {
  private next = 0
  readonly pending = new Map<number, { fire: () => void; ms: number }>()
  cleared = 0

  set(fire: () => void, ms: number): unknown {
    const id = this.next++
    this.pending.set(id, { fire, ms })
    return id
  }

  clear(handle: unknown): void {
    if (this.pending.delete(handle as number)) this.cleared++
  }

  fireAll(): void {
    const due = [...this.pending.values()]
    this.pending.clear()
    for (const { fire } of due) fire()
  }
}

const HOUR = 3600_000

t.test('a grant is expired by its timer at its end, without a sweep', async (t) => {
  const timers = new HandFiredTimers()
  const { app, clock, hasAssignment } = await build(t, moto, { dueTimers: { horizonMs: 2 * HOUR, timers } })
  const created = await app.inject({
    method: 'POST',
    url: '/grants',
    headers: bearer(),
    payload: grantBody({ durationMinutes: 60 }),
  })
  t.equal(created.statusCode, 201, created.body)
  t.same(
    [...timers.pending.values()].map(({ ms }) => ms),
    [HOUR],
    'armed for its end',
  )

  clock.advanceMinutes(60)
  timers.fireAll()
  await app.dueTimers?.idle()

  const grant = (await app.inject({ method: 'GET', url: `/grants/${created.json().id}`, headers: bearer() })).json()
  t.equal(grant.status, 'expired')
  t.equal(grant.endedBy, TIMER_ACTOR)
  t.notOk(await hasAssignment('alice', PROD, 'AdministratorAccess'), 'the assignment is removed')
})

t.test('a grant due beyond the horizon is armed by the sweep that runs before its end', async (t) => {
  const timers = new HandFiredTimers()
  const { app, clock, hasAssignment } = await build(t, moto, { dueTimers: { horizonMs: 90_000, timers } })
  const created = await app.inject({
    method: 'POST',
    url: '/grants',
    headers: bearer(),
    payload: grantBody({ durationMinutes: 60 }),
  })
  t.equal(created.statusCode, 201, created.body)
  t.equal(timers.pending.size, 0, 'an hour away: not armed yet')

  clock.advanceMinutes(59)
  await app.runSweep({ actor: 'system:sweep', triggeredBy: 'test' })
  t.same(
    [...timers.pending.values()].map(({ ms }) => ms),
    [60_000],
    'the sweep a minute before armed it',
  )

  clock.advanceMinutes(1)
  timers.fireAll()
  await app.dueTimers?.idle()

  const grant = (await app.inject({ method: 'GET', url: `/grants/${created.json().id}`, headers: bearer() })).json()
  t.equal(grant.status, 'expired')
  t.notOk(await hasAssignment('alice', PROD, 'AdministratorAccess'))
})

t.test('an extended grant is re-armed at its new end, and a timer that fires early leaves it active', async (t) => {
  const timers = new HandFiredTimers()
  const { app, clock, hasAssignment } = await build(t, moto, { dueTimers: { horizonMs: 4 * HOUR, timers } })
  const created = await app.inject({
    method: 'POST',
    url: '/grants',
    headers: bearer(),
    payload: grantBody({ durationMinutes: 60 }),
  })
  t.equal(created.statusCode, 201, created.body)
  const later = new Date(clock.now().getTime() + 2 * HOUR).toISOString()

  const patched = await app.inject({
    method: 'PATCH',
    url: `/grants/${created.json().id}`,
    headers: { ...bearer(), 'content-type': 'application/merge-patch+json' },
    payload: { expiresAt: later },
  })
  t.equal(patched.statusCode, 200, patched.body)
  t.same(
    [...timers.pending.values()].map(({ ms }) => ms),
    [2 * HOUR],
    'one timer, at the new end',
  )
  t.equal(timers.cleared, 1, 'the old one cleared')

  clock.advanceMinutes(60)
  timers.fireAll()
  await app.dueTimers?.idle()
  t.equal(
    (await app.inject({ method: 'GET', url: `/grants/${created.json().id}`, headers: bearer() })).json().status,
    'active',
    'not due yet',
  )
  t.ok(await hasAssignment('alice', PROD, 'AdministratorAccess'))
  t.equal(timers.pending.size, 1, 'armed again for its end')
})

t.test('a scheduled grant is started by its timer at its start', async (t) => {
  const timers = new HandFiredTimers()
  const { app, clock, hasAssignment } = await build(t, moto, { dueTimers: { horizonMs: HOUR, timers } })
  const startsAt = new Date(clock.now().getTime() + 10 * 60_000).toISOString()
  const created = await app.inject({
    method: 'POST',
    url: '/grants',
    headers: bearer(),
    payload: grantBody({ startsAt }),
  })
  t.equal(created.statusCode, 201, created.body)
  t.equal(created.json().status, 'scheduled')

  clock.advanceMinutes(10)
  timers.fireAll()
  await app.dueTimers?.idle()

  t.equal(
    (await app.inject({ method: 'GET', url: `/grants/${created.json().id}`, headers: bearer() })).json().status,
    'active',
  )
  t.ok(await hasAssignment('alice', PROD, 'AdministratorAccess'))
})

t.test('a revoked grant has its timer cleared, and closing the app clears the rest', async (t) => {
  const timers = new HandFiredTimers()
  const { app } = await build(t, moto, { dueTimers: { horizonMs: 2 * HOUR, timers } })
  const first = await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() })
  await app.inject({
    method: 'POST',
    url: '/grants',
    headers: bearer(),
    payload: grantBody({ accountId: '222222222222', permissionSet: 'ReadOnlyAccess' }),
  })
  t.equal(timers.pending.size, 2)

  const revoked = await app.inject({ method: 'DELETE', url: `/grants/${first.json().id}`, headers: bearer() })
  t.equal(revoked.statusCode, 200, revoked.body)
  t.equal(timers.pending.size, 1, 'the revoked grant needs no timer')

  await app.close()
  t.equal(timers.pending.size, 0, 'nothing is left armed after close')
})
