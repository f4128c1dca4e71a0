import { createServer } from 'node:net'
import t from 'tap'
import { startSandbox } from '../src/sandbox.ts'
import { PortInUseError } from '../src/sandbox/lifetime.ts'

t.test('a port in use stops npm start at once, naming the port, before moto is started', async (t) => {
  const taken = createServer()
  await new Promise<void>((listening) => taken.listen(0, '127.0.0.1', listening))
  t.teardown(() => taken.close())
  const port = (taken.address() as { port: number }).port

  const began = Date.now()
  const error = await startSandbox({ env: { PORT: String(port), LOG_LEVEL: 'silent', PATH: process.env.PATH ?? '' }, print: () => {} }).catch((e: unknown) => e)
  t.type(error, PortInUseError)
  t.match((error as Error).message, `port ${port} on 127.0.0.1 is already in use`)
  t.match((error as Error).message, `PORT=${port + 1} npm start`, 'it says how to choose another')
  t.ok(Date.now() - began < 1000, `it fails within a second (took ${Date.now() - began} ms), not after moto has started and been seeded`)
})
