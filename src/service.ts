import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { pino } from 'pino'
import {
  createAwsAdapters,
  createAwsClients,
  resolveCursorKey,
  resolveJwtSecret,
  resolveSecret,
} from './adapters/aws.ts'
import { ServiceNowApprovals, ServiceNowClient, ServiceNowWorkNotes } from './adapters/servicenow.ts'
import { buildApp } from './app.ts'
import type { Config, ServiceNowConfig } from './config.ts'
import { systemClock } from './core/clock.ts'
import { resolvePolicy } from './core/policy.ts'

/**
 * The service on real AWS adapters from a validated configuration: what the container (server.ts) and the
 * Lambda (lambda.ts) both run. Clients are created here, once per process (or Lambda execution environment).
 */
export interface ServiceOptions {
  /** Arm in-process timers for grants due within this many ms (the container); unset, only the sweep acts (Lambda). */
  dueTimerHorizonMs?: number
}

export async function createService(config: Config, options: ServiceOptions = {}) {
  const bootLog = pino({ level: config.logLevel })
  const clients = createAwsClients(config)
  // Side by side: each is a Secrets Manager call in a Lambda's cold start.
  const [cursorKey, jwtSecret, serviceNowSecret] = await Promise.all([
    resolveCursorKey(config, clients.secrets),
    resolveJwtSecret(config, clients.secrets),
    config.serviceNow
      ? resolveSecret(
          'JIT_SERVICENOW_SECRET_ARN',
          config.serviceNow.secretArn,
          config.serviceNow.secret,
          clients.secrets,
          1,
        )
      : undefined,
  ])
  const adapters = await createAwsAdapters(
    { ...config, cursorKey, dueQueueUrl: config.dueQueue?.url },
    bootLog,
    clients,
  )
  const serviceNow = config.serviceNow && serviceNowAdapters(config.serviceNow, serviceNowSecret as string)
  const jwt = { ...config.jwt, secret: jwtSecret }
  // A group the directory does not have stops the start (fail closed), except in the sandbox, whose directory
  // may not be seeded (an AWS_ENDPOINT_URL of one's own).
  const policy = await resolvePolicy(
    config.policy,
    (name) => adapters.directory.groupIdOf(name),
    config.sandbox ? { warnMissing: (message) => bootLog.warn(message) } : {},
  )
  return buildApp({
    ...adapters,
    clock: systemClock,
    policy,
    jwt,
    docsAssetsDir: bundledDocsAssets(),
    maxDurationMinutes: config.maxDurationMinutes,
    maxLeadDays: config.maxLeadDays,
    messageChannels: [...(adapters.messageChannels ?? []), ...(serviceNow ? [serviceNow.workNotes] : [])],
    ticketApproval: serviceNow?.approvals,
    outboxGiveUpMs: config.outboxGiveUpMs,
    sweepBudgetMs: config.sweepBudgetMs,
    dueTimers: options.dueTimerHorizonMs ? { horizonMs: options.dueTimerHorizonMs } : undefined,
    requestDeadlineMs: config.requestDeadlineMs,
    // Another request's change takes its wait for Identity Center plus a call or two.
    leaseWaitMs: config.provisioningWaitMs + 1000,
    logger: { level: config.logLevel },
  })
}

/** Work notes always, approval verification when asked for: one client, one sign-in, shared. */
export function serviceNowAdapters(config: ServiceNowConfig, secret: string) {
  const client = new ServiceNowClient({
    url: config.url,
    credentials:
      config.identity.kind === 'oauth'
        ? { kind: 'oauth', clientId: config.identity.clientId, clientSecret: secret }
        : { kind: 'basic', username: config.identity.username, password: secret },
    tables: config.tables,
  })
  return {
    workNotes: new ServiceNowWorkNotes(client),
    approvals: config.verify ? new ServiceNowApprovals(client, config.verify) : undefined,
  }
}

/**
 * A bundle cannot serve the docs page's files from @fastify/swagger-ui's package directory (there is none):
 * infra/build.ts copies them beside the bundle, and this finds them there.
 */
function bundledDocsAssets(): string | undefined {
  const dir = join(dirname(fileURLToPath(import.meta.url)), 'static')
  return existsSync(join(dir, 'index.html')) ? dir : undefined
}
