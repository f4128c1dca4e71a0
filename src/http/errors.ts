import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { DomainError, UpstreamUnavailableError } from '../core/errors.ts'
import type { ProblemBody } from './schemas/common.ts'

/** A refusal raised at the edge (authentication, scopes). */
export class HttpProblem extends Error {
  readonly status: number
  readonly code: string
  readonly headers: Record<string, string>

  constructor(status: number, code: string, message: string, headers: Record<string, string> = {}) {
    super(message)
    this.status = status
    this.code = code
    this.headers = headers
    this.name = 'HttpProblem'
  }
}

const STATUS_BY_CODE: Record<string, number> = {
  VALIDATION_FAILED: 400,
  INVALID_CURSOR: 400,
  POLICY_DENIED: 403,
  GRANT_NOT_FOUND: 404,
  GRANT_ALREADY_ENDED: 409,
  USER_NOT_FOUND: 422,
  PERMISSION_SET_NOT_FOUND: 422,
  PROVISIONING_FAILED: 502,
  UPSTREAM_UNAVAILABLE: 503,
  LEASE_LOST: 503,
}

const TITLES: Record<number, string> = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed',
  406: 'Not Acceptable', 409: 'Conflict', 413: 'Content Too Large', 415: 'Unsupported Media Type',
  422: 'Unprocessable Content', 429: 'Too Many Requests', 500: 'Internal Server Error', 502: 'Bad Gateway',
  503: 'Service Unavailable',
}

interface Mapped {
  status: number
  code: string
  detail: string
  headers?: Record<string, string>
  extensions?: Partial<ProblemBody>
}

/** Every error, ours or Fastify's, becomes one problem shape; nothing internal reaches a client on a 5xx. */
export function toProblem(error: unknown): Mapped {
  if (error instanceof HttpProblem) {
    return { status: error.status, code: error.code, detail: error.message, headers: error.headers }
  }
  if (error instanceof DomainError) {
    const status = STATUS_BY_CODE[error.code] ?? 400
    const headers: Record<string, string> = status === 503 ? { 'retry-after': '5' } : {}
    const detail = error instanceof UpstreamUnavailableError
      ? `${error.service} is unavailable; retry later.${error.extensions.grantId ? ' The grant is recorded and the next sweep will finish it.' : ''}`
      : error.message
    return { status, code: status === 503 ? 'UPSTREAM_UNAVAILABLE' : error.code, detail, headers, extensions: error.extensions as Partial<ProblemBody> }
  }
  const fastifyError = error as FastifyError & { validationContext?: string }
  if (fastifyError.validation) {
    const errors = fastifyError.validation.map((issue) => ({
      location: fastifyError.validationContext ?? 'body',
      path: issue.instancePath || '/',
      message: issue.keyword === 'additionalProperties'
        ? `unknown field '${(issue.params as { additionalProperty?: string }).additionalProperty}'`
        : issue.message ?? 'is invalid',
    }))
    return { status: 400, code: 'VALIDATION_FAILED', detail: errors.map((e) => `${e.location}${e.path === '/' ? '' : e.path} ${e.message}`).join('; '), extensions: { errors } }
  }
  switch (fastifyError.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { status: 400, code: 'BODY_TOO_LARGE', detail: 'The request body is larger than this service accepts' }
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return { status: 400, code: 'MALFORMED_BODY', detail: 'The request body is not valid JSON' }
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { status: 415, code: 'UNSUPPORTED_MEDIA_TYPE', detail: 'Send the body as application/json' }
  }
  const status = fastifyError.statusCode
  if (status && status >= 400 && status < 500) return { status, code: 'BAD_REQUEST', detail: fastifyError.message }
  return { status: 500, code: 'INTERNAL_ERROR', detail: 'An unexpected error occurred; it has been logged with this request id' }
}


export function sendProblem(request: FastifyRequest, reply: FastifyReply, mapped: Mapped) {
  const body: ProblemBody = {
    type: `urn:jit-access:problem:${mapped.code.toLowerCase().replaceAll('_', '-')}`,
    title: TITLES[mapped.status] ?? 'Error',
    status: mapped.status,
    detail: mapped.detail,
    instance: request.url.split('?')[0] ?? request.url,
    code: mapped.code,
    requestId: String(request.id),
    ...mapped.extensions,
  }
  return reply.code(mapped.status).headers(mapped.headers ?? {}).type('application/problem+json').send(body)
}

export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error, request, reply) => {
    const mapped = toProblem(error)
    if (mapped.status >= 500) request.log.error({ err: error }, 'request failed')
    else request.log.warn({ code: mapped.code, detail: mapped.detail }, 'request refused')
    return sendProblem(request, reply, mapped)
  })
  app.setNotFoundHandler((request, reply) =>
    sendProblem(request, reply, { status: 404, code: 'ROUTE_NOT_FOUND', detail: `No route ${request.method} ${request.url.split('?')[0]}` }),
  )
}
