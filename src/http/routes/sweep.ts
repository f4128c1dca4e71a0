import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { SWEEP_ACTOR } from '../../core/audit.ts'
import * as Type from '../../core/schema-builders.ts'
import type { SweepRun, SweepSummary } from '../../core/sweep.ts'
import { requireScope, SCOPES } from '../auth.ts'
import { errorResponses } from '../schemas/common.ts'

export const sweepRoutes: FastifyPluginAsyncTypebox<{ runSweep: (run: SweepRun) => Promise<SweepSummary> }> = async (
  app,
  { runSweep },
) => {
  app.post(
    '/revocations',
    {
      onRequest: requireScope(SCOPES.revocationsRun),
      schema: {
        operationId: 'runRevocationSweep',
        tags: ['revocations'],
        summary: 'Revoke every expired grant (the scheduled sweep)',
        description:
          'Called every minute by the scheduler. Removes the access of every grant whose expiry has passed, and finishes grants left provisioning or revoking ' +
          'by an earlier failure. Grants not finished in this run are counted as remaining and picked up by the next.',
        security: [{ bearerAuth: [SCOPES.revocationsRun] }],
        response: { 200: Type.Ref('SweepSummary'), ...errorResponses(401, 403, 503) },
      },
    },
    async (request) => runSweep({ actor: SWEEP_ACTOR, triggeredBy: request.user.sub }),
  )
}
