import fastifySwagger from '@fastify/swagger'
import fastifySwaggerUi from '@fastify/swagger-ui'
import Fastify, { type InjectOptions, type LightMyRequestResponse, type RouteOptions } from 'fastify'
import { PACKAGE_LICENSE, PACKAGE_VERSION } from '../package-info.ts'
import { type DocsOptions, originOf, PLACEHOLDER_SERVER, servedDocument } from './docs.ts'

export interface DocsApp {
  document(): Record<string, unknown>
  inject(request: InjectOptions): Promise<LightMyRequestResponse>
}

/**
 * @fastify/swagger describes the service's routes, replayed here (method, URL, schema) with handlers that are never
 * called; @fastify/swagger-ui serves the page at the same paths as the service does (src/http/docs.ts forwards).
 */
export async function buildDocsApp(routes: RouteOptions[], options: DocsOptions): Promise<DocsApp> {
  // The service validates and serializes; here the schemas are only described (and Fastify's default compilers,
  // which the Lambda bundle leaves out, are never loaded).
  const app = Fastify({
    logger: false,
    schemaController: {
      compilersFactory: {
        buildValidator: (() => () => () => true) as never,
        buildSerializer: () => () => (body: unknown) => JSON.stringify(body),
      },
    },
  })
  for (const schema of options.schemas) app.addSchema(schema)

  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'jit-access',
        version: PACKAGE_VERSION,
        description:
          'Just-in-time privileged access for AWS IAM Identity Center: time-bound account assignments that remove themselves, with an audit trail.',
        license: { name: PACKAGE_LICENSE, url: `https://spdx.org/licenses/${PACKAGE_LICENSE}.html` },
      },
      servers: [PLACEHOLDER_SERVER],
      components: {
        securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
      },
      tags: [
        { name: 'grants', description: 'Request, inspect and end temporary access' },
        { name: 'audit', description: 'Every decision, for auditors' },
        { name: 'policy', description: 'The eligibility policy in force, and what a user may request' },
        { name: 'revocations', description: 'The scheduled sweep' },
        { name: 'health', description: 'Liveness' },
      ],
    },
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`),
    },
  })
  await app.register(fastifySwaggerUi, {
    routePrefix: '/docs',
    // The page loads /docs/json: the request forwarded here carries the caller's Host and X-Forwarded-Proto.
    transformSpecification: (document, request) =>
      servedDocument(document, originOf(request.headers, request.protocol)),
    ...(options.assetsDir ? { baseDir: options.assetsDir } : {}),
  })
  const described = async () => {
    throw new Error('only described here: src/http/docs.ts forwards nothing but the docs page')
  }
  for (const { method, url, schema, config } of routes) {
    app.route({ method, url, handler: described, ...(schema ? { schema } : {}), ...(config ? { config } : {}) })
  }
  await app.ready()
  return {
    document: () => app.swagger() as unknown as Record<string, unknown>,
    inject: (request) => app.inject(request),
  }
}
