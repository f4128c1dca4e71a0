import { AsyncLocalStorage } from 'node:async_hooks'
import { DeadlineExceededError } from './errors.ts'

/*
 * A request's answer-by time, in real time (Date.now(), not the injected Clock): it bounds how long a caller
 * waits (API Gateway gives up after about 30 s), which has nothing to do with grant expiry. It travels with the
 * work through async calls, so that the waits deep inside the adapters (the rate limiter's queue and backoff,
 * status polls) stop at it instead of making the request, or work it left behind, wait past it.
 */
const current = new AsyncLocalStorage<number>()

/** Runs `work` with `deadline` (epoch ms) as the time by which its waits must end; undefined runs it unbounded. */
export function withDeadline<T>(deadline: number | undefined, work: () => Promise<T>): Promise<T> {
  return deadline === undefined ? work() : current.run(deadline, work)
}

/** Milliseconds left before the current work's deadline; Infinity when it has none. */
export function timeLeftMs(): number {
  const deadline = current.getStore()
  return deadline === undefined ? Infinity : deadline - Date.now()
}

/** Throws DeadlineExceededError when a wait of `ms` from now would end at or past the current work's deadline. */
export function ensureTimeFor(ms: number): void {
  if (ms >= timeLeftMs()) throw new DeadlineExceededError()
}

/**
 * Runs `work` free of the current deadline: for work whose result other requests share (a listing that
 * concurrent requests wait for), which must not fail them because the request that started it ran out of time.
 */
export function withoutDeadline<T>(work: () => T): T {
  return current.exit(work)
}

/**
 * Settles as `work` does, unless `deadline` comes first: then as `onTimeout` says, while `work` goes on
 * unobserved (everything it does is recorded before it is done, so what it leaves unfinished is the sweep's).
 */
export async function answerBy<T>(deadline: number, work: Promise<T>, onTimeout: () => T): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<'timeout'>(
    (resolve) => (timer = setTimeout(() => resolve('timeout'), Math.max(0, deadline - Date.now()))),
  )
  work.catch(() => undefined)
  try {
    const first = await Promise.race([work, timeout])
    return first === 'timeout' ? onTimeout() : first
  } finally {
    clearTimeout(timer)
  }
}
