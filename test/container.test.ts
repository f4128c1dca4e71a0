import { spawn, spawnSync } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import t from 'tap'
import { freePort } from '../src/sandbox/moto-server.ts'
import { startMoto } from './helpers/moto.ts'
import { mintToken, TEST_AUDIENCE, TEST_ISSUER, TEST_SECRET } from './helpers/tokens.ts'

const ROOT = resolve(import.meta.dirname, '..')
t.setTimeout(180_000)

/**
 * There is no Docker engine here, so this performs the Dockerfile's steps by hand: the build stage in a clean
 * directory (package files, npm ci, sources, the build), then the runtime stage's files alone in another
 * directory (no node_modules), started as the image's CMD starts them.
 */
t.test('the image’s build steps produce a server that runs with no node_modules and shuts down cleanly', async (t) => {
  const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8')
  t.match(dockerfile, /^FROM node:24-slim AS build/m)
  t.match(dockerfile, /^USER node$/m, 'runs as a non-root user')
  t.match(dockerfile, /^HEALTHCHECK /m)
  t.match(dockerfile, /^CMD \["node", "--enable-source-maps", "dist\/server.mjs"\]$/m)

  const build = mkdtempSync(join(tmpdir(), 'jit-image-build-'))
  t.teardown(() => rmSync(build, { recursive: true, force: true }))
  for (const file of ['package.json', 'package-lock.json']) cpSync(join(ROOT, file), join(build, file))
  const install = spawnSync('npm', ['ci', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'], { cwd: build, encoding: 'utf8' })
  t.equal(install.status, 0, `npm ci: ${install.stderr.slice(-500)}`)
  cpSync(join(ROOT, 'src'), join(build, 'src'), { recursive: true })
  mkdirSync(join(build, 'infra'))
  cpSync(join(ROOT, 'infra', 'build.ts'), join(build, 'infra', 'build.ts'))
  const bundle = spawnSync(process.execPath, ['infra/build.ts', '--no-measure'], { cwd: build, encoding: 'utf8' })
  t.equal(bundle.status, 0, `build: ${bundle.stderr.slice(-500)}`)

  const image = mkdtempSync(join(tmpdir(), 'jit-image-'))
  t.teardown(() => rmSync(image, { recursive: true, force: true }))
  mkdirSync(join(image, 'dist'))
  for (const file of ['server.mjs', 'server.mjs.map']) cpSync(join(build, 'dist', file), join(image, 'dist', file))
  cpSync(join(build, 'dist', 'static'), join(image, 'dist', 'static'), { recursive: true })
  writeFileSync(join(image, 'policy.json'), JSON.stringify({ rules: [{ name: 'r', users: ['alice'], accounts: ['*'], permissionSets: ['*'], maxDurationMinutes: 60 }] }))

  const moto = await startMoto(t)
  const port = await freePort()
  const server = spawn(process.execPath, ['--enable-source-maps', 'dist/server.mjs'], {
    cwd: image,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env.PATH,
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      PORT: String(port),
      AWS_ENDPOINT_URL: moto.endpoint,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
      JIT_POLICY_FILE: 'policy.json',
      JIT_JWT_SECRET: TEST_SECRET,
      JIT_JWT_ISSUER: TEST_ISSUER,
      JIT_JWT_AUDIENCE: TEST_AUDIENCE,
    },
  })
  let output = ''
  server.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
  server.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
  const exited = new Promise<number | null>((done) => server.on('exit', (code) => done(code)))
  t.teardown(() => server.kill('SIGKILL'))

  const base = `http://127.0.0.1:${port}`
  let health: Response | undefined
  for (let i = 0; i < 100 && !health; i++) {
    health = await fetch(`${base}/health`).catch(() => undefined)
    if (!health) await new Promise((r) => setTimeout(r, 100))
  }
  t.equal(health?.status, 200, `health answers (${output.slice(-300)})`)
  const unauthenticated = await fetch(`${base}/grants`)
  t.equal(unauthenticated.status, 401)
  const docs = await fetch(`${base}/docs/static/index.html`)
  t.equal(docs.status, 200, 'the docs page is served from the bundle’s own files')

  server.kill('SIGTERM')
  t.equal(await exited, 0, 'SIGTERM ends it cleanly')
  t.match(output, /shutting down/)
})
