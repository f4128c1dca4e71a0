/**
 * The Lambda bundle replaces some packages with stand-ins (infra/lambda-stubs, infra/build.ts). Those that
 * answer in the package's place are compared here with the package; the one that skips a check of the
 * service's own code (fast-json-stringify's schema check) has that check made here instead.
 *
 * asn1.js: fast-jwt decides with it which algorithms a PEM key may verify or sign, so a difference would be an
 * algorithm-confusion hole or a refused key. Here fast-jwt, bundled with the Lambda's slimming as the function
 * gets it, is compared with fast-jwt as installed, on every key type Node makes and on broken key text: the same
 * tokens, the same verdicts, the same errors.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto'
import diagnostics from 'node:diagnostics_channel'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { SerializerSelector } from '@fastify/fast-json-stringify-compiler'
import { build } from 'esbuild'
import * as installed from 'fast-jwt'
import type { FastifyInstance } from 'fastify'
import semver from 'semver'
import t from 'tap'
import { lambdaSlimming } from '../infra/build.ts'
import * as semverStub from '../infra/lambda-stubs/semver.ts'
import { buildDescribingApp } from '../openapi/generate.ts'

type ResponseSchema = { content?: Record<string, { schema: unknown }> }

type FastJwt = typeof installed

const work = mkdtempSync(join(tmpdir(), 'jit-lambda-stubs-'))
t.teardown(() => rmSync(work, { recursive: true, force: true }))
writeFileSync(join(work, 'entry.mjs'), "export { createSigner, createVerifier } from 'fast-jwt'\n")
// fast-jwt's key reading itself (not exported by the package), to compare what it makes of each key text.
const keyReading = createRequire(join(import.meta.dirname, '..', 'package.json')).resolve('fast-jwt/src/crypto.js')
writeFileSync(join(work, 'key-reading.cjs'), `module.exports = require(${JSON.stringify(keyReading)})\n`)
await build({
  entryPoints: [join(work, 'key-reading.cjs')],
  outfile: join(work, 'key-reading-bundled.cjs'),
  bundle: true,
  platform: 'node',
  format: 'cjs',
  plugins: [lambdaSlimming],
  logLevel: 'warning',
})
type KeyReading = {
  detectPublicKeyAlgorithms(key: string | Buffer, algorithms?: string[]): unknown
  detectPrivateKeyAlgorithm(key: string | Buffer, algorithm?: string): unknown
}
const installedKeyReading = createRequire(import.meta.url)(keyReading) as KeyReading
const bundledKeyReading = createRequire(import.meta.url)(join(work, 'key-reading-bundled.cjs')) as KeyReading
const { metafile } = await build({
  entryPoints: [join(work, 'entry.mjs')],
  outfile: join(work, 'bundled.mjs'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  nodePaths: [join(import.meta.dirname, '..', 'node_modules')],
  banner: { js: "const require = process.getBuiltinModule('node:module').createRequire(import.meta.url);" },
  plugins: [lambdaSlimming],
  metafile: true,
  logLevel: 'warning',
})
const bundled = (await import(pathToFileURL(join(work, 'bundled.mjs')).href)) as FastJwt

t.test('the bundled fast-jwt has no asn1.js or bn.js in it', async (t) => {
  const inputs = Object.keys(metafile.inputs)
  t.notOk(
    inputs.some((input) => /node_modules\/(asn1\.js|bn\.js)\//.test(input)),
    'neither package is bundled',
  )
  t.ok(
    inputs.some((input) => input.endsWith('infra/lambda-stubs/asn1.ts')),
    'the stub is',
  )
})

/** Every key type and curve Node can make; the ones JWT has no algorithm for must be refused alike. */
const KEY_KINDS: [string, () => { publicKey: KeyObject; privateKey: KeyObject }][] = [
  ['RSA 2048', () => generateKeyPairSync('rsa', { modulusLength: 2048 })],
  ['RSA-PSS 2048', () => generateKeyPairSync('rsa-pss', { modulusLength: 2048 })],
  ['EC P-256', () => generateKeyPairSync('ec', { namedCurve: 'P-256' })],
  ['EC P-384', () => generateKeyPairSync('ec', { namedCurve: 'P-384' })],
  ['EC P-521', () => generateKeyPairSync('ec', { namedCurve: 'P-521' })],
  ['EC secp256k1', () => generateKeyPairSync('ec', { namedCurve: 'secp256k1' })],
  ['EC brainpoolP256r1', () => generateKeyPairSync('ec', { namedCurve: 'brainpoolP256r1' })],
  ['EC P-224', () => generateKeyPairSync('ec', { namedCurve: 'P-224' })],
  ['Ed25519', () => generateKeyPairSync('ed25519')],
  ['Ed448', () => generateKeyPairSync('ed448')],
  ['X25519', () => generateKeyPairSync('x25519')],
  ['X448', () => generateKeyPairSync('x448')],
  ['DSA 2048', () => generateKeyPairSync('dsa', { modulusLength: 2048, divisorLength: 256 })],
]

