// The backend serving every socket of this process: the native binding, loaded through the
// generated platform loader (../index.js, the same relative path from lib/ and from dist/), or
// the node:dgram fallback (lib/fallback/) with the same interface.
//
// UDP_MMSG_BACKEND chooses: `native` loads the binary or throws ERR_UDP_MMSG_NATIVE_LOAD (the
// loader's "Cannot find native binding" rethrown naming the platform, the package it looked
// for and how to build from source; lib/native-error.ts); `fallback` uses node:dgram without
// trying the binary; unset (or empty), the binary when it loads, otherwise the fallback with
// one warning (code UDP_MMSG_FALLBACK) carrying that same explanation.

import * as errors from './errors.js'
import { EVENT_BATCH as FB_BATCH, EVENT_ERROR as FB_ERROR, EVENT_WRITABLE as FB_WRITABLE, FALLBACK_LAYOUT } from './fallback/layout.js'
import { FallbackSocket } from './fallback/socket.js'
import { nativeLoadError } from './native-error.js'

type Binding = typeof import('../index.js')

/** The environment variable that forces a backend. */
export const BACKEND_ENV = 'UDP_MMSG_BACKEND'
/** Warning code of the one warning emitted when the fallback replaces a binary that did not load. */
export const FALLBACK_WARNING = 'UDP_MMSG_FALLBACK'

/** The part of the binding the JS layer uses; the fallback provides the same. */
interface Backend {
  NativeSocket: Binding['NativeSocket']
  batchLayout: Binding['batchLayout']
  EVENT_BATCH: number
  EVENT_ERROR: number
  EVENT_WRITABLE: number
}

const fallback: Backend = {
  NativeSocket: FallbackSocket,
  batchLayout: () => FALLBACK_LAYOUT,
  EVENT_BATCH: FB_BATCH,
  EVENT_ERROR: FB_ERROR,
  EVENT_WRITABLE: FB_WRITABLE,
}

function loadNative(): Binding {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('../index.js') as Binding
  } catch (err) {
    throw nativeLoadError(err)
  }
}

/** The warning text: why the binary did not load, what the fallback lacks, how to get it. */
export function fallbackWarning(loadError: Error): string {
  return (
    `udp-mmsg: using the node:dgram fallback backend (one system call per datagram; no GSO, GRO, pktinfo, timestamps, ` +
    `receive TOS or kernel drop counter: see docs/fallback.md), because the native binary did not load.\n${loadError.message}\n` +
    `Set ${BACKEND_ENV}=fallback to choose the fallback without this warning, or ${BACKEND_ENV}=native to make a missing binary an error.`
  )
}

function choose(): { backend: 'native' | 'fallback'; binding: Backend } {
  const forced = process.env[BACKEND_ENV]
  if (forced === 'native') return { backend: 'native', binding: loadNative() }
  if (forced === 'fallback') return { backend: 'fallback', binding: fallback }
  if (forced !== undefined && forced !== '') {
    throw errors.invalidArgValue(`process.env.${BACKEND_ENV}`, forced, "must be 'native', 'fallback' or unset")
  }
  try {
    return { backend: 'native', binding: loadNative() }
  } catch (err) {
    // Once per process, even if a second copy of this module is loaded (the ESM entry shares
    // this one, but a bundle or a second install would not).
    const key = Symbol.for('udp-mmsg.fallbackWarned')
    const g = globalThis as Record<symbol, unknown>
    if (!g[key]) {
      g[key] = true
      process.emitWarning(fallbackWarning(err as Error), { code: FALLBACK_WARNING })
    }
    return { backend: 'fallback', binding: fallback }
  }
}

const chosen = choose()

/** Which backend serves every socket of this process. */
export const BACKEND: 'native' | 'fallback' = chosen.backend
/** The native socket class (typed by the napi-generated ../index.d.ts), or the fallback's. */
export const NativeSocket = chosen.binding.NativeSocket
/** The batch metadata layout, defined once in src/batch.rs (read once at load). */
export const BATCH_LAYOUT = chosen.binding.batchLayout()
/** The family (4 or 6) of an open UDP socket fd, checked as adopting it would be (src/adopt.rs); undefined on the fallback backend. */
export const udpSocketFamily: ((fd: number) => number) | undefined = (chosen.binding as { udpSocketFamily?: (fd: number) => number })
  .udpSocketFamily
/** `NativeEvent.kind` values: a received batch, a receive error, room in the send buffer. */
export const EVENT_BATCH = chosen.binding.EVENT_BATCH
export const EVENT_ERROR = chosen.binding.EVENT_ERROR
export const EVENT_WRITABLE = chosen.binding.EVENT_WRITABLE
export type NativeSocket = import('../index.js').NativeSocket
export type {
  AddressInfo,
  BatchLayout,
  BufferSizes,
  Capabilities,
  NativeEvent,
  NativeOptions,
  NativeSendResult,
  NativeStats,
} from '../index.js'
