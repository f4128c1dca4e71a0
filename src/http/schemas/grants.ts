import type { Static } from 'typebox'
import { GRANT_STATUSES } from '../../core/grant-model.ts'
import * as Type from '../../core/schema-builders.ts'
import { AccountId, Cursor, Limit, Nullable, PrintableText, StringEnum, Timestamp } from './common.ts'

export const GrantRequestBody = Type.Object(
  {
    userName: PrintableText({
      minLength: 1,
      maxLength: 128,
      description: 'Identity Store user name (no control characters)',
      example: 'alice',
    }),
    accountId: Type.Optional({
      ...AccountId,
      description: 'An account grant: the AWS account (with permissionSet; never with groupName)',
    }),
    permissionSet: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 32,
        pattern: '^[\\w+=,.@-]+$',
        description: 'An account grant: the permission set name (with accountId; never with groupName)',
        example: 'AdministratorAccess',
      }),
    ),
    groupName: Type.Optional(
      PrintableText({
        minLength: 1,
        maxLength: 1024,
        description:
          'A group grant: the Identity Store group (display name) the user is added to for the duration, instead of accountId and permissionSet. ' +
          'The policy rule must list it in grantableGroups. Session cut-off (JIT_SESSION_CUTOFF) does not apply to group grants.',
        example: 'prod-breakglass',
      }),
    ),
    durationMinutes: Type.Integer({
      minimum: 1,
      description: 'How long the access lasts; bounded by the policy rule and the service maximum',
      example: 60,
    }),
    ticketId: Type.String({
      minLength: 1,
      maxLength: 64,
      pattern: '^[\\w.:#/-]+$',
      description: 'The change or incident ticket that justifies the access',
      example: 'CHG0031337',
    }),
    justification: Type.Optional(
      PrintableText({
        maxLength: 1000,
        description: 'Free text for auditors, on one line (no control characters: no tabs or line breaks)',
        example: 'Fix failing deployment',
      }),
    ),
    startsAt: Type.Optional(
      Type.String({
        format: 'date-time',
        maxLength: 40,
        description:
          'A later start (RFC 3339 with a time zone, e.g. a change window’s planned start), at most JIT_MAX_LEAD_DAYS (default 14) ahead and ' +
          'within the rule’s maxLeadDays. The grant is then recorded as scheduled and started by the first sweep after this time; expiresAt is ' +
          'startsAt plus durationMinutes. Leave it out to start now.',
        example: '2026-12-24T22:00:00Z',
      }),
    ),
    dryRun: Type.Optional(
      Type.Boolean({
        description:
          'true: decide the request exactly as it would be decided (directory, policy, organization, ticket approval) and answer 200 with ' +
          'the verdict (DryRunResult), recording nothing: no grant, no audit event, nothing created in Identity Center. Input a request would refuse ' +
          '(400, 422) is refused the same way; an Idempotency-Key is ignored. Default false.',
        example: false,
      }),
    ),
  },
  {
    additionalProperties: false,
    $id: 'GrantRequest',
    title: 'GrantRequest',
    description:
      'Two kinds of grant, told apart by their fields: an account grant names accountId and permissionSet (both), a group grant names ' +
      'groupName (alone). Any other mix (both kinds, neither, or half of the pair) is refused with 400 problem+json (VALIDATION_FAILED).',
    example: {
      userName: 'alice',
      accountId: '111111111111',
      permissionSet: 'AdministratorAccess',
      durationMinutes: 60,
      ticketId: 'CHG0031337',
      justification: 'Fix failing deployment',
    },
  },
)
export type GrantRequestBody = Static<typeof GrantRequestBody>

