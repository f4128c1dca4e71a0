import { RE2JS } from 're2js'
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
    /** How far ahead a grant under this rule may be scheduled; 0 allows only grants that start at once. */
    maxLeadDays: Type.Optional(Type.Integer({ minimum: 0, maximum: 365 })),
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

/** A ticket pattern compiled for RE2, which matches in time linear in the ticket: no pattern can backtrack. */
export interface TicketPattern {
  /** The pattern as the policy wrote it. */
  source: string
  matches(ticketId: string): boolean
}

interface Rule extends Omit<RuleDocument, 'ticketPattern'> {
  ticketPattern?: TicketPattern
  /**
   * The ids of the groups `groups` names, set by resolvePolicy: display names can be changed or reused by
   * anyone who administers the directory, ids cannot. Unset until then, and a group rule cannot be evaluated.
   */
  groupIds?: readonly string[]
}

/** A parsed policy; its group rules need resolvePolicy before it can decide anything. */
export interface Policy {
  rules: Rule[]
}

const DAY_MS = 86_400_000

/** Long enough for any ticket scheme; a bound on what compiling one pattern can cost at start. */
export const MAX_TICKET_PATTERN_LENGTH = 200

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

function compileTicketPattern(rule: RuleDocument, index: number, problems: string[]): TicketPattern | undefined {
  const pattern = rule.ticketPattern
  if (pattern === undefined) return undefined
  const where = `/rules/${index}/ticketPattern of rule '${rule.name}'`
  if (pattern.length > MAX_TICKET_PATTERN_LENGTH) {
    problems.push(`${where} is longer than ${MAX_TICKET_PATTERN_LENGTH} characters`)
    return undefined
  }
  try {
    // Alone first: 'CHG\d+)|(.*' is unbalanced only on its own. Wrapped in the anchoring group its parentheses
    // would pair up with ours, and its second branch would allow every ticket.
    RE2JS.compile(pattern)
    // Anchored, so that 'CHG[0-9]+' cannot be satisfied by a ticket id that merely contains it.
    const anchored = RE2JS.compile(`^(?:${pattern})$`)
    return { source: pattern, matches: (ticketId) => anchored.testExact(ticketId) }
  } catch (error) {
    // RE2 has no lookaround or backreferences: those are refused here rather than run by a backtracking engine.
    problems.push(`${where} is not a valid RE2 regular expression: ${(error as Error).message}`)
    return undefined
  }
}

/** Refused at start (outside the sandbox) when the policy names a group the Identity Store does not have. */
export class PolicyGroupNotFoundError extends Error {
  constructor(missing: string[]) {
    super(`The eligibility policy names groups that do not exist in the Identity Store: ${missing.join('; ')}`)
    this.name = 'PolicyGroupNotFoundError'
  }
}

/** Thrown when a policy whose rules name groups is evaluated before resolvePolicy: a wiring mistake, never a denial. */
export class PolicyNotResolvedError extends Error {
  constructor(rule: string) {
    super(`Rule '${rule}' names groups that were never resolved to group ids (resolvePolicy)`)
    this.name = 'PolicyNotResolvedError'
  }
}

export interface ResolveOptions {
  /**
   * For the sandbox, whose directory may not be seeded: instead of refusing, report each missing group here and
   * let it match nobody.
   */
  warnMissing?: (message: string) => void
}

/**
 * Looks up, once at start, the id of every group the policy names, and answers the policy with them, so that
 * group rules match memberships by id: renaming a group, or giving its old name to another, changes no
 * decision until the service is restarted with a policy that says so. A missing group refuses the policy
 * (PolicyGroupNotFoundError, naming each group and its rules) unless `warnMissing` is given. Errors of the
 * lookup itself (throttling, access denied) are the caller's: the service cannot start without the answer.
 */
