import { createHash, randomBytes } from 'node:crypto'
import { CreateSecretCommand } from '@aws-sdk/client-secrets-manager'
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb'
import t, { type Test } from 'tap'
import { resolveCursorKey } from '../src/adapters/aws.ts'
import { DynamoAuditChain } from '../src/adapters/dynamodb/audit-chain.ts'
import { PageCursors } from '../src/adapters/dynamodb/cursor.ts'
import { DynamoGrantStore } from '../src/adapters/dynamodb/grant-store.ts'
import { InvalidCursorError } from '../src/core/errors.ts'
import { build, grantBody, PROD, STAGING } from './helpers/app.ts'
import { expectStatus } from './helpers/http-status.ts'
import { startMoto } from './helpers/moto.ts'
import { bearer } from './helpers/tokens.ts'

const moto = await startMoto(t)

type Page = { items: { id: string }[]; nextCursor: string | null }
type App = Awaited<ReturnType<typeof build>>['app']

const list = (app: App, url: string) => app.inject({ method: 'GET', url, headers: bearer() })

/** Grants for alice and bob, with their audit events; returns the grant ids, oldest first. */
async function someGrants(app: App, count: number): Promise<string[]> {
  const ids: string[] = []
  for (let i = 0; i < count; i++) {
    const response = await app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: grantBody({ userName: i % 2 ? 'bob' : 'alice', ticketId: `CHG000010${i}` }),
    })
    ids.push(response.json().id)
  }
  return ids
}

/** A first page that has a next one. */
async function firstCursor(app: App, url: string): Promise<string> {
  const page: Page = (await list(app, url)).json()
  if (typeof page.nextCursor !== 'string') throw new Error(`${url} has no second page: ${JSON.stringify(page)}`)
  return page.nextCursor
}

/** A cursor as the service made them before they were sealed: base64 JSON of the key and an unkeyed digest of the query. */
function unsealedCursor(key: Record<string, unknown>, query: unknown): string {
  const digest = createHash('sha256').update(JSON.stringify(query)).digest('base64url').slice(0, 22)
  return Buffer.from(JSON.stringify({ k: key, q: digest })).toString('base64url')
}

function assertInvalidCursor(t: Test, response: Awaited<ReturnType<typeof list>>, name: string) {
  t.equal(response.statusCode, 400, `${name}: ${response.body}`)
  t.match(response.headers['content-type'], /^application\/problem\+json/, name)
  t.match(
    response.json(),
    { status: 400, code: 'INVALID_CURSOR', title: String, detail: String, instance: String },
    name,
  )
  t.notOk('items' in response.json(), `${name}: nothing listed`)
}

t.test('cursors round-trip: pages of grants and of audit events cover every item once, in order', async (t) => {
  const { app } = await build(t, moto)
  const ids = await someGrants(app, 5)

  for (const path of ['/grants', '/audit']) {
    const everything: Page = (await list(app, `${path}?limit=100`)).json()
    const seen: string[] = []
    let cursor: string | null = null
    do {
      const response = await list(app, `${path}?limit=2${cursor ? `&cursor=${cursor}` : ''}`)
      t.equal(response.statusCode, 200, response.body)
      const page: Page = response.json()
      seen.push(...page.items.map((item) => item.id))
      cursor = page.nextCursor
    } while (cursor)
    t.same(
      seen,
      everything.items.map((item) => item.id),
      `${path}: every item once, newest first`,
    )
    if (path === '/grants') t.same(seen, [...ids].reverse(), 'the grants, newest first')
  }
})

t.test('a cursor with any one byte changed, or its text edited, is 400 INVALID_CURSOR', async (t) => {
  const { app } = await build(t, moto)
  await someGrants(app, 3)
  const cursor = await firstCursor(app, '/grants?limit=1')
  const bytes = Buffer.from(cursor, 'base64url')

  for (let i = 0; i < bytes.length; i++) {
    const flipped = Buffer.from(bytes)
    flipped[i] = (flipped[i] as number) ^ 0x01
    const response = await list(app, `/grants?limit=1&cursor=${flipped.toString('base64url')}`)
    t.equal(response.json().code, 'INVALID_CURSOR', `byte ${i} flipped: ${response.body}`)
  }
  // The last character carries spare bits a lenient decoder ignores; a padded copy decodes to the same bytes too.
  const last = cursor.at(-1) as string
  const edits: [string, string][] = [
    ['last character changed', `${cursor.slice(0, -1)}${last === 'A' ? 'B' : 'A'}`],
    ['padding added', `${cursor}=`],
    ['a character outside the alphabet', `${cursor.slice(0, 10)}.${cursor.slice(10)}`],
    ['truncated', cursor.slice(0, -4)],
    ['extended', `${cursor}AAAA`],
  ]
  for (const [name, edited] of edits)
    assertInvalidCursor(t, await list(app, `/grants?limit=1&cursor=${encodeURIComponent(edited)}`), name)
  expectStatus(t, await list(app, `/grants?limit=1&cursor=${cursor}`), 200, 'the cursor itself still works')
})

