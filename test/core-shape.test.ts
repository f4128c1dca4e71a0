import { readdirSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import t from 'tap'
import ts from 'typescript'

// The core is read by the next engineer first: no function, method or arrow in src/core may run over 50 lines,
// so that each one fits on a screen and says one thing; and every port method and public core method has a doc
// comment, so that it can be called without reading its code. Measured from its first line to its last, as the
// TypeScript compiler parses it (its doc comment not counted).
const ROOT = resolve(import.meta.dirname, '..')
const MAX_LINES = 50

/** Every function-like node in the source over `max` lines: its file, line, name and length. */
export function longFunctions(file: string, text: string, max = MAX_LINES): string[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true)
  const found: string[] = []
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      const first = source.getLineAndCharacterOfPosition(node.getStart(source)).line
      const last = source.getLineAndCharacterOfPosition(node.getEnd()).line
      const lines = last - first + 1
      if (lines > max) found.push(`${file}:${first + 1} ${nameOf(node)} is ${lines} lines (at most ${max})`)
    }
    ts.forEachChild(node, visit)
  }
  visit(source)
  return found
}

/**
 * Methods a reader calls without reading their code, that carry no doc comment: every method of an interface
 * exported from src/core/ports.ts (`ports`), and every method of an exported class that is not private.
 */
export function undocumented(file: string, text: string, ports: boolean): string[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true)
  const modifiers = (node: ts.Node) =>
    ts.canHaveModifiers(node) ? (ts.getModifiers(node) ?? []).map((m) => m.kind) : []
  const documented = (node: ts.Node) => ts.getJSDocCommentsAndTags(node).length > 0
  const found: string[] = []
  for (const statement of source.statements) {
    if (!modifiers(statement).includes(ts.SyntaxKind.ExportKeyword)) continue
    const members: readonly ts.Node[] =
      ports && ts.isInterfaceDeclaration(statement)
        ? statement.members.filter(ts.isMethodSignature)
        : ts.isClassDeclaration(statement)
          ? statement.members.filter(
              (m) =>
                ts.isMethodDeclaration(m) &&
                !modifiers(m).some(
                  (kind) => kind === ts.SyntaxKind.PrivateKeyword || kind === ts.SyntaxKind.ProtectedKeyword,
                ),
            )
          : []
    for (const member of members.filter((m) => !documented(m))) {
      found.push(`${file}: ${nameOf(statement)}.${nameOf(member)} has no doc comment`)
    }
  }
  return found
}

function nameOf(node: ts.Node): string {
  const named = node as ts.Node & { name?: ts.Node }
  if (named.name) return named.name.getText()
  const parent = node.parent
  if (
    parent &&
    (ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent) || ts.isPropertyDeclaration(parent))
  )
    return parent.name.getText()
  return '(anonymous function)'
}

t.test('the measure sees functions, methods and arrows, and only those over the limit', async (t) => {
  const body = (n: number) => Array.from({ length: n }, (_, i) => `  const a${i} = ${i}`).join('\n')
  const text = [
    `function long() {\n${body(49)}\n}`,
    `function short() {\n${body(48)}\n}`,
    `class C {\n  method() {\n${body(49)}\n  }\n}`,
    `const arrow = () => {\n${body(49)}\n}`,
  ].join('\n')
  const found = longFunctions('x.ts', text)
  t.equal(found.length, 3, found.join('\n'))
  t.match(found.join('\n'), /long is 51 lines/)
  t.match(found.join('\n'), /method is 51 lines/)
  t.match(found.join('\n'), /arrow is 51 lines/)
})

t.test(`no function in src/core is over ${MAX_LINES} lines`, async (t) => {
  const dir = join(ROOT, 'src/core')
  const files = readdirSync(dir).filter((name) => name.endsWith('.ts'))
  t.ok(files.length > 10, `read ${files.length} core files`)
  const found = files.flatMap((name) => longFunctions(`src/core/${name}`, readFileSync(join(dir, name), 'utf8')))
  t.same(found, [], found.join('\n'))
})

t.test('the doc check sees an undocumented port method and public method, not private ones', async (t) => {
  const text = [
    'export interface Port {\n  /** Says. */\n  said(): void\n  silent(): void\n}',
    'export class Service {\n  /** Says. */\n  said() {}\n  silent() {}\n  private own() {}\n}',
  ].join('\n')
  t.same(undocumented('x.ts', text, true), [
    'x.ts: Port.silent has no doc comment',
    'x.ts: Service.silent has no doc comment',
  ])
  t.same(
    undocumented('x.ts', text, false),
    ['x.ts: Service.silent has no doc comment'],
    'interfaces outside ports.ts are not ports',
  )
})

t.test('every exported port method and public core method says what it promises', async (t) => {
  const dir = join(ROOT, 'src/core')
  const files = readdirSync(dir).filter((name) => name.endsWith('.ts'))
  const found = files.flatMap((name) =>
    undocumented(`src/core/${name}`, readFileSync(join(dir, name), 'utf8'), name === 'ports.ts'),
  )
  t.same(found, [], found.join('\n'))
})
