import { createHash, randomUUID } from 'node:crypto'
import type { FastifyReply, FastifyRequest, onSendAsyncHookHandler, preHandlerAsyncHookHandler } from 'fastify'
import { stringify } from 'safe-stable-stringify'
import type { Clock } from '../core/clock.ts'
import { deterministicId } from '../core/ids.ts'
import type { IdempotencyClaim, IdempotencyStore } from '../core/ports.ts'
import { HttpProblem } from './errors.ts'

/** Keys are remembered at least this long (DynamoDB TTL removes them some time after). */
export const IDEMPOTENCY_RETENTION_MS = 25 * 3600_000
/** A request still 'in progress' after this long is taken to have died; a retry may take over its key. */
export const IN_PROGRESS_TIMEOUT_MS = 60_000
const MAX_KEY_LENGTH = 255

export interface IdempotencyContext {
  recordKey: string
  /** The id a grant created under this key must have (stable across retries and take-overs). */
  derivedId: string
}

declare module 'fastify' {
  interface FastifyRequest {
    idempotency?: IdempotencyContext
  }
}

/**
 * `Idempotency-Key` support for one route: the same key with the same body replays the first answer; with
 * another body it is a 409; while the first request still runs, a 409 asking to retry. Keys are scoped to
 * the token subject. A 5xx answer is not stored: the key is released so the retry does the work, and
 * because the grant id is derived from the key, the retry resumes the grant the failed attempt recorded.
 */
export function idempotencyHooks(
  store: IdempotencyStore,
  clock: Clock,
): { preHandler: preHandlerAsyncHookHandler; onSend: onSendAsyncHookHandler } {
  const preHandler = async (request: FastifyRequest, reply: FastifyReply) => {
    const key = request.headers['idempotency-key']
    if (key === undefined) return
    if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH || !/^[\x21-\x7e]+$/.test(key)) {
      throw new HttpProblem(
        400,
        'VALIDATION_FAILED',
        `Idempotency-Key must be 1 to ${MAX_KEY_LENGTH} printable ASCII characters`,
      )
    }
    const subject = request.user.sub
    const recordKey = sha256(`${subject}\n${key}`)
    const fingerprint = sha256(`${request.method} ${request.url.split('?')[0]}\n${stringify(request.body ?? null)}`)
    const now = clock.now().getTime()

    const mine: IdempotencyClaim = { fingerprint, now, expiresAt: now + IDEMPOTENCY_RETENTION_MS, owner: randomUUID() }
    const claim = await store.claim(recordKey, mine)
    let firstClaimedAt = now
    if (!claim.claimed) {
      const { record } = claim
      if (record.fingerprint !== fingerprint) {
        throw new HttpProblem(
          409,
          'IDEMPOTENCY_KEY_REUSED',
          'This Idempotency-Key was already used with a different request',
        )
      }
      if (record.state === 'completed' && record.response) {
        const { statusCode, body, contentType, location } = record.response
        if (location) reply.header('location', location)
        return reply.code(statusCode).header('idempotent-replayed', 'true').type(contentType).send(body)
      }
      const stale = record.state === 'in_progress' && now - record.claimedAt > IN_PROGRESS_TIMEOUT_MS
      if ((record.state !== 'released' && !stale) || !(await store.takeOver(recordKey, record, mine))) {
        throw new HttpProblem(
          409,
          'REQUEST_IN_PROGRESS',
          'A request with this Idempotency-Key is still being processed; retry shortly',
          { 'retry-after': '1' },
        )
      }
      firstClaimedAt = record.firstClaimedAt
    }
    request.idempotency = { recordKey, derivedId: deterministicId(firstClaimedAt, recordKey) }
  }

  const onSend = async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    const context = request.idempotency
    if (!context || reply.getHeader('idempotent-replayed')) return payload
    request.idempotency = undefined
    if (reply.statusCode >= 500) {
      await store
        .release(context.recordKey)
        .catch((error: unknown) => request.log.error({ err: error }, 'could not release the idempotency key'))
      return payload
    }
    const location = reply.getHeader('location')
    try {
      await store.complete(context.recordKey, {
        statusCode: reply.statusCode,
        body: typeof payload === 'string' ? payload : String(payload ?? ''),
        contentType: String(reply.getHeader('content-type') ?? 'application/json'),
        location: typeof location === 'string' ? location : undefined,
      })
    } catch (error) {
      // The answer still goes out. The key stays 'in progress' until it is taken over, and a retry then
      // resumes the same grant (its id is derived from the key), so nothing is duplicated.
      request.log.error({ err: error }, 'could not store the idempotent answer')
    }
    return payload
  }

  return { preHandler, onSend }
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('base64url')
}
