// Builds the error udp-mmsg throws when its native binary cannot be loaded: names the
// platform, the package the loader looked for, why it is missing, and how to build from
// source. Pure apart from the default probes, so it can be tested for any platform.

import { readFileSync } from 'node:fs'
import * as path from 'node:path'

/** Platforms with a prebuilt binary package (`udp-mmsg-<tag>`), and their Rust targets. */
export const PREBUILT: Record<string, string> = {
  'linux-x64-gnu': 'x86_64-unknown-linux-gnu',
  'linux-arm64-gnu': 'aarch64-unknown-linux-gnu',
  'linux-x64-musl': 'x86_64-unknown-linux-musl',
  'linux-arm64-musl': 'aarch64-unknown-linux-musl',
  'darwin-x64': 'x86_64-apple-darwin',
  'darwin-arm64': 'aarch64-apple-darwin',
}
export const RUST_VERSION = '1.88'
export const CODE = 'ERR_UDP_MMSG_NATIVE_LOAD'

function isMusl(): boolean {
  try {
    return readFileSync('/usr/bin/ldd', 'utf8').includes('musl')
  } catch {}
  try {
    const report = process.report && (process.report.getReport() as { header?: { glibcVersionRuntime?: string } })
    return Boolean(report && report.header && !report.header.glibcVersionRuntime)
  } catch {
    return false
  }
}

/** The loader's name for a platform: linux-x64-gnu, darwin-arm64, win32-x64-msvc, ... */
export function platformTag(platform: string, arch: string, musl: boolean): string {
  if (platform === 'linux') return `linux-${arch}-${musl ? 'musl' : 'gnu'}`
  if (platform === 'win32') return `win32-${arch}-msvc`
  return `${platform}-${arch}`
}

function packageInstalled(name: string): boolean {
  try {
    require.resolve(`${name}/package.json`)
    return true
  } catch {
    return false
  }
}

/** The messages of `err` and its `cause` chain, outermost first. */
function causeMessages(err: unknown): string[] {
  const out: string[] = []
  for (let e = err as { message?: unknown; cause?: unknown } | undefined, i = 0; e && i < 32; e = e.cause as typeof e, i++)
    out.push(String((e && e.message) || e))
  return out
}

function repoUrl(pkg: PackageInfo): string {
  const r = pkg.repository
  const url = typeof r === 'string' ? r : r && r.url
  return url ? url.replace(/^git\+/, '').replace(/\.git$/, '') : 'the udp-mmsg repository'
}

/** The parts of package.json the message uses. */
export interface PackageInfo {
  name: string
  version: string
  repository?: string | { url?: string }
}

/** What `nativeLoadError` otherwise reads from this process (for tests of other platforms). */
export interface Probe {
  platform?: string
  arch?: string
  musl?: boolean
  installed?: (name: string) => boolean
  override?: string
  pkg?: PackageInfo
  /** The directory of the generated loader (`index.js`): the package root. */
  loaderDir?: string
  /** The current directory (for the absolute form of a relative path). */
  cwd?: string
}

/**
 * Where `require(override)` in the loader at `loaderDir` looks: an absolute path as is, a
 * relative one (`./`, `../`) against the loader's directory (not the current directory), and
 * a bare name as a package resolved from there.
 */
export function overrideTarget(override: string, loaderDir: string): { tried: string; relative: boolean; bare: boolean } {
  if (path.isAbsolute(override)) return { tried: override, relative: false, bare: false }
  if (/^\.\.?([\\/]|$)/.test(override)) return { tried: path.resolve(loaderDir, override), relative: true, bare: false }
  return { tried: override, relative: false, bare: true }
}

/** The first line of the cause-chain message that explains why `override` failed to load. */
function overrideFailure(cause: unknown, override: string): string {
  const all = causeMessages(cause)
  const mentions = all.find((m) => m.includes(override))
  const own = mentions ?? all.find((m) => !m.startsWith('Cannot find native binding')) ?? all[0] ?? String(cause)
  return own.split('\n')[0]
}

