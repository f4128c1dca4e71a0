import type { Clock } from '../../src/core/clock.ts'

/** A clock the test moves by hand, so expiry is tested without sleeping. */
export class ManualClock implements Clock {
  private current: number

  constructor(start: Date = new Date()) {
    this.current = start.getTime()
  }

  now(): Date {
    return new Date(this.current)
  }

  advance(ms: number): void {
    this.current += ms
  }

  advanceMinutes(minutes: number): void {
    this.advance(minutes * 60_000)
  }
}
