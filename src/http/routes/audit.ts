import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { AuditLog } from '../../core/ports.ts'
import { requireScope, SCOPES } from '../auth.ts'
import { AuditPage, AuditQuery } from '../schemas/audit.ts'
import { errorResponses } from '../schemas/common.ts'

export const auditRoutes: FastifyPluginAsyncTypebox<{ auditLog: AuditLog }> = async (app, { auditLog }) => {
  app.get('/audit', {
    onRequest: requireScope(SCOPES.auditRead),
    schema: {
      operationId: 'listAuditEvents',
      tags: ['audit'],
      summary: 'Audit events, newest first',
      description: 'Every decision: requested, denied, activated, failed, revoke requested, revoked, expired. Filters combine (AND); from/to bound the time inclusively.',
      security: [{ bearerAuth: [SCOPES.auditRead] }],
      querystring: AuditQuery,
      response: { 200: AuditPage, ...errorResponses(400, 401, 403, 503) },
    },
  }, async (request) => {
    const { limit = 50, cursor, ...filter } = request.query
    return auditLog.query(filter, { limit, cursor })
  })
}
