import { InvalidCursorError, UserNotFoundError } from './errors.ts'
import { isOrganizationUnit, missingTags, needsOrganization, type Policy, type Rule, rulesFor } from './policy.ts'
import type { AccountDirectory, CursorSeal, Directory } from './ports.ts'

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
  /** More accounts may follow: `nextCursor` continues this rule's list. */
  truncated: boolean
  /** Where this rule's list goes on (GET /eligibility with `cursor`); null when it is complete. */
  nextCursor: string | null
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
  /** Seals each rule's nextCursor to this user and policy version, so that a position cannot be made up. */
  cursors: CursorSeal
  maxDurationMinutes: number
  maxLeadDays: number
}

/** Where one rule's account list goes on: the rule, and the position of the next account to look at. */
interface EligibilityCursor {
  rule: string
  position: number
}

/** The most accounts a cursor's position may skip: far more than any organization holds (AWS's quota is 10,000). */
const MAX_POSITION = 1_000_000

/**
 * What the user may request: every rule whose principal condition they meet (by name, or by group membership as
 * the directory says now), with its permission sets, its accounts (OUs expanded to the active accounts nested
 * below them and filtered by the rule's tags, at most `limit` per rule), its limits and its ticket pattern.
 * With `cursor` (a rule's `nextCursor`), only that rule, its accounts from where the cursor left off.
 * Organizations is asked only when the policy names OUs, the root or tags (then also for the names of listed
 * accounts). Throws UserNotFoundError for a user the directory does not have, InvalidCursorError for a cursor
 * this policy did not issue (another policy version included), UpstreamUnavailableError when the directory or
 * Organizations cannot answer.
 */
export async function eligibilityOf(
  deps: EligibilityDeps,
  userName: string,
  limit: number,
  cursor?: string,
): Promise<Eligibility> {
  const user = await deps.directory.findUser(userName)
  if (!user) throw new UserNotFoundError(userName)
  // A cursor is for this user (as the directory spells the name) under this policy version, and no other.
  const query = { answer: 'eligibility', userName: user.userName, policyVersion: deps.policy.version }
  const from = cursor === undefined ? undefined : readCursor(deps.cursors, cursor, query)
  const allowing = await rulesFor(deps.policy, user.userName, () => deps.directory.groupIdsOf(user.id))
  // A rule that no longer includes the user (their groups changed) lists nothing more: it is left out.
  const rules = from ? allowing.filter((rule) => rule.name === from.rule) : allowing
  const useOrganization = deps.policy.rules.some(needsOrganization) ? deps.accounts : undefined
  const eligible: EligibleRule[] = []
  for (const rule of rules) {
    const { accounts, next } = await accountsOf(rule, useOrganization, limit, from?.position ?? 0)
    eligible.push({
      rule: rule.name,
      permissionSets: rule.permissionSets ?? [],
      grantableGroups: rule.grantableGroups ?? [],
      accountScope: rule.accounts ?? [],
      accountTags: rule.accountTags ?? null,
      anyAccount: rule.accounts?.includes('*') ?? false,
      accounts,
      truncated: next !== null,
      nextCursor: next === null ? null : deps.cursors.encode({ rule: rule.name, position: next }, query, CURSOR_FIELDS),
      maxDurationMinutes: Math.min(rule.maxDurationMinutes, deps.maxDurationMinutes),
      maxLeadDays: Math.min(rule.maxLeadDays ?? deps.maxLeadDays, deps.maxLeadDays),
      ticketPattern: rule.ticketPattern?.source ?? null,
    })
  }
  return { userName: user.userName, policyVersion: deps.policy.version, rules: eligible }
}

/** One account a rule might reach, in the rule's order: named by id, or found under an OU or the root. */
interface Candidate {
  id: string
  /** From Organizations for an account found under an OU; null for one named by id (described when listed). */
  name: string | null
  /** As Organizations listed it under an OU; false for one named by id, whose status is known only once described. */
  active: boolean
}

