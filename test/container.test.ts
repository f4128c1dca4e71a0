import { spawn, spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, posix, resolve } from 'node:path'
import t from 'tap'
import { createAwsClients } from '../src/adapters/aws.ts'
import { ensureTables } from '../src/adapters/dynamodb/tables.ts'
import { resolveInstance } from '../src/adapters/identity-center.ts'
import { freePort } from '../src/sandbox/moto-server.ts'
import { DEMO_POLICY, seedDirectory } from '../src/sandbox/seed.ts'
import { PROD, TEST_DIRECTORY } from './helpers/app.ts'
import { expectFetchStatus } from './helpers/http-status.ts'
import { startMoto } from './helpers/moto.ts'
import { mintToken, TEST_AUDIENCE, TEST_ISSUER, TEST_SECRET } from './helpers/tokens.ts'

const ROOT = resolve(import.meta.dirname, '..')
t.setTimeout(120_000)

/**
 * There is no Docker engine here, so this test reads the Dockerfile and performs its instructions itself: the
 * build stage in a clean directory (its COPY from this checkout, its RUN commands), then the runtime stage's
 * files alone in another directory, started as its CMD with its ENV, probed with its HEALTHCHECK and stopped
 * as `docker stop` stops it. What it cannot reproduce: the base image (Node 24 here too) and the USER switch,
 * which it checks is there.
 */
interface Instruction {
  op: string
  args: string
}

