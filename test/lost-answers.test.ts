import { CreateAccountAssignmentCommand, SSOAdminClient } from '@aws-sdk/client-sso-admin'
import t from 'tap'
import { CONFLICT_PATIENCE_MS, CREATION_SETTLE_MS, ORPHAN_WATCH_MS } from '../src/core/coverage.ts'
import { build, grantBody, PROD, STAGING } from './helpers/app.ts'
import type { Fault } from './helpers/fault-proxy.ts'
import { startMoto } from './helpers/moto.ts'
import { bearer } from './helpers/tokens.ts'

/*
 * Identity Center as it really behaves (the proxy's AWS-like world): an accepted assignment is listed only
 * once provisioned, a removal is listed until done, no operation makes a second copy, and overlapping ones
 * get ConflictException. Answers are lost after AWS acted. Whatever is lost, access must end with its grant,
 * and nothing of ours may ever be taken for a permanent assignment.
 */
const moto = await startMoto(t)

type World = Awaited<ReturnType<typeof build>>

const getGrant = async (app: World['app'], id: string) =>
  (await app.inject({ method: 'GET', url: `/grants/${id}`, headers: bearer() })).json()
const sweep = async (app: World['app']) =>
  (await app.inject({ method: 'POST', url: '/revocations', headers: bearer() })).json()

/** How a creation's answer gets lost. */
const LOST_CREATIONS: { name: string; lose: (proxy: NonNullable<World['proxy']>) => void }[] = [
  {
    name: 'a 500 after AWS acted',
    lose: (proxy) => proxy.inject('CreateAccountAssignment', 'server-error-after-upstream', 1),
  },
  {
    name: 'a connection dropped after AWS acted',
    lose: (proxy) => proxy.inject('CreateAccountAssignment', 'drop-after-upstream', 1),
  },
  {
    name: 'throttled status polls',
    lose: (proxy) => proxy.inject('DescribeAccountAssignmentCreationStatus', 'throttle'),
  },
]

for (const { name, lose } of LOST_CREATIONS) {
  t.test(
    `a creation whose answer is lost (${name}) is never taken for a permanent assignment, and no access outlives the grant`,
    async (t) => {
      // Prepare: alice has no permanent assignment; carol has a permanent one that must survive everything.
      const { app, clock, proxy, countAssignments } = await build(t, moto, { proxy: true, awsLike: true })
      lose(proxy!)

      // Act: the grant is asked for while the answer is lost. A listing that follows (the request's second: the
      // first looked for a permanent assignment) comes while AWS is still provisioning; right after it, AWS
      // finishes, so any later look lists the assignment.
      const posting = app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() })
      await Promise.race([proxy!.answered('ListAccountAssignmentsForPrincipal', 2), posting])
      proxy!.awsWorld!.settleAll()
      const response = await posting
      const carols = await app.inject({
        method: 'POST',
        url: '/grants',
        headers: bearer(),
        payload: grantBody({ userName: 'carol', accountId: STAGING, permissionSet: 'ReadOnlyAccess' }),
      })
      const id = response.json().id ?? response.json().grantId
      proxy!.clear()
      clock.advanceMinutes(2)
      const confirmed = await sweep(app)

      // Assess: the grant is active on our own assignment, exactly one exists, and carol's is the permanent one.
      t.ok([201, 202, 503].includes(response.statusCode), `answered ${response.statusCode}: ${response.body}`)
      t.not(response.json().coveredBy, 'pre-existing', 'never answered as covered by a permanent assignment')
      t.match(confirmed, { failed: 0, remaining: 0 })
      t.match(
        await getGrant(app, id),
        { status: 'active', coveredBy: 'jit' },
        'our own assignment, not a permanent one',
      )
      t.equal(
        await countAssignments('alice', PROD, 'AdministratorAccess'),
        1,
        'one assignment, however often the creation was sent',
      )
      t.match(carols.json(), { coveredBy: 'pre-existing' })

      // Act: the grant ends early, carol's expires.
      const ended = await app.inject({ method: 'DELETE', url: `/grants/${id}`, headers: bearer() })
      clock.advanceMinutes(61)
      await sweep(app)
      clock.advanceMinutes(2)
      const last = await sweep(app)

      // Assess: alice's access is gone; carol's permanent assignment is untouched.
      t.ok([200, 202].includes(ended.statusCode), ended.body)
      t.match(last, { failed: 0, remaining: 0 })
      t.equal((await getGrant(app, id)).status, 'revoked')
      t.equal(await countAssignments('alice', PROD, 'AdministratorAccess'), 0, 'no access left behind')
      t.equal(
        await countAssignments('carol', STAGING, 'ReadOnlyAccess'),
        1,
        'the permanent assignment is never removed',
      )
    },
  )
}

