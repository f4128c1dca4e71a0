import type { Clock } from '../../src/core/clock.ts'

/** A clock the test moves by hand, so expiry is tested without sleeping. */
export class ManualClock implements Clock {
  private current: number
  private advanced = 0

  constructor(start: Date = new Date()) {
    this.current = start.getTime()
  }

  now(): Date {
    return new Date(this.current)
  }

  advance(ms: number): void {
    this.current += ms
    this.advanced += ms
  }

  /** All the time advanced by hand, for worlds that run on real time plus this clock's (the proxy's AWS world). */
  get advancedMs(): number {
    return this.advanced
  }

  advanceMinutes(minutes: number): void {
    this.advance(minutes * 60_000)
  }
}
