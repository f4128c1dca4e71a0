import { type DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb'
import type { AuditEvent } from '../../core/audit.ts'
import { LeaseLostError } from '../../core/errors.ts'
import type { CutoffIntent, CutoffLedger, CutoffOutcome, OutboxClaim, SessionsCutChange } from '../../core/ports.ts'
import { callAws } from '../aws-errors.ts'
import type { DynamoAuditChain } from './audit-chain.ts'
import { conditionalRetrying } from './conditional.ts'
import { grantKey } from './items.ts'
import { outboxPuts } from './outbox-store.ts'
import { GRANT_INDEXES } from './tables.ts'

/** Partition of the `due` index that holds open cut-off intents (the sweep's own grants and coverage use 'due'). */
export const CUTOFF_PARTITION = 'cutoff'
const LEASE_KEY = { pk: 'cutoff-policies#lease' }
const intentKey = (grantId: string) => ({ pk: `cutoff#${grantId}` })

const INTENT_FIELDS = [
  'grantId',
  'userId',
  'accountId',
  'permissionSet',
  'cutAt',
  'keepUntil',
  'grant',
  'outcome',
] as const satisfies readonly (keyof CutoffIntent)[]

/**
 * Session cut-off intents and the lease over the owned policies, in the grants table: an intent is an item of
 * its own (`cutoff#<grant id>`) on its own partition of the sparse `due` index, so the grants' and coverage's
 * queries never see it; the lease is one item, taken and given up by conditional writes like the coverage lease.
 */
export class DynamoCutoffLedger implements CutoffLedger {
  private readonly doc: DynamoDBDocumentClient
  private readonly table: string
  private readonly chain: DynamoAuditChain

  constructor(doc: DynamoDBDocumentClient, table: string, chain: DynamoAuditChain) {
    this.doc = doc
    this.table = table
    this.chain = chain
  }

  async recordIntent(intent: CutoffIntent): Promise<void> {
    const item = {
      ...intentKey(intent.grantId),
      kind: 'cutoff',
      ...intent,
      dueShard: CUTOFF_PARTITION,
      dueAt: Date.parse(intent.cutAt),
    }
    await conditionalRetrying('PutItem', () =>
      this.doc.send(
        new PutCommand({ TableName: this.table, Item: item, ConditionExpression: 'attribute_not_exists(pk)' }),
      ),
    )
  }

  async openIntents(limit: number): Promise<CutoffIntent[]> {
    const { due } = GRANT_INDEXES
    const result = await callAws('DynamoDB', 'Query', () =>
      this.doc.send(
        new QueryCommand({
          TableName: this.table,
          IndexName: due.name,
          KeyConditionExpression: 'dueShard = :cutoff',
          ExpressionAttributeValues: { ':cutoff': CUTOFF_PARTITION },
          Limit: limit,
        }),
      ),
    )
    return (result.Items ?? []).map(
      (item) => Object.fromEntries(INTENT_FIELDS.map((field) => [field, item[field]])) as unknown as CutoffIntent,
    )
  }

  async acquireLease(owner: string, now: Date, until: Date): Promise<boolean> {
    const outcome = await conditionalRetrying('UpdateItem', () =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: LEASE_KEY,
          UpdateExpression: 'SET kind = :kind, leaseOwner = :owner, leaseUntil = :until',
          ConditionExpression: 'attribute_not_exists(leaseOwner) OR leaseUntil < :now OR leaseOwner = :owner',
          ExpressionAttributeValues: {
            ':kind': 'cutoff-lease',
            ':owner': owner,
            ':until': until.getTime(),
            ':now': now.getTime(),
          },
        }),
      ),
    )
    return outcome.applied
  }

  async renewLease(owner: string, now: Date, until: Date): Promise<void> {
    const outcome = await conditionalRetrying('UpdateItem', () =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: LEASE_KEY,
          UpdateExpression: 'SET leaseUntil = :until',
          ConditionExpression: 'leaseOwner = :owner AND leaseUntil > :now',
          ExpressionAttributeValues: { ':owner': owner, ':now': now.getTime(), ':until': until.getTime() },
        }),
      ),
    )
    if (!outcome.applied) throw new LeaseLostError()
  }

  async releaseLease(owner: string, nextPruneAt: number | null | undefined): Promise<void> {
    const prune = nextPruneAt === undefined ? '' : nextPruneAt === null ? ', nextPruneAt' : ''
    const set = typeof nextPruneAt === 'number' ? ' SET nextPruneAt = :next' : ''
    await conditionalRetrying('UpdateItem', () =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: LEASE_KEY,
          UpdateExpression: `REMOVE leaseOwner, leaseUntil${prune}${set}`,
          ConditionExpression: 'leaseOwner = :owner',
          ExpressionAttributeValues: { ':owner': owner, ...(set ? { ':next': nextPruneAt } : {}) },
        }),
      ),
    )
  }

  async nextPruneAt(): Promise<number | null> {
    const result = await callAws('DynamoDB', 'GetItem', () =>
      this.doc.send(new GetCommand({ TableName: this.table, Key: LEASE_KEY, ConsistentRead: true })),
    )
    return typeof result.Item?.nextPruneAt === 'number' ? result.Item.nextPruneAt : null
  }

  async recordOutcome(grantIds: string[], outcome: Exclude<CutoffOutcome, 'pending'>): Promise<void> {
    for (const grantId of grantIds) {
      await conditionalRetrying('UpdateItem', () =>
        this.doc.send(
          new UpdateCommand({
            TableName: this.table,
            Key: intentKey(grantId),
            UpdateExpression: 'SET outcome = :outcome',
            ConditionExpression: 'attribute_exists(pk)',
            ExpressionAttributeValues: { ':outcome': outcome },
          }),
        ),
      )
    }
  }

  async report(
    intent: CutoffIntent,
    change: SessionsCutChange,
    event: AuditEvent,
    outbox?: OutboxClaim,
  ): Promise<boolean> {
    const set = change
      ? {
          UpdateExpression: 'SET sessionsCutAt = :cut, accessEndsBy = :ends',
          values: { ':cut': change.sessionsCutAt, ':ends': change.accessEndsBy },
        }
      : // Nothing changes on the grant; the update only carries the condition (no ConditionCheck: one IAM action fewer).
        { UpdateExpression: 'SET sessionsCutAt = if_not_exists(sessionsCutAt, :none)', values: { ':none': null } }
    const outcome = await this.chain.write(event, [
      {
        Update: {
          TableName: this.table,
          Key: grantKey(intent.grantId),
          UpdateExpression: set.UpdateExpression,
          ConditionExpression: '#status IN (:expired, :revoked)',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ...set.values, ':expired': 'expired', ':revoked': 'revoked' },
        },
      },
      {
        Delete: { TableName: this.table, Key: intentKey(intent.grantId), ConditionExpression: 'attribute_exists(pk)' },
      },
      ...outboxPuts(this.table, outbox),
    ])
    return outcome.written
  }
}
