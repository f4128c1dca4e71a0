/**
 * Exports at size: N audit events (default 100,000) in the audit table, then GET /audit as CSV and as NDJSON over
 * a real socket (the whole log, newest first), against a raw paginated Query of the same index with the same
 * page size in the same run. Reports the time to the first byte, the throughput as a ratio to the raw Query's,
 * and the process's RSS growth while the export runs. Part of `npm run bench` (`--only exports`).
 */
import { request } from 'node:http'
import type { AddressInfo } from 'node:net'
import { BatchWriteCommand, DynamoDBDocumentClient, QueryCommand } from '@aws-sdk/lib-dynamodb'
import { auditToItem } from '../../src/adapters/dynamodb/items.ts'
import { ALL_PARTITION, AUDIT_INDEXES } from '../../src/adapters/dynamodb/tables.ts'
import { deterministicId } from '../../src/core/ids.ts'
import type { MotoServer } from '../../src/sandbox/moto-server.ts'
import { build } from '../helpers/app.ts'
import { bearer } from '../helpers/tokens.ts'

/** The service's export page (src/adapters/dynamodb/audit-log.ts), so that both sides make as many requests. */
const PAGE = 500

export interface ExportRun {
  format: 'csv' | 'ndjson'
  events: number
  seconds: number
  firstByteMs: number
  bytes: number
  rssGrowthMb: number
  /** Events per second against the raw Query's, same run. */
  ratio: number
}

export interface ExportResults {
  events: number
  rawQuerySeconds: number
  runs: ExportRun[]
}

export async function measureExports(moto: MotoServer, events: number): Promise<ExportResults> {
  const cleanups: (() => unknown)[] = []
  try {
    // moto's Query reads the whole table for every page (about a second a page at 25,000 events): the service's
    // AWS calls may take that long here, not the tests' one second.
    const service = await build({ teardown: (fn) => void cleanups.unshift(fn) }, moto, { requestTimeoutMs: 60_000 })
    const doc = DynamoDBDocumentClient.from(service.clients.dynamo, {
      marshallOptions: { removeUndefinedValues: true },
    })
    const start = Date.now() - events * 1000
    const items = Array.from({ length: events }, (_, n) =>
      auditToItem({
        id: deterministicId(start + n * 1000, `bench-${n}`),
        at: new Date(start + n * 1000).toISOString(),
        action: 'grant.requested',
        actor: 'servicenow-workflow',
        grantId: deterministicId(start + n * 1000, `grant-${n}`),
        userName: `user${n % 50}`,
        accountId: String(100000000000 + (n % 20)),
        permissionSet: 'ReadOnlyAccess',
        ticketId: `CHG${1000000 + n}`,
        detail: "60 minutes allowed by rule 'oncall-incident-access'",
        requestId: `req-${n}`,
        correlationId: null,
        seq: n + 1,
        prevHash: 'a'.repeat(64),
        hash: 'b'.repeat(64),
      }),
    )
    const writers = 4
    await Promise.all(
      Array.from({ length: writers }, async (_, w) => {
        for (let i = w * 25; i < items.length; i += writers * 25) {
          await doc.send(
            new BatchWriteCommand({
              RequestItems: { 'jit-audit': items.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } })) },
            }),
          )
        }
      }),
    )

    // The floor: the same index, newest first, page by page, nothing done with the items.
    let began = performance.now()
    let counted = 0
    let startKey: Record<string, unknown> | undefined
    do {
      const page = await doc.send(
        new QueryCommand({
          TableName: 'jit-audit',
          IndexName: AUDIT_INDEXES.all.name,
          KeyConditionExpression: '#p = :p',
          ExpressionAttributeNames: { '#p': AUDIT_INDEXES.all.partitionKey },
          ExpressionAttributeValues: { ':p': ALL_PARTITION },
          ScanIndexForward: false,
          Limit: PAGE,
          ExclusiveStartKey: startKey,
        }),
      )
      counted += page.Items?.length ?? 0
      startKey = page.LastEvaluatedKey
    } while (startKey)
    const rawQuerySeconds = (performance.now() - began) / 1000
    if (counted !== events) throw new Error(`the raw Query read ${counted} events of ${events}`)

    await service.app.listen({ port: 0, host: '127.0.0.1' })
    const port = (service.app.server.address() as AddressInfo).port
    const runs: ExportRun[] = []
    for (const format of ['csv', 'ndjson'] as const) {
      // From the process's live memory (npm run bench gives node --expose-gc): what the sections before left to be
      // collected would otherwise decide how far the heap grows during the export (+21 MB alone, +68 after them).
      ;(globalThis as { gc?: () => void }).gc?.()
      const rssBefore = process.memoryUsage().rss
      let rssPeak = rssBefore
      const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage().rss)), 50)
      began = performance.now()
      let firstByteMs = NaN
      let bytes = 0
      let lines = 0
      await new Promise<void>((resolve, reject) => {
        const accept = format === 'csv' ? 'text/csv' : 'application/x-ndjson'
        request({ host: '127.0.0.1', port, path: '/audit', headers: { ...bearer(), accept } }, (response) => {
          if (response.statusCode !== 200) reject(new Error(`GET /audit as ${format} answered ${response.statusCode}`))
          response.on('data', (chunk: Buffer) => {
            if (Number.isNaN(firstByteMs)) firstByteMs = performance.now() - began
            bytes += chunk.length
            for (const byte of chunk) if (byte === 10) lines++
          })
          response.on('end', resolve)
          response.on('error', reject)
        })
          .on('error', reject)
          .end()
      })
      const seconds = (performance.now() - began) / 1000
      clearInterval(sampler)
      const exported = format === 'csv' ? lines - 1 : lines
      if (exported !== events) throw new Error(`the ${format} export had ${exported} events of ${events}`)
      runs.push({
        format,
        events,
        seconds,
        firstByteMs,
        bytes,
        rssGrowthMb: (rssPeak - rssBefore) / 2 ** 20,
        ratio: rawQuerySeconds / seconds,
      })
    }
    return { events, rawQuerySeconds, runs }
  } finally {
    for (const fn of cleanups) await fn()
  }
}

export function describeExports(results: ExportResults): string {
  return [
    `exports of ${results.events} audit events; raw paginated Query of the same index: ${results.rawQuerySeconds.toFixed(1)} s`,
    ...results.runs.map(
      (run) =>
        `  ${run.format}: ${run.seconds.toFixed(1)} s (${run.ratio.toFixed(2)}× the raw Query's throughput, goal ≥ 0.8×), ` +
        `first byte ${run.firstByteMs.toFixed(0)} ms (goal ≤ 1000), RSS +${run.rssGrowthMb.toFixed(0)} MB (goal ≤ 64), ${(run.bytes / 2 ** 20).toFixed(1)} MiB`,
    ),
  ].join('\n')
}
