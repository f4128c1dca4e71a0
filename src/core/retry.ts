/** How a backoff grows: `baseMs` before the second attempt, doubling each time, capped at `maxMs`. */
export interface BackoffLimits {
  baseMs: number
  maxMs?: number
}

/**
 * The wait before retry number `attempt` (0 for the first retry): `baseMs · 2^attempt`, capped at `maxMs`, then
 * jittered to between half and one and a half times that, so that processes that failed together do not retry
 * together.
 */
export function backoffMs(attempt: number, limits: BackoffLimits): number {
  return Math.min(limits.baseMs * 2 ** attempt, limits.maxMs ?? Infinity) * (0.5 + Math.random())
}

/** Waits `ms` of real time. */
export const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
