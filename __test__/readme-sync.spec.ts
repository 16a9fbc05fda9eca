// The README's API reference is kept in sync with the typings: every public option, method
// and property declared in the public typings tsc emits into dist/ (and the dgram facade's extra options) must be
// named in README.md. Adding an API without documenting it fails this test.
import test from 'ava'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

const ROOT = join(__dirname, '..')
const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
// The typings are emitted by `npm run build` (tsc) from lib/, one declaration file per module.
const DIST = join(ROOT, 'dist')
const dts = readdirSync(DIST)
  .filter((f) => f.endsWith('.d.ts'))
  .map((f) => readFileSync(join(DIST, f), 'utf8'))
  .join('\n')

/** Member names declared in `export interface|declare class NAME ... { ... }` of a .d.ts. */
function members(source: string, name: string): string[] {
  const start = source.search(new RegExp(`export (?:interface|declare class) ${name}\\b[^{]*\\{`))
  if (start === -1) throw new Error(`${name} not found in the typings`)
  let depth = 0
  let i = source.indexOf('{', start)
  const bodyStart = i + 1
  for (; i < source.length; i++) {
    if (source[i] === '{') depth++
    else if (source[i] === '}' && --depth === 0) break
  }
  const body = source.slice(bodyStart, i)
  const out = new Set<string>()
  for (const line of body.split('\n')) {
    const m = /^(?: {2}| {4})(?:static |readonly |get )*([A-Za-z_]\w*)\??\s*[(:<]/.exec(line)
    if (m && m[1] !== 'constructor' && m[1] !== 'on' && m[1] !== 'once') out.add(m[1])
  }
  return [...out]
}

for (const name of ['BindOptions', 'OutgoingMessage', 'Message', 'Batch', 'Stats', 'RecvOptions', 'SendOptions', 'UdpSocket']) {
  test(`README documents every member of ${name}`, (t) => {
    const names = members(dts, name)
    t.true(names.length >= 1, `parsed members of ${name}`)
    const missing = names.filter((n) => !new RegExp(`\\b${n}\\b`).test(readme))
    t.deepEqual(missing, [], `README.md does not mention these ${name} members`)
  })
}

test('README documents every native stats counter and capability', (t) => {
  const native = readFileSync(join(ROOT, 'index.d.ts'), 'utf8')
  const missing = [...members(native, 'NativeStats'), ...members(native, 'Capabilities')].filter((n) => !readme.includes(n))
  t.deepEqual(missing, [])
})
