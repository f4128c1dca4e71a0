import { unmarshall } from '@aws-sdk/util-dynamodb'
import { type BackoffLimits, backoffMs, pause } from '../../core/retry.ts'
import { callAws } from '../aws-errors.ts'

type Cancellation = {
  name?: string
  message?: string
  CancellationReasons?: { Code?: string }[]
  Item?: Record<string, unknown>
}

/** A write refused because its condition did not hold (alone, or as part of a cancelled transaction). */
export const isConditionFailure = (error: unknown): boolean => {
  const e = error as Cancellation
  if (e?.name === 'ConditionalCheckFailedException') return true
  if (e?.name !== 'TransactionCanceledException') return false
  return (
    e.CancellationReasons?.some((r) => r.Code === 'ConditionalCheckFailed') ??
    /ConditionalCheckFailed/.test(e.message ?? '')
  )
}

/** DynamoDB cancels a transaction that races another on the same item; it is safe to send again. */
export const isTransactionConflict = (error: unknown): boolean => {
  const e = error as Cancellation
  return (
    e?.name === 'TransactionCanceledException' &&
    (e.CancellationReasons?.some((r) => r.Code === 'TransactionConflict') ?? false) &&
    !isConditionFailure(error)
  )
}

export type ConditionalOutcome<T> =
  | { applied: true; result: T }
  /** `current` is the item as it was when the condition failed, when the write asked for it (ReturnValuesOnConditionCheckFailure: ALL_OLD) and it existed. */
  | { applied: false; current: Record<string, unknown> | undefined }

/** Runs one conditional write: a failed condition is an answer, not an error; anything else still throws. */
export async function conditionalWrite<T>(operation: string, send: () => Promise<T>): Promise<ConditionalOutcome<T>> {
  try {
    return { applied: true, result: await callAws('DynamoDB', operation, send) }
  } catch (error) {
    const cause = (error as { cause?: unknown }).cause as Cancellation | undefined
    if (!isConditionFailure(cause)) throw error
    // The document client unmarshalls answers, not errors: the old item arrives in wire format.
    return {
      applied: false,
      current: cause?.Item ? unmarshall(cause.Item as Parameters<typeof unmarshall>[0]) : undefined,
    }
  }
}

/** How often a write cancelled only by a conflicting transaction is sent in all. */
const CONFLICT_ATTEMPTS = 5
/** Backoff between those sends: 40 ms before the second, doubling. */
const CONFLICT_BACKOFF: BackoffLimits = { baseMs: 20 }

/** Sends a write again (with jittered backoff) while it is cancelled only by a conflicting transaction. */
export async function retryingConflicts<T>(send: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await send()
    } catch (error) {
      if (!isTransactionConflict(error) || attempt === CONFLICT_ATTEMPTS) throw error
      await pause(backoffMs(attempt, CONFLICT_BACKOFF))
    }
  }
}

/** A conditional write, sent again if it only raced a transaction: what every store's conditional write is. */
export function conditionalRetrying<T>(operation: string, send: () => Promise<T>): Promise<ConditionalOutcome<T>> {
  return conditionalWrite(operation, () => retryingConflicts(send))
}
