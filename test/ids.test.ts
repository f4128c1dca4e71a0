import t from 'tap'
import { idBoundsAt, newId } from '../src/core/ids.ts'
import { ManualClock } from './helpers/clock.ts'

t.test('ids made in the same millisecond sort in creation order', async (t) => {
  const clock = new ManualClock(new Date('2026-03-01T10:00:00.000Z'))
  const ids = Array.from({ length: 50 }, () => newId(clock))
  t.same([...ids].sort(), ids)
  t.equal(new Set(ids).size, 50)
})

t.test('ids carry their clock’s time even when the clock steps back', async (t) => {
  const clock = new ManualClock(new Date('2026-03-01T10:05:00.000Z'))
  newId(clock)
  clock.advanceMinutes(-5)
  const id = newId(clock)
  const { lowest, highest } = idBoundsAt(clock.now())
  t.ok(id >= lowest && id <= highest, `${id} lies within ${lowest}..${highest}`)
})
