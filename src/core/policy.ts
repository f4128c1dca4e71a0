import { createHash } from 'node:crypto'
import { RE2JS } from 're2js'
import type { Static } from 'typebox'
import type { AccountDirectory } from './ports.ts'
import * as Type from './schema-builders.ts'
import { compileCheck } from './schema-check.ts'

const NonEmpty = Type.String({ minLength: 1 })

/** An account id, '*', an organizational unit id (ou-…) or a root id (r-…), as Organizations spells them. */
const ACCOUNT_SCOPE_PATTERN = '^(\\*|[0-9]{12}|ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}|r-[0-9a-z]{4,32})$'

/** Whether an entry of a rule's accounts names a part of the organization (an OU or the root) rather than an account. */
export function isOrganizationUnit(entry: string): boolean {
  return entry.startsWith('ou-') || entry.startsWith('r-')
}

/**
 * A rule's tags, by name: keys of 1 to 128 characters, values of up to 256, as AWS bounds tags. Written as JSON
 * Schema rather than with Type.Record, whose key type engine (template literals, TypeScript's syntax) is about 40 KiB
 * of the Lambda's bundle.
 */
const AccountTags = Type.Unsafe<Record<string, string>>({
  type: 'object',
  // Every key, line breaks included (a pattern of '^.*$' left a key with one unchecked), within AWS's bounds.
  propertyNames: { type: 'string', minLength: 1, maxLength: 128 },
  additionalProperties: Type.String({ maxLength: 256 }),
  minProperties: 1,
  maxProperties: 10,
})

