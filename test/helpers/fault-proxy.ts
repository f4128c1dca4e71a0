import {
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http'
import type { AddressInfo } from 'node:net'
import { type Answer, AwsWorld, type AwsWorldOptions } from './aws-world.ts'
import { seededRandom } from './seeded-random.ts'

/** What the proxy does to a matching request. */
export type Fault =
  /** Answer 500 without forwarding. */
  | 'server-error'
  /** Answer with an AWS throttling error without forwarding. */
  | 'throttle'
  /** Close the connection without forwarding. */
  | 'drop'
  /** Forward, let AWS act, then close the connection before the answer reaches the client. */
  | 'drop-after-upstream'
  /** Forward, let AWS act, then answer 500 instead of AWS's answer. */
  | 'server-error-after-upstream'
  /** Never answer: the caller is frozen as if its process had died mid-call (until releaseHung). */
  | 'hang'
  /** Forward, then report Identity Center's asynchronous operation as still IN_PROGRESS. */
  | 'report-in-progress'
  /** Forward, then report Identity Center's asynchronous operation as FAILED. */
  | 'report-failed'
  /** Answer as DynamoDB does when concurrent transactions touch the same item. */
  | 'transaction-conflict'
  /**
   * Forward a listing of assignments (or of a user's group memberships), then answer it empty, as AWS does while a
   * new assignment is provisioning.
   */
  | 'report-none'
  /** Answer as Organizations does while another change to the organization's policies is under way. */
  | 'concurrent-modification'
  /** Answer as Organizations does past its rate. */
  | 'too-many-requests'
  /**
   * Forward an Organizations account answer (DescribeAccount, ListAccountsForParent), then report every account
   * in it as PENDING_CLOSURE, as AWS does for a while after CloseAccount (moto goes straight to SUSPENDED).
   */
  | 'report-pending-closure'
  /** Answer as AWS does when the caller's IAM policy does not allow the operation, without forwarding. */
  | 'access-denied'

interface Rule {
  /** The AWS operation, e.g. 'CreateAccountAssignment' (matched against X-Amz-Target or the query's Action). */
  operation: string
  fault: Fault
  /** How many matching requests to hit; Infinity until cleared. */
  times: number
}

/**
 * A small HTTP proxy between the AWS SDK and moto_server that injects faults at the wire, so the service's
 * real clients, retries and error handling are what get tested.
 */
export class FaultProxy {
  readonly server: Server
  private rules: Rule[] = []
  readonly injected: Record<string, number> = {}
  /** Every fault injected by a rule (set or random) so far, by operation and kind: `'GetGroupMembershipId drop'`. */
  readonly injectedOn: Record<string, number> = {}
  readonly calls: Record<string, number> = {}
  /** When each answered request arrived and was answered (performance.now()), for the benchmark's breakdown. */
  readonly timings: { operation: string; start: number; end: number }[] = []
  private readonly answeredCount: Record<string, number> = {}
  private readonly answerWaiters: { operation: string; count: number; resolve: () => void }[] = []
  private target: URL
  /** Where DynamoDB's requests go, when not to `target` (the bench's moto per service, test/bench/split-moto.ts). */
  private readonly dynamodbTarget: URL | undefined
  private readonly hung: IncomingMessage[] = []
  private readonly holds = new Map<string, { arrived: () => void; released: Promise<void> }>()
  private quota: { perSecond: number; recent: number[] } | undefined
  private membershipQuota: { perSecond: number; recent: number[] } | undefined
  /** When each Identity Store group-membership call arrived (ms). */
  readonly membershipCallTimes: number[] = []
  /** When each Identity Center call arrived (ms), for checking the rate a client keeps. */
  readonly identityCenterCallTimes: number[] = []
  private chaos:
    | { probability: number; faults: Fault[]; operations: Set<string> | undefined; random: () => number }
    | undefined
  /** Identity Center's account assignments as AWS runs them (see AwsWorld); undefined: as moto runs them. */
  readonly awsWorld: AwsWorld | undefined
  /** Where the proxy listens, once started. */
  endpoint = ''

  constructor(target: string, options: { awsLike?: AwsWorldOptions; dynamodbTarget?: string | undefined } = {}) {
    this.target = new URL(target)
    this.dynamodbTarget = options.dynamodbTarget ? new URL(options.dynamodbTarget) : undefined
    this.server = createServer((req, res) => void this.handle(req, res))
    this.awsWorld = options.awsLike ? new AwsWorld(options.awsLike) : undefined
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve))
    this.endpoint = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`
    return this.endpoint
  }

  /** Ends every frozen call with a dropped connection. */
  releaseHung(): void {
    for (const request of this.hung.splice(0)) request.socket.destroy()
  }

  stop(): Promise<void> {
    this.releaseHung()
    this.server.closeAllConnections()
    return new Promise((resolve) => this.server.close(() => resolve()))
  }

  inject(operation: string, fault: Fault, times = Infinity): void {
    this.rules.push({ operation, fault, times })
  }

  /**
   * From now on, each request (to the listed operations, or all) meets one of `faults` with `probability`,
   * drawn from a seeded generator so a failing run can be replayed.
   */
  injectRandomly(options: { probability: number; faults: Fault[]; operations?: string[]; seed: number }): void {
    this.chaos = {
      probability: options.probability,
      faults: options.faults,
      operations: options.operations ? new Set(options.operations) : undefined,
      random: seededRandom(options.seed),
    }
  }

  /**
   * Holds the next request for `operation` at the proxy until `release()`, then sends it on as usual: for a
   * test to make something happen while that call is under way.
   */
  holdNext(operation: string): { arrived: Promise<void>; release: () => void } {
    let release!: () => void
    let arrived!: () => void
    const released = new Promise<void>((resolve) => (release = resolve))
    const arrival = new Promise<void>((resolve) => (arrived = resolve))
    this.holds.set(operation, { arrived, released })
    return { arrived: arrival, release }
  }

  /** Settles once `count` requests for `operation` have been answered (or were already): to act between two calls. */
  answered(operation: string, count: number): Promise<void> {
    if ((this.answeredCount[operation] ?? 0) >= count) return Promise.resolve()
    return new Promise((resolve) => this.answerWaiters.push({ operation, count, resolve }))
  }

  clear(): void {
    this.rules = []
    this.chaos = undefined
  }

  /** Throttles Identity Center calls past `perSecond` in any one-second window, the way AWS does. */
  enforceIdentityCenterQuota(perSecond: number): void {
    this.quota = { perSecond, recent: [] }
  }

  /**
   * Throttles the Identity Store's group-membership calls (create, delete, list for a member, look up) past
   * `perSecond` in any one-second window, as AWS does: the Identity Store's quota is its own.
   */
  enforceMembershipQuota(perSecond: number): void {
    this.membershipQuota = { perSecond, recent: [] }
  }

  /** Every fault injected so far, by kind. */
  totalInjected(): number {
    return Object.values(this.injected).reduce((sum, n) => sum + n, 0)
  }

  private randomRule(operation: string): Rule | undefined {
    const chaos = this.chaos
    if (!chaos || (chaos.operations && !chaos.operations.has(operation)) || chaos.random() >= chaos.probability)
      return undefined
    // Only DynamoDB transactions can be cancelled by a conflicting transaction.
    const possible = chaos.faults.filter((f) => f !== 'transaction-conflict' || operation === 'TransactWriteItems')
    const fault = possible[Math.floor(chaos.random() * possible.length)] as Fault
    return { operation, fault, times: 1 }
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    const body = Buffer.concat(chunks)
    const operation = operationOf(req, body)
    this.calls[operation] = (this.calls[operation] ?? 0) + 1
    const arrived = performance.now()
    res.once('finish', () => {
      this.timings.push({ operation, start: arrived, end: performance.now() })
      this.answeredCount[operation] = (this.answeredCount[operation] ?? 0) + 1
      for (const waiter of this.answerWaiters.filter(
        (w) => w.operation === operation && w.count <= (this.answeredCount[operation] ?? 0),
      )) {
        this.answerWaiters.splice(this.answerWaiters.indexOf(waiter), 1)
        waiter.resolve()
      }
    })
    const hold = this.holds.get(operation)
    if (hold) {
      this.holds.delete(operation)
      hold.arrived()
      await hold.released
    }
    const identityCenter = String(req.headers['x-amz-target'] ?? '').startsWith('SWBExternalService.')
    if (identityCenter) {
      const now = Date.now()
      this.identityCenterCallTimes.push(now)
      if (this.quota) {
        this.quota.recent = this.quota.recent.filter((time) => now - time < 1000)
        if (this.quota.recent.length >= this.quota.perSecond) {
          this.injected.quota = (this.injected.quota ?? 0) + 1
          res
            .writeHead(400, { 'content-type': 'application/x-amz-json-1.1' })
            .end(JSON.stringify({ __type: 'ThrottlingException', message: 'Rate exceeded' }))
          return
        }
        this.quota.recent.push(now)
      }
    }
    if (
      MEMBERSHIP_OPERATIONS.has(operation) &&
      String(req.headers['x-amz-target'] ?? '').startsWith('AWSIdentityStore.')
    ) {
      const now = Date.now()
      this.membershipCallTimes.push(now)
      if (this.membershipQuota) {
        this.membershipQuota.recent = this.membershipQuota.recent.filter((time) => now - time < 1000)
        if (this.membershipQuota.recent.length >= this.membershipQuota.perSecond) {
          this.injected.quota = (this.injected.quota ?? 0) + 1
          res
            .writeHead(400, { 'content-type': 'application/x-amz-json-1.1' })
            .end(JSON.stringify({ __type: 'ThrottlingException', message: 'Rate exceeded' }))
          return
        }
        this.membershipQuota.recent.push(now)
      }
    }
    const rule = this.rules.find((r) => r.operation === operation && r.times > 0) ?? this.randomRule(operation)
    if (rule) {
      rule.times--
      this.injected[rule.fault] = (this.injected[rule.fault] ?? 0) + 1
      this.injectedOn[`${operation} ${rule.fault}`] = (this.injectedOn[`${operation} ${rule.fault}`] ?? 0) + 1
      if (rule.fault === 'server-error') {
        serverError(res)
        return
      }
      if (rule.fault === 'throttle') {
        res
          .writeHead(400, { 'content-type': 'application/x-amz-json-1.1' })
          .end(JSON.stringify({ __type: 'ThrottlingException', message: 'Rate exceeded' }))
        return
      }
      if (rule.fault === 'transaction-conflict') {
        res.writeHead(400, { 'content-type': 'application/x-amz-json-1.0' }).end(
          JSON.stringify({
            __type: 'com.amazonaws.dynamodb.v20120810#TransactionCanceledException',
            message:
              'Transaction cancelled, please refer cancellation reasons for specific reasons [TransactionConflict]',
            CancellationReasons: [{ Code: 'TransactionConflict', Message: 'Transaction is ongoing for the item' }],
          }),
        )
        return
      }
      if (rule.fault === 'concurrent-modification' || rule.fault === 'too-many-requests') {
        const type =
          rule.fault === 'concurrent-modification' ? 'ConcurrentModificationException' : 'TooManyRequestsException'
        res
          .writeHead(400, { 'content-type': 'application/x-amz-json-1.1' })
          .end(JSON.stringify({ __type: type, Message: 'injected' }))
        return
      }
      if (rule.fault === 'access-denied') {
        res.writeHead(400, { 'content-type': 'application/x-amz-json-1.1' }).end(
          JSON.stringify({
            __type: 'AccessDeniedException',
            message: `User: arn:aws:sts::123456789012:assumed-role/jit-access/lambda is not authorized to perform: ${operation}`,
          }),
        )
        return
      }
      if (rule.fault === 'drop') {
        req.socket.destroy()
        return
      }
      if (rule.fault === 'hang') {
        this.hung.push(req)
        return
      }
    }
    if (this.awsWorld?.handles(operation)) {
      await this.answerAsAws(this.awsWorld, req, res, body, operation, rule?.fault)
      return
    }
    const target =
      this.dynamodbTarget && String(req.headers['x-amz-target'] ?? '').startsWith('DynamoDB')
        ? this.dynamodbTarget
        : this.target
    const upstream = httpRequest(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: target.host },
      },
      (answer) => {
        if (rule?.fault === 'drop-after-upstream') {
          answer.resume()
          answer.on('end', () => req.socket.destroy())
          return
        }
        if (rule?.fault === 'server-error-after-upstream') {
          answer.resume()
          answer.on('end', () => serverError(res))
          return
        }
        if (
          rule?.fault === 'report-in-progress' ||
          rule?.fault === 'report-failed' ||
          rule?.fault === 'report-none' ||
          rule?.fault === 'report-pending-closure'
        ) {
          const rewrite = readAll(answer).then((text) =>
            rule.fault === 'report-none'
              ? emptyListing(operation)
              : rule.fault === 'report-pending-closure'
                ? pendingClosure(text)
                : rewriteStatus(text, rule.fault === 'report-failed'),
          )
          void rewrite.then((body) => {
            const headers = { ...answer.headers, 'content-length': String(Buffer.byteLength(body)) }
            res.writeHead(answer.statusCode ?? 502, headers).end(body)
          })
          return
        }
        res.writeHead(answer.statusCode ?? 502, answer.headers)
        answer.pipe(res)
      },
    )
    upstream.on('error', () => req.socket.destroy())
    upstream.end(body)
  }

  /** The world answers (asking moto as it needs), then the faults that strike after AWS acted apply to its answer. */
  private async answerAsAws(
    world: AwsWorld,
    req: IncomingMessage,
    res: ServerResponse,
    body: Buffer,
    operation: string,
    fault: Fault | undefined,
  ): Promise<void> {
    const send = (text: string, target?: string) => this.send(req, text, target)
    let answer: Answer
    try {
      answer = await world.answer(operation, body.toString('utf8'), send)
      if (answer.injected) this.injected[answer.injected] = (this.injected[answer.injected] ?? 0) + 1
      if (answer.status === 200 && (fault === 'report-in-progress' || fault === 'report-failed')) {
        answer = { ...answer, body: rewriteStatus(answer.body, fault === 'report-failed') }
        if (fault === 'report-failed') {
          for (const status of Object.values(JSON.parse(answer.body) as Record<string, { RequestId?: string }>)) {
            if (status.RequestId) await world.fail(status.RequestId, FAILURE_REASON, send)
          }
        }
      }
    } catch {
      req.socket.destroy()
      return
    }
    if (fault === 'drop-after-upstream') {
      req.socket.destroy()
      return
    }
    if (fault === 'server-error-after-upstream') {
      serverError(res)
      return
    }
    const text = fault === 'report-none' ? emptyListing(operation) : answer.body
    const headers = { ...answer.headers, 'content-length': String(Buffer.byteLength(text)) }
    delete headers['transfer-encoding']
    res.writeHead(answer.status, headers).end(text)
  }

  /** Sends a request to moto with the incoming request's headers, as `target` when given, and reads the whole answer. */
  private send(req: IncomingMessage, body: string, target?: string): Promise<Answer> {
    const headers: IncomingHttpHeaders = {
      ...req.headers,
      host: this.target.host,
      'content-length': String(Buffer.byteLength(body)),
    }
    delete headers['transfer-encoding']
    if (target) headers['x-amz-target'] = target
    return new Promise((resolve, reject) => {
      const upstream = httpRequest(
        { host: this.target.hostname, port: this.target.port, method: req.method, path: req.url, headers },
        (answer) => {
          readAll(answer).then(
            (text) => resolve({ status: answer.statusCode ?? 502, headers: answer.headers, body: text }),
            reject,
          )
        },
      )
      upstream.on('error', reject)
      upstream.end(body)
    })
  }
}

/** The Identity Store's group-membership calls, which the membership quota counts. */
const MEMBERSHIP_OPERATIONS = new Set([
  'CreateGroupMembership',
  'DeleteGroupMembership',
  'ListGroupMembershipsForMember',
  'GetGroupMembershipId',
  'IsMemberInGroups',
])

const emptyListing = (operation: string) =>
  JSON.stringify(operation === 'ListGroupMembershipsForMember' ? { GroupMemberships: [] } : { AccountAssignments: [] })
const FAILURE_REASON = 'Received a 404 status error: Not supported account.'

function serverError(res: ServerResponse): void {
  res
    .writeHead(500, { 'content-type': 'application/x-amz-json-1.1' })
    .end(JSON.stringify({ __type: 'InternalServerException', message: 'injected' }))
}

async function readAll(answer: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of answer) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

/** Rewrites the Status of an account-assignment creation or deletion answer. */
function rewriteStatus(text: string, failed: boolean): string {
  const parsed = JSON.parse(text) as Record<string, Record<string, unknown>>
  for (const status of Object.values(parsed)) {
    status.Status = failed ? 'FAILED' : 'IN_PROGRESS'
    if (failed) status.FailureReason = FAILURE_REASON
  }
  return JSON.stringify(parsed)
}

/** An Organizations answer with every account in it (Account, Accounts) PENDING_CLOSURE, in both its Status and State. */
function pendingClosure(text: string): string {
  const parsed = JSON.parse(text) as { Account?: Record<string, unknown>; Accounts?: Record<string, unknown>[] }
  for (const account of [parsed.Account, ...(parsed.Accounts ?? [])]) {
    if (account) Object.assign(account, { Status: 'PENDING_CLOSURE', State: 'PENDING_CLOSURE' })
  }
  return JSON.stringify(parsed)
}

function operationOf(req: IncomingMessage, body: Buffer): string {
  const target = req.headers['x-amz-target']
  if (typeof target === 'string') return target.split('.').pop() ?? target
  const action = /(?:^|&)Action=([^&]+)/.exec(body.toString('utf8'))
  return action?.[1] ?? `${req.method} ${req.url}`
}
