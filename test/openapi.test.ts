import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import t from 'tap'
import { generateDocument, generateTypes, OPENAPI_DIR, serialize } from '../openapi/generate.ts'
import { PLACEHOLDER_SERVER } from '../src/http/docs.ts'

const ROOT = resolve(import.meta.dirname, '..')
const document = await generateDocument()
type Json = Record<string, unknown>

t.test('the committed contract and types are what the code produces (regenerate with: npm run openapi)', async (t) => {
  t.equal(
    readFileSync(join(OPENAPI_DIR, 'openapi.json'), 'utf8'),
    serialize(document),
    'openapi/openapi.json is stale: run npm run openapi',
  )
  t.equal(
    readFileSync(join(OPENAPI_DIR, 'schema.d.ts'), 'utf8'),
    await generateTypes(document),
    'openapi/schema.d.ts is stale: run npm run openapi',
  )
  // Only its server differs from what a running service serves: that names the service itself (test/docs.test.ts).
  t.same(
    document.servers,
    [PLACEHOLDER_SERVER],
    'the committed contract names a placeholder server, not one deployment',
  )
})

t.test(
  'the document uses only what ServiceNow’s REST importer reads: OpenAPI 3.0, no oneOf/anyOf/not/const, no type arrays, plain camelCase properties',
  async (t) => {
    t.equal(document.openapi, '3.0.3')
    const problems: string[] = []
    const walk = (node: unknown, path: string, inSchema: boolean): void => {
      if (Array.isArray(node)) {
        for (const [i, item] of node.entries()) walk(item, `${path}/${i}`, inSchema)
        return
      }
      if (!node || typeof node !== 'object') return
      for (const [key, value] of Object.entries(node as Json)) {
        if (['oneOf', 'anyOf', 'not', 'const', '$schema', 'prefixItems', 'unevaluatedProperties'].includes(key))
          problems.push(`${path}: ${key}`)
        if (key === 'type' && Array.isArray(value)) problems.push(`${path}: type array`)
        if (key === 'properties' && value && typeof value === 'object') {
          for (const name of Object.keys(value))
            if (!/^[a-z][A-Za-z0-9]*$/.test(name)) problems.push(`${path}/properties: '${name}' is not plain camelCase`)
        }
        walk(value, `${path}/${key}`, inSchema || key === 'schema' || key === 'schemas')
      }
    }
    walk(document, '#', false)
    t.same(problems, [])
  },
)

t.test(
  'every operation is described completely, secured with its scope, and lists its problem responses',
  async (t) => {
    const paths = document.paths as Record<string, Record<string, Json>>
    const operations = Object.entries(paths).flatMap(([path, methods]) =>
      Object.entries(methods).map(([method, operation]) => ({ name: `${method.toUpperCase()} ${path}`, operation })),
    )
    t.equal(operations.length, 11)
    t.same(new Set(operations.map((o) => o.operation.operationId)).size, 11, 'operationIds are unique')
    for (const { name, operation } of operations) {
      for (const field of ['operationId', 'summary', 'description', 'tags'])
        t.ok(operation[field], `${name} has ${field}`)
      const responses = operation.responses as Record<string, Json>
      if (name === 'GET /health') {
        t.same(operation.security, [], 'health is public')
        continue
      }
      const security = operation.security as Record<string, string[]>[]
      t.match(security, [{ bearerAuth: [/^[a-z]+:[a-z]+$/] }], `${name} names its scope`)
      for (const status of ['401', '403', '503']) {
        t.ok(responses[status], `${name} documents ${status}`)
        t.ok((responses[status]?.content as Json)?.['application/problem+json'], `${name} ${status} is problem+json`)
      }
      const success = Object.keys(responses).filter((s) => s.startsWith('2'))
      t.ok(success.length > 0, `${name} documents success`)
    }
    t.ok((paths['/grants']!.post!.responses as Json)['409'], 'idempotency conflicts documented')
    t.ok((paths['/grants']!.post!.responses as Json)['422'], 'unknown user or permission set documented')
    const schemas = (document.components as Json).schemas as Record<string, Json>
    for (const name of ['Grant', 'AuditEvent', 'Problem']) t.ok(schemas[name]?.example, `${name} has an example`)
    const requestBody = (paths['/grants']!.post!.requestBody as { content: Record<string, { schema: Json }> }).content[
      'application/json'
    ]?.schema
    t.match(requestBody?.example, { userName: 'alice', ticketId: String }, 'the grant request has an example')
  },
)

t.test('redocly lint passes clean', async (t) => {
  const lint = spawnSync(
    join(ROOT, 'node_modules', '.bin', 'redocly'),
    ['lint', '--config', '.redocly.yaml', 'openapi/openapi.json'],
    { cwd: ROOT, encoding: 'utf8' },
  )
  t.equal(lint.status, 0, lint.stdout + lint.stderr)
  t.notMatch(lint.stdout + lint.stderr, /warning/i, 'no warnings either')
})
