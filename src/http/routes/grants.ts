import type { FastifyPluginAsyncTypebox, TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { preHandlerAsyncHookHandler } from 'fastify'
import { InvalidInputError } from '../../core/errors.ts'
import type { GrantService } from '../../core/grant-service.ts'
import * as Type from '../../core/schema-builders.ts'
import { requireScope, SCOPES } from '../auth.ts'
import type { idempotencyHooks } from '../idempotency.ts'
import { ChangeIdempotencyHeaders, errorResponses, GrantIdempotencyHeaders } from '../schemas/common.ts'
import {
  GrantEndChange,
  GrantIdParams,
  GrantListQuery,
  GrantPage,
  GrantRef,
  GrantRequestBody,
} from '../schemas/grants.ts'

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

/** A dry run records nothing, so it claims no Idempotency-Key (which a real request with that key could then not use). */
const unlessDryRun = (hook: preHandlerAsyncHookHandler): preHandlerAsyncHookHandler =>
  async function (request, reply) {
    if ((request.body as { dryRun?: unknown } | undefined)?.dryRun === true) return
    return hook.call(this, request, reply)
  }

const KINDS = 'an account grant names accountId and permissionSet, a group grant names groupName instead'

/**
 * The two kinds of grant, which OpenAPI 3.0.3 without oneOf cannot express: accountId with permissionSet, or
 * groupName alone. Any other mix is refused 400 before anything else runs (no Idempotency-Key is claimed).
 */
export const oneKindOfGrant: preHandlerAsyncHookHandler = async (request) => {
  const body = request.body as { accountId?: unknown; permissionSet?: unknown; groupName?: unknown }
  const errors: { location: string; path: string; message: string }[] = []
  if (body.groupName !== undefined) {
    for (const field of ['accountId', 'permissionSet'] as const) {
      if (body[field] !== undefined)
        errors.push({ location: 'body', path: `/${field}`, message: `cannot be combined with groupName (${KINDS})` })
    }
  } else {
    for (const field of ['accountId', 'permissionSet'] as const) {
      if (body[field] === undefined)
        errors.push({ location: 'body', path: `/${field}`, message: `is required (${KINDS})` })
    }
  }
  if (errors.length > 0) throw new InvalidInputError(errors)
}

export const grantRoutes: FastifyPluginAsyncTypebox<GrantRouteOptions> = async (
  app,
  { grants, idempotency, requestDeadlineMs },
) => {
  const actorOf = (request: { user: { sub: string }; id: string; correlationId: string | null }) => ({
    id: request.user.sub,
    requestId: String(request.id),
    correlationId: request.correlationId,
  })
  const deadlineOf = (request: { arrivedAt: number }) => request.arrivedAt + requestDeadlineMs
  app.decorateRequest('arrivedAt', 0)
  app.addHook('onRequest', async (request) => {
    request.arrivedAt = Date.now()
  })

  app.post(
    '/grants',
    {
      onRequest: requireScope(SCOPES.grantsWrite),
      schema: {
        operationId: 'createGrant',
        tags: ['grants'],
        summary: 'Request temporary access',
        description:
          'Gives one Identity Store user one permission set on one AWS account (an account grant: accountId and permissionSet), or membership of ' +
          'one Identity Store group (a group grant: groupName, which a policy rule must list in grantableGroups), for a bounded time, if the ' +
          'eligibility policy allows it. Any other mix of accountId, permissionSet and groupName is answered 400 VALIDATION_FAILED. ' +
          'Answers 201 once the account assignment is in place, or 202 while Identity Center is still provisioning it (poll GET /grants/{id}). ' +
          'It answers within the request deadline (25 s by default) whatever AWS does: 202 once the grant is recorded, 503 with Retry-After before. ' +
          'Denials are audited and answered 403 POLICY_DENIED with the failed condition. ' +
          'With startsAt (a later start) it answers 201 with status scheduled: nothing is created in Identity Center until the first sweep after ' +
          'that time, which asks the policy again and then provisions the grant (or records it denied). ' +
          'Send an Idempotency-Key (e.g. grant- and the change’s sys_id) to make retries safe: the same key and body replay the first answer, ' +
          'and a retry after a 503 resumes the grant the failed attempt recorded instead of making another. ' +
          'With dryRun: true it answers 200 with the verdict (DryRunResult) a real request would get, and records and creates nothing.',
        security: [{ bearerAuth: [SCOPES.grantsWrite] }],
        headers: GrantIdempotencyHeaders,
        body: GrantRequestBody,
        response: {
          200: Type.Ref('DryRunResult'),
          201: GrantRef,
          202: GrantRef,
          ...errorResponses(400, 401, 403, 409, 415, 422, 502, 503),
        },
      },
      preHandler: [oneKindOfGrant, unlessDryRun(idempotency.preHandler)],
      onSend: idempotency.onSend,
    },
    async (request, reply) => {
      const { dryRun, ...input } = request.body
      if (dryRun) {
        const verdict = await grants.dryRun(input, { deadline: deadlineOf(request) })
        // Counted, not audited: a dry run decides nothing. The log line is the count (a metric filter can sum it).
        request.log.info(
          {
            dryRun: true,
            allowed: verdict.allowed,
            rule: verdict.rule,
            failedCondition: verdict.failedCondition,
            policyVersion: verdict.policyVersion,
          },
          'grant dry run',
        )
        return reply.code(200).send(verdict)
      }
      const { grant, settled } = await grants.request(input, actorOf(request), {
        id: request.idempotency?.derivedId,
        deadline: deadlineOf(request),
      })
      return reply
        .code(settled ? 201 : 202)
        .header('location', `/grants/${grant.id}`)
        .send(grant)
    },
  )

  app.get(
    '/grants',
    {
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
    },
    async (request) => {
      const { limit = 50, cursor, ...filter } = request.query
      return grants.list(filter, { limit, cursor })
    },
  )

  app.get(
    '/grants/:id',
    {
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
    },
    async (request) => grants.get(request.params.id),
  )

  app.delete(
    '/grants/:id',
    {
      onRequest: requireScope(SCOPES.grantsRevoke),
      schema: {
        operationId: 'revokeGrant',
        tags: ['grants'],
        summary: 'End a grant early, or cancel a scheduled one',
        description:
          'Removes the access now. Answers 200 with status revoked, or 202 with status revoking while Identity Center removes the assignment ' +
          '(or when the request deadline came first; the sweep finishes it). ' +
          'A permanent assignment that existed before the grant, or another active grant of the same access, keeps the access in place. ' +
          'A scheduled grant is cancelled (200, status cancelled) without any call to Identity Center. ' +
          'Ending a grant that has already ended changes nothing and answers its final state.',
        security: [{ bearerAuth: [SCOPES.grantsRevoke] }],
        headers: ChangeIdempotencyHeaders,
        params: GrantIdParams,
        response: { 200: GrantRef, 202: GrantRef, ...errorResponses(400, 401, 403, 404, 409, 503) },
      },
      preHandler: idempotency.preHandler,
      onSend: idempotency.onSend,
    },
    async (request, reply) => {
      const { grant, settled } = await grants.revoke(request.params.id, actorOf(request), {
        deadline: deadlineOf(request),
      })
      return reply.code(settled ? 200 : 202).send(grant)
    },
  )

  // JSON merge patch (RFC 7396) is this route's own media type, so its parser is registered for it alone.
  await app.register(async (plainScope) => {
    const patchScope = plainScope.withTypeProvider<TypeBoxTypeProvider>()
    patchScope.addContentTypeParser(
      'application/merge-patch+json',
      { parseAs: 'string' },
      patchScope.getDefaultJsonParser('error', 'error'),
    )
    patchScope.patch(
      '/grants/:id',
      {
        onRequest: requireScope(SCOPES.grantsWrite),
        schema: {
          operationId: 'changeGrantEnd',
          tags: ['grants'],
          summary: 'Extend or shorten a grant',
          description:
            'Moves the end (expiresAt) of a scheduled, provisioning or active grant; its status is unchanged, and the sweep ends it at the new end. ' +
            'An extension is decided as a new request for the whole new duration would be: over the service maximum is 400, refused by the ' +
            'eligibility policy (with the user’s groups as they are now) is 403 POLICY_DENIED, audited. Shortening is always allowed. ' +
            'An end in the past or before startsAt is 400; a grant that is ending or has ended is 409 GRANT_ALREADY_ENDED. ' +
            'Send application/merge-patch+json or application/json. Needs grants:write, as requesting does. Audited as grant.extended or grant.shortened; ' +
            'an Idempotency-Key makes retries safe.',
          security: [{ bearerAuth: [SCOPES.grantsWrite] }],
          headers: ChangeIdempotencyHeaders,
          params: GrantIdParams,
          consumes: ['application/merge-patch+json', 'application/json'],
          body: GrantEndChange,
          response: { 200: GrantRef, ...errorResponses(400, 401, 403, 404, 409, 415, 503) },
        },
        preHandler: idempotency.preHandler,
        onSend: idempotency.onSend,
      },
      async (request) =>
        grants.moveEnd(request.params.id, request.body.expiresAt, actorOf(request), { deadline: deadlineOf(request) }),
    )
  })
}
