import { randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface JournalEntry {
  sys_id: string
  element_id: string
  element: 'work_notes'
  name: string
  value: string
}

type Fault =
  | { kind: 'status'; status: number; headers?: Record<string, string> }
  /** The note is recorded, then the connection is dropped before the answer: a lost answer. */
  | { kind: 'drop-after-write' }
  /** The request is held until `release` (or the server stops), then the connection is dropped. */
  | { kind: 'hold' }

/**
 * A local stand-in for a ServiceNow instance, speaking the parts of its REST Table API and OAuth token endpoint
 * that jit-access uses, as ServiceNow documents them: `POST /oauth_token.do` (client credentials, form-encoded,
 * answering access_token and expires_in), `GET /api/now/table/{table}?sysparm_query=number=…` (a `result`
 * array), `PATCH /api/now/table/{table}/{sys_id}` with `work_notes` (which adds a `sys_journal_field` entry), and
 * `GET /api/now/table/sys_journal_field?sysparm_query=element_id=…^element=work_notes^valueLIKE…`. Basic auth or
 * a bearer token from the token endpoint is required; errors are `{"error":{"message","detail"},"status":"failure"}`.
 * Faults are injected per request kind ('token', 'read', 'note', 'journal').
 */
export class ServiceNowStandIn {
  readonly clientId = 'jit-access-client'
  readonly clientSecret = `secret-${randomUUID()}`
  readonly username = 'jit.integration'
  readonly password = `password-${randomUUID()}`
  /** Records by table. */
  readonly records = new Map<string, Record<string, string>[]>()
  readonly journal: JournalEntry[] = []
  /** Every request, in order: `METHOD path` (for counting calls). */
  readonly requests: string[] = []
  private readonly tokens = new Set<string>()
  private readonly faults: { on: string; fault: Fault; left: number }[] = []
  private readonly held: { response: ServerResponse; release: () => void }[] = []
  private server: Server | undefined
  url = ''

  async start(): Promise<string> {
    this.server = createServer((request, response) => void this.handle(request, response))
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve))
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`
    return this.url
  }

  async stop(): Promise<void> {
    this.releaseHeld()
    await new Promise<void>((resolve) => this.server?.close(() => resolve()))
  }

  addTicket(table: string, record: Record<string, string>): string {
    const sysId = randomUUID().replace(/-/g, '')
    const rows = this.records.get(table) ?? []
    rows.push({ sys_id: sysId, active: 'true', ...record })
    this.records.set(table, rows)
    return sysId
  }

  notesOn(number: string): string[] {
    const sysIds = [...this.records.values()]
      .flat()
      .filter((record) => record.number === number)
      .map((record) => record.sys_id)
    return this.journal.filter((entry) => sysIds.includes(entry.element_id)).map((entry) => entry.value)
  }

  /** The next `times` requests of this kind meet `fault`; Infinity for an outage until `clearFaults`. */
  inject(on: 'token' | 'read' | 'note' | 'journal' | 'any', fault: Fault, times = 1): void {
    this.faults.push({ on, fault, left: times })
  }

  clearFaults(): void {
    this.faults.length = 0
  }

  /** Drops the connections of every held request (the process that sent them is gone, or gives up). */
  releaseHeld(): void {
    for (const { release } of this.held.splice(0)) release()
  }

  heldCount(): number {
    return this.held.length
  }

  /** Tokens issued since `revokeTokens`: a fresh one is needed after that. */
  revokeTokens(): void {
    this.tokens.clear()
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://standin')
    const body = await readBody(request)
    this.requests.push(`${request.method} ${url.pathname}`)
    const kind =
      url.pathname === '/oauth_token.do'
        ? 'token'
        : url.pathname === '/api/now/table/sys_journal_field'
          ? 'journal'
          : request.method === 'PATCH'
            ? 'note'
            : 'read'
    const fault = this.takeFault(kind)
    if (fault?.kind === 'status') return this.fail(response, fault.status, 'Injected failure', fault.headers)
    if (fault?.kind === 'hold') {
      this.held.push({ response, release: () => response.destroy() })
      return
    }
    if (kind === 'token') return this.token(response, body)
    if (!this.authorized(request.headers.authorization)) return this.fail(response, 401, 'User Not Authenticated')
    const [, , , , table, sysId] = url.pathname.split('/')
    if (!table || !url.pathname.startsWith('/api/now/table/')) return this.fail(response, 400, 'Invalid table')
    if (request.method === 'GET' && kind === 'journal')
      return this.json(response, 200, { result: this.journalMatching(url.searchParams) })
    if (request.method === 'GET') return this.json(response, 200, { result: this.query(table, url.searchParams) })
    if (request.method === 'PATCH' && sysId) {
      const record = this.records.get(table)?.find((candidate) => candidate.sys_id === sysId)
      if (!record) return this.fail(response, 404, 'No Record found')
      const note = (JSON.parse(body || '{}') as { work_notes?: string }).work_notes
      if (note)
        this.journal.push({
          sys_id: randomUUID().replace(/-/g, ''),
          element_id: sysId,
          element: 'work_notes',
          name: table,
          value: note,
        })
      if (fault?.kind === 'drop-after-write') {
        response.destroy()
        return
      }
      return this.json(response, 200, { result: record })
    }
    return this.fail(response, 405, 'Method not supported')
  }

  private takeFault(kind: string): Fault | undefined {
    const index = this.faults.findIndex((entry) => (entry.on === kind || entry.on === 'any') && entry.left > 0)
    if (index < 0) return undefined
    const entry = this.faults[index] as (typeof this.faults)[number]
    entry.left--
    if (entry.left <= 0) this.faults.splice(index, 1)
    return entry.fault
  }

  private token(response: ServerResponse, body: string): void {
    const form = new URLSearchParams(body)
    if (
      form.get('grant_type') !== 'client_credentials' ||
      form.get('client_id') !== this.clientId ||
      form.get('client_secret') !== this.clientSecret
    ) {
      this.json(response, 401, { error: 'access_denied', error_description: 'access_denied' })
      return
    }
    const token = randomUUID()
    this.tokens.add(token)
    this.json(response, 200, { access_token: token, scope: 'useraccount', token_type: 'Bearer', expires_in: 1799 })
  }

  private authorized(header: string | undefined): boolean {
    if (header?.startsWith('Bearer ')) return this.tokens.has(header.slice(7))
    if (header?.startsWith('Basic '))
      return Buffer.from(header.slice(6), 'base64').toString() === `${this.username}:${this.password}`
    return false
  }

  private query(table: string, params: URLSearchParams): Record<string, string>[] {
    const number = /^number=(.+)$/.exec(params.get('sysparm_query') ?? '')?.[1]
    const fields = params.get('sysparm_fields')?.split(',')
    const rows = (this.records.get(table) ?? []).filter((record) => number === undefined || record.number === number)
    const limited = rows.slice(0, Number(params.get('sysparm_limit') ?? 10_000))
    return limited.map((record) =>
      fields ? Object.fromEntries(fields.filter((f) => f in record).map((f) => [f, record[f] as string])) : record,
    )
  }

  private journalMatching(params: URLSearchParams): { sys_id: string }[] {
    const conditions = Object.fromEntries(
      (params.get('sysparm_query') ?? '').split('^').map((part) => {
        const like = /^valueLIKE(.*)$/.exec(part)
        return like ? ['valueLIKE', like[1] ?? ''] : (part.split('=') as [string, string])
      }),
    )
    return this.journal
      .filter(
        (entry) =>
          entry.element_id === conditions.element_id &&
          entry.element === conditions.element &&
          entry.value.includes(conditions.valueLIKE ?? ''),
      )
      .map((entry) => ({ sys_id: entry.sys_id }))
  }

  private fail(response: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
    this.json(response, status, { error: { message, detail: null }, status: 'failure' }, headers)
  }

  private json(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    response
      .writeHead(status, { 'content-type': 'application/json;charset=UTF-8', ...headers })
      .end(JSON.stringify(body))
  }
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of request) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}
