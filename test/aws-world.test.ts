import {
  CreateAccountAssignmentCommand,
  DeleteAccountAssignmentCommand,
  DescribeAccountAssignmentCreationStatusCommand,
  DescribeAccountAssignmentDeletionStatusCommand,
  ListAccountAssignmentsCommand,
  paginateListAccountAssignmentsForPrincipal,
  SSOAdminClient,
} from '@aws-sdk/client-sso-admin'
import t from 'tap'
import { build, PROD, REGION, STAGING } from './helpers/app.ts'
import { ManualClock } from './helpers/clock.ts'
import { FaultProxy } from './helpers/fault-proxy.ts'
import { startMoto } from './helpers/moto.ts'

const moto = await startMoto(t)

const PROVISIONING_MS = 60_000

/** Identity Center through the AWS-like proxy, and moto's own view beside it. */
async function world(
  t: { teardown(fn: () => unknown): void },
  options: { awsLike?: boolean | { provisioningMs?: number } } = {},
) {
  const built = await build(t, moto, { proxy: true, awsLike: options.awsLike ?? { provisioningMs: PROVISIONING_MS } })
  const proxy = built.proxy as FaultProxy
  // One attempt per call, so that what the proxy answered is what the test sees.
  const aws = new SSOAdminClient({ region: REGION, endpoint: proxy.endpoint, maxAttempts: 1 })
  const { instanceArn } = built.instance
  const assignment = (userName: string, accountId: string, permissionSet: string) => ({
    InstanceArn: instanceArn,
    TargetId: accountId,
    TargetType: 'AWS_ACCOUNT' as const,
    PermissionSetArn: built.seeded.permissionSetArns[permissionSet],
    PrincipalType: 'USER' as const,
    PrincipalId: built.seeded.userIds[userName],
  })
  const listed = async (userName: string, accountId: string, permissionSet: string) => {
    let count = 0
    const pages = paginateListAccountAssignmentsForPrincipal(
      { client: aws },
      {
        InstanceArn: instanceArn,
        PrincipalId: built.seeded.userIds[userName],
        PrincipalType: 'USER',
        Filter: { AccountId: accountId },
      },
    )
    for await (const page of pages) {
      count += (page.AccountAssignments ?? []).filter(
        (a) => a.PermissionSetArn === built.seeded.permissionSetArns[permissionSet],
      ).length
    }
    return count
  }
  const creationStatus = (requestId: string | undefined) =>
    aws.send(
      new DescribeAccountAssignmentCreationStatusCommand({
        InstanceArn: instanceArn,
        AccountAssignmentCreationRequestId: requestId,
      }),
    )
  const deletionStatus = (requestId: string | undefined) =>
    aws.send(
      new DescribeAccountAssignmentDeletionStatusCommand({
        InstanceArn: instanceArn,
        AccountAssignmentDeletionRequestId: requestId,
      }),
    )
  /** The other listing, by account and permission set. */
  const listedForAccount = async (userName: string, accountId: string, permissionSet: string) => {
    const page = await aws.send(
      new ListAccountAssignmentsCommand({
        InstanceArn: instanceArn,
        AccountId: accountId,
        PermissionSetArn: built.seeded.permissionSetArns[permissionSet],
      }),
    )
    return (page.AccountAssignments ?? []).filter((a) => a.PrincipalId === built.seeded.userIds[userName]).length
  }
  return {
    ...built,
    proxy,
    aws,
    assignment,
    listed,
    listedForAccount,
    creationStatus,
    deletionStatus,
    inMoto: built.countAssignments,
  }
}

const alicesAdmin = ['alice', PROD, 'AdministratorAccess'] as const

t.test(
  'a creation is answered IN_PROGRESS and is not listed until its provisioning time has passed, though moto already holds it',
  async (t) => {
    const { aws, clock, assignment, listed, inMoto } = await world(t)

    const created = await aws.send(new CreateAccountAssignmentCommand(assignment(...alicesAdmin)))

    t.equal(
      created.AccountAssignmentCreationStatus?.Status,
      'IN_PROGRESS',
      JSON.stringify(created.AccountAssignmentCreationStatus),
    )
    t.equal(await inMoto(...alicesAdmin), 1, 'moto created it at once')
    t.equal(await listed(...alicesAdmin), 0, 'not listed at first')
    clock.advance(PROVISIONING_MS / 2)
    t.equal(await listed(...alicesAdmin), 0, 'not listed halfway')
    clock.advance(PROVISIONING_MS / 2)
    t.equal(await listed(...alicesAdmin), 1, 'listed once provisioned')
  },
)

