import type { Test } from 'tap'

/** What a status check reads from an answer: light-my-request's response, or the Lambda handler's result. */
export interface Answer {
  statusCode: number
  body?: string | undefined
  /** light-my-request keeps the request it answered, for the method and URL. */
  raw?: { req?: { method?: string | undefined; url?: string | undefined } | undefined } | undefined
}

/** A failure message keeps this much of a body: a problem+json is far shorter, an export or a page may not be. */
const BODY_SHOWN = 2000

/**
 * Asserts an answer's status, as one t.equal. When it fails, the message names the request and shows the body
 * the service answered (its problem details), not only two numbers. `message` says what the check is about.
 */
export function expectStatus(t: Test, answer: Answer, status: number, message?: string): boolean {
  const what = message ?? `${request(answer)} answers ${status}`.trim()
  if (answer.statusCode === status) return t.pass(what)
  return t.equal(answer.statusCode, status, `${what}: ${answered(answer)}`, at(expectStatus))
}

/**
 * Asserts the statuses of several answers, as one t.same: `expected` is every answer's status, or the list of
 * them in order. When it fails, the message shows each unexpected answer with its request and body.
 */
export function expectStatuses(t: Test, answers: Answer[], expected: number | number[], message?: string): boolean {
  const wanted = typeof expected === 'number' ? answers.map(() => expected) : expected
  const found = answers.map((answer) => answer.statusCode)
  const what = message ?? `answers ${typeof expected === 'number' ? `all ${expected}` : expected.join(', ')}`
  if (found.length === wanted.length && found.every((status, i) => status === wanted[i]))
    return t.same(found, wanted, what)
  const unexpected = answers.flatMap((answer, i) =>
    answer.statusCode === wanted[i] ? [] : [`#${i} ${answered(answer)}`],
  )
  return t.same(found, wanted, `${what}; ${unexpected.join('; ')}`, at(expectStatuses))
}

/** Asserts a fetch Response's status; when it fails, the message shows its body, read from a clone. */
export async function expectFetchStatus(
  t: Test,
  response: Response,
  status: number,
  message?: string,
): Promise<boolean> {
  const what = message ?? `${response.url} answers ${status}`
  if (response.status === status) return t.pass(what)
  const body = await response
    .clone()
    .text()
    .catch((error: unknown) => `(body unreadable: ${String(error)})`)
  return t.equal(
    response.status,
    status,
    `${what}: ${response.url} answered ${response.status}: ${shown(body)}`,
    at(expectFetchStatus),
  )
}

function request(answer: Answer): string {
  const req = answer.raw?.req
  return req?.method && req.url ? `${req.method} ${req.url}` : ''
}

function answered(answer: Answer): string {
  return `${request(answer)} answered ${answer.statusCode}: ${shown(answer.body)}`.trim()
}

function shown(body: string | undefined): string {
  if (body === undefined) return '(no body)'
  return body.length > BODY_SHOWN ? `${body.slice(0, BODY_SHOWN)}… (${body.length - BODY_SHOWN} more characters)` : body
}

/** Reports a failure where the test called the helper, not inside it. */
function at(helper: (...args: never[]) => unknown): { stack: string } {
  const holder: { stack?: string } = {}
  Error.captureStackTrace(holder, helper)
  return { stack: (holder.stack ?? '').split('\n').slice(1).join('\n') }
}
