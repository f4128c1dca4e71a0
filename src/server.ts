import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import closeWithGrace from 'close-with-grace'
import { pino } from 'pino'
import { createAwsAdapters, createAwsClients, resolveJwtSecret } from './adapters/aws.ts'
import { buildApp } from './app.ts'
import { loadConfig, type Config } from './config.ts'
import { systemClock } from './core/clock.ts'

/** Builds the service on real AWS adapters from a validated configuration; the container and the Lambda share it. */
export async function createService(config: Config) {
  const bootLog = pino({ level: config.logLevel })
  const clients = createAwsClients(config)
  const adapters = await createAwsAdapters(config, bootLog, clients)
  const jwt = { ...config.jwt, secret: await resolveJwtSecret(config, clients.secrets) }
  return buildApp({
    ...adapters,
    clock: systemClock,
    policy: config.policy,
    jwt,
    docsAssetsDir: bundledDocsAssets(),
    maxDurationMinutes: config.maxDurationMinutes,
    sweepBudgetMs: config.sweepBudgetMs,
    logger: { level: config.logLevel },
  })
}

/** When this module runs from the bundle, the docs page's files were copied beside it (infra/build.ts). */
function bundledDocsAssets(): string | undefined {
  const dir = join(dirname(fileURLToPath(import.meta.url)), 'static')
  return existsSync(join(dir, 'index.html')) ? dir : undefined
}

/** Listens, and on SIGTERM/SIGINT stops taking requests, lets in-flight ones finish, then exits. */
export async function serve(config: Config, onClose: () => Promise<void> = async () => {}) {
  const app = await createService(config)
  closeWithGrace({ delay: 10_000 }, async ({ signal, err }) => {
    if (err) app.log.error({ err }, 'shutting down after an error')
    else app.log.info({ signal }, 'shutting down')
    await app.close()
    await onClose()
  })
  await app.listen({ port: config.port, host: config.host })
  return app
}

const isEntryPoint = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href
if (isEntryPoint) {
  try {
    await serve(loadConfig())
  } catch (error) {
    console.error((error as Error).message)
    process.exit(1)
  }
}
