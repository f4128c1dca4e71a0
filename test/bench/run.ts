/**
 * `npm run bench` — a benchmark, not a test. Against moto on loopback through the counting proxy, it
 * measures, as ratios against baselines taken in the same run (the machine is shared and noisy):
 *   1. Identity Center and total AWS calls per grant, cold and warm, on a directory of 50 permission sets;
 *   2. POST /grants latency p50/p99 against the bare SDK calls a safe grant needs;
 *   3. a sweep of N expired grants (default 2,000) under an enforced 20 calls/s Identity Center quota;
 *   4. the Lambda bundle's import + init time, if dist/lambda.mjs exists;
 *   5. Organizations calls per ended grant with JIT_SESSION_CUTOFF=scp (test/bench/cutoff.ts, also runnable alone), and
 *      Organizations calls per grant decision for a rule naming an OU, cold and warm (test/bench/organizations.ts);
 *   8. the API under load (autocannon) against a bare Fastify + DocumentClient floor (test/bench/api.ts),
 *      on DynamoDB's own moto and the other services' (test/bench/split-moto.ts, bench_moto.py);
 *   7. exports of 10,000 audit events (--events N; 100,000 is the goal's size) as CSV and NDJSON against a raw paginated Query (test/bench/exports.ts),
 *      on a moto of their own whose Query on an index is index-ordered (test/bench/indexed_moto.py);
 *   6. expiry to the second: the time from expiresAt to the removal, with the container's due timers and with
 *      the sweep alone (test/bench/expiry.ts).
 * Results are printed and written to .bench/results.json. Options: --grants N, --cap-seconds S, --sweep-tps R and
 * --sweep-budget-seconds S (the sweeping process's JIT_IDENTITY_CENTER_TPS and JIT_SWEEP_BUDGET_SECONDS), --only
 * SECTION[,SECTION] (grants, sweep, init, cutoff, organizations, expiry, exports, api; --events N for exports): only those run, and their results replace the same
 * keys in the results file, the others are kept. `--api-moto strict|single`: the API section on the other sections'
 * moto, or on one bench_moto.py for all services.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import {
  CreateUserCommand,
  GetUserIdCommand,
  ListGroupMembershipsForMemberCommand,
} from '@aws-sdk/client-identitystore'
import { PublishCommand } from '@aws-sdk/client-sns'
import {
  CreateAccountAssignmentCommand,
  CreatePermissionSetCommand,
  ListAccountAssignmentsForPrincipalCommand,
} from '@aws-sdk/client-sso-admin'
import { BatchWriteCommand, DynamoDBDocumentClient, TransactWriteCommand } from '@aws-sdk/lib-dynamodb'
import { buildBaseline, type InitTiming, measureInitTimings } from '../../infra/build.ts'
import { createAwsClients } from '../../src/adapters/aws.ts'
import { coverageKey, grantToItem } from '../../src/adapters/dynamodb/items.ts'
import { SWEEP_ACTOR } from '../../src/core/audit.ts'
import type { Grant } from '../../src/core/grant-model.ts'
import { findMotoPython, findMotoServer, startMotoServer } from '../../src/sandbox/moto-server.ts'
import { build, grantBody, REGION } from '../helpers/app.ts'
import { startStrictMoto } from '../helpers/moto.ts'
import { bearer } from '../helpers/tokens.ts'
import { describeApi, measureApi, waitingIn } from './api.ts'
import { motoPidOn } from './cpu.ts'
import { describeCutoffCalls, measureCutoffCalls } from './cutoff.ts'
import { describeExpiry, measureExpiryOverrun } from './expiry.ts'
import { describeExports, measureExports } from './exports.ts'
import { describeOrganizationCalls, measureOrganizationCalls } from './organizations.ts'
import { renderTable } from './report.ts'
import { startSplitMoto } from './split-moto.ts'

process.env.AWS_ACCESS_KEY_ID ??= 'testing'
process.env.AWS_SECRET_ACCESS_KEY ??= 'testing'
const argument = (name: string, fallback: number) =>
  Number(process.argv[process.argv.indexOf(name) + 1] ?? fallback) || fallback
const GRANTS = process.argv.includes('--grants') ? argument('--grants', 2000) : 2000
const CAP_MS = (process.argv.includes('--cap-seconds') ? argument('--cap-seconds', 420) : 420) * 1000
const SECTIONS = ['grants', 'sweep', 'init', 'cutoff', 'organizations', 'expiry', 'exports', 'api'] as const
const only = process.argv.includes('--only')
  ? (process.argv[process.argv.indexOf('--only') + 1] ?? '').split(',')
  : [...SECTIONS]
for (const name of only)
  if (!(SECTIONS as readonly string[]).includes(name))
    throw new Error(`--only: no section '${name}' (${SECTIONS.join(', ')})`)
const selected = (section: (typeof SECTIONS)[number]) => only.includes(section)
const QUOTA = 20
/**
 * Audit events exported in a full run. Stock moto's Query reads the whole table for every page (several seconds a
 * page at 100,000 events, a quarter of an hour for the raw Query alone), so this section runs on a moto whose Query on
 * an index reads its page in the index's order (test/bench/indexed_moto.py), as DynamoDB does. A page of 500 still
 * costs moto about half a second (it copies and serialises each item), so the goal's 100,000 events take about nine
 * minutes (writing them, then three passes): `--only exports --events 100000`, outside the full run's 15 minutes.
 */
