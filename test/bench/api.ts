/**
 * The API under load, with autocannon: GET /grants (a page of 50, filtered by user) and GET /grants/{id} against a
 * bare Fastify + DynamoDB DocumentClient floor doing the same queries on the same tables, each run alternately for
 * the same time; then POST /grants at a steady 50 a second. Where the time goes: every AWS call goes through the
 * counting proxy, which times moto (by operation, for the POSTs), and the POST minute's CPU time is read for this
 * process, for the processes the caller names (moto's) and for the whole machine, which other work shares. Part of
 * `npm run bench` (`--only api`).
 */
import type { AddressInfo } from 'node:net'
import { availableParallelism } from 'node:os'
import { BatchWriteCommand, DynamoDBDocumentClient, GetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb'
import autocannon, { type Result } from 'autocannon'
import Fastify from 'fastify'
import { createAwsClients } from '../../src/adapters/aws.ts'
import { grantToItem } from '../../src/adapters/dynamodb/items.ts'
import { GRANT_INDEXES } from '../../src/adapters/dynamodb/tables.ts'
import type { Grant } from '../../src/core/grant-model.ts'
import { deterministicId } from '../../src/core/ids.ts'
import type { PolicyDocument } from '../../src/core/policy.ts'
import type { MotoServer } from '../../src/sandbox/moto-server.ts'
import { build, grantBody, REGION } from '../helpers/app.ts'
import { bearer } from '../helpers/tokens.ts'
import { cpuMsOf, machineTicks } from './cpu.ts'

export interface LoadRun {
  requestsPerSecond: number
  p50: number
  p99: number
  errors: number
  non2xx: number
}

export interface ApiResults {
  list: Compared
  get: Compared
  /** `motoBusy`: the share of the minute in which moto was serving at least one of the service's calls. */
  post: LoadRun & {
    rate: number
    seconds: number
    fiveXx: number
    timeouts: number
    firstRefusal: string | undefined
    callsPerRequest: number
    motoBusy: number
    /** Per AWS operation during the minute: calls a request, mean and p50 ms at the proxy (moto's plus the hop). */
    byOperation: Record<string, { perRequest: number; meanMs: number; p50Ms: number }>
    /**
     * This Node process (the service, the proxy and autocannon share it): CPU as a share of one core, and its event
     * loop's utilization, over the minute.
     */
    nodeCpu: number
    eventLoopUtilization: number
    /** The other processes' CPU (options.processes, e.g. each moto_server) as a share of one core, over the minute. */
    processCpu: Record<string, number>
    /** The whole machine's busy CPU over the minute, in cores (other tenants' work included), and its core count. */
    machineBusyCores: number
    cores: number
  }
}

const summary = (result: Result): LoadRun => ({
  requestsPerSecond: result.requests.average,
  p50: result.latency.p50,
  p99: result.latency.p99,
  errors: result.errors + result.timeouts,
  non2xx: result.non2xx,
})

/** Ours against the floor; moto's time (the proxy's timing of each call) per request of each, and our AWS calls per request. */
interface Compared {
  ours: LoadRun
  floor: LoadRun
  throughputRatio: number
  p99Ratio: number
  motoMsPerRequest: number
  floorMotoMsPerRequest: number
  callsPerRequest: number
}

export async function measureApi(
  moto: MotoServer,
  options: {
    seconds: number
    postSeconds: number
    policy: PolicyDocument
    /** Processes whose CPU to report for the POST minute, by name (Linux /proc). */
    processes?: Record<string, number | undefined>
  },
): Promise<ApiResults> {
  const cleanups: (() => unknown)[] = []
  try {
    // The service's own AWS timeout (10 s), as the floor's client has: the tests' 1 s would abandon and retry the
    // requests that wait longest in moto's queue, adding calls, errors and tail that only the service would pay.
    const service = await build({ teardown: (fn) => void cleanups.unshift(fn) }, moto, {
      proxy: true,
      policy: options.policy,
      requestTimeoutMs: 10_000,
    })
    const { app, proxy, seeded } = service
    const endpoint = `http://127.0.0.1:${(proxy!.server.address() as AddressInfo).port}`
    const doc = DynamoDBDocumentClient.from(createAwsClients({ region: REGION, endpoint }).dynamo, {
      marshallOptions: { removeUndefinedValues: true },
    })
    // 300 grants: alice's 150 spread among the others', so that a page of 50 filtered by user is a real Query.
    const now = Date.now()
    const ids: string[] = []
    const items = Array.from({ length: 300 }, (_, n) => {
      const createdAt = new Date(now - (300 - n) * 1000).toISOString()
      const userName = n % 2 ? 'alice' : 'bob'
      const grant: Grant = {
        id: deterministicId(now - (300 - n) * 1000, `api-${n}`),
        status: 'active',
        userName,
        userId: seeded.userIds[userName] as string,
        accountId: String(800000000000 + n),
        permissionSet: 'ReadOnlyAccess',
        permissionSetArn: seeded.permissionSetArns.ReadOnlyAccess as string,
        ticketId: `CHG${4000000 + n}`,
        justification: 'load',
        requestedBy: 'bench',
        createdAt,
        startsAt: createdAt,
        expiresAt: new Date(now + 3600_000).toISOString(),
        accessEndsBy: new Date(now + 7200_000).toISOString(),
        endedAt: null,
        endedBy: null,
        endReason: null,
        coveredBy: 'jit',
        failureReason: null,
        sessionsCutAt: null,
        groupName: null,
        groupId: null,
      }
      ids.push(grant.id)
      return grantToItem(grant, new Date(now + 3600_000))
    })
    for (let i = 0; i < items.length; i += 25) {
      await doc.send(
        new BatchWriteCommand({
          RequestItems: { 'jit-grants': items.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } })) },
        }),
      )
    }

    // The floor: the same two reads with the same client, no auth, no validation, no cursor, no mapping.
    const floor = Fastify()
    floor.get('/grants', async () => {
      const page = await doc.send(
        new QueryCommand({
          TableName: 'jit-grants',
          IndexName: GRANT_INDEXES.userName.name,
          KeyConditionExpression: '#u = :u',
          ExpressionAttributeNames: { '#u': GRANT_INDEXES.userName.partitionKey },
          ExpressionAttributeValues: { ':u': 'alice' },
          ScanIndexForward: false,
          Limit: 50,
        }),
      )
      return { items: page.Items, next: page.LastEvaluatedKey ?? null }
    })
    floor.get(
      '/grants/:id',
      async (request) =>
        (
          await doc.send(
            new GetCommand({ TableName: 'jit-grants', Key: { pk: `grant#${(request.params as { id: string }).id}` } }),
          )
        ).Item,
    )
    await floor.listen({ port: 0, host: '127.0.0.1' })
    cleanups.unshift(() => floor.close())
    await app.listen({ port: 0, host: '127.0.0.1' })
    const url = (server: typeof floor.server) => `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    const headers = bearer()

    let next = 0
    const anyId = (request: { path?: string }) => ({ ...request, path: `/grants/${ids[next++ % ids.length]}` })
    const load = (target: string, path: string, withAuth: boolean, seconds = options.seconds) =>
      autocannon({
        url: target,
        connections: 10,
        duration: seconds,
        timeout: 10,
        requests: [
          path === 'id'
            ? { method: 'GET', ...(withAuth ? { headers } : {}), setupRequest: anyId }
            : { method: 'GET', path, ...(withAuth ? { headers } : {}) },
        ],
      })
    const motoMsSince = (from: number) =>
      (proxy?.timings.slice(from) ?? []).reduce((sum, call) => sum + (call.end - call.start), 0)
    const compare = async (path: string): Promise<Compared> => {
      const oursFrom = proxy?.timings.length ?? 0
      const ours = await load(url(app.server), path, true)
      const oursCalls = (proxy?.timings.length ?? 0) - oursFrom
      const oursMotoMs = motoMsSince(oursFrom)
      const floorFrom = proxy?.timings.length ?? 0
      const theirs = await load(url(floor.server), path, false)
      return {
        ours: summary(ours),
        floor: summary(theirs),
        throughputRatio: ours.requests.average / theirs.requests.average,
        p99Ratio: ours.latency.p99 / theirs.latency.p99,
        motoMsPerRequest: oursMotoMs / Math.max(1, ours.requests.total),
        floorMotoMsPerRequest: motoMsSince(floorFrom) / Math.max(1, theirs.requests.total),
        callsPerRequest: oursCalls / Math.max(1, ours.requests.total),
      }
    }
    // Warm both (JIT, caches, connections), then measure.
    await load(url(app.server), '/grants?userName=alice&limit=50', true, 3)
    await load(url(floor.server), '/grants', false, 3)
    const list = await compare('/grants?userName=alice&limit=50')
    const get = await compare('id')

    let made = 0
    let firstRefusal: string | undefined
    const postFrom = proxy?.timings.length ?? 0
    const postStarted = performance.now()
    const cpuBefore = process.cpuUsage()
    const processesBefore = Object.fromEntries(
      Object.entries(options.processes ?? {}).map(([name, pid]) => [name, cpuMsOf(pid)]),
    )
    const machineBefore = machineTicks()
    const loopBefore = performance.eventLoopUtilization()
    const post = await autocannon({
      url: url(app.server),
      connections: 20,
      duration: options.postSeconds,
      overallRate: 50,
      timeout: 10,
      requests: [
        {
          method: 'POST',
          path: '/grants',
          headers: { ...headers, 'content-type': 'application/json' },
          onResponse: (status: number, body: string) => {
            if (status >= 300 && !firstRefusal) firstRefusal = `${status} ${body.slice(0, 300)}`
          },
          setupRequest: (request) => {
            const n = made++
            return {
              ...request,
              body: JSON.stringify(
                grantBody({
                  userName: n % 2 ? 'alice' : 'bob',
                  accountId: String(900000000000 + n),
                  permissionSet: n % 3 ? 'ReadOnlyAccess' : 'AdministratorAccess',
                  ticketId: `CHG${5000000 + n}`,
                }),
              ),
            }
          },
        },
      ],
    })
    const cpu = process.cpuUsage(cpuBefore)
    const loop = performance.eventLoopUtilization(loopBefore)
    const postElapsed = performance.now() - postStarted
    const machineAfter = machineTicks()
    const processCpu: Record<string, number> = {}
    for (const [name, pid] of Object.entries(options.processes ?? {})) {
      const before = processesBefore[name]
      const after = cpuMsOf(pid)
      if (before !== undefined && after !== undefined) processCpu[name] = (after - before) / postElapsed
    }
    const postCalls = proxy?.timings.slice(postFrom) ?? []
    const requests = Math.max(1, post.requests.total)
    const byOperation: ApiResults['post']['byOperation'] = {}
    for (const operation of new Set(postCalls.map((call) => call.operation))) {
      const ms = postCalls
        .filter((call) => call.operation === operation)
        .map((call) => call.end - call.start)
        .sort((a, b) => a - b)
      byOperation[operation] = {
        perRequest: ms.length / requests,
        meanMs: ms.reduce((sum, t) => sum + t, 0) / ms.length,
        p50Ms: ms[Math.floor(ms.length / 2)] as number,
      }
    }
    return {
      list,
      get,
      post: {
        ...summary(post),
        rate: 50,
        seconds: options.postSeconds,
        fiveXx: post['5xx'],
        timeouts: post.timeouts,
        firstRefusal,
        callsPerRequest: postCalls.length / requests,
        motoBusy: waitingIn(postCalls) / postElapsed,
        byOperation,
        nodeCpu: (cpu.user + cpu.system) / 1000 / postElapsed,
        eventLoopUtilization: loop.utilization,
        processCpu,
        machineBusyCores:
          machineBefore && machineAfter
            ? (availableParallelism() * (machineAfter.busy - machineBefore.busy)) /
              Math.max(1, machineAfter.total - machineBefore.total)
            : Number.NaN,
        cores: availableParallelism(),
      },
    }
  } finally {
    for (const fn of cleanups) await fn()
  }
}

/** How long at least one of these calls was under way: the union of their intervals. */
export function waitingIn(timings: { start: number; end: number }[]): number {
  let total = 0
  let coveredUntil = -Infinity
  for (const { start, end } of [...timings].sort((a, b) => a.start - b.start)) {
    if (end <= coveredUntil) continue
    total += end - Math.max(start, coveredUntil)
    coveredUntil = end
  }
  return total
}

export function describeApi(results: ApiResults): string {
  const line = (name: string, r: ApiResults['list']) =>
    `  ${name}: ${r.ours.requestsPerSecond.toFixed(0)} req/s, p99 ${r.ours.p99} ms; floor ${r.floor.requestsPerSecond.toFixed(0)} req/s, p99 ${r.floor.p99} ms → ` +
    `${r.throughputRatio.toFixed(2)}× throughput (goal ≥ 0.7×), ${r.p99Ratio.toFixed(2)}× p99 (goal ≤ 1.5×); ${r.ours.errors + r.ours.non2xx} errors; moto ${r.motoMsPerRequest.toFixed(1)} ms a request (floor's ${r.floorMotoMsPerRequest.toFixed(1)}), ${r.callsPerRequest.toFixed(2)} AWS calls a request`
  const post = results.post
  const percent = (share: number) => `${(share * 100).toFixed(0)} %`
  const processes = Object.entries(post.processCpu)
    .map(([name, share]) => `, ${name} ${percent(share)}`)
    .join('')
  const operations = Object.entries(post.byOperation)
    .sort(([, a], [, b]) => b.perRequest * b.meanMs - a.perRequest * a.meanMs)
    .map(([op, o]) => `${op} ${o.perRequest.toFixed(2)} × ${o.meanMs.toFixed(0)} / ${o.p50Ms.toFixed(0)}`)
    .join(', ')
  return [
    'API under load (autocannon, 10 connections):',
    line('GET /grants?userName=alice (page of 50)', results.list),
    line('GET /grants/{id}', results.get),
    `  POST /grants at ${post.rate}/s for ${post.seconds} s: ${post.requestsPerSecond.toFixed(1)} req/s, p50 ${post.p50} ms, p99 ${post.p99} ms, ${post.fiveXx} 5xx, ${post.errors} errors/timeouts, ${post.non2xx} non-2xx${post.firstRefusal ? ` (first: ${post.firstRefusal})` : ''}; ${post.callsPerRequest.toFixed(1)} AWS calls a request, moto busy ${percent(post.motoBusy)} of the time`,
    `  CPU during the POSTs, share of one core: this Node process (service, proxy, autocannon) ${percent(post.nodeCpu)}, its event loop busy ${percent(post.eventLoopUtilization)}${processes}; the machine ${post.machineBusyCores.toFixed(2)} of ${post.cores} cores busy (other work included)`,
    `  per AWS call during the POSTs (calls a request × mean / p50 ms at the proxy): ${operations}`,
  ].join('\n')
}
