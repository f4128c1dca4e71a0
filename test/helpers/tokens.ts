import { createSigner } from 'fast-jwt'
import { ALL_SCOPES } from '../../src/http/auth.ts'

export const TEST_SECRET = 'test-secret-that-is-long-enough-for-hs256!'
export const TEST_ISSUER = 'https://servicenow.example.com'
export const TEST_AUDIENCE = 'jit-access'

export interface TokenOptions {
  sub?: string | undefined
  scope?: string | undefined
  claims?: Record<string, unknown>
  key?: string
  algorithm?: 'HS256' | 'RS256' | 'ES256' | 'none'
  issuer?: string | undefined
  audience?: string | undefined
  /** Lifetime from iat (default 10 minutes, well within the service's default maximum of an hour). */
  expiresInMs?: number | undefined
  /** Issued-at, in seconds since the epoch (default now); undefined for a token without iat. */
  iat?: number | undefined
  /** Key id for the header, as an identity provider that publishes a JWKS sets it. */
  kid?: string
}

/** Mints a token the way an identity provider would; every field can be bent to test a refusal. */
export function mintToken(options: TokenOptions = {}): string {
  const algorithm = options.algorithm ?? 'HS256'
  const sign = createSigner({
    key: algorithm === 'none' ? undefined : (options.key ?? TEST_SECRET),
    algorithm,
    ...(options.kid ? { kid: options.kid } : {}),
    ...('iat' in options && options.iat === undefined ? { noTimestamp: true } : {}),
    ...('expiresInMs' in options
      ? options.expiresInMs === undefined
        ? {}
        : { expiresIn: options.expiresInMs }
      : { expiresIn: 600_000 }),
    ...('issuer' in options ? (options.issuer === undefined ? {} : { iss: options.issuer }) : { iss: TEST_ISSUER }),
    ...('audience' in options
      ? options.audience === undefined
        ? {}
        : { aud: options.audience }
      : { aud: TEST_AUDIENCE }),
  })
  const payload: Record<string, unknown> = { ...options.claims }
  // fast-jwt takes iat from the payload and counts expiresIn from it.
  if (options.iat !== undefined) payload.iat = options.iat
  if (!('sub' in options) || options.sub !== undefined) payload.sub = options.sub ?? 'servicenow-workflow'
  if (!('scope' in options) || options.scope !== undefined) payload.scope = options.scope ?? ALL_SCOPES.join(' ')
  return sign(payload)
}

export const bearer = (token: string = mintToken()) => ({ authorization: `Bearer ${token}` })
