import { DomainError, UpstreamUnavailableError } from '../core/errors.ts'

/**
 * Memoizes `load` (an adapter whose SDK client is imported on first use): every caller shares one load while it
 * is under way or once it succeeded. A load that fails is forgotten, so the next call imports again instead of
 * failing until the process restarts (a chunk missing for a moment, a file system error), and its error becomes
 * a retryable UpstreamUnavailableError naming the service: 503 with Retry-After to a request, not a 500.
 */
export function onFirstUse<T>(service: string, load: () => Promise<T>): () => Promise<T> {
  let loaded: Promise<T> | undefined
  return () =>
    (loaded ??= load().catch((error: unknown) => {
      loaded = undefined
      throw error instanceof DomainError ? error : new UpstreamUnavailableError(service, 'client import', error, true)
    }))
}
