// The public typings are what tsc emits from lib/ (no hand-written .d.ts). This test emits the
// declarations afresh, collects every declaration file the package entry points reach
// (dist/index.d.ts, dist/dgram.d.ts and their ESM twins .d.mts, then their relative imports),
// and compares them with the committed snapshot __test__/snapshots/public-api.d.ts.txt, so
// any change to the public API shows in review. After an intended change, regenerate it:
//   UPDATE_API_SNAPSHOT=1 npx ava __test__/typings-snapshot.spec.ts
import test from 'ava'
import { execFile } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

const ROOT = path.resolve(__dirname, '..')
const SNAPSHOT = path.join(__dirname, 'snapshots', 'public-api.d.ts.txt')
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')
const ENTRIES = ['index.d.ts', 'index.d.mts', 'dgram.d.ts', 'dgram.d.mts']

function emit(outDir: string): Promise<void> {
  const args = [TSC, '-p', path.join(ROOT, 'tsconfig.build.json'), '--emitDeclarationOnly', '--outDir', outDir]
  return new Promise((resolve, reject) => {
    execFile(process.execPath, args, { cwd: ROOT, timeout: 120_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`tsc failed:\n${stdout}${stderr}`))
      else resolve()
    })
  })
}

/** The declaration files reachable from the entry points, entry points first, then by name. */
function reachable(dir: string): string[] {
  const seen = new Set<string>()
  const queue = [...ENTRIES]
  while (queue.length > 0) {
    const f = queue.shift() as string
    if (seen.has(f)) continue
    seen.add(f)
    const text = fs.readFileSync(path.join(dir, f), 'utf8')
    for (const m of text.matchAll(/from '\.\/([\w-]+)\.(m?)js'/g)) queue.push(`${m[1]}.d.${m[2]}ts`)
  }
  return [...ENTRIES, ...[...seen].filter((f) => !ENTRIES.includes(f)).sort()]
}

test('public declarations emitted from lib/ match the committed API snapshot', async (t) => {
  t.timeout(180_000)
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'udp-mmsg-api-'))
  t.teardown(() => fs.rmSync(out, { recursive: true, force: true }))
  await emit(out)
  const files = reachable(out)
  const actual = files.map((f) => `// ==== dist/${f}\n${fs.readFileSync(path.join(out, f), 'utf8').trimEnd()}\n`).join('\n')
  t.log(`public declaration files: ${files.join(', ')}`)
  if (process.env.UPDATE_API_SNAPSHOT) {
    fs.writeFileSync(SNAPSHOT, actual)
    t.log(`wrote ${path.relative(ROOT, SNAPSHOT)}`)
  }
  const expected = fs.existsSync(SNAPSHOT) ? fs.readFileSync(SNAPSHOT, 'utf8') : ''
  t.is(actual, expected, 'the public API changed: review the diff, then regenerate the snapshot (see the top of this file)')
  // Internal modules stay out of the public surface.
  for (const internal of [
    'receive',
    'send-queue',
    'dgram-socket',
    'dgram-send',
    'dgram-bind',
    'dgram-options',
    'dgram-state',
    'pack-internal',
  ]) {
    t.false(files.includes(`${internal}.d.ts`), `${internal}.d.ts is not reachable from the entry points`)
  }
})

test('Batch has no public constructor: only the static factories', async (t) => {
  const snapshot = fs.readFileSync(SNAPSHOT, 'utf8')
  const batch = snapshot.slice(snapshot.indexOf('export declare class Batch'))
  t.regex(batch, /\n {4}private constructor\(\);/)
  t.regex(batch, /\n {4}static empty\(\): Batch;/)
  t.notRegex(batch.slice(0, batch.indexOf('\n}')), /static fromNative/, 'fromNative is @internal')
})
