import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { type BrowserContext, chromium } from 'playwright-core'
import t from 'tap'
import { freePort } from '../src/sandbox/moto-server.ts'
import { DEMO_POLICY } from '../src/sandbox/seed.ts'
import { startSandbox } from '../src/sandbox.ts'
import { build } from './helpers/app.ts'
import { startMoto } from './helpers/moto.ts'

const CHROMIUM = '/usr/bin/chromium'
const OUTPUT = resolve(import.meta.dirname, '..', '.tap', 'screenshots')
const needsChromium = { skip: existsSync(CHROMIUM) ? false : `no ${CHROMIUM}: .ci/run installs Debian's chromium` }

/** Debian's chromium, headless, with a profile of its own and nothing that calls out. */
async function launchChromium(t: { teardown(fn: () => unknown): void }): Promise<BrowserContext> {
  const profile = mkdtempSync(join(tmpdir(), 'jit-chromium-'))
  t.teardown(() => rmSync(profile, { recursive: true, force: true }))
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  })
  t.teardown(() => browser.close())
  return browser
}

t.test('the docs page renders every operation in a real browser', needsChromium, async (t) => {
  const moto = await startMoto(t)
  const { app } = await build(t, moto)
  const baseUrl = await app.listen({ port: 0, host: '127.0.0.1' })
  const browser = await launchChromium(t)
  const page = await browser.newPage()
  const external: string[] = []
  page.on('request', (request) => {
    if (!request.url().startsWith(baseUrl) && !request.url().startsWith('data:')) external.push(request.url())
  })

  await page.goto(`${baseUrl}/docs`)
  await page.waitForSelector('.opblock', { timeout: 20_000 })
  const operations = await page.$$eval('.opblock-summary-path', (nodes) =>
    nodes.map((node) => node.textContent?.replace(/\u200b/g, '').trim()),
  )
  const methods = await page.$$eval('.opblock-summary-method', (nodes) => nodes.map((node) => node.textContent?.trim()))
  mkdirSync(OUTPUT, { recursive: true })
  await page.screenshot({ path: join(OUTPUT, 'docs.png'), fullPage: true })

  t.same(methods.map((method, i) => `${method} ${operations[i]}`).sort(), [
    'DELETE /grants/{id}',
    'GET /audit',
    'GET /audit/verify',
    'GET /eligibility',
    'GET /grants',
    'GET /grants/{id}',
    'GET /health',
    'GET /policy',
    'PATCH /grants/{id}',
    'POST /grants',
    'POST /revocations',
  ])
  t.same(external, [], 'the page loads nothing from outside the service')
})

t.test(
  'on any PORT, the sandbox’s docs page “Try it out” grants access with the printed token',
  needsChromium,
  async (t) => {
    const policyDir = mkdtempSync(join(tmpdir(), 'jit-docs-'))
    t.teardown(() => rmSync(policyDir, { recursive: true, force: true }))
    writeFileSync(join(policyDir, 'policy.json'), JSON.stringify(DEMO_POLICY))
    let port = await freePort()
    while (port === 3000) port = await freePort()
    const printed: string[] = []
    const env = {
      PORT: String(port),
      LOG_LEVEL: 'silent',
      PATH: process.env.PATH ?? '',
      JIT_POLICY_FILE: join(policyDir, 'policy.json'),
    }
    const sandbox = await startSandbox({ env, print: (line) => printed.push(line) })
    t.teardown(() => sandbox.stop())
    const baseUrl = `http://127.0.0.1:${port}`
    t.equal(sandbox.baseUrl, baseUrl)
    const token = /export TOKEN=(\S+)/.exec(printed.join('\n'))?.[1]
    t.ok(token, 'npm start printed a token')

    const browser = await launchChromium(t)
    const page = await browser.newPage()
    const sent: string[] = []
    page.on('request', (request) => sent.push(`${request.method()} ${request.url()}`))
    await page.goto(`${baseUrl}/docs`)
    await page.waitForSelector('.opblock', { timeout: 20_000 })
    t.same(
      await page.$$eval('#servers option', (options) => options.map((option) => option.getAttribute('value'))),
      [baseUrl],
      'the page offers the server it was loaded from',
    )

    // As a person would: Authorize with the printed token, then POST /grants with the contract's example.
    await page.click('.btn.authorize')
    await page.fill('#auth-bearer-value', token as string)
    await page.click('.auth-btn-wrapper .authorize')
    await page.click('.auth-btn-wrapper .btn-done')
    const operation = '#operations-grants-createGrant'
    await page.click(`${operation} .opblock-summary`)
    await page.click(`${operation} .try-out__btn`)
    await page.click(`${operation} .execute`)
    const status = await page.waitForSelector(
      `${operation} .live-responses-table tbody .response .response-col_status`,
      { timeout: 20_000 },
    )
    const body = await page.$eval(
      `${operation} .live-responses-table tbody .response .response-col_description`,
      (node) => node.textContent ?? '',
    )
    mkdirSync(OUTPUT, { recursive: true })
    await page.screenshot({ path: join(OUTPUT, 'docs-try-it-out.png'), fullPage: true })

    t.ok(sent.includes(`POST ${baseUrl}/grants`), `the page called the sandbox it was served from: ${sent.join(', ')}`)
    t.equal((await status.textContent())?.trim(), '201', body)
    t.match(body, /"status": "active"/, 'alice holds AdministratorAccess on the demo production account')
  },
)
