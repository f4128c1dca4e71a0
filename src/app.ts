import { AsyncLocalStorage } from 'node:async_hooks'
import { randomUUID } from 'node:crypto'
import { SerializerSelector } from '@fastify/fast-json-stringify-compiler'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Ajv, type Options as AjvOptions, type ErrorObject, type ValidateFunction } from 'ajv'
import addFormats from 'ajv-formats'
import Fastify, { type FastifySchemaCompiler, type FastifyServerOptions } from 'fastify'
import { HeadAnchoring } from './core/anchoring.ts'
import type { Clock } from './core/clock.ts'
import { actOnDue, DueTimers, dueTimeOf, dueWithin, TIMER_ACTOR, type TimerHost } from './core/due-timers.ts'
import type { Grant } from './core/grant-model.ts'
import { DEFAULT_MAX_LEAD_DAYS, GrantService } from './core/grant-service.ts'
import { Outbox } from './core/outbox.ts'
import type { Policy } from './core/policy.ts'
import { inBackground } from './core/priority.ts'
import { pause } from './core/retry.ts'
import { type SweepRun, type SweepSummary, sweep } from './core/sweep.ts'
import { type JwtSettings, registerAuth } from './http/auth.ts'
import { registerDocs } from './http/docs.ts'
import {
  clientErrorHandler,
  correlationIdOf,
  echoRequestIds,
  handleError,
  registerErrorHandling,
} from './http/errors.ts'
import { idempotencyHooks } from './http/idempotency.ts'
import { auditRoutes } from './http/routes/audit.ts'
import { grantRoutes } from './http/routes/grants.ts'
import { healthRoutes } from './http/routes/health.ts'
import { policyRoutes } from './http/routes/policy.ts'
import { sweepRoutes } from './http/routes/sweep.ts'
import { AuditEventSchema, VerifyResultSchema } from './http/schemas/audit.ts'
import { Problem } from './http/schemas/common.ts'
import { DryRunResultSchema, GrantSchema } from './http/schemas/grants.ts'
import { EligibilitySchema, PolicyRuleSchema, PolicyViewSchema } from './http/schemas/policy.ts'
import { SweepSummarySchema } from './http/schemas/sweep.ts'
import type { ServiceAdapters } from './service-adapters.ts'

export type { ServiceAdapters, SweepRun }

export interface AppDependencies extends ServiceAdapters {
  clock: Clock
  policy: Policy
  jwt: JwtSettings
  maxDurationMinutes: number
  /** How far ahead a grant may be scheduled (default 14 days; 0 turns scheduling off). */
  maxLeadDays?: number
  sweepBudgetMs: number
  /**
   * How long a sweep waits, in real time, for the run before it to give the one-sweep lease up before it does
   * nothing (default SWEEP_LEASE_WAIT_MS); spent from its own budget.
   */
  sweepLeaseWaitMs?: number
  /** How long a grant or revocation request may take before it answers with what is recorded (default 25 s). */
  requestDeadlineMs?: number
  /** How long a request waits for another process's change to the same assignment (see GrantServiceDeps). */
  leaseWaitMs?: number
  /** How long the outbox keeps trying to deliver a message before it gives up (default a day). */
  outboxGiveUpMs?: number | undefined
  /** How long one delivery attempt may take before it is aborted (default 40 s, inside the 60 s claim). */
  outboxDeliveryBudgetMs?: number | undefined
  /** Due grants read per DynamoDB page by the sweep. */
  sweepPageSize?: number
  /** Grants the sweep works on at once: enough to keep the Identity Center rate limiter busy. */
  sweepConcurrency?: number
  /**
   * Act on each grant at its second (expiry, scheduled start) with in-process timers, for grants due within
   * `horizonMs`: the container's setting (a Lambda is frozen between invocations; it uses dueQueue). The sweep
   * arms the timers for what falls due before its next run; unset, only the sweep acts.
   */
  dueTimers?: { horizonMs: number; timers?: TimerHost } | undefined
  /** With a dueQueue: how far ahead each sweep sends grants to it (default 90 s: a minute between runs, and a margin). */
  dueQueueHorizonMs?: number
  /** Where the docs page's static files are, when running from a bundle (dist/static); unset, the package's own. */
  docsAssetsDir?: string | undefined
  logger?: FastifyServerOptions['logger']
}

export const BODY_LIMIT_BYTES = 16 * 1024
export const DEFAULT_REQUEST_DEADLINE_MS = 25_000
/** A minute between sweeps and half a minute's margin for a late run: a grant sent twice is acted on once. */
export const DEFAULT_DUE_QUEUE_HORIZON_MS = 90_000
/** A due-queue message this early at most is waited out by its consumer (clocks of two hosts differ a little). */
export const DUE_EARLY_WAIT_MS = 5_000
/**
 * How long a sweep waits for the run before it to finish: a run given nearly the whole minute may end a few seconds
 * into the next one, and skipping the next run would leave the quota idle, and grants due, for a whole minute.
 */
