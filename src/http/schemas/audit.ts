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
    limit: Type.Optional(Limit(100)),
    cursor: Type.Optional(Cursor),
  },
  { additionalProperties: false },
)

export const AuditPage = Type.Object(
  { items: Type.Array(Type.Ref('AuditEvent')), nextCursor: Nullable(Type.String()) },
  { $id: 'AuditPage', title: 'AuditPage' },
)
