import t from 'tap'
import { onFirstUse } from '../src/adapters/on-first-use.ts'
import { UpstreamUnavailableError } from '../src/core/errors.ts'
import { toProblem } from '../src/http/errors.ts'

t.test('an import that fails once is tried again at the next use, its failure a retryable 503', async (t) => {
  let calls = 0
  const load = onFirstUse('S3', async () => {
    calls++
    if (calls === 1)
      throw Object.assign(new Error("Cannot find module './s3-anchors.js'"), { code: 'ERR_MODULE_NOT_FOUND' })
    return { client: 'loaded' }
  })

  const failure = await load().catch((error: unknown) => error)
  t.type(failure, UpstreamUnavailableError)
  t.match(failure, { service: 'S3', retryable: true, message: /S3 client import failed.*s3-anchors/ })
  t.match(toProblem(failure), { status: 503, headers: { 'retry-after': '5' } }, 'a 503 with Retry-After, not a 500')

  t.same(await load(), { client: 'loaded' }, 'the next use imports again and gets the client')
  t.same(await load(), { client: 'loaded' })
  t.equal(calls, 2, 'once loaded, never imported again')
})

t.test('uses while the import is under way share it', async (t) => {
  let calls = 0
  let finish!: (value: string) => void
  const load = onFirstUse('SQS', () => {
    calls++
    return new Promise<string>((resolve) => (finish = resolve))
  })
  const both = Promise.all([load(), load()])
  finish('client')
  t.same(await both, ['client', 'client'])
  t.equal(calls, 1)
})
