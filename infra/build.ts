/**
 * `npm run build`: dist/lambda.mjs (the Lambda handler, with the chunks it imports beside it) and
 * dist/server.mjs (the container's entry, one file), minified ESM with source maps and every dependency inside,
 * plus the docs page's files in dist/static. Prints the bundle sizes and the Lambda's module import + app init
 * time against the goals.
 *
 *   --no-measure    build only
 *   --server-only   build dist/server.mjs only, without measuring (the Dockerfile: the image needs nothing else,
 *                   and its build stage copies only src/ and this file)
 *   --compare-sdk   also measure the alternative: the Lambda with the AWS SDK left to the Lambda runtime
 *   --analyze       say where the Lambda's bytes are: per output file, its heaviest packages (esbuild's metafile,
 *                   also written to dist/lambda-meta.json for esbuild's analyzer)
 */
import { execFileSync } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { builtinModules, createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { type BuildOptions, build, type Metafile, type Plugin } from 'esbuild'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
export const DIST = join(ROOT, 'dist')
const SIZE_GOAL_BYTES = 1.5 * 1024 * 1024
const INIT_GOAL_MS = 200
/** Import + init against a minimal Fastify app behind @fastify/aws-lambda, bundled the same way. */
export const INIT_RATIO_GOAL = 1.3
/** What an operator may set on the function for source-mapped stack traces (infra/stack.ts leaves it off). */
const SOURCE_MAPS_NODE_OPTIONS = '--enable-source-maps'
/** @fastify/swagger-ui serves these from its package directory, which a bundle does not have (src/service.ts). */
const DOCS_ASSETS = join(ROOT, 'node_modules', '@fastify', 'swagger-ui', 'static')

/**
 * Where the Lambda gets the AWS SDK. 'bundled' (the default, measured with --compare-sdk): the function runs
 * exactly the SDK version the tests ran, whose timeout and retry behaviour the service relies on; the
 * runtime's copy is a version AWS does not pin, differs between regions and changes under a deployed function.
 */
export type AwsSdkSource = 'bundled' | 'runtime'

/**
 * CommonJS dependencies inside an ESM bundle still need require, __filename and __dirname. Taken with
 * process.getBuiltinModule rather than imported, for the reason given at builtinsAsRequire.
 */
const BANNER = [
  "const require = process.getBuiltinModule('node:module').createRequire(import.meta.url);",
  "const __filename = process.getBuiltinModule('node:url').fileURLToPath(import.meta.url);",
  "const __dirname = process.getBuiltinModule('node:path').dirname(__filename);",
].join('\n')

/**
 * Node's builtins, imported by ESM code (ours, the AWS SDK's), are required instead. Importing a builtin as ESM
 * makes Node build a module namespace from every one of its exports, which runs lazy getters: node:http's load
 * all of undici, about a tenth of the Lambda's init time, for nothing the service uses.
 */
const builtinsAsRequire: Plugin = {
  name: 'builtins-as-require',
  setup(build) {
    const builtins = new Set(builtinModules.map((name) => name.replace(/^node:/, '')))
    build.onResolve({ filter: /^(node:)?[a-z_/]+$/ }, ({ path, kind }) => {
      const name = path.replace(/^node:/, '')
      return kind === 'import-statement' && builtins.has(name)
        ? { path: name, namespace: 'builtin-as-require' }
        : undefined
    })
    build.onLoad({ filter: /.*/, namespace: 'builtin-as-require' }, ({ path }) => ({
      contents: `module.exports = require(${JSON.stringify(`node:${path}`)})`,
      loader: 'js',
    }))
  },
}

/**
 * What the Lambda's code can do without, each replaced by a few lines (the bundle's size is a cold start's
 * download and the deployment's limit; see docs/performance.md):
 * - the AWS SDK's default credential chain (SSO, STS, web identity, process, INI files, IMDS; about 150 KiB):
 *   Lambda puts the function role's credentials in the environment, so the environment is the whole chain;
 * - bowser (34 KiB): the SDK's user agent parser for browsers, imported only in a browser;
 * - yaml (112 KiB): @fastify/swagger and swagger-ui write the contract as YAML only at /docs/yaml, and JSON is
 *   YAML (1.2), so that is written as JSON;
 * - glob (99 KiB): @fastify/static lists a directory with it only when `wildcard: false`, which the docs page
 *   does not use;
 * - @fastify/ajv-compiler (with Ajv's JTD code, about 40 KiB): Fastify's default validator compiler, loaded only
 *   when an app is given none; ours (src/app.ts) and the docs app's are given theirs;
 * - mime (36 KiB, every type there is): the docs page's files are of seven types;
 * - asn1.js with bn.js (about 65 KiB): fast-jwt reads only a PEM key's algorithm identifier with it, which
 *   infra/lambda-stubs/asn1.ts reads as asn1.js does (compared with it by test/lambda-stubs.test.ts);
 * - semver (28 KiB): Fastify checks each plugin's declared range with it, and every bundled plugin declares
 *   `5.x`, which infra/lambda-stubs/semver.ts understands (and it refuses any other range);
 * - a second fast-uri (16 KiB): fast-json-stringify has its own, 4.x, beside the 3.x that Ajv and @fastify/swagger's
 *   json-schema-resolver use. The two export the same functions; 4.x only refuses more malformed input (controls or
 *   spaces at either end, an http(s) URL without a host), which no schema id or reference of ours is, so all three
 *   use fast-json-stringify's;
 * - the rest (about 60 KiB), each either never called by this service, so that its stand-in fails whatever
 *   calls it, or a check of the service's own fixed code that a test makes instead:
 *   - @fastify/proxy-addr with ipaddr.js: Fastify's `trustProxy`, which the service does not set;
 *   - thread-stream: pino's transports (worker threads); the service logs to stdout;
 *   - content-disposition: @fastify/static's `reply.download()`, which the docs page does not use;
 *   - debug (with ms): json-schema-resolver's trace lines, which only a DEBUG setting would print;
 *   - fast-json-stringify's check of each response schema against JSON Schema's meta-schema: the schemas are
 *     the service's own, and test/lambda-stubs.test.ts makes that check of every one of them.
 * The container's bundle keeps them all: it may run where credentials come from anywhere, and size costs it little.
 */
/** fast-json-stringify's check of each response schema against JSON Schema's meta-schema (stubbed below). */
const FJS_SCHEMA_CHECK = 'fast-json-stringify/lib/schema-validator'

export const lambdaSlimming: Plugin = {
  name: 'lambda-slimming',
  setup(build) {
    const stubs: Record<string, string> = {
      '@aws-sdk/credential-provider-node': [
        "import { fromEnv } from '@aws-sdk/credential-provider-env'",
        'export const defaultProvider = (init = {}) => fromEnv(init)',
        'export const credentialsWillNeedRefresh = (credentials) => credentials?.expiration !== undefined',
        'export const credentialsTreatedAsExpired = (credentials) => credentials?.expiration !== undefined && credentials.expiration.getTime() - Date.now() < 300000',
      ].join('\n'),
      bowser: 'export const parse = () => ({})\nexport default { parse }',
      yaml: [
        // biome-ignore lint/suspicious/noTemplateCurlyInString: the stub module's source, whose template literal is meant
        'export const stringify = (value) => `${JSON.stringify(value, null, 2)}\\n`',
        'export const parse = (text) => JSON.parse(text)',
        'export default { stringify, parse }',
      ].join('\n'),
      glob: "export const glob = async () => { throw new Error('glob is not in the Lambda bundle (infra/build.ts)') }",
      '@fastify/ajv-compiler': [
        "const AjvCompiler = () => () => { throw new Error('Fastify\\'s default validator compiler is not in the Lambda bundle (infra/build.ts)') }",
        'module.exports = AjvCompiler',
        'module.exports.default = AjvCompiler',
        'module.exports.AjvCompiler = AjvCompiler',
      ].join('\n'),
      '@fastify/proxy-addr': [
        "const unsupported = () => { throw new Error('trustProxy is not supported in the Lambda bundle (infra/build.ts)') }",
        'module.exports = unsupported',
        'module.exports.compile = unsupported',
        'module.exports.all = unsupported',
      ].join('\n'),
      'thread-stream': [
        'module.exports = class ThreadStream {',
        "  constructor() { throw new Error('pino transports are not in the Lambda bundle (infra/build.ts)') }",
        '}',
      ].join('\n'),
      'content-disposition': [
        "const unsupported = () => { throw new Error('content-disposition is not in the Lambda bundle (infra/build.ts)') }",
        'module.exports = { create: unsupported, parse: unsupported }',
      ].join('\n'),
      debug: [
        'const debug = () => Object.assign(() => {}, { enabled: false, extend: debug })',
        "module.exports = Object.assign(debug, { enable() {}, disable: () => '', enabled: () => false })",
      ].join('\n'),
      [FJS_SCHEMA_CHECK]: [
        'const validate = () => true',
        'validate.errors = null',
        'module.exports = validate',
        'module.exports.default = validate',
      ].join('\n'),
      mime: [
        "const types = { html: 'text/html', css: 'text/css', js: 'application/javascript', json: 'application/json', map: 'application/json', png: 'image/png', svg: 'image/svg+xml' }",
        "module.exports = { default_type: undefined, getType: (path) => types[String(path).split('.').pop().toLowerCase()] ?? null }",
      ].join('\n'),
    }
    build.onResolve({ filter: /^(asn1\.js|semver)$/ }, ({ path }) => ({
      path: join(ROOT, 'infra', 'lambda-stubs', `${path.replace(/\.js$/, '')}.ts`),
    }))
    const stubbed = Object.keys(stubs).map((name) => name.replace(/[/.]/g, '\\$&'))
    build.onResolve({ filter: new RegExp(`^(${stubbed.join('|')})$`) }, ({ path }) => ({
      path,
      namespace: 'lambda-slimming',
    }))
    // Imported by a relative path, so matched by its importer too.
    build.onResolve({ filter: /^\.\/lib\/schema-validator$/ }, ({ importer }) =>
      /[\\/]fast-json-stringify[\\/]index\.js$/.test(importer)
        ? { path: FJS_SCHEMA_CHECK, namespace: 'lambda-slimming' }
        : undefined,
    )
    const oneFastUri = createRequire(join(ROOT, 'node_modules', 'fast-json-stringify', 'package.json')).resolve(
      'fast-uri',
    )
    build.onResolve({ filter: /^fast-uri$/ }, () => ({ path: oneFastUri }))
    build.onLoad({ filter: /.*/, namespace: 'lambda-slimming' }, ({ path }) => ({
      contents: stubs[path],
      loader: 'js',
      resolveDir: ROOT,
    }))
  },
}

/**
 * Where the configuration's and the policy's checks are compiled (src/core/schema-validators.ts): here, not at every
 * start, where Ajv compiling the two took about 25 ms, more than a tenth of a cold start. The module is replaced by
 * Ajv's standalone code for the same schemas with the same options: the schemas are read by importing the modules
 * that declare them (CHECKED_SCHEMA_MODULES), each of which registers its own under a name; a check a bundle asks
 * for by a name not compiled here fails when it is asked for (validatorOf): at the bundle's start for a check
 * compiled as its module loads, as both are, so a test of the bundle catches it.
 */
export const precompiledChecks: Plugin = {
  name: 'precompiled-checks',
  setup(build) {
    build.onLoad({ filter: /[\\/]src[\\/]core[\\/]schema-validators\.ts$/ }, async ({ path }) => ({
      contents: await precompiledChecksModule(),
      loader: 'js',
      resolveDir: dirname(path),
    }))
  },
}

/** The modules that declare the schemas validatorOf compiles (the policy's is imported by the configuration). */
const CHECKED_SCHEMA_MODULES = ['src/config.ts']

let checksModule: Promise<string> | undefined

function precompiledChecksModule(): Promise<string> {
  checksModule ??= (async () => {
    for (const module of CHECKED_SCHEMA_MODULES) await import(pathToFileURL(join(ROOT, module)).href)
    const { SCHEMA_CHECK_OPTIONS, checkedSchemas } = (await import(
      pathToFileURL(join(ROOT, 'src/core/schema-validators.ts')).href
    )) as typeof import('../src/core/schema-validators.ts')
    const { Ajv } = await import('ajv')
    // CommonJS, whose module.exports is the function, also exported as its default.
    const standaloneCode = (await import('ajv/dist/standalone/index.js')).default.default
    const ajv = new Ajv({ ...SCHEMA_CHECK_OPTIONS, code: { source: true, esm: true } })
    const names = [...checkedSchemas().keys()]
    for (const [name, schema] of checkedSchemas()) ajv.addSchema(schema, name)
    return [
      standaloneCode(ajv, Object.fromEntries(names.map((name) => [name, name]))),
      `const validators = new Map([${names.map((name) => `[${JSON.stringify(name)}, ${name}]`).join(', ')}])`,
      'export function validatorOf(name) {',
      '  const validate = validators.get(name)',
      `  if (!validate) throw new Error("No check named '" + name + "' was compiled with the bundle (infra/build.ts, CHECKED_SCHEMA_MODULES)")`,
      '  return validate',
      '}',
    ].join('\n')
  })()
  return checksModule
}

function bundleOptions(entry: string, outfile: string, awsSdk: AwsSdkSource): BuildOptions {
  return {
    entryPoints: [entry.includes('/') ? join(ROOT, entry) : join(ROOT, 'src', entry)],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node24',
    format: 'esm',
    // ESM entry points first: the AWS SDK ships both, and only from ESM can esbuild drop the commands we never send.
    mainFields: ['module', 'main'],
    minify: true,
    sourcemap: true,
    // Stack traces need only the mappings. With --enable-source-maps (the container's default, the function's
    // option) Node reads the whole map at import: with the sources inside (two thirds of it) that took ~40 ms more.
    sourcesContent: false,
    legalComments: 'none',
    banner: { js: BANNER },
    plugins: [builtinsAsRequire, precompiledChecks],
    external: awsSdk === 'runtime' ? ['@aws-sdk/*', '@smithy/*'] : [],
    logLevel: 'warning',
  }
}

/**
 * The Lambda's code: lambda.mjs, the chunks it imports, and the docs page's files beside it. Returns the size
 * of the code (every chunk, loaded at init or not).
 *
 * Split into chunks so that what is imported only when needed (the docs page's libraries, the
 * AWS SDK's credential providers for other environments) is not even parsed at init: about a tenth of it.
 * The container's bundle stays one file, which is all its image copies.
 */
export async function buildLambda(outDir: string, awsSdk: AwsSdkSource = 'bundled'): Promise<number> {
  mkdirSync(outDir, { recursive: true })
  const { outfile: _single, ...options } = bundleOptions('lambda.ts', join(outDir, 'lambda.mjs'), awsSdk)
  const { metafile } = await build({
    ...options,
    plugins: [...(options.plugins ?? []), lambdaSlimming],
    outdir: outDir,
    splitting: true,
    entryNames: '[name]',
    // Beside lambda.mjs, not in a folder: bundled CommonJS code finds its files (the docs page's) from __dirname.
    chunkNames: 'lambda-[name]-[hash]',
    outExtension: { '.js': '.mjs' },
    metafile: true,
  })
  cpSync(DOCS_ASSETS, join(outDir, 'static'), { recursive: true })
  lastLambdaMetafile = metafile
  return Object.entries(metafile.outputs).reduce(
    (sum, [file, { bytes }]) => (file.endsWith('.mjs') ? sum + bytes : sum),
    0,
  )
}

let lastLambdaMetafile: Metafile | undefined

/** esbuild's metafile of the last Lambda build: what went into each output file. */
export const lambdaMetafile = (): Metafile | undefined => lastLambdaMetafile

/** Each output of the last Lambda build, largest first, with what is loaded at init and its heaviest packages. */
export function describeLambdaWeight(metafile: Metafile | undefined = lastLambdaMetafile, top = 6): string[] {
  if (!metafile) return []
  const eager = new Set<string>()
  const visit = (file: string) => {
    if (eager.has(file)) return
    eager.add(file)
    for (const imported of metafile.outputs[file]?.imports ?? [])
      if (imported.kind === 'import-statement') visit(imported.path)
  }
  const entry = Object.keys(metafile.outputs).find((file) => file.endsWith('/lambda.mjs'))
  if (entry) visit(entry)
  const packageOf = (input: string) =>
    /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input)?.[1] ?? (input.startsWith('src/') ? 'src' : input)
  return Object.entries(metafile.outputs)
    .filter(([file]) => file.endsWith('.mjs'))
    .sort(([, a], [, b]) => b.bytes - a.bytes)
    .map(([file, output]) => {
      const byPackage = new Map<string, number>()
      for (const [input, { bytesInOutput }] of Object.entries(output.inputs))
        byPackage.set(packageOf(input), (byPackage.get(packageOf(input)) ?? 0) + bytesInOutput)
      const heaviest = [...byPackage]
        .sort(([, a], [, b]) => b - a)
        .slice(0, top)
        .map(([name, bytes]) => `${name} ${(bytes / 1024).toFixed(0)}`)
        .join(', ')
      return `${file.split('/').pop()} ${(output.bytes / 1024).toFixed(0)} KiB${eager.has(file) ? ' (at init)' : ''}: ${heaviest}`
    })
}

