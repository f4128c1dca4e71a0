import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb'
import type { AuditEvent } from '../../core/audit.ts'
import { COVERAGE_CHECK_INTERVAL_MS } from '../../core/coverage.ts'
import { LeaseLostError } from '../../core/errors.ts'
import { type AccessTarget, type Grant, isMembership, targetOf } from '../../core/grant-model.ts'
import type {
  Coverage,
  CoveragePatch,
  CoverageWrite,
  GrantCreation,
  GrantFilter,
  GrantStore,
  GrantTransition,
  LeaseAttempt,
  NewGrantLease,
  Page,
  PageRequest,
} from '../../core/ports.ts'
import { callAws } from '../aws-errors.ts'
import type { DynamoAuditChain } from './audit-chain.ts'
import { conditionalRetrying, retryingConflicts } from './conditional.ts'

/** The one item that says which process is sweeping, and until when (see acquireSweepLease). */
const SWEEP_LEASE_KEY = { pk: 'sweep#lease' }

import type { PageCursors } from './cursor.ts'
import { coverageKey as assignmentCoverageKey, grantKey, grantToItem, itemToCoverage, itemToGrant } from './items.ts'
import { outboxPuts } from './outbox-store.ts'
import { queryPage } from './paged-query.ts'
import { ALL_PARTITION, DUE_PARTITION, GRANT_INDEXES } from './tables.ts'

/**
 * The key of the coverage record of one target: an account assignment's (user, account, permission set), or a
 * group membership's (user, group). The two never collide: a membership's key says so, and no account id or
 * permission set ARN is 'membership'.
 */
export function coverageKey(target: AccessTarget): { pk: string } {
  if (isMembership(target)) return { pk: `coverage#membership#${target.userId}#${target.groupId}` }
  return assignmentCoverageKey(target)
}

export interface TableNames {
  grants: string
  audit: string
}

/** Grants, their assignment coverage and the coverage lease, in one DynamoDB table; audit events are written in the same transactions. */
export class DynamoGrantStore implements GrantStore {
  private readonly doc: DynamoDBDocumentClient
  private readonly tables: TableNames
  private readonly chain: DynamoAuditChain
  private readonly cursors: PageCursors

  constructor(doc: DynamoDBDocumentClient, tables: TableNames, chain: DynamoAuditChain, cursors: PageCursors) {
    this.doc = doc
    this.tables = tables
    this.chain = chain
    this.cursors = cursors
  }

  async createGrant(grant: Grant, dueAt: Date, event: AuditEvent, lease?: NewGrantLease): Promise<GrantCreation> {
    const record = {
      Put: {
        TableName: this.tables.grants,
        Item: grantToItem(grant, dueAt),
        ConditionExpression: 'attribute_not_exists(pk)',
      },
    }
    if (grant.status === 'scheduled') {
      const outcome = await this.chain.write(event, [record], { withinDeadline: true })
      return outcome.written ? 'created' : 'exists'
    }
    if (lease?.intendCreation) {
      // The usual grant is the first on its assignment: the coverage is written whole, intent included, so the
      // creation can follow at once. If a coverage exists after all, the general form below joins it.
      const at = Date.parse(event.at)
      const coverage = {
        Put: {
          TableName: this.tables.grants,
          Item: {
            ...coverageKey(targetOf(grant)),
            kind: 'coverage',
            target: targetOf(grant),
            holders: new Set([grant.id]),
            lastGrantId: grant.id,
            assignment: 'creating',
            creationIntendedAt: at,
            leaseOwner: lease.owner,
            leaseUntil: lease.until.getTime(),
            dueShard: DUE_PARTITION,
            dueAt: at + COVERAGE_CHECK_INTERVAL_MS,
          },
          ConditionExpression: 'attribute_not_exists(pk)',
        },
      }
      const outcome = await this.chain.write(event, [record, coverage], { withinDeadline: true })
      if (outcome.written) return 'creation-intended'
      if (outcome.refused.includes(0)) return 'exists'
    }
    const hold = this.holderUpdate(grant, 'ADD', Date.parse(event.at))
    const outcome = await this.chain.write(
      event,
      [
        record,
        {
          Update: lease
            ? {
                ...hold,
                // if_not_exists: a lease someone holds (even an expired one) is left alone; taking that is the reconciler's job.
                UpdateExpression: `${hold.UpdateExpression}, leaseOwner = if_not_exists(leaseOwner, :leaseOwner), leaseUntil = if_not_exists(leaseUntil, :leaseUntil)`,
                ExpressionAttributeValues: {
                  ...hold.ExpressionAttributeValues,
                  ':leaseOwner': lease.owner,
                  ':leaseUntil': lease.until.getTime(),
                },
              }
            : hold,
        },
      ],
      { withinDeadline: true },
    )
    return outcome.written ? 'created' : 'exists'
  }