const EXPORT_EVENTS = 10_000
// Any account, so that every measured grant makes a new assignment (as the floor does).
const policy = {
  rules: [
    {
      name: 'bench',
      groups: ['oncall'],
      accounts: ['*'],
      permissionSets: ['AdministratorAccess', 'ReadOnlyAccess'],
      maxDurationMinutes: 240,
    },
  ],
}
const TPS = 18
/** The service's default sweep budget per run (JIT_SWEEP_BUDGET_SECONDS), as the stack sets it; --sweep-budget-seconds to try another. */
const SWEEP_BUDGET_MS =
  (process.argv.includes('--sweep-budget-seconds') ? argument('--sweep-budget-seconds', 55) : 55) * 1000
/**
 * The sweeping process's rate (JIT_IDENTITY_CENTER_TPS): 19 of the quota's 20, the most that stayed unthrottled
 * (20 throttled 2.9 % of calls); --sweep-tps to try another, up to the quota.
 */
const SWEEP_TPS = process.argv.includes('--sweep-tps') ? argument('--sweep-tps', 19) : 19
const OUT = resolve(import.meta.dirname, '..', '..', '.bench')
const cleanups: (() => unknown)[] = []
const teardown = { teardown: (fn: () => unknown) => void cleanups.unshift(fn) }
const results: Record<string, unknown> = { node: process.versions.node, at: new Date().toISOString() }
const percentile = (values: number[], p: number) =>
  [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * p))] as number
const IC_OPERATIONS = [
  'CreateAccountAssignment',
  'DeleteAccountAssignment',
  'DescribeAccountAssignmentCreationStatus',
  'DescribeAccountAssignmentDeletionStatus',
  'ListAccountAssignmentsForPrincipal',
  'ListPermissionSets',
  'DescribePermissionSet',
  'ListInstances',
]