t.test(
  'a grant that ends while its lost creation is still provisioning leaves nothing behind once the creation shows',
  async (t) => {
    const { app, clock, proxy, countAssignments } = await build(t, moto, { proxy: true, awsLike: true })
    proxy!.inject('CreateAccountAssignment', 'drop-after-upstream', 1)
    const posted = (
      await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() })
    ).json()
    const id = posted.id ?? posted.grantId

    const ended = await app.inject({ method: 'DELETE', url: `/grants/${id}`, headers: bearer() })
    clock.advanceMinutes(1)
    const swept = await sweep(app)

    t.equal(ended.json().status, 'revoking', `not finished while the creation is unconfirmed: ${ended.body}`)
    t.match(swept, { revoked: 1, failed: 0, remaining: 0 })
    t.equal(await countAssignments('alice', PROD, 'AdministratorAccess'), 0)
  },
)

for (const fault of ['drop-after-upstream', 'server-error-after-upstream'] as Fault[]) {
  t.test(
    `a removal whose answer is lost (${fault}) is finished, and a grant arriving meanwhile gets its own assignment, not the one going away`,
    async (t) => {
      // Prepare: alice holds the access through one grant.
      const { app, clock, proxy, countAssignments } = await build(t, moto, { proxy: true, awsLike: true })
      const first = (
        await app.inject({
          method: 'POST',
          url: '/grants',
          headers: bearer(),
          payload: grantBody({ ticketId: 'CHG0000001' }),
        })
      ).json()
      t.equal(first.status, 'active', JSON.stringify(first))

      // Act: its removal is accepted but the answer is lost; while AWS is still removing it (and listing it), a new grant arrives.
      proxy!.inject('DeleteAccountAssignment', fault, 1)
      const ended = await app.inject({ method: 'DELETE', url: `/grants/${first.id}`, headers: bearer() })
      const second = await app.inject({
        method: 'POST',
        url: '/grants',
        headers: bearer(),
        payload: grantBody({ ticketId: 'CHG0000002' }),
      })
      clock.advanceMinutes(2)
      // The two grants meet at the lease; one may wait for the next sweep while the other's creation provisions.
      const swept = [await sweep(app)]
      if (swept[0].remaining > 0) {
        clock.advanceMinutes(1)
        swept.push(await sweep(app))
      }

      // Assess: the removal finished, and the newcomer holds an assignment that exists (not the one that went away).
      t.ok([200, 202].includes(ended.statusCode), ended.body)
      t.not(second.json().status, 'active', `not activated on an assignment being removed: ${second.body}`)
      t.match(swept.at(-1), { failed: 0, remaining: 0 }, `finished within two sweeps: ${JSON.stringify(swept)}`)
      t.equal((await getGrant(app, first.id)).status, 'revoked')
      t.match(await getGrant(app, second.json().id), { status: 'active', coveredBy: 'jit' })
      t.equal(await countAssignments('alice', PROD, 'AdministratorAccess'), 1, "the newcomer's access is really there")

      // And the drift check a few minutes later finds nothing amiss.
      clock.advanceMinutes(6)
      t.match(await sweep(app), { drifted: 0, failed: 0 })
      t.equal((await getGrant(app, second.json().id)).status, 'active')
    },
  )
}

