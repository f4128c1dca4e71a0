import { createHash } from 'node:crypto'

/*
 * The statements of the service control policies that end live role sessions (README, Session cut-off). Pure:
 * no AWS, no clock. A statement denies every action to role sessions of one Identity Center user, through one
 * permission set's role, in one account, issued before the cut. Statements are rebuilt from what the policies
 * hold, so nothing but the policies themselves says what is in force.
 */

/** Organizations' limit on one service control policy, counted as AWS counts it: without whitespace. */
export const SCP_MAX_CHARS = 5120

/** One ended grant's sessions to deny: whose, through which permission set's role, in which account, issued before when. */
export interface Cutoff {
  userId: string
  accountId: string
  /** The permission set's name, which Identity Center puts in the role's name. */
  permissionSet: string
  /** Sessions issued before this (ISO, whole seconds) are denied. */
  cutAt: string
  /** Epoch ms after which no denied session can still be alive (cutAt plus the session duration): the statement may go. */
  keepUntil: number
}

type Statement = Record<string, unknown>

export interface PolicyDocument {
  Version: '2012-10-17'
  Statement: Statement[]
}

/** The policy an owned SCP holds when nothing is cut: a deny no token can match (none was issued before 1970), because a policy must hold a statement. */
export const EMPTY_CUTOFF_POLICY: PolicyDocument = {
  Version: '2012-10-17',
  Statement: [
    {
      Sid: 'JitAccessNoCutoff',
      Effect: 'Deny',
      Action: '*',
      Resource: '*',
      Condition: { DateLessThan: { 'aws:TokenIssueTime': '1970-01-01T00:00:00Z' } },
    },
  ],
}

const SID = /^JitCut[0-9a-f]{16}U(\d{10,11})$/
const ROLE_PATTERN = /^arn:[a-z-]+:iam::(\d{12}):role\/aws-reserved\/sso\.amazonaws\.com\/\*AWSReservedSSO_(.+)_\?{16}$/
/** Identity Center's role names end in 16 hex characters; matching exactly that many keeps `Admin` from matching `Admin_Ops`'s role. */
const ROLE_HASH = '?'.repeat(16)

/** The same user, permission set and account: one statement is enough for all its cut-offs (the latest). */
export const targetKey = (cutoff: Pick<Cutoff, 'userId' | 'accountId' | 'permissionSet'>): string =>
  createHash('sha256')
    .update(`${cutoff.userId}\n${cutoff.accountId}\n${cutoff.permissionSet}`)
    .digest('hex')
    .slice(0, 16)

/**
 * The statement for one cut-off. Its Sid names the target (so writing it again changes nothing) and when it may
 * be pruned (so pruning needs nothing but the policy).
 */
export function statementOf(cutoff: Cutoff, partition = 'aws'): Statement {
  return {
    Sid: `JitCut${targetKey(cutoff)}U${Math.ceil(cutoff.keepUntil / 1000)}`,
    Effect: 'Deny',
    Action: '*',
    Resource: '*',
    Condition: {
      StringEquals: { 'identitystore:UserId': cutoff.userId },
      ArnLike: {
        'aws:PrincipalArn': `arn:${partition}:iam::${cutoff.accountId}:role/aws-reserved/sso.amazonaws.com/*AWSReservedSSO_${cutoff.permissionSet}_${ROLE_HASH}`,
      },
      DateLessThan: { 'aws:TokenIssueTime': cutoff.cutAt },
    },
  }
}

/** The cut-off a statement of ours stands for; undefined for any other statement (kept as it is). */
export function cutoffOf(statement: Statement): Cutoff | undefined {
  const sid = typeof statement.Sid === 'string' ? SID.exec(statement.Sid) : null
  const condition = statement.Condition as Record<string, Record<string, unknown>> | undefined
  const role = ROLE_PATTERN.exec(String(condition?.ArnLike?.['aws:PrincipalArn'] ?? ''))
  const userId = condition?.StringEquals?.['identitystore:UserId']
  const cutAt = condition?.DateLessThan?.['aws:TokenIssueTime']
  if (!sid || !role || typeof userId !== 'string' || typeof cutAt !== 'string') return undefined
  return {
    userId,
    accountId: role[1] as string,
    permissionSet: role[2] as string,
    cutAt,
    keepUntil: Number(sid[1]) * 1000,
  }
}

/**
 * Characters as Organizations counts them against SCP_MAX_CHARS: the document without the whitespace between
 * its tokens (compact JSON). Whitespace inside a string (a statement someone else wrote) counts.
 */
export const policySize = (document: PolicyDocument): number => JSON.stringify(document).length

export interface OwnedPolicy {
  id: string
  document: PolicyDocument
}

