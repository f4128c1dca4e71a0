import { DomainError, UpstreamUnavailableError } from '../core/errors.ts'

const RETRYABLE_NAMES = new Set([
  'ThrottlingException',
  'TooManyRequestsException',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'ConflictException',
  'InternalServerException',
  'InternalServerError',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
])

export function isRetryable(error: unknown): boolean {
  // Our own errors (a deadline reached, a lease lost) are decisions, not AWS answers to try again.
  if (error instanceof DomainError) return false
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number }; $retryable?: unknown; code?: string }
  if (e?.$retryable) return true
  if (e?.name && RETRYABLE_NAMES.has(e.name)) return true
  const status = e?.$metadata?.httpStatusCode
  if (status !== undefined && status >= 500) return true
  // No HTTP answer at all: the connection was refused, reset or timed out.
  return status === undefined && typeof e?.code === 'string'
}

/** As callAws, for a lookup whose "no such resource" (ResourceNotFoundException) is an answer, undefined. */
export function callAwsUnlessNotFound<T>(
  service: string,
  operation: string,
  call: () => Promise<T>,
): Promise<T | undefined> {
  return callAws(service, operation, async () => {
    try {
      return await call()
    } catch (error) {
      if ((error as { name?: string }).name === 'ResourceNotFoundException') return undefined
      throw error
    }
  })
}

/** Runs one AWS call; anything it throws becomes an UpstreamUnavailableError naming the service and operation. */
export async function callAws<T>(service: string, operation: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call()
  } catch (error) {
    if (error instanceof DomainError) throw error
    throw new UpstreamUnavailableError(service, operation, error, isRetryable(error))
  }
}
