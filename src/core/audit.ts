export const AUDIT_ACTIONS = [
  'grant.requested',
  'grant.scheduled',
  'grant.start_requested',
  'grant.cancelled',
  'grant.extended',
  'grant.shortened',
  'grant.denied',
  'grant.activated',
  'grant.failed',
  'grant.revoke_requested',
  'grant.revoked',
  'grant.expired',
  'grant.drift_detected',
  'grant.delivery_failed',
  'grant.sessions_cut',
  'grant.cutoff_failed',
] as const
export type AuditAction = (typeof AUDIT_ACTIONS)[number]

/** Decisions published to subscribers (SNS); requests and intents stay in the audit log only. */
export const ANNOUNCED_ACTIONS: ReadonlySet<AuditAction> = new Set<AuditAction>([
  'grant.activated',
  'grant.revoked',
  'grant.expired',
  'grant.failed',
  'grant.denied',
  'grant.drift_detected',
  'grant.cancelled',
  'grant.extended',
  'grant.shortened',
  'grant.sessions_cut',
  'grant.cutoff_failed',
])

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
  /** An account grant's account and permission set; null for a group grant's events. */
  accountId: string | null
  permissionSet: string | null
  /**
   * A group grant's Identity Store group; absent (or null) for account grants. Hashed only when present, so
   * events written before group grants existed still verify.
   */
  groupName?: string | null
  ticketId: string
  detail: string
  /** The HTTP request that caused it, as this service (or the platform in front of it) named it: joins the audit log with service logs. */
  requestId: string | null
  /**
   * The caller's own id for that request (its x-request-id), to find the event from the caller's side. It is
   * outside the hashed content (see HASHED_FIELDS in audit-chain.ts), so events written before it existed
   * still verify; requestId, which is hashed, is the one to trust.
   */
  correlationId: string | null
}
