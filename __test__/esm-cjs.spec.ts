// Both module systems load both entry points ('udp-mmsg', 'udp-mmsg/dgram') through the
// package's "exports" (self-reference from inside the repository), and their typings resolve
// under TypeScript's node16 and bundler resolution.
import test from 'ava'
import { execFile } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)
const ROOT = join(__dirname, '..')
const FIXTURES = join(__dirname, 'fixtures')
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')
const opts = { cwd: ROOT, timeout: 120_000, maxBuffer: 8 << 20 }

async function node(args: string[]) {
  const { stdout } = await run(process.execPath, args, opts)
  return JSON.parse(stdout.trim().split('\n').pop()!)
}

test('require() of both entry points, and import() from CommonJS', async (t) => {
  const r = await node([join(FIXTURES, 'esm-runtime', 'check.cjs')])
  t.deepEqual(r, {
    kind: 'cjs',
    types: ['function', 'function', 'function', 'function'],
    sameViaImport: true,
    message: { text: 'cjs', family: 'IPv4' },
  })
})

test('import of both entry points: named, default and dynamic imports are the CommonJS objects', async (t) => {
  const r = await node([join(FIXTURES, 'esm-runtime', 'check.mjs')])
  t.deepEqual(r, {
    kind: 'esm',
    sameUdpSocket: true,
    sameBatch: true,
    defaultIsCjs: true,
    sameCreateSocket: true,
    sameSocket: true,
    facadeIsSocket: true,
    bytes: 3,
    text: 'esm',
  })
})

test('the named exports of each entry point are the same in both module systems', async (t) => {
  const script = `
    const { createRequire } = await import('node:module')
    const require = createRequire(${JSON.stringify(join(ROOT, 'x.js'))})
    const out = {}
    for (const spec of ['udp-mmsg', 'udp-mmsg/dgram']) {
      const esm = await import(spec)
      out[spec] = { esm: Object.keys(esm).filter((k) => k !== 'default').sort(), cjs: Object.keys(require(spec)).sort() }
    }
    console.log(JSON.stringify(out))
  `
  const r = await node(['--input-type=module', '-e', script])
  for (const spec of ['udp-mmsg', 'udp-mmsg/dgram']) t.deepEqual(r[spec].esm, r[spec].cjs, spec)
  t.true(r['udp-mmsg/dgram'].cjs.includes('createSocket'))
  t.true(r['udp-mmsg'].cjs.includes('UdpSocket'))
})

for (const fixture of ['esm-node16', 'esm-bundler']) {
  test(`types resolve under TypeScript ${fixture.slice(4)} resolution (and are not any: @ts-expect-error lines hold)`, async (t) => {
    const { stdout } = await run(process.execPath, [TSC, '-p', join(FIXTURES, fixture), '--listFiles'], opts).catch((e) => {
      t.fail(`tsc failed:\n${e.stdout}${e.stderr}`)
      throw e
    })
    const files = stdout.split('\n').map((f) => f.trim())
    // ESM importers get the emitted .d.mts, CommonJS ones the .d.ts (both re-export the same declarations).
    const either = (name: string) => files.includes(join(ROOT, 'dist', `${name}.d.ts`)) || files.includes(join(ROOT, 'dist', `${name}.d.mts`))
    t.true(either('index'), 'udp-mmsg resolved to dist/index.d.ts or .d.mts')
    t.true(either('dgram'), 'udp-mmsg/dgram resolved to dist/dgram.d.ts or .d.mts')
  })
}

test('@arethetypeswrong/cli finds no problem in the packed package; ESM importers get the .d.mts typings', async (t) => {
  // `npm pack --ignore-scripts` packs the dist/ already built (no `prepare` rewriting it under
  // other tests); attw then checks the tarball under node10, node16 (CJS and ESM) and bundler.
  const dir = mkdtempSync(join(tmpdir(), 'udp-mmsg-attw-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
  await run(npm, ['pack', '--ignore-scripts', '--pack-destination', dir], opts)
  const tarball = readdirSync(dir).find((f) => f.endsWith('.tgz'))
  t.truthy(tarball)
  const attw = join(ROOT, 'node_modules', '@arethetypeswrong', 'cli', 'dist', 'index.js')
  const { stdout } = await run(process.execPath, [attw, join(dir, tarball!), '--format', 'json'], opts).catch((e) => {
    t.fail(`attw reported problems:\n${e.stdout}${e.stderr}`)
    throw e
  })
  const report = JSON.parse(stdout) as {
    analysis: { problems: unknown[]; entrypoints: Record<string, { resolutions: Record<string, { resolution?: { fileName: string } }> }> }
  }
  t.deepEqual(report.analysis.problems, [])
  for (const [entry, name] of [
    ['.', 'index'],
    ['./dgram', 'dgram'],
  ]) {
    const res = report.analysis.entrypoints[entry].resolutions
    t.is(res['node16-esm'].resolution?.fileName, `/node_modules/udp-mmsg/dist/${name}.d.mts`, `${entry} from ESM`)
    t.is(res['node16-cjs'].resolution?.fileName, `/node_modules/udp-mmsg/dist/${name}.d.ts`, `${entry} from CommonJS`)
  }
})
