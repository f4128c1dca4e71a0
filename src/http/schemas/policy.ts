import * as Type from '../../core/schema-builders.ts'

/** One rule of the eligibility policy, as the policy file writes it (docs/reference.md, Eligibility policy). */
export const PolicyRuleSchema = Type.Object(
  {
    name: Type.String(),
    users: Type.Optional(Type.Array(Type.String(), { description: 'Identity Store user names' })),
    groups: Type.Optional(
      Type.Array(Type.String(), {
        description: 'Identity Store group display names (matched by id, resolved at start)',
      }),
    ),
    accounts: Type.Optional(
      Type.Array(Type.String(), {
        description:
          'Account ids, * (any), organizational units (ou-…, every account nested below) or the root (r-…); absent in a rule of grantable groups only',
      }),
    ),
    accountTags: Type.Optional(
      Type.Object(
        {},
        {
          additionalProperties: Type.String(),
          description: 'Tags every allowed account must carry (AWS Organizations)',
        },
      ),
    ),
    permissionSets: Type.Optional(
      Type.Array(Type.String(), {
        description: 'Permission set names, or *; absent in a rule of grantable groups only',
      }),
    ),
    grantableGroups: Type.Optional(
      Type.Array(Type.String(), {
        description: 'Identity Store groups (display names) a group grant under this rule may add the user to',
      }),
    ),
    maxDurationMinutes: Type.Integer(),
    maxLeadDays: Type.Optional(
      Type.Integer({ description: 'How far ahead a grant may be scheduled; absent: the service maximum' }),
    ),
    ticketPattern: Type.Optional(Type.String({ description: 'RE2 pattern the whole ticket id must match' })),
  },
  { $id: 'PolicyRule', title: 'PolicyRule' },
)

export const PolicyViewSchema = Type.Object(
  {
    version: Type.String({
      description:
        'The policy\u2019s identity: the first 12 hex digits of the SHA-256 of the document as canonical JSON (keys sorted). Every audited decision names it.',
      example: '3f2a9c1b7d4e',
    }),
    document: Type.Object(
      { rules: Type.Array(Type.Ref('PolicyRule')) },
      { description: 'The eligibility policy the service decides with, as loaded at start' },
    ),
  },
  {
    $id: 'PolicyView',
    title: 'PolicyView',
    example: {
      version: '3f2a9c1b7d4e',
      document: {
        rules: [
          {
            name: 'oncall-incident-access',
            groups: ['oncall'],
            accounts: ['111111111111'],
            permissionSets: ['AdministratorAccess'],
            maxDurationMinutes: 240,
            ticketPattern: '(CHG|INC)[0-9]{7}',
          },
        ],
      },
    },
  },
)

export const EligibilityQuery = Type.Object(
  {
    userName: Type.String({
      minLength: 1,
      maxLength: 128,
      description: 'The Identity Store user name',
      example: 'alice',
    }),
    limit: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 500,
        default: 100,
        description:
          'At most this many accounts per rule (1–500); a rule with more says truncated and gives a nextCursor',
      }),
    ),
    cursor: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 1024,
        pattern: '^[A-Za-z0-9_-]+$',
        description:
          'A rule’s nextCursor from an earlier answer: only that rule is answered, its accounts from where the earlier page ended',
      }),
    ),
  },
  { additionalProperties: false },
)

const EligibleRuleSchema = Type.Object({
  rule: Type.String({ description: 'The rule’s name' }),
  permissionSets: Type.Array(Type.String(), {
    description: 'Permission set names (* : any); empty for a rule of grantable groups only',
  }),
  grantableGroups: Type.Array(Type.String(), {
    description: 'Identity Store groups a group grant (groupName) under this rule may add the user to; empty: none',
  }),
  accountScope: Type.Array(Type.String(), {
    description: 'The rule’s accounts as the policy writes them: ids, *, OUs (ou-…) and the root (r-…)',
  }),
  accountTags: Type.Unsafe<Record<string, string> | null>({
    type: 'object',
    additionalProperties: { type: 'string' },
    nullable: true,
    description: 'Tags every account must carry; null: none required',
  }),
  anyAccount: Type.Boolean({
    description: 'The rule names * (every account, within accountTags): those accounts are not listed',
  }),
  accounts: Type.Array(
    Type.Object({
      id: Type.String(),
      name: Type.Unsafe<string | null>({
        type: 'string',
        nullable: true,
        description: 'From AWS Organizations; null when it was not asked',
      }),
    }),
    { description: 'The accounts the rule names or reaches through OUs (active ones) and tags, at most limit' },
  ),
  truncated: Type.Boolean({ description: 'More accounts may follow: nextCursor continues the list' }),
  nextCursor: Type.Unsafe<string | null>({
    type: 'string',
    nullable: true,
    description: 'Pass as cursor (same userName) for this rule’s next accounts; null: the list is complete',
  }),
  maxDurationMinutes: Type.Integer({ description: 'The longest grant, bounded by the service maximum' }),
  maxLeadDays: Type.Integer({
    description: 'How far ahead a grant may start (startsAt), bounded by the service maximum; 0: only now',
  }),
  ticketPattern: Type.Unsafe<string | null>({
    type: 'string',
    nullable: true,
    description: 'RE2 pattern the whole ticket id must match; null: any ticket',
  }),
})

export const EligibilitySchema = Type.Object(
  {
    userName: Type.String({ description: 'The user, as the directory spells the name' }),
    policyVersion: Type.String({ description: 'The version of the policy that answered (GET /policy)' }),
    rules: Type.Array(EligibleRuleSchema, {
      description: 'Every rule whose users or groups include the user; empty: the user may request nothing',
    }),
  },
  {
    $id: 'Eligibility',
    title: 'Eligibility',
    example: {
      userName: 'alice',
      policyVersion: '3f2a9c1b7d4e',
      rules: [
        {
          rule: 'oncall-incident-access',
          permissionSets: ['AdministratorAccess', 'ReadOnlyAccess'],
          grantableGroups: ['prod-breakglass'],
          accountScope: ['111111111111', 'ou-ab12-cdef3456'],
          accountTags: null,
          anyAccount: false,
          accounts: [
            { id: '111111111111', name: 'production' },
            { id: '444444444444', name: 'payments-prod' },
          ],
          truncated: false,
          nextCursor: null,
          maxDurationMinutes: 240,
          maxLeadDays: 14,
          ticketPattern: '(CHG|INC)[0-9]{7}',
        },
      ],
    },
  },
)
