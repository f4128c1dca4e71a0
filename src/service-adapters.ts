import type {
  AccountDirectory,
  AuditAnchors,
  AuditLog,
  CursorSeal,
  CutoffLedger,
  CutoffPolicies,
  Directory,
  DueQueue,
  GrantStore,
  IdempotencyStore,
  IdentityCenter,
  MessageChannel,
  Notifier,
  OutboxStore,
  TicketApproval,
} from './core/ports.ts'

/**
 * What the service needs from the outside world: the core's ports and the HTTP edge's idempotency store.
 * src/adapters/aws.ts provides them on AWS; src/app.ts takes them. Here, so that adapters depend on the
 * ports they implement and not on the app that uses them.
 */
export interface ServiceAdapters {
  store: GrantStore
  auditLog: AuditLog
  /** Where the sweep anchors the audit chain's head; absent, nothing is anchored. */
  auditAnchors?: AuditAnchors | undefined
  identityCenter: IdentityCenter
  directory: Directory
  /** The organization's accounts, OUs and tags, for policy rules that name them; absent, such rules cannot be evaluated. */
  accounts?: AccountDirectory | undefined
  notifier: Notifier
  /** Where the messages audit events owe subscribers wait until they are delivered. */
  outboxStore?: OutboxStore | undefined
  /** The subscribers: SNS lifecycle messages, the ticket's work notes; each only when configured. */
  messageChannels?: MessageChannel[] | undefined
  /** Asked before access is granted whether the ticket approves it (ServiceNow); unset, tickets are not checked. */
  ticketApproval?: TicketApproval | undefined
  idempotency: IdempotencyStore
  /** Seals the cursors of answers paged outside DynamoDB (GET /eligibility); the stores seal their own. */
  cursors: CursorSeal
  /** Cuts live role sessions when a grant's access ends (JIT_SESSION_CUTOFF=scp); absent, nothing is cut. */
  sessionCutoff?: { ledger: CutoffLedger; policies: CutoffPolicies } | undefined
  /** Where each sweep puts the grants due before its next run, to be handed back at their second (Lambda); absent, none. */
  dueQueue?: DueQueue | undefined
}