export const SWEEP_LEASE_WAIT_MS = 15_000
/** A sweep that would have less than this left after waiting for the lease does nothing: the next run comes. */
const SWEEP_MIN_WORK_MS = 5_000
const SWEEP_LEASE_POLL_MS = 250
/** How long past its deadline a sweep keeps its lease: for its last steps (the outbox, the anchor) to finish. */
export const SWEEP_LEASE_MARGIN_MS = 10_000

/**
 * The id that the platform in front of the service gave the request now being handled (lambda.ts runs each
 * API Gateway request under API Gateway's), so that logs, problem bodies and audit events carry the id that
 * the platform's own logs show. Not being a header, it cannot be set by a caller, in Lambda or in the container.
 */
export const platformRequestId = new AsyncLocalStorage<string>()

const REDACTED_PATHS = [
  'req.headers.authorization',
  'headers.authorization',
  '*.authorization',
  '*.token',
  '*.secret',
  '*.password',
]

/** Builds the whole service from injected dependencies; entry points only choose the dependencies and listen. */
export async function buildApp(deps: AppDependencies) {
  const app = Fastify({
    logger: deps.logger ?? false,
    bodyLimit: BODY_LIMIT_BYTES,
    // The platform's id when the entry point runs the request under one, otherwise a new one; never a header.
    requestIdHeader: false,
    genReqId: () => platformRequestId.getStore() ?? randomUUID(),
    // Bound here rather than in a hook so that every line of the request carries it, Fastify's own included.
    childLoggerFactory: (logger, bindings, options, rawRequest) => {
      const correlationId = correlationIdOf(rawRequest.headers)
      return logger.child(correlationId === null ? bindings : { ...bindings, correlationId }, options)
    },
    // The router's own refusals (a bad URL, a path parameter over maxParamLength) and the HTTP parser's (headers
    // over the limit, an unknown method) would otherwise be answered in Fastify's JSON shape.
    frameworkErrors: handleError,
    clientErrorHandler,
    ...(deps.logger && typeof deps.logger === 'object'
      ? { logger: { ...deps.logger, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } } }
      : {}),
    // Our own validator compiler as the factory, not set on the app: Fastify then never loads its default one
    // (@fastify/ajv-compiler), which the Lambda bundle leaves out (infra/build.ts). Typed by that package as an
    // Ajv-only compiler (hence the cast); Fastify calls it with a route's schema and part, as setValidatorCompiler does.
    schemaController: {
      compilersFactory: { buildValidator: strictBodiesValidator as never, buildSerializer: serializeOnFirstUse },
    },
  }).withTypeProvider<TypeBoxTypeProvider>()

  // JSON only: a text/plain body is refused as 415 rather than parsed into a string.
  app.removeContentTypeParser('text/plain')
  app.decorateRequest('correlationId', {
    getter(this: { headers: Record<string, string | string[] | undefined> }) {
      return correlationIdOf(this.headers)
    },
  })
  registerErrorHandling(app)
  app.addHook('onSend', async (request, reply) => {
    echoRequestIds(request, reply)
  })

  const sharedSchemas = [
    Problem,
    GrantSchema,
    AuditEventSchema,
    SweepSummarySchema,
    VerifyResultSchema,
    PolicyRuleSchema,
    PolicyViewSchema,
    EligibilitySchema,
    DryRunResultSchema,
  ]
  for (const schema of sharedSchemas) app.addSchema(schema)
  registerDocs(app, { schemas: sharedSchemas, assetsDir: deps.docsAssetsDir })

  await registerAuth(app, deps.jwt)

  const outbox =
    deps.outboxStore && deps.messageChannels?.length
      ? new Outbox(deps.outboxStore, deps.messageChannels, deps.clock, {
          notifier: deps.notifier,
          giveUpMs: deps.outboxGiveUpMs,
          deliveryBudgetMs: deps.outboxDeliveryBudgetMs,
          log: app.log,
        })
      : undefined
  let dueTimers: DueTimers | undefined
  const grants = new GrantService({
    ...deps,
    outbox,
    onWritten: deps.dueTimers ? (grant) => dueTimers?.track(grant) : undefined,
  })
  if (deps.dueTimers) {
    dueTimers = new DueTimers(grants, deps.clock, {
      horizonMs: deps.dueTimers.horizonMs,
      ...(deps.dueTimers.timers ? { timers: deps.dueTimers.timers } : {}),
      onError: (grantId, error) =>
        app.log.warn({ grantId, err: error }, 'a due timer could not act on its grant; the sweep will'),
    })
  }
  /**
   * Takes the one-sweep lease until the run's deadline and its margin, waiting (in real time, from the run's own
   * budget) while another run holds it, as one finishing a few seconds into the next minute does. False when it
   * is still held after the wait, or too little of the budget would be left.
   */
  const takeSweepLease = async (owner: string, deadline: Date): Promise<boolean> => {
    const waitMs = Math.min(
      deps.sweepLeaseWaitMs ?? SWEEP_LEASE_WAIT_MS,
      deadline.getTime() - deps.clock.now().getTime() - SWEEP_MIN_WORK_MS,
    )
    const giveUpAt = performance.now() + waitMs
    for (;;) {
      const until = new Date(deadline.getTime() + SWEEP_LEASE_MARGIN_MS)
      if (await deps.store.acquireSweepLease(owner, deps.clock.now(), until)) return true
      if (performance.now() + SWEEP_LEASE_POLL_MS > giveUpAt) return false
      await pause(SWEEP_LEASE_POLL_MS)
    }
  }
  const runSweep = async (run: SweepRun): Promise<SweepSummary> => {
    const startedAt = deps.clock.now()
    const budgetEnd = new Date(startedAt.getTime() + deps.sweepBudgetMs)
    const deadline = run.deadline && run.deadline < budgetEnd ? run.deadline : budgetEnd
    // One sweep at a time across every process: two would contend for the same due grants and split Identity
    // Center's quota between them. Held until the run's deadline and its last steps; a process that dies
    // holding it loses it then.
    const leaseOwner = randomUUID()
    if (!(await takeSweepLease(leaseOwner, deadline))) {
      app.log.info({ triggeredBy: run.triggeredBy }, 'revocation sweep skipped: another process is sweeping')
      return { revoked: 0, activated: 0, denied: 0, failed: 0, remaining: 0, checked: 0, drifted: 0, undelivered: 0 }
    }
    try {
      // In the background: requests waiting for Identity Center's quota are served before the sweep's catching up.
      const summary = await inBackground(() =>
        sweep(deps.store, grants, deps.clock, {
          deadline,
          actor: run.actor,
          pageSize: deps.sweepPageSize,
          concurrency: deps.sweepConcurrency,
          outbox,
        }),
      )
      app.log.info({ triggeredBy: run.triggeredBy, ...summary }, 'revocation sweep finished')
      await armDueSoon()
      await anchorAuditHead()
      return summary
    } finally {
      await deps.store
        .releaseSweepLease(leaseOwner)
        .catch((error: unknown) =>
          app.log.warn({ err: error }, 'the sweep lease could not be given up; it runs out on its own'),
        )
    }
  }
  // What falls due before the next run (another process's grants too) is armed here, to be acted on at its second.
  const horizonMs =
    deps.dueTimers?.horizonMs ?? (deps.dueQueue ? (deps.dueQueueHorizonMs ?? DEFAULT_DUE_QUEUE_HORIZON_MS) : undefined)
  const armDueSoon = async () => {
    if (horizonMs === undefined) return
    let soon: Grant[]
    try {
      const now = deps.clock.now()
      soon = await dueWithin(deps.store, now, horizonMs)
      for (const grant of soon) dueTimers?.track(grant)
      const queued = soon.flatMap((grant) => {
        const at = dueTimeOf(grant)
        return at === undefined ? [] : [{ grantId: grant.id, at: new Date(at) }]
      })
      if (deps.dueQueue && queued.length > 0) await deps.dueQueue.send(queued, now)
    } catch (error) {
      app.log.warn(
        { err: error },
        'grants due before the next sweep could not be armed or queued; the next sweep acts on them',
      )
      return
    }
    if (soon.length > 0) app.log.debug({ due: soon.length }, 'grants due before the next sweep armed or queued')
  }
  /** A due-queue message (Lambda): the grant is acted on as its timer would. Throws what a retry may cure. */
  const actOnDueGrant = async (grantId: string) => {
    const actor = { id: TIMER_ACTOR, requestId: null }
    const result = await actOnDue(grants, deps.clock, grantId, actor)
    // Delivered a moment early (another host's clock sent it): waited out here, rather than left to the next sweep.
    const early = result.kind === 'early' ? result.at - deps.clock.now().getTime() : Infinity
    if (early > DUE_EARLY_WAIT_MS) return result.kind
    await pause(early)
    return (await actOnDue(grants, deps.clock, grantId, actor)).kind
  }
  const anchoring = deps.auditAnchors
    ? new HeadAnchoring({ auditLog: deps.auditLog, anchors: deps.auditAnchors, clock: deps.clock })
    : undefined
  // After the sweep, so that its own events are anchored with it. A failure is reported, not the sweep's: what
  // the sweep did is done, and the next run anchors whatever is then the head.
  const anchorAuditHead = async () => {
    try {
      const anchored = await anchoring?.anchorHead()
      if (anchored) app.log.info({ seq: anchored.seq, hash: anchored.hash }, 'audit chain head anchored')
    } catch (error) {
      app.log.error({ err: error }, 'audit chain head could not be anchored')
      await deps.notifier.error('audit chain head could not be anchored', { error: (error as Error).message })
    }
  }

  await app.register(healthRoutes)
  await app.register(grantRoutes, {
    grants,
    idempotency: idempotencyHooks(deps.idempotency, deps.clock),
    requestDeadlineMs: deps.requestDeadlineMs ?? DEFAULT_REQUEST_DEADLINE_MS,
  })
  await app.register(auditRoutes, { auditLog: deps.auditLog })
  await app.register(sweepRoutes, { runSweep })
  await app.register(policyRoutes, {
    policy: deps.policy,
    directory: deps.directory,
    accounts: deps.accounts,
    cursors: deps.cursors,
    maxDurationMinutes: deps.maxDurationMinutes,
    maxLeadDays: deps.maxLeadDays ?? DEFAULT_MAX_LEAD_DAYS,
  })

  app.decorate('runSweep', runSweep)
  app.decorate('dueTimers', dueTimers)
  app.decorate('actOnDueGrant', actOnDueGrant)
  // Messages are not awaited by the answers that caused them: shutting down waits for them. Deliveries first,
  // since one given up on raises an alert.
  const flushNotifications = async () => {
    await outbox?.flush()
    await deps.notifier.flush()
  }
  app.decorate('flushNotifications', flushNotifications)
  // Timers first: one already firing finishes (and hands its messages over) before the messages are flushed.
  app.addHook('onClose', async () => {
    await dueTimers?.close()
    await flushNotifications()
  })
  return app
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The caller's x-request-id when it is a valid correlation id (see correlationIdOf), else null. */
    readonly correlationId: string | null
  }
  interface FastifyInstance {
    runSweep(run: SweepRun): Promise<SweepSummary>
    /** The in-process due timers, when on (the container). */
    dueTimers: DueTimers | undefined
    /** Acts on one grant a due-queue message names, if it is due: 'acted', 'early' (its end moved) or 'nothing'. */
    actOnDueGrant(grantId: string): Promise<'acted' | 'early' | 'nothing'>
    /** Settles once the SNS messages handed over so far are sent (see Notifier). */
    flushNotifications(): Promise<void>
  }
}

