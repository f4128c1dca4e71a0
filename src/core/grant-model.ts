export const GRANT_STATUSES = [
  'scheduled',
  'provisioning',
  'active',
  'revoking',
  'expired',
  'revoked',
  'cancelled',
  'denied',
  'failed',
] as const
export type GrantStatus = (typeof GRANT_STATUSES)[number]

/** Statuses in which the grant gives access, or will, and the sweep must keep looking at it. */
export const OPEN_STATUSES: readonly GrantStatus[] = ['scheduled', 'provisioning', 'active', 'revoking']

/** Statuses whose end may still be moved (PATCH): the access has not begun to end. */
export const MOVABLE_STATUSES: readonly GrantStatus[] = ['scheduled', 'provisioning', 'active']

export type EndReason = 'expired' | 'revoked'

/** Who or what the grant's access came from: our own assignment, or a permanent one that existed before. */
export type CoveredBy = 'jit' | 'pre-existing'

/** The Identity Center account assignment an account grant stands for (kind absent on records written before group grants). */
export interface AssignmentTarget {
  kind?: 'assignment'
  userId: string
  accountId: string
  permissionSetArn: string
}

/** The Identity Store group membership a group grant stands for. */
export interface MembershipTarget {
  kind: 'membership'
  userId: string
  groupId: string
}

/**
 * The access a grant stands for, of either kind. The coverage reconciler treats both alike; the adapter behind
 * the IdentityCenter port sends each to its own AWS API (SSO Admin, Identity Store).
 */
export type AccessTarget = AssignmentTarget | MembershipTarget

export const isMembership = (target: AccessTarget): target is MembershipTarget => target.kind === 'membership'

export interface Grant {
  id: string
  status: GrantStatus
  userName: string
  userId: string
  /** An account grant's account and permission set; null for a group grant. */
  accountId: string | null
  permissionSet: string | null
  permissionSetArn: string | null
  /** A group grant's Identity Store group (display name as requested, and its id); null for an account grant. */
  groupName: string | null
  groupId: string | null
  ticketId: string
  justification: string | null
  requestedBy: string
  createdAt: string
  /** When the access starts (or started): the requested future start of a scheduled grant, else when it was requested. */
  startsAt: string
  expiresAt: string
  /** When a role session obtained just before expiry stops working: expiresAt plus the permission set's session duration. */
  accessEndsBy: string
  endedAt: string | null
  endedBy: string | null
  endReason: EndReason | null
  coveredBy: CoveredBy | null
  failureReason: string | null
  /** When live role sessions were cut (JIT_SESSION_CUTOFF=scp): sessions issued before it are denied; null when none were. */
  sessionsCutAt: string | null
}

/** The access a grant stands for: its group membership when it names a group, else its account assignment. */
export function targetOf(grant: Pick<Grant, 'userId' | 'accountId' | 'permissionSetArn' | 'groupId'>): AccessTarget {
  if (grant.groupId) return { kind: 'membership', userId: grant.userId, groupId: grant.groupId }
  return { userId: grant.userId, accountId: grant.accountId ?? '', permissionSetArn: grant.permissionSetArn ?? '' }
}

/** What a grant gives, for messages: 'group prod-breakglass' or 'ReadOnly on 111122223333'. */
export function accessOf(grant: {
  accountId: string | null
  permissionSet: string | null
  groupName?: string | null | undefined
}): string {
  return grant.groupName ? `group ${grant.groupName}` : `${grant.permissionSet} on ${grant.accountId}`
}