function parseDockerfile(text: string): Instruction[][] {
  const lines = text
    .replace(/\\\n\s*/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'))
  const stages: Instruction[][] = []
  for (const line of lines) {
    const [, op = '', args = ''] = /^(\w+)\s+(.*)$/.exec(line) ?? []
    if (op === 'FROM') stages.push([])
    stages.at(-1)?.push({ op, args })
  }
  return stages
}

const dockerfile = parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'))
const [buildStage = [], runtimeStage = []] = dockerfile
const WORKDIR = '/app'
/**
 * `node` in RUN and CMD is this Node 24; npm may reuse its cache, as Docker reuses a cached layer. How this
 * machine reaches the registry (its CA bundle and proxy) is passed on, as a build on it would be given them.
 */
const NETWORK_SETTINGS = [
  'NODE_EXTRA_CA_CERTS',
  'HTTPS_PROXY',
  'https_proxy',
  'HTTP_PROXY',
  'http_proxy',
  'NO_PROXY',
  'no_proxy',
  'npm_config_cafile',
  'npm_config_registry',
]
const commandEnv = {
  PATH: `${dirname(process.execPath)}:${process.env.PATH}`,
  HOME: process.env.HOME,
  npm_config_prefer_offline: 'true',
  ...Object.fromEntries(NETWORK_SETTINGS.flatMap((name) => (process.env[name] ? [[name, process.env[name]]] : []))),
}

function inDir(dir: string, path: string) {
  return join(dir, posix.relative(WORKDIR, posix.resolve(WORKDIR, path)))
}

function copy(fromDir: string, toDir: string, args: string) {
  const paths = args.split(/\s+/).filter((arg) => !arg.startsWith('--'))
  const destination = paths.pop() as string
  for (const source of paths) {
    const from = fromDir === ROOT ? join(ROOT, source) : inDir(fromDir, source)
    const to = destination.endsWith('/')
      ? join(inDir(toDir, destination), posix.basename(source))
      : inDir(toDir, destination)
    mkdirSync(dirname(to), { recursive: true })
    cpSync(from, to, { recursive: true })
  }
}

t.test(
  'the Dockerfile builds from a clean checkout into an image that runs as a non-root user with no node_modules',
  async (t) => {
    t.match(buildStage[0]?.args, /^node:24(-slim)? AS build$/, 'built on Node 24')
    t.match(runtimeStage[0]?.args, /^node:24(-slim)?$/, 'runs on Node 24')
    t.ok(
      runtimeStage.some((i) => i.op === 'USER' && i.args !== 'root' && i.args !== '0'),
      'a non-root USER',
    )
    t.ok(
      runtimeStage.some((i) => i.op === 'HEALTHCHECK'),
      'a HEALTHCHECK',
    )
    t.same(JSON.parse(runtimeStage.find((i) => i.op === 'CMD')?.args ?? 'null'), ['node', 'dist/server.mjs'])
    t.notOk(
      runtimeStage.some((i) => i.op === 'RUN'),
      'nothing is installed into the runtime image',
    )
  },
)

t.test(
  'the image’s build steps produce a server that answers, passes its health check and stops cleanly on SIGTERM',
  async (t) => {
    // Build stage, in a clean directory.
    const build = mkdtempSync(join(tmpdir(), 'jit-image-build-'))
    t.teardown(() => rmSync(build, { recursive: true, force: true }))
    for (const { op, args } of buildStage) {
      if (op === 'COPY') copy(ROOT, build, args)
      if (op === 'RUN') {
        const run = spawnSync('sh', ['-c', args], { cwd: build, env: commandEnv, encoding: 'utf8' })
        t.equal(run.status, 0, `RUN ${args}${run.status ? `: ${run.stderr.slice(-800)}` : ''}`)
      }
    }

    // Runtime stage: only what it copies from the build stage, and its environment.
    const image = mkdtempSync(join(tmpdir(), 'jit-image-'))
    t.teardown(() => rmSync(image, { recursive: true, force: true }))
    const imageEnv: Record<string, string> = {}
    for (const { op, args } of runtimeStage) {
      if (op === 'COPY') copy(build, image, args)
      if (op === 'ENV') for (const [, name = '', value = ''] of args.matchAll(/(\w+)=(\S+)/g)) imageEnv[name] = value
    }
    t.same(readdirSync(image).sort(), ['dist'], 'the image holds the bundle and nothing else')
    t.notOk(existsSync(join(image, 'node_modules')))
    t.equal(imageEnv.NODE_ENV, 'production')

    // `docker run -e …` against moto, with a policy mounted into the container.
    const moto = await startMoto(t)
    const clients = createAwsClients({ region: 'us-east-1', endpoint: moto.endpoint })
    const instance = await resolveInstance(clients.ssoAdmin, {})
    await ensureTables(clients.dynamo, { grants: 'jit-access-grants', audit: 'jit-access-audit' })
    await seedDirectory(clients, instance, TEST_DIRECTORY)
    writeFileSync(join(image, 'policy.json'), JSON.stringify(DEMO_POLICY))
    const port = await freePort()
    const env = {
      PATH: commandEnv.PATH,
      ...imageEnv,
      HOST: '127.0.0.1',
      PORT: String(port),
      AWS_ENDPOINT_URL: moto.endpoint,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
      JIT_POLICY_FILE: inDir(image, `${WORKDIR}/policy.json`),
      JIT_JWT_SECRET: TEST_SECRET,
      JIT_CURSOR_KEY: 'c'.repeat(32),
      JIT_JWT_ISSUER: TEST_ISSUER,
      JIT_JWT_AUDIENCE: TEST_AUDIENCE,
    }
    const [command = '', ...commandArgs] = JSON.parse(
      runtimeStage.find((i) => i.op === 'CMD')?.args ?? '[]',
    ) as string[]

    // Settings and the policy are checked by the checks compiled into the bundle (infra/build.ts): a bad one of
    // each stops the start, naming what is wrong.
    writeFileSync(join(image, 'bad-policy.json'), JSON.stringify({ rules: [{ ...DEMO_POLICY.rules[0], admins: [] }] }))
    for (const [bad, said] of [
      [{ PORT: '-1' }, /PORT must be >= 0/],
      [{ JIT_POLICY_FILE: inDir(image, `${WORKDIR}/bad-policy.json`) }, /\/rules\/0\/admins is an unknown property/],
    ] as const) {
      const refused = spawnSync(command, commandArgs, {
        cwd: image,
        env: { ...env, ...bad },
        encoding: 'utf8',
        timeout: 20_000,
      })
      t.equal(refused.status, 1, `${JSON.stringify(bad)}: the start fails`)
      t.match(`${refused.stdout}${refused.stderr}`, said, 'naming what is wrong')
    }
    const server = spawn(command, commandArgs, { cwd: image, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    server.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
    server.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
    const exited = new Promise<number | null>((done) => server.on('exit', (code) => done(code)))
    t.teardown(() => server.kill('SIGKILL'))

    const base = `http://127.0.0.1:${port}`
    let health: Response | undefined
    for (let i = 0; i < 150 && !health; i++) {
      health = await fetch(`${base}/health`).catch(() => undefined)
      if (!health) await new Promise((r) => setTimeout(r, 100))
    }
    t.equal(health?.status, 200, `GET /health (${output.slice(-300)})`)

    const [, healthcheck = '[]'] =
      /CMD\s+(\[.*\])$/.exec(runtimeStage.find((i) => i.op === 'HEALTHCHECK')?.args ?? '') ?? []
    const [probe = '', ...probeArgs] = JSON.parse(healthcheck) as string[]
    t.equal(spawnSync(probe, probeArgs, { env, timeout: 3000 }).status, 0, 'the HEALTHCHECK command passes')

    const granted = await fetch(`${base}/grants`, {
      method: 'POST',
      headers: { authorization: `Bearer ${mintToken()}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        userName: 'alice',
        accountId: PROD,
        permissionSet: 'ReadOnlyAccess',
        durationMinutes: 30,
        ticketId: 'CHG0000042',
      }),
    })
    await expectFetchStatus(t, granted, 201, 'an authenticated POST /grants')
    t.match(await granted.json(), { status: 'active', userName: 'alice' })
    await expectFetchStatus(t, await fetch(`${base}/grants`), 401, 'and without a token, refused')
    await expectFetchStatus(
      t,
      await fetch(`${base}/docs/static/index.html`),
      200,
      'the docs page is served from the files beside the bundle',
    )

    server.kill('SIGTERM')
    t.equal(await exited, 0, 'SIGTERM ends it cleanly')
    t.match(output, /"signal":"SIGTERM".*"msg":"shutting down"/)
  },
)
