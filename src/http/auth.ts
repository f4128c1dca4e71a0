import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto'
import fastifyJwt from '@fastify/jwt'
import type { Algorithm } from 'fast-jwt'
import type { FastifyBaseLogger, FastifyInstance, FastifyRequest, onRequestAsyncHookHandler } from 'fastify'
import { HttpProblem } from './errors.ts'

export const SCOPES = {
  grantsWrite: 'grants:write',
  grantsRead: 'grants:read',
  grantsRevoke: 'grants:revoke',
  auditRead: 'audit:read',
  revocationsRun: 'revocations:run',
  policyRead: 'policy:read',
} as const
export type Scope = (typeof SCOPES)[keyof typeof SCOPES]
export const ALL_SCOPES: Scope[] = Object.values(SCOPES)

/** ServiceNow signs a fresh token for each call: an hour is generous, and bounds what a leaked token is worth. */
const DEFAULT_MAX_TOKEN_LIFETIME_SECONDS = 3600
/** How far ahead of our clock an issuer's clock may run before its tokens' iat counts as "in the future". */
const MAX_CLOCK_SKEW_SECONDS = 60
/** How long a fetched key set is used before it is fetched again (a withdrawn key stops working within this). */
export const JWKS_TTL_MS = 10 * 60_000
/** After a fetch, a token naming a kid we do not have is refused from memory for this long instead of fetching again. */
export const JWKS_REFETCH_COOLDOWN_MS = 30_000
const JWKS_FETCH_TIMEOUT_MS = 5000
const MAX_SUBJECT_LENGTH = 256

export interface JwtSettings {
  secret?: string | undefined
  publicKey?: string | undefined
  /** A JWKS endpoint: RS256/ES256 keys chosen by the token's kid from the last fetched set (see JwksKeys). */
  jwksUrl?: string | undefined
  issuer?: string | undefined
  audience?: string | undefined
  /** The longest lifetime (exp - iat) a token may have, in seconds; DEFAULT_MAX_TOKEN_LIFETIME_SECONDS unset. */
  maxLifetimeSeconds?: number | undefined
  /**
   * Milliseconds since the epoch for the JWKS cache's ttl and cooldown, so that tests can move it by hand. A token's
   * exp and iat are always checked against the system clock, the one fast-jwt checks exp with.
   */
  now?: (() => number) | undefined
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

/** A token refused for a reason the caller can act on; its message is the problem's detail. */
class TokenRefused extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'TokenRefused'
  }
}

/**
 * Verifies bearer tokens with exactly one algorithm family: HS256 with a shared secret, or the asymmetric
 * algorithm matching the configured public key. Pinning the algorithm refuses `alg: none` and the classic
 * confusion attack (an HS256 token signed with the public key as its secret).
 */
