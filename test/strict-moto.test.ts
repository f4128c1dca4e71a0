import { CreateTableCommand, DynamoDBClient, TransactionCanceledException } from '@aws-sdk/client-dynamodb'
import {
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  ScanCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb'
import t from 'tap'
import { startMoto } from './helpers/moto.ts'

// The other tests' concurrency guarantees are only as good as these two: on stock moto both fail.
const moto = await startMoto(t)
// One attempt: a retried 500 from moto (stock moto's table copy can fail on a table changed under it) would hide it.
const dynamo = new DynamoDBClient({ endpoint: moto.endpoint, region: 'us-east-1', maxAttempts: 1 })
const doc = DynamoDBDocumentClient.from(dynamo)
t.teardown(() => dynamo.destroy())

async function createTable(name: string): Promise<void> {
  await dynamo.send(
    new CreateTableCommand({
      TableName: name,
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
      AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
      BillingMode: 'PAY_PER_REQUEST',
    }),
  )
}

async function keysOf(table: string): Promise<Set<string>> {
  const keys = new Set<string>()
  let start: Record<string, unknown> | undefined
  do {
    const page = await doc.send(new ScanCommand({ TableName: table, ConsistentRead: true, ExclusiveStartKey: start }))
    for (const item of page.Items ?? []) keys.add(item.pk as string)
    start = page.LastEvaluatedKey
  } while (start)
  return keys
}

const errorName = (result: PromiseSettledResult<unknown>) =>
  result.status === 'rejected' ? (result.reason as Error).name : 'fulfilled'
const tally = (results: PromiseSettledResult<unknown>[]) =>
  results.reduce<Record<string, number>>((counts, result) => {
    counts[errorName(result)] = (counts[errorName(result)] ?? 0) + 1
    return counts
  }, {})

t.test(
  'a transaction cancelled by a failed condition undoes only its own items: concurrent writes to the table survive',
  async (t) => {
    const table = 'strict-rollback'
    await createTable(table)
    await doc.send(new PutCommand({ TableName: table, Item: { pk: 'guard', open: false } }))
    // Stock moto copies each table a transaction touches and puts the copy back when it is cancelled: what others
    // wrote in between is lost. Many items of many attributes keep the transaction, and so that window, open.
    const attributes = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`a${i}`, `value ${i}`]))
    const transaction = (i: number) =>
      new TransactWriteCommand({
        TransactItems: [
          ...Array.from({ length: 99 }, (_, k) => ({
            Put: { TableName: table, Item: { pk: `tx#${i}#${k}`, ...attributes } },
          })),
          {
            ConditionCheck: {
              TableName: table,
              Key: { pk: 'guard' },
              ConditionExpression: '#open = :true',
              ExpressionAttributeNames: { '#open': 'open' },
              ExpressionAttributeValues: { ':true': true },
            },
          },
        ],
      })

    // Writers put new items for as long as the transactions run, so that some land during every one of them.
    let transactionsDone = false
    const written: string[] = []
    const writer = async (w: number) => {
      for (let n = 0; !transactionsDone; n++) {
        await doc.send(new PutCommand({ TableName: table, Item: { pk: `put#${w}#${n}` } }))
        written.push(`put#${w}#${n}`)
      }
    }
    const writers = Promise.allSettled(Array.from({ length: 8 }, (_, w) => writer(w)))
    const transactionResults: PromiseSettledResult<unknown>[] = []
    for (let i = 0; i < 6; i++) transactionResults.push(...(await Promise.allSettled([doc.send(transaction(i))])))
    transactionsDone = true

    t.same(tally(await writers), { fulfilled: 8 }, 'every Put is answered 200')
    t.same(tally(transactionResults), { TransactionCanceledException: 6 }, 'every transaction is cancelled')
    const reasons = transactionResults.map((result) =>
      result.status === 'rejected' && result.reason instanceof TransactionCanceledException
        ? result.reason.CancellationReasons?.map((reason) => reason.Code).at(-1)
        : undefined,
    )
    t.same(new Set(reasons), new Set(['ConditionalCheckFailed']), 'by the failed condition')
    const keys = await keysOf(table)
    t.ok(written.length >= 8, `${written.length} Puts during the transactions`)
    t.same(
      written.filter((key) => !keys.has(key)),
      [],
      'every Put survives the cancelled transactions',
    )
    t.same(
      [...keys].filter((key) => key.startsWith('tx#')),
      [],
      'no item of a cancelled transaction remains',
    )
  },
)

