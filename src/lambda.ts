/**
 * AWS Lambda entry: the same Fastify app behind API Gateway (HTTP API payload v2, REST API v1) or a function
 * URL, and the revocation sweep when EventBridge's one-minute schedule invokes the function directly (never
 * through an unauthenticated route). Any other event fails its invocation (see UnsupportedEventError).
 * Configuration, AWS clients and the app are built once per execution environment, at module load, so that no
 * request pays for them.
 */
import awsLambdaFastify from '@fastify/aws-lambda'
import { platformRequestId } from './app.ts'
import { loadConfig } from './config.ts'
import { SCHEDULER_ACTOR } from './core/audit.ts'
import { parseDueMessage } from './core/due-timers.ts'
import { createService } from './service.ts'

/** Time kept back from the sweep so that it can record its last results and report before Lambda stops it. */
const SWEEP_SAFETY_MARGIN_MS = 5_000

export interface ScheduledEvent {
  source: 'aws.events'
  'detail-type': 'Scheduled Event'
  /** The ARN of the rule that fired. */
  resources?: string[]
}

/**
 * API Gateway HTTP API payload 2.0; a function URL sends the same shape. Only what tells it apart is typed:
 * @fastify/aws-lambda reads the rest (it takes the query from queryStringParameters, never rawQueryString).
 */
export interface HttpApiEvent {
  version: '2.0'
  rawPath: string
  requestContext: { http: { method: string }; requestId?: unknown }
  body?: string | null
}

/** API Gateway REST API, and HTTP API payload 1.0, which has the same shape. */
export interface RestApiEvent {
  httpMethod: string
  path: string
  requestContext: { requestId?: unknown }
  body?: string | null
}

export type HttpEvent = HttpApiEvent | RestApiEvent

/** A batch from the due queue (SQS event source mapping with ReportBatchItemFailures). */
export interface DueQueueEvent {
  Records: { messageId: string; body: string; eventSource: 'aws:sqs'; eventSourceARN: string }[]
}

export interface LambdaContext {
  /** The invocation's id, in Lambda's own log lines. */
  awsRequestId: string
  getRemainingTimeInMillis(): number
}

/**
 * An event this function does not handle. Thrown rather than answered (a 404 would be a successful
 * invocation) so that the invocation fails: an event source mapping or an asynchronous invoke then retries it
 * or sends it to its dead-letter queue or failure destination, and the function's Errors metric shows it. The
 * message names the kind of event only: its content may hold secrets, and the error goes to the logs.
 */
export class UnsupportedEventError extends Error {
  override name = 'UnsupportedEventError'
  constructor(received: string) {
    super(
      `This function handles API Gateway HTTP API and REST API requests, function URL requests, its EventBridge schedule and its due queue; received ${received}`,
    )
  }
}

// Performance marks for each init phase: infra/build.ts reads them to say where cold-start time goes.
performance.mark('jit:modules-loaded')
const config = loadConfig()
performance.mark('jit:config-loaded')
const app = await createService(config)
performance.mark('jit:service-built')
const proxy = awsLambdaFastify(app, {
  decorateRequest: false,
  // The docs page's icons; everything else the service sends is text.
  binaryMimeTypes: ['image/png'],
})
await app.ready()
performance.mark('jit:ready')

/** A batch of SQS messages, all from the configured due queue (no other queue's messages are taken). */
export function isDueQueueEvent(event: unknown, queueArn: string | undefined): event is DueQueueEvent {
  if (queueArn === undefined || !isRecord(event) || !Array.isArray(event.Records) || event.Records.length === 0)
    return false
  return event.Records.every(
    (record: unknown) =>
      isRecord(record) &&
      record.eventSource === 'aws:sqs' &&
      record.eventSourceARN === queueArn &&
      typeof record.messageId === 'string' &&
      typeof record.body === 'string',
  )
}

export function isScheduledEvent(event: unknown): event is ScheduledEvent {
  const candidate = event as Partial<ScheduledEvent> | null
  return candidate?.source === 'aws.events' && candidate['detail-type'] === 'Scheduled Event'
}

/*
 * What makes an event an HTTP request is what the proxy needs to make one of it: a method, a path and a request
 * context, and a body that is text if there is one. Anything less would be routed as a GET / or crash in the
 * proxy, and either would hide a misconfigured trigger.
 */

export function isHttpApiEvent(event: unknown): event is HttpApiEvent {
  if (!isRecord(event) || event.version !== '2.0' || typeof event.rawPath !== 'string' || !hasTextBody(event))
    return false
  const http = isRecord(event.requestContext) ? event.requestContext.http : undefined
  return isRecord(http) && typeof http.method === 'string'
}

export function isRestApiEvent(event: unknown): event is RestApiEvent {
  return (
    isRecord(event) &&
    typeof event.httpMethod === 'string' &&
    typeof event.path === 'string' &&
    hasTextBody(event) &&
    // An Application Load Balancer sends this shape too, with requestContext.elb: no load balancer is meant to
    // invoke this function.
    isRecord(event.requestContext) &&
    event.requestContext.elb === undefined
  )
}

