import { createServer } from 'node:net'

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
    probe.once('error', (error: NodeJS.ErrnoException) => reject(error.code === 'EADDRINUSE' ? new PortInUseError(host, port) : error))
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve()))
  })
}