t.test('a cursor only continues the query that issued it', async (t) => {
  const { app, clock } = await build(t, moto)
  await someGrants(app, 4)
  clock.advanceMinutes(10)
  await app.inject({
    method: 'POST',
    url: '/grants',
    headers: bearer(),
    payload: grantBody({ accountId: STAGING, ticketId: 'CHG0000999' }),
  })

  const grants = await firstCursor(app, '/grants?limit=1')
  const activeGrants = await firstCursor(app, '/grants?status=active&limit=1')
  const alice = await firstCursor(app, '/grants?userName=alice&limit=1')
  const audit = await firstCursor(app, '/audit?limit=1')
  const requested = await firstCursor(app, '/audit?action=grant.requested&limit=1')
  const from = new Date(clock.now().getTime() - 3_600_000).toISOString()
  const bounded = await firstCursor(app, `/audit?from=${from}&limit=1`)

  const cases: [string, string][] = [
    ['another filter value', `/grants?status=revoked&cursor=${activeGrants}`],
    ['a filter dropped', `/grants?cursor=${activeGrants}`],
    ['a filter added', `/grants?status=active&cursor=${grants}`],
    ['another partition of the same index', `/grants?userName=bob&cursor=${alice}`],
    ['another index', `/grants?accountId=${PROD}&cursor=${alice}`],
    ['the grants list’s cursor on the audit list', `/audit?cursor=${grants}`],
    ['the audit list’s cursor on the grants list', `/grants?cursor=${audit}`],
    ['another audit action', `/audit?action=grant.activated&cursor=${requested}`],
    [
      'another time bound',
      `/audit?from=${new Date(clock.now().getTime() - 7_200_000).toISOString()}&cursor=${bounded}`,
    ],
    ['a time bound dropped', `/audit?cursor=${bounded}`],
  ]
  for (const [name, url] of cases) assertInvalidCursor(t, await list(app, url), name)

  expectStatus(t, await list(app, `/grants?status=active&cursor=${activeGrants}`), 200, 'the same query continues')
  expectStatus(
    t,
    await list(app, `/audit?from=${encodeURIComponent(from)}&cursor=${bounded}`),
    200,
    'the same bounds continue',
  )
  expectStatus(
    t,
    await list(app, `/audit?action=grant.requested&limit=5&cursor=${requested}`),
    200,
    'the page size may change',
  )
})

t.test('the same filters given in another order are the same query', async (t) => {
  const { app } = await build(t, moto)
  await someGrants(app, 4)
  // userName picks the index; status and accountId are both filters, in the order the query string gives them.
  const cursor = await firstCursor(app, `/grants?userName=alice&status=active&accountId=${PROD}&limit=1`)

  const response = await list(app, `/grants?accountId=${PROD}&status=active&userName=alice&limit=1&cursor=${cursor}`)

  t.equal(response.statusCode, 200, response.body)
})