t.test('a creation’s status goes from IN_PROGRESS to SUCCEEDED as world time passes', async (t) => {
  const { aws, clock, assignment, creationStatus } = await world(t)
  const created = await aws.send(new CreateAccountAssignmentCommand(assignment(...alicesAdmin)))
  const requestId = created.AccountAssignmentCreationStatus?.RequestId

  const before = (await creationStatus(requestId)).AccountAssignmentCreationStatus
  clock.advance(PROVISIONING_MS)
  const after = (await creationStatus(requestId)).AccountAssignmentCreationStatus

  t.match(
    before,
    { Status: 'IN_PROGRESS', RequestId: requestId, TargetId: PROD, PrincipalType: 'USER' },
    JSON.stringify(before),
  )
  t.match(after, { Status: 'SUCCEEDED', RequestId: requestId, TargetId: PROD }, JSON.stringify(after))
})

t.test('real time alone also finishes a creation', async (t) => {
  const { aws, assignment, listed, creationStatus } = await world(t, { awsLike: { provisioningMs: 200 } })
  const created = await aws.send(new CreateAccountAssignmentCommand(assignment(...alicesAdmin)))
  const listedAtFirst = await listed(...alicesAdmin)

  await new Promise((resolve) => setTimeout(resolve, 250))

  t.equal(listedAtFirst, 0)
  t.equal(
    (await creationStatus(created.AccountAssignmentCreationStatus?.RequestId)).AccountAssignmentCreationStatus?.Status,
    'SUCCEEDED',
  )
  t.equal(await listed(...alicesAdmin), 1)
})

t.test(
  'creating an assignment that already exists is accepted as AWS does, without a second copy in moto, and stays listed',
  async (t) => {
    // carol's permanent ReadOnlyAccess on staging was seeded.
    const { aws, clock, proxy, assignment, listed, inMoto, creationStatus } = await world(t)
    const carols = ['carol', STAGING, 'ReadOnlyAccess'] as const

    const created = (await aws.send(new CreateAccountAssignmentCommand(assignment(...carols))))
      .AccountAssignmentCreationStatus

    t.match(
      created,
      { Status: 'IN_PROGRESS', RequestId: String, TargetId: STAGING, PrincipalType: 'USER', CreatedDate: Date },
      JSON.stringify(created),
    )
    t.equal(proxy.calls.CreateAccountAssignment, 1)
    t.equal(await inMoto(...carols), 1, 'one copy in moto')
    t.equal(await listed(...carols), 1, 'what existed is still listed')
    clock.advance(PROVISIONING_MS)
    t.equal((await creationStatus(created?.RequestId)).AccountAssignmentCreationStatus?.Status, 'SUCCEEDED')
  },
)

t.test('a second operation on an assignment while one is in progress is refused with ConflictException', async (t) => {
  const { aws, clock, proxy, assignment, inMoto } = await world(t)
  await aws.send(new CreateAccountAssignmentCommand(assignment(...alicesAdmin)))

  const secondCreation = await aws
    .send(new CreateAccountAssignmentCommand(assignment(...alicesAdmin)))
    .catch((error: Error) => error)
  const deletion = await aws
    .send(new DeleteAccountAssignmentCommand(assignment(...alicesAdmin)))
    .catch((error: Error) => error)
  clock.advance(PROVISIONING_MS)
  const laterDeletion = await aws.send(new DeleteAccountAssignmentCommand(assignment(...alicesAdmin)))

  t.equal((secondCreation as Error).name, 'ConflictException', String(secondCreation))
  t.equal((deletion as Error).name, 'ConflictException', String(deletion))
  t.equal(proxy.injected.conflict, 2)
  t.equal(laterDeletion.AccountAssignmentDeletionStatus?.Status, 'IN_PROGRESS', 'accepted once the creation is done')
  t.equal(await inMoto(...alicesAdmin), 0)
})

t.test(
  'concurrent creations of one assignment: one is accepted, the others conflict, and moto holds one copy',
  async (t) => {
    const { aws, assignment, inMoto } = await world(t)

    const results = await Promise.allSettled(
      [1, 2, 3].map(() => aws.send(new CreateAccountAssignmentCommand(assignment(...alicesAdmin)))),
    )

    t.equal(results.filter((r) => r.status === 'fulfilled').length, 1, JSON.stringify(results))
    t.ok(
      results.every((r) => r.status === 'fulfilled' || (r.reason as Error).name === 'ConflictException'),
      JSON.stringify(results),
    )
    t.equal(await inMoto(...alicesAdmin), 1)
  },
)

