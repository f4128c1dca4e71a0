/**
 * Stands in for asn1.js (with bn.js and its helpers, about 60 KiB) in the Lambda bundle (infra/build.ts).
 *
 * fast-jwt, under @fastify/jwt, uses asn1.js for one thing: reading a PEM key's algorithm identifier (and an EC
 * private key's curve), to tell which JWT algorithms the key may verify or sign. It defines three structures
 * and decodes PEM text with them. This module reads the same fields the same way: the PEM section as asn1.js
 * finds it (the first exact BEGIN line of the label, up to the next line of that label, which must be its END),
 * then the DER fields in order, object identifiers as arrays of numbers. It reads no more than asn1.js did, so a
 * key is accepted or refused here exactly as there; the key itself is parsed by Node's crypto when a signature is
 * checked, in both. test/lambda-stubs.test.ts compares fast-jwt with this and with asn1.js on every key type Node
 * makes and on altered PEM text.
 */

const TAG = { integer: 0x02, octetString: 0x04, objectIdentifier: 0x06, sequence: 0x30, context0: 0xa0 } as const

interface Element {
  tag: number
  /** Where the content starts and ends in the buffer. */
  start: number
  end: number
}

/** One DER element at `at` (short or long definite length, as asn1.js reads them: at most 4 length bytes). */
function elementAt(der: Buffer, at: number, limit: number): Element {
  if (at + 2 > limit) throw new Error('Failed to decode: not enough data')
  const tag = der[at] as number
  let length = der[at + 1] as number
  let start = at + 2
  if (length & 0x80) {
    const octets = length & 0x7f
    if (octets === 0 || octets > 4) throw new Error('Failed to decode: length octet is too long or indefinite')
    if (start + octets > limit) throw new Error('Failed to decode: not enough data')
    length = der.readUIntBE(start, octets)
    start += octets
  }
  if (start + length > limit) throw new Error('Failed to decode: not enough data')
  return { tag, start, end: start + length }
}

function expect(element: Element, tag: number): Element {
  if (element.tag !== tag) throw new Error(`Failed to match tag: 0x${tag.toString(16)}`)
  return element
}

/** An object identifier's arcs, the first byte split into two as asn1.js splits it. */
function objectIdentifier(der: Buffer, { start, end }: Element): number[] {
  const arcs: number[] = []
  let arc = 0
  for (let at = start; at < end; at++) {
    const byte = der[at] as number
    arc = arc * 128 + (byte & 0x7f)
    if (!(byte & 0x80)) {
      arcs.push(arc)
      arc = 0
    }
  }
  if (arc !== 0 || arcs.length === 0) throw new Error('Failed to decode: invalid object identifier')
  const [first = 0, ...rest] = arcs
  return [Math.floor(first / 40), first % 40, ...rest]
}

interface AlgorithmIdentifier {
  algorithm: number[]
  /** Present when the identifier's parameters are an object identifier (a named curve), as asn1.js's optional objid. */
  parameters?: number[]
}

/** SEQUENCE { OBJECT IDENTIFIER, OBJECT IDENTIFIER OPTIONAL, … }: what follows the identifiers is not read. */
function algorithmIdentifier(der: Buffer, element: Element): AlgorithmIdentifier {
  const { start, end } = expect(element, TAG.sequence)
  const algorithmElement = expect(elementAt(der, start, end), TAG.objectIdentifier)
  const algorithm = objectIdentifier(der, algorithmElement)
  if (algorithmElement.end >= end) return { algorithm }
  const next = elementAt(der, algorithmElement.end, end)
  return next.tag === TAG.objectIdentifier ? { algorithm, parameters: objectIdentifier(der, next) } : { algorithm }
}

/** The DER under a PEM label, found line by line as asn1.js finds it. */
function pemSection(text: string, label: string): Buffer {
  const lines = text.split(/[\r\n]+/g)
  let start = -1
  let end = -1
  for (const [index, line] of lines.entries()) {
    const match = /^-----(BEGIN|END) ([^-]+)-----$/.exec(line)
    if (!match || match[2] !== label) continue
    if (start === -1) {
      if (match[1] !== 'BEGIN') break
      start = index
    } else {
      if (match[1] === 'END') end = index
      break
    }
  }
  if (start === -1 || end === -1) throw new Error(`PEM section not found for: ${label}`)
  return Buffer.from(lines.slice(start + 1, end).join(''), 'base64')
}

const decoders: Record<string, (der: Buffer) => object> = {
  // SubjectPublicKeyInfo: SEQUENCE { AlgorithmIdentifier, … }
  PublicKey: (der) => {
    const outer = expect(elementAt(der, 0, der.length), TAG.sequence)
    return { algorithm: algorithmIdentifier(der, elementAt(der, outer.start, outer.end)) }
  },
  // PKCS #8: SEQUENCE { INTEGER version, AlgorithmIdentifier, … }
  PrivateKey: (der) => {
    const outer = expect(elementAt(der, 0, der.length), TAG.sequence)
    const version = expect(elementAt(der, outer.start, outer.end), TAG.integer)
    return { version: 0, algorithm: algorithmIdentifier(der, elementAt(der, version.end, outer.end)) }
  },
  // SEC 1: SEQUENCE { INTEGER version, OCTET STRING key, [0] EXPLICIT curve OPTIONAL, … }
  ECPrivateKey: (der) => {
    const outer = expect(elementAt(der, 0, der.length), TAG.sequence)
    const version = expect(elementAt(der, outer.start, outer.end), TAG.integer)
    const key = expect(elementAt(der, version.end, outer.end), TAG.octetString)
    if (key.end >= outer.end) return { version: 1 }
    const tagged = elementAt(der, key.end, outer.end)
    if (tagged.tag !== TAG.context0) return { version: 1 }
    // asn1.js's choice of namedCurve: explicit curve parameters (a SEQUENCE) match no choice and fail.
    const curve = expect(elementAt(der, tagged.start, tagged.end), TAG.objectIdentifier)
    return { version: 1, parameters: { type: 'namedCurve', value: objectIdentifier(der, curve) } }
  },
}

/** asn1.js's `define`, for the structures fast-jwt defines; any other fails when decoded, never silently. */
export function define(name: string): {
  decode(data: unknown, encoding: string, options?: { label?: string }): object
} {
  return {
    decode(data, encoding, options) {
      const decode = decoders[name]
      if (!decode || encoding !== 'pem' || !options?.label)
        throw new Error(
          `asn1.js is not in the Lambda bundle: no ${encoding} decoder for ${name} (infra/lambda-stubs/asn1.ts)`,
        )
      return decode(pemSection(String(data), options.label.toUpperCase()))
    },
  }
}

export default { define }
