import t from 'tap'
import { sweep } from '../src/core/sweep.ts'

// In-memory stand-ins for the two ports the page loop uses: the due index (two pages, the second unreadable)
// and the grant service (a grant whose work waits until released).
const dueGrant = (id: string) => ({
  id,
  status: 'provisioning',
  expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
})

t.test('a page that cannot be read fails the run only once the grants already started are done', async (t) => {
  let release: () => void = () => {}
  const working = new Promise<void>((resolve) => {
    release = resolve
  })
  const events: string[] = []
  const store = {
    async dueItems(_now: Date, cursor?: string) {
      if (!cursor) return { grants: [dueGrant('g1')], coverages: [], cursor: 'page-2' }
      events.push('page 2 unreadable')
      throw new Error('DynamoDB unavailable')
    },
  }
  const grants = {
    async finishProvisioning(grant: { id: string }) {
      events.push(`${grant.id} started`)
      await working
      events.push(`${grant.id} finished`)
      return { settled: true, grant: { status: 'active' } }
    },
    async finishSessionCutoffs() {},
    async notify() {},
  }
  const clock = { now: () => new Date() }

  const run = sweep(store as never, grants as never, clock as never, { deadline: new Date(Date.now() + 60_000) })
  const outcome = run.then(
    () => 'resolved',
    (error: Error) => `rejected: ${error.message}`,
  )
  await new Promise((resolve) => setImmediate(resolve))
  t.same(events, ['g1 started', 'page 2 unreadable'], 'the second page is read while g1 is under way')
  let settledEarly = false
  void outcome.then(() => {
    settledEarly = !events.includes('g1 finished')
  })
  await new Promise((resolve) => setTimeout(resolve, 20))
  release()
  t.equal(await outcome, 'rejected: DynamoDB unavailable', 'the run still fails')
  t.notOk(settledEarly, `the run ended only after g1 finished (${events.join(', ')})`)
  t.same(events.at(-1), 'g1 finished')
})
