import { startMotoServer, type MotoServer } from '../../src/sandbox/moto-server.ts'

// The SDK needs credentials to sign requests; moto accepts any.
process.env.AWS_ACCESS_KEY_ID ??= 'testing'
process.env.AWS_SECRET_ACCESS_KEY ??= 'testing'

/** One moto_server per test file, on a free loopback port; each test resets it through build(). */
export async function startMoto(t: { teardown(fn: () => unknown): void }): Promise<MotoServer> {
  const moto = await startMotoServer()
  t.teardown(() => moto.stop())
  return moto
}

export async function resetMoto(endpoint: string): Promise<void> {
  const response = await fetch(`${endpoint}/moto-api/reset`, { method: 'POST' })
  if (!response.ok) throw new Error(`moto reset failed: ${response.status}`)
}
