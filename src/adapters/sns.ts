import { PublishCommand, type SNSClient } from '@aws-sdk/client-sns'
import type { FastifyBaseLogger } from 'fastify'
import { describeCause } from '../core/errors.ts'
import type { Notifier } from '../core/ports.ts'

/** Publishes operational alerts to the SNS topic; with no topic configured, alerts only go to the log. */
export class SnsNotifier implements Notifier {
  private readonly client: SNSClient
  private readonly topicArn: string | undefined
  private readonly log: Pick<FastifyBaseLogger, 'warn' | 'error'>

  constructor(client: SNSClient, topicArn: string | undefined, log: Pick<FastifyBaseLogger, 'warn' | 'error'>) {
    this.client = client
    this.topicArn = topicArn
    this.log = log
  }

  async publish(subject: string, message: Record<string, unknown>): Promise<void> {
    this.log.warn({ alert: subject, ...message }, 'jit-access alert')
    if (!this.topicArn) return
    try {
      await this.client.send(new PublishCommand({
        TopicArn: this.topicArn,
        // SNS subjects are at most 100 printable ASCII characters.
        Subject: `jit-access: ${subject}`.replace(/[^\x20-\x7e]/g, '?').slice(0, 100),
        Message: JSON.stringify({ source: 'jit-access', subject, ...message }),
      }))
    } catch (error) {
      this.log.error({ alert: subject, error: describeCause(error) }, 'could not publish alert to SNS')
    }
  }
}
