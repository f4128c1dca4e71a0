import { generateKeyPairSync } from 'node:crypto'
import t from 'tap'
import { build, grantBody } from './helpers/app.ts'
import { startMoto } from './helpers/moto.ts'
import { bearer, mintToken, TEST_AUDIENCE, TEST_ISSUER } from './helpers/tokens.ts'

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
    ['forged signature', { authorization: `Bearer ${header}.${payload}.${Buffer.from('forged').toString('base64url')}` }],
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
    t.equal(response.statusCode, 401, name)
    t.match(response.json(), { code: 'UNAUTHORIZED', status: 401, type: 'urn:jit-access:problem:unauthorized' }, name)
    t.match(response.headers['www-authenticate'], /^Bearer/, name)
    t.notMatch(response.body, valid, `${name}: the token is never echoed`)
  }
  t.notOk(await hasAssignment('alice', '111111111111', 'AdministratorAccess'))
  const grants = (await app.inject({ method: 'GET', url: '/grants', headers: bearer() })).json()
  t.equal(grants.items.length, 0)
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
  const otherScopes = 'grants:writer grants audit:read:all GRANTS:WRITE grants:read grants:revoke audit:read revocations:run grants:write'
  for (const [method, url, scope] of routes) {
    const without = otherScopes.split(' ').filter((s) => s !== scope).join(' ')
    const response = await app.inject({ method: method as 'GET', url, headers: bearer(mintToken({ scope: without })), payload: method === 'POST' && url === '/grants' ? grantBody() : undefined })
    t.equal(response.statusCode, 403, `${method} ${url} without ${scope}`)
    t.match(response.json(), { code: 'INSUFFICIENT_SCOPE', detail: new RegExp(scope) })
    t.match(response.headers['www-authenticate'], `scope="${scope}"`)
  }
  const created = await app.inject({ method: 'POST', url: '/grants', headers: bearer(mintToken({ scope: 'grants:read' })), payload: grantBody() })
  t.equal(created.statusCode, 403)
  t.equal((await app.inject({ method: 'GET', url: '/grants', headers: bearer() })).json().items.length, 0, 'refused requests create nothing')
})

t.test('scopes may come as an scp array', async (t) => {
  const { app } = await build(t, moto)
  const token = mintToken({ scope: undefined, claims: { scp: ['grants:read'] } })
  const response = await app.inject({ method: 'GET', url: '/grants', headers: bearer(token) })
  t.equal(response.statusCode, 200)
})

t.test('health, OpenAPI and docs need no token', async (t) => {
  const { app } = await build(t, moto)
  for (const url of ['/health', '/openapi.json', '/docs']) {
    const response = await app.inject({ method: 'GET', url })
    t.ok(response.statusCode < 400, `${url} answers ${response.statusCode}`)
  }
})

const keyPair = (kind: 'RSA' | 'EC P-256') =>
  kind === 'RSA' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ec', { namedCurve: 'prime256v1' })

for (const [kind, algorithm] of [['RSA', 'RS256'], ['EC P-256', 'ES256']] as const) {
  t.test(`${algorithm} tokens verify against a configured ${kind} public key, and HS256 tokens signed with that key are refused`, async (t) => {
    const { publicKey, privateKey } = keyPair(kind)
    const publicPem = publicKey.export({ type: 'spki', format: 'pem' }).toString()
    const privatePem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
    const { app } = await build(t, moto, { jwt: { publicKey: publicPem, issuer: TEST_ISSUER, audience: TEST_AUDIENCE } })

    const good = await app.inject({ method: 'GET', url: '/grants', headers: bearer(mintToken({ algorithm, key: privatePem })) })
    const confused = await app.inject({ method: 'GET', url: '/grants', headers: bearer(mintToken({ algorithm: 'HS256', key: publicPem })) })
    const otherKey = keyPair(kind).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
    const foreign = await app.inject({ method: 'GET', url: '/grants', headers: bearer(mintToken({ algorithm, key: otherKey })) })

    t.equal(good.statusCode, 200)
    t.equal(confused.statusCode, 401, 'algorithm confusion refused')
    t.equal(foreign.statusCode, 401, 'a key we do not trust is refused')
  })
}

t.test('the Authorization header never reaches the logs', async (t) => {
  const { app, logLines } = await build(t, moto)
  const token = mintToken()
  await app.inject({ method: 'POST', url: '/grants', headers: bearer(token), payload: grantBody() })
  await app.inject({ method: 'POST', url: '/grants', headers: bearer(token), payload: grantBody({ durationMinutes: 9999 }) })
  await app.inject({ method: 'GET', url: '/grants', headers: bearer(`${token}x`) })

  t.ok(logLines.length > 3, 'requests were logged')
  const signature = token.split('.')[2] as string
  t.notOk(logLines.some((line) => line.includes(signature)), 'no token in any log line')
})