  async getGrant(id: string): Promise<Grant | undefined> {
    const result = await this.call('GetItem', () =>
      this.doc.send(new GetCommand({ TableName: this.tables.grants, Key: grantKey(id), ConsistentRead: true })),
    )
    return result.Item?.kind === 'grant' ? itemToGrant(result.Item) : undefined
  }

  async transition(change: GrantTransition): Promise<Grant | undefined> {
    const { grant } = change
    const fromNames = change.from.map((_, i) => `:from${i}`)
    // The grant is written whole: its fields change only with its status or its end (a moved end), so the
    // condition on both ensures the caller's copy (never read again, before or after) plus this change is the
    // item. A Put also costs a DynamoDB-compatible server less to evaluate than an update of as many attributes.
    const outcome = await this.chain.write(change.event, [
      {
        Put: {
          TableName: this.tables.grants,
          Item: grantToItem({ ...grant, ...change.set, status: change.to }, change.dueAt),
          ConditionExpression: `#status IN (${fromNames.join(', ')}) AND expiresAt = :expiresAt`,
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: {
            ...Object.fromEntries(change.from.map((status, i) => [`:from${i}`, status])),
            ':expiresAt': grant.expiresAt,
          },
        },
      },
      // A transaction names each item once: a coverage write stands in for the hold's release ('removed'
      // requires that no holder is left; 'assigned' comes with activation, which releases nothing).
      ...(change.coverage
        ? [this.coverageWrite(change.coverage)]
        : change.hold === 'keep'
          ? []
          : [
              {
                Update: this.holderUpdate(
                  grant,
                  change.hold === 'join' ? 'ADD' : 'DELETE',
                  Date.parse(change.event.at),
                ),
              },
            ]),
      ...outboxPuts(this.tables.grants, change.outbox),
    ])
    return outcome.written ? { ...grant, ...change.set, status: change.to } : undefined
  }

