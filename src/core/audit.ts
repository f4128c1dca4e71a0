export const AUDIT_ACTIONS = [
  'grant.requested',
  'grant.denied',
  'grant.activated',
  'grant.failed',
  'grant.revoke_requested',
  'grant.revoked',
  'grant.expired',
] as const
export type AuditAction = (typeof AUDIT_ACTIONS)[number]

/** The actor of everything the scheduled sweep does. */
export const SWEEP_ACTOR = 'system:sweep'

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
