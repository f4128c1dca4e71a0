/**
 * `npm run openapi`: writes openapi/openapi.json (from the route schemas, via @fastify/swagger in
 * src/http/docs-app.ts) and openapi/schema.d.ts (openapi-typescript types for clients). test/openapi.test.ts
 * fails when either differs from what the code produces.
 */
import { writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import openapiTS, { astToString } from 'openapi-typescript'
import { buildApp, type ServiceAdapters } from '../src/app.ts'
import { systemClock } from '../src/core/clock.ts'
import { parsePolicy } from '../src/core/policy.ts'
import { DEMO_POLICY } from '../src/sandbox/seed.ts'

export const OPENAPI_DIR = dirname(fileURLToPath(import.meta.url))

/**
 * Describing the routes calls none of the service's adapters, so these refuse every call: if one is ever
 * made while generating, generation fails loudly instead of quietly using a fake.
 */
function refusingAdapter(name: string, allowed: Record<string, () => unknown> = {}): never {
  return new Proxy(
    {},
    {
      get: (_target, property) =>
        allowed[String(property)] ??
        (() => {
          throw new Error(`${name}.${String(property)} was called while generating the OpenAPI document`)
        }),
    },
  ) as never
}

/** The service's app on adapters that refuse every call: every route and schema, nothing behind them. */
export async function buildDescribingApp() {
  const adapters: ServiceAdapters = {
    store: refusingAdapter('store'),
    auditLog: refusingAdapter('auditLog'),
    identityCenter: refusingAdapter('identityCenter'),
    directory: refusingAdapter('directory'),
    // Closing the app waits for messages on their way; there are none.
    notifier: refusingAdapter('notifier', { flush: () => Promise.resolve() }),
    idempotency: refusingAdapter('idempotency'),
    cursors: refusingAdapter('cursors'),
  }
  return buildApp({
    ...adapters,
    clock: systemClock,
    policy: parsePolicy(DEMO_POLICY),
    jwt: { secret: 'x'.repeat(32) },
    maxDurationMinutes: 720,
    sweepBudgetMs: 1000,
  })
}

export async function generateDocument(): Promise<Record<string, unknown>> {
  const app = await buildDescribingApp()
  await app.ready()
  const document = await app.openapi()
  await app.close()
  return document
}

export const serialize = (document: unknown) => `${JSON.stringify(document, null, 2)}\n`

export async function generateTypes(document: Record<string, unknown>): Promise<string> {
  return `${astToString(await openapiTS(document as never))}`
}

const isEntryPoint = process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)
if (isEntryPoint) {
  const document = await generateDocument()
  writeFileSync(join(OPENAPI_DIR, 'openapi.json'), serialize(document))
  writeFileSync(join(OPENAPI_DIR, 'schema.d.ts'), await generateTypes(document))
  console.log('wrote openapi/openapi.json and openapi/schema.d.ts')
}
