import type { IncomingHttpHeaders } from 'node:http'
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import type { DocsApp } from './docs-app.ts'

export interface DocsOptions {
  /** The shared schemas the routes refer to ($id), which the document lists under components. */
  schemas: object[]
  /** Where the docs page's static files are, when running from a bundle; unset, @fastify/swagger-ui's own. */
  assetsDir?: string | undefined
}

/**
 * The committed contract's server. Only a running service knows its own URL, so the document it serves (GET
 * /openapi.json, and the one the docs page loads) names the server it was served from instead: the docs
 * page's "Try it out" then calls that service, on whatever port or domain it answers.
 */
export const PLACEHOLDER_SERVER = {
  url: '{origin}',
  description: 'Placeholder: a running service serves this document with its own URL here',
  variables: {
    origin: {
      default: 'http://127.0.0.1:3000',
      description: 'The URL npm start prints, or in AWS the stack output ApiUrl',
    },
  },
}

/** A Host header that is a host name or IP literal with an optional port, and nothing else. */
const HOST =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/

/**
 * The URL a request reached the service at: its Host header, with the scheme API Gateway, a function URL or a
 * load balancer saw (`X-Forwarded-Proto`) or else the socket's. Undefined when the Host header is missing or
 * malformed. Client-supplied either way, which is harmless here: the document goes back to that client.
 */
export function originOf(headers: IncomingHttpHeaders, socketProtocol: string): string | undefined {
  const host = headers.host
  if (typeof host !== 'string' || !HOST.test(host)) return undefined
  const forwarded = String(headers['x-forwarded-proto'] ?? '')
    .split(',')[0]
    ?.trim()
    .toLowerCase()
  const protocol = forwarded === 'http' || forwarded === 'https' ? forwarded : socketProtocol
  return `${protocol}://${host}`
}

/**
 * The document as served from `origin`: its only server is that one (relative to the page when unknown), and
 * the example of a new end for PATCH /grants/{id} lies ahead of now (90 minutes, within the sandbox policy's
 * 240 for a grant made from the POST example), since an end in the past is refused.
 */
export function servedDocument<T extends object>(
  document: T,
  origin: string | undefined,
  now = new Date(),
): T & { servers: { url: string; description: string }[] } {
  return {
    ...withEndExampleAhead(document, now),
    servers: [{ url: origin ?? '/', description: 'The service that served this document' }],
  }
}

function withEndExampleAhead<T extends object>(document: T, now: Date): T {
  const operation = (
    document as {
      paths?: Record<
        string,
        Record<
          string,
          {
            requestBody?: {
              content?: Record<
                string,
                { schema?: { example?: unknown; properties?: { expiresAt?: { example?: unknown } } } }
              >
            }
          }
        >
      >
    }
  ).paths?.['/grants/{id}']?.patch
  if (!operation?.requestBody?.content) return document
  const expiresAt = new Date(Math.ceil((now.getTime() + 90 * 60_000) / 60_000) * 60_000)
    .toISOString()
    .replace('.000Z', 'Z')
  const copy = structuredClone(document)
  const content =
    (copy as typeof document & { paths: Record<string, Record<string, typeof operation>> }).paths['/grants/{id}']?.patch
      ?.requestBody?.content ?? {}
  for (const media of Object.values(content)) {
    if (!media.schema) continue
    media.schema.example = { expiresAt }
    if (media.schema.properties?.expiresAt) media.schema.properties.expiresAt.example = expiresAt
  }
  return copy
}

/** Sent by the docs app for each connection or message only; Fastify sets the ones that apply to the forwarded answer. */
const NOT_FORWARDED = new Set(['connection', 'content-length', 'date', 'keep-alive', 'transfer-encoding'])

/**
 * GET /openapi.json (the contract, from the routes' schemas) and the docs page under /docs.
 *
 * @fastify/swagger and @fastify/swagger-ui (with @fastify/static, yaml and glob) are loaded and set up only when
 * one of these is first requested, in an app of their own (./docs-app.ts) given the same routes: few execution
 * environments ever serve the docs, and loading them cost every cold start about 30 ms. This app records the
 * routes as they are added, which is why it must be registered before them.
 */
export function registerDocs(app: FastifyInstance, options: DocsOptions): void {
  const routes: RouteOptions[] = []
  let ready = false
  app.addHook('onRoute', (route) => {
    // Fastify adds a HEAD route beside each GET; the docs app adds its own, and the document leaves them out.
    if (route.method !== 'HEAD' && !(route.schema as { hide?: boolean } | undefined)?.hide) routes.push(route)
  })
  app.addHook('onReady', async () => {
    ready = true
  })

  let docs: Promise<DocsApp> | undefined
  const docsApp = () => {
    if (!ready) throw new Error('The OpenAPI document describes the routes: it is available once the app is ready')
    docs ??= import('./docs-app.ts').then(({ buildDocsApp }) => buildDocsApp(routes, options))
    return docs
  }

  app.decorate('openapi', async () => (await docsApp()).document())
  app.get('/openapi.json', { schema: { hide: true } }, async (request) =>
    servedDocument(await app.openapi(), originOf(request.headers, request.protocol)),
  )

  const forward = async (request: FastifyRequest, reply: FastifyReply) => {
    // GET for a HEAD request too: Fastify answers HEAD from the GET route's answer.
    const answer = await (await docsApp()).inject({ method: 'GET', url: request.url, headers: request.headers })
    if (answer.statusCode === 404) return reply.callNotFound()
    for (const [name, value] of Object.entries(answer.headers)) {
      if (value !== undefined && !NOT_FORWARDED.has(name)) reply.header(name, value)
    }
    // An empty body (a redirect, a 304) is sent as none, which gets no content type.
    return reply.code(answer.statusCode).send(answer.rawPayload.length > 0 ? answer.rawPayload : undefined)
  }
  app.get('/docs', { schema: { hide: true } }, forward)
  app.get('/docs/*', { schema: { hide: true } }, forward)
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The OpenAPI document of this app's routes, with PLACEHOLDER_SERVER (openapi/openapi.json is this, committed). */
    openapi(): Promise<Record<string, unknown>>
  }
}