export async function registerAuth(app: FastifyInstance, settings: JwtSettings): Promise<void> {
  const maxLifetimeSeconds = settings.maxLifetimeSeconds ?? DEFAULT_MAX_TOKEN_LIFETIME_SECONDS
  const verify = {
    // fast-jwt checks iss/aud only when present; requiring them closes tokens that simply omit them.
    requiredClaims: ['exp', ...(settings.issuer ? ['iss'] : []), ...(settings.audience ? ['aud'] : [])],
    ...(settings.issuer ? { allowedIss: settings.issuer } : {}),
    ...(settings.audience ? { allowedAud: settings.audience } : {}),
  }
  // sub and iat are checked here rather than with requiredClaims, so that the refusal can say what was wrong.
  // fast-jwt's maxAge would not do for the lifetime: it bounds now - iat (which exp already bounds once exp - iat
  // is bounded) and lets an iat ten years ahead through. Runs after the signature is checked, and async because
  // @fastify/jwt passes a rejection on as the verification's error where a throw would escape it.
  const trusted = async (_request: FastifyRequest, payload: Record<string, unknown>) => {
    const refusal = claimsRefusal(payload, maxLifetimeSeconds, Date.now())
    if (refusal) throw new TokenRefused(refusal)
    return true
  }
  const formatUser = (payload: unknown) => ({ sub: (payload as { sub: string }).sub, scopes: scopesOf(payload) })
  if (settings.jwksUrl) {
    const keys = new JwksKeys(new URL(settings.jwksUrl), settings.now ?? Date.now, app.log)
    await app.register(fastifyJwt, {
      decode: { complete: true },
      secret: async (_request: unknown, token: unknown) => {
        const { header } = token as { header: { alg?: string; kid?: unknown } }
        if (header.alg !== 'RS256' && header.alg !== 'ES256')
          throw new TokenRefused('The token must be signed with RS256 or ES256')
        return keys.publicKey(typeof header.kid === 'string' ? header.kid : '', header.alg)
      },
      verify: { ...verify, algorithms: ['RS256', 'ES256'] as Algorithm[] },
      trusted,
      formatUser,
    })
    return
  }
  const algorithms: Algorithm[] = settings.publicKey ? [asymmetricAlgorithm(settings.publicKey)] : ['HS256']
  const secret = settings.publicKey ? { public: settings.publicKey } : settings.secret
  if (!secret) throw new Error('JWT verification needs a secret, a public key or a JWKS URL')
  await app.register(fastifyJwt, { secret, verify: { ...verify, algorithms }, trusted, formatUser })
}

// Printable: no Unicode "Other" (controls, format characters such as bidi overrides, surrogates, private use,
// unassigned) and no line or paragraph separators, which would break or forge lines in logs and CSV exports.
const PRINTABLE_SUBJECT = new RegExp(`^[^\\p{C}\\p{Zl}\\p{Zp}]{1,${MAX_SUBJECT_LENGTH}}$`, 'u')
// Case-insensitive with Unicode case folding, which also catches look-alikes such as 'ſystem:' (long s).
const RESERVED_SUBJECT = /^system:/iu

/** Why a verified token's subject or times are not acceptable, or undefined when they are. */
function claimsRefusal(
  payload: Record<string, unknown>,
  maxLifetimeSeconds: number,
  nowMs: number,
): string | undefined {
  const { sub, iat, exp } = payload
  if (sub === undefined) return 'The token has no subject (sub)'
  // Every audited write carries the subject as its actor: an unbounded one makes the write fail, and the
  // decision (a denial included) would go unrecorded.
  if (typeof sub !== 'string' || !PRINTABLE_SUBJECT.test(sub) || sub.trim() !== sub) {
    return `The token's subject (sub) must be a string of 1 to ${MAX_SUBJECT_LENGTH} printable characters, without leading or trailing spaces`
  }
  if (RESERVED_SUBJECT.test(sub)) return "Subjects starting with 'system:' are reserved for the service's own actors"
  if (typeof iat !== 'number' || !Number.isFinite(iat)) return 'The token must say when it was issued (iat, in seconds)'
  if (iat > nowMs / 1000 + MAX_CLOCK_SKEW_SECONDS) return "The token's iat is in the future: check the issuer's clock"
  // exp is a number here: fast-jwt refuses a token without one, or with one that is not a number.
  if ((exp as number) - iat > maxLifetimeSeconds) {
    return `The token's lifetime (exp - iat) is longer than the ${maxLifetimeSeconds} seconds this service accepts: issue short-lived tokens`
  }
  return undefined
}

interface PublishedKey {
  kid: string
  algorithm: 'RS256' | 'ES256'
  pem: string
}

/**
 * The key set published at a JWKS endpoint, fetched whole and kept whole, so that every key in it is answered
 * from memory, a withdrawn key stops working at the next fetch, and a token naming an unknown kid costs at most
 * one fetch per cooldown however many such tokens arrive (get-jwks fetched for every unknown kid and kept only
 * the key it was asked for).
 *
 *   fetch ─── cooldown (30 s): unknown kid → 401 from memory ─── unknown kid → fetch again ─── …
 *   fetch ────────────────────── ttl (10 min): next token → fetch again ──────────────────────── …
 *
 * A failed fetch keeps the last good set (an identity provider's outage does not lock callers out whose keys we
 * have) and counts as a fetch for the cooldown, so that a failing endpoint is not hammered either.
 */
