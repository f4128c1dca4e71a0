import t from 'tap'
import type { ServiceNowSettings } from '../src/adapters/servicenow.ts'
import { build, grantBody, PROD } from './helpers/app.ts'
import { expectStatus, expectStatuses } from './helpers/http-status.ts'
import { startMoto } from './helpers/moto.ts'
import { ServiceNowStandIn } from './helpers/servicenow-standin.ts'
import { bearer } from './helpers/tokens.ts'

const moto = await startMoto(t)
const MINUTE = 60_000

type Built = Awaited<ReturnType<typeof build>>

async function standIn(t: { teardown(fn: () => unknown): void }) {
  const snow = new ServiceNowStandIn()
  await snow.start()
  t.teardown(() => snow.stop())
  return snow
}

const oauth = (snow: ServiceNowStandIn): ServiceNowSettings => ({
  url: snow.url,
  credentials: { kind: 'oauth', clientId: snow.clientId, clientSecret: snow.clientSecret },
  timeoutMs: 2000,
})

const sweep = async (app: Built['app']) =>
  (await app.inject({ method: 'POST', url: '/revocations', headers: bearer() })).json()
const auditActions = async (app: Built['app'], query: string) =>
  (await app.inject({ method: 'GET', url: `/audit?${query}`, headers: bearer() })).json().items as {
    action: string
    detail: string
  }[]

t.test(
  'a grant’s activation and end appear as work notes on its change, once each, saying who, what, where and until when',
  async (t) => {
    const snow = await standIn(t)
    snow.addTicket('change_request', { number: 'CHG0001234', state: '-1', approval: 'approved' })
    const { app, clock } = await build(t, moto, { serviceNow: { settings: oauth(snow) } })

    const grant = (
      await app.inject({
        method: 'POST',
        url: '/grants',
        headers: bearer(),
        payload: grantBody({ durationMinutes: 30 }),
      })
    ).json()
    await app.flushNotifications()

    const notes = snow.notesOn('CHG0001234')
    t.equal(notes.length, 1, notes.join('\n'))
    t.match(
      notes[0],
      /^\[jit-access\] Access granted: AdministratorAccess on AWS account 111111111111 for alice\. Until /,
    )
    t.match(notes[0], new RegExp(`Until ${grant.expiresAt.replace(/[.]/g, '\\.')}`))
    t.match(notes[0], new RegExp(`Grant ${grant.id}; jit-access event `))

    clock.advanceMinutes(31)
    t.match(await sweep(app), { revoked: 1, undelivered: 0 })
    await app.flushNotifications()
    const after = snow.notesOn('CHG0001234')
    t.equal(after.length, 2)
    t.match(after[1], /^\[jit-access\] Access expired: .* \(by system:sweep, /, String(after[1]))
    t.equal(
      snow.requests.filter((r) => r === 'POST /oauth_token.do').length,
      1,
      'one token serves every call until it expires',
    )
    t.equal(
      snow.requests.filter((r) => r.startsWith('GET /api/now/table/change_request')).length,
      1,
      'the sys_id is looked up once',
    )
  },
)

t.test(
  'basic auth for a dedicated integration user works as well; a ticket with another prefix gets no note',
  async (t) => {
    const snow = await standIn(t)
    snow.addTicket('incident', { number: 'INC0000042', state: '2' })
    const settings: ServiceNowSettings = {
      url: snow.url,
      credentials: { kind: 'basic', username: snow.username, password: snow.password },
    }
    const { app } = await build(t, moto, { serviceNow: { settings } })

    await app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: grantBody({ ticketId: 'INC0000042' }),
    })
    await app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: grantBody({ userName: 'bob', ticketId: 'PRB0000001', accountId: PROD }),
    })
    await app.flushNotifications()

    t.equal(snow.notesOn('INC0000042').length, 1)
    t.notOk(
      snow.requests.some((r) => r.includes('oauth')),
      'no token endpoint with basic auth',
    )
    t.equal(snow.journal.length, 1, 'PRB is not a configured prefix: nothing written')
  },
)

