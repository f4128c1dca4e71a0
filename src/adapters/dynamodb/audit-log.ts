import { type DynamoDBDocumentClient, QueryCommand } from '@aws-sdk/lib-dynamodb'
import type { AuditEvent } from '../../core/audit.ts'
import {
  type ChainedAuditEvent,
  type ChainHead,
  EMPTY_CHAIN,
  type VerifyResult,
  verifyStoredChain,
} from '../../core/audit-chain.ts'
import { idBoundsAt } from '../../core/ids.ts'
import type {
  AuditAnchors,
  AuditFilter,
  AuditLog,
  OutboxClaim,
  Page,
  PageRequest,
  TimeRange,
} from '../../core/ports.ts'
import { callAws } from '../aws-errors.ts'
import type { DynamoAuditChain } from './audit-chain.ts'
import type { PageCursors } from './cursor.ts'
import { itemToAudit } from './items.ts'
import { outboxPuts } from './outbox-store.ts'
import { type PagedQuery, queryPage } from './paged-query.ts'
import { ALL_PARTITION, AUDIT_INDEXES } from './tables.ts'

const EXPORT_PAGE_SIZE = 500

/** Append-only: events are only ever put (linked into the chain), never updated, and have no TTL. */
export class DynamoAuditLog implements AuditLog {
  private readonly doc: DynamoDBDocumentClient
  private readonly table: string
  private readonly chain: DynamoAuditChain
  private readonly cursors: PageCursors
  /** Where the chain's head is anchored (see AuditAnchors); without it, verify checks the chain against itself only. */
  private readonly anchors: AuditAnchors | undefined

  constructor(
    doc: DynamoDBDocumentClient,
    table: string,
    chain: DynamoAuditChain,
    cursors: PageCursors,
    anchors?: AuditAnchors,
  ) {
    this.doc = doc
    this.table = table
    this.chain = chain
    this.cursors = cursors
    this.anchors = anchors
  }

  head(): Promise<ChainHead> {
    return this.chain.head()
  }

  async append(event: AuditEvent, outbox?: OutboxClaim): Promise<void> {
    // A refused outbox Put means an earlier send of this transaction was recorded, event and all.
    await this.chain.write(event, outboxPuts(this.chain.grantsTable, outbox))
  }

  query(filter: AuditFilter, page: PageRequest): Promise<Page<ChainedAuditEvent>> {
    return callAws('DynamoDB', 'Query', () =>
      queryPage(this.doc, this.cursors, this.plan(filter, page.limit, page.cursor), itemToAudit),
    )
  }

  async *stream(filter: AuditFilter, limit?: number): AsyncGenerator<ChainedAuditEvent> {
    let cursor: string | undefined
    let sent = 0
    do {
      const size = limit === undefined ? EXPORT_PAGE_SIZE : Math.min(EXPORT_PAGE_SIZE, limit - sent)
      const page = await this.query(filter, { limit: size, cursor })
      for (const event of page.items) yield event
      sent += page.items.length
      cursor = page.nextCursor ?? undefined
    } while (cursor && (limit === undefined || sent < limit))
  }

  async verify(range: TimeRange): Promise<VerifyResult> {
    if (!range.from && !range.to) return verifyStoredChain(this.chain, this.anchors, { startAfter: EMPTY_CHAIN })
    // A time range is verified from its first event, whose link to earlier events is taken as given;
    // to the chain's head when the range is open-ended.
    const first = range.from
      ? await this.edge(idBoundsAt(new Date(range.from)).lowest, 'oldest')
      : await this.edge(undefined, 'oldest')
    const last = range.to ? await this.edge(idBoundsAt(new Date(range.to)).highest, 'newest') : undefined
    if (!first || (range.to && !last) || (last && last.seq < first.seq))
      return { ok: true, events: 0, firstSeq: null, head: first?.prevHash ?? EMPTY_CHAIN.hash, anchored: false }
    return verifyStoredChain(this.chain, this.anchors, {
      startAfter: { seq: first.seq - 1, hash: first.prevHash },
      throughSeq: last?.seq,
    })
  }

  /** The oldest event at or after `bound`, or the newest at or before it. */
  private async edge(bound: string | undefined, which: 'oldest' | 'newest'): Promise<ChainedAuditEvent | undefined> {
    const result = await callAws('DynamoDB', 'Query', () =>
      this.doc.send(
        new QueryCommand({
          TableName: this.table,
          IndexName: AUDIT_INDEXES.all.name,
          KeyConditionExpression:
            bound === undefined ? 'stream = :all' : `stream = :all AND id ${which === 'oldest' ? '>=' : '<='} :bound`,
          ExpressionAttributeValues: { ':all': ALL_PARTITION, ...(bound === undefined ? {} : { ':bound': bound }) },
          ScanIndexForward: which === 'oldest',
          Limit: 1,
        }),
      ),
    )
    const item = result.Items?.[0]
    return item ? itemToAudit(item) : undefined
  }

  /** Picks the index for a filter: every index sorts by id, and ids sort by time, so from/to bound any of them. */
  private plan(filter: AuditFilter, limit: number, cursor: string | undefined): PagedQuery {
    const field = (['grantId', 'ticketId', 'userName', 'actor', 'accountId'] as const).find(
      (name) => filter[name] !== undefined,
    )
    const filters: Record<string, string> = {}
    for (const name of ['grantId', 'ticketId', 'userName', 'actor', 'accountId', 'action'] as const) {
      const value = filter[name]
      if (value !== undefined && name !== field) filters[name] = value
    }
    return {
      table: this.table,
      index: field ? AUDIT_INDEXES[field] : AUDIT_INDEXES.all,
      partitionValue: field ? (filter[field] as string) : ALL_PARTITION,
      sortBetween: {
        ...(filter.from ? { lowest: idBoundsAt(new Date(filter.from)).lowest } : {}),
        ...(filter.to ? { highest: idBoundsAt(new Date(filter.to)).highest } : {}),
      },
      filters,
      newestFirst: true,
      limit,
      cursor,
    }
  }
}
