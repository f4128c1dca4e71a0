import { Type, type Static } from 'typebox'
import { Value } from 'typebox/value'

const NonEmpty = Type.String({ minLength: 1 })

const RuleSchema = Type.Object(
  {
    name: NonEmpty,
    users: Type.Optional(Type.Array(NonEmpty)),
    groups: Type.Optional(Type.Array(NonEmpty)),
    accounts: Type.Array(Type.String({ pattern: '^(\\*|[0-9]{12})$' }), { minItems: 1 }),
    permissionSets: Type.Array(NonEmpty, { minItems: 1 }),
    maxDurationMinutes: Type.Integer({ minimum: 1 }),
    ticketPattern: Type.Optional(NonEmpty),
  },
  { additionalProperties: false },
)

export const PolicySchema = Type.Object(
  { rules: Type.Array(RuleSchema, { minItems: 1 }) },
  { additionalProperties: false },
)

export type PolicyDocument = Static<typeof PolicySchema>
type RuleDocument = Static<typeof RuleSchema>

interface Rule extends Omit<RuleDocument, 'ticketPattern'> {
  ticketPattern?: RegExp
}

export interface Policy {
  rules: Rule[]
}

export class PolicyInvalidError extends Error {
  constructor(problems: string[]) {
    super(`The eligibility policy is invalid: ${problems.join('; ')}`)
    this.name = 'PolicyInvalidError'
  }
}

/** Validates a policy document; any problem refuses it as a whole, so the service never runs on half a policy. */
export function parsePolicy(document: unknown): Policy {
  if (!Value.Check(PolicySchema, document)) {
    const problems = Value.Errors(PolicySchema, document).map((error) => `${error.instancePath || '/'} ${error.message}`)
    throw new PolicyInvalidError(problems.slice(0, 10))
  }
  const problems: string[] = []
  const names = new Set<string>()
  const rules = document.rules.map((rule, index) => {
    if (names.has(rule.name)) problems.push(`/rules/${index}/name '${rule.name}' is used twice`)
    names.add(rule.name)
    if (!rule.users?.length && !rule.groups?.length) {
      problems.push(`/rules/${index} ('${rule.name}') lists neither users nor groups, so it would match nobody`)
    }
    return { ...rule, ticketPattern: compileTicketPattern(rule, index, problems) }
  })
  if (problems.length > 0) throw new PolicyInvalidError(problems)
  return { rules }
}

function compileTicketPattern(rule: RuleDocument, index: number, problems: string[]): RegExp | undefined {
  if (rule.ticketPattern === undefined) return undefined
  try {
    // Anchored, so that 'CHG[0-9]+' cannot be satisfied by a ticket id that merely contains it.
    return new RegExp(`^(?:${rule.ticketPattern})$`, 'u')
  } catch (error) {
    problems.push(`/rules/${index}/ticketPattern is not a valid regular expression: ${(error as Error).message}`)
    return undefined
  }
}

export interface AccessRequest {
  userName: string
  accountId: string
  permissionSet: string
  durationMinutes: number
  ticketId: string
}

export type PolicyDecision =
  | { allowed: true; rule: string }
  | { allowed: false; failedCondition: FailedCondition; reason: string }

export type FailedCondition = 'principal' | 'account' | 'permissionSet' | 'duration' | 'ticket'

/**
 * Allows the request when one rule matches in every condition. On denial it explains the rule that came
 * closest (matched most conditions, in the order principal, account, permission set, duration, ticket),
 * so the requester learns what to change without the whole policy being revealed.
 */
export async function evaluatePolicy(
  policy: Policy,
  request: AccessRequest,
  groupsOfUser: () => Promise<readonly string[]>,
): Promise<PolicyDecision> {
  let groups: readonly string[] | undefined
  const loadGroups = async (): Promise<readonly string[]> => (groups ??= await groupsOfUser())
  let closest: { passed: number; failedCondition: FailedCondition; reason: string } | undefined

  for (const rule of policy.rules) {
    const failure = await firstFailure(rule, request, loadGroups)
    if (!failure) return { allowed: true, rule: rule.name }
    if (!closest || failure.passed > closest.passed) closest = failure
  }
  // parsePolicy guarantees at least one rule, so closest is set.
  const { failedCondition, reason } = closest ?? { failedCondition: 'principal' as const, reason: 'no rule' }
  return { allowed: false, failedCondition, reason }
}

/**
 * Whether some rule could allow the request, were the user in its groups: false means a denial whatever the
 * group lookup answers. Lets a caller start work for an allowed request beside that lookup without starting
 * it for requests that cannot be allowed.
 */
export function mightAllow(policy: Policy, request: AccessRequest): boolean {
  return policy.rules.some((rule) =>
    (rule.users?.includes(request.userName) || Boolean(rule.groups?.length)) && conditionFailure(rule, request) === undefined)
}

async function firstFailure(
  rule: Rule,
  request: AccessRequest,
  loadGroups: () => Promise<readonly string[]>,
): Promise<{ passed: number; failedCondition: FailedCondition; reason: string } | undefined> {
  const what = `${request.permissionSet} on ${request.accountId}`
  const listedUser = rule.users?.includes(request.userName) ?? false
  const inGroup = !listedUser && rule.groups?.length ? (await loadGroups()).some((g) => rule.groups?.includes(g)) : false
  if (!listedUser && !inGroup) {
    return { passed: 0, failedCondition: 'principal', reason: `User '${request.userName}' is not eligible for ${what}` }
  }
  return conditionFailure(rule, request)
}

/** The first condition besides the principal that the request fails, if any. */
function conditionFailure(rule: Rule, request: AccessRequest): { passed: number; failedCondition: FailedCondition; reason: string } | undefined {
  const what = `${request.permissionSet} on ${request.accountId}`
  if (!rule.accounts.includes('*') && !rule.accounts.includes(request.accountId)) {
    return { passed: 1, failedCondition: 'account', reason: `Account ${request.accountId} is not eligible for '${request.userName}'` }
  }
  if (!rule.permissionSets.includes('*') && !rule.permissionSets.includes(request.permissionSet)) {
    return { passed: 2, failedCondition: 'permissionSet', reason: `Permission set '${request.permissionSet}' is not eligible for '${request.userName}' on ${request.accountId}` }
  }
  if (request.durationMinutes > rule.maxDurationMinutes) {
    return { passed: 3, failedCondition: 'duration', reason: `Rule '${rule.name}' allows at most ${rule.maxDurationMinutes} minutes for ${what}; ${request.durationMinutes} were requested` }
  }
  if (rule.ticketPattern && !rule.ticketPattern.test(request.ticketId)) {
    return { passed: 4, failedCondition: 'ticket', reason: `Ticket '${request.ticketId}' does not match the ticket pattern rule '${rule.name}' requires` }
  }
  return undefined
}
