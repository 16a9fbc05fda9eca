// The error udp-mmsg throws when no native binary loads: for real (the package loaded in a child
// process whose NAPI_RS_NATIVE_LIBRARY_PATH names a missing file), then for every kind of
// platform (probed, not real) through the compiled dist/native-error.js.
import test from 'ava'
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'

interface Probe {
  platform?: string
  arch?: string
  musl?: boolean
  installed?: (name: string) => boolean
  override?: string
  pkg?: Record<string, unknown>
  loaderDir?: string
  cwd?: string
}
interface NativeLoadError extends Error {
  code: string
  platform: string
  packageName: string
  cause: unknown
}
interface NativeErrorModule {
  nativeLoadError(cause: unknown, probe?: Probe): NativeLoadError
  PREBUILT: Record<string, string>
  RUST_VERSION: string
  CODE: string
}

const ROOT = path.resolve(__dirname, '..')
const mod = require(path.join(ROOT, 'dist', 'native-error.js')) as NativeErrorModule
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  name: string
  version: string
  napi: { targets: string[] }
}
const rustVersion = /^rust-version\s*=\s*"([^"]+)"/m.exec(fs.readFileSync(path.join(ROOT, 'Cargo.toml'), 'utf8'))?.[1]

/** What the generated loader throws when the platform package is missing. */
function loaderError(tag: string): Error {
  const inner = new Error(`Cannot find module 'udp-mmsg-${tag}'`)
  const outer = new Error('Cannot find native binding. npm has a bug related to optional dependencies')
  ;(outer as { cause?: unknown }).cause = inner
  return outer
}

test('loading the package when its binary cannot load throws this error (through dist/native.js), with the loader error as cause', (t) => {
  const missing = path.join(ROOT, 'target', 'no-such-dir', 'udp-mmsg.node')
  const script = `
    try {
      require(${JSON.stringify(path.join(ROOT, 'dist', 'index.js'))})
      console.log(JSON.stringify({ loaded: true }))
    } catch (e) {
      console.log(JSON.stringify({ code: e.code, platform: e.platform, packageName: e.packageName, message: e.message, cause: e.cause && e.cause.message }))
    }`
  const r = spawnSync(process.execPath, ['-e', script], {
    env: { ...process.env, NAPI_RS_NATIVE_LIBRARY_PATH: missing, UDP_MMSG_BACKEND: 'native' },
    encoding: 'utf8',
    timeout: 60_000,
  })
  t.is(r.status, 0, r.stderr)
  const e = JSON.parse(r.stdout.trim())
  t.is(e.loaded, undefined, 'the package did not load')
  t.is(e.code, 'ERR_UDP_MMSG_NATIVE_LOAD')
  t.is(e.code, mod.CODE)
  const musl = (() => {
    try {
      return fs.readFileSync('/usr/bin/ldd', 'utf8').includes('musl')
    } catch {
      return false
    }
  })()
  const tag = process.platform === 'linux' ? `linux-${process.arch}-${musl ? 'musl' : 'gnu'}` : `${process.platform}-${process.arch}`
  t.is(e.platform, tag)
  t.is(e.packageName, `udp-mmsg-${tag}`)
  t.true(e.message.includes(`NAPI_RS_NATIVE_LIBRARY_PATH is set to ${missing}`), e.message)
  t.true(e.message.includes(`Cannot find module '${missing}'`), 'names why that file failed')
  t.true(e.message.includes(`Rust >= ${rustVersion}`))
  t.regex(e.cause, /Cannot find native binding/, "the generated loader's error is kept as cause")
})

test('Rust version in the message matches Cargo.toml rust-version', (t) => {
  t.truthy(rustVersion, 'Cargo.toml has rust-version')
  t.is(mod.RUST_VERSION, rustVersion as string)
})

test('prebuilt platform list matches package.json napi.targets', (t) => {
  t.deepEqual(Object.values(mod.PREBUILT).sort(), [...pkg.napi.targets].sort())
})

test('supported platform, package not installed: names platform, package, cause and the source build', (t) => {
  const cause = loaderError('linux-x64-gnu')
  const e = mod.nativeLoadError(cause, { pkg, platform: 'linux', arch: 'x64', musl: false, installed: () => false, override: '' })
  t.is(e.code, mod.CODE)
  t.is(e.platform, 'linux-x64-gnu')
  t.is(e.packageName, 'udp-mmsg-linux-x64-gnu')
  t.is(e.cause, cause)
  t.true(e.message.includes(`udp-mmsg-linux-x64-gnu@${pkg.version}`))
  t.regex(e.message, /not installed/)
  t.regex(e.message, /--omit=optional/)
  t.true(e.message.includes('npm run build'))
  t.true(e.message.includes(`Rust >= ${rustVersion}`))
})

test('musl Linux names the musl package', (t) => {
  const e = mod.nativeLoadError(loaderError('linux-arm64-musl'), { pkg, platform: 'linux', arch: 'arm64', musl: true, installed: () => false, override: '' })
  t.is(e.platform, 'linux-arm64-musl')
  t.is(e.packageName, 'udp-mmsg-linux-arm64-musl')
})