/** What a call gave: its value, or its error's code and message. */
function outcome(run: () => unknown): unknown {
  try {
    return { value: run() }
  } catch (error) {
    const { code, message } = error as { code?: string; message: string }
    return { code, message }
  }
}

const exportedPems = (pair: { publicKey: KeyObject; privateKey: KeyObject }) => {
  const pems: Record<string, string> = {
    spki: pair.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    pkcs8: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  }
  const type = pair.publicKey.asymmetricKeyType
  if (type === 'ec') pems.sec1 = pair.privateKey.export({ type: 'sec1', format: 'pem' }).toString()
  if (type === 'rsa') {
    pems.pkcs1Public = pair.publicKey.export({ type: 'pkcs1', format: 'pem' }).toString()
    pems.pkcs1Private = pair.privateKey.export({ type: 'pkcs1', format: 'pem' }).toString()
  }
  return pems
}

for (const [kind, generate] of KEY_KINDS) {
  t.test(`${kind}: signing and verifying give the same results bundled as installed`, async (t) => {
    const pems = exportedPems(generate())
    const privatePems = [pems.pkcs8, pems.sec1, pems.pkcs1Private].filter((pem) => pem !== undefined)
    const publicPems = [pems.spki, pems.pkcs1Public].filter((pem) => pem !== undefined)
    for (const privatePem of privatePems) {
      const sign = (jwt: FastJwt) => jwt.createSigner({ key: privatePem, noTimestamp: true })({ sub: 'alice' })
      const reference = outcome(() => sign(installed))
      const ours = outcome(() => sign(bundled))
      const header = (result: unknown) => {
        const token = (result as { value?: string }).value
        return token === undefined ? result : JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString())
      }
      // ECDSA and RSA-PSS signatures are randomized: the header names the algorithm each chose.
      t.same(header(ours), header(reference), 'signing: the same algorithm, or the same refusal')
      const token = (reference as { value?: string }).value
      if (token === undefined) continue
      for (const publicPem of publicPems) {
        const verify = (jwt: FastJwt) => jwt.createVerifier({ key: publicPem })(token)
        t.same(
          outcome(() => verify(bundled)),
          outcome(() => verify(installed)),
          'verifying: the same verdict',
        )
        t.match(
          outcome(() => verify(installed)),
          { value: { sub: 'alice' } },
          'and the installed one accepts it',
        )
      }
    }
    // A public key of this kind against an HMAC token: refused alike (the algorithm-confusion check).
    const hmacToken = installed.createSigner({ key: 'x'.repeat(32), noTimestamp: true })({ sub: 'mallory' })
    for (const publicPem of publicPems) {
      const verify = (jwt: FastJwt) => jwt.createVerifier({ key: publicPem })(hmacToken)
      const reference = outcome(() => verify(installed))
      t.same(
        outcome(() => verify(bundled)),
        reference,
        'an HMAC token under a public key: the same refusal',
      )
      t.notOk((reference as { value?: unknown }).value, 'which is a refusal')
    }
  })
}

