import t from 'tap'
import { build, grantBody, PROD, STAGING } from './helpers/app.ts'
import { checkInvariants, type Universe } from './helpers/invariants.ts'
import { startMoto } from './helpers/moto.ts'
import { bearer } from './helpers/tokens.ts'

/*
 * Behind API Gateway a request has about 30 s, and ServiceNow's REST calls time out too. Whatever AWS does, a
 * grant or revocation request answers by its deadline: 202 with the grant once it is recorded (the sweep
 * finishes it), 503 with Retry-After when nothing was recorded.
 */
const moto = await startMoto(t)

const DEADLINE_MS = 1500
/** What inject() and a loaded machine add to a request's own time. */
const SLACK_MS = 1000

const timed = async <T>(work: () => Promise<T>) => {
  const started = Date.now()
  const result = await work()
  return { result, ms: Date.now() - started }
}
const sweep = async (app: Awaited<ReturnType<typeof build>>['app']) =>
  (await app.inject({ method: 'POST', url: '/revocations', headers: bearer() })).json()

t.test(
  'a grant whose creation is held past the deadline is answered 202 with the recorded grant, and the sweep finishes it',
  async (t) => {
    const { app, clock, proxy, hasAssignment } = await build(t, moto, { awsLike: true, requestDeadlineMs: DEADLINE_MS })
    const held = proxy!.holdNext('CreateAccountAssignment')

    const { result: response, ms } = await timed(() =>
      app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() }),
    )

    t.equal(response.statusCode, 202, response.body)
    t.match(response.json(), { status: 'provisioning', userName: 'alice' })
    t.ok(ms < DEADLINE_MS + SLACK_MS, `answered in ${ms} ms`)
    held.release()
    clock.advanceMinutes(2)
    t.match(await sweep(app), { activated: 1, failed: 0, remaining: 0 })
    t.ok(await hasAssignment('alice', PROD, 'AdministratorAccess'))
  },
)

t.test(
  'a grant that cannot be recorded by the deadline is answered 503 with Retry-After, and is not recorded afterwards',
  async (t) => {
    // The group lookup hangs once: the SDK abandons it after its 1-s timeout and asks again, after the deadline.
    const { app, proxy } = await build(t, moto, { awsLike: true, requestDeadlineMs: 600 })
    proxy!.inject('ListGroupMembershipsForMember', 'hang', 1)

    const { result: response, ms } = await timed(() =>
      app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() }),
    )
    // Let the abandoned request's second lookup come back, and give it the moment it would need to record a grant.
    await proxy!.answered('ListGroupMembershipsForMember', 1)
    await new Promise((resolve) => setTimeout(resolve, 1000))

    t.equal(response.statusCode, 503, response.body)
    t.equal(response.headers['retry-after'], '5')
    t.match(response.json(), { code: 'UPSTREAM_UNAVAILABLE', requestId: String })
    t.notOk(response.json().grantId, 'nothing was recorded')
    t.ok(ms < 600 + SLACK_MS, `answered in ${ms} ms`)
    t.same(
      (await app.inject({ method: 'GET', url: '/grants', headers: bearer() })).json().items,
      [],
      'no grant recorded after the answer',
    )
    t.equal(proxy!.calls.TransactWriteItems ?? 0, 0)
  },
)

t.test(
  'an ending whose removal is held past the deadline is answered 202 revoking, and the sweep finishes it',
  async (t) => {
    const { app, clock, proxy, hasAssignment } = await build(t, moto, { awsLike: true, requestDeadlineMs: DEADLINE_MS })
    const grant = (await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() })).json()
    const held = proxy!.holdNext('DeleteAccountAssignment')

    const { result: response, ms } = await timed(() =>
      app.inject({ method: 'DELETE', url: `/grants/${grant.id}`, headers: bearer() }),
    )

    t.equal(response.statusCode, 202, response.body)
    t.equal(response.json().status, 'revoking')
    t.ok(ms < DEADLINE_MS + SLACK_MS, `answered in ${ms} ms`)
    held.release()
    clock.advanceMinutes(2)
    t.match(await sweep(app), { revoked: 1, failed: 0, remaining: 0 })
    t.notOk(await hasAssignment('alice', PROD, 'AdministratorAccess'))
  },
)

const IDENTITY_CENTER_OPERATIONS = [
  'ListAccountAssignmentsForPrincipal',
  'CreateAccountAssignment',
  'DeleteAccountAssignment',
  'DescribeAccountAssignmentCreationStatus',
  'DescribeAccountAssignmentDeletionStatus',
  'ListPermissionSets',
  'DescribePermissionSet',
]