const moto = await startBenchMoto()
cleanups.push(() => moto.stop())
try {
  if (selected('grants')) {
    // 1 and 2: calls per grant and latency, on a directory of 50 permission sets.
    // Any account, so that every measured grant makes a new assignment (as the floor does).
    const service = await build(teardown, moto, { proxy: true, identityCenterTps: TPS, policy })
    const { app, proxy, clients, instance, seeded } = service
    for (let i = 0; i < 47; i++) {
      await clients.ssoAdmin.send(
        new CreatePermissionSetCommand({
          InstanceArn: instance.instanceArn,
          Name: `Team${String(i).padStart(2, '0')}Access`,
          SessionDuration: 'PT1H',
        }),
      )
    }
    const snapshot = () => ({ ...(proxy?.calls ?? {}) })
    const diff = (before: Record<string, number>) => {
      const after = proxy?.calls ?? {}
      const ic = IC_OPERATIONS.reduce((sum, op) => sum + ((after[op] ?? 0) - (before[op] ?? 0)), 0)
      const total = Object.keys(after).reduce((sum, op) => sum + ((after[op] ?? 0) - (before[op] ?? 0)), 0)
      const byOperation = Object.fromEntries(
        Object.keys(after)
          .map((op) => [op, (after[op] ?? 0) - (before[op] ?? 0)])
          .filter(([, n]) => (n as number) > 0),
      )
      return { identityCenter: ic, total, byOperation }
    }
    let before = snapshot()
    await app.inject({ method: 'POST', url: '/grants', headers: authorization(), payload: grantBody() })
    const cold = diff(before)
    before = snapshot()
    await app.inject({
      method: 'POST',
      url: '/grants',
      headers: authorization(),
      payload: grantBody({ userName: 'bob' }),
    })
    const warm = diff(before)
    results.callsPerGrant = { cold, warm }
    console.log(
      `calls per grant — cold: ${cold.identityCenter} Identity Center, ${cold.total} AWS in all; warm: ${warm.identityCenter} Identity Center, ${warm.total} AWS in all`,
    )
    console.log(`  warm grant calls: ${JSON.stringify(warm.byOperation)}`)

    const warmup = 10
    // Enough that p99 is not just the second-worst sample: a single stall on this shared machine would decide it.
    const samples = 500
    const ours: number[] = []
    const floor: number[] = []
    // Of each, the time some AWS call was under way (at the proxy): the rest is spent in the caller's process.
    const oursWaiting: number[] = []
    /** Ours until the grant's SNS message was sent too: what a Lambda invocation takes. */
    const oursUntilSent: number[] = []
    const floorWaiting: number[] = []
    const floorUntilSent: number[] = []
    const oursByOperation: Record<string, number[]> = {}
    const floorByOperation: Record<string, number[]> = {}
    // The same proxy, moto and SDK clients as the service, without the service.
    const bare = createAwsClients({
      region: REGION,
      endpoint: `http://127.0.0.1:${(proxy!.server.address() as { port: number }).port}`,
    })
    const doc = DynamoDBDocumentClient.from(bare.dynamo)
    // Grants arrive a few a minute in production, so each is measured on an otherwise idle service: one every
    // 150 ms keeps the limiter's burst full (2 calls per grant is 13/s, below the 18/s rate).
    const PACE_MS = 150
    for (let i = 0; i < warmup + samples; i++) {
      const iterationStarted = performance.now()
      const userName = i % 2 ? 'alice' : 'bob'
      // Every grant, ours and the floor's, makes a new assignment: a fresh account each time.
      const accountId = String(300000000000 + i)
      const timingsFrom = proxy?.timings.length ?? 0
      let started = performance.now()
      const response = await app.inject({
        method: 'POST',
        url: '/grants',
        headers: authorization(),
        payload: grantBody({
          userName,
          accountId,
          permissionSet: i % 2 ? 'ReadOnlyAccess' : 'AdministratorAccess',
          ticketId: `CHG${String(1000000 + i)}`,
        }),
      })
      const elapsed = performance.now() - started
      // The SNS message leaves after the answer (the container's path); Lambda's answer waits for it (see lambda.ts).
      // Either way it is sent before the floor is measured, so that the two never overlap.
      await app.flushNotifications()
      const untilSent = performance.now() - started
      if (response.statusCode !== 201 || response.json().coveredBy !== 'jit')
        throw new Error(`bench grant answered ${response.statusCode}: ${response.body}`)
      if (i >= warmup) {
        oursUntilSent.push(untilSent)
        for (const { operation, start, end } of proxy?.timings.slice(timingsFrom) ?? []) {
          oursByOperation[operation] ??= []
          oursByOperation[operation].push(end - start)
        }
        ours.push(elapsed)
        const answeredAt = started + elapsed
        oursWaiting.push(
          waitingIn(
            (proxy?.timings.slice(timingsFrom) ?? [])
              .filter((call) => call.start < answeredAt)
              .map((call) => ({ ...call, end: Math.min(call.end, answeredAt) })),
          ),
        )
      }
      // The floor: the calls any safe grant must make, with the same clients, proxy and moto — resolve the
      // user, read their groups for the policy, check for a permanent assignment, record intent, create the
      // assignment, record the outcome. Intent and outcome are conditional writes (a grant must not be
      // recorded twice nor activated after it ended), each with its audit event in the same transaction.
      const floorAccountId = String(310000000000 + i)
      const floorTimingsFrom = proxy?.timings.length ?? 0
      started = performance.now()
      const user = await bare.identityStore.send(
        new GetUserIdCommand({
          IdentityStoreId: instance.identityStoreId,
          AlternateIdentifier: { UniqueAttribute: { AttributePath: 'userName', AttributeValue: userName } },
        }),
      )
      await bare.identityStore.send(
        new ListGroupMembershipsForMemberCommand({
          IdentityStoreId: instance.identityStoreId,
          MemberId: { UserId: user.UserId as string },
        }),
      )
      await bare.ssoAdmin.send(
        new ListAccountAssignmentsForPrincipalCommand({
          InstanceArn: instance.instanceArn,
          PrincipalId: user.UserId,
          PrincipalType: 'USER',
          Filter: { AccountId: floorAccountId },
        }),
      )
      await doc.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Put: {
                TableName: 'jit-grants',
                Item: { pk: `floor#${i}`, status: 'provisioning' },
                ConditionExpression: 'attribute_not_exists(pk)',
              },
            },
            {
              Put: {
                TableName: 'jit-audit',
                Item: { pk: `floor-event#${i}` },
                ConditionExpression: 'attribute_not_exists(pk)',
              },
            },
          ],
        }),
      )
      await bare.ssoAdmin.send(
        new CreateAccountAssignmentCommand({
          InstanceArn: instance.instanceArn,
          TargetId: floorAccountId,
          TargetType: 'AWS_ACCOUNT',
          PermissionSetArn: seeded.permissionSetArns.ReadOnlyAccess,
          PrincipalType: 'USER',
          PrincipalId: user.UserId,
        }),
      )
      await doc.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Update: {
                TableName: 'jit-grants',
                Key: { pk: `floor#${i}` },
                UpdateExpression: 'SET #status = :active',
                ConditionExpression: '#status = :provisioning',
                ExpressionAttributeNames: { '#status': 'status' },
                ExpressionAttributeValues: { ':active': 'active', ':provisioning': 'provisioning' },
              },
            },
            {
              Put: {
                TableName: 'jit-audit',
                Item: { pk: `floor-event2#${i}` },
                ConditionExpression: 'attribute_not_exists(pk)',
              },
            },
          ],
        }),
      )
      const floorElapsed = performance.now() - started
      // A grant of this service must also announce its activation on SNS (lifecycle events): the floor for a
      // caller that waits for that too, as a Lambda invocation does.
      await bare.sns.send(new PublishCommand({ TopicArn: service.topicArn, Message: JSON.stringify({ floor: i }) }))
      if (i >= warmup) {
        for (const { operation, start, end } of proxy?.timings.slice(floorTimingsFrom) ?? []) {
          floorByOperation[operation] ??= []
          floorByOperation[operation].push(end - start)
        }
        floor.push(floorElapsed)
        floorUntilSent.push(performance.now() - started)
        const floorAnsweredAt = started + floorElapsed
        floorWaiting.push(
          waitingIn((proxy?.timings.slice(floorTimingsFrom) ?? []).filter((call) => call.start < floorAnsweredAt)),
        )
      }
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, PACE_MS - (performance.now() - iterationStarted))))
    }
    const latency = {
      samples,
      p50: percentile(ours, 0.5),
      p99: percentile(ours, 0.99),
      floorP50: percentile(floor, 0.5),
      floorP99: percentile(floor, 0.99),
      lambdaP50: percentile(oursUntilSent, 0.5),
      lambdaP99: percentile(oursUntilSent, 0.99),
      floorWithPublishP50: percentile(floorUntilSent, 0.5),
      floorWithPublishP99: percentile(floorUntilSent, 0.99),
    }
    const breakdown = {
      awsP50: percentile(oursWaiting, 0.5),
      ownP50: percentile(
        ours.map((t, i) => t - (oursWaiting[i] as number)),
        0.5,
      ),
      floorAwsP50: percentile(floorWaiting, 0.5),
      floorOwnP50: percentile(
        floor.map((t, i) => t - (floorWaiting[i] as number)),
        0.5,
      ),
      /** Each operation's p50 time at the proxy (moto's work and the loopback): ours, and the floor's. */
      perCallP50: Object.fromEntries(
        Object.entries(oursByOperation).map(([op, times]) => [
          op,
          {
            ours: Number(percentile(times, 0.5).toFixed(2)),
            ...(floorByOperation[op] ? { floor: Number(percentile(floorByOperation[op], 0.5).toFixed(2)) } : {}),
          },
        ]),
      ),
    }
    results.grantLatency = {
      ...latency,
      ratioP50: latency.p50 / latency.floorP50,
      ratioP99: latency.p99 / latency.floorP99,
      lambdaRatioP50: latency.lambdaP50 / latency.floorP50,
      lambdaRatioP99: latency.lambdaP99 / latency.floorP99,
      lambdaVsFloorWithPublishP50: latency.lambdaP50 / latency.floorWithPublishP50,
      lambdaVsFloorWithPublishP99: latency.lambdaP99 / latency.floorWithPublishP99,
      breakdown,
    }
    console.log(
      `POST /grants latency: p50 ${latency.p50.toFixed(1)} ms, p99 ${latency.p99.toFixed(1)} ms; bare-SDK floor p50 ${latency.floorP50.toFixed(1)} ms, p99 ${latency.floorP99.toFixed(1)} ms → ${(latency.p50 / latency.floorP50).toFixed(2)}× / ${(latency.p99 / latency.floorP99).toFixed(2)}× (goal ≤ 1.3×)`,
    )
    console.log(
      `  in Lambda, whose answer also waits for the SNS message: p50 ${latency.lambdaP50.toFixed(1)} ms, p99 ${latency.lambdaP99.toFixed(1)} ms → ${(latency.lambdaP50 / latency.floorP50).toFixed(2)}× / ${(latency.lambdaP99 / latency.floorP99).toFixed(2)}× the floor; ` +
        `against a floor that publishes too (p50 ${latency.floorWithPublishP50.toFixed(1)} ms, p99 ${latency.floorWithPublishP99.toFixed(1)} ms) ${(latency.lambdaP50 / latency.floorWithPublishP50).toFixed(2)}× / ${(latency.lambdaP99 / latency.floorWithPublishP99).toFixed(2)}×`,
    )
    console.log(
      `  of which AWS calls under way (p50): ours ${breakdown.awsP50.toFixed(1)} ms, floor ${breakdown.floorAwsP50.toFixed(1)} ms; ` +
        `the rest, in the calling process: ours ${breakdown.ownP50.toFixed(1)} ms, floor ${breakdown.floorOwnP50.toFixed(1)} ms`,
    )
    console.log(
      `  p50 ms per call at the proxy (ours / floor): ${Object.entries(breakdown.perCallP50)
        .map(([op, t]) => `${op} ${t.ours}${t.floor === undefined ? '' : ` / ${t.floor}`}`)
        .join(', ')}`,
    )
    for (const fn of cleanups.splice(0, cleanups.length - 1)) await fn()
  }

  if (selected('sweep')) {
    // 3: the sweep of N expired grants under the organisation's quota.
    const sweepService = await build(teardown, moto, {
      proxy: true,
      identityCenterTps: SWEEP_TPS,
      sweepPageSize: 100,
      sweepBudgetMs: SWEEP_BUDGET_MS,
      policy,
    })
    const sweepDoc = DynamoDBDocumentClient.from(sweepService.clients.dynamo, {
      marshallOptions: { removeUndefinedValues: true },
    })
    const users: string[] = []
    for (let i = 0; i < 20; i++) {
      const created = await sweepService.clients.identityStore.send(
        new CreateUserCommand({
          IdentityStoreId: sweepService.instance.identityStoreId,
          UserName: `bench${i}`,
          DisplayName: `bench${i}`,
          Name: { GivenName: 'b', FamilyName: 'b' },
        }),
      )
      users.push(created.UserId as string)
    }
    const sets: string[] = []
    for (let i = 0; i < Math.ceil(GRANTS / 200); i++) {
      const created = await sweepService.clients.ssoAdmin.send(
        new CreatePermissionSetCommand({
          InstanceArn: sweepService.instance.instanceArn,
          Name: `Sweep${i}`,
          SessionDuration: 'PT1H',
        }),
      )
      sets.push(created.PermissionSet?.PermissionSetArn as string)
    }
    const now = sweepService.clock.now()
    const items: Record<string, unknown>[] = []
    for (let n = 0; n < GRANTS; n++) {
      const userId = users[n % 20] as string
      const accountId = String(400000000000 + (Math.floor(n / 20) % 10))
      const permissionSetArn = sets[Math.floor(n / 200)] as string
      const createdAt = new Date(now.getTime() - 3600_000)
      const grant: Grant = {
        id: `00000000-0000-7000-8000-${String(n).padStart(12, '0')}`,
        status: 'active',
        userName: `bench${n % 20}`,
        userId,
        accountId,
        permissionSet: `Sweep${Math.floor(n / 200)}`,
        permissionSetArn,
        ticketId: `CHG${1000000 + n}`,
        justification: null,
        requestedBy: 'bench',
        createdAt: createdAt.toISOString(),
        startsAt: createdAt.toISOString(),
        expiresAt: new Date(now.getTime() - 60_000).toISOString(),
        accessEndsBy: now.toISOString(),
        endedAt: null,
        endedBy: null,
        endReason: null,
        coveredBy: 'jit',
        failureReason: null,
        sessionsCutAt: null,
        groupName: null,
        groupId: null,
      }
      items.push(grantToItem(grant, new Date(now.getTime() - 60_000)))
      items.push({
        ...coverageKey({ userId, accountId, permissionSetArn }),
        kind: 'coverage',
        target: { userId, accountId, permissionSetArn },
        holders: new Set([grant.id]),
        assignment: 'present',
        external: false,
        dueShard: 'due',
        dueAt: now.getTime() + 300_000,
      })
      await sweepService.clients.ssoAdmin.send(
        new CreateAccountAssignmentCommand({
          InstanceArn: sweepService.instance.instanceArn,
          TargetId: accountId,
          TargetType: 'AWS_ACCOUNT',
          PermissionSetArn: permissionSetArn,
          PrincipalType: 'USER',
          PrincipalId: userId,
        }),
      )
    }
    for (let i = 0; i < items.length; i += 25) {
      await sweepDoc.send(
        new BatchWriteCommand({
          RequestItems: { 'jit-grants': items.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } })) },
        }),
      )
    }
    sweepService.proxy?.enforceIdentityCenterQuota(QUOTA)
    const callsBefore = sweepService.proxy?.identityCenterCallTimes.length ?? 0
    // The service's clock follows real time from here, so that each run's deadline falls when it would in AWS.
    let ticked = Date.now()
    const ticker = setInterval(() => {
      sweepService.clock.advance(Date.now() - ticked)
      ticked = Date.now()
    }, 20)
    // Grants while the quota is spent on the sweep: each is timed, first on the idle service (the baseline), then
    // one every 2 s while the first run sweeps. Each makes a new assignment (a fresh account).
    let grantsMade = 0
    const timeGrant = async () => {
      const n = grantsMade++
      const began = performance.now()
      const response = await sweepService.app.inject({
        method: 'POST',
        url: '/grants',
        headers: authorization(),
        payload: grantBody({
          userName: n % 2 ? 'alice' : 'bob',
          accountId: String(700000000000 + n),
          ticketId: `CHG${3000000 + n}`,
        }),
      })
      if (response.statusCode !== 201)
        throw new Error(`bench grant during the sweep answered ${response.statusCode}: ${response.body}`)
      return performance.now() - began
    }
    const idleGrants: number[] = []
    for (let i = 0; i < 12; i++) {
      idleGrants.push(await timeGrant())
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
    const duringSweep: number[] = []
    let sweepRunning = true
    const grantsDuringSweep = (async () => {
      await new Promise((resolve) => setTimeout(resolve, 2000))
      while (sweepRunning) {
        duringSweep.push(await timeGrant())
        await new Promise((resolve) => setTimeout(resolve, 2000))
      }
    })()
    const started = Date.now()
    const runs: { revoked: number; failed: number; remaining: number; seconds: number }[] = []
    let remaining = GRANTS
    let sweeping = 0
    try {
      while (remaining > 0 && Date.now() - started < CAP_MS) {
        // As the one-minute schedule runs it: a run stops starting work after the service's 50-s budget, and the
        // next starts at the next minute.
        const runStarted = Date.now()
        const summary = await sweepService.app.runSweep({
          actor: SWEEP_ACTOR,
          triggeredBy: 'bench',
          deadline: new Date(
            sweepService.clock.now().getTime() + Math.min(SWEEP_BUDGET_MS, CAP_MS - (runStarted - started)),
          ),
        })
        const seconds = (Date.now() - runStarted) / 1000
        sweeping += seconds
        runs.push({ revoked: summary.revoked, failed: summary.failed, remaining: summary.remaining, seconds })
        if (sweepRunning) {
          sweepRunning = false
          await grantsDuringSweep
        }
        remaining = Math.max(0, remaining - summary.revoked)
        console.log(`  sweep run ${runs.length}: ${JSON.stringify(runs.at(-1))}`)
        if (remaining > 0)
          await new Promise((resolve) => setTimeout(resolve, Math.max(0, runStarted + 60_000 - Date.now())))
      }
    } finally {
      clearInterval(ticker)
    }
    const seconds = (Date.now() - started) / 1000
    const icCalls = (sweepService.proxy?.identityCenterCallTimes.length ?? 0) - callsBefore
    const revoked = runs.reduce((sum, r) => sum + r.revoked, 0)
    const throttled = sweepService.proxy?.injected.quota ?? 0
    const sweep = {
      grants: GRANTS,
      tps: SWEEP_TPS,
      budgetSeconds: SWEEP_BUDGET_MS / 1000,
      revoked,
      failed: runs.reduce((sum, r) => sum + r.failed, 0),
      left: GRANTS - revoked,
      runs: runs.length,
      seconds,
      sweepingSeconds: sweeping,
      revokesPerSecond: revoked / sweeping,
      identityCenterCalls: icCalls,
      /** While a run is sweeping; `quotaUsedOverall` also counts each minute's idle time after a run's budget. */
      quotaUsed: icCalls / sweeping / QUOTA,
      quotaUsedOverall: icCalls / seconds / QUOTA,
      throttled,
      throttledShare: throttled / Math.max(1, icCalls + throttled),
    }
    results.sweep = sweep
    const grantsWhileSweeping = {
      samples: duringSweep.length,
      p50: percentile(duringSweep, 0.5),
      p99: percentile(duringSweep, 0.99),
      idleP50: percentile(idleGrants, 0.5),
      idleP99: percentile(idleGrants, 0.99),
    }
    results.grantsWhileSweeping = {
      ...grantsWhileSweeping,
      ratioP50: grantsWhileSweeping.p50 / grantsWhileSweeping.idleP50,
    }
    console.log(
      `POST /grants while the sweep spends the quota: p50 ${grantsWhileSweeping.p50.toFixed(0)} ms, p99 ${grantsWhileSweeping.p99.toFixed(0)} ms over ${duringSweep.length} grants; ` +
        `idle, just before: p50 ${grantsWhileSweeping.idleP50.toFixed(0)} ms → ${(grantsWhileSweeping.p50 / grantsWhileSweeping.idleP50).toFixed(2)}×`,
    )
    console.log(
      `sweep of ${GRANTS} expired grants under a ${QUOTA}/s quota: ${revoked} revoked in ${runs.length} runs, ${sweeping.toFixed(0)} s sweeping (${sweep.revokesPerSecond.toFixed(1)}/s), ` +
        `${sweep.failed} failed, ${sweep.left} left; ${(sweep.quotaUsed * 100).toFixed(0)} % of the quota used while sweeping (${(sweep.quotaUsedOverall * 100).toFixed(0)} % over ${seconds.toFixed(0)} s with the minute's idle tail), ` +
        `${sweep.throttled} calls throttled (${(sweep.throttledShare * 100).toFixed(1)} %)`,
    )

    for (const fn of cleanups.splice(0, cleanups.length - 1)) await fn()
  }

  if (selected('expiry')) {
    const EXPIRY_GRANTS = 200
    const withTimers = await measureExpiryOverrun(moto, EXPIRY_GRANTS, true)
    console.log(describeExpiry(withTimers))
    const sweepOnly = await measureExpiryOverrun(moto, EXPIRY_GRANTS, false)
    console.log(describeExpiry(sweepOnly))
    results.expiry = { timers: withTimers, sweepOnly, ratioP99: withTimers.p99 / sweepOnly.p99 }
    console.log(`  timers / sweep alone, p99: ${(withTimers.p99 / sweepOnly.p99).toFixed(3)}× (goal: p99 ≤ 5 s)`)
  }

  if (selected('exports')) {
    // A moto of its own, whose Query on an index reads its page in the index's order (test/bench/indexed_moto.py):
    // the raw Query and the export alike.
    const indexed = await startMotoServer(
      findMotoPython(resolve(import.meta.dirname, '..', '..')) ?? 'python3',
      30_000,
      [resolve(import.meta.dirname, 'indexed_moto.py')],
    )
    try {
      const exported = await measureExports(indexed, argument('--events', EXPORT_EVENTS))
      results.exports = {
        ...exported,
        moto: 'strict moto_server with an index-ordered Query on secondary indexes (test/bench/indexed_moto.py)',
      }
      console.log(describeExports(exported))
    } finally {
      await indexed.stop()
    }
  }

  if (selected('api')) {
    // Eight seconds a side for the reads (the full run must stay within 15 minutes), and the goal's minute of POSTs.
    // On a moto of its own: DynamoDB apart from the other services, each on test/bench/bench_moto.py (split-moto.ts).
    // `--api-moto strict`: on the other sections' single strict moto_server, as until 2026-12-01; `--api-moto single`:
    // on one bench_moto.py for all services.
    const apiMoto = process.argv.includes('--api-moto') ? process.argv[process.argv.indexOf('--api-moto') + 1] : 'split'
    if (apiMoto !== 'split' && apiMoto !== 'single' && apiMoto !== 'strict')
      throw new Error(`--api-moto takes split, single or strict, not ${apiMoto ?? 'nothing'}`)
    const single =
      apiMoto === 'single'
        ? await startMotoServer(findMotoPython(resolve(import.meta.dirname, '..', '..')) ?? 'python3', 30_000, [
            resolve(import.meta.dirname, 'bench_moto.py'),
          ])
        : undefined
    const split = apiMoto === 'split' ? await startSplitMoto() : undefined
    try {
      const server = split ?? single ?? moto
      const api = await measureApi(server, {
        seconds: 8,
        postSeconds: 60,
        policy,
        processes: split?.processes ?? { moto: motoPidOn(server.port) },
      })
      results.api = {
        ...api,
        moto: split
          ? 'DynamoDB and the other services on two moto_servers (test/bench/split-moto.ts, bench_moto.py)'
          : single
            ? 'one moto_server for all services (test/bench/bench_moto.py)'
            : 'the single strict moto_server of the other sections',
      }
      console.log(describeApi(api))
    } finally {
      await split?.stop()
      await single?.stop()
    }
  }

  if (selected('init')) {
    // 4: the Lambda bundle.
    const bundle = resolve(import.meta.dirname, '..', '..', 'dist', 'lambda.mjs')
    if (existsSync(bundle)) {
      const baselineDir = mkdtempSync(join(tmpdir(), 'jit-baseline-'))
      cleanups.push(() => rmSync(baselineDir, { recursive: true, force: true }))
      const baseline = await buildBaseline(baselineDir)
      // Alternating runs of each, the median of each (see measureInitTimings).
      const [ours, minimal] = measureInitTimings([bundle, baseline], 9) as [InitTiming, InitTiming]
      const codeBytes = readdirSync(dirname(bundle))
        .filter((file) => /^lambda.*\.mjs$/.test(file))
        .reduce((sum, file) => sum + statSync(join(dirname(bundle), file)).size, 0)
      results.lambdaInitMs = ours.totalMs
      results.lambdaInit = {
        ms: ours.totalMs,
        phasesMs: ours.phasesMs,
        minimalFastifyMs: minimal.totalMs,
        ratio: ours.totalMs / minimal.totalMs,
        codeBytes,
      }
      console.log(
        `lambda import + init: ${ours.totalMs.toFixed(0)} ms against a minimal Fastify app behind @fastify/aws-lambda ${minimal.totalMs.toFixed(0)} ms → ` +
          `${(ours.totalMs / minimal.totalMs).toFixed(2)}× (goal ≤ 1.3×); code ${(codeBytes / 1024).toFixed(0)} KiB (goal ≤ 1536 KiB)`,
      )
    } else {
      console.log('lambda import + init: skipped (run npm run build first)')
    }
  }

  if (selected('cutoff')) {
    // 5: session cut-off, Organizations calls per ended grant.
    // 12 + 12 statements fit in two policies (13 each): nothing is refused, so the count is of writes that all land.
    const cutoffCalls = await measureCutoffCalls(moto, 12, 2)
    results.sessionCutoff = cutoffCalls
    console.log(describeCutoffCalls(cutoffCalls))
  }
  if (selected('organizations')) {
    // 5, continued: Organizations calls per grant decision for a rule naming an OU (goal: 0 once warm).
    const organizationCalls = await measureOrganizationCalls(moto)
    results.organizationCalls = organizationCalls
    console.log(describeOrganizationCalls(organizationCalls))
  }
} finally {
  for (const fn of cleanups) await fn()
}
mkdirSync(OUT, { recursive: true })
const resultsFile = join(OUT, 'results.json')
// A partial run (--only) keeps the other sections' last results.
const kept =
  only.length < SECTIONS.length && existsSync(resultsFile)
    ? (JSON.parse(readFileSync(resultsFile, 'utf8')) as Record<string, unknown>)
    : {}
const merged = { ...kept, ...results, cores: availableParallelism() }
writeFileSync(resultsFile, `${JSON.stringify(merged, null, 2)}\n`)
console.log(`\n${renderTable(merged)}\n`)
console.log('docs/performance.md and README: node test/bench/report.ts --write')
console.log(`results: ${join(OUT, 'results.json')}`)

/**
 * The tests' strict moto (see test/helpers/strict_moto.py): besides serializing DynamoDB requests as DynamoDB
 * does, its transactions copy the items they touch instead of whole tables; stock moto's copy makes each
 * transaction cost time in proportion to the table, which on thousands of grants measures moto rather than
 * the service. Stock moto if it cannot start (said so).
 */
async function startBenchMoto() {
  try {
    const server = await startStrictMoto()
    results.moto = 'strict moto_server: serialized DynamoDB, item-level transaction rollback'
    return server
  } catch (error) {
    console.log(
      `strict moto did not start (${(error as Error).message.slice(0, 300)}); using stock moto_server, whose transactions slow down as tables grow`,
    )
    results.moto = 'stock moto_server'
    return startMotoServer(findMotoServer(resolve(import.meta.dirname, '..', '..')) ?? 'moto_server')
  }
}

function authorization() {
  return bearer()
}
