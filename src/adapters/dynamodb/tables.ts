import {
  CreateTableCommand,
  type CreateTableCommandInput,
  DescribeTableCommand,
  type DynamoDBClient,
  UpdateTimeToLiveCommand,
} from '@aws-sdk/client-dynamodb'

/** Partition of the sparse index that holds only grants whose next action is due at a known time. */
export const DUE_PARTITION = 'due'
/** The outbox's messages have a partition of the due index to themselves: the sweep reads them apart from grants. */
export const OUTBOX_PARTITION = 'outbox'
/** Partition of the index listing every grant, and of the one listing every audit event, newest first. */
export const ALL_PARTITION = 'all'

export const GRANT_INDEXES = {
  due: { name: 'due', partitionKey: 'dueShard', sortKey: 'dueAt' },
  all: { name: 'byCreation', partitionKey: 'listShard', sortKey: 'id' },
  userName: { name: 'byUserName', partitionKey: 'userName', sortKey: 'id' },
  accountId: { name: 'byAccountId', partitionKey: 'accountId', sortKey: 'id' },
  ticketId: { name: 'byTicketId', partitionKey: 'ticketId', sortKey: 'id' },
} as const

export const AUDIT_INDEXES = {
  all: { name: 'byTime', partitionKey: 'stream', sortKey: 'id' },
  chain: { name: 'byChain', partitionKey: 'stream', sortKey: 'seq' },
  grantId: { name: 'byGrantId', partitionKey: 'grantId', sortKey: 'id' },
  userName: { name: 'byUserName', partitionKey: 'userName', sortKey: 'id' },
  accountId: { name: 'byAccountId', partitionKey: 'accountId', sortKey: 'id' },
  ticketId: { name: 'byTicketId', partitionKey: 'ticketId', sortKey: 'id' },
  actor: { name: 'byActor', partitionKey: 'actor', sortKey: 'id' },
} as const

export interface IndexShape {
  name: string
  partitionKey: string
  sortKey: string
}

function tableDefinition(
  tableName: string,
  indexes: Record<string, IndexShape>,
  numericSortKeys: string[] = [],
): CreateTableCommandInput {
  const attributes = new Map<string, 'S' | 'N'>([['pk', 'S']])
  for (const index of Object.values(indexes)) {
    attributes.set(index.partitionKey, 'S')
    attributes.set(index.sortKey, numericSortKeys.includes(index.sortKey) ? 'N' : 'S')
  }
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
    AttributeDefinitions: [...attributes].map(([AttributeName, AttributeType]) => ({ AttributeName, AttributeType })),
    GlobalSecondaryIndexes: Object.values(indexes).map((index) => ({
      IndexName: index.name,
      KeySchema: [
        { AttributeName: index.partitionKey, KeyType: 'HASH' },
        { AttributeName: index.sortKey, KeyType: 'RANGE' },
      ],
      Projection: { ProjectionType: 'ALL' },
    })),
  }
}

/**
 * The grants table's TTL attribute (epoch seconds). Only idempotency records carry it: grants and coverage
 * never expire by TTL, and the audit table has no TTL at all.
 */
export const GRANTS_TTL_ATTRIBUTE = 'ttl'

export const grantsTableDefinition = (name: string) => tableDefinition(name, GRANT_INDEXES, ['dueAt'])
export const auditTableDefinition = (name: string) => tableDefinition(name, AUDIT_INDEXES, ['seq'])

/** Creates the tables when they are missing (the local sandbox and tests; production tables come from infra/). */
export async function ensureTables(client: DynamoDBClient, names: { grants: string; audit: string }): Promise<void> {
  for (const definition of [grantsTableDefinition(names.grants), auditTableDefinition(names.audit)]) {
    try {
      await client.send(new DescribeTableCommand({ TableName: definition.TableName }))
    } catch (error) {
      if ((error as Error).name !== 'ResourceNotFoundException') throw error
      await client.send(new CreateTableCommand(definition))
      if (definition.TableName === names.grants) {
        await client.send(
          new UpdateTimeToLiveCommand({
            TableName: names.grants,
            TimeToLiveSpecification: { AttributeName: GRANTS_TTL_ATTRIBUTE, Enabled: true },
          }),
        )
      }
    }
  }
}