t.test(
  'a process that dies between the commit and the note: the next sweep delivers the note exactly once',
  async (t) => {
    const snow = await standIn(t)
    snow.addTicket('change_request', { number: 'CHG0001234', state: '-1', approval: 'approved' })
    const { instances, clock } = await build(t, moto, { instances: 2, serviceNow: { settings: oauth(snow) } })
    const [dying, survivor] = instances as [Built['app'], Built['app']]

    // The first process's note never arrives: it is held, as if the process froze at the call, then died.
    snow.inject('note', { kind: 'hold' })
    const response = await dying.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() })
    expectStatus(t, response, 201, 'the grant never waits for ServiceNow')
    await new Promise((resolve) => setTimeout(resolve, 200))
    t.equal(snow.heldCount(), 1)
    t.equal(snow.notesOn('CHG0001234').length, 0)

    t.match(
      await sweep(survivor),
      { undelivered: 0 },
      'before the writer’s claim runs out, the sweep leaves its message alone',
    )
    t.equal(snow.notesOn('CHG0001234').length, 0)

    clock.advance(61_000)
    await sweep(survivor)
    t.equal(snow.notesOn('CHG0001234').length, 1, 'delivered by the next sweep')
    snow.releaseHeld()
    await dying.flushNotifications()
    clock.advance(30 * MINUTE)
    await sweep(survivor)
    t.equal(
      snow.notesOn('CHG0001234').length,
      1,
      `exactly once: the dead process’s attempt and later sweeps add nothing: ${snow.requests.join(', ')}`,
    )
  },
)

t.test('an answer lost after the note was written: the retry finds the note and adds no second one', async (t) => {
  const snow = await standIn(t)
  snow.addTicket('change_request', { number: 'CHG0001234', state: '-1', approval: 'approved' })
  const { app, clock } = await build(t, moto, { serviceNow: { settings: oauth(snow) } })

  snow.inject('note', { kind: 'drop-after-write' })
  await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() })
  await app.flushNotifications()
  t.equal(snow.notesOn('CHG0001234').length, 1)

  clock.advance(40_000)
  t.match(await sweep(app), { undelivered: 0 })
  t.equal(snow.notesOn('CHG0001234').length, 1, 'no duplicate')
  t.ok(snow.requests.includes('GET /api/now/table/sys_journal_field'), 'the redelivery looked first')
})

t.test(
  'a ServiceNow outage delays notes but never a grant; they are delivered once it is back, honouring Retry-After',
  async (t) => {
    const snow = await standIn(t)
    snow.addTicket('change_request', { number: 'CHG0001234', state: '-1', approval: 'approved' })
    const { app, clock, hasAssignment } = await build(t, moto, { serviceNow: { settings: oauth(snow) } })
    snow.inject('any', { kind: 'status', status: 429, headers: { 'retry-after': '300' } }, Infinity)

    const started = Date.now()
    const responses = await Promise.all(
      ['alice', 'bob'].map((userName) =>
        app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody({ userName }) }),
      ),
    )
    expectStatuses(t, responses, [201, 201])
    t.ok(Date.now() - started < 5000, 'answered without waiting for ServiceNow')
    t.ok(await hasAssignment('alice', PROD, 'AdministratorAccess'))
    await app.flushNotifications()

    snow.clearFaults()
    clock.advance(120_000)
    t.match(await sweep(app), { undelivered: 0 }, 'nothing is due before the Retry-After')
    t.equal(snow.notesOn('CHG0001234').length, 0)
    clock.advance(200_000)
    t.match(await sweep(app), { undelivered: 0 })
    t.equal(snow.notesOn('CHG0001234').length, 2, 'both notes, after the pause ServiceNow asked for')
  },
)

t.test(
  'a note that cannot be delivered is given up on after the bounded time, audited and alerted; a missing ticket at once',
  async (t) => {
    const snow = await standIn(t)
    snow.addTicket('change_request', { number: 'CHG0001234', state: '-1', approval: 'approved' })
    const { app, clock } = await build(t, moto, { serviceNow: { settings: oauth(snow) }, outboxGiveUpMs: 30 * MINUTE })
    snow.inject('note', { kind: 'status', status: 503 }, Infinity)

    const grant = (await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() })).json()
    await app.flushNotifications()
    clock.advanceMinutes(10)
    t.match(await sweep(app), { undelivered: 1 })
    clock.advanceMinutes(25)
    t.match(await sweep(app), { undelivered: 0 })

    const failed = await auditActions(app, `grantId=${grant.id}&action=grant.delivery_failed`)
    t.equal(failed.length, 1)
    t.match(failed[0]?.detail, /work note on the ticket for grant\.activated .* not delivered within 30 minutes/)

    const missing = (
      await app.inject({
        method: 'POST',
        url: '/grants',
        headers: bearer(),
        payload: grantBody({ userName: 'bob', ticketId: 'CHG0009999' }),
      })
    ).json()
    await app.flushNotifications()
    const givenUp = await auditActions(app, `grantId=${missing.id}&action=grant.delivery_failed`)
    t.match(
      givenUp[0]?.detail,
      /cannot be delivered.*does not exist/,
      'a ticket ServiceNow does not have is given up on at once',
    )
  },
)

