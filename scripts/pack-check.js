#!/usr/bin/env node
'use strict'
// Checks what `npm pack` would put in the published tarballs, without writing any.
//
//   node scripts/pack-check.js                     root package + every npm/<platform> package
//   node scripts/pack-check.js --require-binaries  also fail when a platform package has no .node
//                                                  (the publish job, after `napi artifacts`)
//
// The root tarball may hold only package.json, README/LICENSE, index.js, index.d.ts (the native
// loader and its typings), examples/*.js (the runnable examples) and dist/ (the compiled
// TypeScript of lib/: no sources, no Rust, tests, other build output or .node files), and
// every file its main, types and exports point at must be in it. A platform tarball holds package.json, README.md (LICENSE if
// present) and its one .node file. Prints each tarball's file list and sizes.

const fs = require('node:fs')
const path = require('node:path')
const { execFileSync } = require('node:child_process')
const { platforms, check: checkVersions } = require('./check-versions.js')

const ROOT_ALLOWED = [/^package\.json$/, /^README(\.md)?$/i, /^LICEN[CS]E(\.\w+)?$/i, /^index\.js$/, /^index\.d\.ts$/, /^dist\/[^/].*\.(?:js|mjs|d\.ts|d\.mts)$/, /^examples\/[^/]+\.js$/]
const ROOT_FORBIDDEN = [/\.node$/, /^src\//, /^__test__\//, /^target\//, /^npm\//, /^Cargo\./, /\.rs$/, /^benchmark\//, /^scripts\//, /^\.github\//, /^lib\//, /\.tsbuildinfo$/]

/** `npm pack --dry-run --json` for `dir`: { name, version, size, unpackedSize, files: [{path,size}] }. */
function packInfo(dir, env = process.env) {
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
  const out = execFileSync(npm, ['pack', '--dry-run', '--json', '--ignore-scripts'], {
    cwd: dir,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    encoding: 'utf8',
  })
  // npm may print notices before the JSON on stdout in some versions: take from the first '['.
  return JSON.parse(out.slice(out.indexOf('[')))[0]
}

/** Every relative file path the package.json `main`, `types` and `exports` name. */
function entryPoints(pkg) {
  const found = new Set()
  const walk = (v) => {
    if (typeof v === 'string') {
      if (v.startsWith('./') || !v.includes(':')) found.add(v.replace(/^\.\//, ''))
    } else if (v && typeof v === 'object') for (const x of Object.values(v)) walk(x)
  }
  if (pkg.main) walk(pkg.main)
  if (pkg.types) walk(pkg.types)
  if (pkg.typings) walk(pkg.typings)
  if (pkg.exports) walk(pkg.exports)
  return [...found].filter((p) => !p.includes('*'))
}

/** Problems with a root tarball listing (`files`: paths in the tarball) and its package.json. */
function checkRootFiles(files, pkg) {
  const problems = []
  for (const f of files) {
    if (ROOT_FORBIDDEN.some((r) => r.test(f))) problems.push(`root tarball must not contain ${f}`)
    else if (!ROOT_ALLOWED.some((r) => r.test(f))) problems.push(`root tarball contains ${f}, which is not index.js, index.d.ts, dist/, examples/*.js or package metadata`)
  }
  for (const need of ['package.json', 'index.js', 'index.d.ts']) {
    if (!files.includes(need)) problems.push(`root tarball lacks ${need}`)
  }
  for (const entry of entryPoints(pkg)) {
    if (!files.includes(entry)) problems.push(`root package.json points at ${entry} (main/types/exports), but the tarball has no such file`)
  }
  return problems
}

/** Problems with a platform tarball listing for platform `p` (from check-versions platforms()). */
function checkPlatformFiles(files, p, { requireBinary }) {
  const problems = []
  const allowed = new Set(['package.json', 'README.md', p.file])
  for (const f of files) if (!allowed.has(f) && !/^LICEN[CS]E(\.\w+)?$/i.test(f)) problems.push(`npm/${p.tag} tarball contains unexpected ${f}`)
  if (!files.includes(p.file) && requireBinary) problems.push(`npm/${p.tag} tarball lacks ${p.file} (run napi artifacts first)`)
  return problems
}

const kb = (n) => `${(n / 1000).toFixed(1)} kB`

function main(argv) {
  const root = path.resolve(__dirname, '..')
  const requireBinaries = argv.includes('--require-binaries')
  const problems = [...checkVersions(root)]
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'))

  const rootInfo = packInfo(root)
  const rootFiles = rootInfo.files.map((f) => f.path)
  console.log(`${rootInfo.filename}: ${rootInfo.files.length} files, ${kb(rootInfo.size)} packed, ${kb(rootInfo.unpackedSize)} unpacked`)
  for (const f of rootInfo.files) console.log(`  ${String(f.size).padStart(8)}  ${f.path}`)
  problems.push(...checkRootFiles(rootFiles, pkg))

  for (const p of platforms(root)) {
    if (!fs.existsSync(path.join(p.dir, 'package.json'))) continue // reported by checkVersions
    const info = packInfo(p.dir)
    const files = info.files.map((f) => f.path)
    const note = files.includes(p.file) ? '' : '  (no binary: built in the release workflow)'
    console.log(`${info.filename}: ${info.files.length} files, ${kb(info.size)} packed, ${kb(info.unpackedSize)} unpacked${note}`)
    for (const f of info.files) console.log(`  ${String(f.size).padStart(8)}  ${f.path}`)
    problems.push(...checkPlatformFiles(files, p, { requireBinary: requireBinaries }))
  }
  if (problems.length) {
    console.error(`pack-check: ${problems.length} problem(s):\n  - ${problems.join('\n  - ')}`)
    return 1
  }
  console.log('pack-check: ok')
  return 0
}

module.exports = { packInfo, entryPoints, checkRootFiles, checkPlatformFiles, ROOT_ALLOWED, ROOT_FORBIDDEN }

if (require.main === module) process.exitCode = main(process.argv.slice(2))
