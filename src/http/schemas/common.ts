import type { Static, TSchema } from 'typebox'
import * as Type from '../../core/schema-builders.ts'

/**
 * Schema helpers that stay inside OpenAPI 3.0 (what ServiceNow's importer reads): nullable fields use
 * `nullable: true` and string enums use `enum`, never `anyOf`/`oneOf`/`const`.
 */
export const Nullable = <T extends TSchema>(schema: T) => {
  // OpenAPI 3.0.3: nullable does not extend an enum, so a nullable enum lists null itself.
  const values = (schema as { enum?: unknown[] }).enum
  return Type.Unsafe<Static<T> | null>({ ...schema, nullable: true, ...(values ? { enum: [...values, null] } : {}) })
}

export const StringEnum = <const T extends readonly string[]>(values: T, options: Record<string, unknown> = {}) =>
  Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...options })

/**
 * Text without control characters: C0 (tab and line breaks included), DEL, C1, and the line and paragraph
 * separators U+2028/U+2029. Free text is echoed into CSV exports, terminals and log viewers, where ESC starts a
 * terminal escape sequence and a line break forges a row.
 */
export const PRINTABLE_TEXT_PATTERN = '^[^\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029]*$'

/**
 * Validation reports every problem (Ajv allErrors), so a 16 KiB body of one-letter unknown fields would otherwise
 * be answered with thousands of entries: the answer stays small whatever the body.
 */
export const MAX_REPORTED_ERRORS = 20

export const PrintableText = (options: Parameters<typeof Type.String>[0] = {}) =>
  Type.String({ ...options, pattern: PRINTABLE_TEXT_PATTERN })

export const Timestamp = Type.String({ format: 'date-time', description: 'ISO 8601 timestamp (UTC)' })

export const AccountId = Type.String({
  pattern: '^[0-9]{12}$',
  description: 'AWS account id (12 digits)',
  example: '111111111111',
})

export const Limit = (maximum: number) =>
  Type.Integer({ minimum: 1, maximum, default: 50, description: `Page size (1–${maximum})` })

export const Cursor = Type.String({
  minLength: 1,
  maxLength: 2048,
  description: 'Opaque cursor from the previous page’s nextCursor',
})

export const Problem = Type.Object(
  {
    type: Type.String({ description: 'URI identifying the problem type' }),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    instance: Type.String({ description: 'The request path' }),
    code: Type.String({ description: 'Stable machine-readable error code', example: 'VALIDATION_FAILED' }),
    requestId: Type.String({ description: 'Correlates with service logs and the audit log' }),
    errors: Type.Optional(
      Type.Array(
        Type.Object({
          location: Type.String({ description: 'body, querystring, params or headers' }),
          path: Type.String({
            description: 'JSON pointer to the field; an unknown or missing field is pointed at by its own name',
          }),
          message: Type.String({ example: "unknown field 'username'" }),
        }),
        {
          description: `Every invalid, missing or unknown field (VALIDATION_FAILED), at most ${MAX_REPORTED_ERRORS} of them`,
        },
      ),
    ),
    failedCondition: Type.Optional(
      Type.String({
        description: 'For POLICY_DENIED: principal, account, permissionSet, duration, leadTime or ticket',
      }),
    ),
    grantId: Type.Optional(Type.String({ description: 'The grant the problem concerns, when one was recorded' })),
    grantStatus: Type.Optional(Type.String({ description: 'For GRANT_ALREADY_ENDED: the status the grant is in' })),
  },
  {
    $id: 'Problem',
    title: 'Problem',
    description: 'RFC 9457 problem details (application/problem+json)',
    example: {
      type: 'urn:jit-access:problem:policy-denied',
      title: 'Forbidden',
      status: 403,
      detail:
        "Rule 'oncall-incident-access' allows at most 240 minutes for AdministratorAccess on 111111111111; 600 were requested",
      instance: '/grants',
      code: 'POLICY_DENIED',
      requestId: '7f1c2e9a-4b1d-4f0e-9d7c-2a3b4c5d6e7f',
      failedCondition: 'duration',
    },
  },
)
export type ProblemBody = Static<typeof Problem>

const problemResponse = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: Type.Ref('Problem') } },
})

export const errorResponses = (...statuses: number[]) => {
  const descriptions: Record<number, string> = {
    400: 'Invalid input (VALIDATION_FAILED, listing every invalid, missing or unknown field in errors; MALFORMED_BODY, BODY_TOO_LARGE, MALFORMED_URL, INVALID_CURSOR)',
    401: 'Missing, malformed, forged or expired token, wrong issuer/audience, a lifetime over the maximum or an iat in the future, or a subject that is not 1-256 printable characters or is reserved (UNAUTHORIZED)',
    403: 'Token lacks the scope (INSUFFICIENT_SCOPE), or the eligibility policy denies the request (POLICY_DENIED)',
    404: 'Not found (GRANT_NOT_FOUND)',
    409: 'Idempotency-Key reused with a different request (IDEMPOTENCY_KEY_REUSED), or the first request with it is still running (REQUEST_IN_PROGRESS; retry after Retry-After)',
    415: 'Body is not application/json (UNSUPPORTED_MEDIA_TYPE)',
    422: 'The user, permission set or group does not exist (USER_NOT_FOUND, PERMISSION_SET_NOT_FOUND, GROUP_NOT_FOUND)',
    502: 'Identity Center refused the assignment (PROVISIONING_FAILED); the grant is recorded as failed',
    503: 'An AWS dependency is unavailable (UPSTREAM_UNAVAILABLE); retry after Retry-After seconds. Recorded intent is finished by the sweep',
  }
  return Object.fromEntries(statuses.map((status) => [status, problemResponse(descriptions[status] ?? 'Error')]))
}

const idempotencyKey = {
  minLength: 1,
  maxLength: 255,
  description:
    'Makes retries safe: scoped to the token subject and remembered for at least 24 hours (ServiceNow: grant-, move- or end- and the change’s sys_id; see docs/servicenow.md)',
}

/**
 * The Idempotency-Key header of POST /grants, with an example key: the docs page sends it, and sending the example
 * again replays the first answer.
 */
export const GrantIdempotencyHeaders = Type.Object({
  'idempotency-key': Type.Optional(Type.String({ ...idempotencyKey, example: '4f8c2a1e9b7d4e3fa1c2b3d4e5f60718' })),
})

/**
 * The same header for changes to a grant (DELETE, PATCH /grants/{id}), without an example: a key belongs to one
 * request, so one example key sent to change a second grant (or after POST /grants used it) would answer 409
 * IDEMPOTENCY_KEY_REUSED.
 */
export const ChangeIdempotencyHeaders = Type.Object({
  'idempotency-key': Type.Optional(Type.String(idempotencyKey)),
})