t.test(
  'an expired token is fetched again once; concurrent deliveries share one token; credentials never reach a log',
  async (t) => {
    const snow = await standIn(t)
    snow.addTicket('change_request', { number: 'CHG0001234', state: '-1', approval: 'approved' })
    const { app, logLines } = await build(t, moto, { serviceNow: { settings: oauth(snow) } })
    await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() })
    await app.flushNotifications()

    snow.revokeTokens()
    await Promise.all(
      ['AdministratorAccess', 'ReadOnlyAccess'].map((permissionSet) =>
        app.inject({
          method: 'POST',
          url: '/grants',
          headers: bearer(),
          payload: grantBody({ userName: 'bob', permissionSet }),
        }),
      ),
    )
    await app.flushNotifications()
    t.equal(snow.notesOn('CHG0001234').length, 3, 'alice’s grant and bob’s two are noted')
    t.equal(
      snow.requests.filter((r) => r === 'POST /oauth_token.do').length,
      2,
      'one token at first, one more after it was revoked, shared',
    )

    const wrongSecret = `wrong-${snow.clientSecret.slice(-8)}`
    const wrong = await build(t, moto, {
      serviceNow: {
        settings: {
          ...oauth(snow),
          credentials: { kind: 'oauth', clientId: snow.clientId, clientSecret: wrongSecret },
        },
      },
    })
    const response = await wrong.app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() })
    expectStatus(t, response, 201, 'refused credentials never fail a grant')
    await wrong.app.flushNotifications()
    const basic = await build(t, moto, {
      serviceNow: {
        settings: { url: snow.url, credentials: { kind: 'basic', username: snow.username, password: snow.password } },
      },
    })
    await basic.app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: grantBody({ userName: 'bob' }),
    })
    await basic.app.flushNotifications()
    const secrets = [
      snow.clientSecret,
      wrongSecret,
      snow.password,
      Buffer.from(`${snow.username}:${snow.password}`).toString('base64'),
    ]
    for (const line of [...logLines, ...wrong.logLines, ...basic.logLines]) {
      const leaked = secrets.find((secret) => line.includes(secret))
      if (leaked) t.fail(`a log line holds a secret: ${line.slice(0, 200)}`)
    }
    t.ok(
      wrong.logLines.some((line) => /message not delivered/.test(line)),
      'the refusal itself is logged',
    )
  },
)

t.test('a delivery that outlasts its budget is aborted, not left running into the next claimant’s', async (t) => {
  const snow = await standIn(t)
  snow.addTicket('change_request', { number: 'CHG0001234', state: '-1', approval: 'approved' })
  // The client's own timeout (10 s) would not end it in time: the budget must.
  const { app, clock } = await build(t, moto, {
    serviceNow: { settings: { ...oauth(snow), timeoutMs: 10_000 } },
    outboxDeliveryBudgetMs: 300,
  })
  snow.inject('note', { kind: 'hold' })

  await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() })
  const started = Date.now()
  await app.flushNotifications()
  t.ok(Date.now() - started < 2000, `the held delivery gave up after its budget (${Date.now() - started} ms)`)
  snow.releaseHeld()
  clock.advance(40_000)
  t.match(await sweep(app), { undelivered: 0 })
  t.equal(snow.notesOn('CHG0001234').length, 1, 'delivered by the next attempt')
})

