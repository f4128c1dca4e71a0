import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { DEMO_POLICY } from '../src/sandbox/seed.ts'
import { startSandbox } from '../src/sandbox.ts'

type Json = Record<string, unknown>
interface Parameter {
  name: string
  in: 'path' | 'query' | 'header'
  required?: boolean
  example?: unknown
  schema?: { example?: unknown }
}
interface Operation {
  parameters?: Parameter[]
  requestBody?: { content: Record<string, { example?: unknown; schema?: { example?: unknown } }> }
  responses: Json
  security?: unknown[]
}

const exampleOf = (holder: { example?: unknown; schema?: { example?: unknown } } | undefined) =>
  holder?.example ?? holder?.schema?.example

/**
 * What the docs page's "Try it out" sends for an operation: every parameter and body example the contract gives.
 * A grant id in a path has no example (no grant exists before one is made): the id of the grant the POST /grants
 * example made stands in for it, as a person trying the page would paste it.
 */
function exampleRequest(path: string, method: string, operation: Operation, grantId: string | undefined) {
  const query = new URLSearchParams()
  const headers: Record<string, string> = {}
  const missing: string[] = []
  let url = path
  for (const parameter of operation.parameters ?? []) {
    let value = exampleOf(parameter)
    if (value === undefined && parameter.in === 'path' && parameter.name === 'id') value = grantId
    if (value === undefined) {
      if (parameter.required) missing.push(`${parameter.in} ${parameter.name}`)
      continue
    }
    if (parameter.in === 'path') url = url.replace(`{${parameter.name}}`, encodeURIComponent(String(value)))
    else if (parameter.in === 'query') query.set(parameter.name, String(value))
    else headers[parameter.name] = String(value)
  }
  const media = operation.requestBody?.content['application/json']
  const body = exampleOf(media)
  if (operation.requestBody && body === undefined) missing.push(`${method.toUpperCase()} ${path} request body`)
  if (body !== undefined) headers['content-type'] = 'application/json'
  return {
    url: `${url}${query.size > 0 ? `?${query}` : ''}`,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    missing,
  }
}

t.test(
  'every request example in the contract succeeds against the sandbox, with a status the contract documents',
  async (t) => {
    const policyDir = mkdtempSync(join(tmpdir(), 'jit-examples-'))
    t.teardown(() => rmSync(policyDir, { recursive: true, force: true }))
    const policyFile = join(policyDir, 'policy.json')
    writeFileSync(policyFile, JSON.stringify(DEMO_POLICY))
    const sandbox = await startSandbox({
      env: { PORT: '0', LOG_LEVEL: 'silent', PATH: process.env.PATH ?? '', JIT_POLICY_FILE: policyFile },
      print: () => {},
    })
    t.teardown(async () => {
      await sandbox.app.close()
      await sandbox.moto?.stop()
    })
    // The document the docs page uses, as served: its server is the sandbox itself.
    const contract = (await (await fetch(`${sandbox.baseUrl}/openapi.json`)).json()) as {
      paths: Record<string, Record<string, Operation>>
      servers: { url: string }[]
    }
    t.equal(contract.servers[0]?.url, sandbox.baseUrl, 'the served contract names the sandbox as its server')

    // Operations on a grant id come after the rest (which make the grant), and ending it comes last.
    const operations = Object.entries(contract.paths)
      .flatMap(([path, methods]) => Object.entries(methods).map(([method, operation]) => ({ path, method, operation })))
      .map((entry, order) => ({
        ...entry,
        rank: (entry.path.includes('{') ? 10 : 0) + (entry.method === 'delete' ? 5 : 0) + order / 100,
      }))
      .sort((a, b) => a.rank - b.rank)
    t.ok(operations.length >= 8, 'every operation of the contract')

    let grantId: string | undefined
    for (const { path, method, operation } of operations) {
      const name = `${method.toUpperCase()} ${path}`
      const request = exampleRequest(path, method, operation, grantId)
      t.same(request.missing, [], `${name}: every required input has an example`)
      const headers: Record<string, string> = { ...request.headers }
      if ((operation.security ?? []).length > 0) headers.authorization = `Bearer ${sandbox.token}`
      const response = await fetch(`${sandbox.baseUrl}${request.url}`, {
        method: method.toUpperCase(),
        headers,
        ...(request.body ? { body: request.body } : {}),
      })
      const text = await response.text()
      const documented = Object.keys(operation.responses).filter((status) => status.startsWith('2'))
      t.ok(
        documented.includes(String(response.status)),
        `${name} with its examples answers ${response.status}, one of its documented successes (${documented.join(', ')}): ${text}`,
      )
      if (method === 'post' && path === '/grants') grantId = (JSON.parse(text) as { id?: string }).id
    }
    t.ok(grantId, 'the POST /grants example made a grant')
  },
)