t.test(
  'a deletion is answered IN_PROGRESS and the assignment is still listed until it is done, though moto has removed it',
  async (t) => {
    const { aws, clock, proxy, assignment, listed, listedForAccount, inMoto, deletionStatus } = await world(t)
    const created = await aws.send(new CreateAccountAssignmentCommand(assignment(...alicesAdmin)))
    proxy.awsWorld?.settleAll()

    const deleted = (await aws.send(new DeleteAccountAssignmentCommand(assignment(...alicesAdmin))))
      .AccountAssignmentDeletionStatus

    t.equal(deleted?.Status, 'IN_PROGRESS', JSON.stringify(deleted))
    t.not(
      deleted?.RequestId,
      created.AccountAssignmentCreationStatus?.RequestId,
      'its own request id, not the creation’s as moto gives',
    )
    t.equal(await inMoto(...alicesAdmin), 0, 'moto removed it at once')
    t.equal(await listed(...alicesAdmin), 1, 'still listed')
    t.equal(await listedForAccount(...alicesAdmin), 1, 'still listed by account')
    t.equal((await deletionStatus(deleted?.RequestId)).AccountAssignmentDeletionStatus?.Status, 'IN_PROGRESS')
    clock.advance(PROVISIONING_MS)
    t.equal(await listed(...alicesAdmin), 0, 'gone once done')
    t.equal(await listedForAccount(...alicesAdmin), 0, 'gone by account once done')
    t.equal((await deletionStatus(deleted?.RequestId)).AccountAssignmentDeletionStatus?.Status, 'SUCCEEDED')
  },
)

for (const fault of ['drop-after-upstream', 'server-error-after-upstream'] as const) {
  t.test(
    `a creation whose answer is lost to ${fault} is made in moto and hidden from listings until done`,
    async (t) => {
      const { aws, clock, proxy, assignment, listed, inMoto } = await world(t)
      proxy.inject('CreateAccountAssignment', fault, 1)

      const error = await aws.send(new CreateAccountAssignmentCommand(assignment(...alicesAdmin))).then(
        () => undefined,
        (e: Error) => e,
      )

      t.ok(error, 'the client never heard the answer')
      t.equal(proxy.injected[fault], 1)
      t.equal(await inMoto(...alicesAdmin), 1, 'AWS acted')
      t.equal(proxy.awsWorld?.pending('creation').length, 1)
      t.equal(await listed(...alicesAdmin), 0, 'hidden while provisioning')
      clock.advance(PROVISIONING_MS)
      t.equal(await listed(...alicesAdmin), 1, 'listed once done')
    },
  )
}

t.test('server-error-after-upstream also works without the AWS world: moto acts, the client hears 500', async (t) => {
  const { aws, proxy, assignment, inMoto } = await world(t, { awsLike: false })
  proxy.inject('CreateAccountAssignment', 'server-error-after-upstream', 1)

  const error = await aws.send(new CreateAccountAssignmentCommand(assignment(...alicesAdmin))).then(
    () => undefined,
    (e: Error) => e,
  )

  t.equal(error?.name, 'InternalServerException', String(error))
  t.equal(proxy.awsWorld, undefined)
  t.equal(await inMoto(...alicesAdmin), 1)
})

t.test('a throttled status poll is answered by the throttle, and the next by the world', async (t) => {
  const { aws, proxy, assignment, creationStatus } = await world(t)
  const created = await aws.send(new CreateAccountAssignmentCommand(assignment(...alicesAdmin)))
  proxy.inject('DescribeAccountAssignmentCreationStatus', 'throttle', 1)

  const throttled = await creationStatus(created.AccountAssignmentCreationStatus?.RequestId).then(
    () => undefined,
    (e: Error) => e,
  )
  const next = await creationStatus(created.AccountAssignmentCreationStatus?.RequestId)

  t.equal(throttled?.name, 'ThrottlingException', String(throttled))
  t.equal(next.AccountAssignmentCreationStatus?.Status, 'IN_PROGRESS')
})

