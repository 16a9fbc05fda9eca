// The documentation is kept in sync with the typings and with itself. README.md is the newcomer's
// page (what it is, the two commands, install, a quick start, the chart); the reference lives in
// docs/. Every public option, method and property declared in the public typings tsc emits into dist/, and every native
// stats counter and capability (index.d.ts), must be named in docs/api.md: adding an API without
// documenting it fails this test. Every relative link in README.md and docs/*.md must point at
// an existing file and, with a #fragment into a Markdown file, at an existing heading.
import test from 'ava'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'

const ROOT = join(__dirname, '..')
const read = (file: string) => readFileSync(join(ROOT, file), 'utf8')
const API_DOC = 'docs/api.md'
const apiDoc = read(API_DOC)
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

// ---------------------------------------------------------------------------------------------
// README.md stays a newcomer's page.

const README_MAX_LINES = 300
const TWO_COMMANDS = ['npm ci && npm run demo', 'npm ci && npm test']

test(`README.md has at most ${README_MAX_LINES} lines`, (t) => {
  const lines = read('README.md').replace(/\n$/, '').split('\n').length
  t.true(lines <= README_MAX_LINES, `README.md has ${lines} lines; move reference material into docs/`)
})

test('README.md starts with the two commands (demo, then tests), and CI runs the test command', (t) => {
  const readme = read('README.md')
  const firstBlock = /```[a-z]*\n([\s\S]*?)```/.exec(readme)
  t.truthy(firstBlock, 'README.md has a code block')
  t.deepEqual(firstBlock![1].trim().split('\n'), TWO_COMMANDS, 'the first code block is exactly the two commands')
  const before = readme.slice(0, firstBlock!.index)
  t.false(/^#{2,} /m.test(before), 'no section comes before the two commands')
  t.true(read('.ci/run').includes(TWO_COMMANDS[1]), '.ci/run runs the test command README gives')
})

// ---------------------------------------------------------------------------------------------
// Links between README.md and docs/*.md resolve.

const DOCS = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)]

/** Markdown outside fenced code blocks (a link inside ``` is not a link). */
function prose(md: string): string {
  return md.replace(/^```[\s\S]*?^```/gm, '')
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to '-', repeats get -1, -2... */
function anchors(md: string): Set<string> {
  const out = new Set<string>()
  const seen = new Map<string, number>()
  for (const m of prose(md).matchAll(/^#{1,6} (.+)$/gm)) {
    const slug = m[1]
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-')
    const n = seen.get(slug) ?? 0
    seen.set(slug, n + 1)
    out.add(n === 0 ? slug : `${slug}-${n}`)
  }
  return out
}

/** Relative link targets `](target)` in a Markdown file (web links and mail addresses left out). */
function relativeLinks(md: string): string[] {
  return [...prose(md).matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]).filter((l) => !/^[a-z][a-z0-9+.-]*:/i.test(l))
}

test('the anchor helper follows GitHub for the headings these docs link to', (t) => {
  const a = anchors("# x\n## UDP GSO send (`gso: 'auto' | true | false`, default `'auto'`)\n## Kernel drop counter (always on, Linux)\n## Tuning the defaults\n")
  t.true(a.has('udp-gso-send-gso-auto--true--false-default-auto'))
  t.true(a.has('kernel-drop-counter-always-on-linux'))
  t.true(a.has('tuning-the-defaults'))
  t.deepEqual(relativeLinks('[a](docs/api.md#x) [b](https://e.org) [c](#y)\n```\n[d](nope.md)\n```\n'), ['docs/api.md#x', '#y'])
})

for (const file of DOCS) {
  test(`every relative link in ${file} resolves`, (t) => {
    const broken: string[] = []
    const links = relativeLinks(read(file))
    for (const link of links) {
      const [path, fragment] = link.split('#') as [string, string | undefined]
      const target = path === '' ? join(ROOT, file) : join(ROOT, dirname(file), decodeURI(path))
      if (!existsSync(target)) {
        broken.push(`${link}: no file ${relative(ROOT, target)}`)
        continue
      }
      if (fragment !== undefined && target.endsWith('.md') && !anchors(readFileSync(target, 'utf8')).has(fragment)) {
        broken.push(`${link}: no heading #${fragment} in ${relative(ROOT, target)}`)
      }
    }
    t.deepEqual(broken, [])
    if (file === 'README.md') t.true(links.filter((l) => l.startsWith('docs/')).length >= 8, 'README.md links into docs/')
  })
}