export async function resolvePolicy(
  policy: Policy,
  groupIdOf: (displayName: string) => Promise<string | undefined>,
  options: ResolveOptions = {},
): Promise<Policy> {
  const names = [...new Set(policy.rules.flatMap((rule) => rule.groups ?? []))]
  const ids = new Map(await Promise.all(names.map(async (name) => [name, await groupIdOf(name)] as const)))
  const missing = names.filter((name) => ids.get(name) === undefined).map((name) => {
    const rules = policy.rules.filter((rule) => rule.groups?.includes(name)).map((rule) => `'${rule.name}'`)
    return `group '${name}' (rule ${rules.join(', ')})`
  })
  if (missing.length > 0) {
    if (!options.warnMissing) throw new PolicyGroupNotFoundError(missing)
    for (const problem of missing) options.warnMissing(`The eligibility policy names ${problem}, which does not exist: it matches nobody`)
  }
  return {
    rules: policy.rules.map((rule) => (rule.groups ? { ...rule, groupIds: rule.groups.flatMap((name) => ids.get(name) ?? []) } : rule)),
  }
}

export interface AccessRequest {
  userName: string
  accountId: string
  permissionSet: string
  durationMinutes: number
  ticketId: string
  /** How long before its start the access is asked for (a scheduled grant); absent or 0 for access now. */
  leadMs?: number
}

export type PolicyDecision =
  | { allowed: true; rule: string }
  | { allowed: false; failedCondition: FailedCondition; reason: string }

export type FailedCondition = 'principal' | 'account' | 'permissionSet' | 'duration' | 'leadTime' | 'ticket'

/**
 * Allows the request when one rule matches in every condition. On denial it explains the rule that came
 * closest (matched most conditions, in the order principal, account, permission set, duration, lead time,
 * ticket), so the requester learns what to change without the whole policy being revealed. `groupIdsOfUser`
 * answers the ids of the user's groups; it is called at most once, and only when a rule needs it. Throws
 * PolicyNotResolvedError for a policy that did not go through resolvePolicy.
 */
export async function evaluatePolicy(
  policy: Policy,
  request: AccessRequest,
  groupIdsOfUser: () => Promise<readonly string[]>,
): Promise<PolicyDecision> {
  let groupIds: readonly string[] | undefined
  const loadGroups = async (): Promise<readonly string[]> => (groupIds ??= await groupIdsOfUser())
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
    (rule.users?.includes(request.userName) || groupIdsOf(rule).length > 0) && conditionFailure(rule, request) === undefined)
}

function groupIdsOf(rule: Rule): readonly string[] {
  if (!rule.groups?.length) return []
  if (!rule.groupIds) throw new PolicyNotResolvedError(rule.name)
  return rule.groupIds
}

async function firstFailure(
  rule: Rule,
  request: AccessRequest,
  loadGroups: () => Promise<readonly string[]>,
): Promise<{ passed: number; failedCondition: FailedCondition; reason: string } | undefined> {
  const what = `${request.permissionSet} on ${request.accountId}`
  const listedUser = rule.users?.includes(request.userName) ?? false
  const ruleGroupIds = groupIdsOf(rule)
  const inGroup = !listedUser && ruleGroupIds.length > 0 ? (await loadGroups()).some((id) => ruleGroupIds.includes(id)) : false
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
  const leadMs = request.leadMs ?? 0
  if (rule.maxLeadDays !== undefined && leadMs > rule.maxLeadDays * DAY_MS) {
    const allowed = rule.maxLeadDays === 0 ? 'no scheduled start' : `a start at most ${rule.maxLeadDays} days ahead`
    return { passed: 4, failedCondition: 'leadTime', reason: `Rule '${rule.name}' allows ${allowed} for ${what}; this one starts ${(leadMs / DAY_MS).toFixed(1)} days ahead` }
  }
  if (rule.ticketPattern && !rule.ticketPattern.matches(request.ticketId)) {
    return { passed: 5, failedCondition: 'ticket', reason: `Ticket '${request.ticketId}' does not match the ticket pattern rule '${rule.name}' requires` }
  }
  return undefined
}
