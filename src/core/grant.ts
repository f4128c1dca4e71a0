export const GRANT_STATUSES = ['provisioning', 'active', 'revoking', 'expired', 'revoked', 'failed'] as const
export type GrantStatus = (typeof GRANT_STATUSES)[number]

/** Statuses in which the grant may still give access and the sweep must keep looking at it. */
export const OPEN_STATUSES: readonly GrantStatus[] = ['provisioning', 'active', 'revoking']

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