/** A P-256 public key with its curve written out as parameters (openssl ecparam -param_enc explicit). */
const EXPLICIT_CURVE_PUBLIC_KEY = `-----BEGIN PUBLIC KEY-----
MIIBSzCCAQMGByqGSM49AgEwgfcCAQEwLAYHKoZIzj0BAQIhAP////8AAAABAAAA
AAAAAAAAAAAA////////////////MFsEIP////8AAAABAAAAAAAAAAAAAAAA////
///////////8BCBaxjXYqjqT57PrvVV2mIa8ZR0GsMxTsPY7zjw+J9JgSwMVAMSd
NgiG5wSTamZ44ROdJreBn36QBEEEaxfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5
RdiYwpZP40Li/hp/m47n60p8D54WK84zV2sxXs7LtkBoN79R9QIhAP////8AAAAA
//////////+85vqtpxeehPO5ysL8YyVRAgEBA0IABCUdPmhumZd2nXoSRilU9mdP
gyWCmCNm1GcXx5f9g2IMhMHqYUvWKQiHSskBgHABpzdfiVGaQkRxcTutbIE4jec=
-----END PUBLIC KEY-----
`

/** Each key text, and the same text altered the ways that PEM readers differ on. */
function alteredKeyTexts(pems: Record<string, string>): [string, string | Buffer][] {
  const body = (pem: string) => pem.trim().split('\n').slice(1, -1).join('\n')
  const relabelled = (pem: string, label: string) => `-----BEGIN ${label}-----\n${body(pem)}\n-----END ${label}-----\n`
  const texts: [string, string | Buffer][] = []
  const others = Object.values(pems).slice(0, 3)
  for (const [name, pem] of Object.entries(pems)) {
    const alterations: Record<string, string | Buffer> = {
      '': pem,
      'as a Buffer': Buffer.from(pem),
      'with CRLF': pem.replaceAll('\n', '\r\n'),
      'after a junk line': `junk\n${pem}`,
      'after junk on the header line': `junk${pem}`,
      'with trailing junk': `${pem}trailing junk\n`,
      indented: pem.replace(/^/gm, '  '),
      'with a space after the header': pem.replace(/-----\n/, '----- \n'),
      'on one line': pem.replaceAll('\n', ''),
      'with junk in the base64': pem.replace(/\n(?=[A-Za-z0-9+/])/, '\n!!\n'),
      'as PUBLIC KEY': relabelled(pem, 'PUBLIC KEY'),
      'as PRIVATE KEY': relabelled(pem, 'PRIVATE KEY'),
      'as EC PRIVATE KEY': relabelled(pem, 'EC PRIVATE KEY'),
      'in lower case': pem.replace(/PUBLIC KEY|PRIVATE KEY/g, (label) => label.toLowerCase()),
    }
    for (const [index, other] of others.entries()) {
      alterations[`followed by key ${index}`] = pem + other
      alterations[`spaced header, followed by key ${index}`] = pem.replace(/-----\n/, '----- \n') + other
      alterations[`without its end, followed by key ${index}`] = pem.replace(/-----END[^\n]*\n$/, '') + other
    }
    for (const [alteration, text] of Object.entries(alterations))
      texts.push([alteration ? `${name}, ${alteration}` : name, text])
  }
  return texts
}

t.test('fast-jwt reads every key text alike bundled and installed, altered texts included', async (t) => {
  const pems: Record<string, string> = { 'explicit-curve EC public key': EXPLICIT_CURVE_PUBLIC_KEY }
  for (const [kind, generate] of KEY_KINDS) {
    const pair = generate()
    for (const [form, pem] of Object.entries(exportedPems(pair))) pems[`${kind} ${form}`] = pem
  }
  let differences = 0
  let compared = 0
  for (const [name, text] of alteredKeyTexts(pems)) {
    const readings: [string, (reading: KeyReading) => unknown][] = [
      ['public', (reading) => reading.detectPublicKeyAlgorithms(text)],
      ['public, RS256 asked', (reading) => reading.detectPublicKeyAlgorithms(text, ['RS256'])],
      ['private', (reading) => reading.detectPrivateKeyAlgorithm(text)],
      ['private, ES256 asked', (reading) => reading.detectPrivateKeyAlgorithm(text, 'ES256')],
    ]
    for (const [reading, read] of readings) {
      compared++
      const ours = outcome(() => read(bundledKeyReading))
      const reference = outcome(() => read(installedKeyReading))
      // One assertion per difference only: thousands of equal ones would bury the report.
      if (JSON.stringify(ours) !== JSON.stringify(reference)) {
        differences++
        t.same(ours, reference, `${name}, read as ${reading}`)
      }
    }
  }
  t.equal(differences, 0, `no difference in ${compared} readings`)
  t.ok(compared > 2000, 'over every key type, form and alteration')
})

