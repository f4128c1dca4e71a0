import { Type } from 'typebox'

/** One rule of the eligibility policy, as the policy file writes it (docs/reference.md, Eligibility policy). */
export const PolicyRuleSchema = Type.Object(
  {
    name: Type.String(),
    users: Type.Optional(Type.Array(Type.String(), { description: 'Identity Store user names' })),
    groups: Type.Optional(Type.Array(Type.String(), { description: 'Identity Store group display names (matched by id, resolved at start)' })),
    accounts: Type.Array(Type.String(), { description: 'Account ids, * (any), organizational units (ou-…, every account nested below) or the root (r-…)' }),
    accountTags: Type.Optional(Type.Object({}, { additionalProperties: Type.String(), description: 'Tags every allowed account must carry (AWS Organizations)' })),
    permissionSets: Type.Array(Type.String(), { description: 'Permission set names, or *' }),
    maxDurationMinutes: Type.Integer(),
    maxLeadDays: Type.Optional(Type.Integer({ description: 'How far ahead a grant may be scheduled; absent: the service maximum' })),
    ticketPattern: Type.Optional(Type.String({ description: 'RE2 pattern the whole ticket id must match' })),
  },
  { $id: 'PolicyRule', title: 'PolicyRule' },
)

export const PolicyViewSchema = Type.Object(
  {
    version: Type.String({
      description: 'The policy\u2019s identity: the first 12 hex digits of the SHA-256 of the document as canonical JSON (keys sorted). Every audited decision names it.',
      example: '3f2a9c1b7d4e',
    }),
    document: Type.Object({ rules: Type.Array(Type.Ref('PolicyRule')) }, { description: 'The eligibility policy the service decides with, as loaded at start' }),
  },
  {
    $id: 'PolicyView',
    title: 'PolicyView',
    example: {
      version: '3f2a9c1b7d4e',
      document: { rules: [{ name: 'oncall-incident-access', groups: ['oncall'], accounts: ['111111111111'], permissionSets: ['AdministratorAccess'], maxDurationMinutes: 240, ticketPattern: '(CHG|INC)[0-9]{7}' }] },
    },
  },
)