test('package installed but its binary fails to load: shows the loader failure', (t) => {
  const inner = new Error("/lib/x86_64-linux-gnu/libc.so.6: version `GLIBC_2.17' not found (required by /app/node_modules/udp-mmsg-linux-x64-gnu/udp-mmsg.linux-x64-gnu.node)")
  const outer = new Error('Cannot find native binding.')
  ;(outer as { cause?: unknown }).cause = inner
  const e = mod.nativeLoadError(outer, { pkg, platform: 'linux', arch: 'x64', musl: false, installed: () => true, override: '' })
  t.regex(e.message, /installed but its binary failed to load/)
  t.true(e.message.includes('GLIBC_2.17'))
  t.regex(e.message, /glibc 2\.17 or newer/)
})

test('Windows: says it is not supported and why, names the package the loader looked for', (t) => {
  const e = mod.nativeLoadError(loaderError('win32-x64-msvc'), { pkg, platform: 'win32', arch: 'x64', override: '' })
  t.is(e.platform, 'win32-x64-msvc')
  t.true(e.message.includes('udp-mmsg-win32-x64-msvc'))
  t.regex(e.message, /Windows is not supported/)
  t.regex(e.message, /recvmsg/)
  t.false(e.message.includes('npm run build'), 'no source build offered where it cannot work')
})

test('other Unix without a prebuilt binary: lists the prebuilt platforms and the source build', (t) => {
  const e = mod.nativeLoadError(loaderError('freebsd-x64'), { pkg, platform: 'freebsd', arch: 'x64', override: '' })
  t.is(e.platform, 'freebsd-x64')
  t.regex(e.message, /No prebuilt binary exists for freebsd-x64/)
  for (const tag of Object.keys(mod.PREBUILT)) t.true(e.message.includes(tag), tag)
  t.true(e.message.includes('npm run build'))
})

test('NAPI_RS_NATIVE_LIBRARY_PATH set: reports that file failing', (t) => {
  const inner = new Error("Cannot find module '/nowhere/udp-mmsg.node'")
  const outer = new Error('Cannot find native binding.')
  ;(outer as { cause?: unknown }).cause = inner
  const e = mod.nativeLoadError(outer, { pkg, platform: 'darwin', arch: 'arm64', override: '/nowhere/udp-mmsg.node', installed: () => true })
  t.regex(e.message, /NAPI_RS_NATIVE_LIBRARY_PATH is set to \/nowhere\/udp-mmsg\.node/)
  t.true(e.message.includes("Cannot find module '/nowhere/udp-mmsg.node'"))
})

test('a relative NAPI_RS_NATIVE_LIBRARY_PATH, for real: names the path the loader tried (against the package, not the cwd) and keeps the Cannot find module cause', (t) => {
  const cwd = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'udp-mmsg-relpath-'))
  t.teardown(() => fs.rmSync(cwd, { recursive: true, force: true }))
  const script = `
    try {
      require(${JSON.stringify(path.join(ROOT, 'dist', 'index.js'))})
      console.log(JSON.stringify({ loaded: true }))
    } catch (e) {
      console.log(JSON.stringify({ code: e.code, message: e.message }))
    }`
  const r = spawnSync(process.execPath, ['-e', script], {
    cwd,
    env: { ...process.env, NAPI_RS_NATIVE_LIBRARY_PATH: './no-such-binary.node', UDP_MMSG_BACKEND: 'native' },
    encoding: 'utf8',
    timeout: 60_000,
  })
  t.is(r.status, 0, r.stderr)
  const e = JSON.parse(r.stdout.trim())
  t.is(e.code, 'ERR_UDP_MMSG_NATIVE_LOAD')
  t.true(e.message.includes("Cannot find module './no-such-binary.node'"), e.message)
  t.true(e.message.includes(`it tried ${path.join(ROOT, 'no-such-binary.node')}`), e.message)
  t.true(e.message.includes(`not the current directory`), e.message)
  t.true(e.message.includes(path.join(cwd, 'no-such-binary.node')), 'offers the absolute form from the cwd')
})

test('NAPI_RS_NATIVE_LIBRARY_PATH forms: relative against the loader directory, bare names as packages, absolute as is; the real cause is kept', (t) => {
  const cause = (m: string) => {
    const outer = new Error('Cannot find native binding.')
    ;(outer as { cause?: unknown }).cause = new Error(`${m}\nRequire stack:\n- /app/node_modules/udp-mmsg/index.js`)
    return outer
  }
  const base = { pkg, platform: 'linux', arch: 'x64', musl: false, installed: () => true, loaderDir: '/app/node_modules/udp-mmsg', cwd: '/app' }
  const rel = mod.nativeLoadError(cause("Cannot find module '../x/u.node'"), { ...base, override: '../x/u.node' })
  t.true(rel.message.includes("loading it failed: Cannot find module '../x/u.node'\n"), rel.message)
  t.true(rel.message.includes('it tried /app/node_modules/x/u.node'), rel.message)
  t.true(rel.message.includes('(/x/u.node, if the file is there)'), rel.message)
  t.false(rel.message.includes('Require stack'), 'one line of the cause')
  const bare = mod.nativeLoadError(cause("Cannot find module 'u.node'"), { ...base, override: 'u.node' })
  t.regex(bare.message, /looked for a package named u\.node from \/app\/node_modules\/udp-mmsg/)
  const abs = mod.nativeLoadError(cause('/opt/u.node: invalid ELF header'), { ...base, override: '/opt/u.node' })
  t.true(abs.message.includes('loading it failed: /opt/u.node: invalid ELF header'))
  t.true(abs.message.includes('It tried /opt/u.node.'))
})