t.test(
  'under heavy faults in front of Identity Center every request answers within the deadline, and every grant reaches a final state once they stop',
  async (t) => {
    // Prepare: 20 % throttles, 10 % 5xx and 5 % dropped connections on every Identity Center call, a low call
    // rate (so the limiter's own backoff and queue are in play), and AWS-like provisioning.
    const deadline = 3000
    const { app, clock, proxy, countAssignments } = await build(t, moto, {
      awsLike: true,
      requestDeadlineMs: deadline,
      identityCenterTps: 10,
    })
    proxy!.injectRandomly({
      probability: 0.35,
      faults: ['throttle', 'throttle', 'throttle', 'throttle', 'server-error', 'server-error', 'drop'],
      operations: IDENTITY_CENTER_OPERATIONS,
      seed: 7,
    })
    const bodies = Array.from({ length: 16 }, (_, i) =>
      grantBody({
        userName: i % 2 ? 'alice' : 'bob',
        accountId: i % 3 ? PROD : STAGING,
        permissionSet: i % 4 === 1 ? 'ReadOnlyAccess' : 'AdministratorAccess',
        ticketId: `INC${String(2_000_000 + i)}`,
      }),
    )

    // Act: the requests, then endings for some of what was recorded, all under faults.
    const posts = await Promise.all(
      bodies.map((payload) => timed(() => app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload }))),
    )
    const ids = posts.map(({ result }) => result.json().id ?? result.json().grantId).filter(Boolean) as string[]
    const deletes = await Promise.all(
      ids
        .filter((_, i) => i % 3 === 0)
        .map((id) => timed(() => app.inject({ method: 'DELETE', url: `/grants/${id}`, headers: bearer() }))),
    )

    // Assess: every answer in time, documented, and a problem body when it is an error.
    const answers = [...posts, ...deletes]
    const slowest = Math.max(...answers.map((a) => a.ms))
    t.ok(slowest < deadline + SLACK_MS, `slowest answer ${slowest} ms against a ${deadline}-ms deadline`)
    t.same(
      answers.filter((a) => ![200, 201, 202, 503].includes(a.result.statusCode)).map((a) => a.result.body),
      [],
      'only 200/201/202/503',
    )
    for (const { result } of answers.filter((a) => a.result.statusCode >= 400))
      t.match(result.headers['content-type'], /^application\/problem\+json/)
    // A 3-s deadline at 10 calls per second leaves room for a few dozen calls, about a third of them faulty.
    t.ok(proxy!.totalInjected() >= 5, `${proxy!.totalInjected()} faults injected ${JSON.stringify(proxy!.injected)}`)

    // Act: faults stop; sweeps run until nothing is left (each a minute apart, as the schedule runs them).
    proxy!.clear()
    const sweeps = []
    for (let i = 0; i < 4; i++) {
      clock.advanceMinutes(6)
      sweeps.push(await sweep(app))
      if (sweeps.at(-1).remaining === 0 && sweeps.at(-1).failed === 0) break
    }

    // Assess: nothing half-way, and Identity Center agrees with the grants.
    t.match(sweeps.at(-1), { failed: 0, remaining: 0 }, JSON.stringify(sweeps))
    const universe: Universe = {
      users: ['alice', 'bob'],
      accounts: [PROD, STAGING],
      permissionSets: ['AdministratorAccess', 'ReadOnlyAccess'],
      permanent: [],
    }
    const { violations } = await checkInvariants(app, universe, countAssignments)
    t.same(violations, [], 'invariants hold')
    t.comment(
      `answers ${JSON.stringify(answers.map((a) => a.result.statusCode))}, slowest ${slowest} ms, sweeps ${JSON.stringify(sweeps)}`,
    )
  },
)

t.test(
  "a request that shares another request's permission-set listing is not failed by that request's deadline",
  async (t) => {
    // Prepare: the listing that the first request starts is held at the wire past that request's deadline (with
    // SDK timeouts longer than the hold, so it is not simply sent again).
    const { app, proxy } = await build(t, moto, {
      awsLike: true,
      requestDeadlineMs: DEADLINE_MS,
      requestTimeoutMs: 5000,
    })
    const held = proxy!.holdNext('ListPermissionSets')
    const first = timed(() => app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() }))
    await held.arrived

    // Act: a second request arrives a second later and waits for the same listing; the listing is released once
    // the first request's deadline has passed, with most of the second's still to run.
    await new Promise((resolve) => setTimeout(resolve, 1000))
    const second = timed(() =>
      app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody({ userName: 'bob' }) }),
    )
    await new Promise((resolve) => setTimeout(resolve, DEADLINE_MS - 1000 + 100))
    held.release()
    const [a, b] = await Promise.all([first, second])

    // Assess: the first ran out of time; the second, on the same listing, did not.
    t.equal(a.result.statusCode, 503, a.result.body)
    t.ok(
      [201, 202].includes(b.result.statusCode),
      `the second is answered on its own time: ${b.result.statusCode} ${b.result.body}`,
    )
  },
)
