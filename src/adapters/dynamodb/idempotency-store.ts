import { type DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb'
import type { IdempotencyClaim, IdempotencyRecord, IdempotencyStore, StoredResponse } from '../../core/ports.ts'
import { callAws } from '../aws-errors.ts'
import { conditionalWrite } from './conditional.ts'
import { GRANTS_TTL_ATTRIBUTE } from './tables.ts'

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

  async claim(recordKey: string, claim: IdempotencyClaim) {
    const { fingerprint, now, expiresAt, owner } = claim
    const { applied: written } = await conditionalWrite('PutItem', () =>
      this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: {
            ...keyOf(recordKey),
            kind: 'idempotency',
            state: 'in_progress',
            fingerprint,
            firstClaimedAt: now,
            claimedAt: now,
            owner,
            [GRANTS_TTL_ATTRIBUTE]: Math.ceil(expiresAt / 1000),
          },
          ConditionExpression: 'attribute_not_exists(pk) OR #ttl < :now',
          ExpressionAttributeNames: { '#ttl': GRANTS_TTL_ATTRIBUTE },
          ExpressionAttributeValues: { ':now': Math.floor(now / 1000) },
        }),
      ),
    )
    const record = written ? undefined : await this.read(recordKey)
    // Our own write, applied before a dropped answer and then refused on the SDK's retry, is still ours.
    if (!record || record.owner === owner) return { claimed: true as const }
    return { claimed: false as const, record }
  }

  async takeOver(recordKey: string, previous: IdempotencyRecord, claim: IdempotencyClaim): Promise<boolean> {
    const { applied: written } = await conditionalWrite('UpdateItem', () =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: keyOf(recordKey),
          UpdateExpression: 'SET #state = :in_progress, claimedAt = :now, #owner = :owner',
          ConditionExpression: '#state = :previousState AND claimedAt = :previousClaimedAt',
          ExpressionAttributeNames: { '#state': 'state', '#owner': 'owner' },
          ExpressionAttributeValues: {
            ':in_progress': 'in_progress',
            ':now': claim.now,
            ':owner': claim.owner,
            ':previousState': previous.state,
            ':previousClaimedAt': previous.claimedAt,
          },
        }),
      ),
    )
    return written || (await this.read(recordKey))?.owner === claim.owner
  }

  private async read(recordKey: string): Promise<IdempotencyRecord | undefined> {
    const found = await callAws('DynamoDB', 'GetItem', () =>
      this.doc.send(new GetCommand({ TableName: this.table, Key: keyOf(recordKey), ConsistentRead: true })),
    )
    const item = found.Item
    if (!item) return undefined
    return {
      state: item.state as IdempotencyRecord['state'],
      fingerprint: String(item.fingerprint),
      firstClaimedAt: Number(item.firstClaimedAt),
      claimedAt: Number(item.claimedAt),
      owner: String(item.owner),
      ...(item.response ? { response: item.response as StoredResponse } : {}),
    }
  }

  async complete(recordKey: string, response: StoredResponse): Promise<void> {
    await this.setState(recordKey, 'completed', response)
  }

  async release(recordKey: string): Promise<void> {
    await this.setState(recordKey, 'released')
  }

  private async setState(
    recordKey: string,
    state: IdempotencyRecord['state'],
    response?: StoredResponse,
  ): Promise<void> {
    await callAws('DynamoDB', 'UpdateItem', () =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: keyOf(recordKey),
          UpdateExpression: response ? 'SET #state = :state, #response = :response' : 'SET #state = :state',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeNames: { '#state': 'state', ...(response ? { '#response': 'response' } : {}) },
          ExpressionAttributeValues: { ':state': state, ...(response ? { ':response': response } : {}) },
        }),
      ),
    )
  }
}
