import { PutItemCommand } from '@aws-sdk/client-dynamodb'
import { SubscribeCommand } from '@aws-sdk/client-sns'
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs'
import { marshall } from '@aws-sdk/util-dynamodb'
import t from 'tap'
import { csvField, negotiateFormat } from '../src/http/export.ts'
import { build, grantBody, PROD, REGION } from './helpers/app.ts'
import { expectStatus } from './helpers/http-status.ts'
import { startMoto } from './helpers/moto.ts'
import { bearer } from './helpers/tokens.ts'

const moto = await startMoto(t)

/** RFC 4180 parsing, enough to read back what the export wrote. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = []
  let row: string[] = []
  let field = ''
  let quoted = false
  for (let i = 0; i < text.length; i++) {
    const c = text[i]
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"'
        i++
      } else if (c === '"') quoted = false
      else field += c
    } else if (c === '"') quoted = true
    else if (c === ',') {
      row.push(field)
      field = ''
    } else if (c === '\r' && text[i + 1] === '\n') {
      row.push(field)
      rows.push(row)
      row = []
      field = ''
      i++
    } else field += c
  }
  return rows
}

t.test('CSV and NDJSON exports carry exactly the JSON events, in the same order', async (t) => {
  const { app } = await build(t, moto)
  for (let i = 0; i < 4; i++)
    await app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: grantBody({ justification: 'comma, "quotes"' }),
    })
  await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody({ userName: 'dave' }) })
  const json = (await app.inject({ method: 'GET', url: '/audit?limit=100', headers: bearer() })).json().items

  const csv = await app.inject({ method: 'GET', url: '/audit', headers: { ...bearer(), accept: 'text/csv' } })
  const ndjson = await app.inject({
    method: 'GET',
    url: '/audit',
    headers: { ...bearer(), accept: 'application/x-ndjson' },
  })

  expectStatus(t, csv, 200)
  t.match(csv.headers['content-type'], /^text\/csv/)
  t.match(csv.headers['content-disposition'], /attachment; filename="jit-access-audit-/)
  const [header, ...rows] = parseCsv(csv.body)
  // The columns of 0.2.0 keep their places (a consumer may read them by position); columns added since follow them.
  const RELEASED = [
    'id',
    'at',
    'action',
    'actor',
    'grantId',
    'userName',
    'accountId',
    'permissionSet',
    'ticketId',
    'detail',
    'requestId',
    'correlationId',
    'seq',
    'prevHash',
    'hash',
  ]
  t.same(header?.slice(0, RELEASED.length), RELEASED, 'the released columns, in their places')
  t.same(header, [...RELEASED, 'groupName'])
  t.equal(rows.length, json.length)
  rows.forEach((row, i) => {
    const event = json[i]
    t.same(
      Object.fromEntries((header as string[]).map((name, j) => [name, row[j]])),
      Object.fromEntries((header as string[]).map((name) => [name, event[name] === null ? '' : String(event[name])])),
    )
  })

  t.match(ndjson.headers['content-type'], /^application\/x-ndjson/)
  const lines = ndjson.body
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line))
  t.same(lines, json)
})

t.test('exports are filtered like pages, may exceed 100 events, and JSON pages may not', async (t) => {
  const { app } = await build(t, moto)
  for (let i = 0; i < 60; i++)
    await app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: grantBody({ durationMinutes: 10 + i }),
    })

  const all = await app.inject({
    method: 'GET',
    url: '/audit?limit=10000&action=grant.requested',
    headers: { ...bearer(), accept: 'application/x-ndjson' },
  })
  const capped = await app.inject({
    method: 'GET',
    url: '/audit?limit=7',
    headers: { ...bearer(), accept: 'text/csv' },
  })
  const tooBig = await app.inject({ method: 'GET', url: '/audit?limit=500', headers: bearer() })
  const overMax = await app.inject({
    method: 'GET',
    url: '/audit?limit=10001',
    headers: { ...bearer(), accept: 'text/csv' },
  })

  t.equal(all.body.trim().split('\n').length, 60)
  t.equal(parseCsv(capped.body).length, 8, 'header and 7 events')
  expectStatus(t, tooBig, 400)
  expectStatus(t, overMax, 400)
})

t.test('text a spreadsheet would run as a formula is exported as text', async (t) => {
  t.equal(csvField('=HYPERLINK("http://evil","x")'), `"'=HYPERLINK(""http://evil"",""x"")"`)
  t.equal(csvField('+1'), "'+1")
  t.equal(csvField('-1'), "'-1")
  t.equal(csvField('@SUM(A1)'), "'@SUM(A1)")
  t.equal(csvField('plain'), 'plain')
  t.equal(csvField(42), '42')
  t.equal(csvField(null), '')

  const { app } = await build(t, moto)
  await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody({ userName: '=cmd|calc' }) })
  const csv = (await app.inject({ method: 'GET', url: '/audit', headers: { ...bearer(), accept: 'text/csv' } })).body
  t.match(csv, ",'=cmd|calc,")
})

t.test('control characters in a CSV field are shown as escapes, and formulas are still defused', (t) => {
  t.equal(csvField('alice\u001b[2J'), 'alice\\u001b[2J', 'ESC')
  t.equal(csvField('a\u0000b'), 'a\\u0000b', 'NUL')
  t.equal(csvField('one\r\ntwo'), 'one\\u000d\\u000atwo', 'a line break cannot start a row')
  t.equal(csvField('one\u2028two\u2029'), 'one\\u2028two\\u2029', 'line and paragraph separators')
  t.equal(csvField('\u007f\u0085\u009b'), '\\u007f\\u0085\\u009b', 'DEL and C1')
  t.equal(csvField('\t=cmd'), '\\u0009=cmd', 'a leading tab is escaped, so the cell no longer starts a formula')
  t.equal(csvField('=1+\u001b, "x"'), `"'=1+\\u001b, ""x"""`, 'formula defence and quoting still apply')
  t.equal(csvField('zoë « déploiement »'), 'zoë « déploiement »', 'printable non-ASCII text is unchanged')
  t.end()
})

t.test(
  'an event holding control characters from before they were refused exports without them, CSV and NDJSON',
  async (t) => {
    const { app, clients, clock } = await build(t, moto)
    await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() })
    const hostile = {
      userName: 'mallory\u001b]0;owned\u0007',
      ticketId: '\u0000=cmd|calc',
      detail: 'line one\r\nforged,row\u2028\u009b31m',
    }
    // Written as an older version of the service could have: directly, since the API now refuses this input.
    await clients.dynamo.send(
      new PutItemCommand({
        TableName: 'jit-audit',
        Item: marshall({
          pk: 'event#019a0000-0000-7000-8000-000000000001',
          stream: 'all',
          id: '019a0000-0000-7000-8000-000000000001',
          at: clock.now().toISOString(),
          action: 'grant.requested',
          actor: 'legacy',
          grantId: 'g-1',
          accountId: PROD,
          permissionSet: 'AdministratorAccess',
          requestId: 'r-1',
          seq: 999,
          prevHash: '0'.repeat(64),
          hash: 'f'.repeat(64),
          ...hostile,
        }),
      }),
    )

    const csv = (await app.inject({ method: 'GET', url: '/audit', headers: { ...bearer(), accept: 'text/csv' } })).body
    const ndjson = (
      await app.inject({ method: 'GET', url: '/audit', headers: { ...bearer(), accept: 'application/x-ndjson' } })
    ).body

    // biome-ignore lint/suspicious/noControlCharactersInRegex: the test looks for control characters
    const controlCharacter = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/
    t.notMatch(csv.replaceAll('\r\n', ''), controlCharacter, 'no raw control character in the CSV but its row ends')
    const [header = [], ...rows] = parseCsv(csv)
    t.equal(rows.length, 3, 'the grant’s two events, and the old event on one row')
    const row = rows.find((cells) => cells[header.indexOf('actor')] === 'legacy') ?? []
    t.match(Object.fromEntries(header.map((name, i) => [name, row[i]])), {
      userName: 'mallory\\u001b]0;owned\\u0007',
      ticketId: '\\u0000=cmd|calc',
      detail: 'line one\\u000d\\u000aforged,row\\u2028\\u009b31m',
    })
    t.notMatch(ndjson, /[\u007f-\u009f\u2028\u2029]/, 'no raw C1 or separator in the NDJSON either')
    const line = ndjson
      .trim()
      .split('\n')
      .map((text) => JSON.parse(text))
      .find((event) => event.actor === 'legacy')
    t.match(line, hostile, 'and its JSON escapes still read back as the recorded text')
  },
)

t.test('Accept negotiation prefers the highest quality we offer', async (t) => {
  t.equal(negotiateFormat(undefined), 'json')
  t.equal(negotiateFormat('*/*'), 'json')
  t.equal(negotiateFormat('text/csv'), 'csv')
  t.equal(negotiateFormat('application/json;q=0.5, text/csv'), 'csv')
  t.equal(negotiateFormat('text/csv;q=0.2, application/x-ndjson;q=0.9'), 'ndjson')
  t.equal(negotiateFormat('text/csv;q=0'), 'json')
})

