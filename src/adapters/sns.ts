import { PublishCommand, type SNSClient } from '@aws-sdk/client-sns'
import type { FastifyBaseLogger } from 'fastify'
import type { AuditEvent } from '../core/audit.ts'
import { describeCause } from '../core/errors.ts'
import type { Notifier } from '../core/ports.ts'

type Severity = 'info' | 'warning' | 'error'

const SEVERITY: Partial<Record<AuditEvent['action'], Severity>> = {
  'grant.failed': 'error',
  'grant.denied': 'warning',
  'grant.drift_detected': 'warning',
  // Live sessions go on to their natural end: worth a look, and the error alert that comes with it says why.
  'grant.cutoff_failed': 'warning',
}

/**
 * Publishes lifecycle events and alerts to the SNS topic as JSON, with message attributes (`action`,
 * `accountId`, `severity`) that subscription filter policies can match. Messages carry audit fields only:
 * never a token or a secret. The SDK retries a failed publish; what still fails is logged, never thrown.
 * With no topic configured, everything goes to the log only.
 *
 * A message is sent after the call that hands it over returns: a grant's answer does not wait for SNS. Its
 * state change and audit event are already written by then, so nothing the message says can be undone.
 * Whoever ends the process's work (the server's shutdown, the Lambda handler before it returns and the
 * environment is frozen) waits for `flush`.
 */
export class SnsNotifier implements Notifier {
  private readonly client: SNSClient
  private readonly topicArn: string | undefined
  private readonly log: Pick<FastifyBaseLogger, 'warn' | 'error'>
  private readonly inFlight = new Set<Promise<void>>()

  constructor(client: SNSClient, topicArn: string | undefined, log: Pick<FastifyBaseLogger, 'warn' | 'error'>) {
    this.client = client
    this.topicArn = topicArn
    this.log = log
  }

  async lifecycle(event: AuditEvent): Promise<void> {
    const severity = SEVERITY[event.action] ?? 'info'
    this.dispatch(`${event.action} ${event.permissionSet} on ${event.accountId}`, { source: 'jit-access', severity, ...event }, {
      action: event.action,
      accountId: event.accountId,
      severity,
    })
  }

  async error(subject: string, detail: Record<string, unknown>): Promise<void> {
    this.log.warn({ alert: subject, ...detail }, 'jit-access alert')
    this.dispatch(subject, { source: 'jit-access', severity: 'error', action: 'error', subject, ...detail }, {
      action: 'error',
      severity: 'error',
      ...(typeof detail.accountId === 'string' ? { accountId: detail.accountId } : {}),
    })
  }

  async flush(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all(this.inFlight)
  }

  private dispatch(subject: string, message: Record<string, unknown>, attributes: Record<string, string>): void {
    if (!this.topicArn) return
    const sending = this.send(this.topicArn, subject, message, attributes).finally(() => this.inFlight.delete(sending))
    this.inFlight.add(sending)
  }

  private async send(topicArn: string, subject: string, message: Record<string, unknown>, attributes: Record<string, string>): Promise<void> {
    try {
      await this.client.send(new PublishCommand({
        TopicArn: topicArn,
        // SNS subjects are at most 100 printable ASCII characters.
        Subject: `jit-access: ${subject}`.replace(/[^\x20-\x7e]/g, '?').slice(0, 100),
        Message: JSON.stringify(message),
        MessageAttributes: Object.fromEntries(Object.entries(attributes).map(([name, value]) => [name, { DataType: 'String', StringValue: value }])),
      }))
    } catch (error) {
      this.log.error({ subject, error: describeCause(error) }, 'could not publish to SNS')
    }
  }
}
