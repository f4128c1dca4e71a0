import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { type EligibilityDeps, eligibilityOf } from '../../core/eligibility.ts'
import * as Type from '../../core/schema-builders.ts'
import { requireScope, SCOPES } from '../auth.ts'
import { errorResponses } from '../schemas/common.ts'
import { EligibilityQuery } from '../schemas/policy.ts'

export const policyRoutes: FastifyPluginAsyncTypebox<EligibilityDeps> = async (app, deps) => {
  const { policy } = deps
  app.get(
    '/policy',
    {
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
    },
    async () => ({ version: policy.version, document: policy.document }),
  )

  app.get(
    '/eligibility',
    {
      onRequest: requireScope(SCOPES.grantsRead),
      schema: {
        operationId: 'getEligibility',
        tags: ['policy'],
        summary: 'What a user may request',
        description:
          'Every policy rule whose users or groups include the user (groups as the directory says now), each with its permission sets, its accounts ' +
          '(organizational units expanded to the active accounts nested below them, filtered by the rule\u2019s account tags; at most limit per rule, ' +
          'with truncated and a nextCursor when there may be more: asked again with that cursor, the answer holds only that rule, its next accounts; ' +
          'a rule naming * says anyAccount instead of listing), its maximum duration and lead time, and its ticket pattern. ' +
          'A catalog item can offer exactly these choices. What is listed may still be refused for a condition this cannot know in advance (the ticket). ' +
          'Unknown user: 422 USER_NOT_FOUND. A cursor this service did not issue, or issued under another policy version: 400 INVALID_CURSOR. ' +
          'AWS Organizations or the directory unavailable: 503.',
        security: [{ bearerAuth: [SCOPES.grantsRead] }],
        querystring: EligibilityQuery,
        response: { 200: Type.Ref('Eligibility'), ...errorResponses(400, 401, 403, 422, 503) },
      },
    },
    async (request) => eligibilityOf(deps, request.query.userName, request.query.limit ?? 100, request.query.cursor),
  )
}
