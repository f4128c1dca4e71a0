import { Ajv, type Options, type ValidateFunction } from 'ajv'

/**
 * How the configuration's and the policy's schemas are checked (src/core/schema-check.ts). Every problem is
 * reported, not only the first; the defaults a schema gives are filled in. `validateSchema: false`: the schemas
 * are TypeBox's output, and checking them against JSON Schema's meta-schema would compile that too. Strict: a
 * keyword Ajv does not know would be one it silently does not check (TypeBox's own are not enumerable, so Ajv
 * never sees them).
 */
export const SCHEMA_CHECK_OPTIONS: Options = { allErrors: true, useDefaults: true, validateSchema: false, strict: true }

const ajv = new Ajv(SCHEMA_CHECK_OPTIONS)
const checked = new Map<string, object>()

/**
 * The validator of `schema`, compiled here when the sources run as they are (the tests, the sandbox). The bundles
 * replace this module with these same validators compiled at build time (infra/build.ts, precompiledChecks): two
 * checks compiled at start were about 25 ms of a cold start. Each schema is named, so the build can find it.
 */
export function validatorOf(name: string, schema: object): ValidateFunction {
  // The build exports each compiled check under its name: a name that is no identifier would fail it there.
  if (!/^[A-Za-z_$][\w$]*$/.test(name)) throw new Error(`A check's name must be an identifier: '${name}'`)
  if (checked.has(name)) throw new Error(`Two schemas are checked as '${name}'`)
  checked.set(name, schema)
  return ajv.compile(schema)
}

/** Every schema compiled so far, by name: what the build compiles for the bundles. */
export function checkedSchemas(): ReadonlyMap<string, object> {
  return checked
}
