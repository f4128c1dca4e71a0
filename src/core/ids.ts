import { createHash, randomInt } from 'node:crypto'
import { v7 } from 'uuid'
import type { Clock } from './clock.ts'

let last = { msecs: 0, seq: 0 }

/**
 * A UUIDv7 taken from the injected clock. Ids always carry their own event's time (time-range queries rely
 * on it, even if the clock steps back), and ids made in one process within the same millisecond still sort
 * in creation order, because the sequence field counts up.
 */
export function newId(clock: Clock): string {
  const now = clock.now().getTime()
  last = now === last.msecs ? { msecs: now, seq: last.seq + 1 } : { msecs: now, seq: randomInt(0, 2 ** 30) }
  return v7({ msecs: last.msecs, seq: last.seq })
}

/** The smallest and largest UUIDv7 of a millisecond: bounds for time-range queries on id-sorted keys. */
export function idBoundsAt(time: Date): { lowest: string; highest: string } {
  const hex = Math.max(0, time.getTime()).toString(16).padStart(12, '0')
  const prefix = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-7`
  return { lowest: `${prefix}000-8000-000000000000`, highest: `${prefix}fff-bfff-ffffffffffff` }
}

/**
 * A UUIDv7 fixed by its inputs: the same time and seed always give the same id. An idempotent request's
 * grant id comes from here, so a retry after a crash finds the grant it already recorded instead of making another.
 */
export function deterministicId(msecs: number, seed: string): string {
  return v7({ msecs, random: createHash('sha256').update(seed).digest().subarray(0, 16) })
}