t.test('a creation reported FAILED leaves nothing behind, and its status stays FAILED', async (t) => {
  const { aws, clock, proxy, assignment, listed, inMoto, creationStatus } = await world(t)
  proxy.inject('CreateAccountAssignment', 'report-failed', 1)

  const created = (await aws.send(new CreateAccountAssignmentCommand(assignment(...alicesAdmin))))
    .AccountAssignmentCreationStatus
  clock.advance(PROVISIONING_MS)

  t.match(created, { Status: 'FAILED', FailureReason: /Not supported account/ }, JSON.stringify(created))
  t.equal(await inMoto(...alicesAdmin), 0, 'undone in moto')
  t.equal(await listed(...alicesAdmin), 0)
  t.match((await creationStatus(created?.RequestId)).AccountAssignmentCreationStatus, {
    Status: 'FAILED',
    FailureReason: /Not supported account/,
  })
})

t.test('a deletion reported FAILED leaves the assignment in place', async (t) => {
  const { aws, proxy, assignment, listed, inMoto, deletionStatus } = await world(t)
  await aws.send(new CreateAccountAssignmentCommand(assignment(...alicesAdmin)))
  proxy.awsWorld?.settleAll()
  proxy.inject('DeleteAccountAssignment', 'report-failed', 1)

  const deleted = (await aws.send(new DeleteAccountAssignmentCommand(assignment(...alicesAdmin))))
    .AccountAssignmentDeletionStatus

  t.equal(deleted?.Status, 'FAILED', JSON.stringify(deleted))
  t.equal(await inMoto(...alicesAdmin), 1, 'put back in moto')
  t.equal(await listed(...alicesAdmin), 1)
  t.equal((await deletionStatus(deleted?.RequestId)).AccountAssignmentDeletionStatus?.Status, 'FAILED')
})

t.test(
  'a creation’s status is still known once its assignment is deleted, while ids the world never recorded go to moto',
  async (t) => {
    // moto looks a creation's id up among the assignments it holds now, so it forgets the id of a deleted one.
    const { aws, proxy, assignment, creationStatus, deletionStatus } = await world(t)
    const created = await aws.send(new CreateAccountAssignmentCommand(assignment(...alicesAdmin)))
    proxy.awsWorld?.settleAll()
    await aws.send(new DeleteAccountAssignmentCommand(assignment(...alicesAdmin)))
    proxy.awsWorld?.settleAll()

    const known = await creationStatus(created.AccountAssignmentCreationStatus?.RequestId).then(
      (r) => r.AccountAssignmentCreationStatus?.Status,
      (e: Error) => e.name,
    )
    const creation = await creationStatus('00000000-0000-0000-0000-000000000000').then(
      () => undefined,
      (e: Error) => e,
    )
    const deletion = await deletionStatus('00000000-0000-0000-0000-000000000000').then(
      () => undefined,
      (e: Error) => e,
    )

    t.equal(known, 'SUCCEEDED')
    t.equal(creation?.name, 'ResourceNotFoundException', String(creation))
    t.equal(deletion?.name, 'ResourceNotFoundException', String(deletion))
  },
)

t.test('deleting an assignment that does not exist passes moto’s ResourceNotFoundException through', async (t) => {
  const { aws, proxy, assignment } = await world(t)

  const error = await aws.send(new DeleteAccountAssignmentCommand(assignment(...alicesAdmin))).then(
    () => undefined,
    (e: Error) => e,
  )

  t.equal(error?.name, 'ResourceNotFoundException', String(error))
  t.same(proxy.awsWorld?.operations, [], 'nothing recorded')
})

t.test('advancing a ManualClock passed as the world’s time settles operations without sleeping', async (t) => {
  const { assignment } = await world(t, { awsLike: false })
  const clock = new ManualClock()
  const proxy = new FaultProxy(moto.endpoint, {
    awsLike: { now: () => clock.now().getTime(), provisioningMs: 3_600_000 },
  })
  const aws = new SSOAdminClient({ region: REGION, endpoint: await proxy.start(), maxAttempts: 1 })
  t.teardown(() => proxy.stop())
  await aws.send(new CreateAccountAssignmentCommand(assignment(...alicesAdmin)))
  const started = Date.now()

  const before = proxy.awsWorld?.pending().length
  clock.advanceMinutes(60)
  const after = proxy.awsWorld?.pending().length

  t.equal(before, 1)
  t.equal(after, 0)
  t.ok(Date.now() - started < 1000, 'no sleeping')
})
