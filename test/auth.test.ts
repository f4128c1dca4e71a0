import { generateKeyPairSync } from 'node:crypto'
import t from 'tap'
import { build, grantBody } from './helpers/app.ts'
import { expectStatus } from './helpers/http-status.ts'
import { startMoto } from './helpers/moto.ts'
import { bearer, mintToken, TEST_AUDIENCE, TEST_ISSUER, TEST_SECRET } from './helpers/tokens.ts'

const moto = await startMoto(t)

t.test('every malformed, forged, expired or foreign token is a 401 problem and creates nothing', async (t) => {
  const { app, hasAssignment } = await build(t, moto)
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const rsaPrivate = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
  const valid = mintToken()
  const [header, payload] = valid.split('.')
  const cases: [string, Record<string, string>][] = [
    ['no Authorization header', {}],
    ['not a Bearer header', { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` }],
    ['Bearer with no token', { authorization: 'Bearer ' }],
    ['garbage token', { authorization: 'Bearer not.a.jwt' }],
    [
      'forged signature',
      { authorization: `Bearer ${header}.${payload}.${Buffer.from('forged').toString('base64url')}` },
    ],
    ['signed with another secret', bearer(mintToken({ key: 'some-other-secret-that-is-also-long-enough' }))],
    ['expired', bearer(mintToken({ expiresInMs: undefined, claims: { exp: Math.floor(Date.now() / 1000) - 60 } }))],
    ['no expiry at all', bearer(mintToken({ expiresInMs: undefined }))],
    ['wrong issuer', bearer(mintToken({ issuer: 'https://evil.example.com' }))],
    ['no issuer', bearer(mintToken({ issuer: undefined }))],
    ['wrong audience', bearer(mintToken({ audience: 'another-api' }))],
    ['alg none', bearer(mintToken({ algorithm: 'none' }))],
    ['RS256 token when HS256 is configured', bearer(mintToken({ algorithm: 'RS256', key: rsaPrivate }))],
    ['no subject', bearer(mintToken({ sub: undefined }))],
  ]
  for (const [name, headers] of cases) {
    const response = await app.inject({ method: 'POST', url: '/grants', headers, payload: grantBody() })
    expectStatus(t, response, 401, name)
    t.match(response.json(), { code: 'UNAUTHORIZED', status: 401, type: 'urn:jit-access:problem:unauthorized' }, name)
    t.match(response.headers['www-authenticate'], /^Bearer/, name)
    t.notMatch(response.body, valid, `${name}: the token is never echoed`)
  }
  t.notOk(await hasAssignment('alice', '111111111111', 'AdministratorAccess'))
  const grants = (await app.inject({ method: 'GET', url: '/grants', headers: bearer() })).json()
  t.equal(grants.items.length, 0)
})

const nowSeconds = () => Math.floor(Date.now() / 1000)
const HOUR_MS = 3600_000

t.test('a token must say when it was issued, live at most an hour, and not come from the future', async (t) => {
  const { app } = await build(t, moto)
  const refused: [string, string, RegExp][] = [
    [
      'exp a century away',
      mintToken({ expiresInMs: 100 * 365 * 24 * HOUR_MS }),
      /lifetime \(exp - iat\) is longer than the 3600 seconds/,
    ],
    ['a lifetime one second over the hour', mintToken({ expiresInMs: HOUR_MS + 1000 }), /lifetime/],
    ['iat ten years in the future', mintToken({ iat: nowSeconds() + 10 * 365 * 24 * 3600 }), /iat is in the future/],
    ['iat two minutes in the future', mintToken({ iat: nowSeconds() + 120 }), /iat is in the future/],
    ['no iat', mintToken({ iat: undefined }), /issued \(iat/],
  ]
  for (const [name, token, detail] of refused) {
    const response = await app.inject({ method: 'POST', url: '/grants', headers: bearer(token), payload: grantBody() })
    t.equal(response.statusCode, 401, `${name}: ${response.body}`)
    t.match(response.json(), { code: 'UNAUTHORIZED', detail }, name)
    t.match(response.headers['www-authenticate'], /^Bearer error="invalid_token"/, name)
  }
  const accepted: [string, string][] = [
    ['a lifetime of exactly the hour', mintToken({ expiresInMs: HOUR_MS })],
    ['iat within the minute of clock skew', mintToken({ iat: nowSeconds() + 30 })],
    ['issued 50 minutes ago, an hour to live', mintToken({ iat: nowSeconds() - 50 * 60, expiresInMs: HOUR_MS })],
  ]
  for (const [name, token] of accepted) {
    const response = await app.inject({ method: 'GET', url: '/grants', headers: bearer(token) })
    t.equal(response.statusCode, 200, `${name}: ${response.body}`)
  }
  t.equal(
    (await app.inject({ method: 'GET', url: '/grants', headers: bearer() })).json().items.length,
    0,
    'refused requests create nothing',
  )
})

t.test('the longest token lifetime is a setting', async (t) => {
  const { app } = await build(t, moto, {
    jwt: { secret: TEST_SECRET, issuer: TEST_ISSUER, audience: TEST_AUDIENCE, maxLifetimeSeconds: 120 },
  })

  const tenMinutes = await app.inject({
    method: 'GET',
    url: '/grants',
    headers: bearer(mintToken({ expiresInMs: 600_000 })),
  })
  const twoMinutes = await app.inject({
    method: 'GET',
    url: '/grants',
    headers: bearer(mintToken({ expiresInMs: 120_000 })),
  })

  t.equal(tenMinutes.statusCode, 401, tenMinutes.body)
  t.match(tenMinutes.json().detail, /longer than the 120 seconds/)
  t.equal(twoMinutes.statusCode, 200, twoMinutes.body)
})

t.test("the subject must be 1 to 256 printable characters, outside the service's own system: actors", async (t) => {
  const { app } = await build(t, moto)
  const printable = /sub\) must be a string of 1 to 256 printable characters/
  const reserved = /'system:' are reserved/
  const refused: [string, Record<string, unknown>, RegExp][] = [
    ['an object', { sub: { id: 'servicenow-workflow' } }, printable],
    ['a number', { sub: 42 }, printable],
    ['an empty string', { sub: '' }, printable],
    ['3,000 characters', { sub: 'x'.repeat(3000) }, printable],
    ['257 characters', { sub: 'x'.repeat(257) }, printable],
    ['a newline', { sub: 'workflow\nforged audit line' }, printable],
    ['a carriage return', { sub: 'workflow\r' }, printable],
    ['U+2028', { sub: 'workflow\u2028x' }, printable],
    ['U+2029', { sub: 'workflow\u2029x' }, printable],
    ['a bidi override', { sub: 'workflow\u202ex' }, printable],
    ['a NUL', { sub: 'workflow\u0000' }, printable],
    ['a lone surrogate', { sub: 'workflow\ud800' }, printable],
    ['a leading space', { sub: ' system:sweep' }, printable],
    ['system:scheduler', { sub: 'system:scheduler' }, reserved],
    ['system:sweep in capitals', { sub: 'SYSTEM:SWEEP' }, reserved],
    ['any system: subject', { sub: 'System:anything' }, reserved],
    ['system: with a long s', { sub: '\u017Fystem:scheduler' }, reserved],
  ]
  // Line-oriented readers of the test's own output (TAP) would split an accepted body that echoes the subject.
  const visible = (text: string) =>
    text.replace(/[\p{C}\p{Zl}\p{Zp}]/gu, (c) => `\\u{${c.codePointAt(0)?.toString(16)}}`)
  for (const [name, claims, detail] of refused) {
    const response = await app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(mintToken({ sub: undefined, claims })),
      payload: grantBody(),
    })
    t.equal(response.statusCode, 401, `${name}: ${visible(response.body)}`)
    t.match(response.json(), { code: 'UNAUTHORIZED', detail }, name)
  }
  const accepted = [
    'x'.repeat(256),
    'jane.doe@example.com',
    'Zoë Ångström 名前',
    'systemic-workflow',
    'workflow system:sweep',
  ]
  for (const sub of accepted) {
    const response = await app.inject({ method: 'GET', url: '/grants', headers: bearer(mintToken({ sub })) })
    t.equal(response.statusCode, 200, `${sub}: ${response.body}`)
  }
  t.equal(
    (await app.inject({ method: 'GET', url: '/grants', headers: bearer() })).json().items.length,
    0,
    'refused requests create nothing',
  )
  const impersonated = await app.inject({ method: 'GET', url: '/audit?actor=system:scheduler', headers: bearer() })
  t.same(impersonated.json().items, [], 'nothing is recorded in the name of the scheduler')
})

t.test('each route needs its own scope, matched exactly', async (t) => {
  const { app } = await build(t, moto)
  const routes: [string, string, string][] = [
    ['POST', '/grants', 'grants:write'],
    ['GET', '/grants', 'grants:read'],
    ['GET', '/grants/x', 'grants:read'],
    ['DELETE', '/grants/x', 'grants:revoke'],
    ['GET', '/audit', 'audit:read'],
    ['POST', '/revocations', 'revocations:run'],
  ]
  const otherScopes =
    'grants:writer grants audit:read:all GRANTS:WRITE grants:read grants:revoke audit:read revocations:run grants:write'
  for (const [method, url, scope] of routes) {
    const without = otherScopes
      .split(' ')
      .filter((s) => s !== scope)
      .join(' ')
    const response = await app.inject({
      method: method as 'GET',
      url,
      headers: bearer(mintToken({ scope: without })),
      payload: method === 'POST' && url === '/grants' ? grantBody() : undefined,
    })
    expectStatus(t, response, 403, `${method} ${url} without ${scope}`)
    t.match(response.json(), { code: 'INSUFFICIENT_SCOPE', detail: new RegExp(scope) })
    t.match(response.headers['www-authenticate'], `scope="${scope}"`)
  }
  const created = await app.inject({
    method: 'POST',
    url: '/grants',
    headers: bearer(mintToken({ scope: 'grants:read' })),
    payload: grantBody(),
  })
  expectStatus(t, created, 403)
  t.equal(
    (await app.inject({ method: 'GET', url: '/grants', headers: bearer() })).json().items.length,
    0,
    'refused requests create nothing',
  )
})

t.test('scopes may come as an scp array', async (t) => {
  const { app } = await build(t, moto)
  const token = mintToken({ scope: undefined, claims: { scp: ['grants:read'] } })
  const response = await app.inject({ method: 'GET', url: '/grants', headers: bearer(token) })
  expectStatus(t, response, 200)
})

t.test('health, OpenAPI and docs need no token', async (t) => {
  const { app } = await build(t, moto)
  for (const url of ['/health', '/openapi.json', '/docs']) {
    const response = await app.inject({ method: 'GET', url })
    const failed = response.statusCode >= 400 ? `: ${response.body}` : ''
    t.ok(response.statusCode < 400, `${url} answers ${response.statusCode}${failed}`)
  }
})

const keyPair = (kind: 'RSA' | 'EC P-256') =>
  kind === 'RSA'
    ? generateKeyPairSync('rsa', { modulusLength: 2048 })
    : generateKeyPairSync('ec', { namedCurve: 'prime256v1' })

for (const [kind, algorithm] of [
  ['RSA', 'RS256'],
  ['EC P-256', 'ES256'],
] as const) {
  t.test(
    `${algorithm} tokens verify against a configured ${kind} public key, and HS256 tokens signed with that key are refused`,
    async (t) => {
      const { publicKey, privateKey } = keyPair(kind)
      const publicPem = publicKey.export({ type: 'spki', format: 'pem' }).toString()
      const privatePem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
      const { app } = await build(t, moto, {
        jwt: { publicKey: publicPem, issuer: TEST_ISSUER, audience: TEST_AUDIENCE },
      })

      const good = await app.inject({
        method: 'GET',
        url: '/grants',
        headers: bearer(mintToken({ algorithm, key: privatePem })),
      })
      const confused = await app.inject({
        method: 'GET',
        url: '/grants',
        headers: bearer(mintToken({ algorithm: 'HS256', key: publicPem })),
      })
      const otherKey = keyPair(kind).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
      const foreign = await app.inject({
        method: 'GET',
        url: '/grants',
        headers: bearer(mintToken({ algorithm, key: otherKey })),
      })

      expectStatus(t, good, 200)
      expectStatus(t, confused, 401, 'algorithm confusion refused')
      expectStatus(t, foreign, 401, 'a key we do not trust is refused')
    },
  )
}

t.test('the Authorization header never reaches the logs', async (t) => {
  const { app, logLines } = await build(t, moto)
  const token = mintToken()
  await app.inject({ method: 'POST', url: '/grants', headers: bearer(token), payload: grantBody() })
  await app.inject({
    method: 'POST',
    url: '/grants',
    headers: bearer(token),
    payload: grantBody({ durationMinutes: 9999 }),
  })
  await app.inject({ method: 'GET', url: '/grants', headers: bearer(`${token}x`) })

  t.ok(logLines.length > 3, 'requests were logged')
  const signature = token.split('.')[2] as string
  t.notOk(
    logLines.some((line) => line.includes(signature)),
    'no token in any log line',
  )
})
