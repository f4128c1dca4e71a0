import { DeleteCommand, type DynamoDBDocumentClient, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb'
import type { AuditEvent } from '../../core/audit.ts'
import type { OutboxClaim, OutboxMessage, OutboxStore } from '../../core/ports.ts'
import { callAws } from '../aws-errors.ts'
import type { DynamoAuditChain } from './audit-chain.ts'
import { conditionalRetrying, retryingConflicts } from './conditional.ts'
import { GRANT_INDEXES, OUTBOX_PARTITION } from './tables.ts'

const outboxKey = (message: Pick<OutboxMessage, 'channel' | 'event'>) => ({
  pk: `outbox#${message.event.id}#${message.channel}`,
})

/**
 * The Puts that record a claim's messages, for the transaction that records their event. The event and the
 * grant's times are kept in one map attribute, so that no index on the grants table (by user, account,
 * ticket) ever lists a message as a grant. `dueAt` is when the writer's claim runs out: the sweep's query on
 * the outbox partition sees the message only after that.
 */
export function outboxPuts(table: string, claim: OutboxClaim | undefined) {
  return (claim?.messages ?? []).map((message) => ({
    Put: {
      TableName: table,
      Item: {
        ...outboxKey(message),
        kind: 'outbox',
        channel: message.channel,
        message: { event: message.event, window: message.window },
        attempts: message.attempts,
        recordedAt: message.recordedAt,
        claimOwner: claim?.owner,
        dueShard: OUTBOX_PARTITION,
        dueAt: claim?.until.getTime(),
      },
      ConditionExpression: 'attribute_not_exists(pk)',
    },
  }))
}

export class DynamoOutboxStore implements OutboxStore {
  private readonly doc: DynamoDBDocumentClient
  private readonly table: string
  private readonly chain: DynamoAuditChain

  constructor(doc: DynamoDBDocumentClient, table: string, chain: DynamoAuditChain) {
    this.doc = doc
    this.table = table
    this.chain = chain
  }

  async due(now: Date, limit: number): Promise<OutboxMessage[]> {
    const { due } = GRANT_INDEXES
    const result = await callAws('DynamoDB', 'Query', () =>
      retryingConflicts(() =>
        this.doc.send(
          new QueryCommand({
            TableName: this.table,
            IndexName: due.name,
            KeyConditionExpression: 'dueShard = :outbox AND dueAt <= :now',
            ExpressionAttributeValues: { ':outbox': OUTBOX_PARTITION, ':now': now.getTime() },
            Limit: limit,
          }),
        ),
      ),
    )
    return (result.Items ?? []).map((item) => {
      const stored = item.message as { event: AuditEvent; window: OutboxMessage['window'] }
      return {
        channel: item.channel as OutboxMessage['channel'],
        event: stored.event,
        window: stored.window ?? null,
        attempts: Number(item.attempts ?? 0),
        recordedAt: Number(item.recordedAt),
      }
    })
  }

  async claim(message: OutboxMessage, owner: string, now: Date, until: Date): Promise<boolean> {
    const outcome = await conditionalRetrying('UpdateItem', () =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: outboxKey(message),
          UpdateExpression: 'SET claimOwner = :owner, dueAt = :until',
          // Due means unclaimed: the writer's claim, or a failed attempt's, has run out.
          ConditionExpression: 'attribute_exists(pk) AND dueAt <= :now',
          ExpressionAttributeValues: { ':owner': owner, ':until': until.getTime(), ':now': now.getTime() },
        }),
      ),
    )
    return outcome.applied
  }

  async delivered(message: OutboxMessage, owner: string): Promise<void> {
    await conditionalRetrying('DeleteItem', () =>
      this.doc.send(
        new DeleteCommand({
          TableName: this.table,
          Key: outboxKey(message),
          ConditionExpression: 'claimOwner = :owner',
          ExpressionAttributeValues: { ':owner': owner },
        }),
      ),
    )
  }

  async retryAt(message: OutboxMessage, owner: string, at: Date, error: string): Promise<void> {
    await conditionalRetrying('UpdateItem', () =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: outboxKey(message),
          UpdateExpression: 'SET dueAt = :at, attempts = :attempts, lastError = :error REMOVE claimOwner',
          ConditionExpression: 'claimOwner = :owner',
          ExpressionAttributeValues: {
            ':owner': owner,
            ':at': at.getTime(),
            ':attempts': message.attempts + 1,
            ':error': error,
          },
        }),
      ),
    )
  }

  async giveUp(message: OutboxMessage, owner: string, event: AuditEvent): Promise<void> {
    await this.chain.write(event, [
      {
        Delete: {
          TableName: this.table,
          Key: outboxKey(message),
          ConditionExpression: 'claimOwner = :owner',
          ExpressionAttributeValues: { ':owner': owner },
        },
      },
    ])
  }
}
