import type { ChainedAuditEvent } from '../../core/audit-chain.ts'
import type { AccessTarget, AssignmentTarget, Grant } from '../../core/grant-model.ts'
import type { Coverage } from '../../core/ports.ts'
import { ALL_PARTITION } from './tables.ts'

export const grantKey = (id: string) => ({ pk: `grant#${id}` })
/** An account assignment's coverage record key (a membership's is the grant store's: see coverageKey there). */
export const coverageKey = (t: AssignmentTarget) => ({
  pk: `coverage#${t.userId}#${t.accountId}#${t.permissionSetArn}`,
})
export const auditKey = (id: string) => ({ pk: `event#${id}` })

const GRANT_FIELDS = [
  'id',
  'status',
  'userName',
  'userId',
  'accountId',
  'permissionSet',
  'permissionSetArn',
  'groupName',
  'groupId',
  'ticketId',
  'justification',
  'requestedBy',
  'createdAt',
  'startsAt',
  'expiresAt',
  'accessEndsBy',
  'endedAt',
  'endedBy',
  'endReason',
  'coveredBy',
  'failureReason',
  'sessionsCutAt',
] as const satisfies readonly (keyof Grant)[]

export function grantToItem(grant: Grant, dueAt: Date | null): Record<string, unknown> {
  return {
    ...grantKey(grant.id),
    kind: 'grant',
    listShard: ALL_PARTITION,
    ...grant,
    ...(dueAt ? { dueShard: 'due', dueAt: dueAt.getTime() } : {}),
  }
}

export function itemToGrant(item: Record<string, unknown>): Grant {
  const grant = Object.fromEntries(GRANT_FIELDS.map((field) => [field, item[field] ?? null])) as unknown as Grant
  // Grants recorded before scheduling existed started when they were requested.
  grant.startsAt ??= grant.createdAt
  return grant
}

export function itemToCoverage(item: Record<string, unknown>, target: AccessTarget): Coverage {
  return {
    target,
    // DynamoDB drops a set's attribute with its last member: no attribute means no holders.
    holders: item.holders instanceof Set ? [...(item.holders as Set<string>)] : [],
    assignment: (item.assignment as Coverage['assignment'] | undefined) ?? 'absent',
    external: item.external === true,
    requestId: (item.requestId as string | undefined) ?? null,
    lastFailure: (item.lastFailure as string | undefined) ?? null,
    creationIntendedAt: typeof item.creationIntendedAt === 'number' ? item.creationIntendedAt : null,
    lastGrantId: typeof item.lastGrantId === 'string' ? item.lastGrantId : null,
    conflictSince: typeof item.conflictSince === 'number' ? item.conflictSince : null,
  }
}

// correlationId is absent from events written before it was recorded, and from events without one: both read as null.
const AUDIT_FIELDS = [
  'id',
  'at',
  'action',
  'actor',
  'grantId',
  'userName',
  'accountId',
  'permissionSet',
  'groupName',
  'ticketId',
  'detail',
  'requestId',
  'correlationId',
  'seq',
  'hash',
  'prevHash',
] as const satisfies readonly (keyof ChainedAuditEvent)[]

export function auditToItem(event: ChainedAuditEvent): Record<string, unknown> {
  // Index key attributes must be absent, not null, on events that have no value for them.
  const present = Object.fromEntries(Object.entries(event).filter(([, value]) => value !== null && value !== ''))
  return { ...auditKey(event.id), stream: ALL_PARTITION, ...present }
}

export function itemToAudit(item: Record<string, unknown>): ChainedAuditEvent {
  return Object.fromEntries(AUDIT_FIELDS.map((field) => [field, item[field] ?? null])) as unknown as ChainedAuditEvent
}