export const GrantSchema = Type.Object(
  {
    id: Type.String({ description: 'Grant id (UUIDv7, sorts by creation time)' }),
    status: StringEnum(GRANT_STATUSES, {
      description:
        'provisioning → active → revoking → expired | revoked; or failed. A grant with a later start is scheduled first, then starts ' +
        '(→ provisioning), is cancelled (DELETE before its start), or is denied at its start (the policy, asked again, refused it).',
    }),
    userName: Type.String(),
    userId: Type.String({ description: 'Identity Store user id' }),
    accountId: Nullable(Type.String({ description: 'An account grant’s account; null for a group grant' })),
    permissionSet: Nullable(Type.String({ description: 'An account grant’s permission set; null for a group grant' })),
    permissionSetArn: Nullable(Type.String({ description: 'null for a group grant' })),
    groupName: Nullable(
      Type.String({ description: 'A group grant’s Identity Store group (display name); null for an account grant' }),
    ),
    groupId: Nullable(
      Type.String({ description: 'A group grant’s Identity Store group id; null for an account grant' }),
    ),
    ticketId: Type.String(),
    justification: Nullable(Type.String()),
    requestedBy: Type.String({ description: 'The JWT subject that requested the grant' }),
    createdAt: Timestamp,
    startsAt: {
      ...Timestamp,
      description: 'When the access starts: the requested start of a scheduled grant, otherwise when it was requested',
    },
    expiresAt: { ...Timestamp, description: 'When the access ends; PATCH /grants/{id} moves it' },
    accessEndsBy: {
      ...Timestamp,
      description:
        'For a group grant, expiresAt. For an account grant, expiresAt plus the permission set session duration: a role session taken just before expiry lasts until then; once sessions are cut (sessionsCutAt), the cut plus the 5 minutes a service control policy takes to apply',
    },
    endedAt: Nullable(Timestamp),
    endedBy: Nullable(Type.String({ description: 'Who ended it: a JWT subject, or system:sweep on expiry' })),
    endReason: Nullable(StringEnum(['expired', 'revoked'] as const)),
    coveredBy: Nullable(
      StringEnum(['jit', 'pre-existing'] as const, {
        description: "'pre-existing': a permanent assignment already gave this access and is left in place",
      }),
    ),
    failureReason: Nullable(
      Type.String({ description: 'Why the grant failed, or why the policy denied a scheduled grant at its start' }),
    ),
    sessionsCutAt: Nullable(
      Type.String({
        format: 'date-time',
        description:
          'With JIT_SESSION_CUTOFF=scp, when the access ended: role sessions issued before it are denied by a service control policy. Null until then, and when no cut was made (access kept by another grant or a permanent assignment, or the policies were full: see the audit event grant.cutoff_failed)',
      }),
    ),
  },
  {
    $id: 'Grant',
    title: 'Grant',
    example: {
      id: '019a7c1e-5b2a-7c3d-9e4f-0a1b2c3d4e5f',
      status: 'active',
      userName: 'alice',
      userId: '94482488-3041-7026-18f5-1a2b3c4d5e6f',
      accountId: '111111111111',
      permissionSet: 'AdministratorAccess',
      permissionSetArn: 'arn:aws:sso:::permissionSet/ssoins-1111111111111111/ps-2222222222222222',
      groupName: null,
      groupId: null,
      ticketId: 'CHG0031337',
      justification: 'Fix failing deployment',
      requestedBy: 'servicenow-workflow',
      createdAt: '2026-11-25T10:00:00.000Z',
      startsAt: '2026-11-25T10:00:00.000Z',
      expiresAt: '2026-11-25T11:00:00.000Z',
      accessEndsBy: '2026-11-25T12:00:00.000Z',
      endedAt: null,
      endedBy: null,
      endReason: null,
      coveredBy: 'jit',
      failureReason: null,
      sessionsCutAt: null,
    },
  },
)

export const GrantRef = Type.Ref('Grant')

export const GrantListQuery = Type.Object(
  {
    status: Type.Optional(StringEnum(GRANT_STATUSES)),
    userName: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    accountId: Type.Optional(AccountId),
    ticketId: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    limit: Type.Optional(Limit(100)),
    cursor: Type.Optional(Cursor),
  },
  { additionalProperties: false },
)

export const GrantPage = Type.Object(
  { items: Type.Array(GrantRef), nextCursor: Nullable(Type.String()) },
  { $id: 'GrantPage', title: 'GrantPage' },
)

export const GrantEndChange = Type.Object(
  {
    expiresAt: Type.String({
      format: 'date-time',
      maxLength: 40,
      description:
        'The new end (RFC 3339 with a time zone): later extends the grant, earlier shortens it. In the future and after startsAt.',
      example: '2026-11-25T13:00:00Z',
    }),
  },
  {
    additionalProperties: false,
    $id: 'GrantEndChange',
    title: 'GrantEndChange',
    description: 'A JSON merge patch (RFC 7396) of a grant; expiresAt is the only field that can be changed.',
    example: { expiresAt: '2026-11-25T13:00:00Z' },
  },
)
export type GrantEndChange = Static<typeof GrantEndChange>

export const GrantIdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) })

export const DryRunResultSchema = Type.Object(
  {
    allowed: Type.Boolean({ description: 'Whether the request, sent without dryRun now, would be allowed' }),
    rule: Nullable(Type.String({ description: 'The rule that allows it, or (refused) the rule that came closest' })),
    failedCondition: Nullable(
      Type.String({
        description:
          'Refused: the condition that failed, as POLICY_DENIED (principal, account, permissionSet, group, duration, leadTime, ticket) or ' +
          'TICKET_NOT_APPROVED (ticket, ticketApproval, ticketState, ticketWindow) would name it; null when allowed',
      }),
    ),
    detail: Type.String({ description: 'Why, in words' }),
    policyVersion: Type.String({ description: 'The version of the policy that decided (GET /policy)' }),
  },
  {
    $id: 'DryRunResult',
    title: 'DryRunResult',
    example: {
      allowed: false,
      rule: 'oncall-incident-access',
      failedCondition: 'duration',
      detail:
        "Rule 'oncall-incident-access' allows at most 240 minutes for AdministratorAccess on 111111111111; 600 were requested",
      policyVersion: '3f2a9c1b7d4e',
    },
  },
)
