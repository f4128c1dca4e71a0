import type { AuditAction, AuditEvent } from '../core/audit.ts'
import { DeliveryError, UpstreamUnavailableError } from '../core/errors.ts'
import type { MessageChannel, OutboxMessage, TicketApproval, TicketCheck } from '../core/ports.ts'

/** The ticket tables by number prefix, as ServiceNow numbers them out of the box. */
export const DEFAULT_TICKET_TABLES: Readonly<Record<string, string>> = {
  CHG: 'change_request',
  INC: 'incident',
  RITM: 'sc_req_item',
}
/** Change states that allow the work: Scheduled (-2) and Implement (-1). */
export const DEFAULT_CHANGE_STATES = ['-2', '-1']
/** Incident states that count as open: New (1), In Progress (2), On Hold (3). */
export const DEFAULT_INCIDENT_STATES = ['1', '2', '3']
const REQUEST_TIMEOUT_MS = 10_000
/** A token is renewed this long before ServiceNow says it expires. */
const TOKEN_MARGIN_MS = 60_000
const MAX_CACHED_TICKETS = 1000

export type ServiceNowCredentials =
  | { kind: 'oauth'; clientId: string; clientSecret: string }
  | { kind: 'basic'; username: string; password: string }

export interface ServiceNowSettings {
  /** The instance's base URL, e.g. https://example.service-now.com. */
  url: string
  credentials: ServiceNowCredentials
  /** Ticket table by number prefix (default DEFAULT_TICKET_TABLES). */
  tables?: Readonly<Record<string, string>> | undefined
  timeoutMs?: number | undefined
}

/** A refusal or failure of ServiceNow's, with what the caller needs to decide whether and when to retry. */
export class ServiceNowError extends Error {
  readonly status: number | undefined
  readonly retryAfterMs: number | undefined

  constructor(message: string, status?: number, retryAfterMs?: number, cause?: unknown) {
    super(message, { cause })
    this.name = 'ServiceNowError'
    this.status = status
    this.retryAfterMs = retryAfterMs
  }

  /** 429, 5xx, a timeout or a dropped connection: the same request may succeed later. */
  get transient(): boolean {
    return (
      this.status === undefined ||
      this.status === 401 ||
      this.status === 408 ||
      this.status === 429 ||
      this.status >= 500
    )
  }
}

interface TicketRecord {
  sys_id: string
  [field: string]: string
}

/**
 * ServiceNow's REST Table API, as an integration user: reads tickets by number and adds work notes. Signs in
 * with OAuth client credentials (the instance's /oauth_token.do; the token is kept until shortly before it
 * expires, and fetched again once if ServiceNow refuses it) or basic auth. Never logs or returns a secret.
 */
export class ServiceNowClient {
  private readonly settings: ServiceNowSettings
  private readonly base: string
  private token: { value: string; expiresAt: number } | undefined
  /** A token being fetched: concurrent callers wait for the same one rather than each asking for its own. */
  private tokenRequest: Promise<string> | undefined
  /** sys_ids by table and number: they never change, so they are looked up once. */
  private readonly sysIds = new Map<string, string>()

  constructor(settings: ServiceNowSettings) {
    this.settings = settings
    this.base = settings.url.replace(/\/+$/, '')
  }

  /** The table holding tickets numbered like this one, or undefined when no prefix matches. */
  tableFor(ticketId: string): string | undefined {
    const tables = this.settings.tables ?? DEFAULT_TICKET_TABLES
    const prefix = Object.keys(tables)
      .filter((candidate) => ticketId.startsWith(candidate))
      .sort((a, b) => b.length - a.length)[0]
    return prefix === undefined ? undefined : tables[prefix]
  }

  /** The ticket with these fields (values, not display values: states as numbers, dates in UTC), or undefined. */
  async findTicket(
    table: string,
    number: string,
    fields: readonly string[],
    signal?: AbortSignal,
  ): Promise<TicketRecord | undefined> {
    const query = new URLSearchParams({
      sysparm_query: `number=${number}`,
      sysparm_fields: ['sys_id', ...fields].join(','),
      sysparm_limit: '1',
    })
    const { result } = (await this.request(
      'GET',
      `/api/now/table/${encodeURIComponent(table)}?${query}`,
      undefined,
      signal,
    )) as { result?: TicketRecord[] }
    const record = result?.[0]
    if (record) this.remember(table, number, record.sys_id)
    return record
  }

