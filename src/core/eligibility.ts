import { UserNotFoundError } from './errors.ts'
import { isOrganizationUnit, needsOrganization, rulesFor, type Policy, type Rule } from './policy.ts'
import type { AccountDirectory, Directory } from './ports.ts'

/**
 * Accounts read under one OU for a rule with tags: each costs a tag lookup (Organizations has no call that lists
 * tags of many accounts), paced at a few a second on a cold cache; beyond this the answer says truncated.
 */
export const MAX_SCANNED_ACCOUNTS = 100

/** One account a rule allows, with its name when the organization was asked (null otherwise). */
export interface EligibleAccount {
  id: string
  name: string | null
}

/** What one rule lets the user request. */
export interface EligibleRule {
  rule: string
  /** Empty for a rule of grantable groups only. */
  permissionSets: string[]
  /** Identity Store groups a group grant under this rule may add the user to (empty when none). */
  grantableGroups: string[]
  /** The rule's accounts as the policy writes them: ids, '*', OUs and the root. */
  accountScope: string[]
  accountTags: Record<string, string> | null
  /** The rule names '*': every account (further bounded by accountTags), which is not listed. */
  anyAccount: boolean
  /** The accounts it names or reaches through OUs and tags, active ones only for those reached; at most `limit`. */
  accounts: EligibleAccount[]
  /** More accounts match than `limit`: ask with a higher limit, or read the policy (GET /policy). */
  truncated: boolean
  /** The rule's maximum, bounded by the service's own (JIT_MAX_DURATION_MINUTES). */
  maxDurationMinutes: number
  /** How far ahead a grant may start, bounded by the service's own (JIT_MAX_LEAD_DAYS). */
  maxLeadDays: number
  ticketPattern: string | null
}

export interface Eligibility {
  userName: string
  policyVersion: string
  rules: EligibleRule[]
}

export interface EligibilityDeps {
  policy: Policy
  directory: Directory
  accounts?: AccountDirectory | undefined
  maxDurationMinutes: number
  maxLeadDays: number
}

/**
 * What the user may request: every rule whose principal condition they meet (by name, or by group membership as
 * the directory says now), with its permission sets, its accounts (OUs expanded to the active accounts nested
 * below them and filtered by the rule's tags, at most `limit` per rule), its limits and its ticket pattern.
 * Organizations is asked only when the policy names OUs, the root or tags (then also for the names of listed
 * accounts). Throws UserNotFoundError for a user the directory does not have, UpstreamUnavailableError when the
 * directory or Organizations cannot answer.
 */
export async function eligibilityOf(deps: EligibilityDeps, userName: string, limit: number): Promise<Eligibility> {
  const user = await deps.directory.findUser(userName)
  if (!user) throw new UserNotFoundError(userName)
  const rules = await rulesFor(deps.policy, user.userName, () => deps.directory.groupIdsOf(user.id))
  const useOrganization = deps.policy.rules.some(needsOrganization) ? deps.accounts : undefined
  const eligible: EligibleRule[] = []
  for (const rule of rules) {
    const { accounts, truncated } = await accountsOf(rule, useOrganization, limit)
    eligible.push({
      rule: rule.name,
      permissionSets: rule.permissionSets ?? [],
      grantableGroups: rule.grantableGroups ?? [],
      accountScope: rule.accounts ?? [],
      accountTags: rule.accountTags ?? null,
      anyAccount: rule.accounts?.includes('*') ?? false,
      accounts,
      truncated,
      maxDurationMinutes: Math.min(rule.maxDurationMinutes, deps.maxDurationMinutes),
      maxLeadDays: Math.min(rule.maxLeadDays ?? deps.maxLeadDays, deps.maxLeadDays),
      ticketPattern: rule.ticketPattern?.source ?? null,
    })
  }
  return { userName: user.userName, policyVersion: deps.policy.version, rules: eligible }
}

/** The accounts one rule names or reaches, in the policy's order, each once, at most `limit`. */
async function accountsOf(rule: Rule, organization: AccountDirectory | undefined, limit: number): Promise<{ accounts: EligibleAccount[]; truncated: boolean }> {
  const found = new Map<string, EligibleAccount>()
  const tagsMatch = async (accountId: string) => {
    if (!rule.accountTags) return true
    if (!organization) return false
    const tags = await organization.tagsOf(accountId)
    return Object.entries(rule.accountTags).every(([key, value]) => tags[key] === value)
  }
  for (const entry of rule.accounts ?? []) {
    if (entry === '*') continue
    if (!isOrganizationUnit(entry)) {
      if (found.has(entry) || !(await tagsMatch(entry))) continue
      if (found.size === limit) return { accounts: [...found.values()], truncated: true }
      const described = organization ? await organization.describe(entry) : undefined
      found.set(entry, { id: entry, name: described?.name ?? null })
      continue
    }
    if (!organization) continue
    // One more than still fits, to know whether there are more; tags can only narrow it.
    const under = await organization.accountsUnder(entry, rule.accountTags ? MAX_SCANNED_ACCOUNTS : limit - found.size + 1)
    for (const account of under.accounts) {
      if (!account.active || found.has(account.id) || !(await tagsMatch(account.id))) continue
      if (found.size === limit) return { accounts: [...found.values()], truncated: true }
      found.set(account.id, { id: account.id, name: account.name })
    }
    if (under.truncated) return { accounts: [...found.values()], truncated: true }
  }
  return { accounts: [...found.values()], truncated: false }
}
