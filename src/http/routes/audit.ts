import type { Readable } from 'node:stream'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { AuditLog } from '../../core/ports.ts'
import * as Type from '../../core/schema-builders.ts'
import { requireScope, SCOPES } from '../auth.ts'
import { HttpProblem } from '../errors.ts'
import { negotiateFormat, toCsv, toNdjson } from '../export.ts'
import { AuditPage, AuditQuery, VerifyQuery } from '../schemas/audit.ts'
import { errorResponses } from '../schemas/common.ts'

const JSON_PAGE_MAX = 100

/** Fastify streams a Readable body; the response schema types these exports as text, which is what the client receives. */
const asText = (body: Readable) => body as unknown as string

export const auditRoutes: FastifyPluginAsyncTypebox<{ auditLog: AuditLog }> = async (app, { auditLog }) => {
  app.get(
    '/audit',
    {
      onRequest: requireScope(SCOPES.auditRead),
      schema: {
        operationId: 'listAuditEvents',
        tags: ['audit'],
        summary: 'Audit events, newest first',
        description:
          'Every decision: requested, denied, activated, failed, revoke requested, revoked, expired, drift. Filters combine (AND); from/to bound the time inclusively. ' +
          'With Accept: text/csv or application/x-ndjson the matching events are streamed as an export (newest first; up to limit, or all).',
        security: [{ bearerAuth: [SCOPES.auditRead] }],
        querystring: AuditQuery,
        response: {
          200: {
            description: 'A page of events (JSON), or an export (CSV with a header row, or one JSON object per line)',
            content: {
              'application/json': { schema: AuditPage },
              'text/csv': { schema: Type.String() },
              'application/x-ndjson': { schema: Type.String() },
            },
          },
          ...errorResponses(400, 401, 403, 503),
        },
      },
    },
    async (request, reply) => {
      const { limit, cursor, ...filter } = request.query
      const format = negotiateFormat(request.headers.accept)
      if (format === 'json') {
        if (limit !== undefined && limit > JSON_PAGE_MAX) {
          throw new HttpProblem(
            400,
            'VALIDATION_FAILED',
            `limit may be at most ${JSON_PAGE_MAX} for JSON pages; use Accept: text/csv or application/x-ndjson to export more`,
          )
        }
        return reply.type('application/json').send(await auditLog.query(filter, { limit: limit ?? 50, cursor }))
      }
      if (cursor)
        throw new HttpProblem(
          400,
          'VALIDATION_FAILED',
          'Exports are not paged: narrow them with from/to instead of a cursor',
        )
      const events = auditLog.stream(filter, limit)
      // Read the first event before answering, so that a failing query is still a problem response.
      const iterator = events[Symbol.asyncIterator]()
      const first = await iterator.next()
      const rest = (async function* () {
        if (!first.done) yield first.value
        yield* { [Symbol.asyncIterator]: () => iterator }
      })()
      const date = new Date().toISOString().slice(0, 10)
      return format === 'csv'
        ? reply
            .type('text/csv; charset=utf-8')
            .header('content-disposition', `attachment; filename="jit-access-audit-${date}.csv"`)
            .send(asText(toCsv(rest)))
        : reply.type('application/x-ndjson').send(asText(toNdjson(rest)))
    },
  )

  app.get(
    '/audit/verify',
    {
      onRequest: requireScope(SCOPES.auditRead),
      schema: {
        operationId: 'verifyAuditChain',
        tags: ['audit'],
        summary: 'Verify the tamper-evident chain',
        description:
          'Recomputes every event’s hash in chain order. ok: false names the first event that was changed, or that follows deleted events; ' +
          'missing events at the end are detected against the chain head. With an anchor bucket (JIT_AUDIT_ANCHOR_BUCKET), every sweep ' +
          'in which the chain moved records its head in S3 under Object Lock, and the log is also checked against those anchors: ' +
          'a log cut short before an anchor, or rewritten at or before one, fails and names the anchor, even when the chain head was ' +
          'moved back to match. anchored: false means only the chain vouched for itself.',
        security: [{ bearerAuth: [SCOPES.auditRead] }],
        querystring: VerifyQuery,
        response: { 200: Type.Ref('AuditVerification'), ...errorResponses(400, 401, 403, 503) },
      },
    },
    async (request) => auditLog.verify(request.query),
  )
}