  async sysIdOf(table: string, number: string, signal?: AbortSignal): Promise<string | undefined> {
    return this.sysIds.get(`${table}#${number}`) ?? (await this.findTicket(table, number, [], signal))?.sys_id
  }

  async addWorkNote(table: string, sysId: string, text: string, signal?: AbortSignal): Promise<void> {
    await this.request(
      'PATCH',
      `/api/now/table/${encodeURIComponent(table)}/${encodeURIComponent(sysId)}`,
      { work_notes: text },
      signal,
    )
  }

  /** Whether a work note containing `marker` is already on the record (sys_journal_field). */
  async hasWorkNote(sysId: string, marker: string, signal?: AbortSignal): Promise<boolean> {
    const query = new URLSearchParams({
      sysparm_query: `element_id=${sysId}^element=work_notes^valueLIKE${marker}`,
      sysparm_fields: 'sys_id',
      sysparm_limit: '1',
    })
    const { result } = (await this.request('GET', `/api/now/table/sys_journal_field?${query}`, undefined, signal)) as {
      result?: unknown[]
    }
    return (result?.length ?? 0) > 0
  }

  private remember(table: string, number: string, sysId: string): void {
    if (this.sysIds.size >= MAX_CACHED_TICKETS) this.sysIds.delete(this.sysIds.keys().next().value as string)
    this.sysIds.set(`${table}#${number}`, sysId)
  }

  private async request(
    method: string,
    path: string,
    body?: unknown,
    signal?: AbortSignal,
    renewed = false,
  ): Promise<unknown> {
    const response = await this.send(
      `${this.base}${path}`,
      {
        method,
        headers: {
          accept: 'application/json',
          authorization: await this.authorization(signal),
          ...(body ? { 'content-type': 'application/json' } : {}),
        },
        ...(body ? { body: JSON.stringify(body) } : {}),
      },
      signal,
    )
    // A token ServiceNow no longer accepts (revoked, or its clock and ours disagree) is fetched again, once.
    if (response.status === 401 && this.settings.credentials.kind === 'oauth' && !renewed) {
      await response.body?.cancel()
      this.token = undefined
      return this.request(method, path, body, signal, true)
    }
    if (!response.ok) throw await refusal(response, `${method} ${path.split('?')[0]}`)
    return response.status === 204 ? {} : response.json()
  }

