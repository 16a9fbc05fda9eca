// Which backend the suite runs on (UDP_MMSG_BACKEND picks it; `npm test` runs the core specs on
// both) and what it can do, read from capabilities() of a probe socket: tests of a feature the
// backend lacks are declared with `needs(...)`, which skips them visibly (ava lists them as
// skipped, and this module says once on stderr which features are missing and why).
import test from 'ava'
import { UdpSocket } from '../lib/index.js'
import type { Capabilities } from '../lib/index.js'

function probeWith(options: Record<string, unknown>): Capabilities {
  const s = UdpSocket.bindSync({ address: '127.0.0.1', ...options })
  try {
    return s.capabilities()
  } finally {
    s.close()
  }
}

/** capabilities() report what a socket got (reusePort, pktinfo, ... only when asked for), so
 * the probe asks for every optional feature; a backend that refuses them (the fallback) is
 * probed with the defaults. */
function probe(): Capabilities {
  try {
    return probeWith({ reusePort: true, pktinfo: true, timestamps: true, recvTos: true })
  } catch {
    return probeWith({})
  }
}

/** capabilities() of an IPv4 socket on this backend, with every optional feature asked for. */
export const CAPS: Capabilities = probe()
/** The backend serving this test run. */
export const BACKEND = CAPS.backend
/** True on the native backend (its I/O machinery is what some tests observe). */
export const NATIVE = BACKEND === 'native'

/** A feature a test may need: a capability flag, or `native` for the native backend itself. */
export type Feature = 'native' | Exclude<keyof Capabilities, 'backend'>

const said = new Set<string>()

/** The features of `features` this backend lacks. */
export function missing(...features: Feature[]): Feature[] {
  return features.filter((f) => (f === 'native' ? !NATIVE : !CAPS[f]))
}

/**
 * `test` when the backend has every feature, otherwise `test.skip` (and one line on stderr
 * naming the missing features). Usage: `needs('dropCounter')('kernelDrops counts ...', fn)`;
 * `needs.serial(...)` for serial tests.
 */
export function needs(...features: Feature[]): typeof test {
  const lack = missing(...features)
  if (lack.length === 0) return test
  const key = lack.join(',')
  if (!said.has(key)) {
    said.add(key)
    process.stderr.write(`[${BACKEND} backend] skipping tests that need: ${key} (capabilities() reports it unavailable)\n`)
  }
  return test.skip as unknown as typeof test
}

/** `test.serial` or a skip, as {@link needs}. */
needs.serial = (...features: Feature[]): typeof test.serial => {
  if (missing(...features).length === 0) return test.serial
  needs(...features)
  return test.skip as unknown as typeof test.serial
}
