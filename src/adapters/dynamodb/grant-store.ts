import {
  DeleteCommand,
  GetCommand,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb'
import type { AuditEvent } from '../../core/audit.ts'
import { DomainError } from '../../core/errors.ts'
import type { AssignmentTarget, Grant } from '../../core/grant.ts'
import { COVERAGE_CHECK_INTERVAL_MS } from '../../core/coverage.ts'
import type { Coverage, CoveragePatch, GrantFilter, GrantStore, GrantTransition, Page, PageRequest } from '../../core/ports.ts'
import { callAws } from '../aws-errors.ts'
import type { DynamoAuditChain } from './audit-chain.ts'
import { coverageKey, grantKey, grantToItem, itemToGrant } from './items.ts'
import { queryPage } from './paged-query.ts'
import { ALL_PARTITION, DUE_PARTITION, GRANT_INDEXES } from './tables.ts'

export class LeaseLostError extends DomainError {
  constructor() {
    super('LEASE_LOST', 'Another process took over the assignment while this one was changing it')
  }
}

export interface TableNames {
  grants: string
  audit: string
}

const TRANSACTION_ATTEMPTS = 5

/** DynamoDB cancels a transaction that races another on the same item; it is safe to send again. */
const isTransactionConflict = (error: unknown): boolean => {
  const e = error as { name?: string; CancellationReasons?: { Code?: string }[] }
  return e?.name === 'TransactionCanceledException' &&
    (e.CancellationReasons?.some((r) => r.Code === 'TransactionConflict') ?? false) &&
    !isConditionFailure(error)
}

const isConditionFailure = (error: unknown): boolean => {
  const e = error as { name?: string; message?: string; CancellationReasons?: { Code?: string }[] }
  if (e?.name === 'ConditionalCheckFailedException') return true
  if (e?.name !== 'TransactionCanceledException') return false
  return e.CancellationReasons?.some((r) => r.Code === 'ConditionalCheckFailed') ?? /ConditionalCheckFailed/.test(e.message ?? '')
}

/** Grants, their assignment coverage and the coverage lease, in one DynamoDB table; audit events are written in the same transactions. */
export class DynamoGrantStore implements GrantStore {
  private readonly doc: DynamoDBDocumentClient
  private readonly tables: TableNames
  private readonly chain: DynamoAuditChain

  constructor(doc: DynamoDBDocumentClient, tables: TableNames, chain: DynamoAuditChain) {
    this.doc = doc
    this.tables = tables
    this.chain = chain
  }

  createGrant(grant: Grant, dueAt: Date, event: AuditEvent): Promise<boolean> {
    return this.chain.write(event, [
      { Put: { TableName: this.tables.grants, Item: grantToItem(grant, dueAt), ConditionExpression: 'attribute_not_exists(pk)' } },
      { Update: this.holderUpdate(grant, 'ADD', Date.parse(event.at)) },
    ])
  }

  async getGrant(id: string): Promise<Grant | undefined> {
    const result = await this.call('GetItem', () =>
      this.doc.send(new GetCommand({ TableName: this.tables.grants, Key: grantKey(id), ConsistentRead: true })),
    )
    return result.Item?.kind === 'grant' ? itemToGrant(result.Item) : undefined
  }

  async transition(change: GrantTransition): Promise<Grant | undefined> {
    const names: Record<string, string> = { '#status': 'status' }
    const values: Record<string, unknown> = { ':to': change.to }
    const sets = ['#status = :to']
    const removes: string[] = []
    for (const [field, value] of Object.entries(change.set ?? {})) {
      names[`#${field}`] = field
      values[`:${field}`] = value
      sets.push(`#${field} = :${field}`)
    }
    if (change.dueAt) {
      Object.assign(values, { ':dueShard': DUE_PARTITION, ':dueAt': change.dueAt.getTime() })
      sets.push('dueShard = :dueShard', 'dueAt = :dueAt')
    } else {
      removes.push('dueShard', 'dueAt')
    }
    const fromNames = change.from.map((_, i) => `:from${i}`)
    change.from.forEach((status, i) => (values[`:from${i}`] = status))

    const grant = await this.getGrant(change.id)
    if (!grant || !change.from.includes(grant.status)) return undefined
    const written = await this.chain.write(change.event, [
      {
        Update: {
          TableName: this.tables.grants,
          Key: grantKey(change.id),
          UpdateExpression: `SET ${sets.join(', ')}${removes.length ? ` REMOVE ${removes.join(', ')}` : ''}`,
          ConditionExpression: `#status IN (${fromNames.join(', ')})`,
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
        },
      },
      ...(change.releaseHold ? [{ Update: this.holderUpdate(grant, 'DELETE', Date.parse(change.event.at)) }] : []),
    ])
    if (!written) return undefined
    return this.getGrant(change.id)
  }

  listGrants(filter: GrantFilter, page: PageRequest): Promise<Page<Grant>> {
    // The most selective filter picks the index; the others are applied to what it returns.
    const field = (['ticketId', 'userName', 'accountId'] as const).find((name) => filter[name] !== undefined)
    const index = field ? GRANT_INDEXES[field] : GRANT_INDEXES.all
    const partitionValue = field ? (filter[field] as string) : ALL_PARTITION
    const filters = Object.fromEntries(
      Object.entries(filter).filter(([name, value]) => name !== field && value !== undefined),
    ) as Record<string, string>
    return this.call('Query', () =>
      queryPage(this.doc, {
        table: this.tables.grants,
        index,
        partitionValue,
        filters,
        newestFirst: true,
        limit: page.limit,
        cursor: page.cursor,
      }, itemToGrant),
    )
  }

  async dueItems(now: Date, cursor: string | undefined, limit: number) {
    const result = await this.call('Query', () =>
      this.doc.send(new QueryCommand({
        TableName: this.tables.grants,
        IndexName: GRANT_INDEXES.due.name,
        KeyConditionExpression: 'dueShard = :due AND dueAt <= :now',
        ExpressionAttributeValues: { ':due': DUE_PARTITION, ':now': now.getTime() },
        Limit: limit,
        ...(cursor ? { ExclusiveStartKey: JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) } : {}),
      })),
    )
    const items = result.Items ?? []
    return {
      grants: items.filter((item) => item.kind === 'grant').map(itemToGrant),
      coverages: items.filter((item) => item.kind === 'coverage').map((item) => item.target as AssignmentTarget),
      cursor: result.LastEvaluatedKey ? Buffer.from(JSON.stringify(result.LastEvaluatedKey)).toString('base64url') : undefined,
    }
  }

  async scheduleCoverageCheck(target: AssignmentTarget, at: Date): Promise<void> {
    await this.conditional(() =>
      this.doc.send(new UpdateCommand({
        TableName: this.tables.grants,
        Key: coverageKey(target),
        UpdateExpression: 'SET dueShard = :due, dueAt = :at',
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeValues: { ':due': DUE_PARTITION, ':at': at.getTime() },
      })),
    )
  }

  async getCoverage(target: AssignmentTarget): Promise<Coverage | undefined> {
    const result = await this.call('GetItem', () =>
      this.doc.send(new GetCommand({ TableName: this.tables.grants, Key: coverageKey(target), ConsistentRead: true })),
    )
    const item = result.Item
    if (!item) return undefined
    return {
      target,
      holders: item.holders instanceof Set ? [...(item.holders as Set<string>)] : [],
      assignment: (item.assignment as Coverage['assignment'] | undefined) ?? 'absent',
      external: item.external === true,
      requestId: (item.requestId as string | undefined) ?? null,
      lastFailure: (item.lastFailure as string | undefined) ?? null,
    }
  }

  async acquireLease(target: AssignmentTarget, owner: string, now: Date, until: Date): Promise<boolean> {
    return this.conditional(() =>
      this.doc.send(new UpdateCommand({
        TableName: this.tables.grants,
        Key: coverageKey(target),
        UpdateExpression: 'SET leaseOwner = :owner, leaseUntil = :until',
        ConditionExpression: 'attribute_exists(pk) AND (attribute_not_exists(leaseOwner) OR leaseUntil < :now)',
        ExpressionAttributeValues: { ':owner': owner, ':until': until.getTime(), ':now': now.getTime() },
      })),
    )
  }

  async updateCoverage(target: AssignmentTarget, owner: string, patch: CoveragePatch): Promise<void> {
    const names: Record<string, string> = {}
    const values: Record<string, unknown> = { ':owner': owner }
    const sets: string[] = []
    for (const [field, value] of Object.entries(patch)) {
      names[`#${field}`] = field
      values[`:${field}`] = value
      sets.push(`#${field} = :${field}`)
    }
    const applied = await this.conditional(() =>
      this.doc.send(new UpdateCommand({
        TableName: this.tables.grants,
        Key: coverageKey(target),
        UpdateExpression: `SET ${sets.join(', ')}`,
        ConditionExpression: 'leaseOwner = :owner',
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      })),
    )
    if (!applied) throw new LeaseLostError()
  }

  deleteIdleCoverage(target: AssignmentTarget, owner: string): Promise<boolean> {
    return this.conditional(() =>
      this.doc.send(new DeleteCommand({
        TableName: this.tables.grants,
        Key: coverageKey(target),
        ConditionExpression: 'leaseOwner = :owner AND attribute_not_exists(holders)',
        ExpressionAttributeValues: { ':owner': owner },
      })),
    )
  }

  async releaseLease(target: AssignmentTarget, owner: string): Promise<void> {
    await this.conditional(() =>
      this.doc.send(new UpdateCommand({
        TableName: this.tables.grants,
        Key: coverageKey(target),
        UpdateExpression: 'REMOVE leaseOwner, leaseUntil',
        ConditionExpression: 'leaseOwner = :owner',
        ExpressionAttributeValues: { ':owner': owner },
      })),
    )
  }

  /** Adds or removes a grant among the holders of its assignment, creating the coverage record on first use. */
  private holderUpdate(grant: Grant, operation: 'ADD' | 'DELETE', at: number) {
    return {
      TableName: this.tables.grants,
      Key: coverageKey(grant),
      UpdateExpression: `${operation} holders :grant SET kind = :kind, target = if_not_exists(target, :target), ` +
        'assignment = if_not_exists(assignment, :absent), dueShard = :due, dueAt = if_not_exists(dueAt, :firstCheck)',
      ExpressionAttributeValues: {
        ':grant': new Set([grant.id]),
        ':kind': 'coverage',
        ':target': { userId: grant.userId, accountId: grant.accountId, permissionSetArn: grant.permissionSetArn },
        ':absent': 'absent',
        ':due': DUE_PARTITION,
        ':firstCheck': at + COVERAGE_CHECK_INTERVAL_MS,
      },
    }
  }

  /** Runs a conditional write; false when its condition did not hold. */
  private async conditional(send: () => Promise<unknown>): Promise<boolean> {
    try {
      await this.call('conditional write', send)
      return true
    } catch (error) {
      if (isConditionFailure((error as { cause?: unknown }).cause)) return false
      throw error
    }
  }

  private call<T>(operation: string, send: () => Promise<T>): Promise<T> {
    return callAws('DynamoDB', operation, async () => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await send()
        } catch (error) {
          if (!isTransactionConflict(error) || attempt === TRANSACTION_ATTEMPTS) throw error
          await new Promise((resolve) => setTimeout(resolve, 20 * 2 ** attempt * (0.5 + Math.random())))
        }
      }
    })
  }
}
