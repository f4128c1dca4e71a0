import { randomUUID } from 'node:crypto'
import fastifySwagger from '@fastify/swagger'
import fastifySwaggerUi from '@fastify/swagger-ui'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Ajv, type Options as AjvOptions } from 'ajv'
import addFormats from 'ajv-formats'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { Clock } from './core/clock.ts'
import { GrantService } from './core/grants.ts'
import type { Policy } from './core/policy.ts'
import type { AuditLog, Directory, GrantStore, IdentityCenter, Notifier } from './core/ports.ts'
import { sweep, type SweepSummary } from './core/sweep.ts'
import { registerAuth, type JwtSettings } from './http/auth.ts'
import { registerErrorHandling } from './http/errors.ts'
import { idempotencyHooks, type IdempotencyStore } from './http/idempotency.ts'
import { auditRoutes } from './http/routes/audit.ts'
import { grantRoutes } from './http/routes/grants.ts'
import { healthRoutes } from './http/routes/health.ts'
import { revocationRoutes } from './http/routes/revocations.ts'
import { AuditEventSchema, VerifyResultSchema } from './http/schemas/audit.ts'
import { Problem } from './http/schemas/common.ts'
import { GrantSchema } from './http/schemas/grants.ts'
import { SweepSummarySchema } from './http/schemas/revocations.ts'

/** What the service needs from the outside world; src/adapters/aws.ts provides them on AWS. */
export interface ServiceAdapters {
  store: GrantStore
  auditLog: AuditLog
  identityCenter: IdentityCenter
  directory: Directory
  notifier: Notifier
  idempotency: IdempotencyStore
}

export interface AppDependencies extends ServiceAdapters {
  clock: Clock
  policy: Policy
  jwt: JwtSettings
  maxDurationMinutes: number
  sweepBudgetMs: number
  /** Due grants read per DynamoDB page by the sweep. */
  sweepPageSize?: number
  /** Grants the sweep works on at once: enough to keep the Identity Center rate limiter busy. */
  sweepConcurrency?: number
  /** Where the docs page's static files are, when running from a bundle (dist/static); unset, the package's own. */
  docsAssetsDir?: string | undefined
  logger?: FastifyServerOptions['logger']
}

export const BODY_LIMIT_BYTES = 16 * 1024

const REDACTED_PATHS = ['req.headers.authorization', 'headers.authorization', '*.authorization', '*.token', '*.secret', '*.password']

/** Builds the whole service from injected dependencies; entry points only choose the dependencies and listen. */
export async function buildApp(deps: AppDependencies) {
  const app = Fastify({
    logger: deps.logger ?? false,
    bodyLimit: BODY_LIMIT_BYTES,
    // Accept a caller's correlation id when it is a plain token; otherwise make one.
    genReqId: (request) => {
      const incoming = request.headers['x-request-id']
      return typeof incoming === 'string' && /^[\w.:-]{8,128}$/.test(incoming) ? incoming : randomUUID()
    },
    ...(deps.logger && typeof deps.logger === 'object' ? { logger: { ...deps.logger, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } } } : {}),
  }).withTypeProvider<TypeBoxTypeProvider>()

  useStrictBodies(app)
  // JSON only: a text/plain body is refused as 415 rather than parsed into a string.
  app.removeContentTypeParser('text/plain')
  registerErrorHandling(app)
  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', String(request.id))
  })

  for (const schema of [Problem, GrantSchema, AuditEventSchema, SweepSummarySchema, VerifyResultSchema]) app.addSchema(schema)

  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'jit-access',
        version: '0.1.0',
        description: 'Just-in-time privileged access for AWS IAM Identity Center: time-bound account assignments that remove themselves, with an audit trail.',
        license: { name: 'Proprietary' },
      },
      servers: [{ url: 'http://127.0.0.1:3000', description: 'The local sandbox (npm start); in AWS, the HTTP API URL of your deployment' }],
      components: {
        securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
      },
      tags: [
        { name: 'grants', description: 'Request, inspect and end temporary access' },
        { name: 'audit', description: 'Every decision, for auditors' },
        { name: 'revocations', description: 'The scheduled sweep' },
        { name: 'health', description: 'Liveness' },
      ],
    },
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
  })
  await app.register(fastifySwaggerUi, { routePrefix: '/docs', ...(deps.docsAssetsDir ? { baseDir: deps.docsAssetsDir } : {}) })
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())

  await registerAuth(app, deps.jwt)

  const grants = new GrantService(deps)
  const runSweep = async (run: SweepRun): Promise<SweepSummary> => {
    const budgetEnd = new Date(deps.clock.now().getTime() + deps.sweepBudgetMs)
    const deadline = run.deadline && run.deadline < budgetEnd ? run.deadline : budgetEnd
    const summary = await sweep(deps.store, grants, deps.clock, { deadline, actor: run.actor, pageSize: deps.sweepPageSize ?? 100, concurrency: deps.sweepConcurrency ?? 16 })
    app.log.info({ triggeredBy: run.triggeredBy, ...summary }, 'revocation sweep finished')
    return summary
  }

  await app.register(healthRoutes)
  await app.register(grantRoutes, { grants, idempotency: idempotencyHooks(deps.idempotency, deps.clock) })
  await app.register(auditRoutes, { auditLog: deps.auditLog })
  await app.register(revocationRoutes, { runSweep })

  app.decorate('runSweep', runSweep)
  return app
}

export interface SweepRun {
  /** Recorded as the actor of the sweep's audit events: system:sweep over HTTP, system:scheduler from EventBridge. */
  actor: string
  /** Who started it, for the log (the token subject, or the schedule rule). */
  triggeredBy: string
  /** Stop starting new work at this time (a Lambda passes its remaining time); the configured budget applies too. */
  deadline?: Date
}

declare module 'fastify' {
  interface FastifyInstance {
    runSweep(run: SweepRun): Promise<SweepSummary>
  }
}

/**
 * Bodies are validated exactly as sent: no type coercion ("30" is not a number) and unknown fields are
 * refused rather than silently dropped. Query strings and paths are text, so they are coerced.
 */
function useStrictBodies(app: FastifyInstance): void {
  const common: AjvOptions = { allErrors: false, strict: false, useDefaults: true }
  const strict = addFormats.default(new Ajv({ ...common, coerceTypes: false, removeAdditional: false }))
  const coercing = addFormats.default(new Ajv({ ...common, coerceTypes: 'array', removeAdditional: false }))
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? strict : coercing).compile(schema))
}
