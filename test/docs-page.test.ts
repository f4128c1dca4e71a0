import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { chromium } from 'playwright-core'
import t from 'tap'
import { build } from './helpers/app.ts'
import { startMoto } from './helpers/moto.ts'

const CHROMIUM = '/usr/bin/chromium'
const OUTPUT = resolve(import.meta.dirname, '..', '.tap', 'screenshots')

t.test('the docs page renders every operation in a real browser', { skip: existsSync(CHROMIUM) ? false : `no ${CHROMIUM}: .ci/run installs Debian's chromium` }, async (t) => {
  const moto = await startMoto(t)
  const { app } = await build(t, moto)
  const baseUrl = await app.listen({ port: 0, host: '127.0.0.1' })
  const profile = mkdtempSync(join(tmpdir(), 'jit-chromium-'))
  t.teardown(() => rmSync(profile, { recursive: true, force: true }))
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  })
  t.teardown(() => browser.close())
  const page = await browser.newPage()
  const external: string[] = []
  page.on('request', (request) => {
    if (!request.url().startsWith(baseUrl) && !request.url().startsWith('data:')) external.push(request.url())
  })

  await page.goto(`${baseUrl}/docs`)
  await page.waitForSelector('.opblock', { timeout: 20_000 })
  const operations = await page.$$eval('.opblock-summary-path', (nodes) => nodes.map((node) => node.textContent?.replace(/\u200b/g, '').trim()))
  const methods = await page.$$eval('.opblock-summary-method', (nodes) => nodes.map((node) => node.textContent?.trim()))
  mkdirSync(OUTPUT, { recursive: true })
  await page.screenshot({ path: join(OUTPUT, 'docs.png'), fullPage: true })

  t.same(
    methods.map((method, i) => `${method} ${operations[i]}`).sort(),
    ['DELETE /grants/{id}', 'GET /audit', 'GET /audit/verify', 'GET /grants', 'GET /grants/{id}', 'GET /health', 'PATCH /grants/{id}', 'POST /grants', 'POST /revocations'],
  )
  t.same(external, [], 'the page loads nothing from outside the service')
})