export interface CutoffPlan {
  /** New content for the policies that change, by id. */
  writes: Map<string, PolicyDocument>
  /** Cut-offs in force once the writes are done (the new ones that fit, and the earlier ones still needed). */
  inForce: Cutoff[]
  /** New cut-offs no policy had room for: nothing was dropped to make room. */
  rejected: Cutoff[]
  /** New cut-offs whose sessions have all expired already: no statement is needed. */
  lapsed: Cutoff[]
}

/**
 * Lays out the cut-offs in force at `now`: statements whose sessions have all expired are pruned; a target cut
 * twice keeps one statement with the later time (sessions between the two cuts belonged to the later grant,
 * which ended too); every other statement stays where it is, and a new one goes into the first policy with
 * room for it. A new one for which no policy has room is rejected, never an earlier one dropped: the caller
 * reports it. Statements the service did not write are left alone.
 */
export function planCutoffs(policies: OwnedPolicy[], additions: Cutoff[], now: number, partition = 'aws'): CutoffPlan {
  const placed = new Map<string, { policy: number; cutoff: Cutoff }>()
  const foreign = policies.map(() => [] as Statement[])
  policies.forEach((policy, index) => {
    for (const statement of policy.document.Statement) {
      const cutoff = cutoffOf(statement)
      if (!cutoff) {
        if (statement.Sid !== EMPTY_CUTOFF_POLICY.Statement[0]?.Sid) foreign[index]?.push(statement)
      } else if (cutoff.keepUntil > now) {
        keepLater(placed, index, cutoff)
      }
    }
  })
  const rejected: Cutoff[] = []
  const lapsed: Cutoff[] = []
  const layout = () =>
    policies.map((_, index) =>
      documentOf(
        foreign[index] ?? [],
        [...placed.values()].filter((p) => p.policy === index).map((p) => p.cutoff),
        partition,
      ),
    )
  for (const cutoff of additions) {
    if (cutoff.keepUntil <= now) {
      lapsed.push(cutoff)
      continue
    }
    const existing = placed.get(targetKey(cutoff))
    if (existing) {
      keepLater(placed, existing.policy, cutoff)
      continue
    }
    const documents = layout()
    const room = documents.findIndex(
      (document) => policySize(document) + statementSize(cutoff, partition) <= SCP_MAX_CHARS,
    )
    if (room === -1) rejected.push(cutoff)
    else placed.set(targetKey(cutoff), { policy: room, cutoff })
  }
  const documents = layout()
  const writes = new Map<string, PolicyDocument>()
  policies.forEach((policy, index) => {
    const document = documents[index] as PolicyDocument
    if (JSON.stringify(document) !== JSON.stringify(policy.document)) writes.set(policy.id, document)
  })
  return { writes, inForce: [...placed.values()].map((p) => p.cutoff), rejected, lapsed }
}

/** The later of two cut-offs of one target, with the later pruning time, in the policy that already holds it. */
function keepLater(placed: Map<string, { policy: number; cutoff: Cutoff }>, policy: number, cutoff: Cutoff): void {
  const key = targetKey(cutoff)
  const earlier = placed.get(key)?.cutoff
  if (!earlier) {
    placed.set(key, { policy, cutoff })
    return
  }
  // biome-ignore lint/complexity/useMathMinMax: cutAt is an RFC 3339 string (Math.max would give NaN)
  const cutAt = earlier.cutAt > cutoff.cutAt ? earlier.cutAt : cutoff.cutAt
  placed.set(key, {
    policy: placed.get(key)?.policy ?? policy,
    cutoff: { ...cutoff, cutAt, keepUntil: Math.max(earlier.keepUntil, cutoff.keepUntil) },
  })
}

/** What one more statement adds to a policy: itself and the comma before it. */
const statementSize = (cutoff: Cutoff, partition: string): number =>
  JSON.stringify(statementOf(cutoff, partition)).length + 1

function documentOf(foreign: Statement[], cutoffs: Cutoff[], partition: string): PolicyDocument {
  const statements = [...foreign, ...cutoffs.map((cutoff) => statementOf(cutoff, partition))]
  return statements.length > 0 ? { Version: '2012-10-17', Statement: statements } : EMPTY_CUTOFF_POLICY
}

/**
 * Reads a policy's content; a content that is not a policy document is an error (the caller stops rather than
 * overwrite what an administrator wrote).
 */
export function parsePolicyDocument(content: string): PolicyDocument {
  const parsed = JSON.parse(content) as { Statement?: unknown }
  const statements = Array.isArray(parsed.Statement)
    ? parsed.Statement
    : parsed.Statement
      ? [parsed.Statement]
      : undefined
  if (!statements) throw new Error('the policy has no Statement')
  return { Version: '2012-10-17', Statement: statements as Statement[] }
}
