import { createServer } from 'node:net'

/** How often the sandbox looks whether the process that started it is still there. */
const PARENT_CHECK_MS = 500

/** How long stopping may take (in-flight requests, moto) before the process exits anyway. */
export const STOP_DEADLINE_MS = 15_000

export class PortInUseError extends Error {
  constructor(host: string, port: number) {
    super(
      `port ${port} on ${host} is already in use (another npm start?). Stop whatever listens there, or choose ` +
        `another port: PORT=${port === 65535 ? 3001 : port + 1} npm start`,
    )
    this.name = 'PortInUseError'
  }
}

/**
 * Fails at once when `host:port` cannot be listened on, so that `npm start` says so before it spends seconds
 * starting and seeding moto. (Something may still take the port in between; the service's own listen then fails.)
 */
export async function assertPortFree(host: string, port: number): Promise<void> {
  const probe = createServer()
  await new Promise<void>((resolve, reject) => {
    probe.once('error', (error: NodeJS.ErrnoException) =>
      reject(error.code === 'EADDRINUSE' ? new PortInUseError(host, port) : error),
    )
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve()))
  })
}

export type StopReason = 'SIGTERM' | 'SIGINT' | 'SIGHUP' | 'parent exited' | 'fatal error'

/**
 * Calls `stop` once, on the first of SIGTERM, SIGINT or SIGHUP, when the process that started this one is
 * gone (its parent id changes: the orphan was handed to init or a subreaper), or on an uncaught exception or
 * unhandled rejection (given as `error`), so that moto does not outlive a crash.
 *
 * Why both: `npm start` runs the script through `sh -c`, and a supervisor (systemd, a CI runner, a test) that
 * signals npm alone reaches only that shell, which dies without passing the signal on; the service and moto
 * would be left running. The script execs node, so npm's own forwarding of SIGTERM/SIGINT reaches this process;
 * and if npm itself is killed outright (SIGKILL, which it cannot forward), the parent check notices.
 *
 * Signals after the first are ignored: a Ctrl-C reaches this process twice (from the terminal, to the whole
 * process group, and again forwarded by npm), and a second must not cut the first's clean stop short.
 */
export function stopWhenAskedOrOrphaned(stop: (reason: StopReason, error?: unknown) => void): () => void {
  let stopped = false
  const once = (reason: StopReason, error?: unknown) => {
    if (stopped) return
    stopped = true
    stop(reason, error)
  }
  const signals = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const
  const handlers = [
    ...signals.map((signal) => [signal, () => once(signal)] as const),
    ...(['uncaughtException', 'unhandledRejection'] as const).map(
      (event) => [event, (error: unknown) => once('fatal error', error)] as const,
    ),
  ]
  for (const [signal, handler] of handlers) process.on(signal, handler)
  const parent = process.ppid
  const watch = setInterval(() => {
    if (process.ppid !== parent) once('parent exited')
  }, PARENT_CHECK_MS)
  watch.unref()
  return () => {
    clearInterval(watch)
    for (const [signal, handler] of handlers) process.off(signal, handler)
  }
}