/**
 * The baseline for the Lambda's import + init: a minimal Fastify app behind @fastify/aws-lambda
 * (infra/baseline/minimal-lambda.ts), bundled as the Lambda is. Returns its entry file.
 */
export async function buildBaseline(outDir: string): Promise<string> {
  mkdirSync(outDir, { recursive: true })
  const { outfile: _single, ...options } = bundleOptions(
    'infra/baseline/minimal-lambda.ts',
    join(outDir, 'minimal-lambda.mjs'),
    'bundled',
  )
  await build({
    ...options,
    outdir: outDir,
    splitting: true,
    entryNames: '[name]',
    chunkNames: 'minimal-[name]-[hash]',
    outExtension: { '.js': '.mjs' },
    plugins: [...(options.plugins ?? []), lambdaSlimming],
  })
  return join(outDir, 'minimal-lambda.mjs')
}

/** The container's code: server.mjs and the docs page's files beside it. Returns the bundle's size. */
export async function buildServer(outDir: string): Promise<number> {
  mkdirSync(outDir, { recursive: true })
  await build(bundleOptions('server.ts', join(outDir, 'server.mjs'), 'bundled'))
  cpSync(DOCS_ASSETS, join(outDir, 'static'), { recursive: true })
  return statSync(join(outDir, 'server.mjs')).size
}

