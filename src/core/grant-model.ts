export const GRANT_STATUSES = ['scheduled', 'provisioning', 'active', 'revoking', 'expired', 'revoked', 'cancelled', 'denied', 'failed'] as const
export type GrantStatus = (typeof GRANT_STATUSES)[number]

/** Statuses in which the grant gives access, or will, and the sweep must keep looking at it. */
export const OPEN_STATUSES: readonly GrantStatus[] = ['scheduled', 'provisioning', 'active', 'revoking']

/** Statuses whose end may still be moved (PATCH): the access has not begun to end. */
export const MOVABLE_STATUSES: readonly GrantStatus[] = ['scheduled', 'provisioning', 'active']

export type EndReason = 'expired' | 'revoked'

/** Who or what the grant's access came from: our own assignment, or a permanent one that existed before. */
export type CoveredBy = 'jit' | 'pre-existing'

/** The Identity Center account assignment a grant stands for. */
export interface AssignmentTarget {
  userId: string
  accountId: string
  permissionSetArn: string
}

export interface Grant {
  id: string
  status: GrantStatus
  userName: string
  userId: string
  accountId: string
  permissionSet: string
  permissionSetArn: string
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

export const targetOf = (grant: Pick<Grant, 'userId' | 'accountId' | 'permissionSetArn'>): AssignmentTarget => ({
  userId: grant.userId,
  accountId: grant.accountId,
  permissionSetArn: grant.permissionSetArn,
})
