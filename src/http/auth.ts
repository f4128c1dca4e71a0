import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto'
import type { FastifyBaseLogger, FastifyInstance, FastifyRequest, onRequestAsyncHookHandler } from 'fastify'
import { errors as joseErrors, jwtVerify, type JWTHeaderParameters, type JWTPayload, type JWTVerifyOptions } from 'jose'
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
   * exp and iat are always checked against the system clock, the one jose checks exp and nbf with.
   */
  now?: (() => number) | undefined
}

export interface Caller {
  sub: string
  scopes: string[]
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The caller a request's bearer token names, once its signature and claims are checked (registerAuth). */
    verifyCaller(request: FastifyRequest): Promise<Caller>
  }
  interface FastifyRequest {
    /** Set by requireScope: the caller the request's token names. */
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

type Algorithm = 'HS256' | 'RS256' | 'ES256'
type VerificationKey = Uint8Array | KeyObject

/**
 * Verifies bearer tokens with exactly one algorithm family: HS256 with a shared secret, or the asymmetric
 * algorithm matching the configured public key. Pinning the algorithm refuses `alg: none` and the classic
 * confusion attack (an HS256 token signed with the public key as its secret).
 *
 * The signature and the registered claims (exp, nbf, iss, aud) are checked by jose, which works on node:crypto's
 * keys (fast-jwt, before it, brought asn1.js and bn.js into the Lambda bundle to read PEM keys).
 */
export async function registerAuth(app: FastifyInstance, settings: JwtSettings): Promise<void> {
  const maxLifetimeSeconds = settings.maxLifetimeSeconds ?? DEFAULT_MAX_TOKEN_LIFETIME_SECONDS
  const options = (algorithms: Algorithm[]): JWTVerifyOptions => ({
    algorithms,
    // jose checks iss/aud only when asked for; requiring them closes tokens that simply omit them.
    requiredClaims: ['exp', ...(settings.issuer ? ['iss'] : []), ...(settings.audience ? ['aud'] : [])],
    ...(settings.issuer ? { issuer: settings.issuer } : {}),
    ...(settings.audience ? { audience: settings.audience } : {}),
  })
  let verify: (token: string) => Promise<JWTPayload>
  if (settings.jwksUrl) {
    const keys = new JwksKeys(new URL(settings.jwksUrl), settings.now ?? Date.now, app.log)
    const jwks = options(['RS256', 'ES256'])
    const keyOf = async (header: JWTHeaderParameters) => {
      const algorithm = header.alg === 'RS256' || header.alg === 'ES256' ? (header.alg as 'RS256' | 'ES256') : undefined
      if (!algorithm) throw new TokenRefused('The token must be signed with RS256 or ES256')
      return keys.publicKey(typeof header.kid === 'string' ? header.kid : '', algorithm)
    }
    verify = async (token) => (await jwtVerify(token, keyOf, jwks)).payload
  } else {
    const key: VerificationKey | undefined = settings.publicKey ? createPublicKey(settings.publicKey) : settings.secret ? new TextEncoder().encode(settings.secret) : undefined
    if (!key) throw new Error('JWT verification needs a secret, a public key or a JWKS URL')
    const pinned = options(settings.publicKey ? [asymmetricAlgorithm(settings.publicKey)] : ['HS256'])
    verify = async (token) => (await jwtVerify(token, key, pinned)).payload
  }
  app.decorateRequest('user', null as unknown as Caller)
  app.decorate('verifyCaller', async (request: FastifyRequest): Promise<Caller> => {
    const payload = await verify(bearerToken(request.headers.authorization))
    // sub and iat are checked here rather than as required claims, so that the refusal can say what was wrong;
    // jose's maxTokenAge would not do for the lifetime: it bounds now - iat and lets an iat ten years ahead through.
    const refusal = claimsRefusal(payload, maxLifetimeSeconds, Date.now())
    if (refusal) throw new TokenRefused(refusal)
    return { sub: payload.sub as string, scopes: scopesOf(payload) }
  })
}

/** The token of an `Authorization: Bearer <JWT>` header. */
function bearerToken(header: string | undefined): string {
  if (header === undefined) throw new TokenRefused('Send Authorization: Bearer <JWT>')
  const [scheme, token, ...rest] = header.split(' ')
  if (!scheme || !/^Bearer$/i.test(scheme) || token === undefined || rest.length > 0) throw new TokenRefused('The Authorization header must be: Bearer <JWT>')
  return token
}

// Printable: no Unicode "Other" (controls, format characters such as bidi overrides, surrogates, private use,
// unassigned) and no line or paragraph separators, which would break or forge lines in logs and CSV exports.
const PRINTABLE_SUBJECT = new RegExp(`^[^\\p{C}\\p{Zl}\\p{Zp}]{1,${MAX_SUBJECT_LENGTH}}$`, 'u')
// Case-insensitive with Unicode case folding, which also catches look-alikes such as 'ſystem:' (long s).
const RESERVED_SUBJECT = /^system:/iu

/** Why a verified token's subject or times are not acceptable, or undefined when they are. */
function claimsRefusal(payload: Record<string, unknown>, maxLifetimeSeconds: number, nowMs: number): string | undefined {
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
  // exp is a number here: jose refuses a token without one (a required claim), or with one that is not a number.
  if ((exp as number) - iat > maxLifetimeSeconds) {
    return `The token's lifetime (exp - iat) is longer than the ${maxLifetimeSeconds} seconds this service accepts: issue short-lived tokens`
  }
  return undefined
}

interface PublishedKey {
  kid: string
  algorithm: 'RS256' | 'ES256'
  key: KeyObject
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

  async publicKey(kid: string, algorithm: 'RS256' | 'ES256'): Promise<KeyObject> {
    // Requests that arrive while the set is being fetched wait for it rather than being refused for the cooldown.
    if (this.loading) await this.loading
    const coolingDown = () => this.now() - this.attemptedAt < JWKS_REFETCH_COOLDOWN_MS
    if (this.now() - this.loadedAt >= JWKS_TTL_MS && !coolingDown()) await this.load()
    let key = this.find(kid, algorithm)
    if (!key && !coolingDown()) {
      await this.load()
      key = this.find(kid, algorithm)
    }
    if (!key) throw new TokenRefused(`The token's key (kid and ${algorithm}) is not one the identity provider publishes`)
    return key.key
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
      const response = await fetch(this.url, { redirect: 'error', signal: AbortSignal.timeout(JWKS_FETCH_TIMEOUT_MS), headers: { accept: 'application/json' } })
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
  const algorithm = key.asymmetricKeyType === 'rsa' ? 'RS256' : key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1' ? 'ES256' : undefined
  if (!algorithm || (alg !== undefined && alg !== algorithm)) return undefined
  return { kid, algorithm, key }
}

function asymmetricAlgorithm(pem: string): 'RS256' | 'ES256' {
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
      request.user = await request.server.verifyCaller(request)
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

/** What jose objected to, in words a caller can act on; anything else (format, algorithm, signature) is "invalid". */
function describeRefusal(error: unknown): string {
  if (error instanceof joseErrors.JWTExpired) return 'The token has expired'
  if (error instanceof joseErrors.JWTClaimValidationFailed && (error.claim === 'iss' || error.claim === 'aud')) return 'The token was not issued for this service'
  return 'The token is invalid'
}
