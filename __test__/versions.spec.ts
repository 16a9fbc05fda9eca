// Release metadata agrees: the root package, npm/<platform> packages, optionalDependencies (as
// `napi pre-publish` writes them), Cargo.toml/Cargo.lock and the generated loader carry one
// version, and one command (`npm version`, via the `version` script) bumps them all together.
import test from 'ava'
import { execFile } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { check, expectedOptionalDependencies, platforms, readVersions } from '../scripts/check-versions.js'

const ROOT = path.resolve(__dirname, '..')
const COPY = ['package.json', 'Cargo.toml', 'Cargo.lock', 'index.js', 'index.d.ts', 'lib', 'npm', 'scripts']

/** A scratch copy of what the release commands read and write, with node_modules linked in. */
function scratch(t: { teardown(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'udp-mmsg-versions-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  for (const f of COPY) {
    if (fs.existsSync(path.join(ROOT, f))) fs.cpSync(path.join(ROOT, f), path.join(dir, f), { recursive: true })
  }
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'), 'dir')
  return dir
}

function sh(file: string, args: string[], cwd: string): Promise<{ code: number; out: string }> {
  const env = { ...process.env }
  for (const k of Object.keys(env)) if (k.startsWith('npm_')) delete env[k]
  return new Promise((resolve) => {
    execFile(file, args, { cwd, env, timeout: 120_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: unknown }).code ?? 1) || 1 : 0, out: `${stdout}\n${stderr}` })
    })
  })
}

const readJson = (f: string) => JSON.parse(fs.readFileSync(f, 'utf8'))

test('the repository agrees on one version everywhere', (t) => {
  const v = readVersions(ROOT)
  t.log(JSON.stringify(v))
  t.deepEqual(check(ROOT), [])
  t.is(v.cargo, v.root)
  for (const [tag, version] of Object.entries(v.platforms)) t.is(version, v.root, `npm/${tag}`)
})

test('committed package.json has no optionalDependencies (npm ci would fail before they are published)', (t) => {
  // If they are ever committed, they must at least match; check() enforces that too.
  const pkg = readJson(path.join(ROOT, 'package.json'))
  t.is(pkg.optionalDependencies, undefined)
})

test('npm/ holds exactly the napi.targets platform packages, without build output', (t) => {
  const tags = platforms(ROOT).map((p) => p.tag).sort()
  t.deepEqual(fs.readdirSync(path.join(ROOT, 'npm')).sort(), tags)
  for (const p of platforms(ROOT)) {
    t.deepEqual(fs.readdirSync(p.dir).sort(), ['README.md', 'package.json'], `npm/${p.tag}`)
  }
})

test('npm version bumps root, platform packages, Cargo.toml, Cargo.lock and the loader together', async (t) => {
  t.timeout(180_000)
  const dir = scratch(t)
  const npmCli = (process.env.npm_execpath ?? '').replace(/npx-cli\.js$/, 'npm-cli.js')
  const [file, args] = npmCli.endsWith('npm-cli.js') ? [process.execPath, [npmCli]] : ['npm', []]
  const r = await sh(file, [...args, 'version', '9.8.7-rc.1', '--no-git-tag-version'], dir)
  t.is(r.code, 0, r.out)
  const v = readVersions(dir)
  t.is(v.root, '9.8.7-rc.1')
  t.is(v.cargo, '9.8.7-rc.1')
  t.is(v.cargoLock, '9.8.7-rc.1')
  t.deepEqual(v.loader, ['9.8.7-rc.1'])
  for (const [tag, version] of Object.entries(v.platforms)) t.is(version, '9.8.7-rc.1', `npm/${tag}`)
  t.deepEqual(check(dir), [])
})

test('check() reports a platform package, Cargo.toml or optionalDependencies out of step', (t) => {
  const dir = scratch(t)
  const sub = path.join(dir, 'npm', 'darwin-arm64', 'package.json')
  fs.writeFileSync(sub, JSON.stringify({ ...readJson(sub), version: '0.0.1' }, null, 2))
  const cargo = path.join(dir, 'Cargo.toml')
  fs.writeFileSync(cargo, fs.readFileSync(cargo, 'utf8').replace(/^version = ".*"$/m, 'version = "0.0.2"'))
  const pkgFile = path.join(dir, 'package.json')
  const pkg = readJson(pkgFile)
  const opt = expectedOptionalDependencies(dir)
  delete opt['udp-mmsg-linux-arm64-musl']
  opt['udp-mmsg-linux-x64-gnu'] = '0.0.3'
  fs.writeFileSync(pkgFile, JSON.stringify({ ...pkg, optionalDependencies: opt }, null, 2))
  const problems = check(dir)
  t.log(problems.join('\n'))
  t.true(problems.some((p) => p.includes('npm/darwin-arm64/package.json version')))
  t.true(problems.some((p) => p.startsWith('Cargo.toml version is 0.0.2')))
  t.true(problems.some((p) => p.startsWith('optionalDependencies are')))
  t.true(check(ROOT, { published: true }).some((p) => p.includes('no optionalDependencies')))
  t.true(check(ROOT, { tag: 'v0.0.0-nope' }).some((p) => p.startsWith('tag v0.0.0-nope')))
})

test('napi pre-publish writes the optionalDependencies the install test assumes', async (t) => {
  t.timeout(180_000)
  const dir = scratch(t)
  // Stand-in binaries: pre-publish only needs the files to exist; nothing is published
  // (--skip-optional-publish) and no GitHub release is made (--no-gh-release).
  for (const p of platforms(dir)) fs.writeFileSync(path.join(p.dir, p.file), 'stand-in')
  const napi = path.join(ROOT, 'node_modules', '@napi-rs', 'cli', 'dist', 'cli.js')
  const r = await sh(process.execPath, [napi, 'pre-publish', '-t', 'npm', '--skip-optional-publish', '--no-gh-release'], dir)
  t.is(r.code, 0, r.out)
  const pkg = readJson(path.join(dir, 'package.json'))
  t.deepEqual(pkg.optionalDependencies, expectedOptionalDependencies(ROOT))
  t.deepEqual(check(dir, { published: true }), [])
})
