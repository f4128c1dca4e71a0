import { randomUUID } from 'node:crypto'
import type { Socket } from 'node:net'
import type {
  FastifyError,
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  FastifySchemaValidationError,
  HTTPMethods,
} from 'fastify'
import { DomainError, type ErrorCode, UpstreamUnavailableError } from '../core/errors.ts'
import { MAX_REPORTED_ERRORS, PRINTABLE_TEXT_PATTERN, type ProblemBody } from './schemas/common.ts'

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

/** Every code the core raises, with its status: a code added to ErrorCode and not here fails to compile. */
const STATUS_BY_CODE: Record<ErrorCode, number> = {
  VALIDATION_FAILED: 400,
  INVALID_CURSOR: 400,
  POLICY_DENIED: 403,
  TICKET_NOT_APPROVED: 403,
  GRANT_NOT_FOUND: 404,
  GRANT_ALREADY_ENDED: 409,
  CONCURRENT_CHANGE: 409,
  USER_NOT_FOUND: 422,
  PERMISSION_SET_NOT_FOUND: 422,
  GROUP_NOT_FOUND: 422,
  PROVISIONING_FAILED: 502,
  UPSTREAM_UNAVAILABLE: 503,
  LEASE_LOST: 503,
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  408: 'Request Timeout',
  409: 'Conflict',
  413: 'Content Too Large',
  414: 'URI Too Long',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
}

/** Field names are the caller's text: a long one is shortened where it is echoed. */
const MAX_ECHOED_NAME = 64

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
    const status = STATUS_BY_CODE[error.code]
    const retryAfter = error instanceof UpstreamUnavailableError ? (error.retryAfterSeconds ?? 5) : 5
    const headers: Record<string, string> = status === 503 ? { 'retry-after': String(retryAfter) } : {}
    const detail =
      error instanceof UpstreamUnavailableError
        ? `${error.service} is unavailable; retry later.${error.extensions.grantId ? ' The grant is recorded and the next sweep will finish it.' : ''}`
        : error.message
    return {
      status,
      code: status === 503 ? 'UPSTREAM_UNAVAILABLE' : error.code,
      detail,
      headers,
      extensions: error.extensions as Partial<ProblemBody>,
    }
  }
  const fastifyError = error as FastifyError & { validationContext?: string }
  if (fastifyError.validation) {
    const location = fastifyError.validationContext ?? 'body'
    const errors = fastifyError.validation
      .slice(0, MAX_REPORTED_ERRORS)
      .map((issue) => ({ location, ...describeIssue(issue) }))
    const more = fastifyError.validation.length - errors.length
    const detail =
      errors.map((e) => `${e.location}${e.path === '/' ? '' : e.path} ${e.message}`).join('; ') +
      (more > 0 ? `; and ${more} more` : '')
    return { status: 400, code: 'VALIDATION_FAILED', detail, extensions: { errors } }
  }
  switch (fastifyError.code) {
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return { status: 414, code: 'URI_TOO_LONG', detail: 'A path segment is longer than this service accepts' }
    case 'FST_ERR_BAD_URL':
      return {
        status: 400,
        code: 'MALFORMED_URL',
        detail: 'The request path is not a valid URL (bad percent-encoding)',
      }
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
  return {
    status: 500,
    code: 'INTERNAL_ERROR',
    detail: 'An unexpected error occurred; it has been logged with this request id',
  }
}

/**
 * One Ajv issue, pointed at the field it is about: a missing or unknown property is reported at its own path
 * (Ajv reports both at the parent object), so a typo'd `username` reads as an unknown `username` beside a
 * missing `userName`.
 */
function describeIssue(issue: FastifySchemaValidationError): { path: string; message: string } {
  const params = issue.params as { additionalProperty?: unknown; missingProperty?: unknown; pattern?: unknown }
  const child = (name: unknown) => `${issue.instancePath}/${pointerToken(echoable(String(name)))}`
  switch (issue.keyword) {
    case 'additionalProperties':
      return {
        path: child(params.additionalProperty),
        message: `unknown field '${echoable(String(params.additionalProperty))}'`,
      }
    case 'required':
      return { path: child(params.missingProperty), message: 'is required' }
    case 'pattern':
      if (params.pattern === PRINTABLE_TEXT_PATTERN)
        return { path: issue.instancePath || '/', message: 'must not contain control characters' }
  }
  return { path: issue.instancePath || '/', message: issue.message ?? 'is invalid' }
}

const echoable = (name: string) => (name.length > MAX_ECHOED_NAME ? `${name.slice(0, MAX_ECHOED_NAME)}…` : name)
const pointerToken = (name: string) => name.replaceAll('~', '~0').replaceAll('/', '~1')

const CORRELATION_ID = /^[\w.:=+/-]{1,128}$/

/**
 * A caller's x-request-id is its own label for the request: kept as the correlation id (logs, audit events,
 * the x-correlation-id answer header), never as our request id, which a caller must not be able to choose
 * (it could repeat, or impersonate, another request's id in the logs and the audit log). Printable, short and
 * without separators, so it is safe as it is in a header, a log line and a CSV cell; anything else is ignored.
 */
export function correlationIdOf(headers: Record<string, string | string[] | undefined>): string | null {
  const incoming = headers['x-request-id']
  return typeof incoming === 'string' && CORRELATION_ID.test(incoming) ? incoming : null
}

