import t from 'tap'
import { build, grantBody, PROD } from './helpers/app.ts'
import type { FaultProxy } from './helpers/fault-proxy.ts'
import { expectStatus } from './helpers/http-status.ts'
import { startMoto } from './helpers/moto.ts'
import { bearer } from './helpers/tokens.ts'

// What a grant and its revocation cost in AWS calls, counted at the proxy. The figures are the design's:
// each state change is one write that also answers what it left, so nothing is read back.
const moto = await startMoto(t)

const IDENTITY_CENTER = [
  'CreateAccountAssignment',
  'DeleteAccountAssignment',
  'DescribeAccountAssignmentCreationStatus',
  'DescribeAccountAssignmentDeletionStatus',
  'ListAccountAssignmentsForPrincipal',
  'ListPermissionSets',
  'DescribePermissionSet',
]
const DYNAMODB = ['GetItem', 'PutItem', 'UpdateItem', 'DeleteItem', 'TransactWriteItems', 'Query']

function counter(proxy: FaultProxy) {
  const before = { ...proxy.calls }
  return () => {
    const delta = (ops: string[]) => ops.reduce((sum, op) => sum + (proxy.calls[op] ?? 0) - (before[op] ?? 0), 0)
    const byOperation = Object.fromEntries(
      Object.keys(proxy.calls)
        .map((op) => [op, (proxy.calls[op] ?? 0) - (before[op] ?? 0)])
        .filter(([, n]) => n !== 0),
    )
    return { identityCenter: delta(IDENTITY_CENTER), dynamodb: delta(DYNAMODB), byOperation }
  }
}

t.test(
  'a warm grant: 2 Identity Center calls and 2 DynamoDB writes, no reads; its SNS message costs one removal from the outbox after',
  async (t) => {
    const { app, proxy } = await build(t, moto, { proxy: true })
    const cold = await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() })
    expectStatus(t, cold, 201)

    const count = counter(proxy as FaultProxy)
    const warm = await app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: grantBody({ userName: 'bob', accountId: PROD }),
    })
    expectStatus(t, warm, 201)
    const calls = count()
    // Look for a permanent assignment, create ours.
    t.equal(calls.identityCenter, 2, JSON.stringify(calls.byOperation))
    // Record the grant with its coverage (lease taken, 'creating' intended), activate (with 'present', the lease
    // given up, and the activation's SNS message put in the outbox); after the answer, the delivered message's removal.
    t.equal(calls.dynamodb, 3, JSON.stringify(calls.byOperation))
    t.equal(calls.byOperation.DeleteItem, 1, 'the one message delivered leaves the outbox')
    t.equal(calls.byOperation.GetItem, undefined, 'nothing is read back')
  },
)

t.test(
  'a request no rule could allow spends no Identity Center call; one denied on group membership spends one look',
  async (t) => {
    const { app, proxy } = await build(t, moto, { proxy: true })
    expectStatus(t, await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() }), 201)

    let count = counter(proxy as FaultProxy)
    const tooLong = await app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: grantBody({ durationMinutes: 600, ticketId: 'CHG0001001' }),
    })
    t.match(tooLong.json(), { code: 'POLICY_DENIED' })
    t.equal(count().identityCenter, 0, JSON.stringify(count().byOperation))

    count = counter(proxy as FaultProxy)
    // dave is in no group the policy names: only the group lookup can tell.
    const notInGroup = await app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: grantBody({ userName: 'dave', ticketId: 'CHG0001002' }),
    })
    t.match(notInGroup.json(), { code: 'POLICY_DENIED', failedCondition: 'principal' })
    t.ok(count().identityCenter <= 1, JSON.stringify(count().byOperation))
  },
)

t.test('a grant whose assignment another grant already holds changes nothing in Identity Center', async (t) => {
  const { app, proxy } = await build(t, moto, { proxy: true })
  expectStatus(t, await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() }), 201)

  const count = counter(proxy as FaultProxy)
  const second = await app.inject({
    method: 'POST',
    url: '/grants',
    headers: bearer(),
    payload: grantBody({ ticketId: 'CHG0009999' }),
  })
  expectStatus(t, second, 201)
  t.equal(second.json().coveredBy, 'jit')
  const calls = count()
  // At most the look for a permanent assignment, asked while the lease was tried; no creation.
  t.ok(calls.identityCenter <= 1, JSON.stringify(calls.byOperation))
  t.equal(calls.byOperation.CreateAccountAssignment, undefined)
  // Record the grant (taking the idle lease), a lease check that shows the access in place, the lease's
  // release, activate; the activation's SNS message leaves the outbox.
  t.equal(calls.dynamodb, 5, JSON.stringify(calls.byOperation))
})

t.test(
  'an expired grant is revoked with 1 Identity Center call and 4 DynamoDB writes besides the sweep query',
  async (t) => {
    const { app, proxy, clock, hasAssignment } = await build(t, moto, { proxy: true })
    const granted = await app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: grantBody({ durationMinutes: 15 }),
    })
    expectStatus(t, granted, 201)
    // The assignment's periodic check (every 5 minutes) is counted elsewhere: let it run before expiry.
    for (const minutes of [6, 6]) {
      clock.advanceMinutes(minutes)
      t.match((await app.inject({ method: 'POST', url: '/revocations', headers: bearer() })).json(), {
        revoked: 0,
        failed: 0,
      })
    }
    clock.advanceMinutes(3)

    const count = counter(proxy as FaultProxy)
    const swept = await app.inject({ method: 'POST', url: '/revocations', headers: bearer() })
    expectStatus(t, swept, 200)
    t.match(swept.json(), { revoked: 1, failed: 0 })
    t.notOk(await hasAssignment('alice', PROD, 'AdministratorAccess'))
    const calls = count()
    t.equal(calls.identityCenter, 1, JSON.stringify(calls.byOperation))
    // Move to 'revoking', take the lease, record 'deleting', end the grant (dropping the idle record and lease);
    // the expiry's SNS message leaves the outbox. Per run, not per grant: the sweep's own lease, taken and given
    // up (one sweep at a time across processes). The queries are the sweep's: grants due, messages due.
    const sweepLease = 2
    t.equal(calls.dynamodb - (calls.byOperation.Query ?? 0) - sweepLease, 5, JSON.stringify(calls.byOperation))
    t.equal(calls.byOperation.Query, 2, JSON.stringify(calls.byOperation))
    t.equal(calls.byOperation.GetItem, undefined, 'nothing is read back')
  },
)
