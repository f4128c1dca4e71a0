import { spawnSync } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { findMotoPython, type RefusedPython } from '../src/sandbox/moto-server.ts'

/*
 * findMotoPython picks the Python the sandbox's and the tests' moto launchers run with. A Python counts only if
 * it has what the launchers import: moto 5 (not 6: the launchers patch its internals) with its server extras.
 * Each case puts a python3 on PATH (and nothing else) that is a real Python whose moto, flask and flask_cors
 * are the fakes given.
 */
const realPython = spawnSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).stdout.trim()

function machineWith(t: Test, modules: Record<string, string>) {
  const root = mkdtempSync(join(tmpdir(), 'jit-moto-python-'))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  const site = join(root, 'site')
  for (const [file, text] of Object.entries(modules)) {
    mkdirSync(join(site, file, '..'), { recursive: true })
    writeFileSync(join(site, file), text)
  }
  const bin = join(root, 'bin')
  mkdirSync(bin)
  writeFileSync(
    join(bin, 'python3'),
    `#!/bin/sh\nPYTHONPATH='${site}' PYTHONNOUSERSITE=1 exec '${realPython}' -S "$@"\n`,
  )
  chmodSync(join(bin, 'python3'), 0o755)
  const path = process.env.PATH
  process.env.PATH = bin
  t.teardown(() => {
    process.env.PATH = path
  })
  const refused: RefusedPython[] = []
  return { root, found: () => findMotoPython(root, (candidate) => refused.push(candidate)), refused }
}

const MOTO_5 = { 'moto/__init__.py': '__version__ = "5.1.4"\n' }
const SERVER = { 'moto/server.py': '', 'flask/__init__.py': '', 'flask_cors/__init__.py': '' }

t.test('a Python with moto but without its server extras (pip install moto) is refused, naming why', async (t) => {
  const { found, refused } = machineWith(t, MOTO_5)
  t.equal(found(), undefined, 'not chosen: npm start installs moto[server] into .sandbox/venv instead')
  t.match(refused, [{ python: 'python3', reason: /No module named 'moto\.server'/ }])
})

t.test('a Python with moto and moto.server but no flask is refused', async (t) => {
  const { found, refused } = machineWith(t, { ...MOTO_5, 'moto/server.py': '', 'flask_cors/__init__.py': '' })
  t.equal(found(), undefined)
  t.match(refused, [{ python: 'python3', reason: /No module named 'flask'/ }])
})

t.test('a Python with moto 4, server extras and all, is refused', async (t) => {
  const { found, refused } = machineWith(t, { ...SERVER, 'moto/__init__.py': '__version__ = "4.2.14"\n' })
  t.equal(found(), undefined)
  t.match(refused, [{ python: 'python3', reason: /moto 4\.2\.14 is older than 5/ }])
})

t.test('a Python with moto 6, server extras and all, is refused: the launchers patch moto 5', async (t) => {
  const { found, refused } = machineWith(t, { ...SERVER, 'moto/__init__.py': '__version__ = "6.0.1"\n' })
  t.equal(found(), undefined, 'not chosen: npm start installs moto[server]>=5,<6 into .sandbox/venv instead')
  t.match(refused, [{ python: 'python3', reason: /moto 6\.0\.1 is newer than 5/ }])
})

t.test('a Python with moto 5 and its server extras is chosen', async (t) => {
  const { found, refused } = machineWith(t, { ...MOTO_5, ...SERVER })
  t.equal(found(), 'python3')
  t.same(refused, [])
})
