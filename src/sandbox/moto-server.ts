import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'

export interface MotoServer {
  endpoint: string
  port: number
  stop(): Promise<void>
}

/** A project-local Python environment that `npm start` creates when the machine has no moto_server. */
export const LOCAL_VENV = '.sandbox/venv'

export class MotoUnavailableError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'MotoUnavailableError'
  }
}

/** The moto_server to run: on PATH, or in the project-local environment. */
export function findMotoServer(projectRoot: string): string | undefined {
  const local = join(projectRoot, LOCAL_VENV, 'bin', 'moto_server')
  if (existsSync(local)) return local
  const found = spawnSync('moto_server', ['--help'], { stdio: 'ignore' })
  return found.error ? undefined : 'moto_server'
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))))
    })
  })
}

/**
 * Starts moto's HTTP server on a free loopback port and waits until it answers. `leadingArgs` come before
 * moto's own (a script for a Python interpreter given as the command).
 */
export async function startMotoServer(command = 'moto_server', timeoutMs = 30_000, leadingArgs: string[] = []): Promise<MotoServer> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort()
    const child = spawn(command, [...leadingArgs, '-H', '127.0.0.1', '-p', String(port)], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing' },
    })
    let stderr = ''
    child.stderr?.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)))
    const endpoint = `http://127.0.0.1:${port}`
    if (await waitUntilAnswering(endpoint, child, timeoutMs)) {
      return { endpoint, port, stop: () => stopProcess(child) }
    }
    await stopProcess(child)
    if (attempt === 2) throw new MotoUnavailableError(`moto_server did not start on port ${port}: ${stderr.trim().slice(-500)}`)
  }
  throw new MotoUnavailableError('moto_server did not start')
}

async function waitUntilAnswering(endpoint: string, child: ChildProcess, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (child.exitCode !== null) return false
    try {
      const response = await fetch(`${endpoint}/moto-api/data.json`)
      if (response.ok) return true
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return false
}

function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000)
    child.once('exit', () => {
      clearTimeout(timer)
      resolve()
    })
    child.kill('SIGTERM')
  })
}