t.test(
  'an assignment of ours that shows only after its grant has ended and the settle window has passed is found, removed, audited and published',
  async (t) => {
    // Prepare: AWS takes longer than the settle window to provision an accepted creation whose answer was lost.
    const { app, clock, proxy, countAssignments } = await build(t, moto, {
      proxy: true,
      awsLike: { provisioningMs: CREATION_SETTLE_MS + 2 * 60_000 + 30_000 },
    })
    proxy!.inject('CreateAccountAssignment', 'drop-after-upstream', 1)
    const id = (await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() })).json().id
    await app.inject({ method: 'DELETE', url: `/grants/${id}`, headers: bearer() })

    // Act: the grant is given up on once the settle window passes; minutes later the assignment shows up.
    clock.advance(CREATION_SETTLE_MS + 1000)
    const givenUp = await sweep(app)
    t.equal((await getGrant(app, id)).status, 'revoked', 'the grant itself is ended')
    t.equal(await countAssignments('alice', PROD, 'AdministratorAccess'), 1, 'AWS still has the creation under way')
    clock.advanceMinutes(2)
    const before = await sweep(app)
    t.equal(await countAssignments('alice', PROD, 'AdministratorAccess'), 1, 'not yet provisioned, so not yet listed')
    // The next sweep starts a little less than a minute later (a sweep takes time; schedules are not exact).
    clock.advance(50_000)
    const found = await sweep(app)

    // Assess: the orphan is removed by the first sweep after it shows, with a drift event naming its grant.
    t.match(givenUp, { revoked: 1, failed: 0 })
    t.match(before, { drifted: 0, checked: 1 }, 'watched every sweep')
    t.match(found, { drifted: 1, failed: 0 }, `reported as drift: ${JSON.stringify(found)}`)
    t.equal(await countAssignments('alice', PROD, 'AdministratorAccess'), 0, 'no access left behind')
    const drift = (
      await app.inject({ method: 'GET', url: `/audit?grantId=${id}&action=grant.drift_detected`, headers: bearer() })
    ).json().items
    t.equal(drift.length, 1, 'one drift event, for the grant the assignment was made for')
    t.match(drift[0], { userName: 'alice', accountId: PROD, ticketId: 'CHG0001234', detail: /appeared after/ })

    // A watched record is dropped once the watch is over: nothing keeps looking forever.
    clock.advance(ORPHAN_WATCH_MS)
    await sweep(app)
    const calls = proxy!.calls.ListAccountAssignmentsForPrincipal ?? 0
    clock.advanceMinutes(10)
    await sweep(app)
    t.equal(proxy!.calls.ListAccountAssignmentsForPrincipal ?? 0, calls, 'no more looks once the watch is over')
  },
)

t.test(
  'a permanent assignment made by an administrator after our removal was confirmed is permanent to a later grant',
  async (t) => {
    const { app, clock, clients, instance, seeded, countAssignments } = await build(t, moto, {
      proxy: true,
      awsLike: true,
    })
    const first = (await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() })).json()
    t.equal(
      (await app.inject({ method: 'DELETE', url: `/grants/${first.id}`, headers: bearer() })).json().status,
      'revoked',
    )

    // An administrator assigns it by hand, straight to Identity Center.
    const { CreateAccountAssignmentCommand } = await import('@aws-sdk/client-sso-admin')
    await clients.ssoAdmin.send(
      new CreateAccountAssignmentCommand({
        InstanceArn: instance.instanceArn,
        TargetId: PROD,
        TargetType: 'AWS_ACCOUNT',
        PermissionSetArn: seeded.permissionSetArns.AdministratorAccess,
        PrincipalType: 'USER',
        PrincipalId: seeded.userIds.alice,
      }),
    )
    const later = (await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() })).json()
    await app.inject({ method: 'DELETE', url: `/grants/${later.id}`, headers: bearer() })
    clock.advanceMinutes(2)
    await sweep(app)

    t.equal(later.coveredBy, 'pre-existing')
    t.equal(
      await countAssignments('alice', PROD, 'AdministratorAccess'),
      1,
      "the administrator's assignment is left alone",
    )
  },
)

/** An operation on alice's admin assignment that AWS never finishes: every other operation on it meets ConflictException. */
function stuckOperation(world: World, kind: 'creation' | 'deletion') {
  const { proxy, seeded, instance } = world
  ;(proxy!.awsWorld as unknown as { recorded: unknown[] }).recorded.push({
    kind,
    requestId: `stuck-${kind}`,
    assignment: {
      InstanceArn: instance.instanceArn,
      TargetId: PROD,
      TargetType: 'AWS_ACCOUNT',
      PermissionSetArn: seeded.permissionSetArns.AdministratorAccess,
      PrincipalType: 'USER',
      PrincipalId: seeded.userIds.alice,
    },
    createdDate: Date.now() / 1000,
    doneAt: Number.POSITIVE_INFINITY,
    changed: false,
  })
}
const alerts = (logLines: string[]) => logLines.filter((line) => line.includes('jit-access alert')).length

