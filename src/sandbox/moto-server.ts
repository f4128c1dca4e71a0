import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { basename, delimiter, join } from 'node:path'

export interface MotoServer {
  endpoint: string
  port: number
  stop(): Promise<void>
}

/** A project-local Python environment that `npm start` creates when the machine has no moto_server. */
export const LOCAL_VENV = '.sandbox/venv'

/**
 * The sandbox's moto_server: moto with the Identity Store's group memberships as AWS keeps them
 * (identity_store_memberships.py, which the tests' strict moto loads too): stock moto lacks GetGroupMembershipId,
 * which the service looks memberships up with. Run with a Python that has moto (findMotoPython).
 */
export const SANDBOX_MOTO_SCRIPT = join(import.meta.dirname, 'moto_server.py')

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

/**
 * The Python interpreters that may have moto, most likely first, for running a script that changes moto
 * before it starts its server: the project-local environment's, the one moto_server on PATH was installed
 * for (pip writes its absolute path into the script), then python3 and python.
 */
export function motoPythonCandidates(projectRoot: string): string[] {
  const local = join(projectRoot, LOCAL_VENV, 'bin', 'python')
  const onPath = (process.env.PATH ?? '')
    .split(delimiter)
    .filter(Boolean)
    .map((dir) => join(dir, 'moto_server'))
    .find((file) => existsSync(file))
  const installedFor = onPath ? interpreterOf(onPath) : undefined
  return [
    ...new Set([...(existsSync(local) ? [local] : []), ...(installedFor ? [installedFor] : []), 'python3', 'python']),
  ]
}

/**
 * What the launchers (moto_server.py, the tests' strict_moto.py) need of a Python: moto 5 with its server extras
 * (`moto[server]`: moto.server, flask, flask_cors). A plain `pip install moto` has moto without them, and a
 * launcher run with it dies on its first import. Not moto 6 or later either: the launchers patch moto 5's
 * internals, and npm start installs `moto[server]>=5,<6` for that reason. Prints why it refuses, exits 1.
 */
const MOTO_PROBE = `
import sys
try:
    import moto, moto.server, flask, flask_cors
except Exception as error:
    print("%s: %s" % (type(error).__name__, error))
    sys.exit(1)
version = getattr(moto, "__version__", "0")
try:
    major = int(version.split(".")[0])
except ValueError:
    major = 0
if major < 5:
    print("moto %s is older than 5" % version)
    sys.exit(1)
if major > 5:
    print("moto %s is newer than 5: the launchers patch moto 5's internals" % version)
    sys.exit(1)
`

/** A Python that motoPythonCandidates offered and the probe refused, and why. */
export interface RefusedPython {
  python: string
  reason: string
}

/**
 * The first of motoPythonCandidates with moto 5 and its server extras (MOTO_PROBE); `refused` hears of each
 * candidate that has Python but not what the launchers need, so that a caller can say why it installs moto.
 */
export function findMotoPython(projectRoot: string, refused?: (candidate: RefusedPython) => void): string | undefined {
  return motoPythonCandidates(projectRoot).find((python) => {
    const probe = spawnSync(python, ['-c', MOTO_PROBE], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
    if (probe.status === 0) return true
    if (!probe.error) {
      const said = probe.stdout.trim() || probe.stderr.trim().split('\n').pop()
      refused?.({ python, reason: said || `exit status ${probe.status}` })
    }
    return false
  })
}

/**
 * A console script's Python: its `#!` line, or pip's `'''exec' "python"` line for paths a `#!` cannot hold.
 * Not a shim's shell (pyenv's moto_server is a bash script; its python3 resolves to the same Python).
 */
function interpreterOf(script: string): string | undefined {
  let head: string
  try {
    head = readFileSync(script, 'utf8').slice(0, 1024)
  } catch {
    return undefined
  }
  const exec = /^'''exec' (?:"([^"]+)"|(\S+))/m.exec(head)
  const shebang = /^#!\s*(\S+)(?:[ \t]+(\S+))?/.exec(head)
  const interpreter = exec
    ? (exec[1] ?? exec[2])
    : shebang && basename(shebang[1] as string) === 'env'
      ? shebang[2]
      : shebang?.[1]
  return interpreter && basename(interpreter).startsWith('python') ? interpreter : undefined
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      )
    })
  })
}

/**
 * Starts moto's HTTP server on a free loopback port and waits until it answers. `leadingArgs` come before
 * moto's own (a script for a Python interpreter given as the command).
 */
export async function startMotoServer(
  command = 'moto_server',
  timeoutMs = 30_000,
  leadingArgs: string[] = [],
): Promise<MotoServer> {
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
    if (attempt === 2)
      throw new MotoUnavailableError(`moto_server did not start on port ${port}: ${stderr.trim().slice(-500)}`)
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
