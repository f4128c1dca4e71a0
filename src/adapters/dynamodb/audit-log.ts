import { PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb'
import type { AuditEvent } from '../../core/audit.ts'
import { idBoundsAt } from '../../core/ids.ts'
import type { AuditFilter, AuditLog, Page, PageRequest } from '../../core/ports.ts'
import { callAws } from '../aws-errors.ts'
import { auditToItem, itemToAudit } from './items.ts'
import { queryPage } from './paged-query.ts'
import { ALL_PARTITION, AUDIT_INDEXES } from './tables.ts'

/** Append-only: events are only ever put, never updated, and have no TTL. */
export class DynamoAuditLog implements AuditLog {
  private readonly doc: DynamoDBDocumentClient
  private readonly table: string

  constructor(doc: DynamoDBDocumentClient, table: string) {
    this.doc = doc
    this.table = table
  }

  async append(event: AuditEvent): Promise<void> {
    await callAws('DynamoDB', 'PutItem', () =>
      this.doc.send(new PutCommand({ TableName: this.table, Item: auditToItem(event), ConditionExpression: 'attribute_not_exists(pk)' })),
    )
  }

  query(filter: AuditFilter, page: PageRequest): Promise<Page<AuditEvent>> {
    // Every index sorts by id, and ids sort by time, so a time range is a key condition on any of them.
    const field = (['grantId', 'ticketId', 'userName', 'actor', 'accountId'] as const).find((name) => filter[name] !== undefined)
    const index = field ? AUDIT_INDEXES[field] : AUDIT_INDEXES.all
    const partitionValue = field ? (filter[field] as string) : ALL_PARTITION
    const filters: Record<string, string> = {}
    for (const name of ['grantId', 'ticketId', 'userName', 'actor', 'accountId', 'action'] as const) {
      const value = filter[name]
      if (value !== undefined && name !== field) filters[name] = value
    }
    const sortBetween = {
      ...(filter.from ? { lowest: idBoundsAt(new Date(filter.from)).lowest } : {}),
      ...(filter.to ? { highest: idBoundsAt(new Date(filter.to)).highest } : {}),
    }
    return callAws('DynamoDB', 'Query', () =>
      queryPage(this.doc, {
        table: this.table,
        index,
        partitionValue,
        sortBetween,
        filters,
        newestFirst: true,
        limit: page.limit,
        cursor: page.cursor,
      }, itemToAudit),
    )
  }
}
