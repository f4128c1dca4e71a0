import { type AddressInfo, connect } from 'node:net'
import t from 'tap'
import { build, grantBody, PROD } from './helpers/app.ts'
import { expectStatus } from './helpers/http-status.ts'
import { startMoto } from './helpers/moto.ts'
import { bearer } from './helpers/tokens.ts'

const moto = await startMoto(t)

t.test(
  'bad input to POST /grants is a 400 problem that names the field, never a 500, and creates nothing',
  async (t) => {
    const { app, hasAssignment } = await build(t, moto, { maxDurationMinutes: 240 })
    const json = { ...bearer(), 'content-type': 'application/json' }
    const cases: [string, string, string][] = [
      ['account id too short', JSON.stringify(grantBody({ accountId: '12345' })), 'VALIDATION_FAILED'],
      ['account id not digits', JSON.stringify(grantBody({ accountId: '11111111111a' })), 'VALIDATION_FAILED'],
      ['duration not an integer', JSON.stringify(grantBody({ durationMinutes: 1.5 })), 'VALIDATION_FAILED'],
      ['duration as a string', JSON.stringify(grantBody({ durationMinutes: '30' })), 'VALIDATION_FAILED'],
      ['duration zero', JSON.stringify(grantBody({ durationMinutes: 0 })), 'VALIDATION_FAILED'],
      ['duration over the service maximum', JSON.stringify(grantBody({ durationMinutes: 241 })), 'VALIDATION_FAILED'],
      ['missing ticket', JSON.stringify({ ...grantBody(), ticketId: undefined }), 'VALIDATION_FAILED'],
      ['empty user name', JSON.stringify(grantBody({ userName: '' })), 'VALIDATION_FAILED'],
      ['unknown field', JSON.stringify(grantBody({ role: 'admin' })), 'VALIDATION_FAILED'],
      ['justification too long', JSON.stringify(grantBody({ justification: 'x'.repeat(1001) })), 'VALIDATION_FAILED'],
      [
        'permission set name with spaces',
        JSON.stringify(grantBody({ permissionSet: 'Admin Access' })),
        'VALIDATION_FAILED',
      ],
      ['junk JSON', '{"userName": "alice",', 'MALFORMED_BODY'],
      ['empty body', '', 'MALFORMED_BODY'],
      ['a JSON array', '[]', 'VALIDATION_FAILED'],
      ['oversized body', JSON.stringify(grantBody({ justification: 'x'.repeat(20_000) })), 'BODY_TOO_LARGE'],
    ]
    for (const [name, payload, code] of cases) {
      const response = await app.inject({ method: 'POST', url: '/grants', headers: json, payload })
      expectStatus(t, response, 400, name)
      t.equal(response.headers['content-type'], 'application/problem+json; charset=utf-8', name)
      t.match(
        response.json(),
        { code, status: 400, title: 'Bad Request', instance: '/grants', requestId: String },
        name,
      )
    }
    const unknownField = await app.inject({
      method: 'POST',
      url: '/grants',
      headers: json,
      payload: JSON.stringify(grantBody({ role: 'admin' })),
    })
    t.match(unknownField.json().detail, /unknown field 'role'/)
    const badAccount = await app.inject({
      method: 'POST',
      url: '/grants',
      headers: json,
      payload: JSON.stringify(grantBody({ accountId: '1' })),
    })
    t.match(badAccount.json().errors, [{ location: 'body', path: '/accountId' }])

    const textBody = await app.inject({
      method: 'POST',
      url: '/grants',
      headers: { ...bearer(), 'content-type': 'text/plain' },
      payload: 'hello',
    })
    expectStatus(t, textBody, 415)
    t.equal(textBody.json().code, 'UNSUPPORTED_MEDIA_TYPE')

    t.equal(
      (await app.inject({ method: 'GET', url: '/grants', headers: bearer() })).json().items.length,
      0,
      'no grant recorded',
    )
    t.equal(
      (await app.inject({ method: 'GET', url: '/audit', headers: bearer() })).json().items.length,
      0,
      'bad input is not a decision',
    )
    t.notOk(await hasAssignment('alice', PROD, 'AdministratorAccess'))
  },
)

