import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import * as Type from '../../core/schema-builders.ts'

export const healthRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/health',
    {
      schema: {
        operationId: 'health',
        tags: ['health'],
        summary: 'Liveness',
        description: 'Answers while the process serves requests; no authentication.',
        security: [],
        response: { 200: Type.Object({ status: Type.String({ example: 'ok' }) }) },
      },
    },
    async () => ({ status: 'ok' }),
  )
}