/**
 * The ids every answer carries, problems included. Read from the headers rather than request.correlationId:
 * the requests Fastify makes for the router's own refusals (frameworkErrors) have none of our decorations.
 */
export function echoRequestIds(request: FastifyRequest, reply: FastifyReply): void {
  reply.header('x-request-id', String(request.id))
  const correlationId = correlationIdOf(request.headers)
  if (correlationId !== null) reply.header('x-correlation-id', correlationId)
}

export function sendProblem(request: FastifyRequest, reply: FastifyReply, mapped: Mapped) {
  echoRequestIds(request, reply)
  const body = problemBody(mapped, request.url.split('?')[0] ?? request.url, String(request.id))
  return reply
    .code(mapped.status)
    .headers(mapped.headers ?? {})
    .type('application/problem+json')
    .send(body)
}

/** The one problem shape, for answers sent through Fastify and for those written to the socket by hand. */
function problemBody(mapped: Mapped, instance: string, requestId: string): ProblemBody {
  return {
    type: `urn:jit-access:problem:${mapped.code.toLowerCase().replaceAll('_', '-')}`,
    title: TITLES[mapped.status] ?? 'Error',
    status: mapped.status,
    detail: mapped.detail,
    instance,
    code: mapped.code,
    requestId,
    ...mapped.extensions,
  }
}

/** Logs and answers any error raised while handling a request, including the router's own (frameworkErrors). */
export function handleError(error: unknown, request: FastifyRequest, reply: FastifyReply) {
  const mapped = toProblem(error)
  if (mapped.status >= 500) request.log.error({ err: error }, 'request failed')
  else request.log.warn({ code: mapped.code, detail: mapped.detail }, 'request refused')
  return sendProblem(request, reply, mapped)
}

export function registerErrorHandling(app: FastifyInstance): void {
  // The methods some route answers, so that a 404 can tell "no such resource" from "not with this method".
  const routedMethods = new Set<string>()
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) routedMethods.add(method)
  })
  app.setErrorHandler(handleError)
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? request.url
    // A handler that found nothing (a missing file under a static route) also lands here: its own method is routed, so 404.
    const routed = (method: string) => isRoute(app.findRoute({ method: method as HTTPMethods, url: path }))
    const allow = routed(request.method)
      ? []
      : [...routedMethods].filter((method) => method !== request.method && routed(method)).sort()
    if (allow.length > 0) {
      return sendProblem(request, reply, {
        status: 405,
        code: 'METHOD_NOT_ALLOWED',
        detail: `${request.method} is not allowed on ${path}; it answers ${allow.join(', ')}`,
        headers: { allow: allow.join(', ') },
      })
    }
    return sendProblem(request, reply, {
      status: 404,
      code: 'ROUTE_NOT_FOUND',
      detail: `No route ${request.method} ${path}`,
    })
  })
}

/**
 * find-my-way answers a path it cannot route (bad percent-encoding, a parameter over maxParamLength) with a
 * stand-in for its error handler rather than null; only a real match carries the parsed query string.
 */
const isRoute = (found: { searchParams?: unknown } | null | undefined) => found?.searchParams !== undefined

/**
 * Errors that Node's HTTP parser finds before there is a request (headers over the limit, an unknown method,
 * a timeout, malformed HTTP): Fastify's default answers its own JSON, this answers a problem like every other
 * error. There is no request object, so the request id is made here and logged with the refusal.
 */
export function clientErrorHandler(
  this: FastifyInstance,
  error: Error & { code?: string; rawPacket?: unknown },
  socket: Socket,
): void {
  // A reset connection has no one to answer (Node documents this case for 'clientError').
  if (error.code === 'ECONNRESET' || socket.destroyed) return
  const mapped = clientProblem(error.code)
  const { status, code } = mapped
  const requestId = randomUUID()
  this.log.warn({ reqId: requestId, code, parserCode: error.code }, 'request refused by the HTTP parser')
  if (socket.writable) {
    const body = JSON.stringify(problemBody(mapped, requestTargetOf(error.rawPacket) ?? '', requestId))
    socket.write(
      `HTTP/1.1 ${status} ${TITLES[status] ?? 'Error'}\r\nContent-Type: application/problem+json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nx-request-id: ${requestId}\r\nConnection: close\r\n\r\n${body}`,
    )
  }
  socket.destroy(error)
}

function clientProblem(parserCode: string | undefined): Mapped {
  switch (parserCode) {
    case 'HPE_HEADER_OVERFLOW':
      return {
        status: 431,
        code: 'HEADERS_TOO_LARGE',
        detail: 'The request headers are larger than this service accepts',
      }
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return { status: 408, code: 'REQUEST_TIMEOUT', detail: 'The request was not received in time' }
    case 'HPE_INVALID_METHOD':
      return { status: 501, code: 'METHOD_NOT_IMPLEMENTED', detail: 'The request method is not one this service knows' }
    default:
      return { status: 400, code: 'MALFORMED_REQUEST', detail: 'The request is not valid HTTP' }
  }
}

/** The path of the request line, when the packet that failed begins with one; only printable ASCII is echoed. */
function requestTargetOf(rawPacket: unknown): string | undefined {
  if (!Buffer.isBuffer(rawPacket)) return undefined
  return /^[A-Z-]{1,32} (\/[!-~]{0,2047}?)(?:\?[!-~]*)? HTTP\/1\.[01]\r\n/.exec(
    rawPacket.subarray(0, 4096).toString('latin1'),
  )?.[1]
}
