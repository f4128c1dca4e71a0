import { AUDIT_ACTIONS } from '../../core/audit.ts'
import * as Type from '../../core/schema-builders.ts'
import { AccountId, Cursor, Nullable, StringEnum, Timestamp } from './common.ts'

export const AuditEventSchema = Type.Object(
  {
    id: Type.String({ description: 'Event id (UUIDv7, sorts by time)' }),
    at: Timestamp,
    action: StringEnum(AUDIT_ACTIONS),
    actor: Type.String({ description: 'JWT subject, or system:sweep' }),
    grantId: Nullable(Type.String()),
    userName: Type.String(),
    accountId: Nullable(Type.String({ description: 'null on a group grant’s events' })),
    permissionSet: Nullable(Type.String({ description: 'null on a group grant’s events' })),
    groupName: Nullable(
      Type.String({
        description: 'A group grant’s Identity Store group; null on an account grant’s events (hashed only when set)',
      }),
    ),
    ticketId: Type.String(),
    detail: Type.String(),
    requestId: Nullable(
      Type.String({
        description:
          'This service’s id of the HTTP request that caused it (API Gateway’s behind API Gateway), as in the service logs; null for the scheduled sweep',
      }),
    ),
    correlationId: Nullable(
      Type.String({
        description:
          'The caller’s own x-request-id for that request, when it sent a valid one (1–128 of letters, digits and _.:=+/-). ' +
          'The caller’s label, not this service’s: it is not part of the hashed content, which requestId is. Null on events written before it was recorded',
      }),
    ),
    seq: Type.Integer({ description: 'Position in the tamper-evident chain (1, 2, 3… without gaps)' }),
    prevHash: Type.String({ description: 'hash of the event before this one in the chain' }),
    hash: Type.String({ description: 'SHA-256 (hex) over this event’s canonical content, including seq and prevHash' }),
  },
  {
    $id: 'AuditEvent',
    title: 'AuditEvent',
    example: {
      id: '019a7c1e-5b2a-7c3d-9e4f-0a1b2c3d4e60',
      at: '2026-11-25T10:00:00.120Z',
      action: 'grant.activated',
      actor: 'servicenow-workflow',
      grantId: '019a7c1e-5b2a-7c3d-9e4f-0a1b2c3d4e5f',
      userName: 'alice',
      accountId: '111111111111',
      permissionSet: 'AdministratorAccess',
      groupName: null,
      ticketId: 'CHG0031337',
      detail: 'account assignment in place',
      requestId: '7f1c2e9a-4b1d-4f0e-9d7c-2a3b4c5d6e7f',
      correlationId: 'RITM0010042',
      seq: 42,
      prevHash: '5d41402abc4b2a76b9719d911017c592ae2ef3b1a4b2f7c1d0e9f8a7b6c5d4e3',
      hash: '9b74c9897bac770ffc029102a200c5de1f3f0a2b4c6d8e0f1a3b5c7d9e1f2a3b',
    },
  },
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
    limit: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 10_000,
        description:
          'Page size: 1–100 for JSON (default 50); for CSV/NDJSON exports up to 10,000 (default: every matching event)',
      }),
    ),
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
    head: Type.Optional(
      Type.String({
        description:
          'Hash of the last verified event: anchor it outside this system (e.g. in the ticket) to detect later truncation',
      }),
    ),
    firstSeq: Type.Optional(Nullable(Type.Integer())),
    firstBadEventId: Type.Optional(
      Nullable(
        Type.String({ description: 'The first event that does not match (null when events at the end are missing)' }),
      ),
    ),
    firstBadSeq: Type.Optional(Type.Integer()),
    reason: Type.Optional(
      Type.String({
        description: 'What does not match; a log cut short or rewritten before an anchor names that anchor',
      }),
    ),
    anchored: Type.Boolean({
      description:
        'The log was compared with at least one head anchored in write-once storage (JIT_AUDIT_ANCHOR_BUCKET). ' +
        'false when no anchor store is set, or no anchor falls in the range: then only the chain vouches for itself',
    }),
    anchor: Type.Optional(
      Type.Object(
        {
          seq: Type.Integer({
            description: 'The anchored event: it and every event before it are covered by its hash',
          }),
          hash: Type.String(),
          at: Type.String({ format: 'date-time', description: 'When the anchor store received it' }),
          name: Type.String({ description: 'Where it is: the S3 object key' }),
        },
        { description: 'The newest anchor the log was compared with (on failure, possibly the one it contradicts)' },
      ),
    ),
  },
  { $id: 'AuditVerification', title: 'AuditVerification' },
)

export const AuditPage = Type.Object(
  { items: Type.Array(Type.Ref('AuditEvent')), nextCursor: Nullable(Type.String()) },
  { $id: 'AuditPage', title: 'AuditPage' },
)
