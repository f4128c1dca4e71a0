import { AsyncLocalStorage } from 'node:async_hooks'

/*
 * Whose turn comes first when Identity Center's quota is the bottleneck. A person waiting on a grant or an ending
 * comes before the sweep's catching up: the sweep runs its work as background, and whatever waits for the shared
 * quota (the rate limiter) serves the rest first. Carried through async calls, like the request deadline.
 */
const background = new AsyncLocalStorage<true>()

/** Runs `work` as background: its Identity Center calls wait while any other call is waiting. */
export function inBackground<T>(work: () => Promise<T>): Promise<T> {
  return background.run(true, work)
}

/** Runs `work` in the foreground whatever started it (a timer a sweep armed acts for a grant due now). */
export function inForeground<T>(work: () => T): T {
  return background.exit(work)
}

/** Whether the current work is background (see inBackground). */
export function isBackground(): boolean {
  return background.getStore() === true
}
