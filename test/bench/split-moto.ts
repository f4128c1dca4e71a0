import { spawn } from 'node:child_process'
import { resolve } from 'node:path'
import { findMotoPython, type MotoServer, startMotoServer } from '../../src/sandbox/moto-server.ts'
import { motoPidOn } from './cpu.ts'

const BENCH = import.meta.dirname

/**
 * The API section's moto: DynamoDB on one moto_server, every other service on another, as AWS serves each service
 * at its own endpoint. The counting proxy of test/helpers/app.ts sends each request to its server (`services`);
 * `endpoint` (moto-router.ts, a process of its own) routes the rest, e.g. the setup's calls and moto's reset. Both
 * run test/bench/bench_moto.py, the tests' strict moto with its routing remembered: every DynamoDB request still
 * waits for the one lock of its server, as strictly as in the tests. One moto_server is one Python process, which runs one thread at a time: under the
 * POST load every Identity Center, Identity Store and SNS call waited for DynamoDB's Python work and the other way
 * round, which AWS's separate services never do.
 */
export async function startSplitMoto(): Promise<
  MotoServer & {
    services: { dynamodb: string; others: string }
    processes: Record<'router' | 'dynamodb' | 'others', number | undefined>
  }
> {
  const python = findMotoPython(resolve(BENCH, '..', '..')) ?? 'python3'
  const script = [resolve(BENCH, 'bench_moto.py')]
  // Both started, or neither left running: a moto whose sibling failed to start would outlive the bench.
  const started = await Promise.allSettled([
    startMotoServer(python, 30_000, script),
    startMotoServer(python, 30_000, script),
  ])
  const [dynamodb, others] = started.map((result) => (result.status === 'fulfilled' ? result.value : undefined))
  if (!dynamodb || !others) {
    await Promise.all([dynamodb?.stop(), others?.stop()])
    throw started.find((result) => result.status === 'rejected')?.reason
  }
  const router = spawn(
    process.execPath,
    [resolve(BENCH, 'moto-router.ts'), String(dynamodb.port), String(others.port)],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  )
  const stop = async () => {
    if (router.exitCode === null && router.signalCode === null) {
      const exited = new Promise((done) => router.once('exit', done))
      router.kill('SIGTERM')
      await exited
    }
    await Promise.all([dynamodb.stop(), others.stop()])
  }
  try {
    const port = await new Promise<number>((done, fail) => {
      const silent = setTimeout(() => fail(new Error('moto-router did not say its port within 10 s')), 10_000)
      router.stdout?.once('data', (chunk: Buffer) => {
        clearTimeout(silent)
        done(Number(chunk.toString().trim()))
      })
      router.once('exit', (code, signal) => {
        clearTimeout(silent)
        fail(new Error(`moto-router exited (${signal ?? `status ${code}`})`))
      })
    })
    return {
      endpoint: `http://127.0.0.1:${port}`,
      port,
      services: { dynamodb: dynamodb.endpoint, others: others.endpoint },
      stop,
      processes: {
        router: router.pid,
        dynamodb: motoPidOn(dynamodb.port),
        others: motoPidOn(others.port),
      },
    }
  } catch (error) {
    await stop()
    throw error
  }
}