t.test('cursor pages of 5 cover every event once while new events keep arriving', async (t) => {
  const { app, clock } = await build(t, moto)
  for (let i = 0; i < 15; i++) {
    clock.advance(100)
    await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() })
  }
  const before = (await app.inject({ method: 'GET', url: '/audit?limit=100', headers: bearer() }))
    .json()
    .items.map((e: { id: string }) => e.id)
  t.equal(before.length, 30)

  const seen: string[] = []
  let cursor: string | null = null
  do {
    const page: { items: { id: string }[]; nextCursor: string | null } = (
      await app.inject({ method: 'GET', url: `/audit?limit=5${cursor ? `&cursor=${cursor}` : ''}`, headers: bearer() })
    ).json()
    seen.push(...page.items.map((e) => e.id))
    cursor = page.nextCursor
    clock.advance(100)
    await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() })
  } while (cursor)

  t.same(seen, before, 'each of the first 30 events exactly once, none of the newer ones')
})

t.test('lifecycle events reach SNS subscribers with filterable attributes and no secrets', async (t) => {
  const { app, clients, topicArn } = await build(t, moto)
  const sqs = new SQSClient({ region: REGION, endpoint: moto.endpoint })
  const queue = await sqs.send(new CreateQueueCommand({ QueueName: 'lifecycle' }))
  const arn = (
    await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queue.QueueUrl, AttributeNames: ['QueueArn'] }))
  ).Attributes?.QueueArn
  await clients.sns.send(new SubscribeCommand({ TopicArn: topicArn, Protocol: 'sqs', Endpoint: arn }))

  const token = bearer()
  const grant = (await app.inject({ method: 'POST', url: '/grants', headers: token, payload: grantBody() })).json()
  await app.inject({ method: 'POST', url: '/grants', headers: token, payload: grantBody({ userName: 'dave' }) })
  await app.inject({
    method: 'DELETE',
    url: `/grants/${grant.id}`,
    headers: { ...token, 'x-request-id': 'RITM0010042-revoke' },
  })
  await app.flushNotifications()

  const messages: { Message: string; MessageAttributes: Record<string, { Value: string }> }[] = []
  for (let i = 0; i < 5 && messages.length < 3; i++) {
    const received = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queue.QueueUrl, MaxNumberOfMessages: 10 }))
    messages.push(...(received.Messages ?? []).map((m) => JSON.parse(m.Body ?? '{}')))
  }
  const byAction = Object.fromEntries(messages.map((m) => [m.MessageAttributes.action?.Value, m]))
  t.same(Object.keys(byAction).sort(), ['grant.activated', 'grant.denied', 'grant.revoked'])
  t.match(byAction['grant.denied']?.MessageAttributes, { severity: { Value: 'warning' }, accountId: { Value: PROD } })
  t.match(byAction['grant.activated']?.MessageAttributes, { severity: { Value: 'info' } })
  t.match(JSON.parse(byAction['grant.revoked']?.Message ?? '{}'), {
    grantId: grant.id,
    ticketId: 'CHG0001234',
    action: 'grant.revoked',
    correlationId: 'RITM0010042-revoke',
  })
  const signature = token.authorization.split('.')[2] as string
  t.notOk(
    messages.some((m) => JSON.stringify(m).includes(signature)),
    'no token in any message',
  )
})

