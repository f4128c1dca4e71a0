import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { Policy } from '../../core/policy.ts'
import { requireScope, SCOPES } from '../auth.ts'
import { errorResponses } from '../schemas/common.ts'

export const policyRoutes: FastifyPluginAsyncTypebox<{ policy: Policy }> = async (app, { policy }) => {
  app.get('/policy', {
    onRequest: requireScope(SCOPES.policyRead),
    schema: {
      operationId: 'getPolicy',
      tags: ['policy'],
      summary: 'The eligibility policy in force, and its version',
      description:
        'The policy document the service loaded at start, and its version (a content hash). Every audited decision names the version and the rule ' +
        'that allowed the request or came closest, so an auditor can tell which policy decided. Changes only with a restart on another policy file.',
      security: [{ bearerAuth: [SCOPES.policyRead] }],
      response: { 200: Type.Ref('PolicyView'), ...errorResponses(401, 403, 503) },
    },
  }, async () => ({ version: policy.version, document: policy.document }))
}