const RuleSchema = Type.Object(
  {
    name: NonEmpty,
    users: Type.Optional(Type.Array(NonEmpty)),
    groups: Type.Optional(Type.Array(NonEmpty)),
    /** Account ids, '*', organizational units (every account nested anywhere under one) and the organization's root. */
    /** With permissionSets, what account grants the rule allows; a rule of grantable groups only leaves both out. */
    accounts: Type.Optional(Type.Array(Type.String({ pattern: ACCOUNT_SCOPE_PATTERN }), { minItems: 1 })),
    /** Tags every account this rule allows must carry (AWS Organizations account tags), all of them, exact values. */
    accountTags: Type.Optional(AccountTags),
    permissionSets: Type.Optional(Type.Array(NonEmpty, { minItems: 1 })),
    /** Identity Store groups (display names) a group grant under this rule may add the user to, for its duration. */
    grantableGroups: Type.Optional(Type.Array(NonEmpty, { minItems: 1 })),
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

const checkPolicy = compileCheck('policy', PolicySchema)

/** A ticket pattern compiled for RE2, which matches in time linear in the ticket: no pattern can backtrack. */
export interface TicketPattern {
  /** The pattern as the policy wrote it. */
  source: string
  matches(ticketId: string): boolean
}

export interface Rule extends Omit<RuleDocument, 'ticketPattern'> {
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
  /**
   * The policy's identity: the first 12 hex digits of the SHA-256 of its document as canonical JSON (keys sorted,
   * no whitespace). The same document, however formatted, has the same version; any change gives another.
   */
  version: string
  /** The document as loaded (GET /policy shows it). */
  document: PolicyDocument
  /**
   * The id of each group a rule lists in grantableGroups, by display name, set by resolvePolicy: a group grant adds
   * the user to the group the policy meant when it was loaded, not to whichever group has that name later.
   */
  grantableGroupIds?: ReadonlyMap<string, string>
}

/** The version of a policy document (see Policy.version). */
export function policyVersion(document: PolicyDocument): string {
  return createHash('sha256').update(canonicalJson(document)).digest('hex').slice(0, 12)
}

/** JSON with every object's keys sorted, so that two spellings of one document serialize alike. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`
  }
  return JSON.stringify(value)
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
export function parsePolicy(input: unknown): Policy {
  const checked = checkPolicy(input)
  if (!checked.valid) {
    throw new PolicyInvalidError(checked.problems.slice(0, 10).map(({ path, message }) => `${path} ${message}`))
  }
  const document = checked.value
  const problems: string[] = []
  const names = new Set<string>()
  const rules = document.rules.map((rule, index) => {
    if (names.has(rule.name)) problems.push(`/rules/${index}/name '${rule.name}' is used twice`)
    names.add(rule.name)
    if (!rule.users?.length && !rule.groups?.length) {
      problems.push(`/rules/${index} ('${rule.name}') lists neither users nor groups, so it would match nobody`)
    }
    if ((rule.accounts === undefined) !== (rule.permissionSets === undefined)) {
      problems.push(
        `/rules/${index} ('${rule.name}') names ${rule.accounts ? 'accounts without permissionSets' : 'permissionSets without accounts'}: an account grant needs both`,
      )
    } else if (!rule.accounts && !rule.grantableGroups) {
      problems.push(
        `/rules/${index} ('${rule.name}') names neither accounts and permissionSets nor grantableGroups, so it would allow nothing`,
      )
    }
    if (rule.accountTags && !rule.accounts)
      problems.push(`/rules/${index} ('${rule.name}') names accountTags without accounts`)
    return { ...rule, ticketPattern: compileTicketPattern(rule, index, problems) }
  })
  if (problems.length > 0) throw new PolicyInvalidError(problems)
  return { rules, version: policyVersion(document), document }
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
 * Looks up, once at start, the id of every group the policy names (in groups and in grantableGroups), and answers
 * the policy with them, so that group rules match memberships by id, and a group grant adds the user to the group
 * the policy meant: renaming a group, or giving its old name to another, changes no
 * decision until the service is restarted with a policy that says so. A missing group refuses the policy
 * (PolicyGroupNotFoundError, naming each group and its rules) unless `warnMissing` is given. Errors of the
 * lookup itself (throttling, access denied) are the caller's: the service cannot start without the answer.
 */
export async function resolvePolicy(
  policy: Policy,
  groupIdOf: (displayName: string) => Promise<string | undefined>,
  options: ResolveOptions = {},
): Promise<Policy> {
  const grantable = new Set(policy.rules.flatMap((rule) => rule.grantableGroups ?? []))
  const names = [...new Set([...policy.rules.flatMap((rule) => rule.groups ?? []), ...grantable])]
  const ids = new Map(await Promise.all(names.map(async (name) => [name, await groupIdOf(name)] as const)))
  const missing = names
    .filter((name) => ids.get(name) === undefined)
    .map((name) => {
      const rules = policy.rules
        .filter((rule) => rule.groups?.includes(name) || rule.grantableGroups?.includes(name))
        .map((rule) => `'${rule.name}'`)
      return `group '${name}' (rule ${rules.join(', ')})`
    })
  if (missing.length > 0) {
    if (!options.warnMissing) throw new PolicyGroupNotFoundError(missing)
    for (const problem of missing)
      options.warnMissing(`The eligibility policy names ${problem}, which does not exist: it matches nobody`)
  }
  return {
    ...policy,
    rules: policy.rules.map((rule) =>
      rule.groups ? { ...rule, groupIds: rule.groups.flatMap((name) => ids.get(name) ?? []) } : rule,
    ),
    grantableGroupIds: new Map(
      [...grantable].flatMap((name) => {
        const id = ids.get(name)
        return id === undefined ? [] : [[name, id] as const]
      }),
    ),
  }
}

/** An account grant names accountId and permissionSet; a group grant names groupName instead. */
export interface AccessRequest {
  userName: string
  accountId?: string | null | undefined
  permissionSet?: string | null | undefined
  groupName?: string | null | undefined
  durationMinutes: number
  ticketId: string
  /** How long before its start the access is asked for (a scheduled grant); absent or 0 for access now. */
  leadMs?: number
}

export type PolicyDecision =
  | { allowed: true; rule: string }
  /** `rule`: the rule that came closest (matched most conditions). */
  | { allowed: false; rule: string; failedCondition: FailedCondition; reason: string }

export type FailedCondition = 'principal' | 'account' | 'permissionSet' | 'group' | 'duration' | 'leadTime' | 'ticket'

/**
 * Allows the request when one rule matches in every condition. On denial it explains the rule that came
 * closest (matched most conditions, in the order principal, account, permission set, duration, lead time,
 * ticket), so the requester learns what to change without the whole policy being revealed. `groupIdsOfUser`
 * answers the ids of the user's groups; it is called at most once, and only when a rule needs it.
 * `accounts` (AWS Organizations) is asked only about rules whose principal matches and that name an OU, the
 * root or account tags: a policy of account ids never asks it. When it cannot answer for a rule and no other
 * rule allows the request, its error (UpstreamUnavailableError) is thrown: the decision fails closed. Throws
 * PolicyNotResolvedError for a policy that did not go through resolvePolicy, and AccountDirectoryMissingError
 * when a rule needs Organizations and no `accounts` was given.
 */
export async function evaluatePolicy(
  policy: Policy,
  request: AccessRequest,
  groupIdsOfUser: () => Promise<readonly string[]>,
  accounts?: AccountDirectory,
): Promise<PolicyDecision> {
  let groupIds: readonly string[] | undefined
  const loadGroups = async (): Promise<readonly string[]> => (groupIds ??= await groupIdsOfUser())
  let closest: { rule: string; passed: number; failedCondition: FailedCondition; reason: string } | undefined
  let unanswered: unknown

  for (const rule of policy.rules) {
    let failure: Awaited<ReturnType<typeof firstFailure>>
    try {
      failure = await firstFailure(rule, request, loadGroups, accounts)
    } catch (error) {
      if (!(error instanceof AccountLookupFailed)) throw error
      // Another rule may still allow it without Organizations; if none does, the lookup's failure is the answer.
      unanswered ??= error.cause
      continue
    }
    if (!failure) return { allowed: true, rule: rule.name }
    if (!closest || failure.passed > closest.passed) closest = { ...failure, rule: rule.name }
  }
  if (unanswered !== undefined) throw unanswered
  // parsePolicy guarantees at least one rule, so closest is set.
  const { rule, failedCondition, reason } = closest ?? {
    rule: '',
    failedCondition: 'principal' as const,
    reason: 'no rule',
  }
  return { allowed: false, rule, failedCondition, reason }
}

/**
 * Whether some rule could allow the request, were the user in its groups: false means a denial whatever the
 * group lookup answers. Lets a caller start work for an allowed request beside that lookup without starting
 * it for requests that cannot be allowed. Asks nobody: a rule that names an OU, the root or tags counts as
 * possibly matching any account.
 */
export function mightAllow(policy: Policy, request: AccessRequest): boolean {
  return policy.rules.some(
    (rule) =>
      (rule.users?.includes(request.userName) || groupIdsOf(rule).length > 0) &&
      conditionFailure(
        rule,
        request,
        request.groupName ? true : accountListed(rule, request.accountId ?? '') || needsOrganization(rule),
      ) === undefined,
  )
}

/** The tags (`key=value`) a rule requires that the account does not carry; empty when it carries them all, or none are required. */
export function missingTags(rule: Pick<Rule, 'accountTags'>, tags: Readonly<Record<string, string>>): string[] {
  return Object.entries(rule.accountTags ?? {})
    .filter(([key, value]) => tags[key] !== value)
    .map(([key, value]) => `${key}=${value}`)
}

/** A rule whose account condition only AWS Organizations can decide: it names an OU, the root, or account tags. */
export function needsOrganization(rule: Pick<RuleDocument, 'accounts' | 'accountTags'>): boolean {
  return rule.accountTags !== undefined || (rule.accounts ?? []).some(isOrganizationUnit)
}

/** Thrown when a rule needs AWS Organizations and the service was built without it: a wiring mistake. */
export class AccountDirectoryMissingError extends Error {
  constructor(rule: string) {
    super(
      `Rule '${rule}' names organizational units or account tags, and no account directory (AWS Organizations) was given`,
    )
    this.name = 'AccountDirectoryMissingError'
  }
}

/** Carries an account directory's failure past one rule, so that another rule may still decide. */
class AccountLookupFailed extends Error {
  constructor(cause: unknown) {
    super('account lookup failed', { cause })
  }
}

/**
 * The rules whose principal condition the user meets (named, or in one of their groups by id): what the user
 * could be allowed, whatever the other conditions. `groupIdsOfUser` is called at most once, and only when a rule
 * names groups that the user is not named beside.
 */
export async function rulesFor(
  policy: Policy,
  userName: string,
  groupIdsOfUser: () => Promise<readonly string[]>,
): Promise<Rule[]> {
  let groupIds: readonly string[] | undefined
  const matching: Rule[] = []
  for (const rule of policy.rules) {
    if (rule.users?.includes(userName)) {
      matching.push(rule)
      continue
    }
    const ruleGroupIds = groupIdsOf(rule)
    if (ruleGroupIds.length === 0) continue
    groupIds ??= await groupIdsOfUser()
    if (groupIds.some((id) => ruleGroupIds.includes(id))) matching.push(rule)
  }
  return matching
}

function groupIdsOf(rule: Rule): readonly string[] {
  if (!rule.groups?.length) return []
  if (!rule.groupIds) throw new PolicyNotResolvedError(rule.name)
  return rule.groupIds
}

function accountListed(rule: Rule, accountId: string): boolean {
  return rule.accounts !== undefined && (rule.accounts.includes('*') || rule.accounts.includes(accountId))
}

/**
 * Why the rule's account condition refuses the account, or undefined when it allows it. Listed accounts and '*'
 * are taken as the policy says; an account reached through an OU, the root or tags must also be active in the
 * organization (not suspended, pending closure or closed), which is asked then too.
 */
async function accountRefusal(
  rule: Rule,
  request: AccessRequest,
  accounts: AccountDirectory | undefined,
): Promise<string | undefined> {
  const accountId = request.accountId ?? ''
  const notEligible = `Account ${accountId} is not eligible for '${request.userName}'`
  const listed = accountListed(rule, accountId)
  if (listed && !rule.accountTags) return undefined
  const units = (rule.accounts ?? []).filter(isOrganizationUnit)
  if (!listed && units.length === 0) return notEligible
  if (!accounts) throw new AccountDirectoryMissingError(rule.name)
  try {
    if (!listed) {
      const ancestors = await accounts.ancestorsOf(accountId)
      if (!ancestors.some((id) => units.includes(id))) return notEligible
    }
    if (rule.accountTags) {
      const missing = missingTags(rule, await accounts.tagsOf(accountId))
      if (missing.length > 0)
        return `Account ${accountId} does not carry the tags rule '${rule.name}' requires (${missing.join(', ')})`
    }
    const account = await accounts.describe(accountId)
    if (!account?.active)
      return `Account ${accountId} is not active in the organization (suspended, pending closure or closed): it is never granted`
    return undefined
  } catch (error) {
    throw new AccountLookupFailed(error)
  }
}

async function firstFailure(
  rule: Rule,
  request: AccessRequest,
  loadGroups: () => Promise<readonly string[]>,
  accounts: AccountDirectory | undefined,
): Promise<{ passed: number; failedCondition: FailedCondition; reason: string } | undefined> {
  const what = requested(request)
  const listedUser = rule.users?.includes(request.userName) ?? false
  const ruleGroupIds = groupIdsOf(rule)
  const inGroup =
    !listedUser && ruleGroupIds.length > 0 ? (await loadGroups()).some((id) => ruleGroupIds.includes(id)) : false
  if (!listedUser && !inGroup) {
    return { passed: 0, failedCondition: 'principal', reason: `User '${request.userName}' is not eligible for ${what}` }
  }
  // A group grant has no account: the rule's grantable groups stand in for its account and permission set conditions.
  if (request.groupName) return conditionFailure(rule, request, true)
  const refusal = await accountRefusal(rule, request, accounts)
  // A rule of the other kind (grantable groups only) comes less close than one whose accounts do not include this one.
  if (refusal !== undefined) return { passed: rule.accounts ? 1 : 0.5, failedCondition: 'account', reason: refusal }
  return conditionFailure(rule, request, true)
}

/** A failed condition, how many of the rule's conditions passed before it, and why. */
type ConditionFailure = { passed: number; failedCondition: FailedCondition; reason: string }

/** The first condition besides the principal that the request fails, if any; `accountMatches` is the account condition's answer. */
function conditionFailure(rule: Rule, request: AccessRequest, accountMatches: boolean): ConditionFailure | undefined {
  return accessFailure(rule, request, accountMatches) ?? limitFailure(rule, request)
}

/** The first of the rule's conditions on what is asked for (the group, or the account and permission set) that fails. */
function accessFailure(rule: Rule, request: AccessRequest, accountMatches: boolean): ConditionFailure | undefined {
  if (request.groupName) {
    if (!rule.grantableGroups?.includes(request.groupName)) {
      // A rule of account grants only comes less close than one whose grantable groups do not include this one.
      return {
        passed: rule.grantableGroups ? 1 : 0.5,
        failedCondition: 'group',
        reason: `Group '${request.groupName}' is not grantable to '${request.userName}'`,
      }
    }
  } else if (!accountMatches) {
    return {
      passed: 1,
      failedCondition: 'account',
      reason: `Account ${request.accountId} is not eligible for '${request.userName}'`,
    }
  }
  if (
    !request.groupName &&
    !rule.permissionSets?.includes('*') &&
    !rule.permissionSets?.includes(request.permissionSet ?? '')
  ) {
    return {
      passed: 2,
      failedCondition: 'permissionSet',
      reason: `Permission set '${request.permissionSet}' is not eligible for '${request.userName}' on ${request.accountId}`,
    }
  }
  return undefined
}

/** The first of the rule's limits (duration, lead time, ticket pattern) the request fails. */
function limitFailure(rule: Rule, request: AccessRequest): ConditionFailure | undefined {
  const what = requested(request)
  if (request.durationMinutes > rule.maxDurationMinutes) {
    return {
      passed: 3,
      failedCondition: 'duration',
      reason: `Rule '${rule.name}' allows at most ${rule.maxDurationMinutes} minutes for ${what}; ${request.durationMinutes} were requested`,
    }
  }
  const leadMs = request.leadMs ?? 0
  if (rule.maxLeadDays !== undefined && leadMs > rule.maxLeadDays * DAY_MS) {
    const allowed = rule.maxLeadDays === 0 ? 'no scheduled start' : `a start at most ${rule.maxLeadDays} days ahead`
    return {
      passed: 4,
      failedCondition: 'leadTime',
      reason: `Rule '${rule.name}' allows ${allowed} for ${what}; this one starts ${(leadMs / DAY_MS).toFixed(1)} days ahead`,
    }
  }
  if (rule.ticketPattern && !rule.ticketPattern.matches(request.ticketId)) {
    return {
      passed: 5,
      failedCondition: 'ticket',
      reason: `Ticket '${request.ticketId}' does not match the ticket pattern rule '${rule.name}' requires`,
    }
  }
  return undefined
}

/** What a request asks for, in a reason: 'ReadOnly on 111122223333' or 'group prod-breakglass'. */
function requested(request: AccessRequest): string {
  return request.groupName ? `group ${request.groupName}` : `${request.permissionSet} on ${request.accountId}`
}