t.test('broken key text is refused bundled as installed', async (t) => {
  const { spki, pkcs8 } = exportedPems(generateKeyPairSync('ec', { namedCurve: 'P-256' }))
  const token = installed.createSigner({ key: pkcs8 as string, noTimestamp: true })({ sub: 'alice' })
  const body = (pem: string) => pem.split('\n').slice(1, -2).join('\n')
  const broken = {
    truncated: (spki as string).slice(0, 80),
    'garbage inside the armour': '-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5IGF0IGFsbA==\n-----END PUBLIC KEY-----\n',
    'a private key under a public label': `-----BEGIN PUBLIC KEY-----\n${body(pkcs8 as string)}\n-----END PUBLIC KEY-----\n`,
    'no end line': `-----BEGIN PUBLIC KEY-----\n${body(spki as string)}\n`,
    'junk before the header': `hello\n${spki}`,
    'an unknown label': `-----BEGIN SOMETHING KEY-----\n${body(spki as string)}\n-----END SOMETHING KEY-----\n`,
  }
  for (const [name, key] of Object.entries(broken)) {
    const verify = (jwt: FastJwt) => jwt.createVerifier({ key })(token)
    const reference = outcome(() => verify(installed))
    t.same(
      outcome(() => verify(bundled)),
      reference,
      `${name}: the same outcome`,
    )
  }
})

t.test(
  'every response schema of every route passes fast-json-stringify as installed, schema check included',
  async (t) => {
    // The Lambda's fast-json-stringify skips its check of each schema against JSON Schema's meta-schema
    // (infra/build.ts): the schemas are these, fixed in the code, so the check is made here, with the serializer
    // compiler the app uses, on every schema a route answers with.
    const responses: { route: string; status: string; schema: unknown }[] = []
    const collect = ({ fastify }: { fastify: FastifyInstance }) =>
      fastify.addHook('onRoute', ({ method, url, schema }) => {
        for (const [status, response] of Object.entries((schema?.response ?? {}) as Record<string, ResponseSchema>)) {
          const schemas = response.content ? Object.values(response.content).map(({ schema }) => schema) : [response]
          for (const each of schemas) responses.push({ route: `${method} ${url}`, status, schema: each })
        }
      })
    diagnostics.subscribe('fastify.initialization', collect as never)
    const app = await buildDescribingApp().finally(() =>
      diagnostics.unsubscribe('fastify.initialization', collect as never),
    )
    t.teardown(() => app.close())
    await app.ready()
    t.ok(responses.length > 30, `the routes' response schemas were seen (${responses.length})`)
    const compile = SerializerSelector()(app.getSchemas(), {})
    for (const { route, status, schema } of responses)
      t.doesNotThrow(
        () => compile({ schema: schema as never, method: '', url: route, httpStatus: status }),
        `${route} ${status}`,
      )
    t.throws(
      () => compile({ schema: { type: 'strnig' } as never, method: '', url: '/', httpStatus: '200' }),
      /schema is invalid/,
      'and the check does refuse a broken schema',
    )
  },
)

t.test('semver: the stub answers as semver does for the ranges it takes, and refuses the rest', async (t) => {
  const versions = ['5.12.8', '5.0.0', '4.29.1', '6.0.0', '15.0.0', '5.13.0-rc.1', '5.1.2+build.7']
  for (const range of ['5.x', '4.x', '6.x', '1.x'])
    for (const version of versions)
      t.equal(semverStub.satisfies(version, range), semver.satisfies(version, range), `${version} in ${range}`)
  for (const range of ['>=5.0.0', '^5.0.0', '5.x || 6.x', '5', '*'])
    t.throws(() => semverStub.satisfies('5.12.8', range), /not understood/, `'${range}' fails the registration`)
  t.throws(() => semverStub.gt(), /release candidates/)
  t.throws(() => semverStub.coerce(), /release candidates/)
})