/**
 * One page of a rule's accounts: from `position` in the rule's order (its entries in the policy's order, an OU's
 * accounts breadth first), at most `limit`, each once. A rule with tags reads the tags of at most
 * MAX_SCANNED_ACCOUNTS accounts a page, so a page may hold fewer than `limit`; `next` is where the following
 * page starts, null when the list is complete.
 */
async function accountsOf(
  rule: Rule,
  organization: AccountDirectory | undefined,
  limit: number,
  position: number,
): Promise<{ accounts: EligibleAccount[]; next: number | null }> {
  const budget = rule.accountTags ? MAX_SCANNED_ACCOUNTS : limit
  const { list, complete } = await candidatesOf(rule, organization, position + budget + 1)
  // Whether an account is eligible is decided at its first place in the rule's order, the same on every page.
  const seen = new Set(list.slice(0, position).map((candidate) => candidate.id))
  const accounts: EligibleAccount[] = []
  let scanned = 0
  for (let index = position; index < list.length; index++) {
    if (accounts.length === limit || scanned === budget) return { accounts, next: index }
    const candidate = list[index] as Candidate
    if (seen.has(candidate.id)) continue
    seen.add(candidate.id)
    scanned++
    const listed = await eligibleAccount(rule, organization, candidate)
    if (listed) accounts.push(listed)
  }
  return { accounts, next: complete ? null : list.length }
}

/**
 * The account as GET /eligibility lists it, when the policy would allow it: one the rule names by id is allowed
 * whatever its status unless the rule requires tags; otherwise the account must be active and carry the tags.
 */
async function eligibleAccount(
  rule: Rule,
  organization: AccountDirectory | undefined,
  candidate: Candidate,
): Promise<EligibleAccount | undefined> {
  const namedById = (rule.accounts ?? []).includes(candidate.id)
  const described = namedById && organization ? await organization.describe(candidate.id) : undefined
  const name = described ? described.name : candidate.name
  if (namedById && !rule.accountTags) return { id: candidate.id, name }
  const active = described ? described.active : candidate.active
  if (!active || !(await tagsMatch(rule, organization, candidate.id))) return undefined
  return { id: candidate.id, name }
}

/** The first `upTo` accounts the rule names or reaches, in its order (duplicates kept); complete when that is all. */
async function candidatesOf(
  rule: Rule,
  organization: AccountDirectory | undefined,
  upTo: number,
): Promise<{ list: Candidate[]; complete: boolean }> {
  const list: Candidate[] = []
  for (const entry of rule.accounts ?? []) {
    if (list.length >= upTo) return { list: list.slice(0, upTo), complete: false }
    if (entry === '*') continue
    if (!isOrganizationUnit(entry)) {
      list.push({ id: entry, name: null, active: false })
      continue
    }
    if (!organization) continue
    const under = await organization.accountsUnder(entry, upTo - list.length)
    for (const account of under.accounts) list.push({ id: account.id, name: account.name, active: account.active })
    if (under.truncated) return { list, complete: false }
  }
  return { list, complete: true }
}

async function tagsMatch(rule: Rule, organization: AccountDirectory | undefined, accountId: string): Promise<boolean> {
  if (!rule.accountTags) return true
  if (!organization) return false
  return missingTags(rule, await organization.tagsOf(accountId)).length === 0
}

const CURSOR_FIELDS = ['rule', 'position'] as const

/** The position a sealed cursor holds; InvalidCursorError for one this service did not mint for this query. */
function readCursor(cursors: CursorSeal, text: string, query: unknown): EligibilityCursor {
  const { rule, position } = cursors.decode(text, query, CURSOR_FIELDS)
  // Sealed cursors always pass: kept so that a fault in minting them fails here, not in a walk of the organization.
  const valid = typeof rule === 'string' && Number.isSafeInteger(position) && (position as number) > 0
  if (!valid || (position as number) > MAX_POSITION) throw new InvalidCursorError()
  return { rule, position: position as number }
}
