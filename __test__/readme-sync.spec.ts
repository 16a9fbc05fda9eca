// The documentation is kept in sync with the typings and with itself. README.md is the newcomer's
// page (what it is, the two commands, install, a quick start, the chart); the reference lives in
// docs/. Every public option, method and property declared in lib/index.d.ts, and every native
// stats counter and capability (index.d.ts), must be named in docs/api.md: adding an API without
// documenting it fails this test.
import test from 'ava'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

const ROOT = join(__dirname, '..')
const read = (file: string) => readFileSync(join(ROOT, file), 'utf8')
const API_DOC = 'docs/api.md'
const apiDoc = read(API_DOC)
const dts = read(join('lib', 'index.d.ts'))

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
    const m = /^ {2}(?:static |readonly )*([A-Za-z_]\w*)\??\s*[(:<]/.exec(line)
    if (m && m[1] !== 'constructor' && m[1] !== 'on' && m[1] !== 'once') out.add(m[1])
  }
  return [...out]
}

for (const name of ['BindOptions', 'OutgoingMessage', 'Message', 'Batch', 'Stats', 'RecvOptions', 'SendOptions', 'UdpSocket']) {
  test(`${API_DOC} documents every member of ${name}`, (t) => {
    const names = members(dts, name)
    t.true(names.length >= 1, `parsed members of ${name}`)
    const missing = names.filter((n) => !new RegExp(`\\b${n}\\b`).test(apiDoc))
    t.deepEqual(missing, [], `${API_DOC} does not mention these ${name} members`)
  })
}

test(`${API_DOC} documents every native stats counter and capability`, (t) => {
  const native = read('index.d.ts')
  const missing = [...members(native, 'NativeStats'), ...members(native, 'Capabilities')].filter((n) => !apiDoc.includes(n))
  t.deepEqual(missing, [])
})
