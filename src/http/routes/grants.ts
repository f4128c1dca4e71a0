import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { GrantService } from '../../core/grants.ts'
import { requireScope, SCOPES } from '../auth.ts'
import type { idempotencyHooks } from '../idempotency.ts'
import { errorResponses, GrantIdempotencyHeaders, RevocationIdempotencyHeaders } from '../schemas/common.ts'
import { GrantIdParams, GrantListQuery, GrantPage, GrantRef, GrantRequestBody } from '../schemas/grants.ts'

interface GrantRouteOptions {
  grants: GrantService
  idempotency: ReturnType<typeof idempotencyHooks>
  /** Counted from the request's arrival, so that time spent before the handler (authentication, the idempotency claim) counts too. */
  requestDeadlineMs: number
}

declare module 'fastify' {
  interface FastifyRequest {
    arrivedAt: number
  }
}

export const grantRoutes: FastifyPluginAsyncTypebox<GrantRouteOptions> = async (app, { grants, idempotency, requestDeadlineMs }) => {
  const actorOf = (request: { user: { sub: string }; id: string; correlationId: string | null }) =>
    ({ id: request.user.sub, requestId: String(request.id), correlationId: request.correlationId })
  const deadlineOf = (request: { arrivedAt: number }) => request.arrivedAt + requestDeadlineMs
  app.decorateRequest('arrivedAt', 0)
  app.addHook('onRequest', async (request) => {
    request.arrivedAt = Date.now()
  })

  app.post('/grants', {
    onRequest: requireScope(SCOPES.grantsWrite),
    schema: {
      operationId: 'createGrant',
      tags: ['grants'],
      summary: 'Request temporary access',
      description:
        'Gives one Identity Store user one permission set on one AWS account for a bounded time, if the eligibility policy allows it. ' +
        'Answers 201 once the account assignment is in place, or 202 while Identity Center is still provisioning it (poll GET /grants/{id}). ' +
        'It answers within the request deadline (25 s by default) whatever AWS does: 202 once the grant is recorded, 503 with Retry-After before. ' +
        'Denials are audited and answered 403 POLICY_DENIED with the failed condition. ' +
        'Send an Idempotency-Key (e.g. the approval sys_id) to make retries safe: the same key and body replay the first answer, ' +
        'and a retry after a 503 resumes the grant the failed attempt recorded instead of making another.',
      security: [{ bearerAuth: [SCOPES.grantsWrite] }],
      headers: GrantIdempotencyHeaders,
      body: GrantRequestBody,
      response: { 201: GrantRef, 202: GrantRef, ...errorResponses(400, 401, 403, 409, 415, 422, 502, 503) },
    },
    preHandler: idempotency.preHandler,
    onSend: idempotency.onSend,
  }, async (request, reply) => {
    const { grant, settled } = await grants.request(request.body, actorOf(request), { id: request.idempotency?.derivedId, deadline: deadlineOf(request) })
    return reply.code(settled ? 201 : 202).header('location', `/grants/${grant.id}`).send(grant)
  })

  app.get('/grants', {
    onRequest: requireScope(SCOPES.grantsRead),
    schema: {
      operationId: 'listGrants',
      tags: ['grants'],
      summary: 'List grants, newest first',
      description: 'Filters combine (AND). Follow nextCursor for further pages; it is null on the last page.',
      security: [{ bearerAuth: [SCOPES.grantsRead] }],
      querystring: GrantListQuery,
      response: { 200: GrantPage, ...errorResponses(400, 401, 403, 503) },
    },
  }, async (request) => {
    const { limit = 50, cursor, ...filter } = request.query
    return grants.list(filter, { limit, cursor })
  })

  app.get('/grants/:id', {
    onRequest: requireScope(SCOPES.grantsRead),
    schema: {
      operationId: 'getGrant',
      tags: ['grants'],
      summary: 'Get one grant',
      description: 'The grant’s current state; poll it after a 202 until status is active (or failed).',
      security: [{ bearerAuth: [SCOPES.grantsRead] }],
      params: GrantIdParams,
      response: { 200: GrantRef, ...errorResponses(401, 403, 404, 503) },
    },
  }, async (request) => grants.get(request.params.id))

  app.delete('/grants/:id', {
    onRequest: requireScope(SCOPES.grantsRevoke),
    schema: {
      operationId: 'revokeGrant',
      tags: ['grants'],
      summary: 'End a grant early',
      description:
        'Removes the access now. Answers 200 with status revoked, or 202 with status revoking while Identity Center removes the assignment ' +
        '(or when the request deadline came first; the sweep finishes it). ' +
        'A permanent assignment that existed before the grant, or another active grant of the same access, keeps the access in place. ' +
        'Ending a grant that has already ended changes nothing and answers its final state.',
      security: [{ bearerAuth: [SCOPES.grantsRevoke] }],
      headers: RevocationIdempotencyHeaders,
      params: GrantIdParams,
      response: { 200: GrantRef, 202: GrantRef, ...errorResponses(400, 401, 403, 404, 409, 503) },
    },
    preHandler: idempotency.preHandler,
    onSend: idempotency.onSend,
  }, async (request, reply) => {
    const { grant, settled } = await grants.end(request.params.id, actorOf(request), { deadline: deadlineOf(request) })
    return reply.code(settled ? 200 : 202).send(grant)
  })
}
