#!/usr/bin/env node
'use strict'
// Keeps the release metadata of udp-mmsg in one piece: the root package, the per-platform
// packages under npm/, the optionalDependencies that tie them together, the Rust crate
// version, and the version the generated loader (index.js) expects of a platform package.
//
//   node scripts/check-versions.js             check; exit 1 and list every mismatch
//   node scripts/check-versions.js --published also require optionalDependencies (after
//                                              `napi pre-publish` wrote them: prepublishOnly)
//   node scripts/check-versions.js --tag v1.2.3  also require the git tag to match the version
//   node scripts/check-versions.js --write     make the others follow package.json's version (and
//                                              npm/*'s license, engines, repository follow the root's)
//                                              (the `version` npm hook, after `napi version`)
//   node scripts/check-versions.js --write --git-add   ... and `git add` what it touched
//
// optionalDependencies are NOT kept in the committed package.json: the platform packages are
// not on the registry before the first release (and a new version never is before it is
// published), so listing them would make `npm ci` fail with "Missing: udp-mmsg-linux-x64-gnu@
// from lock file". `napi pre-publish` (prepublishOnly) adds them to the published manifest.
// When they are present they must name every platform package at exactly the root version.

const fs = require('node:fs')
const path = require('node:path')
const { execFileSync } = require('node:child_process')

/** Rust target triple -> napi platform tag, os, cpu, libc. The supported set. */
const TRIPLES = {
  'x86_64-unknown-linux-gnu': { tag: 'linux-x64-gnu', os: 'linux', cpu: 'x64', libc: 'glibc' },
  'aarch64-unknown-linux-gnu': { tag: 'linux-arm64-gnu', os: 'linux', cpu: 'arm64', libc: 'glibc' },
  'x86_64-unknown-linux-musl': { tag: 'linux-x64-musl', os: 'linux', cpu: 'x64', libc: 'musl' },
  'aarch64-unknown-linux-musl': { tag: 'linux-arm64-musl', os: 'linux', cpu: 'arm64', libc: 'musl' },
  'x86_64-apple-darwin': { tag: 'darwin-x64', os: 'darwin', cpu: 'x64' },
  'aarch64-apple-darwin': { tag: 'darwin-arm64', os: 'darwin', cpu: 'arm64' },
}

const readJson = (file) => JSON.parse(fs.readFileSync(file, 'utf8'))
const writeJson = (file, value) => fs.writeFileSync(file, JSON.stringify(value, null, 2) + '\n')
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b)