  private async authorization(signal?: AbortSignal): Promise<string> {
    const { credentials } = this.settings
    if (credentials.kind === 'basic')
      return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`
    if (this.token && this.token.expiresAt - TOKEN_MARGIN_MS > Date.now()) return `Bearer ${this.token.value}`
    this.tokenRequest ??= this.fetchToken(credentials, signal).finally(() => (this.tokenRequest = undefined))
    return `Bearer ${await this.tokenRequest}`
  }

  private async fetchToken(
    credentials: Extract<ServiceNowCredentials, { kind: 'oauth' }>,
    signal?: AbortSignal,
  ): Promise<string> {
    const response = await this.send(
      `${this.base}/oauth_token.do`,
      {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: new URLSearchParams({
          grant_type: 'client_credentials',
          client_id: credentials.clientId,
          client_secret: credentials.clientSecret,
        }).toString(),
      },
      signal,
    )
    if (!response.ok) throw await refusal(response, 'POST /oauth_token.do')
    const granted = (await response.json()) as { access_token?: string; expires_in?: number | string }
    if (!granted.access_token)
      throw new ServiceNowError('the token endpoint answered without an access_token', response.status)
    this.token = { value: granted.access_token, expiresAt: Date.now() + Number(granted.expires_in ?? 1800) * 1000 }
    return this.token.value
  }

  /** Each request gives up after the client's timeout, or when the caller's signal (a delivery's budget) fires. */
  private async send(url: string, init: RequestInit, signal?: AbortSignal): Promise<Response> {
    const timeout = AbortSignal.timeout(this.settings.timeoutMs ?? REQUEST_TIMEOUT_MS)
    try {
      return await fetch(url, { ...init, signal: signal ? AbortSignal.any([signal, timeout]) : timeout })
    } catch (error) {
      throw new ServiceNowError(`ServiceNow did not answer: ${(error as Error).name}`, undefined, undefined, error)
    }
  }
}

/** The status and ServiceNow's own message only: its body may echo the request, never ours to log whole. */
async function refusal(response: Response, what: string): Promise<ServiceNowError> {
  let message = ''
  try {
    const body = (await response.json()) as { error?: { message?: string } | string; error_description?: string }
    message = typeof body.error === 'string' ? body.error : (body.error?.message ?? body.error_description ?? '')
  } catch {
    // Not JSON: the status says enough.
  }
  return new ServiceNowError(
    `${what} answered ${response.status}${message ? `: ${message.slice(0, 200)}` : ''}`,
    response.status,
    retryAfterMs(response.headers.get('retry-after')),
  )
}

/** Retry-After as delta-seconds or as an HTTP date. */
export function retryAfterMs(header: string | null): number | undefined {
  if (!header) return undefined
  if (/^\d+$/.test(header.trim())) return Number(header.trim()) * 1000
  const at = Date.parse(header)
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now())
}

/** The events that leave a work note on the ticket: what happened to the access it asked for. */
const NOTED: Partial<Record<AuditAction, string>> = {
  'grant.activated': 'Access granted',
  'grant.expired': 'Access expired',
  'grant.revoked': 'Access revoked',
  'grant.failed': 'Access could not be granted',
  'grant.cancelled': 'Scheduled access cancelled',
  'grant.extended': 'Access extended',
  'grant.shortened': 'Access shortened',
  'grant.denied': 'Access denied',
  'grant.drift_detected': 'Access changed outside jit-access',
}

/**
 * Work notes on the ticket a grant names, through the outbox. A denial is noted only once a grant exists (at
 * its scheduled start, or an extension): a refused request has its answer already. A ticket whose number no
 * configured prefix matches gets no note. A redelivery first looks for the note (each carries its event's id),
 * so a note whose answer was lost is not added twice.
 */
export class ServiceNowWorkNotes implements MessageChannel {
  readonly channel = 'ticket-note' as const
  private readonly client: ServiceNowClient

  constructor(client: ServiceNowClient) {
    this.client = client
  }

  wants(event: AuditEvent): boolean {
    return (
      event.grantId !== null && NOTED[event.action] !== undefined && this.client.tableFor(event.ticketId) !== undefined
    )
  }

  async deliver(message: OutboxMessage, redelivery: boolean, signal?: AbortSignal): Promise<void> {
    const { event } = message
    const table = this.client.tableFor(event.ticketId)
    if (!table)
      throw new DeliveryError(`no ServiceNow table is configured for ticket ${event.ticketId}`, { permanent: true })
    const sysId = await asDelivery(this.client.sysIdOf(table, event.ticketId, signal))
    if (!sysId)
      throw new DeliveryError(`ticket ${event.ticketId} does not exist in ServiceNow (${table})`, { permanent: true })
    // A look that fails (the integration user may not read sys_journal_field) never gives the note up: it is
    // worth another attempt, and the failure is logged with each one.
    if (
      redelivery &&
      (await asDelivery(this.client.hasWorkNote(sysId, eventMarker(event), signal), { transient: true }))
    )
      return
    await asDelivery(this.client.addWorkNote(table, sysId, workNote(message), signal))
  }
}

const eventMarker = (event: AuditEvent) => `jit-access event ${event.id}`

/** ServiceNow's refusals as the outbox reads them: transient ones are tried again, others given up on. */
async function asDelivery<T>(call: Promise<T>, options: { transient?: boolean } = {}): Promise<T> {
  try {
    return await call
  } catch (error) {
    if (!(error instanceof ServiceNowError)) throw error
    throw new DeliveryError(error.message, {
      permanent: !options.transient && !error.transient,
      retryAfterMs: error.retryAfterMs,
      cause: error,
    })
  }
}

/** One paragraph an engineer reading the ticket understands: what happened, to whose access, until when. */
export function workNote({ event, window }: OutboxMessage): string {
  const group = event.groupName
  const what = group
    ? `membership of Identity Store group ${group} for ${event.userName}`
    : `${event.permissionSet} on AWS account ${event.accountId} for ${event.userName}`
  const until =
    window && ['grant.activated', 'grant.extended', 'grant.shortened'].includes(event.action)
      ? group
        ? ` Until ${window.expiresAt}.`
        : ` Until ${window.expiresAt}; role sessions already started last until ${window.accessEndsBy} at the latest.`
      : ''
  return (
    `[jit-access] ${NOTED[event.action] ?? event.action}: ${what}.${until} ${event.detail} (by ${event.actor}, ${event.at}). ` +
    `Grant ${event.grantId}; ${eventMarker(event)}.`
  )
}

export interface ApprovalRules {
  changeStates?: readonly string[] | undefined
  incidentStates?: readonly string[] | undefined
  /** How far a grant may reach outside the change's planned window (clocks, a start a few minutes early). */
  windowLeadMs: number
  /** Told to callers (Retry-After) when ServiceNow cannot answer. */
  retryAfterSeconds: number
}

/**
 * Approval verification: before a grant is recorded (and again when a scheduled one starts, or one is
 * extended), the ticket must approve it. A change must be approved, in an allowed state (Scheduled or
 * Implement by default), with a planned window that holds the grant's; an incident must be open; a requested
 * item must be approved and active. When ServiceNow cannot be asked, the answer is a 503: never a grant.
 */
export class ServiceNowApprovals implements TicketApproval {
  private readonly client: ServiceNowClient
  private readonly rules: ApprovalRules

  constructor(client: ServiceNowClient, rules: ApprovalRules) {
    this.client = client
    this.rules = rules
  }

  async check(ticketId: string, window: { startsAt: Date; expiresAt: Date }): Promise<TicketCheck> {
    const table = this.client.tableFor(ticketId)
    if (!table)
      return {
        approved: false,
        failedCondition: 'ticket',
        detail: 'no ServiceNow table is configured for its number prefix',
      }
    let record: TicketRecord | undefined
    try {
      record = await this.client.findTicket(table, ticketId, ['state', 'approval', 'active', 'start_date', 'end_date'])
    } catch (error) {
      throw new UpstreamUnavailableError('ServiceNow', `reading ${table}`, error, true, this.rules.retryAfterSeconds)
    }
    if (!record)
      return { approved: false, failedCondition: 'ticket', detail: `it does not exist in ServiceNow (${table})` }
    if (table === 'incident') return this.incident(record)
    if (record.approval !== 'approved')
      return {
        approved: false,
        failedCondition: 'ticketApproval',
        detail: `its approval is '${record.approval ?? 'not set'}', not 'approved'`,
      }
    if (table === 'change_request') return this.change(record, window)
    return record.active === 'false'
      ? { approved: false, failedCondition: 'ticketState', detail: 'it is no longer active' }
      : { approved: true }
  }

  private incident(record: TicketRecord): TicketCheck {
    const open = this.rules.incidentStates ?? DEFAULT_INCIDENT_STATES
    return open.includes(record.state ?? '')
      ? { approved: true }
      : { approved: false, failedCondition: 'ticketState', detail: `the incident is not open (state ${record.state})` }
  }

  private change(record: TicketRecord, window: { startsAt: Date; expiresAt: Date }): TicketCheck {
    const allowed = this.rules.changeStates ?? DEFAULT_CHANGE_STATES
    if (!allowed.includes(record.state ?? '')) {
      return {
        approved: false,
        failedCondition: 'ticketState',
        detail: `the change is in state ${record.state}, not one that allows the work (${allowed.join(', ')})`,
      }
    }
    const start = utc(record.start_date)
    const end = utc(record.end_date)
    if (start === undefined || end === undefined)
      return { approved: false, failedCondition: 'ticketWindow', detail: 'the change has no planned start and end' }
    const lead = this.rules.windowLeadMs
    if (window.startsAt.getTime() < start - lead || window.expiresAt.getTime() > end + lead) {
      return {
        approved: false,
        failedCondition: 'ticketWindow',
        detail:
          `access from ${window.startsAt.toISOString()} to ${window.expiresAt.toISOString()} is outside the planned window ` +
          `${new Date(start).toISOString()} to ${new Date(end).toISOString()} (with ${lead / 60_000} minutes' lead)`,
      }
    }
    return { approved: true }
  }
}

/** The Table API's date-time values are UTC, 'yyyy-MM-dd HH:mm:ss'. */
function utc(value: string | undefined): number | undefined {
  if (!value || !/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/.test(value)) return undefined
  return Date.parse(`${value.replace(' ', 'T')}Z`)
}
