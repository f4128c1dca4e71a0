/**
 * Errors the core raises on purpose. Each carries a stable machine code; the HTTP edge maps codes to statuses,
 * so the core never needs to know about HTTP.
 */
export type ErrorCode =
  | 'VALIDATION_FAILED'
  | 'INVALID_CURSOR'
  | 'POLICY_DENIED'
  | 'TICKET_NOT_APPROVED'
  | 'GRANT_NOT_FOUND'
  | 'GRANT_ALREADY_ENDED'
  | 'CONCURRENT_CHANGE'
  | 'USER_NOT_FOUND'
  | 'PERMISSION_SET_NOT_FOUND'
  | 'GROUP_NOT_FOUND'
  | 'PROVISIONING_FAILED'
  | 'UPSTREAM_UNAVAILABLE'
  | 'LEASE_LOST'

export class DomainError extends Error {
  readonly code: ErrorCode
  readonly extensions: Record<string, unknown>

  constructor(code: ErrorCode, message: string, extensions: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(message, options)
    this.name = new.target.name
    this.code = code
    this.extensions = extensions
  }
}

export class UserNotFoundError extends DomainError {
  constructor(userName: string) {
    super('USER_NOT_FOUND', `No user named '${userName}' exists in the Identity Store`)
  }
}

export class PermissionSetNotFoundError extends DomainError {
  constructor(name: string) {
    super('PERMISSION_SET_NOT_FOUND', `No permission set named '${name}' exists in the Identity Center instance`)
  }
}

export class GroupNotFoundError extends DomainError {
  constructor(name: string) {
    super('GROUP_NOT_FOUND', `No group named '${name}' exists in the Identity Store`)
  }
}

export class PolicyDeniedError extends DomainError {
  constructor(reason: string, failedCondition: string) {
    super('POLICY_DENIED', reason, { failedCondition })
  }
}

export class DurationTooLongError extends DomainError {
  constructor(requested: number, maximum: number) {
    super('VALIDATION_FAILED', `durationMinutes ${requested} exceeds the service maximum of ${maximum}`)
  }
}

export class GrantNotFoundError extends DomainError {
  constructor(id: string) {
    super('GRANT_NOT_FOUND', `No grant with id '${id}'`)
  }
}

/** A change that only a grant still to start, or still giving access, can take (moving its end). */
export class GrantAlreadyEndedError extends DomainError {
  constructor(id: string, status: string) {
    super(
      'GRANT_ALREADY_ENDED',
      `Grant '${id}' has ended or is ending (status '${status}'): its end can no longer be moved`,
      { grantStatus: status },
    )
  }
}

/**
 * Another process took over a lease (an assignment's, or the session cut-off policies') while this one held it:
 * this process must stop changing what the lease guards and leave the rest to the new holder. Thrown by the
 * stores behind the ports that promise it (GrantStore.updateCoverage and renewLease, CutoffLedger.renewLease).
 */
export class LeaseLostError extends DomainError {
  constructor() {
    super('LEASE_LOST', 'Another process took over the assignment while this one was changing it')
  }
}

/** Input the schema lets through and the service refuses, listed field by field as a schema refusal would be. */
export class InvalidInputError extends DomainError {
  constructor(errors: { location: string; path: string; message: string }[]) {
    super('VALIDATION_FAILED', errors.map((e) => `${e.location}${e.path} ${e.message}`).join('; '), { errors })
  }
}

/** A start or end that no grant can have: in the past, before the start, or further ahead than allowed. */
export class InvalidTimeError extends DomainError {
  constructor(message: string) {
    super('VALIDATION_FAILED', message)
  }
}

/** The grant kept changing under a request that wanted to change it (each attempt found it moved): retry. */
export class ConcurrentChangeError extends DomainError {
  constructor(id: string) {
    super('CONCURRENT_CHANGE', `Grant '${id}' was changed by another request while this one was deciding; retry`)
  }
}

export class InvalidCursorError extends DomainError {
  constructor() {
    super('INVALID_CURSOR', 'The cursor is not one this service issued for this query')
  }
}

/** Identity Center refused the assignment (it said FAILED, or rejected the call as invalid). Not worth retrying. */
export class ProvisioningFailedError extends DomainError {
  constructor(grantId: string, reason: string) {
    super('PROVISIONING_FAILED', `Identity Center could not provision grant '${grantId}': ${reason}`, { grantId })
  }
}

/**
 * An AWS dependency did not answer usefully (throttled, 5xx, timed out, connection dropped). The intent is
 * recorded, so the sweep finishes the work; the caller may retry later.
 */
export class UpstreamUnavailableError extends DomainError {
  readonly service: string
  readonly retryable: boolean
  /** How long a caller should wait before trying again, when the dependency's own pace says (else the edge's default). */
  readonly retryAfterSeconds: number | undefined

  constructor(service: string, operation: string, cause: unknown, retryable = true, retryAfterSeconds?: number) {
    super('UPSTREAM_UNAVAILABLE', `${service} ${operation} failed: ${describeCause(cause)}`, {}, { cause })
    this.service = service
    this.retryable = retryable
    this.retryAfterSeconds = retryAfterSeconds
  }
}

/** The ticket system says the ticket does not approve this access (not approved, not in a state that allows work, outside its window). */
export class TicketNotApprovedError extends DomainError {
  constructor(ticketId: string, failedCondition: string, detail: string) {
    super('TICKET_NOT_APPROVED', `Ticket '${ticketId}' does not allow this access: ${detail}`, { failedCondition })
  }
}

/**
 * The request's deadline came before AWS answered (a long throttled queue, slow calls). Not retried within the
 * request: what was recorded stays recorded, and the sweep finishes it.
 */
export class DeadlineExceededError extends UpstreamUnavailableError {
  constructor() {
    super('AWS', 'calls', 'no answer before the request deadline', false)
  }
}

/**
 * A message could not be delivered to a subscriber (SNS, the ticket system). `permanent`: trying again cannot
 * help (the ticket does not exist, the request was refused as invalid); `retryAfterMs`: the receiver asked
 * for a pause (Retry-After).
 */
export class DeliveryError extends Error {
  readonly permanent: boolean
  readonly retryAfterMs: number | undefined

  constructor(
    message: string,
    options: { permanent?: boolean; retryAfterMs?: number | undefined; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause })
    this.name = 'DeliveryError'
    this.permanent = options.permanent ?? false
    this.retryAfterMs = options.retryAfterMs
  }
}

/** The error's AWS name and message only: never request parameters or credentials. */
export function describeCause(cause: unknown): string {
  if (cause instanceof Error) {
    const message = cause.message.length > 300 ? `${cause.message.slice(0, 300)}…` : cause.message
    return `${cause.name}: ${message}`
  }
  return String(cause)
}