for (const kind of ['deletion', 'creation'] as const) {
  t.test(
    `a ${kind} that keeps meeting ConflictException is waited for a few minutes, then counted failed and alerted on every sweep until it clears`,
    async (t) => {
      const world = await build(t, moto, { proxy: true, awsLike: true })
      const { app, clock, proxy, countAssignments, logLines } = world
      let id: string
      if (kind === 'deletion') {
        id = (await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() })).json().id
        stuckOperation(world, 'deletion')
        await app.inject({ method: 'DELETE', url: `/grants/${id}`, headers: bearer() })
      } else {
        stuckOperation(world, 'creation')
        id = (await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() })).json().id
      }

      const early = []
      for (let i = 0; i < 4; i++) {
        clock.advanceMinutes(1)
        early.push(await sweep(app))
      }
      clock.advanceMinutes(2)
      const stuck = await sweep(app)
      const alertsWhileStuck = alerts(logLines)
      proxy!.awsWorld!.settleAll()
      clock.advanceMinutes(1)
      const cleared = await sweep(app)

      t.same(
        early.map((s) => s.failed),
        [0, 0, 0, 0],
        'an operation under way is waited for',
      )
      t.match(
        stuck,
        { failed: 1 },
        `one stuck for more than ${CONFLICT_PATIENCE_MS / 60_000} minutes is a failure: ${JSON.stringify(stuck)}`,
      )
      t.ok(alertsWhileStuck >= 1, 'and alerted')
      t.match(cleared, { failed: 0, remaining: 0 }, JSON.stringify(cleared))
      t.equal((await getGrant(app, id)).status, kind === 'deletion' ? 'revoked' : 'active')
      t.equal(await countAssignments('alice', PROD, 'AdministratorAccess'), kind === 'deletion' ? 0 : 1)
    },
  )
}

t.test(
  "an administrator's permanent assignment still provisioning when a grant asks for the same access is theirs, not ours: it survives the grant",
  async (t) => {
    // Prepare: an administrator creates alice's assignment directly; AWS takes 5 s to provision it.
    const { app, clock, proxy, seeded, instance, countAssignments } = await build(t, moto, {
      proxy: true,
      awsLike: { provisioningMs: 5000 },
    })
    const admin = new SSOAdminClient({ region: 'us-east-1', endpoint: proxy!.endpoint })
    await admin.send(
      new CreateAccountAssignmentCommand({
        InstanceArn: instance.instanceArn,
        TargetId: PROD,
        TargetType: 'AWS_ACCOUNT',
        PermissionSetArn: seeded.permissionSetArns.AdministratorAccess,
        PrincipalType: 'USER',
        PrincipalId: seeded.userIds.alice,
      }),
    )

    // Act: the grant is asked for while it provisions (our creation meets ConflictException), confirmed, then ended.
    const posted = await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() })
    clock.advanceMinutes(2)
    await sweep(app)
    const grant = await getGrant(app, posted.json().id)
    await app.inject({ method: 'DELETE', url: `/grants/${grant.id}`, headers: bearer() })
    clock.advanceMinutes(1)
    await sweep(app)

    // Assess
    t.ok((proxy!.injected.conflict ?? 0) >= 1, "our creation met the administrator's under way")
    t.match(grant, { status: 'active', coveredBy: 'pre-existing' })
    t.equal(
      await countAssignments('alice', PROD, 'AdministratorAccess'),
      1,
      "the administrator's assignment is left in place",
    )
  },
)

t.test(
  'a grant answered 503 at its deadline while its record waited behind another write is not recorded afterwards',
  async (t) => {
    const { app, clock, proxy, hasAssignment } = await build(t, moto, {
      proxy: true,
      awsLike: true,
      requestDeadlineMs: 600,
    })
    const bobs = (
      await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody({ userName: 'bob' }) })
    ).json()

    // Another request's audited write is slow (held at the wire; the SDK abandons it after 1 s and sends it again),
    // so the new grant's record waits its turn past its deadline.
    const held = proxy!.holdNext('TransactWriteItems')
    const ending = app.inject({ method: 'DELETE', url: `/grants/${bobs.id}`, headers: bearer() })
    await held.arrived
    const posted = await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() })
    await ending
    held.release()
    await new Promise((resolve) => setTimeout(resolve, 1500))
    clock.advanceMinutes(2)
    await sweep(app)

    t.equal(posted.statusCode, 503, posted.body)
    t.same(
      (await app.inject({ method: 'GET', url: '/grants?userName=alice', headers: bearer() })).json().items,
      [],
      'nothing recorded after the 503',
    )
    t.notOk(await hasAssignment('alice', PROD, 'AdministratorAccess'))
  },
)