t.test(
  'control characters in the user name, ticket or justification are a 400 that names the field, and record nothing',
  async (t) => {
    const { app } = await build(t, moto)
    const cases: [string, Record<string, string>, string][] = [
      ['ESC in the user name (a terminal escape sequence)', { userName: 'alice\u001b[2J' }, '/userName'],
      ['NUL in the ticket', { ticketId: 'CHG0001234\u0000' }, '/ticketId'],
      ['a line break in the ticket', { ticketId: 'CHG0001234\n' }, '/ticketId'],
      ['U+2028 in the justification', { justification: 'Deploy\u2028hotfix' }, '/justification'],
      ['a newline in the justification', { justification: 'Deploy\nhotfix' }, '/justification'],
      ['a tab in the justification', { justification: 'Deploy\thotfix' }, '/justification'],
      ['DEL in the user name', { userName: 'alice\u007f' }, '/userName'],
      ['C1 CSI in the user name', { userName: 'alice\u009b2J' }, '/userName'],
      ['U+2029 in the user name', { userName: 'alice\u2029' }, '/userName'],
    ]
    for (const [name, overrides, path] of cases) {
      const response = await app.inject({
        method: 'POST',
        url: '/grants',
        headers: bearer(),
        payload: grantBody(overrides),
      })
      // Not the body in the message: unrefused, it holds the raw character, and a U+2028 breaks tap's own output.
      expectStatus(t, response, 400, `${name}: answered ${response.statusCode}`)
      t.match(response.json(), { code: 'VALIDATION_FAILED', errors: [{ location: 'body', path }] }, name)
      t.match(response.json().detail, new RegExp(`^body${path} `), `${name}: the detail names the field`)
    }
    const escaped = await app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: grantBody({ justification: 'x\u001by' }),
    })
    t.equal(
      escaped.json().errors[0].message,
      'must not contain control characters',
      'the message says why, not the pattern',
    )
    t.equal(
      (await app.inject({ method: 'GET', url: '/audit', headers: bearer() })).json().items.length,
      0,
      'nothing was audited',
    )

    const accented = await app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: grantBody({ userName: 'zoë', justification: 'Fix « déploiement » — ünïcödé is fine' }),
    })
    t.not(accented.statusCode, 400, `printable non-ASCII text is not refused: ${accented.body}`)
  },
)

t.test(
  'validation reports every problem, and a typo in a field name as an unknown field beside the missing one',
  async (t) => {
    const { app } = await build(t, moto)
    const { userName, ...withoutUserName } = grantBody()
    const response = await app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: { ...withoutUserName, username: userName, accountId: '42', durationMinutes: 0 },
    })

    t.equal(response.statusCode, 400, response.body)
    const { errors, detail } = response.json()
    t.same(
      [...errors].sort((a: { path: string }, b: { path: string }) => (a.path < b.path ? -1 : 1)),
      [
        { location: 'body', path: '/accountId', message: 'must match pattern "^[0-9]{12}$"' },
        { location: 'body', path: '/durationMinutes', message: 'must be >= 1' },
        { location: 'body', path: '/userName', message: 'is required' },
        { location: 'body', path: '/username', message: "unknown field 'username'" },
      ],
      response.body,
    )
    t.match(detail, /body\/username unknown field 'username'/)
    t.match(detail, /body\/userName is required/)
  },
)

t.test('a body of a thousand unknown fields is answered with a short list', async (t) => {
  const { app } = await build(t, moto)
  const junk = Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`f${i}`, 0]))

  const response = await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody(junk) })

  t.equal(response.statusCode, 400, response.body)
  t.equal(response.json().errors.length, 20)
  t.match(response.json().detail, /; and 980 more$/)
  t.ok(response.body.length < 4096, `the answer stays small (${response.body.length} bytes)`)
})

t.test("a path parameter over the router's limit and a malformed URL are problems, not Fastify's JSON", async (t) => {
  const { app } = await build(t, moto)

  const longId = await app.inject({ method: 'GET', url: `/grants/${'a'.repeat(101)}`, headers: bearer() })
  const badUrl = await app.inject({
    method: 'GET',
    url: '/grants/%zz',
    headers: { ...bearer(), 'x-request-id': 'caller-1' },
  })

  t.equal(longId.statusCode, 414, longId.body)
  t.equal(longId.headers['content-type'], 'application/problem+json; charset=utf-8')
  t.match(longId.json(), {
    code: 'URI_TOO_LONG',
    status: 414,
    title: 'URI Too Long',
    requestId: longId.headers['x-request-id'],
  })
  t.equal(badUrl.statusCode, 400, badUrl.body)
  t.equal(badUrl.headers['content-type'], 'application/problem+json; charset=utf-8')
  t.match(badUrl.json(), { code: 'MALFORMED_URL', status: 400, requestId: badUrl.headers['x-request-id'] })
  t.equal(badUrl.headers['x-correlation-id'], 'caller-1', "the router's refusals echo the correlation id too")
})

