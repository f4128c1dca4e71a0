import { timeLeftMs } from '../core/deadline.ts'
import { DeadlineExceededError } from '../core/errors.ts'
import { isBackground } from '../core/priority.ts'
import { type BackoffLimits, backoffMs, pause } from '../core/retry.ts'
import { isRetryable } from './aws-errors.ts'

export interface RateLimiterOptions {
  /** Calls per second this process may make; throttling lowers the working rate, success raises it back. */
  ratePerSecond: number
  /** Account-assignment creations in flight at once (Identity Center allows about 10 organisation-wide). */
  maxConcurrentCreations: number
  /** Attempts for calls that may be repeated (reads); never used for creations or deletions. */
  readAttempts?: number
  /**
   * Calls an idle process may make back to back (default 2): a lone grant's look and creation are not held
   * apart, while any one-second window still holds at most the rate plus this.
   */
  burst?: number
}

const THROTTLED = new Set(['ThrottlingException', 'TooManyRequestsException'])

/** A read's retries: 100 ms before the second attempt (the first retry is attempt 1), doubling, at most 1 s. */
const READ_BACKOFF: BackoffLimits = { baseMs: 50, maxMs: 1000 }

/** A caller waiting for a token: its deadline (epoch ms, Infinity for none), and whether it has given up. */
interface Waiter {
  deadline: number
  resolve(): void
  reject(error: Error): void
  timer?: NodeJS.Timeout
  done: boolean
}

/**
 * One Identity Center call budget for the whole process: grants, revocations, status polls and lookups all
 * take a token first. A throttling answer halves the working rate; each success raises it by a twentieth
 * of the configured rate, up to the configured rate (AIMD), so a burst at the end of a change window slows
 * down instead of failing.
 */
export class IdentityCenterRateLimiter {
  private readonly maxRate: number
  private rate: number
  private tokens: number
  private refilledAt = Date.now()
  /** Foreground callers (requests, due timers) are served before background ones (the sweep: see core/priority.ts). */
  private readonly foreground: Waiter[] = []
  private readonly background: Waiter[] = []
  private pumping = false
  private creationsInFlight = 0
  private readonly creationWaiters: (() => void)[] = []
  private readonly maxConcurrentCreations: number
  private readonly readAttempts: number
  private readonly burst: number
  /** Observed by tests and the benchmark. */
  readonly stats = { calls: 0, throttled: 0, lowestRate: 0 }

  constructor(options: RateLimiterOptions) {
    this.maxRate = options.ratePerSecond
    this.rate = options.ratePerSecond
    this.burst = Math.max(1, options.burst ?? 2)
    this.tokens = this.burst
    this.maxConcurrentCreations = options.maxConcurrentCreations
    this.readAttempts = options.readAttempts ?? 3
    this.stats.lowestRate = options.ratePerSecond
  }

  get currentRate(): number {
    return this.rate
  }

  /** A read: retried with backoff on throttling, 5xx and dropped connections, each attempt paying a token. */
  async read<T>(call: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.once(call)
      } catch (error) {
        if (!isRetryable(error) || attempt >= this.readAttempts) throw error
        const backoff = backoffMs(attempt, READ_BACKOFF)
        // A backoff that would end past the request's deadline is not waited out: the last error stands.
        if (backoff > timeLeftMs()) throw error
        await pause(backoff)
      }
    }
  }

  /** A state-changing call: one attempt (the caller decides what to do after a failure). */
  mutate<T>(call: () => Promise<T>): Promise<T> {
    return this.once(call)
  }

  /** A creation and the wait for it to finish: one of at most maxConcurrentCreations in flight. */
  async creation<T>(work: () => Promise<T>): Promise<T> {
    while (this.creationsInFlight >= this.maxConcurrentCreations) {
      await new Promise<void>((resolve) => this.creationWaiters.push(resolve))
    }
    this.creationsInFlight++
    try {
      return await work()
    } finally {
      this.creationsInFlight--
      this.creationWaiters.shift()?.()
    }
  }

  private async once<T>(call: () => Promise<T>): Promise<T> {
    await this.takeToken()
    this.stats.calls++
    try {
      const result = await call()
      this.rate = Math.min(this.maxRate, this.rate + this.maxRate / 20)
      return result
    } catch (error) {
      if (THROTTLED.has((error as Error).name)) {
        this.stats.throttled++
        this.rate = Math.max(0.5, this.rate / 2)
        this.stats.lowestRate = Math.min(this.stats.lowestRate, this.rate)
      }
      throw error
    }
  }

  /**
   * Callers take tokens one at a time, in order (foreground callers before background ones), from a bucket that
   * holds `burst` tokens: under load, calls are evenly spaced, so no one-second window holds more than the rate
   * plus the burst. A caller whose deadline passes while it waits, or would pass before the next token, gives its
   * turn up (DeadlineExceededError) instead of spending a token on a call nobody waits for.
   */
  private takeToken(): Promise<void> {
    const left = timeLeftMs()
    if (left <= 0) return Promise.reject(new DeadlineExceededError())
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { deadline: Date.now() + left, resolve, reject, done: false }
      if (left !== Infinity) waiter.timer = setTimeout(() => this.giveUp(waiter), left)
      ;(isBackground() ? this.background : this.foreground).push(waiter)
      void this.pump()
    })
  }

  private giveUp(waiter: Waiter): void {
    if (waiter.done) return
    waiter.done = true
    clearTimeout(waiter.timer)
    waiter.reject(new DeadlineExceededError())
  }

  /** The next caller still waiting: the foreground's first, else the background's. */
  private nextWaiter(): Waiter | undefined {
    for (const queue of [this.foreground, this.background]) {
      while (queue[0]?.done) queue.shift()
      if (queue[0]) return queue[0]
    }
    return undefined
  }

  private async pump(): Promise<void> {
    if (this.pumping) return
    this.pumping = true
    try {
      for (let next = this.nextWaiter(); next; next = this.nextWaiter()) {
        const now = Date.now()
        this.tokens = Math.min(this.burst, this.tokens + ((now - this.refilledAt) / 1000) * this.rate)
        this.refilledAt = now
        if (this.tokens >= 1) {
          this.tokens -= 1
          next.done = true
          clearTimeout(next.timer)
          next.resolve()
          continue
        }
        const wait = ((1 - this.tokens) / this.rate) * 1000
        if (now + wait >= next.deadline) {
          this.giveUp(next)
          continue
        }
        // Whoever is first when the token is there gets it: a foreground caller arriving meanwhile goes ahead.
        await pause(wait)
      }
    } finally {
      this.pumping = false
    }
  }
}
