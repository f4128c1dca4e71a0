import { Readable } from 'node:stream'
import type { ChainedAuditEvent } from '../core/audit-chain.ts'

/**
 * The export's columns, in order. A column added later goes at the end, so that a consumer reading columns by
 * position keeps reading the same ones (`groupName` came after `hash`).
 */
export const CSV_COLUMNS = [
  'id',
  'at',
  'action',
  'actor',
  'grantId',
  'userName',
  'accountId',
  'permissionSet',
  'ticketId',
  'detail',
  'requestId',
  'correlationId',
  'seq',
  'prevHash',
  'hash',
  'groupName',
] as const satisfies readonly (keyof ChainedAuditEvent)[]

export type ExportFormat = 'json' | 'csv' | 'ndjson'

/** The format the Accept header prefers, by quality then by order; JSON when it names none of ours. */
export function negotiateFormat(accept: string | undefined): ExportFormat {
  const offered: Record<string, ExportFormat> = {
    'application/json': 'json',
    'text/csv': 'csv',
    'application/x-ndjson': 'ndjson',
  }
  const ranked = (accept ?? '')
    .split(',')
    .map((part, order) => {
      const [type = '', ...params] = part.trim().toLowerCase().split(';')
      const q = Number(
        params
          .map((p) => p.trim())
          .find((p) => p.startsWith('q='))
          ?.slice(2) ?? 1,
      )
      return { type: type.trim(), q: Number.isFinite(q) ? q : 0, order }
    })
    .filter((entry) => entry.q > 0 && offered[entry.type])
    .sort((a, b) => b.q - a.q || a.order - b.order)
  return ranked[0] ? (offered[ranked[0].type] as ExportFormat) : 'json'
}

/** C0 (tab and line breaks included), DEL, C1, and U+2028/U+2029: what the API refuses in free text (PRINTABLE_TEXT_PATTERN). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is its purpose
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g
/** The ones JSON.stringify leaves as they are (it escapes C0 itself). */
const UNESCAPED_BY_JSON = /[\u007f-\u009f\u2028\u2029]/g

const visibleEscape = (character: string) => `\\u${(character.codePointAt(0) ?? 0).toString(16).padStart(4, '0')}`

/**
 * One RFC 4180 field. Control characters that reached the log before the API refused them (or through a
 * token subject or an AWS message) are shown as `\u001b`-style escapes: raw, an ESC would drive the terminal
 * that displays the export, and a line break or U+2028 would break the row in a viewer. Text a spreadsheet
 * would run as a formula (starting with = + - @) is prefixed with an apostrophe, so an exported ticket id
 * like `=HYPERLINK(…)` stays text; a leading tab or carriage return (formula triggers too) is escaped by then,
 * so the cell starts with a backslash.
 */
export function csvField(value: unknown): string {
  if (value === null || value === undefined) return ''
  let text = String(value).replace(CONTROL_CHARACTERS, visibleEscape)
  if (typeof value === 'string' && /^[=+\-@]/.test(text)) text = `'${text}`
  return /[",]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text
}

export function toCsv(events: AsyncIterable<ChainedAuditEvent>): Readable {
  return Readable.from(
    (async function* () {
      yield `${CSV_COLUMNS.join(',')}\r\n`
      for await (const event of events) yield `${CSV_COLUMNS.map((column) => csvField(event[column])).join(',')}\r\n`
    })(),
  )
}

export function toNdjson(events: AsyncIterable<ChainedAuditEvent>): Readable {
  return Readable.from(
    (async function* () {
      // Escaped the JSON way, so a parser reads exactly the event; a terminal showing the file sees no raw C1 or U+2028.
      for await (const event of events)
        yield `${JSON.stringify(Object.fromEntries(CSV_COLUMNS.map((column) => [column, event[column]]))).replace(UNESCAPED_BY_JSON, visibleEscape)}\n`
    })(),
  )
}
