/**
 * `npm run build`: dist/lambda.mjs (the Lambda handler) and dist/server.mjs (the container's entry), each one
 * minified ESM bundle with a source map, plus the docs page's static files in dist/static. Prints the bundle
 * sizes and the module import + app init time on this Node, against the size and time goals.
 */
import { execFileSync } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build, type BuildOptions } from 'esbuild'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
export const DIST = join(ROOT, 'dist')
const SIZE_GOAL_BYTES = 1.5 * 1024 * 1024
/**
 * The Lambda runtime (nodejs24.x) ships AWS SDK v3; measured with --compare-sdk, leaving it out of the bundle
 * makes the bundle 0.66× the size and import + init 0.64× the time. The container bundles everything instead,
 * so its image needs no node_modules at all.
 */
const RUNTIME_PROVIDED = ['@aws-sdk/*', '@smithy/*']
const INIT_GOAL_MS = 200

/** CommonJS dependencies inside an ESM bundle still need require, __filename and __dirname. */
const BANNER = [
  "import { createRequire as __jitCreateRequire } from 'node:module';",
  "import { fileURLToPath as __jitFileURLToPath } from 'node:url';",
  "import { dirname as __jitDirname } from 'node:path';",
  'const require = __jitCreateRequire(import.meta.url);',
  'const __filename = __jitFileURLToPath(import.meta.url);',
  'const __dirname = __jitDirname(__filename);',
].join('\n')

function options(entry: string, outfile: string, external: string[] = []): BuildOptions {
  return {
    entryPoints: [join(ROOT, 'src', entry)],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node24',
    format: 'esm',
    minify: true,
    sourcemap: true,
    legalComments: 'none',
    banner: { js: BANNER },
    external,
    logLevel: 'warning',
  }
}

export async function buildAll(outDir = DIST): Promise<{ lambdaBytes: number; serverBytes: number }> {
  rmSync(outDir, { recursive: true, force: true })
  mkdirSync(outDir, { recursive: true })
  await build(options('lambda.ts', join(outDir, 'lambda.mjs'), RUNTIME_PROVIDED))
  await build(options('server.ts', join(outDir, 'server.mjs')))
  cpSync(join(ROOT, 'node_modules', '@fastify', 'swagger-ui', 'static'), join(outDir, 'static'), { recursive: true })
  return { lambdaBytes: statSync(join(outDir, 'lambda.mjs')).size, serverBytes: statSync(join(outDir, 'server.mjs')).size }
}

/** Median wall time of importing a module and building the app in a fresh Node process, over `runs` runs. */
export function measureInit(modulePath: string, runs = 5): number {
  const work = mkdtempSync(join(tmpdir(), 'jit-init-'))
  const policy = join(work, 'policy.json')
  writeFileSync(policy, JSON.stringify({ rules: [{ name: 'r', users: ['u'], accounts: ['*'], permissionSets: ['*'], maxDurationMinutes: 60 }] }))
  // Configured fully, so that init makes no AWS call: what is measured is our code and its dependencies.
  const env = {
    ...process.env,
    LOG_LEVEL: 'silent',
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'x',
    AWS_SECRET_ACCESS_KEY: 'x',
    JIT_POLICY_FILE: policy,
    JIT_JWT_SECRET: 'x'.repeat(32),
    JIT_JWT_ISSUER: 'issuer',
    JIT_JWT_AUDIENCE: 'audience',
    JIT_INSTANCE_ARN: 'arn:aws:sso:::instance/ssoins-0000000000000000',
    JIT_IDENTITY_STORE_ID: 'd-0000000000',
  }
  const script = `const t = performance.now(); await import(${JSON.stringify(modulePath)}); console.log(performance.now() - t)`
  const times = Array.from({ length: runs }, () =>
    Number(execFileSync(process.execPath, ['--input-type=module', '-e', script], { env, cwd: work, encoding: 'utf8' }).trim()))
  rmSync(work, { recursive: true, force: true })
  return times.sort((a, b) => a - b)[Math.floor(runs / 2)] as number
}

const isEntryPoint = process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)
if (isEntryPoint) {
  const { lambdaBytes, serverBytes } = await buildAll()
  if (process.argv.includes('--no-measure')) process.exit(0)
  const lambdaInit = measureInit(join(DIST, 'lambda.mjs'))
  const kib = (bytes: number) => `${(bytes / 1024).toFixed(0)} KiB`
  console.log(`dist/lambda.mjs  ${kib(lambdaBytes)} (goal ≤ ${kib(SIZE_GOAL_BYTES)}: ${lambdaBytes <= SIZE_GOAL_BYTES ? 'met' : 'NOT MET'})`)
  console.log(`dist/server.mjs  ${kib(serverBytes)}`)
  console.log(`lambda import + app init: ${lambdaInit.toFixed(0)} ms median of 5 on Node ${process.versions.node} (goal ≤ ${INIT_GOAL_MS} ms: ${lambdaInit <= INIT_GOAL_MS ? 'met' : 'NOT MET'})`)
  if (process.argv.includes('--compare-sdk')) {
    // The alternative: bundle the AWS SDK into the Lambda too.
    const bundledSdk = mkdtempSync(join(ROOT, '.build-bundled-sdk-'))
    await build(options('lambda.ts', join(bundledSdk, 'lambda.mjs')))
    cpSync(join(ROOT, 'node_modules', '@fastify', 'swagger-ui', 'static'), join(bundledSdk, 'static'), { recursive: true })
    const bundledBytes = statSync(join(bundledSdk, 'lambda.mjs')).size
    const bundledInit = measureInit(join(bundledSdk, 'lambda.mjs'))
    rmSync(bundledSdk, { recursive: true, force: true })
    console.log(`with the AWS SDK bundled instead: ${kib(bundledBytes)}, import + init ${bundledInit.toFixed(0)} ms`)
    console.log(`runtime SDK / bundled SDK: size ${(lambdaBytes / bundledBytes).toFixed(2)}×, init ${(lambdaInit / bundledInit).toFixed(2)}×`)
  }
}
