import { Readable } from 'node:stream'
import type { ChainedAuditEvent } from '../core/audit-chain.ts'

export const CSV_COLUMNS = [
  'id', 'at', 'action', 'actor', 'grantId', 'userName', 'accountId', 'permissionSet', 'ticketId', 'detail', 'requestId', 'seq', 'prevHash', 'hash',
] as const satisfies readonly (keyof ChainedAuditEvent)[]

export type ExportFormat = 'json' | 'csv' | 'ndjson'

/** The format the Accept header prefers, by quality then by order; JSON when it names none of ours. */
export function negotiateFormat(accept: string | undefined): ExportFormat {
  const offered: Record<string, ExportFormat> = { 'application/json': 'json', 'text/csv': 'csv', 'application/x-ndjson': 'ndjson' }
  const ranked = (accept ?? '')
    .split(',')
    .map((part, order) => {
      const [type = '', ...params] = part.trim().toLowerCase().split(';')
      const q = Number(params.map((p) => p.trim()).find((p) => p.startsWith('q='))?.slice(2) ?? 1)
      return { type: type.trim(), q: Number.isFinite(q) ? q : 0, order }
    })
    .filter((entry) => entry.q > 0 && offered[entry.type])
    .sort((a, b) => b.q - a.q || a.order - b.order)
  return ranked[0] ? (offered[ranked[0].type] as ExportFormat) : 'json'
}

/**
 * One RFC 4180 field. Text a spreadsheet would run as a formula (starting with = + - @, tab or carriage
 * return) is prefixed with an apostrophe, so an exported ticket id like `=HYPERLINK(…)` stays text.
 */
export function csvField(value: unknown): string {
  if (value === null || value === undefined) return ''
  let text = String(value)
  if (typeof value === 'string' && /^[=+\-@\t\r]/.test(text)) text = `'${text}`
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text
}

export function toCsv(events: AsyncIterable<ChainedAuditEvent>): Readable {
  return Readable.from((async function* () {
    yield `${CSV_COLUMNS.join(',')}\r\n`
    for await (const event of events) yield `${CSV_COLUMNS.map((column) => csvField(event[column])).join(',')}\r\n`
  })())
}

export function toNdjson(events: AsyncIterable<ChainedAuditEvent>): Readable {
  return Readable.from((async function* () {
    for await (const event of events) yield `${JSON.stringify(Object.fromEntries(CSV_COLUMNS.map((column) => [column, event[column]])))}\n`
  })())
}
