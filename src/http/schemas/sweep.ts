import * as Type from '../../core/schema-builders.ts'

export const SweepSummarySchema = Type.Object(
  {
    revoked: Type.Integer({ description: 'Grants whose access this run ended' }),
    activated: Type.Integer({ description: 'Grants whose provisioning this run confirmed' }),
    denied: Type.Integer({
      description: 'Scheduled grants the policy refused at their start (the user is no longer eligible)',
    }),
    failed: Type.Integer({ description: 'Grants this run could not finish; retried next run' }),
    remaining: Type.Integer({ description: 'Grants still due (Identity Center busy, or time budget spent)' }),
    checked: Type.Integer({
      description: 'Assignments checked against Identity Center (each is checked every few minutes)',
    }),
    drifted: Type.Integer({ description: 'Grants ended because their assignment was removed outside jit-access' }),
    undelivered: Type.Integer({
      description:
        'Messages (SNS lifecycle, ticket work notes) still waiting for delivery: their receiver is failing; retried with backoff',
    }),
  },
  { $id: 'SweepSummary', title: 'SweepSummary' },
)
