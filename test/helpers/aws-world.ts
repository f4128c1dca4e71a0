import { randomUUID } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import { seededRandom } from './seeded-random.ts'

/** An HTTP answer, whole. */
export interface Answer {
  status: number
  headers: IncomingHttpHeaders
  body: string
  /** Set when the world refused the request itself, for the proxy's fault counters. */
  injected?: string
}

/** Sends a JSON body to moto as the given X-Amz-Target (the incoming request's own when omitted). */
export type Send = (body: string, target?: string) => Promise<Answer>

export interface AwsWorldOptions {
  /** World time (ms): tests pass real time plus a ManualClock's advance, so either moves AWS forward. */
  now?: () => number
  /** How long Identity Center takes to finish a creation or deletion. */
  provisioningMs?: number
  /**
   * Each operation takes a time drawn evenly from [provisioningMs - jitter, provisioningMs + jitter], from a
   * generator seeded with `seed`: AWS's times vary, and a varying time is what lands a provisioning's end
   * between two of the service's calls.
   */
  provisioningJitterMs?: number
  seed?: number
}

interface Assignment {
  InstanceArn: string
  TargetId: string
  TargetType: string
  PermissionSetArn: string
  PrincipalType: string
  PrincipalId: string
}

export interface AssignmentOperation {
  kind: 'creation' | 'deletion'
  requestId: string
  assignment: Assignment
  createdDate: number
  doneAt: number
  /** False for creating an assignment that already existed: AWS accepts it but changes nothing. */
  changed: boolean
  failureReason?: string
}

const HANDLED = new Set([
  'CreateAccountAssignment',
  'DeleteAccountAssignment',
  'DescribeAccountAssignmentCreationStatus',
  'DescribeAccountAssignmentDeletionStatus',
  'ListAccountAssignmentsForPrincipal',
  'ListAccountAssignments',
])

const keyOf = (principalId: unknown, accountId: unknown, permissionSetArn: unknown) =>
  `${principalId}|${accountId}|${permissionSetArn}`
const keyOfOperation = ({ assignment: a }: AssignmentOperation) => keyOf(a.PrincipalId, a.TargetId, a.PermissionSetArn)

/**
 * Identity Center as AWS runs it, on top of moto (which creates and deletes account assignments at once, and
 * keeps a second copy of one created twice): creations and deletions take `provisioningMs` of world time,
 * listings show an assignment only once its creation is done (and until its deletion is), a duplicate creation
 * changes nothing, and a second operation on an assignment while one is under way is refused.
 */
export class AwsWorld {
  readonly now: () => number
  readonly provisioningMs: number
  private readonly provisioningJitterMs: number
  private readonly random: () => number
  private readonly recorded: AssignmentOperation[] = []
  /** Keys whose operation is at moto right now: taken before any await, so concurrent requests conflict as on AWS. */
  private readonly sending = new Set<string>()

  constructor(options: AwsWorldOptions = {}) {
    this.now = options.now ?? Date.now
    this.provisioningMs = options.provisioningMs ?? 2000
    this.provisioningJitterMs = Math.min(options.provisioningJitterMs ?? 0, this.provisioningMs)
    this.random = seededRandom(options.seed ?? 1)
  }

  handles(operation: string): boolean {
    return HANDLED.has(operation)
  }

  /** Every operation recorded, finished or not. */
  get operations(): readonly AssignmentOperation[] {
    return this.recorded
  }

  /** Operations still under way in world time. */
  pending(kind?: AssignmentOperation['kind']): AssignmentOperation[] {
    const now = this.now()
    return this.recorded.filter((op) => now < op.doneAt && (!kind || op.kind === kind))
  }

  /** Finishes every operation under way now. */
  settleAll(): void {
    const now = this.now()
    for (const op of this.recorded) op.doneAt = Math.min(op.doneAt, now)
  }

