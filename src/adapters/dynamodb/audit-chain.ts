import {
  type DynamoDBDocumentClient,
  GetCommand,
  paginateQuery,
  QueryCommand,
  TransactWriteCommand,
} from '@aws-sdk/lib-dynamodb'
import type { AuditEvent } from '../../core/audit.ts'
import {
  AuditEventExistsError,
  type ChainedAuditEvent,
  type ChainHead,
  EMPTY_CHAIN,
  linkEvent,
  sameEventContent,
} from '../../core/audit-chain.ts'
import { ensureTimeFor } from '../../core/deadline.ts'
import { pause } from '../../core/retry.ts'
import { callAws } from '../aws-errors.ts'
import { auditKey, auditToItem, itemToAudit } from './items.ts'
import { ALL_PARTITION, AUDIT_INDEXES } from './tables.ts'

/** The chain's head pointer lives in the grants table, so the audit table itself only ever receives new items. */
const HEAD_KEY = { pk: 'audit-chain#head' }
const MAX_ATTEMPTS = 40

type TransactItem = NonNullable<ConstructorParameters<typeof TransactWriteCommand>[0]['TransactItems']>[number]

export type ChainWrite = { written: true } | { written: false; refused: number[] }

export interface ChainTables {
  grants: string
  audit: string
}

/**
 * Appends audit events to one chain shared by every writer. Each event is written in the same transaction
 * as the state change it records and as the head's advance, on the condition that the head has not moved;
 * a writer that lost the race reads the new head and links again. So concurrent writers still build a
 * single chain, and an event exists only if its state change does.
 */
export class DynamoAuditChain {
  private readonly doc: DynamoDBDocumentClient
  private readonly tables: ChainTables
  /** Writers in this process take turns, so they never race each other for the head. */
  private queue: Promise<unknown> = Promise.resolve()
  /** The head as this process last wrote it; another process may have moved it since (then the write's condition fails and we read it). */
  private knownHead: ChainHead | undefined

  constructor(doc: DynamoDBDocumentClient, tables: ChainTables) {
    this.doc = doc
    this.tables = tables
  }

  /** The table that holds the chain's head, where state changes written with events live too. */
  get grantsTable(): string {
    return this.tables.grants
  }

  async head(): Promise<ChainHead> {
    const result = await callAws('DynamoDB', 'GetItem', () =>
      this.doc.send(new GetCommand({ TableName: this.tables.grants, Key: HEAD_KEY, ConsistentRead: true })),
    )
    return result.Item ? { seq: Number(result.Item.seq), hash: String(result.Item.hash) } : EMPTY_CHAIN
  }

  /**
   * Writes `others` (conditional state changes) and the linked event atomically. When one of the others'
   * conditions failed, nothing was written and `refused` names which of them (by position in `others`).
   */
  write(event: AuditEvent, others: TransactItem[], options: { withinDeadline?: boolean } = {}): Promise<ChainWrite> {
    const turn = this.queue.then(() => this.writeNow(event, others, options.withinDeadline === true))
    this.queue = turn.catch(() => undefined)
    return turn
  }

  private async writeNow(event: AuditEvent, others: TransactItem[], withinDeadline: boolean): Promise<ChainWrite> {
    for (let attempt = 1; ; attempt++) {
      // A write that must land before the request's deadline (a new grant, whose request may already have
      // been answered 503 while it waited its turn here) is not sent after it.
      if (withinDeadline) ensureTimeFor(0)
      const head = this.knownHead ?? (await this.head())
      this.knownHead = undefined
      const linked = linkEvent(event, head)
      const items: TransactItem[] = [
        ...others,
        {
          Put: {
            TableName: this.tables.audit,
            Item: auditToItem(linked),
            ConditionExpression: 'attribute_not_exists(pk)',
          },
        },
        // The head is written whole (it holds nothing else): the condition is all that makes the advance safe.
        {
          Put: {
            TableName: this.tables.grants,
            Item: { ...HEAD_KEY, seq: linked.seq, hash: linked.hash },
            ...(head.seq === 0
              ? { ConditionExpression: 'attribute_not_exists(pk)' }
              : { ConditionExpression: 'seq = :previous', ExpressionAttributeValues: { ':previous': head.seq } }),
          },
        },
      ]
      try {
        await this.doc.send(new TransactWriteCommand({ TransactItems: items }))
        this.knownHead = { seq: linked.seq, hash: linked.hash }
        return { written: true }
      } catch (error) {
        const reasons = (error as { name?: string; CancellationReasons?: { Code?: string }[] }).CancellationReasons
        if ((error as Error).name !== 'TransactionCanceledException' || !reasons)
          return callAws('DynamoDB', 'TransactWriteItems', () => Promise.reject(error))
        const refused = reasons
          .slice(0, others.length)
          .flatMap((r, index) => (r.Code === 'ConditionalCheckFailed' ? [index] : []))
        if (refused.length > 0) return { written: false, refused }
        if (reasons[others.length]?.Code === 'ConditionalCheckFailed') {
          // The id is taken, and linking again would not free it. The same event is there when an earlier send
          // of this one took effect and its answer was lost (the SDK sent it again): then it is recorded. With
          // state changes, those would have been refused first, so an event there means they were not made.
          if (others.length === 0 && (await this.isRecorded(event))) return { written: true }
          throw new AuditEventExistsError(event.id)
        }
        const raced = reasons.some((r) => r.Code === 'ConditionalCheckFailed' || r.Code === 'TransactionConflict')
        if (!raced || attempt === MAX_ATTEMPTS)
          return callAws('DynamoDB', 'TransactWriteItems', () => Promise.reject(error))
        // Another writer advanced the head first: link to the new head after a short, jittered pause.
        await pause(Math.min(5 * attempt, 50) * (0.5 + Math.random()))
      }
    }
  }

  /** Read with a Query: the service may only put and query the audit table (infra/stack.ts). */
  private async isRecorded(event: AuditEvent): Promise<boolean> {
    const result = await callAws('DynamoDB', 'Query', () =>
      this.doc.send(
        new QueryCommand({
          TableName: this.tables.audit,
          KeyConditionExpression: 'pk = :pk',
          ExpressionAttributeValues: { ':pk': auditKey(event.id).pk },
          ConsistentRead: true,
        }),
      ),
    )
    const item = result.Items?.[0]
    return item !== undefined && sameEventContent(itemToAudit(item), event)
  }

  /** The events after `afterSeq`, in chain order, read page by page. */
  async *eventsAfter(afterSeq: number, throughSeq?: number): AsyncGenerator<ChainedAuditEvent> {
    const pages = paginateQuery(
      { client: this.doc, pageSize: 1000 },
      {
        TableName: this.tables.audit,
        IndexName: AUDIT_INDEXES.chain.name,
        KeyConditionExpression:
          throughSeq === undefined
            ? 'stream = :all AND seq > :after'
            : 'stream = :all AND seq BETWEEN :first AND :last',
        ExpressionAttributeValues:
          throughSeq === undefined
            ? { ':all': ALL_PARTITION, ':after': afterSeq }
            : { ':all': ALL_PARTITION, ':first': afterSeq + 1, ':last': throughSeq },
      },
    )
    for await (const page of pages) {
      for (const item of page.Items ?? []) yield itemToAudit(item)
    }
  }
}