t.test('a grant is answered without waiting for its SNS message; shutting down waits for it', async (t) => {
  const { app, clients, topicArn, proxy } = await build(t, moto, { proxy: true })
  const sqs = new SQSClient({ region: REGION, endpoint: moto.endpoint })
  const queue = await sqs.send(new CreateQueueCommand({ QueueName: 'held-lifecycle' }))
  const arn = (
    await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queue.QueueUrl, AttributeNames: ['QueueArn'] }))
  ).Attributes?.QueueArn
  await clients.sns.send(new SubscribeCommand({ TopicArn: topicArn, Protocol: 'sqs', Endpoint: arn }))

  const publish = proxy!.holdNext('Publish')
  const answer = app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() })
  await publish.arrived
  // Well under the SDK's 1-s request timeout in these tests, after which a waiting answer would come anyway.
  const waited = new Promise<'waited'>((resolve) => setTimeout(() => resolve('waited'), 500))
  const first = await Promise.race([answer, waited])
  t.not(first, 'waited', 'the answer came while the message was held')
  expectStatus(t, await answer, 201)

  let closed = false
  const closing = app.close().then(() => (closed = true))
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.notOk(closed, 'closing waits for the message on its way')
  publish.release()
  await closing
  const received = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queue.QueueUrl, MaxNumberOfMessages: 10 }))
  t.same(
    (received.Messages ?? []).map((m) => JSON.parse(m.Body ?? '{}').MessageAttributes?.action?.Value),
    ['grant.activated'],
  )
})

t.test('a failing SNS topic never fails or rolls back a grant', async (t) => {
  const { app, proxy, hasAssignment } = await build(t, moto, { proxy: true })
  proxy?.inject('Publish', 'server-error')
  const response = await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() })
  expectStatus(t, response, 201)
  t.ok(await hasAssignment('alice', PROD, 'AdministratorAccess'))
  // The message leaves after the answer: wait for its attempts (each failing) to be over.
  await app.flushNotifications()
  t.ok((proxy?.injected['server-error'] ?? 0) >= 1, 'the publish was attempted and failed')
})
