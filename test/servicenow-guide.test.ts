import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { Ajv } from 'ajv'
import addFormats from 'ajv-formats'
import t from 'tap'

const ROOT = resolve(import.meta.dirname, '..')
const guide = readFileSync(join(ROOT, 'docs', 'servicenow.md'), 'utf8')
const contract = JSON.parse(readFileSync(join(ROOT, 'openapi', 'openapi.json'), 'utf8'))
const schemas: Record<string, object> = {
  ...contract.components.schemas,
  GrantRequest: contract.paths['/grants'].post.requestBody.content['application/json'].schema,
}

t.test('every JSON example in the ServiceNow guide is valid against the contract it illustrates', async (t) => {
  const ajv = addFormats.default(new Ajv({ strict: false, allErrors: true }))
  const examples = [...guide.matchAll(/<!-- example: (\w+) -->\s*```json\n([\s\S]*?)```/g)]
  t.same(examples.map((m) => m[1]).sort(), ['AuditEvent', 'Grant', 'GrantRequest', 'Problem'])
  for (const [, name, body] of examples) {
    const schema = schemas[name as string]
    t.ok(schema, `${name} is in the contract`)
    const validate = ajv.compile(schema as object)
    const example = JSON.parse(body as string)
    t.ok(validate(example), `${name}: ${ajv.errorsText(validate.errors)}`)
    t.same(example, (schema as { example?: unknown }).example, `${name} is the contract's own example`)
  }
})

t.test('the guide names the settings and headers the service really uses', async (t) => {
  for (const name of [
    'JIT_JWT_PUBLIC_KEY',
    'JIT_JWT_ISSUER',
    'JIT_JWT_AUDIENCE',
    'Idempotency-Key',
    'grants:write',
    'audit:read',
    'sn_auth.GlideJWTAPI',
    'generateJWT',
  ]) {
    t.match(guide, name)
  }
  t.match(
    readFileSync(join(ROOT, 'src', 'config.ts'), 'utf8'),
    /JIT_JWT_PUBLIC_KEY[\s\S]*JIT_JWT_ISSUER[\s\S]*JIT_JWT_AUDIENCE/,
  )
})
