import { join, resolve } from 'node:path'
import {
  findMotoPython,
  type MotoServer,
  MotoUnavailableError,
  motoPythonCandidates,
  startMotoServer,
} from '../../src/sandbox/moto-server.ts'

// The SDK needs credentials to sign requests; moto accepts any.
process.env.AWS_ACCESS_KEY_ID ??= 'testing'
process.env.AWS_SECRET_ACCESS_KEY ??= 'testing'

const PROJECT_ROOT = resolve(import.meta.dirname, '..', '..')
export const STRICT_MOTO_SCRIPT = join(import.meta.dirname, 'strict_moto.py')

/** One moto_server per test file, on a free loopback port; each test resets it through build(). */
export async function startMoto(t: { teardown(fn: () => unknown): void }): Promise<MotoServer> {
  const moto = await startStrictMoto()
  t.teardown(() => moto.stop())
  return moto
}

/**
 * moto_server as strict as DynamoDB about transactions and conditional writes (see strict_moto.py): on stock
 * moto, concurrent writers can both pass one condition and a cancelled transaction can undo others' writes,
 * so a concurrency test would test moto. Never falls back to stock moto, which would let such tests pass.
 */
export async function startStrictMoto(): Promise<MotoServer> {
  const python = findMotoPython(PROJECT_ROOT)
  if (!python) {
    throw new MotoUnavailableError(
      `The tests run moto through ${STRICT_MOTO_SCRIPT}, which needs a Python with moto 5: none of ` +
        `${motoPythonCandidates(PROJECT_ROOT).join(', ')} has moto 5 with its server extras (moto.server, flask, flask_cors). Install them with 'pip install "moto[server]>=5,<6"'.`,
    )
  }
  try {
    return await startMotoServer(python, 30_000, [STRICT_MOTO_SCRIPT])
  } catch (error) {
    throw new MotoUnavailableError(
      `${python} ${STRICT_MOTO_SCRIPT} (moto with serialized DynamoDB) did not start: ${(error as Error).message}`,
    )
  }
}

export async function resetMoto(endpoint: string): Promise<void> {
  const response = await fetch(`${endpoint}/moto-api/reset`, { method: 'POST' })
  if (!response.ok) throw new Error(`moto reset failed: ${response.status}`)
}
