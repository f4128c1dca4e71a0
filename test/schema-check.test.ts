import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { build } from 'esbuild'
import t from 'tap'
import { precompiledChecks } from '../infra/build.ts'
import * as Type from '../src/core/schema-builders.ts'
import { compileCheck } from '../src/core/schema-check.ts'

const Settings = Type.Object(
  {
    name: Type.String({ minLength: 1 }),
    retries: Type.Integer({ minimum: 0, default: 3 }),
    labels: Type.Optional(Type.Array(Type.String(), { minItems: 1 })),
  },
  { additionalProperties: false },
)
const check = compileCheck('testSettings', Settings)

t.test('a valid value is answered with the defaults of what it leaves out filled in', async (t) => {
  t.same(check({ name: 'a' }), { valid: true, value: { name: 'a', retries: 3 } })
})

t.test('every problem is reported, a missing or unknown property at its own path', async (t) => {
  t.same(check({ nmae: 'a', retries: -1, labels: [] }), {
    valid: false,
    problems: [
      { path: '/name', message: 'is required' },
      { path: '/nmae', message: 'is an unknown property' },
      { path: '/retries', message: 'must be >= 0' },
      { path: '/labels', message: 'must NOT have fewer than 1 items' },
    ],
  })
  t.same(check('text'), { valid: false, problems: [{ path: '/', message: 'must be object' }] })
})

t.test('two schemas cannot be checked under one name: the bundles find their compiled checks by it', async (t) => {
  t.throws(() => compileCheck('testSettings', Type.Object({})), {
    message: /Two schemas are checked as 'testSettings'/,
  })
})

t.test('a check is named by an identifier, under which the build exports it', async (t) => {
  t.throws(() => compileCheck('test-settings', Type.Object({})), { message: /must be an identifier: 'test-settings'/ })
})

t.test('a bundle asked for a check the build did not compile fails, naming it', async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'jit-checks-'))
  t.teardown(() => rmSync(work, { recursive: true, force: true }))
  const validators = join(import.meta.dirname, '..', 'src', 'core', 'schema-validators.ts')
  writeFileSync(
    join(work, 'entry.ts'),
    `import { validatorOf } from ${JSON.stringify(validators)}\nexport const ask = (name: string) => validatorOf(name, {})\n`,
  )
  await build({
    entryPoints: [join(work, 'entry.ts')],
    outfile: join(work, 'bundle.mjs'),
    bundle: true,
    platform: 'node',
    format: 'esm',
    plugins: [precompiledChecks],
    logLevel: 'warning',
  })
  const { ask } = (await import(pathToFileURL(join(work, 'bundle.mjs')).href)) as { ask: (name: string) => unknown }
  t.type(ask('policy'), 'function', 'a compiled check is there')
  t.type(ask('environment'), 'function', 'and the other')
  t.throws(() => ask('settings'), { message: /No check named 'settings' was compiled with the bundle/ })
})