export async function buildAll(outDir = DIST): Promise<{ lambdaBytes: number; serverBytes: number }> {
  rmSync(outDir, { recursive: true, force: true })
  const lambdaBytes = await buildLambda(outDir)
  const serverBytes = await buildServer(outDir)
  return { lambdaBytes, serverBytes }
}

export interface InitTiming {
  /** From the start of the import to the app being ready for its first event. */
  totalMs: number
  /** Evaluating the bundle's modules, reading the configuration, building the service, app.ready(). */
  phasesMs: { modules: number; config: number; service: number; ready: number }
}

/**
 * Import + init time of Lambda bundles, each in fresh Node processes, runs interleaved so that a noisy machine
 * slows every candidate alike; the median run of each. Configured fully, so that init makes no AWS call:
 * what is measured is our code and its dependencies. `nodeOptions` is NODE_OPTIONS for every run.
 */
export function measureInitTimings(modulePaths: string[], runs = 7, nodeOptions?: string): InitTiming[] {
  const work = mkdtempSync(join(tmpdir(), 'jit-init-'))
  const policy = join(work, 'policy.json')
  writeFileSync(
    policy,
    JSON.stringify({
      rules: [{ name: 'r', users: ['u'], accounts: ['*'], permissionSets: ['*'], maxDurationMinutes: 60 }],
    }),
  )
  const env = {
    PATH: process.env.PATH,
    LOG_LEVEL: 'silent',
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'x',
    AWS_SECRET_ACCESS_KEY: 'x',
    JIT_POLICY_FILE: policy,
    JIT_JWT_SECRET: 'x'.repeat(32),
    JIT_CURSOR_KEY: 'c'.repeat(32),
    JIT_JWT_ISSUER: 'issuer',
    JIT_JWT_AUDIENCE: 'audience',
    JIT_INSTANCE_ARN: 'arn:aws:sso:::instance/ssoins-0000000000000000',
    JIT_IDENTITY_STORE_ID: 'd-0000000000',
    ...(nodeOptions ? { NODE_OPTIONS: nodeOptions } : {}),
  }
  const samples: InitTiming[][] = modulePaths.map(() => [])
  try {
    for (let run = 0; run < runs; run++) {
      modulePaths.forEach((modulePath, i) => {
        const script = [
          'const start = performance.now()',
          `await import(${JSON.stringify(pathToFileURL(modulePath).href)})`,
          'const total = performance.now() - start',
          "const at = (name) => performance.getEntriesByName(name, 'mark')[0]?.startTime ?? NaN",
          "console.log(JSON.stringify({ total, marks: ['jit:modules-loaded', 'jit:config-loaded', 'jit:service-built', 'jit:ready'].map(at).map((t) => t - start) }))",
        ].join('\n')
        const { total, marks } = JSON.parse(
          execFileSync(process.execPath, ['--input-type=module', '-e', script], { env, cwd: work, encoding: 'utf8' }),
        ) as { total: number; marks: number[] }
        const [modules = NaN, config = NaN, service = NaN, ready = NaN] = marks
        samples[i]?.push({
          totalMs: total,
          phasesMs: { modules, config: config - modules, service: service - config, ready: ready - service },
        })
      })
    }
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
  return samples.map(
    (runsOfOne) => runsOfOne.sort((a, b) => a.totalMs - b.totalMs)[Math.floor(runsOfOne.length / 2)] as InitTiming,
  )
}

/** Median import + init time of one Lambda bundle, in milliseconds. */
export function measureInit(modulePath: string, runs = 5): number {
  return (measureInitTimings([modulePath], runs)[0] as InitTiming).totalMs
}

const isEntryPoint = process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)
if (isEntryPoint && process.argv.includes('--server-only')) {
  rmSync(DIST, { recursive: true, force: true })
  console.log(`dist/server.mjs  ${((await buildServer(DIST)) / 1024).toFixed(0)} KiB`)
} else if (isEntryPoint) {
  const { lambdaBytes, serverBytes } = await buildAll()
  if (process.argv.includes('--analyze')) {
    writeFileSync(join(DIST, 'lambda-meta.json'), JSON.stringify(lastLambdaMetafile))
    for (const line of describeLambdaWeight()) console.log(line)
  }
  if (process.argv.includes('--no-measure')) process.exit(0)

  const kib = (bytes: number) => `${(bytes / 1024).toFixed(0)} KiB`
  const verdict = (met: boolean) => (met ? 'met' : 'NOT MET')
  const describe = ({ totalMs, phasesMs: p }: InitTiming) =>
    `${totalMs.toFixed(0)} ms (modules ${p.modules.toFixed(0)}, config ${p.config.toFixed(0)}, service ${p.service.toFixed(0)}, app.ready ${p.ready.toFixed(0)})`
  const candidates = [join(DIST, 'lambda.mjs')]
  // The runtime's SDK can only be resolved from inside the project (node_modules stands in for the runtime's).
  const runtimeSdkDir = process.argv.includes('--compare-sdk')
    ? mkdtempSync(join(ROOT, '.build-runtime-sdk-'))
    : undefined
  try {
    const runtimeSdkBytes = runtimeSdkDir ? await buildLambda(runtimeSdkDir, 'runtime') : undefined
    if (runtimeSdkDir) candidates.push(join(runtimeSdkDir, 'lambda.mjs'))
    const baselineDir = mkdtempSync(join(tmpdir(), 'jit-baseline-'))
    const baseline = await buildBaseline(baselineDir)
    const [bundled, minimal, runtime] = measureInitTimings(
      [candidates[0] as string, baseline, ...candidates.slice(1)],
      9,
    ) as [InitTiming, InitTiming, InitTiming | undefined]
    rmSync(baselineDir, { recursive: true, force: true })

    console.log(
      `dist/lambda.mjs and its chunks  ${kib(lambdaBytes)}, AWS SDK bundled (goal ≤ ${kib(SIZE_GOAL_BYTES)}: ${verdict(lambdaBytes <= SIZE_GOAL_BYTES)})`,
    )
    console.log(`dist/server.mjs  ${kib(serverBytes)}`)
    console.log(
      `lambda import + init on Node ${process.versions.node}, median of 9: ${describe(bundled)} (goal ≤ ${INIT_GOAL_MS} ms: ${verdict(bundled.totalMs <= INIT_GOAL_MS)})`,
    )
    const ratio = bundled.totalMs / minimal.totalMs
    console.log(
      `  a minimal Fastify app behind @fastify/aws-lambda, bundled alike, runs alternating: ${minimal.totalMs.toFixed(0)} ms → ${ratio.toFixed(2)}× (goal ≤ ${INIT_RATIO_GOAL}×: ${verdict(ratio <= INIT_RATIO_GOAL)})`,
    )
    // What a cold start would cost with source-mapped stack traces turned on: the maps are read at import, and
    // parsed when pino, creating its loggers, asks for its call sites, which Node then maps.
    const [mapped] = measureInitTimings([join(DIST, 'lambda.mjs')], 7, SOURCE_MAPS_NODE_OPTIONS) as [InitTiming]
    console.log(`  the same with NODE_OPTIONS=${SOURCE_MAPS_NODE_OPTIONS} (off in infra/stack.ts): ${describe(mapped)}`)
    if (runtime && runtimeSdkBytes !== undefined) {
      console.log(
        `with the Lambda runtime's AWS SDK instead: ${kib(runtimeSdkBytes)}, import + init ${describe(runtime)}`,
      )
      console.log(
        `bundled / runtime SDK: size ${(lambdaBytes / runtimeSdkBytes).toFixed(2)}×, init ${(bundled.totalMs / runtime.totalMs).toFixed(2)}×`,
      )
    }
  } finally {
    if (runtimeSdkDir) rmSync(runtimeSdkDir, { recursive: true, force: true })
  }
}
