import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs'
import type { DueMessage } from '../core/due-timers.ts'
import type { DueQueue } from '../core/ports.ts'
import { callAws } from './aws-errors.ts'

// The SQS client, for src/adapters/aws.ts to load with this module (see lazilyLoaded there).
export { SQSClient } from '@aws-sdk/client-sqs'

/** SQS's longest per-message delay. */
export const MAX_DELAY_SECONDS = 900
/** SQS's most messages in one SendMessageBatch. */
const BATCH = 10

/**
 * The due queue on SQS: each grant is a message with DelaySeconds to its second (rounded up, so that it is never
 * delivered before it is due), sent ten to a batch. A message any entry of a batch fails is sent once more,
 * then given up (the sweep acts on it anyway).
 */
export class SqsDueQueue implements DueQueue {
  private readonly sqs: SQSClient
  private readonly queueUrl: string

  constructor(sqs: SQSClient, queueUrl: string) {
    this.sqs = sqs
    this.queueUrl = queueUrl
  }

  async send(due: readonly { grantId: string; at: Date }[], now: Date): Promise<void> {
    const entries = due.map(({ grantId, at }, i) => ({
      Id: String(i),
      MessageBody: JSON.stringify({ grantId, dueAt: at.toISOString() } satisfies DueMessage),
      DelaySeconds: Math.min(MAX_DELAY_SECONDS, Math.max(0, Math.ceil((at.getTime() - now.getTime()) / 1000))),
    }))
    const failed: string[] = []
    for (let i = 0; i < entries.length; i += BATCH) {
      const batch = entries.slice(i, i + BATCH)
      const sent = await callAws('SQS', 'SendMessageBatch', () =>
        this.sqs.send(new SendMessageBatchCommand({ QueueUrl: this.queueUrl, Entries: batch })),
      )
      const retry = batch.filter((entry) => sent.Failed?.some((f) => f.Id === entry.Id && !f.SenderFault))
      if (retry.length > 0) {
        const again = await callAws('SQS', 'SendMessageBatch', () =>
          this.sqs.send(new SendMessageBatchCommand({ QueueUrl: this.queueUrl, Entries: retry })),
        )
        failed.push(...(again.Failed ?? []).map((f) => f.Id ?? '?'))
      }
      failed.push(...(sent.Failed ?? []).filter((f) => f.SenderFault).map((f) => f.Id ?? '?'))
    }
    if (failed.length > 0)
      throw new Error(`${failed.length} due message(s) could not be queued; the sweep acts on them`)
  }
}