/**
 * Bodies are validated exactly as sent: no type coercion ("30" is not a number) and unknown fields are
 * refused rather than silently dropped. Query strings and paths are text, so they are coerced.
 * Every problem is reported, not only the first, so that a typo'd field name is named as unknown beside the
 * field it misses. That costs a walk over the whole input even once it is known to be invalid, which is why
 * every field has a length bound and bodies a size limit.
 */
function strictBodiesValidator(): FastifySchemaCompiler<unknown> {
  const common: AjvOptions = { allErrors: true, strict: false, useDefaults: true }
  let strict: Ajv | undefined
  let coercing: Ajv | undefined
  const compilerFor = (httpPart: string | undefined): Ajv => {
    if (httpPart === 'body') {
      strict ??= addFormats.default(new Ajv({ ...common, coerceTypes: false, removeAdditional: false }))
      return strict
    }
    coercing ??= addFormats.default(new Ajv({ ...common, coerceTypes: 'array', removeAdditional: false }))
    return coercing
  }
  return ({ schema, httpPart }) => validateOnFirstUse(() => compilerFor(httpPart).compile(schema as object))
}

/*
 * Compiling every route's validators and serializers when the app starts was a fifth of a Lambda cold start,
 * mostly for error responses that are rarely sent and for routes that an execution environment may never
 * serve (the scheduled sweep uses none). Each is compiled when first used instead, then kept; so are the two
 * Ajv instances.
 */

/** An Ajv validator, compiled on its first call. */
function validateOnFirstUse(compile: () => ValidateFunction) {
  let compiled: ValidateFunction | undefined
  const validate = Object.assign(
    (data: unknown, context?: Parameters<ValidateFunction>[1]) => {
      compiled ??= compile()
      const valid = compiled(data, context)
      validate.errors = compiled.errors
      return valid
    },
    // Fastify passes the parent object (which Ajv needs to replace a coerced root value) only to a function that has this.
    { schemaEnv: true, errors: undefined as ErrorObject[] | null | undefined },
  )
  return validate
}

const buildSerializer = SerializerSelector()

/** Fastify's own fast-json-stringify serializers, each compiled when its status code is first sent. */
function serializeOnFirstUse(...factory: Parameters<typeof buildSerializer>): ReturnType<typeof buildSerializer> {
  const compile = buildSerializer(...factory)
  return (route) => {
    let serialize: ((body: unknown) => string) | undefined
    return (body) => {
      serialize ??= compile(route)
      return serialize(body)
    }
  }
}