const CARGO_VERSION = /^(\[package\][^[]*?^version\s*=\s*")([^"]+)(")/m
const LOCK_VERSION = (crate) =>
  new RegExp(`(\\[\\[package\\]\\]\\r?\\nname = "${crate.replace(/[-]/g, '\\-')}"\\r?\\nversion = ")([^"]+)(")`)
const CARGO_NAME = /^\[package\][^[]*?^name\s*=\s*"([^"]+)"/m
// The generated loader compares a platform package's version with this literal.
const LOADER_VERSION = /(bindingPackageVersion !== ')([^']*)(')|(expected )([^ `]+)( but got)/g

/** The platform packages of the repository at `root`, from package.json's napi.targets. */
function platforms(root = path.resolve(__dirname, '..')) {
  const pkg = readJson(path.join(root, 'package.json'))
  const targets = (pkg.napi && pkg.napi.targets) || []
  const binaryName = (pkg.napi && pkg.napi.binaryName) || pkg.name
  return targets.map((triple) => {
    const t = TRIPLES[triple]
    if (!t) throw new Error(`check-versions: unknown target ${triple}; add it to TRIPLES in ${__filename}`)
    return {
      triple,
      ...t,
      name: `${pkg.name}-${t.tag}`,
      dir: path.join(root, 'npm', t.tag),
      file: `${binaryName}.${t.tag}.node`,
    }
  })
}

/** The optionalDependencies `napi pre-publish` writes into the published root manifest. */
function expectedOptionalDependencies(root = path.resolve(__dirname, '..')) {
  const { version } = readJson(path.join(root, 'package.json'))
  return Object.fromEntries(platforms(root).map((p) => [p.name, version]))
}

/** Every place a version or a platform package name is recorded, as found. */
function readVersions(root = path.resolve(__dirname, '..')) {
  const pkg = readJson(path.join(root, 'package.json'))
  const cargo = fs.readFileSync(path.join(root, 'Cargo.toml'), 'utf8')
  const crate = (cargo.match(CARGO_NAME) || [])[1]
  const lockFile = path.join(root, 'Cargo.lock')
  const lock = fs.existsSync(lockFile) ? fs.readFileSync(lockFile, 'utf8') : null
  const loaderFile = path.join(root, 'index.js')
  const loader = fs.existsSync(loaderFile) ? fs.readFileSync(loaderFile, 'utf8') : null
  const loaderVersions = loader ? [...new Set([...loader.matchAll(LOADER_VERSION)].map((m) => m[2] ?? m[5]))] : null
  return {
    root: pkg.version,
    cargo: (cargo.match(CARGO_VERSION) || [])[2],
    cargoLock: lock && crate ? (lock.match(LOCK_VERSION(crate)) || [])[2] : undefined,
    loader: loaderVersions,
    platforms: Object.fromEntries(
      platforms(root).map((p) => {
        const file = path.join(p.dir, 'package.json')
        return [p.tag, fs.existsSync(file) ? readJson(file).version : undefined]
      }),
    ),
    optionalDependencies: pkg.optionalDependencies,
  }
}

/** Lists every inconsistency; an empty list means the release metadata agrees. */
function check(root = path.resolve(__dirname, '..'), { published = false, tag } = {}) {
  const problems = []
  const pkg = readJson(path.join(root, 'package.json'))
  const v = pkg.version
  const versions = readVersions(root)
  if (!v) problems.push('package.json has no version')
  if (versions.cargo !== v) problems.push(`Cargo.toml version is ${versions.cargo}, package.json has ${v}`)
  if (versions.cargoLock !== undefined && versions.cargoLock !== v) {
    problems.push(`Cargo.lock records ${versions.cargoLock} for the crate, package.json has ${v}`)
  }
  if (versions.loader && versions.loader.some((x) => x !== v)) {
    problems.push(`index.js expects platform packages at ${versions.loader.join(', ')}, package.json has ${v} (rebuild, or run scripts/check-versions.js --write)`)
  }
  const loader = fs.existsSync(path.join(root, 'index.js')) ? fs.readFileSync(path.join(root, 'index.js'), 'utf8') : null

  const list = platforms(root)
  const expectedDirs = new Set(list.map((p) => p.tag))
  const npmDir = path.join(root, 'npm')
  for (const d of fs.existsSync(npmDir) ? fs.readdirSync(npmDir) : []) {
    if (!expectedDirs.has(d)) problems.push(`npm/${d} is not a napi.targets platform`)
  }
  for (const p of list) {
    const file = path.join(p.dir, 'package.json')
    if (!fs.existsSync(file)) {
      problems.push(`npm/${p.tag}/package.json is missing (npx napi create-npm-dirs)`)
      continue
    }
    const sub = readJson(file)
    const want = {
      name: p.name,
      version: v,
      main: p.file,
      files: [p.file],
      os: [p.os],
      cpu: [p.cpu],
      libc: p.libc ? [p.libc] : undefined,
      license: pkg.license,
      engines: pkg.engines,
      repository: pkg.repository,
    }
    for (const [k, w] of Object.entries(want)) {
      if (!same(sub[k], w)) problems.push(`npm/${p.tag}/package.json ${k} is ${JSON.stringify(sub[k])}, expected ${JSON.stringify(w)}`)
    }
    if (loader && !loader.includes(`require('${p.name}')`)) {
      problems.push(`index.js never requires '${p.name}': the loader and the platform package names disagree`)
    }
  }

  const opt = pkg.optionalDependencies
  if (opt || published) {
    const want = expectedOptionalDependencies(root)
    if (!opt) problems.push('package.json has no optionalDependencies (napi pre-publish writes them)')
    else if (!same(Object.entries(opt).sort(), Object.entries(want).sort())) {
      problems.push(`optionalDependencies are ${JSON.stringify(opt)}, expected ${JSON.stringify(want)}`)
    }
  }
  if (tag !== undefined && tag.replace(/^refs\/tags\//, '') !== `v${v}`) {
    problems.push(`tag ${tag} does not match package.json version ${v} (expected v${v})`)
  }
  return problems
}

/** Makes every other record follow package.json's version. Returns the files it changed. */
function write(root = path.resolve(__dirname, '..')) {
  const changed = []
  const pkgFile = path.join(root, 'package.json')
  const pkg = readJson(pkgFile)
  const v = pkg.version
  const edit = (file, fn) => {
    if (!fs.existsSync(file)) return
    const before = fs.readFileSync(file, 'utf8')
    const after = fn(before)
    if (after !== before) {
      fs.writeFileSync(file, after)
      changed.push(path.relative(root, file))
    }
  }
  const cargoFile = path.join(root, 'Cargo.toml')
  const crate = (fs.readFileSync(cargoFile, 'utf8').match(CARGO_NAME) || [])[1]
  edit(cargoFile, (s) => s.replace(CARGO_VERSION, `$1${v}$3`))
  if (crate) edit(path.join(root, 'Cargo.lock'), (s) => s.replace(LOCK_VERSION(crate), `$1${v}$3`))
  edit(path.join(root, 'index.js'), (s) =>
    s.replace(LOADER_VERSION, (m, a, _b, c, d, _e, f) => (a !== undefined ? `${a}${v}${c}` : `${d}${v}${f}`)),
  )
  for (const p of platforms(root)) {
    edit(path.join(p.dir, 'package.json'), (s) => {
      const sub = JSON.parse(s)
      sub.version = v
      // Metadata npm shows for each platform package follows the root's.
      for (const k of ['license', 'engines', 'repository']) if (pkg[k] !== undefined) sub[k] = pkg[k]
      return JSON.stringify(sub, null, 2) + '\n'
    })
  }
  if (pkg.optionalDependencies) {
    edit(pkgFile, (s) => {
      const j = JSON.parse(s)
      for (const name of Object.keys(expectedOptionalDependencies(root))) {
        if (name in j.optionalDependencies) j.optionalDependencies[name] = v
      }
      return JSON.stringify(j, null, 2) + '\n'
    })
  }
  return changed
}

function main(argv) {
  const root = path.resolve(__dirname, '..')
  const args = new Set(argv.filter((a) => a.startsWith('--')))
  const tagAt = argv.indexOf('--tag')
  const tag = tagAt >= 0 ? argv[tagAt + 1] : undefined
  if (args.has('--help')) {
    const lines = fs.readFileSync(__filename, 'utf8').split('\n').slice(2)
    process.stdout.write(lines.slice(0, lines.findIndex((l) => !l.startsWith('//'))).join('\n') + '\n')
    return 0
  }
  if (args.has('--write')) {
    const changed = write(root)
    console.log(changed.length ? `check-versions: updated ${changed.join(', ')}` : 'check-versions: nothing to update')
    if (args.has('--git-add')) {
      let inGit = false
      try {
        inGit = execFileSync('git', ['rev-parse', '--is-inside-work-tree'], { cwd: root, stdio: 'pipe' }).toString().trim() === 'true'
      } catch {}
      const paths = ['npm', 'Cargo.toml', 'Cargo.lock', 'index.js'].filter((f) => fs.existsSync(path.join(root, f)))
      if (inGit) execFileSync('git', ['add', '--', ...paths], { cwd: root, stdio: 'inherit' })
    }
  }
  const problems = check(root, { published: args.has('--published'), tag })
  const v = readVersions(root)
  if (problems.length) {
    console.error(`check-versions: ${problems.length} problem(s):\n  - ${problems.join('\n  - ')}`)
    return 1
  }
  console.log(`check-versions: ${v.root} everywhere (package.json, Cargo.toml, Cargo.lock, index.js, ${Object.keys(v.platforms).length} platform packages${v.optionalDependencies ? ', optionalDependencies' : ''})`)
  return 0
}

module.exports = { TRIPLES, platforms, expectedOptionalDependencies, readVersions, check, write }

if (require.main === module) process.exitCode = main(process.argv.slice(2))
