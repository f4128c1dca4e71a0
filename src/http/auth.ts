import { createPublicKey } from 'node:crypto'
import fastifyJwt from '@fastify/jwt'
import type { Algorithm } from 'fast-jwt'
import type { FastifyInstance, FastifyRequest, onRequestAsyncHookHandler } from 'fastify'
import { HttpProblem } from './errors.ts'

export const SCOPES = {
  grantsWrite: 'grants:write',
  grantsRead: 'grants:read',
  grantsRevoke: 'grants:revoke',
  auditRead: 'audit:read',
  revocationsRun: 'revocations:run',
} as const
export type Scope = (typeof SCOPES)[keyof typeof SCOPES]
export const ALL_SCOPES: Scope[] = Object.values(SCOPES)

export interface JwtSettings {
  secret?: string | undefined
  publicKey?: string | undefined
  /** A JWKS endpoint: RS256/ES256 keys chosen by the token's kid, cached, refetched when a new kid appears. */
  jwksUrl?: string | undefined
  issuer?: string | undefined
  audience?: string | undefined
}

export interface Caller {
  sub: string
  scopes: string[]
}

declare module '@fastify/jwt' {
  interface FastifyJWT {
    user: Caller
  }
}

/**
 * Verifies bearer tokens with exactly one algorithm family: HS256 with a shared secret, or the asymmetric
 * algorithm matching the configured public key. Pinning the algorithm refuses `alg: none` and the classic
 * confusion attack (an HS256 token signed with the public key as its secret).
 */
export async function registerAuth(app: FastifyInstance, settings: JwtSettings): Promise<void> {
  const verify = {
    // fast-jwt checks iss/aud only when present; requiring them closes tokens that simply omit them.
    requiredClaims: ['sub', 'exp', ...(settings.issuer ? ['iss'] : []), ...(settings.audience ? ['aud'] : [])],
    ...(settings.issuer ? { allowedIss: settings.issuer } : {}),
    ...(settings.audience ? { allowedAud: settings.audience } : {}),
  }
  const formatUser = (payload: unknown) => ({ sub: String((payload as { sub?: unknown }).sub), scopes: scopesOf(payload) })
  if (settings.jwksUrl) {
    // Loaded only here: its key conversion (jwk-to-pem and its elliptic-curve code) would otherwise be loaded by
    // every cold start, for the one configuration that uses it.
    const { default: buildGetJwks } = await import('get-jwks')
    const jwksUrl = new URL(settings.jwksUrl)
    // The key location comes from configuration only, never from the token (its iss or jku), so a forged
    // token cannot point us at its author's keys.
    const jwks = buildGetJwks({ max: 100, ttl: 10 * 60_000, providerDiscovery: false, jwksPath: `${jwksUrl.pathname}${jwksUrl.search}` })
    await app.register(fastifyJwt, {
      decode: { complete: true },
      secret: async (_request: unknown, token: unknown) => {
        const { header } = token as { header: { alg?: string; kid?: string } }
        if (header.alg !== 'RS256' && header.alg !== 'ES256') throw new Error('unsupported algorithm')
        return jwks.getPublicKey({ domain: jwksUrl.origin, alg: header.alg, kid: header.kid ?? '' })
      },
      verify: { ...verify, algorithms: ['RS256', 'ES256'] as Algorithm[] },
      formatUser,
    })
    return
  }
  const algorithms: Algorithm[] = settings.publicKey ? [asymmetricAlgorithm(settings.publicKey)] : ['HS256']
  const secret = settings.publicKey ? { public: settings.publicKey } : settings.secret
  if (!secret) throw new Error('JWT verification needs a secret, a public key or a JWKS URL')
  await app.register(fastifyJwt, { secret, verify: { ...verify, algorithms }, formatUser })
}

function asymmetricAlgorithm(pem: string): Algorithm {
  const key = createPublicKey(pem)
  if (key.asymmetricKeyType === 'rsa') return 'RS256'
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ES256'
  throw new Error(`JIT_JWT_PUBLIC_KEY must be an RSA or P-256 EC public key, not ${key.asymmetricKeyType}`)
}

/** Scopes from the space-separated `scope` claim, or an `scp` array (Entra ID, Okta style). */
export function scopesOf(payload: unknown): string[] {
  const { scope, scp } = (payload ?? {}) as { scope?: unknown; scp?: unknown }
  const scopes: string[] = []
  if (typeof scope === 'string') scopes.push(...scope.split(' ').filter(Boolean))
  if (Array.isArray(scp)) scopes.push(...scp.filter((s): s is string => typeof s === 'string'))
  else if (typeof scp === 'string') scopes.push(...scp.split(' ').filter(Boolean))
  return scopes
}

/** An onRequest hook: the caller must present a valid token carrying exactly this scope. */
export function requireScope(scope: Scope): onRequestAsyncHookHandler {
  return async function authorize(request: FastifyRequest) {
    try {
      await request.jwtVerify()
    } catch (error) {
      // Whatever the verifier objects to (format, algorithm, signature, claims), the answer is a 401.
      throw new HttpProblem(401, 'UNAUTHORIZED', describeRefusal(error), { 'www-authenticate': 'Bearer error="invalid_token"' })
    }
    if (!request.user.sub || request.user.sub === 'undefined') {
      throw new HttpProblem(401, 'UNAUTHORIZED', 'The token has no subject', { 'www-authenticate': 'Bearer error="invalid_token"' })
    }
    if (!request.user.scopes.includes(scope)) {
      throw new HttpProblem(403, 'INSUFFICIENT_SCOPE', `This operation needs the '${scope}' scope`, {
        'www-authenticate': `Bearer error="insufficient_scope", scope="${scope}"`,
      })
    }
  }
}

function describeRefusal(error: unknown): string {
  switch ((error as { code?: string }).code) {
    case 'FST_JWT_NO_AUTHORIZATION_IN_HEADER':
      return 'Send Authorization: Bearer <JWT>'
    case 'FST_JWT_BAD_REQUEST':
      return 'The Authorization header must be: Bearer <JWT>'
    case 'FST_JWT_AUTHORIZATION_TOKEN_EXPIRED':
      return 'The token has expired'
    case 'FST_JWT_AUTHORIZATION_TOKEN_UNTRUSTED':
      return 'The token was not issued for this service'
    default:
      return 'The token is invalid'
  }
}
