import type { ErrorObject } from 'ajv'
import type { Static, TSchema } from 'typebox'
import { validatorOf } from './schema-validators.ts'

/*
 * What the service reads once at start (its configuration, the eligibility policy) is checked against its TypeBox
 * schema, which is JSON Schema, by Ajv, which the bundle has anyway for the routes. TypeBox's own checker
 * (typebox/value) was 73 KiB of the Lambda's bundle; the two checks, compiled when it is built, are 52 KiB.
 */

/** What is wrong with a value, at the JSON pointer of the part it is about ('/' for the value itself). */
export interface SchemaProblem {
  path: string
  message: string
}

/** The outcome of a check: the value, with its schema's defaults filled in, or every problem found. */
export type SchemaCheckResult<S extends TSchema> =
  | { valid: true; value: Static<S> }
  | { valid: false; problems: SchemaProblem[] }

/**
 * A check of `schema`, compiled once (see validatorOf), to be called as often as needed; `name`, unique, says which
 * it is. The check fills in the defaults the schema gives for missing properties, in the value it is given.
 */
export function compileCheck<S extends TSchema>(name: string, schema: S): (value: unknown) => SchemaCheckResult<S> {
  const validate = validatorOf(name, schema)
  return (value) =>
    validate(value)
      ? { valid: true, value: value as Static<S> }
      : { valid: false, problems: (validate.errors ?? []).map(problemOf) }
}

/**
 * One Ajv error, pointed at what it is about: Ajv reports a missing or an unknown property at the object that
 * holds it, which would not say which one.
 */
function problemOf(error: ErrorObject): SchemaProblem {
  const params = error.params as { additionalProperty?: unknown; missingProperty?: unknown }
  const child = (name: unknown) => `${error.instancePath}/${String(name).replaceAll('~', '~0').replaceAll('/', '~1')}`
  switch (error.keyword) {
    case 'additionalProperties':
      return { path: child(params.additionalProperty), message: 'is an unknown property' }
    case 'required':
      return { path: child(params.missingProperty), message: 'is required' }
  }
  return { path: error.instancePath || '/', message: error.message ?? 'is invalid' }
}