/** The error thrown when the native binary cannot be loaded. */
export interface NativeLoadError extends Error {
  /** `'ERR_UDP_MMSG_NATIVE_LOAD'`. */
  code: typeof CODE
  /** The loader's platform tag (`linux-x64-gnu`, ...). */
  platform: string
  /** The platform package the loader looked for. */
  packageName: string
  /** The loader's own error. */
  cause: unknown
}

/**
 * The error to throw for the loader's error `cause`. `probe` overrides what is otherwise
 * read from this process: { platform, arch, musl, installed(name), override, pkg }.
 */
export function nativeLoadError(cause: unknown, probe: Probe = {}): NativeLoadError {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const pkg: PackageInfo = probe.pkg ?? (require('../package.json') as PackageInfo)
  const platform = probe.platform ?? process.platform
  const arch = probe.arch ?? process.arch
  const musl = probe.musl ?? (platform === 'linux' && isMusl())
  const installed = probe.installed ?? packageInstalled
  const tag = platformTag(platform, arch, musl)
  const pkgName = `${pkg.name}-${tag}`
  const wanted = `${pkgName}@${pkg.version}`
  const override = probe.override ?? process.env.NAPI_RS_NATIVE_LIBRARY_PATH
  const lines: string[] = [`udp-mmsg: cannot load its native binary for this platform (${tag}); it looked for the package ${wanted}.`]

  if (override) {
    const loaderDir = probe.loaderDir ?? path.resolve(__dirname, '..')
    const where = overrideTarget(override, loaderDir)
    lines.push(`NAPI_RS_NATIVE_LIBRARY_PATH is set to ${override}, and loading it failed: ${overrideFailure(cause, override)}`)
    if (where.relative) {
      const fromCwd = path.resolve(probe.cwd ?? process.cwd(), override)
      lines.push(
        `The loader require()s it from ${path.join(loaderDir, 'index.js')}, so a relative path is resolved against ${loaderDir}, not the current directory: it tried ${where.tried}. Give an absolute path${fromCwd === where.tried ? '' : ` (${fromCwd}, if the file is there)`}.`,
      )
    } else if (where.bare) {
      lines.push(
        `It is not a path (no leading /, ./ or ../), so require() looked for a package named ${override} from ${loaderDir}. Give an absolute path to the .node file.`,
      )
    } else {
      lines.push(`It tried ${where.tried}.`)
    }
  } else if (platform === 'win32') {
    lines.push(
      'Windows is not supported: the native code uses Unix socket APIs (recvmsg/recvmmsg, sendmsg/sendmmsg, libuv poll handles). Use node:dgram on Windows, or run under WSL 2 (Linux), where the linux package installs.',
    )
  } else if (!PREBUILT[tag]) {
    lines.push(`No prebuilt binary exists for ${tag}; prebuilt packages exist for ${Object.keys(PREBUILT).join(', ')}.`)
  } else if (!installed(pkgName)) {
    lines.push(
      `${pkgName} is an optional dependency of udp-mmsg and it is not installed. npm skips optional dependencies under --omit=optional (--no-optional), and a package-lock.json written on another platform can leave it out (https://github.com/npm/cli/issues/4828): remove node_modules and package-lock.json, then run npm install again, with optional dependencies.`,
    )
  } else {
    const why =
      causeMessages(cause).find((m) => m.includes(tag) && !/Cannot find module/.test(m)) ||
      causeMessages(cause).find((m) => !/^Cannot find (native binding|module)/.test(m)) ||
      causeMessages(cause)[0]
    lines.push(`${pkgName} is installed but its binary failed to load: ${why}`)
    if (/GLIBC_/.test(why)) lines.push('The prebuilt linux-*-gnu binaries need glibc 2.17 or newer; on an older system, build from source.')
  }

  if (platform !== 'win32') {
    lines.push(
      `To build from source (needs Rust >= ${RUST_VERSION} from https://rustup.rs and a C linker): git clone ${repoUrl(pkg)} && cd udp-mmsg && npm install && npm run build. ` +
        `That writes udp-mmsg.${tag}.node; point NAPI_RS_NATIVE_LIBRARY_PATH at its absolute path, or npm install that directory in place of the registry package.`,
    )
  }
  const err = new Error(lines.join('\n')) as NativeLoadError
  err.code = CODE
  err.platform = tag
  err.packageName = pkgName
  err.cause = cause
  return err
}
