import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { pino } from 'pino'
import { createAwsAdapters, createAwsClients, resolveCursorKey, resolveJwtSecret } from './adapters/aws.ts'
import { buildApp } from './app.ts'
import type { Config } from './config.ts'
import { systemClock } from './core/clock.ts'
import { resolvePolicy } from './core/policy.ts'

/**
 * The service on real AWS adapters from a validated configuration: what the container (server.ts) and the
 * Lambda (lambda.ts) both run. Clients are created here, once per process (or Lambda execution environment).
 */
export async function createService(config: Config) {
  const bootLog = pino({ level: config.logLevel })
  const clients = createAwsClients(config)
  // Side by side: each is a Secrets Manager call in a Lambda's cold start.
  const [cursorKey, jwtSecret] = await Promise.all([resolveCursorKey(config, clients.secrets), resolveJwtSecret(config, clients.secrets)])
  const adapters = await createAwsAdapters({ ...config, cursorKey }, bootLog, clients)
  const jwt = { ...config.jwt, secret: jwtSecret }
  // A group the directory does not have stops the start (fail closed), except in the sandbox, whose directory
  // may not be seeded (an AWS_ENDPOINT_URL of one's own).
  const policy = await resolvePolicy(config.policy, (name) => adapters.directory.groupIdOf(name), config.sandbox ? { warnMissing: (message) => bootLog.warn(message) } : {})
  return buildApp({
    ...adapters,
    clock: systemClock,
    policy,
    jwt,
    docsAssetsDir: bundledDocsAssets(),
    maxDurationMinutes: config.maxDurationMinutes,
    maxLeadDays: config.maxLeadDays,
    sweepBudgetMs: config.sweepBudgetMs,
    requestDeadlineMs: config.requestDeadlineMs,
    // Another request's change takes its wait for Identity Center plus a call or two.
    leaseWaitMs: config.provisioningWaitMs + 1000,
    logger: { level: config.logLevel },
  })
}

/**
 * A bundle cannot serve the docs page's files from @fastify/swagger-ui's package directory (there is none):
 * infra/build.ts copies them beside the bundle, and this finds them there.
 */
function bundledDocsAssets(): string | undefined {
  const dir = join(dirname(fileURLToPath(import.meta.url)), 'static')
  return existsSync(join(dir, 'index.html')) ? dir : undefined
}
