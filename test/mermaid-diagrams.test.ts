import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative, resolve } from 'node:path'
import { chromium } from 'playwright-core'
import t from 'tap'

const ROOT = resolve(import.meta.dirname, '..')
const CHROMIUM = '/usr/bin/chromium'
/** mermaid's browser bundle, from node_modules: the page loads nothing from the network. */
const MERMAID = join(ROOT, 'node_modules', 'mermaid', 'dist', 'mermaid.min.js')
const OUTPUT = join(ROOT, '.tap', 'mermaid')
/** Not the project's own Markdown: installed packages, build output, the sandbox's files. */
const SKIPPED = new Set(['node_modules', '.git', 'dist', 'cdk.out', '.tap', '.sandbox', '.bench', 'coverage'])

function markdownFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    if (SKIPPED.has(entry.name) || entry.name.startsWith('.build-')) return []
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return markdownFiles(path)
    return entry.name.endsWith('.md') ? [path] : []
  })
}

interface Diagram {
  name: string
  source: string
}

/** Every ```mermaid block of every Markdown file, named by file and line. */
function diagrams(): Diagram[] {
  return markdownFiles(ROOT).flatMap((file) => {
    const text = readFileSync(file, 'utf8')
    return [...text.matchAll(/^```mermaid[ \t]*\n([\s\S]*?)^```[ \t]*$/gm)].map((match) => ({
      name: `${relative(ROOT, file)}:${text.slice(0, match.index).split('\n').length}`,
      source: match[1] as string,
    }))
  })
}

t.test(
  'every Mermaid diagram in the repository’s Markdown renders without a syntax error',
  { skip: existsSync(CHROMIUM) ? false : `no ${CHROMIUM}: .ci/run installs Debian's chromium` },
  async (t) => {
    const found = diagrams()
    const names = found.map((diagram) => diagram.name)
    // The architecture document's state machines and sequence diagram are among them.
    t.ok(
      found.filter((d) => d.name.startsWith('docs/architecture.md')).length >= 4,
      `docs/architecture.md has its diagrams: ${names.join(', ')}`,
    )

    const profile = mkdtempSync(join(tmpdir(), 'jit-mermaid-'))
    t.teardown(() => rmSync(profile, { recursive: true, force: true }))
    const browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    })
    t.teardown(() => browser.close())
    const page = await browser.newPage()
    const external: string[] = []
    page.on('request', (request) => {
      if (!request.url().startsWith('data:') && request.url() !== 'about:blank') external.push(request.url())
    })
    await page.setContent('<!doctype html><html><body></body></html>')
    await page.addScriptTag({ path: MERMAID })
    await page.evaluate(() =>
      (globalThis as unknown as { mermaid: { initialize(config: object): void } }).mermaid.initialize({
        startOnLoad: false,
        securityLevel: 'strict',
      }),
    )

    mkdirSync(OUTPUT, { recursive: true })
    for (const [i, diagram] of found.entries()) {
      // render() parses first and rejects on a syntax error, with mermaid's message naming the line.
      const result = await page.evaluate(
        async ({ id, source }) => {
          const { mermaid } = globalThis as unknown as {
            mermaid: { render(id: string, text: string): Promise<{ svg: string }> }
          }
          try {
            return { svg: (await mermaid.render(id, source)).svg }
          } catch (error) {
            return { error: String((error as Error)?.message ?? error) }
          }
        },
        { id: `diagram-${i}`, source: diagram.source },
      )
      t.notOk(result.error, `${diagram.name} renders${result.error ? `: ${result.error}` : ''}`)
      if (result.svg) {
        t.notMatch(result.svg, /Syntax error in text/, `${diagram.name}: no error diagram`)
        writeFileSync(join(OUTPUT, `${diagram.name.replace(/[/:]/g, '_')}.svg`), result.svg)
      }
    }
    t.same(external, [], 'mermaid came from node_modules: nothing was fetched')
  },
)
