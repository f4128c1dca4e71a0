import { generateKeyPairSync, type KeyObject } from 'node:crypto'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { build } from './helpers/app.ts'
import { startMoto } from './helpers/moto.ts'
import { bearer, mintToken, TEST_AUDIENCE, TEST_ISSUER } from './helpers/tokens.ts'

const moto = await startMoto(t)

interface SigningKey {
  kid: string
  algorithm: 'RS256' | 'ES256'
  privatePem: string
  publicKey: KeyObject
}

function signingKey(kid: string, algorithm: 'RS256' | 'ES256'): SigningKey {
  const pair = algorithm === 'RS256' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
  return { kid, algorithm, privatePem: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), publicKey: pair.publicKey }
}

/** An identity provider's JWKS endpoint on loopback, whose published keys the test changes. */
async function jwksServer(t: { teardown(fn: () => unknown): void }) {
  let published: SigningKey[] = []
  let fetches = 0
  const server = createServer((request, response) => {
    fetches++
    if (request.url !== '/oauth2/jwks') return void response.writeHead(404).end()
    const keys = published.map((key) => ({ ...key.publicKey.export({ format: 'jwk' }), kid: key.kid, alg: key.algorithm, use: 'sig' }))
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => server.close(resolve)))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/oauth2/jwks`,
    publish: (keys: SigningKey[]) => void (published = keys),
    fetches: () => fetches,
  }
}

const tokenFrom = (key: SigningKey) => signWithKid(key, key.kid)

function signWithKid(key: SigningKey, kid: string): string {
  return mintToken({ algorithm: key.algorithm, key: key.privatePem, kid })
}

t.test('tokens are verified by kid against the JWKS endpoint, with rotation and caching', async (t) => {
  const jwks = await jwksServer(t)
  const first = signingKey('2026-11-a', 'RS256')
  const rotated = signingKey('2026-11-b', 'ES256')
  jwks.publish([first])
  const { app } = await build(t, moto, { jwt: { jwksUrl: jwks.url, issuer: TEST_ISSUER, audience: TEST_AUDIENCE } })

  const before = await app.inject({ method: 'GET', url: '/grants', headers: bearer(tokenFrom(first)) })
  t.equal(before.statusCode, 200, 'a token from the published key works')
  const again = await app.inject({ method: 'GET', url: '/grants', headers: bearer(tokenFrom(first)) })
  t.equal(again.statusCode, 200)
  t.equal(jwks.fetches(), 1, 'the key set is cached')

  jwks.publish([first, rotated])
  const afterRotation = await app.inject({ method: 'GET', url: '/grants', headers: bearer(tokenFrom(rotated)) })
  t.equal(afterRotation.statusCode, 200, 'a key published after the cache was filled is fetched when its kid appears')

  const unknown = await app.inject({ method: 'GET', url: '/grants', headers: bearer(signWithKid(signingKey('stranger', 'RS256'), 'stranger')) })
  t.equal(unknown.statusCode, 401, 'an unknown kid is refused')
  t.equal(unknown.json().code, 'UNAUTHORIZED')

  const impostor = await app.inject({ method: 'GET', url: '/grants', headers: bearer(signWithKid(signingKey('x', 'RS256'), first.kid)) })
  t.equal(impostor.statusCode, 401, 'a known kid signed with another key is refused')

  const hmac = await app.inject({ method: 'GET', url: '/grants', headers: bearer(mintToken({ algorithm: 'HS256', key: 'some-secret-that-is-long-enough-to-sign-with' })) })
  t.equal(hmac.statusCode, 401, 'symmetric tokens are refused when keys come from a JWKS')

  const wrongIssuer = await app.inject({ method: 'GET', url: '/grants', headers: bearer(mintToken({ algorithm: 'RS256', key: first.privatePem, kid: first.kid, issuer: 'https://evil.example.com' })) })
  t.equal(wrongIssuer.statusCode, 401, 'the issuer is still enforced')
})
