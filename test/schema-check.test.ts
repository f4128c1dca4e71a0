import t from 'tap'
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
const check = compileCheck('test-settings', Settings)

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
  t.throws(() => compileCheck('test-settings', Type.Object({})), {
    message: /Two schemas are checked as 'test-settings'/,
  })
})