export async function handler(event: unknown, context: LambdaContext) {
  // HTTP first: whatever else a request looks like, it never starts the sweep.
  if (isHttpApiEvent(event) || isRestApiEvent(event)) {
    return flushingAfter(
      context,
      () =>
        platformRequestId.run(requestIdOf(event, context), () =>
          proxy(event as Parameters<typeof proxy>[0], context as Parameters<typeof proxy>[1]),
        ),
      HTTP_FLUSH_LIMIT_MS,
    )
  }
  if (isScheduledEvent(event)) {
    return flushingAfter(context, () =>
      app.runSweep({
        actor: SCHEDULER_ACTOR,
        triggeredBy: event.resources?.[0] ?? 'eventbridge',
        deadline: new Date(Date.now() + context.getRemainingTimeInMillis() - SWEEP_SAFETY_MARGIN_MS),
      }),
    )
  }
  if (isDueQueueEvent(event, config.dueQueue?.arn)) {
    return flushingAfter(context, () => actOnDueMessages(event))
  }
  throw new UnsupportedEventError(describeEvent(event))
}

/**
 * Each message names a grant due at its second: it is acted on as a container's timer would. A message whose
 * work failed (AWS unavailable) is reported back for SQS to deliver again; one that is not a due message at all
 * is dropped, since no retry could make it one. The minute sweep stays the safety net either way.
 */
async function actOnDueMessages(event: DueQueueEvent): Promise<{ batchItemFailures: { itemIdentifier: string }[] }> {
  const failures: { itemIdentifier: string }[] = []
  await Promise.all(
    event.Records.map(async ({ messageId, body }) => {
      const message = parseDueMessage(body)
      if (!message) {
        app.log.warn({ messageId }, 'a due-queue message that names no grant was dropped')
        return
      }
      try {
        await app.actOnDueGrant(message.grantId)
      } catch (error) {
        app.log.warn(
          { messageId, grantId: message.grantId, err: error },
          'a due grant could not be acted on; the message is retried',
        )
        failures.push({ itemIdentifier: messageId })
      }
    }),
  )
  return { batchItemFailures: failures }
}

/**
 * How long an HTTP answer may wait for the messages its request caused. API Gateway holds the answer until the
 * handler returns, so this wait is the caller's: short, and bounded whatever ServiceNow or SNS do. What is not
 * delivered by then is in the outbox, and the sweep delivers it once the writer's claim runs out.
 */
const HTTP_FLUSH_LIMIT_MS = 2000

/**
 * Lambda freezes the environment once the handler returns: a message still on its way would wait for the next
 * invocation. So here, unlike in the container, the handler waits for its messages a while, though never into
 * a timeout (an SNS outage must not fail the sweep that already recorded its work), and for an HTTP answer no
 * longer than HTTP_FLUSH_LIMIT_MS.
 */
async function flushingAfter<T>(context: LambdaContext, work: () => Promise<T>, limitMs = Infinity): Promise<T> {
  try {
    return await work()
  } finally {
    await flushWithin(Math.min(limitMs, context.getRemainingTimeInMillis() - FLUSH_MARGIN_MS))
  }
}

/**
 * API Gateway's id for the request (a UUID from a REST API or a function URL, `LV7fzho-PHcEJPw=` from an HTTP
 * API), which its access logs show: the service's logs, problem bodies and audit events use it, whatever the
 * caller sends as x-request-id. Without a usable one (an invoke by hand), the invocation's own id.
 */
function requestIdOf(event: HttpEvent, context: LambdaContext): string {
  const fromGateway = event.requestContext.requestId
  // It goes into a response header as it is: only characters that are safe there.
  return typeof fromGateway === 'string' && /^[\w.:+/=-]{1,128}$/.test(fromGateway) ? fromGateway : context.awsRequestId
}

/** What kind of event this is, for the error: the names AWS gives its event sources and types, never a value. */
export function describeEvent(event: unknown): string {
  if (event === null) return 'null'
  if (event === undefined) return 'undefined'
  if (Array.isArray(event)) return 'an array'
  if (!isRecord(event)) return `a ${typeof event}`
  if (Array.isArray(event.Records)) {
    const [first] = event.Records as unknown[]
    const source = isRecord(first) ? nameOf(first.eventSource ?? first.EventSource) : undefined
    return `a batch of ${event.Records.length} record(s) from ${source ?? 'an unnamed source'}`
  }
  if (typeof event.source === 'string' && typeof event['detail-type'] === 'string') {
    return `an EventBridge event from ${nameOf(event.source) ?? 'an unnamed source'} of type ${nameOf(event['detail-type']) ?? '(unnamed)'}`
  }
  if (isRecord(event.requestContext) && event.requestContext.elb !== undefined)
    return 'an Application Load Balancer request'
  if (event.version === '2.0' || 'httpMethod' in event)
    return 'an HTTP request event without a method, a path or a request context, or with a body that is not text'
  return Object.keys(event).length === 0 ? 'an empty object' : 'an object of no known shape'
}

/** A source or type name as AWS spells them (aws:sqs, aws.events, Scheduled Event); anything else is not shown. */
function nameOf(value: unknown): string | undefined {
  return typeof value === 'string' && /^[\w .:/-]{1,64}$/.test(value) ? value : undefined
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function hasTextBody(event: Record<string, unknown>): boolean {
  return event.body === undefined || event.body === null || typeof event.body === 'string'
}

/** Time left at the end of an invocation for the runtime to return its answer. */
const FLUSH_MARGIN_MS = 1_000

async function flushWithin(ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const giveUp = new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(0, ms))))
  try {
    await Promise.race([app.flushNotifications(), giveUp])
  } finally {
    clearTimeout(timer)
  }
}
