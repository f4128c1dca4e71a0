import { type DynamoDBDocumentClient, QueryCommand, type QueryCommandInput } from '@aws-sdk/lib-dynamodb'
import type { Page } from '../../core/ports.ts'
import type { PageCursors } from './cursor.ts'
import type { IndexShape } from './tables.ts'

export interface PagedQuery {
  table: string
  index: IndexShape
  partitionValue: string
  /** Inclusive bounds on the index's sort key. */
  sortBetween?: { lowest?: string; highest?: string }
  /** Conditions on other attributes, applied by DynamoDB after reading. */
  filters: Record<string, string>
  newestFirst: boolean
  limit: number
  cursor: string | undefined
}

/**
 * One page of a filtered Query on an index. DynamoDB applies Limit before filters, so this keeps reading until
 * the page is full or the index is exhausted, and cursors point just after the last item returned, so pages
 * never repeat or skip an item.
 */
export async function queryPage<T>(
  doc: DynamoDBDocumentClient,
  cursors: PageCursors,
  query: PagedQuery,
  toItem: (raw: Record<string, unknown>) => T,
): Promise<Page<T>> {
  const { index } = query
  const keyNames = [...new Set(['pk', index.partitionKey, index.sortKey])]
  const identity = {
    t: query.table,
    i: index.name,
    p: query.partitionValue,
    s: query.sortBetween ?? null,
    f: query.filters,
    n: query.newestFirst,
  }
  let startKey = query.cursor
    ? cursors.decode(query.cursor, identity, keyNames, { [index.partitionKey]: query.partitionValue })
    : undefined

  const names: Record<string, string> = { '#p': index.partitionKey }
  const values: Record<string, unknown> = { ':p': query.partitionValue }
  let keyCondition = '#p = :p'
  const { lowest, highest } = query.sortBetween ?? {}
  if (lowest !== undefined || highest !== undefined) {
    names['#s'] = index.sortKey
    if (lowest !== undefined) values[':lo'] = lowest
    if (highest !== undefined) values[':hi'] = highest
    keyCondition +=
      lowest !== undefined && highest !== undefined
        ? ' AND #s BETWEEN :lo AND :hi'
        : lowest !== undefined
          ? ' AND #s >= :lo'
          : ' AND #s <= :hi'
  }
  const filterParts = Object.entries(query.filters).map(([attribute, value], i) => {
    names[`#f${i}`] = attribute
    values[`:f${i}`] = value
    return `#f${i} = :f${i}`
  })

  const items: T[] = []
  while (true) {
    const input: QueryCommandInput = {
      TableName: query.table,
      IndexName: index.name,
      KeyConditionExpression: keyCondition,
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
      ScanIndexForward: !query.newestFirst,
      // Read a little more than needed when filtering, so sparse matches take fewer round trips.
      Limit: filterParts.length > 0 ? Math.max(query.limit * 2, 50) : query.limit - items.length,
      ...(filterParts.length > 0 ? { FilterExpression: filterParts.join(' AND ') } : {}),
      ...(startKey ? { ExclusiveStartKey: startKey } : {}),
    }
    const result = await doc.send(new QueryCommand(input))
    const page = result.Items ?? []
    for (let i = 0; i < page.length; i++) {
      const raw = page[i] as Record<string, unknown>
      items.push(toItem(raw))
      if (items.length === query.limit) {
        const more = i < page.length - 1 || result.LastEvaluatedKey !== undefined
        if (!more) return { items, nextCursor: null }
        return { items, nextCursor: cursors.encode(raw, identity, keyNames) }
      }
    }
    if (!result.LastEvaluatedKey) return { items, nextCursor: null }
    startKey = result.LastEvaluatedKey as Record<string, string | number>
  }
}