t.test(
  'a method a path does not answer is a 405 problem with Allow; a path nothing answers stays a 404 problem',
  async (t) => {
    const { app } = await build(t, moto)
    const cases: [string, string, string][] = [
      ['PROPFIND', '/grants', 'GET, HEAD, POST'],
      ['TRACE', '/grants', 'GET, HEAD, POST'],
      ['PUT', '/grants/019a7c1e-5b2a-7c3d-9e4f-0a1b2c3d4e5f?x=1', 'DELETE, GET, HEAD, PATCH'],
      ['OPTIONS', '/audit', 'GET, HEAD'],
      ['DELETE', '/revocations', 'POST'],
    ]
    for (const [method, url, allow] of cases) {
      const response = await app.inject({ method: method as 'GET', url, headers: bearer() })
      t.equal(response.statusCode, 405, `${method} ${url}: ${response.body}`)
      t.equal(response.headers['content-type'], 'application/problem+json; charset=utf-8', `${method} ${url}`)
      t.equal(response.headers.allow, allow, `${method} ${url}`)
      t.match(
        response.json(),
        { code: 'METHOD_NOT_ALLOWED', status: 405, title: 'Method Not Allowed', instance: url.split('?')[0] },
        `${method} ${url}`,
      )
    }
    for (const [method, url] of [
      ['PROPFIND', '/nowhere'],
      ['PROPFIND', `/grants/${'a'.repeat(101)}`],
    ] as const) {
      const response = await app.inject({ method, url, headers: bearer() })
      t.equal(response.statusCode, 404, `${method} ${url}: ${response.body}`)
      t.match(response.json(), { code: 'ROUTE_NOT_FOUND' }, `${method} ${url}`)
    }
    const malformed = await app.inject({ method: 'PROPFIND', url: '/grants/%zz', headers: bearer() })
    t.match(malformed.json(), { status: 400, code: 'MALFORMED_URL' }, 'a malformed URL is refused whatever the method')
  },
)

t.test('over a real socket, headers over the limit and an unknown method are answered as problems', async (t) => {
  const { app } = await build(t, moto)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo

  const tooLarge = parseHttp(
    await rawRequest(port, `GET /grants?limit=1 HTTP/1.1\r\nHost: x\r\nX-Filler: ${'a'.repeat(20_000)}\r\n\r\n`),
  )
  const unknownMethod = parseHttp(await rawRequest(port, 'FROBNICATE /grants HTTP/1.1\r\nHost: x\r\n\r\n'))

  t.equal(tooLarge.status, 431, tooLarge.body)
  t.equal(tooLarge.headers['content-type'], 'application/problem+json; charset=utf-8')
  t.match(JSON.parse(tooLarge.body), {
    code: 'HEADERS_TOO_LARGE',
    status: 431,
    title: 'Request Header Fields Too Large',
    instance: '/grants',
    requestId: tooLarge.headers['x-request-id'],
  })
  t.match(tooLarge.headers['x-request-id'], /^[0-9a-f-]{36}$/)
  t.equal(unknownMethod.status, 501, unknownMethod.body)
  t.match(JSON.parse(unknownMethod.body), { code: 'METHOD_NOT_IMPLEMENTED', status: 501 })
})

/** Writes bytes as they are (no client to tidy them) and reads until the server closes the connection. */
function rawRequest(port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.end(bytes))
    const chunks: Buffer[] = []
    socket.on('data', (chunk) => chunks.push(chunk))
    socket.on('error', reject)
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')))
  })
}

function parseHttp(raw: string): { status: number; headers: Record<string, string>; body: string } {
  const [head = '', body = ''] = raw.split('\r\n\r\n', 2)
  const [statusLine = '', ...lines] = head.split('\r\n')
  const headers = Object.fromEntries(
    lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]),
  )
  return { status: Number(statusLine.split(' ')[1]), headers, body }
}

t.test('bad query strings and forged cursors are 400s', async (t) => {
  const { app } = await build(t, moto)
  for (let i = 0; i < 3; i++)
    await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() })
  const page = (await app.inject({ method: 'GET', url: '/grants?limit=1', headers: bearer() })).json()
  t.type(page.nextCursor, 'string')
  // The format cursors had before they were sealed (test/cursors.test.ts): a key anyone could edit.
  const crossQuery = Buffer.from(
    JSON.stringify({ k: { pk: 'grant#x', listShard: 'elsewhere', id: 'x' }, q: 'x' }),
  ).toString('base64url')

  const cases: [string, string][] = [
    ['limit 0', '/grants?limit=0'],
    ['limit 101', '/grants?limit=101'],
    ['limit not a number', '/grants?limit=ten'],
    ['unknown status', '/grants?status=pending'],
    ['unknown parameter', '/grants?owner=alice'],
    ['bad account filter', '/grants?accountId=42'],
    ['cursor that is not base64 JSON', '/grants?cursor=%%%'],
    ['cursor of random bytes', `/grants?cursor=${Buffer.from('garbage').toString('base64url')}`],
    ['cursor from another query', `/grants?userName=alice&cursor=${page.nextCursor}`],
    ['cursor edited to another partition', `/grants?cursor=${crossQuery}`],
    ['audit time that is not ISO 8601', '/audit?from=yesterday'],
    ['audit action that does not exist', '/audit?action=grant.stolen'],
    ['audit cursor from the grants list', `/audit?cursor=${page.nextCursor}`],
  ]
  for (const [name, url] of cases) {
    const response = await app.inject({ method: 'GET', url, headers: bearer() })
    expectStatus(t, response, 400, name)
    t.match(response.json().code, /^(VALIDATION_FAILED|INVALID_CURSOR)$/, name)
  }
})

t.test('unknown routes answer a 404 problem', async (t) => {
  const { app } = await build(t, moto)
  const response = await app.inject({ method: 'GET', url: '/admin', headers: bearer() })
  expectStatus(t, response, 404)
  t.equal(response.json().code, 'ROUTE_NOT_FOUND')
})
