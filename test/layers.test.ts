import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import t from 'tap'

// The layers CONTRIBUTING.md describes, checked on every import in src/ (static, re-exports and dynamic):
// the core knows neither HTTP, the adapters nor the SDK; adapters do not know HTTP; and nothing below the entry
// points imports them (app.ts composes; service.ts, lambda.ts, server.ts and sandbox.ts start it).
const ROOT = resolve(import.meta.dirname, '..')
const ENTRY_POINTS = ['src/app.ts', 'src/service.ts', 'src/lambda.ts', 'src/server.ts', 'src/sandbox.ts']
const RULES: { layer: string; forbidden: (target: string) => boolean; why: string }[] = [
  {
    layer: 'src/core/',
    forbidden: (target) =>
      /^(src\/http\/|src\/adapters\/|src\/config\.ts$|@aws-sdk\/|fastify$|@fastify\/)/.test(target) ||
      ENTRY_POINTS.includes(target),
    why: 'the core knows nothing of HTTP, AWS or configuration: it speaks through its ports',
  },
  {
    layer: 'src/adapters/',
    forbidden: (target) => target.startsWith('src/http/') || ENTRY_POINTS.includes(target),
    why: 'an adapter implements a port; it does not depend on the HTTP edge or the composition root',
  },
  {
    layer: 'src/http/',
    forbidden: (target) => target.startsWith('src/adapters/') || ENTRY_POINTS.includes(target),
    why: 'the HTTP edge calls the core; adapters reach it only through the composition root',
  },
]

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sources(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : [],
  )
}

/** Every module a source file imports: relative ones as paths from the root, packages by name. */
export function importsOf(file: string, text: string): string[] {
  const specifiers = [
    ...text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g),
  ].map((m) => (m[1] ?? m[2]) as string)
  return specifiers.map((specifier) =>
    specifier.startsWith('.') ? relative(ROOT, resolve(ROOT, dirname(file), specifier)) : specifier,
  )
}

t.test('the parser sees static, type-only, re-exported and dynamic imports', async (t) => {
  const text =
    "import { a } from '../http/x.ts'\nimport type { B } from '@aws-sdk/client-sns'\nexport { c } from './y.ts'\nconst d = await import('../adapters/z.ts')"
  t.same(importsOf('src/core/file.ts', text), [
    'src/http/x.ts',
    '@aws-sdk/client-sns',
    'src/core/y.ts',
    'src/adapters/z.ts',
  ])
})

t.test('every import in src/ keeps to the layers', async (t) => {
  const files = sources('src')
  t.ok(files.length > 40, `read ${files.length} source files`)
  const crossings: string[] = []
  for (const file of files) {
    const rule = RULES.find((candidate) => file.startsWith(candidate.layer))
    if (!rule) continue
    for (const target of importsOf(file, readFileSync(join(ROOT, file), 'utf8'))) {
      if (rule.forbidden(target)) crossings.push(`${file} imports ${target}: ${rule.why}`)
    }
  }
  t.same(crossings, [], crossings.join('\n'))
})
