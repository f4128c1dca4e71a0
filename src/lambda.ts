/**
 * AWS Lambda entry: the same Fastify app behind API Gateway (HTTP API payload v2, REST API v1) or a function
 * URL, and the revocation sweep when EventBridge's one-minute schedule invokes the function directly (never
 * through an unauthenticated route). Configuration, AWS clients and the app are built once per execution
 * environment, at module load, so that no request pays for them.
 */
import awsLambdaFastify from '@fastify/aws-lambda'
import { loadConfig } from './config.ts'
import { SCHEDULER_ACTOR } from './core/audit.ts'
import { createService } from './service.ts'

/** Time kept back from the sweep so that it can record its last results and report before Lambda stops it. */
const SWEEP_SAFETY_MARGIN_MS = 5_000

export interface ScheduledEvent {
  source: 'aws.events'
  'detail-type': 'Scheduled Event'
  /** The ARN of the rule that fired. */
  resources?: string[]
}

export interface LambdaContext {
  getRemainingTimeInMillis(): number
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

export function isScheduledEvent(event: unknown): event is ScheduledEvent {
  const candidate = event as Partial<ScheduledEvent> | null
  return candidate?.source === 'aws.events' && candidate['detail-type'] === 'Scheduled Event'
}

export async function handler(event: unknown, context: LambdaContext) {
  try {
    if (isScheduledEvent(event)) {
      return await app.runSweep({
        actor: SCHEDULER_ACTOR,
        triggeredBy: event.resources?.[0] ?? 'eventbridge',
        deadline: new Date(Date.now() + context.getRemainingTimeInMillis() - SWEEP_SAFETY_MARGIN_MS),
      })
    }
    return await proxy(event as Parameters<typeof proxy>[0], context as Parameters<typeof proxy>[1])
  } finally {
    // Lambda freezes the environment once the handler returns: a message still on its way would wait for the
    // next invocation, or be lost with the environment. So here, unlike in the container, the answer waits,
    // though never into a timeout (an SNS outage must not fail the sweep that already recorded its work).
    await flushWithin(context.getRemainingTimeInMillis() - FLUSH_MARGIN_MS)
  }
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
