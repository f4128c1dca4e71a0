import { pathToFileURL } from 'node:url'
import closeWithGrace from 'close-with-grace'
import { type Config, loadConfig } from './config.ts'
import { createService } from './service.ts'

/**
 * Grants due within this are acted on by in-process timers at their second: a minute between sweeps (the
 * scheduler's POST /revocations), and half a minute for a late or slow run. Anything later is armed by a sweep.
 */
export const DUE_TIMER_HORIZON_MS = 90_000

/** How long in-flight requests may take to finish after SIGTERM before the process exits anyway. */
const SHUTDOWN_GRACE_MS = 10_000

export interface ServeOptions {
  /** Called after the app has closed on a signal or a fatal error. */
  onClose?: () => Promise<void>
  /** Stop on SIGTERM/SIGINT and fatal errors (close-with-grace); false for a caller that stops the app itself. Default true. */
  handleSignals?: boolean
}

/** Listens, and on SIGTERM/SIGINT stops taking requests, lets in-flight ones finish, then exits. */
export async function serve(config: Config, options: ServeOptions = {}) {
  const { onClose = async () => {}, handleSignals = true } = options
  const app = await createService(config, { dueTimerHorizonMs: DUE_TIMER_HORIZON_MS })
  if (handleSignals) {
    closeWithGrace({ delay: SHUTDOWN_GRACE_MS }, async ({ signal, err }) => {
      if (err) app.log.error({ err }, 'shutting down after an error')
      else app.log.info({ signal }, 'shutting down')
      await app.close()
      await onClose()
    })
  }
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