  async answer(operation: string, body: string, send: Send): Promise<Answer> {
    const request = JSON.parse(body || '{}') as Record<string, unknown>
    switch (operation) {
      case 'CreateAccountAssignment':
      case 'DeleteAccountAssignment':
        return this.mutate(
          operation === 'CreateAccountAssignment' ? 'creation' : 'deletion',
          request as unknown as Assignment,
          body,
          send,
        )
      case 'DescribeAccountAssignmentCreationStatus':
        return this.describe('creation', request.AccountAssignmentCreationRequestId, body, send)
      case 'DescribeAccountAssignmentDeletionStatus':
        return this.describe('deletion', request.AccountAssignmentDeletionRequestId, body, send)
      default:
        return this.list(request, await send(body))
    }
  }

  /**
   * An answer reported FAILED (the proxy's report-failed fault): AWS then did not act, so moto is put back as
   * it was, and the operation's status says FAILED from now on.
   */
  async fail(requestId: string, reason: string, send: Send): Promise<void> {
    const op = this.recorded.find((o) => o.requestId === requestId)
    if (!op || op.failureReason) return
    op.failureReason = reason
    op.doneAt = Math.min(op.doneAt, this.now())
    if (!op.changed) return
    const undo = op.kind === 'creation' ? 'DeleteAccountAssignment' : 'CreateAccountAssignment'
    await send(JSON.stringify(op.assignment), `SWBExternalService.${undo}`)
  }

  private async mutate(
    kind: AssignmentOperation['kind'],
    assignment: Assignment,
    body: string,
    send: Send,
  ): Promise<Answer> {
    const key = keyOf(assignment.PrincipalId, assignment.TargetId, assignment.PermissionSetArn)
    const now = this.now()
    if (this.sending.has(key) || this.recorded.some((op) => now < op.doneAt && keyOfOperation(op) === key)) {
      return {
        ...json(400, {
          __type: 'ConflictException',
          message:
            'An account assignment operation is already in progress for this principal, target and permission set.',
        }),
        injected: 'conflict',
      }
    }
    this.sending.add(key)
    try {
      if (kind === 'creation' && (await this.exists(assignment, send))) {
        const op = this.record(kind, randomUUID(), assignment, this.now() / 1000, false)
        return json(200, { AccountAssignmentCreationStatus: statusOf(op, 'IN_PROGRESS') })
      }
      const answer = await send(body)
      if (answer.status !== 200) return answer
      const parsed = JSON.parse(answer.body) as Record<string, Record<string, unknown>>
      const status = Object.values(parsed)[0] ?? {}
      // moto answers a deletion with the id of the assignment's creation; AWS gives each operation its own.
      if (kind === 'deletion') status.RequestId = randomUUID()
      this.record(kind, String(status.RequestId), assignment, Number(status.CreatedDate ?? this.now() / 1000), true)
      status.Status = 'IN_PROGRESS'
      return { ...answer, body: JSON.stringify(parsed) }
    } finally {
      this.sending.delete(key)
    }
  }

  private record(
    kind: AssignmentOperation['kind'],
    requestId: string,
    assignment: Assignment,
    createdDate: number,
    changed: boolean,
  ): AssignmentOperation {
    const { InstanceArn, TargetId, TargetType, PermissionSetArn, PrincipalType, PrincipalId } = assignment
    const op = {
      kind,
      requestId,
      assignment: {
        InstanceArn,
        TargetId,
        TargetType: TargetType ?? 'AWS_ACCOUNT',
        PermissionSetArn,
        PrincipalType,
        PrincipalId,
      },
      createdDate,
      doneAt: this.now() + this.provisioningMs + (this.random() * 2 - 1) * this.provisioningJitterMs,
      changed,
    }
    this.recorded.push(op)
    return op
  }

