import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import t from 'tap'
import { PortInUseError } from '../src/sandbox/lifetime.ts'
import { freePort } from '../src/sandbox/moto-server.ts'
import { DEMO_POLICY } from '../src/sandbox/seed.ts'
import { startSandbox } from '../src/sandbox.ts'

const ROOT = resolve(import.meta.dirname, '..')

/** Every live process below `root` (not zombies), from /proc: pid → command line. */
function descendants(root: number): Map<number, string> {
  const children = new Map<number, number[]>()
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      if (state === 'Z') continue
      const list = children.get(Number(ppid)) ?? []
      list.push(Number(entry))
      children.set(Number(ppid), list)
    } catch {
      // gone meanwhile
    }
  }
  const found = new Map<number, string>()
  const visit = (pid: number) => {
    for (const child of children.get(pid) ?? []) {
      found.set(child, commandLine(child))
      visit(child)
    }
  }
  visit(root)
  return found
}

function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim()
  } catch {
    return ''
  }
}

/** Whether `pid` is a running process (not a zombie waiting for its parent). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.charAt(stat.lastIndexOf(')') + 2) !== 'Z'
  } catch {
    return false
  }
}

t.test(
  'SIGTERM to the npm start process alone stops the service and moto with it',
  { skip: existsSync('/proc') ? false : 'needs /proc' },
  async (t) => {
    const port = await freePort()
    const policyDir = mkdtempSync(join(tmpdir(), 'jit-lifetime-'))
    t.teardown(() => rmSync(policyDir, { recursive: true, force: true }))
    writeFileSync(join(policyDir, 'policy.json'), JSON.stringify(DEMO_POLICY))
    // Its own process group, as a supervisor's child: nothing but the one signal below reaches it.
    const npm = spawn('npm', ['start'], {
      cwd: ROOT,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        PORT: String(port),
        LOG_LEVEL: 'warn',
        AWS_ENDPOINT_URL: '',
        JIT_POLICY_FILE: join(policyDir, 'policy.json'),
      },
    })
    let output = ''
    npm.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
    npm.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
    const exited = new Promise<number | null>((done) => npm.once('exit', (code) => done(code)))
    const started = new Map<number, string>()
    t.teardown(() => {
      // Whatever the test failed to stop: only the processes this test started.
      for (const [pid, command] of [[npm.pid as number, 'npm'] as const, ...started]) {
        if (alive(pid) && commandLine(pid).includes(command)) process.kill(pid, 'SIGKILL')
      }
    })

    const deadline = Date.now() + 60_000
    while (!output.includes('sandbox is up') && npm.exitCode === null && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100))
    t.match(output, 'sandbox is up', output)
    t.match(output, `http://127.0.0.1:${port}`, 'it listens on the PORT it was given')
    for (const [pid, command] of descendants(npm.pid as number)) started.set(pid, command)
    const service = [...started].filter(([, command]) => command.includes('src/sandbox.ts'))
    const moto = [...started].filter(([, command]) => command.includes('moto_server'))
    t.equal(service.length, 1, `the service runs under npm: ${JSON.stringify([...started])}`)
    t.ok(moto.length >= 1, `moto runs under it: ${JSON.stringify([...started])}`)

    process.kill(npm.pid as number, 'SIGTERM')
    t.equal(await exited, 0, `npm start exits cleanly once everything has stopped: ${output}`)
    const gone = Date.now() + 5_000
    while ([...started.keys()].some(alive) && Date.now() < gone) await new Promise((r) => setTimeout(r, 100))
    t.same(
      [...started].filter(([pid]) => alive(pid)),
      [],
      'no process npm start started is left running',
    )
    t.equal(
      (await fetch(`http://127.0.0.1:${port}/health`).catch(() => undefined))?.status,
      undefined,
      'nothing answers on the port',
    )
  },
)

t.test('a port in use stops npm start at once, naming the port, before moto is started', async (t) => {
  const taken = createServer()
  await new Promise<void>((listening) => taken.listen(0, '127.0.0.1', listening))
  t.teardown(() => taken.close())
  const port = (taken.address() as { port: number }).port

  const began = Date.now()
  const error = await startSandbox({
    env: { PORT: String(port), LOG_LEVEL: 'silent', PATH: process.env.PATH ?? '' },
    print: () => {},
  }).catch((e: unknown) => e)
  t.type(error, PortInUseError)
  t.match((error as Error).message, `port ${port} on 127.0.0.1 is already in use`)
  t.match((error as Error).message, `PORT=${port + 1} npm start`, 'it says how to choose another')
  t.ok(
    Date.now() - began < 1000,
    `it fails within a second (took ${Date.now() - began} ms), not after moto has started and been seeded`,
  )
})
