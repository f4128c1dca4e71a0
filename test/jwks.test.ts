import { generateKeyPairSync, type KeyObject, randomUUID } from 'node:crypto'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { JWKS_REFETCH_COOLDOWN_MS, JWKS_TTL_MS } from '../src/http/auth.ts'
import { build } from './helpers/app.ts'
import { expectStatus, expectStatuses } from './helpers/http-status.ts'
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
  const pair =
    algorithm === 'RS256'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
  return {
    kid,
    algorithm,
    privatePem: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKey: pair.publicKey,
  }
}

/** An identity provider's JWKS endpoint on loopback, whose published keys the test changes. */
async function jwksServer(t: { teardown(fn: () => unknown): void }) {
  let published: SigningKey[] = []
  let fetches = 0
  let failing = false
  const server = createServer((request, response) => {
    fetches++
    if (failing) return void response.writeHead(500).end()
    if (request.url !== '/oauth2/jwks') return void response.writeHead(404).end()
    const keys = published.map((key) => ({
      ...key.publicKey.export({ format: 'jwk' }),
      kid: key.kid,
      alg: key.algorithm,
      use: 'sig',
    }))
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => server.close(resolve)))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/oauth2/jwks`,
    publish: (keys: SigningKey[]) => {
      published = keys
    },
    fail: (fail: boolean) => {
      failing = fail
    },
    fetches: () => fetches,
  }
}

const tokenFrom = (key: SigningKey) => signWithKid(key, key.kid)

function signWithKid(key: SigningKey, kid: string): string {
  return mintToken({ algorithm: key.algorithm, key: key.privatePem, kid })
}

/** The JWKS cache's clock, moved by hand: its cooldown and ttl pass without sleeping. */
function manualTime() {
  let now = Date.now()
  return {
    now: () => now,
    advance: (ms: number) => {
      now += ms
    },
  }
}

t.test('tokens are verified by kid against the JWKS endpoint, with rotation and caching', async (t) => {
  const jwks = await jwksServer(t)
  const first = signingKey('2026-11-a', 'RS256')
  const rotated = signingKey('2026-11-b', 'ES256')
  jwks.publish([first])
  const time = manualTime()
  const { app } = await build(t, moto, {
    jwt: { jwksUrl: jwks.url, issuer: TEST_ISSUER, audience: TEST_AUDIENCE, now: time.now },
  })

  const before = await app.inject({ method: 'GET', url: '/grants', headers: bearer(tokenFrom(first)) })
  expectStatus(t, before, 200, 'a token from the published key works')
  const again = await app.inject({ method: 'GET', url: '/grants', headers: bearer(tokenFrom(first)) })
  t.equal(again.statusCode, 200, again.body)
  t.equal(jwks.fetches(), 1, 'the key set is cached')

  jwks.publish([first, rotated])
  time.advance(JWKS_REFETCH_COOLDOWN_MS)
  const afterRotation = await app.inject({ method: 'GET', url: '/grants', headers: bearer(tokenFrom(rotated)) })
  expectStatus(t, afterRotation, 200, 'a key published after the cache was filled is fetched when its kid appears')

  const unknown = await app.inject({
    method: 'GET',
    url: '/grants',
    headers: bearer(signWithKid(signingKey('stranger', 'RS256'), 'stranger')),
  })
  expectStatus(t, unknown, 401, 'an unknown kid is refused')
  t.equal(unknown.json().code, 'UNAUTHORIZED')

  const impostor = await app.inject({
    method: 'GET',
    url: '/grants',
    headers: bearer(signWithKid(signingKey('x', 'RS256'), first.kid)),
  })
  expectStatus(t, impostor, 401, 'a known kid signed with another key is refused')

  const hmac = await app.inject({
    method: 'GET',
    url: '/grants',
    headers: bearer(mintToken({ algorithm: 'HS256', key: 'some-secret-that-is-long-enough-to-sign-with' })),
  })
  expectStatus(t, hmac, 401, 'symmetric tokens are refused when keys come from a JWKS')

  const wrongIssuer = await app.inject({
    method: 'GET',
    url: '/grants',
    headers: bearer(
      mintToken({ algorithm: 'RS256', key: first.privatePem, kid: first.kid, issuer: 'https://evil.example.com' }),
    ),
  })
  expectStatus(t, wrongIssuer, 401, 'the issuer is still enforced')
})

t.test(
  'tokens naming unknown kids cost at most one JWKS fetch per cooldown, and a rotated key is picked up after it',
  async (t) => {
    const jwks = await jwksServer(t)
    const current = signingKey('2026-12-a', 'ES256')
    const next = signingKey('2026-12-b', 'ES256')
    const stranger = signingKey('stranger', 'ES256')
    jwks.publish([current])
    const time = manualTime()
    const { app } = await build(t, moto, {
      jwt: { jwksUrl: jwks.url, issuer: TEST_ISSUER, audience: TEST_AUDIENCE, now: time.now },
    })
    const randomKid = () =>
      app.inject({ method: 'GET', url: '/grants', headers: bearer(signWithKid(stranger, randomUUID())) })

    const atOnce = await Promise.all(Array.from({ length: 20 }, randomKid))
    const oneByOne = []
    for (let i = 0; i < 20; i++) oneByOne.push(await randomKid())
    time.advance(JWKS_REFETCH_COOLDOWN_MS - 1)
    oneByOne.push(await randomKid())

    expectStatuses(t, [...atOnce, ...oneByOne], Array(41).fill(401), 'every unknown kid is refused')
    t.match(oneByOne[0]?.json(), { code: 'UNAUTHORIZED', detail: /key .* is not one the identity provider publishes/ })
    t.equal(jwks.fetches(), 1, 'one fetch for 41 unknown kids within the cooldown')
    const known = await app.inject({ method: 'GET', url: '/grants', headers: bearer(tokenFrom(current)) })
    t.equal(known.statusCode, 200, `a published key is answered from memory meanwhile: ${known.body}`)
    t.equal(jwks.fetches(), 1)

    jwks.publish([current, next])
    const tooSoon = await app.inject({ method: 'GET', url: '/grants', headers: bearer(tokenFrom(next)) })
    expectStatus(t, tooSoon, 401, 'a key published since the last fetch waits for the cooldown')
    time.advance(1)
    const rotated = await app.inject({ method: 'GET', url: '/grants', headers: bearer(tokenFrom(next)) })
    t.equal(rotated.statusCode, 200, `after the cooldown the rotated key is fetched and accepted: ${rotated.body}`)
    t.equal(jwks.fetches(), 2)
    await randomKid()
    t.equal(jwks.fetches(), 2, 'that fetch starts a new cooldown')
  },
)

t.test(
  'every key of the fetched set is used from memory, and a withdrawn key stops working when the set is refetched',
  async (t) => {
    const jwks = await jwksServer(t)
    const old = signingKey('2026-10-a', 'RS256')
    const current = signingKey('2026-11-a', 'ES256')
    jwks.publish([old, current])
    const time = manualTime()
    const { app } = await build(t, moto, {
      jwt: { jwksUrl: jwks.url, issuer: TEST_ISSUER, audience: TEST_AUDIENCE, now: time.now },
    })

    expectStatus(t, await app.inject({ method: 'GET', url: '/grants', headers: bearer(tokenFrom(old)) }), 200)
    expectStatus(t, await app.inject({ method: 'GET', url: '/grants', headers: bearer(tokenFrom(current)) }), 200)
    t.equal(jwks.fetches(), 1, 'the second key came with the first fetch')

    jwks.publish([current])
    time.advance(JWKS_TTL_MS)
    const withdrawn = await app.inject({ method: 'GET', url: '/grants', headers: bearer(tokenFrom(old)) })
    const kept = await app.inject({ method: 'GET', url: '/grants', headers: bearer(tokenFrom(current)) })

    expectStatus(t, withdrawn, 401, 'the withdrawn key is refused once the set is refetched')
    t.equal(kept.statusCode, 200, kept.body)
    t.equal(jwks.fetches(), 2)
  },
)

t.test('when the JWKS endpoint fails, the last key set keeps working and the endpoint is not hammered', async (t) => {
  const jwks = await jwksServer(t)
  const current = signingKey('2026-11-a', 'ES256')
  jwks.publish([current])
  const time = manualTime()
  const { app } = await build(t, moto, {
    jwt: { jwksUrl: jwks.url, issuer: TEST_ISSUER, audience: TEST_AUDIENCE, now: time.now },
  })
  expectStatus(t, await app.inject({ method: 'GET', url: '/grants', headers: bearer(tokenFrom(current)) }), 200)

  jwks.fail(true)
  time.advance(JWKS_TTL_MS)
  const responses = []
  for (let i = 0; i < 5; i++)
    responses.push(await app.inject({ method: 'GET', url: '/grants', headers: bearer(tokenFrom(current)) }))

  expectStatuses(t, responses, [200, 200, 200, 200, 200], 'the last good set is used')
  t.equal(jwks.fetches(), 2, 'one failed refetch, then the cooldown')
})
