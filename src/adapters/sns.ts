import { PublishCommand, type SNSClient } from '@aws-sdk/client-sns'
import type { FastifyBaseLogger } from 'fastify'
import { ANNOUNCED_ACTIONS, type AuditEvent } from '../core/audit.ts'
import { describeCause } from '../core/errors.ts'
import { accessOf } from '../core/grant-model.ts'
import type { MessageChannel, Notifier, OutboxMessage } from '../core/ports.ts'

type Severity = 'info' | 'warning' | 'error'

const SEVERITY: Partial<Record<AuditEvent['action'], Severity>> = {
  'grant.failed': 'error',
  'grant.denied': 'warning',
  'grant.drift_detected': 'warning',
  // Live sessions go on to their natural end: worth a look, and the error alert that comes with it says why.
  'grant.cutoff_failed': 'warning',
}

/**
 * Publishes lifecycle events (through the outbox: SnsLifecycleChannel) and operational alerts (SnsNotifier) to
 * the SNS topic as JSON, with message attributes (`action`, `accountId`, `severity`, and for lifecycle events
 * `eventId`) that subscription filter policies can match. Messages carry audit fields only: never a token or a
 * secret. Lifecycle messages are delivered at least once: a subscriber that must not act twice keys on
 * `eventId`.
 */
export class SnsLifecycleChannel implements MessageChannel {
  readonly channel = 'lifecycle' as const
  private readonly client: SNSClient
  private readonly topicArn: string

  constructor(client: SNSClient, topicArn: string) {
    this.client = client
    this.topicArn = topicArn
  }

  wants(event: AuditEvent): boolean {
    return ANNOUNCED_ACTIONS.has(event.action)
  }

  async deliver({ event }: OutboxMessage, _redelivery: boolean, signal: AbortSignal): Promise<void> {
    const severity = SEVERITY[event.action] ?? 'info'
    await publish(
      this.client,
      this.topicArn,
      `${event.action} ${accessOf(event)}`,
      { source: 'jit-access', severity, ...event },
      {
        action: event.action,
        // A group grant's events carry groupName instead of accountId (subscribers may filter on either).
        ...(event.groupName ? { groupName: event.groupName } : { accountId: event.accountId ?? '' }),
        severity,
        eventId: event.id,
      },
      signal,
    )
  }
}

/**
 * Alerts are sent after the call that hands them over returns: nobody's answer waits for SNS. Whoever ends the
 * process's work (the server's shutdown, the Lambda handler before it returns and the environment is frozen)
 * waits for `flush`. The SDK retries a failed publish; what still fails is logged, never thrown. With no topic
 * configured, alerts go to the log only.
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

  async error(subject: string, detail: Record<string, unknown>): Promise<void> {
    this.log.warn({ alert: subject, ...detail }, 'jit-access alert')
    this.dispatch(
      subject,
      { source: 'jit-access', severity: 'error', action: 'error', subject, ...detail },
      {
        action: 'error',
        severity: 'error',
        ...(typeof detail.accountId === 'string' ? { accountId: detail.accountId } : {}),
      },
    )
  }

  async flush(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all(this.inFlight)
  }

  private dispatch(subject: string, message: Record<string, unknown>, attributes: Record<string, string>): void {
    if (!this.topicArn) return
    const sending: Promise<void> = publish(this.client, this.topicArn, subject, message, attributes)
      .then(
        () => undefined,
        (error: unknown) => this.log.error({ subject, error: describeCause(error) }, 'could not publish to SNS'),
      )
      .finally(() => this.inFlight.delete(sending))
    this.inFlight.add(sending)
  }
}

function publish(
  client: SNSClient,
  topicArn: string,
  subject: string,
  message: Record<string, unknown>,
  attributes: Record<string, string>,
  signal?: AbortSignal,
) {
  return client.send(
    new PublishCommand({
      TopicArn: topicArn,
      // SNS subjects are at most 100 printable ASCII characters.
      Subject: `jit-access: ${subject}`.replace(/[^\x20-\x7e]/g, '?').slice(0, 100),
      Message: JSON.stringify(message),
      MessageAttributes: Object.fromEntries(
        Object.entries(attributes).map(([name, value]) => [name, { DataType: 'String', StringValue: value }]),
      ),
    }),
    signal ? { abortSignal: signal } : {},
  )
}
