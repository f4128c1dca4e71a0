import t from 'tap'
import { build, grantBody, PROD } from './helpers/app.ts'
import { startMoto } from './helpers/moto.ts'
import { bearer } from './helpers/tokens.ts'

const moto = await startMoto(t)

t.test('bad input to POST /grants is a 400 problem that names the field, never a 500, and creates nothing', async (t) => {
  const { app, hasAssignment } = await build(t, moto, { maxDurationMinutes: 240 })
  const json = { ...bearer(), 'content-type': 'application/json' }
  const cases: [string, string, string][] = [
    ['account id too short', JSON.stringify(grantBody({ accountId: '12345' })), 'VALIDATION_FAILED'],
    ['account id not digits', JSON.stringify(grantBody({ accountId: '11111111111a' })), 'VALIDATION_FAILED'],
    ['duration not an integer', JSON.stringify(grantBody({ durationMinutes: 1.5 })), 'VALIDATION_FAILED'],
    ['duration as a string', JSON.stringify(grantBody({ durationMinutes: '30' })), 'VALIDATION_FAILED'],
    ['duration zero', JSON.stringify(grantBody({ durationMinutes: 0 })), 'VALIDATION_FAILED'],
    ['duration over the service maximum', JSON.stringify(grantBody({ durationMinutes: 241 })), 'VALIDATION_FAILED'],
    ['missing ticket', JSON.stringify({ ...grantBody(), ticketId: undefined }), 'VALIDATION_FAILED'],
    ['empty user name', JSON.stringify(grantBody({ userName: '' })), 'VALIDATION_FAILED'],
    ['unknown field', JSON.stringify(grantBody({ role: 'admin' })), 'VALIDATION_FAILED'],
    ['justification too long', JSON.stringify(grantBody({ justification: 'x'.repeat(1001) })), 'VALIDATION_FAILED'],
    ['permission set name with spaces', JSON.stringify(grantBody({ permissionSet: 'Admin Access' })), 'VALIDATION_FAILED'],
    ['junk JSON', '{"userName": "alice",', 'MALFORMED_BODY'],
    ['empty body', '', 'MALFORMED_BODY'],
    ['a JSON array', '[]', 'VALIDATION_FAILED'],
    ['oversized body', JSON.stringify(grantBody({ justification: 'x'.repeat(20_000) })), 'BODY_TOO_LARGE'],
  ]
  for (const [name, payload, code] of cases) {
    const response = await app.inject({ method: 'POST', url: '/grants', headers: json, payload })
    t.equal(response.statusCode, 400, name)
    t.equal(response.headers['content-type'], 'application/problem+json; charset=utf-8', name)
    t.match(response.json(), { code, status: 400, title: 'Bad Request', instance: '/grants', requestId: String }, name)
  }
  const unknownField = await app.inject({ method: 'POST', url: '/grants', headers: json, payload: JSON.stringify(grantBody({ role: 'admin' })) })
  t.match(unknownField.json().detail, /unknown field 'role'/)
  const badAccount = await app.inject({ method: 'POST', url: '/grants', headers: json, payload: JSON.stringify(grantBody({ accountId: '1' })) })
  t.match(badAccount.json().errors, [{ location: 'body', path: '/accountId' }])

  const textBody = await app.inject({ method: 'POST', url: '/grants', headers: { ...bearer(), 'content-type': 'text/plain' }, payload: 'hello' })
  t.equal(textBody.statusCode, 415)
  t.equal(textBody.json().code, 'UNSUPPORTED_MEDIA_TYPE')

  t.equal((await app.inject({ method: 'GET', url: '/grants', headers: bearer() })).json().items.length, 0, 'no grant recorded')
  t.equal((await app.inject({ method: 'GET', url: '/audit', headers: bearer() })).json().items.length, 0, 'bad input is not a decision')
  t.notOk(await hasAssignment('alice', PROD, 'AdministratorAccess'))
})

t.test('bad query strings and forged cursors are 400s', async (t) => {
  const { app } = await build(t, moto)
  for (let i = 0; i < 3; i++) await app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody() })
  const page = (await app.inject({ method: 'GET', url: '/grants?limit=1', headers: bearer() })).json()
  t.type(page.nextCursor, 'string')
  const decoded = JSON.parse(Buffer.from(page.nextCursor, 'base64url').toString())
  const crossQuery = Buffer.from(JSON.stringify({ ...decoded, k: { ...decoded.k, listShard: 'elsewhere' } })).toString('base64url')

  const cases: [string, string][] = [
    ['limit 0', '/grants?limit=0'],
    ['limit 101', '/grants?limit=101'],
    ['limit not a number', '/grants?limit=ten'],
    ['unknown status', '/grants?status=pending'],
    ['unknown parameter', '/grants?owner=alice'],
    ['bad account filter', '/grants?accountId=42'],
    ['cursor that is not base64 JSON', '/grants?cursor=%%%'],
    ['cursor of random bytes', `/grants?cursor=${Buffer.from('garbage').toString('base64url')}`],
    ['cursor from another query', `/grants?userName=alice&cursor=${page.nextCursor}`],
    ['cursor edited to another partition', `/grants?cursor=${crossQuery}`],
    ['audit time that is not ISO 8601', '/audit?from=yesterday'],
    ['audit action that does not exist', '/audit?action=grant.stolen'],
    ['audit cursor from the grants list', `/audit?cursor=${page.nextCursor}`],
  ]
  for (const [name, url] of cases) {
    const response = await app.inject({ method: 'GET', url, headers: bearer() })
    t.equal(response.statusCode, 400, name)
    t.match(response.json().code, /^(VALIDATION_FAILED|INVALID_CURSOR)$/, name)
  }
})

t.test('unknown routes answer a 404 problem', async (t) => {
  const { app } = await build(t, moto)
  const response = await app.inject({ method: 'GET', url: '/admin', headers: bearer() })
  t.equal(response.statusCode, 404)
  t.equal(response.json().code, 'ROUTE_NOT_FOUND')
})
