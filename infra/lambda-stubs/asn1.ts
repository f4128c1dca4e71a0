/**
 * Stands in for asn1.js (with bn.js and its helpers, about 60 KiB) in the Lambda bundle (infra/build.ts).
 *
 * fast-jwt, under @fastify/jwt, uses asn1.js for one thing: reading a PEM key's algorithm identifier, to tell
 * which JWT algorithms the key may verify (or sign). It defines three structures and decodes PEM text with them.
 * Node's crypto parses the same keys itself and names their type and curve, so this module answers those three
 * decodes from `createPublicKey`/`createPrivateKey` in the shape asn1.js gives: object identifiers as arrays of
 * numbers. Node parses the whole key where asn1.js read only its first fields, so a key this refuses asn1.js
 * may have read, but such a key would fail at verification anyway. test/lambda-stubs.test.ts compares the two on
 * every key type Node can make, and on broken PEM text.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto'

/** The algorithm identifiers of the key types Node names (RFC 8017, 5480, 8410, 3279). */
const KEY_TYPE_OIDS: Record<string, string> = {
  rsa: '1.2.840.113549.1.1.1',
  'rsa-pss': '1.2.840.113549.1.1.10',
  dsa: '1.2.840.10040.4.1',
  dh: '1.2.840.113549.1.3.1',
  ec: '1.2.840.10045.2.1',
  x25519: '1.3.101.110',
  x448: '1.3.101.111',
  ed25519: '1.3.101.112',
  ed448: '1.3.101.113',
}

/** Named curves by Node's names (OpenSSL's). A curve missing here is reported by name, which no caller accepts. */
const CURVE_OIDS: Record<string, string> = {
  prime256v1: '1.2.840.10045.3.1.7',
  secp256k1: '1.3.132.0.10',
  secp384r1: '1.3.132.0.34',
  secp521r1: '1.3.132.0.35',
  brainpoolP256r1: '1.3.36.3.3.2.8.1.1.7',
  brainpoolP384r1: '1.3.36.3.3.2.8.1.1.11',
  brainpoolP512r1: '1.3.36.3.3.2.8.1.1.13',
}

type ObjectIdentifier = (number | string)[]

interface AlgorithmIdentifier {
  algorithm: ObjectIdentifier
  parameters?: ObjectIdentifier
}

const asIdentifier = (dotted: string): ObjectIdentifier =>
  /^\d+(\.\d+)+$/.test(dotted) ? dotted.split('.').map(Number) : [dotted]

function algorithmOf(key: KeyObject): AlgorithmIdentifier {
  const type = key.asymmetricKeyType ?? 'unknown'
  const algorithm = asIdentifier(KEY_TYPE_OIDS[type] ?? type)
  if (type !== 'ec') return { algorithm }
  const curve = key.asymmetricKeyDetails?.namedCurve
  // asn1.js fails here too: an EC key with explicit curve parameters has no curve identifier to read.
  if (curve === undefined) throw new Error('EC key without a named curve')
  return { algorithm, parameters: asIdentifier(CURVE_OIDS[curve] ?? curve) }
}

/** The PEM block under `label`, refused as asn1.js refuses it when there is none. */
function pemSection(text: unknown, label: string): string {
  const pem = String(text)
  const begin = pem.indexOf(`-----BEGIN ${label}-----`)
  const endMarker = `-----END ${label}-----`
  const end = begin === -1 ? -1 : pem.indexOf(endMarker, begin)
  if (end === -1) throw new Error(`PEM section not found for: ${label}`)
  return pem.slice(begin, end + endMarker.length)
}

const decoders: Record<string, (pem: string) => object> = {
  PublicKey: (pem) => ({ algorithm: algorithmOf(createPublicKey(pemSection(pem, 'PUBLIC KEY'))) }),
  PrivateKey: (pem) => ({ version: 0, algorithm: algorithmOf(createPrivateKey(pemSection(pem, 'PRIVATE KEY'))) }),
  ECPrivateKey: (pem) => {
    const { parameters } = algorithmOf(createPrivateKey(pemSection(pem, 'EC PRIVATE KEY')))
    return { version: 1, parameters: { type: 'namedCurve', value: parameters } }
  },
}

/** asn1.js's `define`, for the structures fast-jwt defines; any other fails when decoded, never silently. */
export function define(name: string): { decode(data: unknown, encoding: string): object } {
  return {
    decode(data, encoding) {
      const decode = decoders[name]
      if (!decode || encoding !== 'pem')
        throw new Error(
          `asn1.js is not in the Lambda bundle: no ${encoding} decoder for ${name} (infra/lambda-stubs/asn1.ts)`,
        )
      return decode(String(data))
    },
  }
}

export default { define }