class JwksKeys {
  private keys: PublishedKey[] = []
  private loadedAt = Number.NEGATIVE_INFINITY
  private attemptedAt = Number.NEGATIVE_INFINITY
  private loading: Promise<void> | undefined
  private readonly url: URL
  private readonly now: () => number
  private readonly log: FastifyBaseLogger

  // The key location comes from configuration only, never from the token (its iss or jku), so a forged
  // token cannot point us at its author's keys.
  constructor(url: URL, now: () => number, log: FastifyBaseLogger) {
    this.url = url
    this.now = now
    this.log = log
  }

  async publicKey(kid: string, algorithm: 'RS256' | 'ES256'): Promise<string> {
    // Requests that arrive while the set is being fetched wait for it rather than being refused for the cooldown.
    if (this.loading) await this.loading
    const coolingDown = () => this.now() - this.attemptedAt < JWKS_REFETCH_COOLDOWN_MS
    if (this.now() - this.loadedAt >= JWKS_TTL_MS && !coolingDown()) await this.load()
    let key = this.find(kid, algorithm)
    if (!key && !coolingDown()) {
      await this.load()
      key = this.find(kid, algorithm)
    }
    if (!key)
      throw new TokenRefused(`The token's key (kid and ${algorithm}) is not one the identity provider publishes`)
    return key.pem
  }

  private find(kid: string, algorithm: 'RS256' | 'ES256'): PublishedKey | undefined {
    return this.keys.find((key) => key.kid === kid && key.algorithm === algorithm)
  }

  private load(): Promise<void> {
    this.loading ??= this.fetchKeys().finally(() => (this.loading = undefined))
    return this.loading
  }

  private async fetchKeys(): Promise<void> {
    this.attemptedAt = this.now()
    try {
      // No redirects: the configured URL is the only place keys come from. Node's fetch has no timeout of its own.
      const response = await fetch(this.url, {
        redirect: 'error',
        signal: AbortSignal.timeout(JWKS_FETCH_TIMEOUT_MS),
        headers: { accept: 'application/json' },
      })
      if (!response.ok) throw new Error(`the JWKS endpoint answered ${response.status}`)
      const body = (await response.json()) as { keys?: unknown }
      if (!Array.isArray(body.keys)) throw new Error('the JWKS document has no keys array')
      this.keys = body.keys.flatMap((jwk: unknown) => publishedKey(jwk) ?? [])
      this.loadedAt = this.now()
    } catch (error) {
      this.log.warn({ err: error, jwksUrl: this.url.href }, 'JWKS fetch failed; keeping the last key set')
    }
  }
}

/** A signing key we can use from one JWKS entry; anything else in the set (encryption keys, other curves) is skipped. */
function publishedKey(jwk: unknown): PublishedKey | undefined {
  if (typeof jwk !== 'object' || jwk === null) return undefined
  const { kid, use, alg } = jwk as { kid?: unknown; use?: unknown; alg?: unknown }
  if (typeof kid !== 'string' || (use !== undefined && use !== 'sig')) return undefined
  let key: KeyObject
  try {
    key = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' })
  } catch {
    return undefined
  }
  const algorithm =
    key.asymmetricKeyType === 'rsa'
      ? 'RS256'
      : key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1'
        ? 'ES256'
        : undefined
  if (!algorithm || (alg !== undefined && alg !== algorithm)) return undefined
  return { kid, algorithm, pem: key.export({ type: 'spki', format: 'pem' }).toString() }
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
      const detail = error instanceof TokenRefused ? error.message : describeRefusal(error)
      throw new HttpProblem(401, 'UNAUTHORIZED', detail, { 'www-authenticate': 'Bearer error="invalid_token"' })
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
