import { GetCommand, PutCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb'
import type { IdempotencyRecord, IdempotencyStore, StoredResponse } from '../../http/idempotency.ts'
import { callAws } from '../aws-errors.ts'

const keyOf = (recordKey: string) => ({ pk: `idempotency#${recordKey}` })

/**
 * Idempotency records live in the grants table under their own key prefix. `ttl` (epoch seconds) is the
 * table's TTL attribute: DynamoDB removes records some time after it passes, and until then an expired
 * record counts as absent.
 */
export class DynamoIdempotencyStore implements IdempotencyStore {
  private readonly doc: DynamoDBDocumentClient
  private readonly table: string

  constructor(doc: DynamoDBDocumentClient, table: string) {
    this.doc = doc
    this.table = table
  }

  async claim(recordKey: string, fingerprint: string, now: number, expiresAt: number) {
    try {
      await callAws('DynamoDB', 'PutItem', () =>
        this.doc.send(new PutCommand({
          TableName: this.table,
          Item: { ...keyOf(recordKey), kind: 'idempotency', state: 'in_progress', fingerprint, firstClaimedAt: now, claimedAt: now, ttl: Math.ceil(expiresAt / 1000) },
          ConditionExpression: 'attribute_not_exists(pk) OR #ttl < :now',
          ExpressionAttributeNames: { '#ttl': 'ttl' },
          ExpressionAttributeValues: { ':now': Math.floor(now / 1000) },
        })),
      )
      return { claimed: true as const }
    } catch (error) {
      if ((error as { cause?: { name?: string } }).cause?.name !== 'ConditionalCheckFailedException') throw error
    }
    const found = await callAws('DynamoDB', 'GetItem', () =>
      this.doc.send(new GetCommand({ TableName: this.table, Key: keyOf(recordKey), ConsistentRead: true })),
    )
    const item = found.Item ?? {}
    const record: IdempotencyRecord = {
      state: item.state as IdempotencyRecord['state'],
      fingerprint: String(item.fingerprint),
      firstClaimedAt: Number(item.firstClaimedAt),
      claimedAt: Number(item.claimedAt),
      ...(item.response ? { response: item.response as StoredResponse } : {}),
    }
    return { claimed: false as const, record }
  }

  async takeOver(recordKey: string, previous: IdempotencyRecord, now: number): Promise<boolean> {
    try {
      await callAws('DynamoDB', 'UpdateItem', () =>
        this.doc.send(new UpdateCommand({
          TableName: this.table,
          Key: keyOf(recordKey),
          UpdateExpression: 'SET #state = :in_progress, claimedAt = :now',
          ConditionExpression: '#state = :previousState AND claimedAt = :previousClaimedAt',
          ExpressionAttributeNames: { '#state': 'state' },
          ExpressionAttributeValues: { ':in_progress': 'in_progress', ':now': now, ':previousState': previous.state, ':previousClaimedAt': previous.claimedAt },
        })),
      )
      return true
    } catch (error) {
      if ((error as { cause?: { name?: string } }).cause?.name === 'ConditionalCheckFailedException') return false
      throw error
    }
  }

  async complete(recordKey: string, response: StoredResponse): Promise<void> {
    await this.setState(recordKey, 'completed', response)
  }

  async release(recordKey: string): Promise<void> {
    await this.setState(recordKey, 'released')
  }

  private async setState(recordKey: string, state: IdempotencyRecord['state'], response?: StoredResponse): Promise<void> {
    await callAws('DynamoDB', 'UpdateItem', () =>
      this.doc.send(new UpdateCommand({
        TableName: this.table,
        Key: keyOf(recordKey),
        UpdateExpression: response ? 'SET #state = :state, #response = :response' : 'SET #state = :state',
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeNames: { '#state': 'state', ...(response ? { '#response': 'response' } : {}) },
        ExpressionAttributeValues: { ':state': state, ...(response ? { ':response': response } : {}) },
      })),
    )
  }
}