t.test(
  'a cursor forged in the old format is 400: it reaches no other partition, no other item kind, and no 503',
  async (t) => {
    const { app, seeded } = await build(t, moto)
    const ids = await someGrants(app, 3)
    const coverage = `coverage#${seeded.userIds.alice}#${PROD}#${seeded.permissionSetArns.AdministratorAccess}`
    // The queries behind GET /grants and GET /audit with no filter, exactly as the old digest covered them.
    const grantsQuery = { t: 'jit-grants', i: 'byCreation', p: 'all', s: null, f: {}, n: true }
    const auditQuery = { t: 'jit-audit', i: 'byTime', p: 'all', s: {}, f: {}, n: true }

    const cases: [string, string][] = [
      [
        'pk of a coverage item',
        `/grants?cursor=${unsealedCursor({ pk: coverage, listShard: 'all', id: ids[2] }, grantsQuery)}`,
      ],
      [
        'pk of an idempotency record',
        `/grants?cursor=${unsealedCursor({ pk: 'idempotency#x', listShard: 'all', id: ids[2] }, grantsQuery)}`,
      ],
      [
        'pk of a coverage item, on the audit list',
        `/audit?cursor=${unsealedCursor({ pk: coverage, stream: 'all', id: ids[2] }, auditQuery)}`,
      ],
      [
        'a key value of the wrong type',
        `/grants?cursor=${unsealedCursor({ pk: `grant#${ids[2]}`, listShard: 'all', id: 7 }, grantsQuery)}`,
      ],
      [
        'another partition',
        `/grants?cursor=${unsealedCursor({ pk: `grant#${ids[2]}`, listShard: 'elsewhere', id: ids[2] }, grantsQuery)}`,
      ],
    ]
    for (const [name, url] of cases) {
      const response = await list(app, url)
      assertInvalidCursor(t, response, name)
      t.notMatch(response.body, /coverage#|holders|idempotency#|"kind"/, `${name}: no item leaks`)
    }
  },
)

t.test('an instance with another cursor key refuses the cursor; one with the same key continues it', async (t) => {
  t.test('another key: 400', async (t) => {
    const {
      instances: [minter, other],
    } = await build(t, moto, {
      instances: 2,
      cursorKeys: [randomBytes(32).toString('base64url'), randomBytes(32).toString('base64url')],
    })
    if (!minter || !other) throw new Error('two instances expected')
    await someGrants(minter, 3)
    const cursor = await firstCursor(minter, '/grants?limit=1')

    assertInvalidCursor(t, await list(other, `/grants?limit=1&cursor=${cursor}`), 'minted under another key')
    expectStatus(t, await list(minter, `/grants?limit=1&cursor=${cursor}`), 200, 'its own instance still opens it')
  })

  t.test('the same key: the next page', async (t) => {
    const {
      instances: [minter, other],
    } = await build(t, moto, { instances: 2 })
    if (!minter || !other) throw new Error('two instances expected')
    const ids = await someGrants(minter, 3)
    const cursor = await firstCursor(minter, '/grants?limit=1')

    const response = await list(other, `/grants?limit=1&cursor=${cursor}`)

    t.equal(response.statusCode, 200, response.body)
    t.same(
      response.json().items.map((g: { id: string }) => g.id),
      [ids[1]],
    )
  })
})

t.test('a cursor reveals neither key names nor key values', async (t) => {
  const { app } = await build(t, moto)
  const ids = await someGrants(app, 3)
  const cursors = [
    await firstCursor(app, '/grants?limit=1'),
    await firstCursor(app, '/grants?userName=alice&limit=1'),
    await firstCursor(app, '/audit?limit=1'),
  ]
  for (const cursor of cursors) {
    const bytes = Buffer.from(cursor, 'base64url').toString('latin1')
    for (const revealing of ['"pk"', 'listShard', 'userName', 'stream', 'grant#', 'event#', 'alice', ...ids]) {
      t.notOk(bytes.includes(revealing), `'${revealing}' is not in the cursor's bytes`)
    }
  }
})

t.test('the sweep’s cursor on the due index is sealed too, and a changed one is refused', async (t) => {
  const { app, clients, clock } = await build(t, moto)
  const ids = await someGrants(app, 3)
  const doc = DynamoDBDocumentClient.from(clients.dynamo)
  const tables = { grants: 'jit-grants', audit: 'jit-audit' }
  const cursors = new PageCursors(randomBytes(32).toString('base64url'))
  const store = new DynamoGrantStore(doc, tables, new DynamoAuditChain(doc, tables), cursors)
  const now = new Date(clock.now().getTime() + 86_400_000)

  const first = await store.dueItems(now, undefined, 1)
  t.type(first.cursor, 'string')
  const cursor = first.cursor as string
  const bytes = Buffer.from(cursor, 'base64url').toString('latin1')
  for (const revealing of ['"pk"', 'dueShard', 'dueAt', 'grant#', ...ids])
    t.notOk(bytes.includes(revealing), `'${revealing}' is not in the cursor's bytes`)
  const due = [...first.grants.map((g) => g.id)]
  for (let next: string | undefined = cursor; next; ) {
    const page = await store.dueItems(now, next, 1)
    due.push(...page.grants.map((g) => g.id))
    next = page.cursor
  }
  t.same(due.sort(), [...ids].sort(), 'pages of one cover every due grant once')

  const flipped = Buffer.from(cursor, 'base64url')
  flipped[flipped.length - 1] = (flipped[flipped.length - 1] as number) ^ 0x01
  await t.rejects(store.dueItems(now, flipped.toString('base64url'), 1), InvalidCursorError, 'a changed cursor')
  await t.rejects(store.dueItems(new Date(now.getTime() + 1), cursor, 1), InvalidCursorError, 'another due-before time')
  const unsealed = Buffer.from(JSON.stringify({ pk: `grant#${ids[0]}`, dueShard: 'due', dueAt: 'soon' })).toString(
    'base64url',
  )
  await t.rejects(store.dueItems(now, unsealed, 1), InvalidCursorError, 'a raw key, as the sweep used to pass')
})

t.test(
  'the cursor key is read from Secrets Manager when named by its ARN, and refused when short or missing',
  async (t) => {
    const { clients } = await build(t, moto)
    const good = await clients.secrets.send(
      new CreateSecretCommand({ Name: 'jit-cursor-key', SecretString: 'k'.repeat(48) }),
    )
    const short = await clients.secrets.send(
      new CreateSecretCommand({ Name: 'jit-cursor-key-short', SecretString: 'short' }),
    )

    t.equal(await resolveCursorKey({ cursorKeyArn: good.ARN }, clients.secrets), 'k'.repeat(48))
    t.equal(await resolveCursorKey({ cursorKey: 'c'.repeat(32) }, clients.secrets), 'c'.repeat(32))
    await t.rejects(resolveCursorKey({ cursorKeyArn: short.ARN }, clients.secrets), {
      message: /JIT_CURSOR_KEY_ARN.*at least 32 characters/,
    })
    await t.rejects(
      resolveCursorKey(
        { cursorKeyArn: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:absent-AbCdEf' },
        clients.secrets,
      ),
      { message: /Secrets Manager.*GetSecretValue/ },
    )
    await t.rejects(resolveCursorKey({}, clients.secrets), { message: /JIT_CURSOR_KEY or JIT_CURSOR_KEY_ARN/ })
    t.throws(() => new PageCursors('short'), { message: /at least 32 characters/ })
  },
)