t.test('of concurrent conditional writes with the same condition, exactly one succeeds', async (t) => {
  const table = 'strict-conditions'
  await createTable(table)
  const writers = 20
  // Rounds, because on stock moto each round lets more than one writer through only most of the time.
  const rounds = 3

  t.test('Puts of one key with attribute_not_exists(pk)', async (t) => {
    // Stock moto reads the current item, builds the new one from the request's attributes, then checks the
    // condition on what it read: a larger item keeps that window open longer.
    const attributes = Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`a${i}`, `value ${i}`]))
    for (let round = 0; round < rounds; round++) {
      const pk = `created-once#${round}`
      const results = await Promise.allSettled(
        Array.from({ length: writers }, (_, writer) =>
          doc.send(
            new PutCommand({
              TableName: table,
              Item: { pk, writer, ...attributes },
              ConditionExpression: 'attribute_not_exists(pk)',
            }),
          ),
        ),
      )
      t.same(
        tally(results),
        { fulfilled: 1, ConditionalCheckFailedException: writers - 1 },
        `round ${round}: one Put creates the item`,
      )
      const stored = (await doc.send(new GetCommand({ TableName: table, Key: { pk }, ConsistentRead: true }))).Item
      t.equal(
        stored?.writer,
        results.findIndex((result) => result.status === 'fulfilled'),
        "the item is the one writer's that succeeded",
      )
    }
  })

  t.test('UpdateItems that increment v only if it is still what they read', async (t) => {
    // Stock moto validates the whole update expression between checking the condition and applying it:
    // an update of many attributes keeps that window open longer.
    const updateExpression = `SET ${Array.from({ length: 100 }, (_, i) => `a${i} = :x`).join(', ')}, v = v + :one`
    for (let round = 0; round < rounds; round++) {
      const pk = `counter#${round}`
      await doc.send(new PutCommand({ TableName: table, Item: { pk, v: 0 } }))
      const results = await Promise.allSettled(
        Array.from({ length: writers }, () =>
          doc.send(
            new UpdateCommand({
              TableName: table,
              Key: { pk },
              UpdateExpression: updateExpression,
              ConditionExpression: 'v = :expected',
              ExpressionAttributeValues: { ':one': 1, ':expected': 0, ':x': 'x' },
            }),
          ),
        ),
      )
      t.same(
        tally(results),
        { fulfilled: 1, ConditionalCheckFailedException: writers - 1 },
        `round ${round}: one update applies`,
      )
      const stored = (await doc.send(new GetCommand({ TableName: table, Key: { pk }, ConsistentRead: true }))).Item
      t.equal(stored?.v, 1, 'v was incremented once')
    }
  })
})

t.test(
  'Organizations as strict as AWS: a service control policy over 5,120 characters (whitespace not counted) is refused, and so is a sixth on one target',
  async (t) => {
    const { stageCutoffPolicies } = await import('./helpers/organizations.ts')
    const { AttachPolicyCommand, CreatePolicyCommand, UpdatePolicyCommand } = await import(
      '@aws-sdk/client-organizations'
    )
    const { client, policyIds, rootId } = await stageCutoffPolicies(moto.endpoint, 'us-east-1', 4)
    const withSid = (sid: string) => ({
      Version: '2012-10-17',
      Statement: [{ Sid: sid, Effect: 'Deny', Action: '*', Resource: '*' }],
    })
    const document = (chars: number) =>
      JSON.stringify(withSid('x'.repeat(chars - JSON.stringify(withSid('')).length)), null, 2)
    t.equal(document(5120).replace(/\s/g, '').length, 5120)

    await client.send(new UpdatePolicyCommand({ PolicyId: policyIds[0], Content: document(5120) }))
    await t.rejects(client.send(new UpdatePolicyCommand({ PolicyId: policyIds[0], Content: document(5121) })), {
      name: 'ConstraintViolationException',
    })
    await t.rejects(
      client.send(
        new CreatePolicyCommand({
          Name: 'big',
          Description: 'd',
          Type: 'SERVICE_CONTROL_POLICY',
          Content: document(5121),
        }),
      ),
      { name: 'ConstraintViolationException' },
    )
    const fifth = await client.send(
      new CreatePolicyCommand({
        Name: 'fifth',
        Description: 'd',
        Type: 'SERVICE_CONTROL_POLICY',
        Content: document(100),
      }),
    )
    const sixth = await client.send(
      new CreatePolicyCommand({
        Name: 'sixth',
        Description: 'd',
        Type: 'SERVICE_CONTROL_POLICY',
        Content: document(100),
      }),
    )
    // moto's organization has FullAWSAccess attached to the root already: the four staged make five with it.
    await t.rejects(
      client.send(new AttachPolicyCommand({ PolicyId: fifth.Policy?.PolicySummary?.Id, TargetId: rootId })),
      { name: 'ConstraintViolationException' },
    )
    t.ok(sixth.Policy)
  },
)
