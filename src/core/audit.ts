export const AUDIT_ACTIONS = [
  'grant.requested',
  'grant.denied',
  'grant.activated',
  'grant.failed',
  'grant.revoke_requested',
  'grant.revoked',
  'grant.expired',
  'grant.drift_detected',
] as const
export type AuditAction = (typeof AUDIT_ACTIONS)[number]

/** The actor of everything the sweep does when called over HTTP (POST /revocations). */
export const SWEEP_ACTOR = 'system:sweep'
/** The actor of everything the sweep does when EventBridge invokes the Lambda directly. */
export const SCHEDULER_ACTOR = 'system:scheduler'

/** One immutable record of a decision: who asked, for whom, what, why (ticket) and when. */
export interface AuditEvent {
  id: string
  at: string
  action: AuditAction
  actor: string
  grantId: string | null
  userName: string
  accountId: string
  permissionSet: string
  ticketId: string
  detail: string
  /** The HTTP request that caused it, to join the audit log with service logs. */
  requestId: string | null
}
