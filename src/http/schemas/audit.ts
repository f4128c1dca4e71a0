import { Type } from 'typebox'
import { AUDIT_ACTIONS } from '../../core/audit.ts'
import { AccountId, Cursor, Limit, Nullable, StringEnum, Timestamp } from './common.ts'

export const AuditEventSchema = Type.Object(
  {
    id: Type.String({ description: 'Event id (UUIDv7, sorts by time)' }),
    at: Timestamp,
    action: StringEnum(AUDIT_ACTIONS),
    actor: Type.String({ description: 'JWT subject, or system:sweep' }),
    grantId: Nullable(Type.String()),
    userName: Type.String(),
    accountId: Type.String(),
    permissionSet: Type.String(),
    ticketId: Type.String(),
    detail: Type.String(),
    requestId: Nullable(Type.String()),
    seq: Type.Integer({ description: 'Position in the tamper-evident chain (1, 2, 3… without gaps)' }),
    prevHash: Type.String({ description: 'hash of the event before this one in the chain' }),
    hash: Type.String({ description: 'SHA-256 (hex) over this event’s canonical content, including seq and prevHash' }),
  },
  { $id: 'AuditEvent', title: 'AuditEvent' },
)

export const AuditQuery = Type.Object(
  {
    from: Type.Optional({ ...Timestamp, description: 'Events at or after this time' }),
    to: Type.Optional({ ...Timestamp, description: 'Events at or before this time' }),
    userName: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    accountId: Type.Optional(AccountId),
    ticketId: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    grantId: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    action: Type.Optional(StringEnum(AUDIT_ACTIONS)),
    actor: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, description: 'Page size: 1–100 for JSON (default 50); for CSV/NDJSON exports up to 10,000 (default: every matching event)' })),
    cursor: Type.Optional(Cursor),
  },
  { additionalProperties: false },
)

export const VerifyQuery = Type.Object(
  {
    from: Type.Optional({ ...Timestamp, description: 'Verify from the first event at or after this time' }),
    to: Type.Optional({ ...Timestamp, description: 'Verify up to the last event at or before this time' }),
  },
  { additionalProperties: false },
)

export const VerifyResultSchema = Type.Object(
  {
    ok: Type.Boolean(),
    events: Type.Integer({ description: 'Events verified' }),
    head: Type.Optional(Type.String({ description: 'Hash of the last verified event: anchor it outside this system (e.g. in the ticket) to detect later truncation' })),
    firstSeq: Type.Optional(Nullable(Type.Integer())),
    firstBadEventId: Type.Optional(Nullable(Type.String({ description: 'The first event that does not match (null when events at the end are missing)' }))),
    firstBadSeq: Type.Optional(Type.Integer()),
    reason: Type.Optional(Type.String()),
  },
  { $id: 'AuditVerification', title: 'AuditVerification' },
)

export const AuditPage = Type.Object(
  { items: Type.Array(Type.Ref('AuditEvent')), nextCursor: Nullable(Type.String()) },
  { $id: 'AuditPage', title: 'AuditPage' },
)