  private coverageWrite(write: CoverageWrite) {
    const key = { TableName: this.tables.grants, Key: coverageKey(write.target) }
    if (write.kind === 'removed') {
      return {
        Delete: {
          ...key,
          ConditionExpression: 'leaseOwner = :owner AND attribute_not_exists(holders)',
          ExpressionAttributeValues: { ':owner': write.owner },
        },
      }
    }
    return {
      Update: {
        ...key,
        // Absent and null read the same (itemToCoverage), and a REMOVE is the cheaper clause.
        UpdateExpression:
          'SET assignment = :present REMOVE leaseOwner, leaseUntil, requestId, lastFailure, conflictSince',
        ConditionExpression: 'leaseOwner = :owner',
        ExpressionAttributeValues: { ':present': 'present', ':owner': write.owner },
      },
    }
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
      queryPage(
        this.doc,
        this.cursors,
        {
          table: this.tables.grants,
          index,
          partitionValue,
          filters,
          newestFirst: true,
          limit: page.limit,
          cursor: page.cursor,
        },
        itemToGrant,
      ),
    )
  }

  /**
   * The sweep's cursor never leaves the process, but it is sealed like the HTTP ones: one mechanism, and a
   * string this store parses is never trusted, wherever it came from.
   */
  async dueItems(now: Date, cursor: string | undefined, limit: number, after?: Date) {
    const { due } = GRANT_INDEXES
    const keyNames = ['pk', due.partitionKey, due.sortKey]
    const identity = {
      t: this.tables.grants,
      i: due.name,
      p: DUE_PARTITION,
      before: now.getTime(),
      ...(after ? { after: after.getTime() } : {}),
    }
    const startKey = cursor
      ? this.cursors.decode(cursor, identity, keyNames, { [due.partitionKey]: DUE_PARTITION })
      : undefined
    const result = await this.call('Query', () =>
      this.doc.send(
        new QueryCommand({
          TableName: this.tables.grants,
          IndexName: due.name,
          ...(after
            ? {
                KeyConditionExpression: 'dueShard = :due AND dueAt BETWEEN :after AND :now',
                ExpressionAttributeValues: {
                  ':due': DUE_PARTITION,
                  ':after': after.getTime() + 1,
                  ':now': now.getTime(),
                },
              }
            : {
                KeyConditionExpression: 'dueShard = :due AND dueAt <= :now',
                ExpressionAttributeValues: { ':due': DUE_PARTITION, ':now': now.getTime() },
              }),
          Limit: limit,
          ...(startKey ? { ExclusiveStartKey: startKey } : {}),
        }),
      ),
    )
    const items = result.Items ?? []
    return {
      grants: items.filter((item) => item.kind === 'grant').map(itemToGrant),
      coverages: items.filter((item) => item.kind === 'coverage').map((item) => item.target as AccessTarget),
      cursor: result.LastEvaluatedKey ? this.cursors.encode(result.LastEvaluatedKey, identity, keyNames) : undefined,
    }
  }

  async acquireSweepLease(owner: string, now: Date, until: Date): Promise<boolean> {
    const outcome = await conditionalRetrying('UpdateItem', () =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.tables.grants,
          Key: SWEEP_LEASE_KEY,
          UpdateExpression: 'SET kind = :kind, leaseOwner = :owner, leaseUntil = :until',
          ConditionExpression: 'attribute_not_exists(leaseOwner) OR leaseUntil < :now OR leaseOwner = :owner',
          ExpressionAttributeValues: {
            ':kind': 'sweep-lease',
            ':owner': owner,
            ':until': until.getTime(),
            ':now': now.getTime(),
          },
        }),
      ),
    )
    return outcome.applied
  }

  async releaseSweepLease(owner: string): Promise<void> {
    await conditionalRetrying('UpdateItem', () =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.tables.grants,
          Key: SWEEP_LEASE_KEY,
          UpdateExpression: 'REMOVE leaseOwner, leaseUntil',
          ConditionExpression: 'leaseOwner = :owner',
          ExpressionAttributeValues: { ':owner': owner },
        }),
      ),
    )
  }

  async scheduleCoverageCheck(target: AccessTarget, at: Date): Promise<void> {
    await conditionalRetrying('UpdateItem', () =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.tables.grants,
          Key: coverageKey(target),
          UpdateExpression: 'SET dueShard = :due, dueAt = :at',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeValues: { ':due': DUE_PARTITION, ':at': at.getTime() },
        }),
      ),
    )
  }

  async getCoverage(target: AccessTarget): Promise<Coverage | undefined> {
    const item = await this.getCoverageItem(target)
    return item ? itemToCoverage(item, target) : undefined
  }

  private async getCoverageItem(target: AccessTarget): Promise<Record<string, unknown> | undefined> {
    const result = await this.call('GetItem', () =>
      this.doc.send(new GetCommand({ TableName: this.tables.grants, Key: coverageKey(target), ConsistentRead: true })),
    )
    return result.Item
  }

  async acquireLease(target: AccessTarget, owner: string, now: Date, until: Date): Promise<LeaseAttempt> {
    const outcome = await conditionalRetrying('UpdateItem', () =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.tables.grants,
          Key: coverageKey(target),
          UpdateExpression: 'SET leaseOwner = :owner, leaseUntil = :until',
          // Access already in place for holders needs nobody's lease; failing here saves taking and releasing one.
          ConditionExpression:
            'attribute_exists(pk) AND (attribute_not_exists(leaseOwner) OR leaseUntil < :now OR leaseOwner = :owner) ' +
            'AND NOT (attribute_exists(holders) AND (#external = :true OR assignment = :present))',
          ExpressionAttributeNames: { '#external': 'external' },
          ExpressionAttributeValues: {
            ':owner': owner,
            ':until': until.getTime(),
            ':now': now.getTime(),
            ':true': true,
            ':present': 'present',
          },
          ReturnValues: 'ALL_NEW',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      ),
    )
    if (outcome.applied) return { acquired: true, coverage: itemToCoverage(outcome.result.Attributes ?? {}, target) }
    const current = outcome.current ? itemToCoverage(outcome.current, target) : await this.getCoverage(target)
    return { acquired: false, coverage: current }
  }

  async updateCoverage(
    target: AccessTarget,
    owner: string,
    patch: CoveragePatch,
    options: { releaseLease?: boolean } = {},
  ): Promise<Coverage> {
    const names: Record<string, string> = {}
    const values: Record<string, unknown> = { ':owner': owner }
    const sets: string[] = []
    for (const [field, value] of Object.entries(patch)) {
      names[`#${field}`] = field
      values[`:${field}`] = value
      sets.push(`#${field} = :${field}`)
    }
    const outcome = await conditionalRetrying('UpdateItem', () =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.tables.grants,
          Key: coverageKey(target),
          UpdateExpression: `SET ${sets.join(', ')}${options.releaseLease ? ' REMOVE leaseOwner, leaseUntil' : ''}`,
          ConditionExpression: 'leaseOwner = :owner',
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
          ReturnValues: 'ALL_NEW',
        }),
      ),
    )
    if (!outcome.applied) throw new LeaseLostError()
    return itemToCoverage(outcome.result.Attributes ?? {}, target)
  }

  recordCreationIntent(target: AccessTarget, owner: string, now: Date) {
    return this.recordIntent(target, owner, {
      UpdateExpression: 'SET assignment = :creating, requestId = :none, creationIntendedAt = :now',
      ConditionExpression:
        'leaseOwner = :owner AND assignment = :absent AND (attribute_not_exists(#external) OR #external = :false)',
      ExpressionAttributeValues: { ':creating': 'creating', ':none': null, ':now': now.getTime(), ':absent': 'absent' },
    })
  }

  recordRemovalIntent(target: AccessTarget, owner: string) {
    return this.recordIntent(target, owner, {
      UpdateExpression: 'SET assignment = :deleting, requestId = :none',
      ConditionExpression:
        'leaseOwner = :owner AND assignment = :present AND attribute_not_exists(holders) AND (attribute_not_exists(#external) OR #external = :false)',
      ExpressionAttributeValues: { ':deleting': 'deleting', ':none': null, ':present': 'present' },
    })
  }

  /** An intent written under the owner's lease on a coverage that is not external; otherwise the coverage as it is. */
  private async recordIntent(
    target: AccessTarget,
    owner: string,
    update: {
      UpdateExpression: string
      ConditionExpression: string
      ExpressionAttributeValues: Record<string, unknown>
    },
  ) {
    const outcome = await conditionalRetrying('UpdateItem', () =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.tables.grants,
          Key: coverageKey(target),
          ...update,
          ExpressionAttributeNames: { '#external': 'external' },
          ExpressionAttributeValues: { ...update.ExpressionAttributeValues, ':owner': owner, ':false': false },
          ReturnValues: 'ALL_NEW',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      ),
    )
    if (outcome.applied)
      return { recorded: true as const, coverage: itemToCoverage(outcome.result.Attributes ?? {}, target) }
    const current = outcome.current ?? (await this.getCoverageItem(target))
    return {
      recorded: false as const,
      coverage: current ? itemToCoverage(current, target) : undefined,
      leaseHeld: current?.leaseOwner === owner,
    }
  }

  async deleteIdleCoverage(target: AccessTarget, owner: string): Promise<boolean> {
    const outcome = await conditionalRetrying('DeleteItem', () =>
      this.doc.send(
        new DeleteCommand({
          TableName: this.tables.grants,
          Key: coverageKey(target),
          ConditionExpression: 'leaseOwner = :owner AND attribute_not_exists(holders)',
          ExpressionAttributeValues: { ':owner': owner },
        }),
      ),
    )
    return outcome.applied
  }

  async releaseLease(target: AccessTarget, owner: string): Promise<void> {
    await conditionalRetrying('UpdateItem', () =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.tables.grants,
          Key: coverageKey(target),
          UpdateExpression: 'REMOVE leaseOwner, leaseUntil',
          ConditionExpression: 'leaseOwner = :owner',
          ExpressionAttributeValues: { ':owner': owner },
        }),
      ),
    )
  }

  async renewLease(target: AccessTarget, owner: string, now: Date, until: Date): Promise<void> {
    const outcome = await conditionalRetrying('UpdateItem', () =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.tables.grants,
          Key: coverageKey(target),
          UpdateExpression: 'SET leaseUntil = :until',
          ConditionExpression: 'leaseOwner = :owner AND leaseUntil > :now',
          ExpressionAttributeValues: { ':owner': owner, ':now': now.getTime(), ':until': until.getTime() },
        }),
      ),
    )
    if (!outcome.applied) throw new LeaseLostError()
  }

  /** Adds or removes a grant among the holders of its assignment, creating the coverage record on first use. */
  private holderUpdate(grant: Grant, operation: 'ADD' | 'DELETE', at: number) {
    const joining = operation === 'ADD'
    return {
      TableName: this.tables.grants,
      Key: coverageKey(targetOf(grant)),
      UpdateExpression:
        `${operation} holders :grant SET kind = :kind, target = if_not_exists(target, :target), ` +
        'assignment = if_not_exists(assignment, :absent), dueShard = :due, dueAt = if_not_exists(dueAt, :firstCheck)' +
        (joining ? ', lastGrantId = :grantId' : ''),
      ExpressionAttributeValues: {
        ...(joining ? { ':grantId': grant.id } : {}),
        ':grant': new Set([grant.id]),
        ':kind': 'coverage',
        ':target': targetOf(grant),
        ':absent': 'absent',
        ':due': DUE_PARTITION,
        ':firstCheck': at + COVERAGE_CHECK_INTERVAL_MS,
      },
    }
  }

  private call<T>(operation: string, send: () => Promise<T>): Promise<T> {
    return callAws('DynamoDB', operation, () => retryingConflicts(send))
  }
}