t.test(
  'approval verification: an unapproved or out-of-window change is refused 403 and audited; an approved one is granted',
  async (t) => {
    const snow = await standIn(t)
    const verify = { windowLeadMs: 15 * MINUTE, retryAfterSeconds: 30 }
    const { app, clock, hasAssignment } = await build(t, moto, { serviceNow: { settings: oauth(snow), verify } })
    const at = (minutes: number) =>
      new Date(clock.now().getTime() + minutes * MINUTE)
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
      state: '-3',
      approval: 'requested',
      start_date: at(-10),
      end_date: at(120),
    })
    snow.addTicket('change_request', {
      number: 'CHG0000003',
      state: '-1',
      approval: 'approved',
      start_date: at(-10),
      end_date: at(30),
    })
    snow.addTicket('change_request', {
      number: 'CHG0000004',
      state: '3',
      approval: 'approved',
      start_date: at(-10),
      end_date: at(120),
    })
    snow.addTicket('incident', { number: 'INC0000005', state: '7' })
    const post = (ticketId: string, extra: Record<string, unknown> = {}) =>
      app.inject({
        method: 'POST',
        url: '/grants',
        headers: bearer(),
        payload: grantBody({ ticketId, durationMinutes: 60, ...extra }),
      })

    const approved = await post('CHG0000001')
    t.equal(approved.statusCode, 201, approved.body)
    t.ok(await hasAssignment('alice', PROD, 'AdministratorAccess'))

    const cases: [string, string, RegExp][] = [
      ['CHG0000002', 'ticketApproval', /approval is 'requested'/],
      ['CHG0000003', 'ticketWindow', /outside the planned window/],
      ['CHG0000004', 'ticketState', /state 3/],
      ['INC0000005', 'ticketState', /not open/],
      ['CHG0000099', 'ticket', /does not exist/],
    ]
    for (const [ticketId, failedCondition, detail] of cases) {
      const refused = await post(ticketId, { userName: 'bob' })
      t.equal(refused.statusCode, 403, `${ticketId}: ${refused.body}`)
      t.match(refused.json(), { code: 'TICKET_NOT_APPROVED', failedCondition, detail }, ticketId)
      const denied = await auditActions(app, `ticketId=${ticketId}&action=grant.denied`)
      t.equal(denied.length, 1, `${ticketId}: the refusal is audited`)
    }

    const tooLong = await app.inject({
      method: 'PATCH',
      url: `/grants/${approved.json().id}`,
      headers: { ...bearer(), 'content-type': 'application/merge-patch+json' },
      payload: JSON.stringify({ expiresAt: new Date(clock.now().getTime() + 180 * MINUTE).toISOString() }),
    })
    expectStatus(t, tooLong, 403, 'an extension past the change’s planned end is refused too')
    t.equal(tooLong.json().code, 'TICKET_NOT_APPROVED')

    snow.inject('read', { kind: 'status', status: 503 }, Infinity)
    snow.addTicket('change_request', {
      number: 'CHG0000006',
      state: '-1',
      approval: 'approved',
      start_date: at(-10),
      end_date: at(120),
    })
    const unreachable = await post('CHG0000006', { userName: 'bob' })
    expectStatus(t, unreachable, 503, 'fails closed when ServiceNow cannot be asked')
    t.equal(unreachable.headers['retry-after'], '30')
  },
)

t.test('a scheduled grant whose change was cancelled before its window is denied at its start', async (t) => {
  const snow = await standIn(t)
  const { app, clock, hasAssignment } = await build(t, moto, {
    serviceNow: { settings: oauth(snow), verify: { windowLeadMs: 15 * MINUTE, retryAfterSeconds: 30 } },
  })
  const at = (minutes: number) =>
    new Date(clock.now().getTime() + minutes * MINUTE)
      .toISOString()
      .replace('T', ' ')
      .replace(/\.\d+Z$/, '')
  snow.addTicket('change_request', {
    number: 'CHG0000007',
    state: '-2',
    approval: 'approved',
    start_date: at(60),
    end_date: at(180),
  })
  const startsAt = new Date(clock.now().getTime() + 60 * MINUTE).toISOString()

  const scheduled = await app.inject({
    method: 'POST',
    url: '/grants',
    headers: bearer(),
    payload: grantBody({ ticketId: 'CHG0000007', startsAt, durationMinutes: 60 }),
  })
  t.equal(scheduled.statusCode, 201, scheduled.body)
  const record = snow.records.get('change_request')?.[0] as Record<string, string>
  record.state = '4'

  clock.advanceMinutes(61)
  t.match(await sweep(app), { denied: 1 })
  t.match((await app.inject({ method: 'GET', url: `/grants/${scheduled.json().id}`, headers: bearer() })).json(), {
    status: 'denied',
    failureReason: /state 4/,
  })
  t.notOk(await hasAssignment('alice', PROD, 'AdministratorAccess'))
  await app.flushNotifications()
  t.match(
    snow.notesOn('CHG0000007')[0],
    /^\[jit-access\] Access denied/,
    'the denial at the start is noted on the change',
  )
})