  /** What moto itself holds, unfiltered by the world. */
  private async exists(assignment: Assignment, send: Send): Promise<boolean> {
    let nextToken: unknown
    do {
      const answer = await send(
        JSON.stringify({
          InstanceArn: assignment.InstanceArn,
          PrincipalId: assignment.PrincipalId,
          PrincipalType: assignment.PrincipalType ?? 'USER',
          Filter: { AccountId: assignment.TargetId },
          ...(nextToken ? { NextToken: nextToken } : {}),
        }),
        'SWBExternalService.ListAccountAssignmentsForPrincipal',
      )
      if (answer.status !== 200) throw new Error(`moto answered ${answer.status} to a listing: ${answer.body}`)
      const page = JSON.parse(answer.body) as {
        AccountAssignments?: { PermissionSetArn?: string }[]
        NextToken?: unknown
      }
      if ((page.AccountAssignments ?? []).some((a) => a.PermissionSetArn === assignment.PermissionSetArn)) return true
      nextToken = page.NextToken
    } while (nextToken)
    return false
  }

  private async describe(
    kind: AssignmentOperation['kind'],
    requestId: unknown,
    body: string,
    send: Send,
  ): Promise<Answer> {
    const op = this.recorded.find((o) => o.kind === kind && o.requestId === requestId)
    if (!op) return send(body)
    const state = op.failureReason ? 'FAILED' : this.now() < op.doneAt ? 'IN_PROGRESS' : 'SUCCEEDED'
    return json(200, {
      [kind === 'creation' ? 'AccountAssignmentCreationStatus' : 'AccountAssignmentDeletionStatus']: statusOf(
        op,
        state,
      ),
    })
  }

  /** Hides assignments still being created and shows those still being deleted, as AWS's listings do. */
  private list(request: Record<string, unknown>, answer: Answer): Answer {
    if (answer.status !== 200) return answer
    const page = JSON.parse(answer.body) as { AccountAssignments?: Record<string, unknown>[] }
    const underWay = this.pending()
    const hidden = new Set(underWay.filter((op) => op.kind === 'creation' && op.changed).map(keyOfOperation))
    const entries = (page.AccountAssignments ?? []).filter(
      (a) => !hidden.has(keyOf(a.PrincipalId, a.AccountId, a.PermissionSetArn)),
    )
    // Only the first page gets them, so that a paginated listing shows each once.
    if (!request.NextToken) {
      const forPrincipal = 'PrincipalId' in request
      const filter = (request.Filter ?? {}) as { AccountId?: string }
      for (const op of underWay.filter((o) => o.kind === 'deletion')) {
        const a = op.assignment
        const matches = forPrincipal
          ? a.PrincipalId === request.PrincipalId &&
            a.PrincipalType === request.PrincipalType &&
            (!filter.AccountId || a.TargetId === filter.AccountId)
          : a.TargetId === request.AccountId && a.PermissionSetArn === request.PermissionSetArn
        if (
          matches &&
          !entries.some((e) => keyOf(e.PrincipalId, e.AccountId, e.PermissionSetArn) === keyOfOperation(op))
        ) {
          entries.push({
            AccountId: a.TargetId,
            PermissionSetArn: a.PermissionSetArn,
            PrincipalId: a.PrincipalId,
            PrincipalType: a.PrincipalType,
          })
        }
      }
    }
    return { ...answer, body: JSON.stringify({ ...page, AccountAssignments: entries }) }
  }
}

function statusOf(op: AssignmentOperation, state: string): Record<string, unknown> {
  const { TargetId, TargetType, PermissionSetArn, PrincipalType, PrincipalId } = op.assignment
  return {
    Status: state,
    RequestId: op.requestId,
    ...(state === 'FAILED' ? { FailureReason: op.failureReason } : {}),
    TargetId,
    TargetType,
    PermissionSetArn,
    PrincipalType,
    PrincipalId,
    CreatedDate: op.createdDate,
  }
}

function json(status: number, body: unknown): Answer {
  return {
    status,
    headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': randomUUID() },
    body: JSON.stringify(body),
  }
}
