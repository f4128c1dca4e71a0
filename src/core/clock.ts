/** Time comes from here, never from `new Date()` in the core, so that expiry is testable without sleeping. */
export interface Clock {
  now(): Date
}

export const systemClock: Clock = { now: () => new Date() }
