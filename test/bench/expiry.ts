/**
 * Expiry to the second: N grants (default 200) whose ends are spread over two minutes, a sweep every minute as
 * the scheduler runs it, and the time from each grant's expiresAt to its removal being recorded and sent
 * (the `grant.revoke_requested` event, written just before the DeleteAccountAssignment call leaves). Measured
 * for the container's path (in-process due timers armed by the sweep's look-ahead) and, as the baseline in the
 * same run, for the sweep alone. Part of `npm run bench` (`--only expiry`).
 */
import { CreateAccountAssignmentCommand } from '@aws-sdk/client-sso-admin'
import { BatchWriteCommand, DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb'
import { coverageKey, grantToItem } from '../../src/adapters/dynamodb/items.ts'
import { SWEEP_ACTOR } from '../../src/core/audit.ts'
import type { Grant } from '../../src/core/grant-model.ts'
import type { MotoServer } from '../../src/sandbox/moto-server.ts'
import { build } from '../helpers/app.ts'

export interface ExpiryOverrun {
  path: 'timers' | 'sweep only'
  grants: number
  ended: number
  /** Seconds from expiresAt to the removal's intent being recorded (the request leaves right after). */
  p50: number
  p99: number
  max: number
}

const SPREAD_MS = 120_000
/** The first expiry comes this long after the first sweep, as a grant's would between two runs. */
const LEAD_MS = 5_000
const SWEEP_EVERY_MS = 60_000

const percentile = (values: number[], p: number) =>
  [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * p))] as number

export async function measureExpiryOverrun(moto: MotoServer, grants: number, timers: boolean): Promise<ExpiryOverrun> {
  const cleanups: (() => unknown)[] = []
  const ticker: { handle?: NodeJS.Timeout } = {}
  try {
    const service = await build({ teardown: (fn) => void cleanups.unshift(fn) }, moto, {
      proxy: true,
      identityCenterTps: 18,
      ...(timers ? { dueTimers: { horizonMs: 90_000 } } : {}),
    })
    const { clients, instance, seeded, clock } = service
    const doc = DynamoDBDocumentClient.from(clients.dynamo, { marshallOptions: { removeUndefinedValues: true } })
    // The service's clock follows real time, so that the timers' delays and the expiries agree.
    let ticked = Date.now()
    ticker.handle = setInterval(() => {
      clock.advance(Date.now() - ticked)
      ticked = Date.now()
    }, 5)
    const userId = seeded.userIds.alice as string
    const permissionSetArn = seeded.permissionSetArns.ReadOnlyAccess as string
    const base = clock.now().getTime()
    const expiries = new Map<string, number>()
    const items: Record<string, unknown>[] = []
    for (let n = 0; n < grants; n++) {
      // One account a grant: every expiry removes an assignment of its own.
      const accountId = String(600000000000 + n)
      const expiresAt = base + 20_000 + LEAD_MS + Math.round((n * SPREAD_MS) / grants)
      const createdAt = new Date(base - 3600_000).toISOString()
      const grant: Grant = {
        id: `00000000-0000-7000-8000-${String(n).padStart(12, '0')}`,
        status: 'active',
        userName: 'alice',
        userId,
        accountId,
        permissionSet: 'ReadOnlyAccess',
        permissionSetArn,
        ticketId: `CHG${2000000 + n}`,
        justification: null,
        requestedBy: 'bench',
        createdAt,
        startsAt: createdAt,
        expiresAt: new Date(expiresAt).toISOString(),
        accessEndsBy: new Date(expiresAt + 8 * 3600_000).toISOString(),
        endedAt: null,
        endedBy: null,
        endReason: null,
        coveredBy: 'jit',
        failureReason: null,
        sessionsCutAt: null,
        groupName: null,
        groupId: null,
      }
      expiries.set(grant.id, expiresAt)
      items.push(grantToItem(grant, new Date(expiresAt)))
      items.push({
        ...coverageKey({ userId, accountId, permissionSetArn }),
        kind: 'coverage',
        target: { userId, accountId, permissionSetArn },
        holders: new Set([grant.id]),
        assignment: 'present',
        external: false,
        dueShard: 'due',
        dueAt: expiresAt + 3600_000,
      })
      await clients.ssoAdmin.send(
        new CreateAccountAssignmentCommand({
          InstanceArn: instance.instanceArn,
          TargetId: accountId,
          TargetType: 'AWS_ACCOUNT',
          PermissionSetArn: permissionSetArn,
          PrincipalType: 'USER',
          PrincipalId: userId,
        }),
      )
    }
    for (let i = 0; i < items.length; i += 25) {
      await doc.send(
        new BatchWriteCommand({
          RequestItems: { 'jit-grants': items.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } })) },
        }),
      )
    }
    // The first sweep runs LEAD_MS before the first expiry, then one every minute, until every grant has ended.
    const firstSweep = base + 20_000
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, firstSweep - clock.now().getTime())))
    const lastExpiry = Math.max(...expiries.values())
    for (let run = 0; ; run++) {
      const at = firstSweep + run * SWEEP_EVERY_MS
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, at - clock.now().getTime())))
      await service.app.runSweep({ actor: SWEEP_ACTOR, triggeredBy: 'bench' })
      if (at > lastExpiry) break
    }
    await service.app.dueTimers?.idle()
    const requested = new Map<string, number>()
    let startKey: Record<string, unknown> | undefined
    do {
      const page = await doc.send(new ScanCommand({ TableName: 'jit-audit', ExclusiveStartKey: startKey }))
      for (const item of page.Items ?? []) {
        if (item.action === 'grant.revoke_requested' && typeof item.grantId === 'string')
          requested.set(item.grantId, Date.parse(item.at as string))
      }
      startKey = page.LastEvaluatedKey
    } while (startKey)
    const overruns = [...expiries].flatMap(([id, expiresAt]) =>
      requested.has(id) ? [((requested.get(id) as number) - expiresAt) / 1000] : [],
    )
    return {
      path: timers ? 'timers' : 'sweep only',
      grants,
      ended: overruns.length,
      p50: percentile(overruns, 0.5),
      p99: percentile(overruns, 0.99),
      max: Math.max(...overruns),
    }
  } finally {
    clearInterval(ticker.handle)
    for (const fn of cleanups) await fn()
  }
}

export function describeExpiry(result: ExpiryOverrun): string {
  return `expiry overrun (${result.path}, ${result.ended}/${result.grants} grants over ${SPREAD_MS / 1000} s): p50 ${result.p50.toFixed(2)} s, p99 ${result.p99.toFixed(2)} s, max ${result.max.toFixed(2)} s`
}
