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
import {
  EVENT_BATCH as FB_BATCH,
  EVENT_BATCH_COMPACT as FB_BATCH_COMPACT,
  EVENT_BATCH_COMPACT_LANDED as FB_BATCH_COMPACT_LANDED,
  EVENT_BATCH_LANDED as FB_BATCH_LANDED,
  EVENT_ERROR as FB_ERROR,
  EVENT_WRITABLE as FB_WRITABLE,
  FALLBACK_LAYOUT,
} from './fallback/layout.js'
import { FallbackSocket } from './fallback/socket.js'
import { keyedSockets } from './keyed-socket.js'
import type { KeyedFunctions, OpenSocket } from './keyed-socket.js'
import { nativeLoadError } from './native-error.js'
import type { NativeOptions } from '../index.js'

type Binding = typeof import('../index.js')

/** The environment variable that forces a backend. */
export const BACKEND_ENV = 'UDP_MMSG_BACKEND'
/** Warning code of the one warning emitted when the fallback replaces a binary that did not load. */
export const FALLBACK_WARNING = 'UDP_MMSG_FALLBACK'

/** The part of the binding the JS layer uses; the fallback provides the same. */
interface Backend {
  /** Opens a socket from normalized options (the binary takes them packed: see `openNative`). */
  open: (options: NativeOptions, dispatch: Dispatch) => NativeSocket
  batchLayout: Binding['batchLayout']
  EVENT_BATCH: number
  EVENT_BATCH_COMPACT: number
  EVENT_BATCH_LANDED: number
  EVENT_BATCH_COMPACT_LANDED: number
  EVENT_ERROR: number
  EVENT_WRITABLE: number
}

const fallback: Backend = {
  open: (options, dispatch) => new FallbackSocket(options, dispatch) as unknown as NativeSocket,
  batchLayout: () => FALLBACK_LAYOUT,
  EVENT_BATCH: FB_BATCH,
  EVENT_BATCH_COMPACT: FB_BATCH_COMPACT,
  EVENT_BATCH_LANDED: FB_BATCH_LANDED,
  EVENT_BATCH_COMPACT_LANDED: FB_BATCH_COMPACT_LANDED,
  EVENT_ERROR: FB_ERROR,
  EVENT_WRITABLE: FB_WRITABLE,
}

function loadNative(): Backend {
  let binding: Binding
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    binding = require('../index.js') as Binding
  } catch (err) {
    throw nativeLoadError(err)
  }
  return { ...binding, open: openNative(binding) }
}

/**
 * The binary opens a socket with `openSocket` (src/native/keyed.rs), which takes the options
 * packed (src/native/packed_options.rs): the numbers and flags in one Float64Array in the order
 * `optionSlots()` gives (a flag as 1 or 0, an absent value as NaN), the strings and the
 * steering object beside it. Reading them as named properties of an object cost one N-API call
 * and one property-name lookup each, the largest part of opening a socket. It returns the
 * socket's key, which `keyedSockets` wraps (lib/keyed-socket.ts) and `sendOneFast` takes.
 */
function openNative(binding: Binding): Backend['open'] {
  if (binding.optionSlots().join() !== PACK_ORDER.join()) {
    throw new Error(
      `udp-mmsg: the binary's option slots (${binding.optionSlots().join()}) are not the ones this JS packs: reinstall the package`,
    )
  }
  const plain = binding as unknown as Partial<KeyedFunctions> & { openSocket?: OpenSocket }
  const { openSocket: open, closeSocket, setReading } = plain
  if (typeof open !== 'function' || typeof closeSocket !== 'function' || typeof setReading !== 'function') {
    throw new Error('udp-mmsg: the binary lacks openSocket/closeSocket/setReading (an older build): reinstall the package')
  }
  const wrap = keyedSockets(binding, { closeSocket, setReading })
  // One scratch array: openSocket reads it synchronously, before any other JS can run.
  const packed = new Float64Array(PACK_ORDER.length)
  return (o, dispatch) => {
    packInto(packed, o)
    const key = open(o.address, packed, o.connectAddress ?? null, o.steering ?? null, dispatch)
    openedKey = key
    return wrap(key)
  }
}

let openedKey = -1

/** @internal The `sendOneFast` key of the socket the last `openSocket` call made (read right after it; -1 when there is none, as on the fallback backend). */
export function takeSendKey(): number {
  const k = openedKey
  openedKey = -1
  return k
}

/** @internal The slots `packInto` writes, in order; checked against the binary's `optionSlots()` at load. */
export const PACK_ORDER = [
  'port',
  'ipv6',
  'ipv6Only',
  'reuseAddr',
  'reusePort',
  'broadcast',
  'recvBufferSize',
  'sendBufferSize',
  'forceBufferSize',
  'ttl',
  'batchSize',
  'maxDatagramSize',
  'maxPendingBatches',
  'coalesceMicros',
  'connectPort',
  'portable',
  'gso',
  'gro',
  'pktinfo',
  'timestamps',
  'recvTos',
  'tos',
  'fd',
  'reading',
] as const satisfies ReadonlyArray<keyof NativeOptions>

const num = (v: number | undefined | null): number => (v === undefined || v === null ? NaN : v)
const flag = (v: boolean | undefined | null): number => (v === undefined || v === null ? NaN : v ? 1 : 0)

/** @internal Writes `o` into `a` in PACK_ORDER, field by field (a loop over the names was a megamorphic
 * keyed load per slot, a visible part of opening a socket). */
export function packInto(a: Float64Array, o: NativeOptions): void {
  a[0] = o.port
  a[1] = flag(o.ipv6)
  a[2] = flag(o.ipv6Only)
  a[3] = flag(o.reuseAddr)
  a[4] = flag(o.reusePort)
  a[5] = flag(o.broadcast)
  a[6] = num(o.recvBufferSize)
  a[7] = num(o.sendBufferSize)
  a[8] = flag(o.forceBufferSize)
  a[9] = num(o.ttl)
  a[10] = o.batchSize
  a[11] = o.maxDatagramSize
  a[12] = o.maxPendingBatches
  a[13] = o.coalesceMicros
  a[14] = num(o.connectPort)
  a[15] = flag(o.portable)
  a[16] = o.gso
  a[17] = flag(o.gro)
  a[18] = flag(o.pktinfo)
  a[19] = flag(o.timestamps)
  a[20] = flag(o.recvTos)
  a[21] = num(o.tos)
  a[22] = num(o.fd)
  a[23] = flag(o.reading)
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

/** One socket of the chosen backend. */
export type NativeSocket = import('../index.js').NativeSocket
/** Which backend serves every socket of this process. */
export const BACKEND: 'native' | 'fallback' = chosen.backend
/** Opens a native socket (typed by the napi-generated ../index.d.ts), or the fallback's. */
export const openSocket: Backend['open'] = chosen.binding.open
/** The batch metadata layout, defined once in src/batch.rs (read once at load). */
export const BATCH_LAYOUT = chosen.binding.batchLayout()
/** The family (4 or 6) of an open UDP socket fd, checked as adopting it would be (src/adopt.rs); undefined on the fallback backend. */
export const udpSocketFamily: ((fd: number) => number) | undefined = (chosen.binding as { udpSocketFamily?: (fd: number) => number })
  .udpSocketFamily
type SendOneFast = (key: number, data: Uint8Array, address: string | null, port: number) => number
/**
 * `sendOneFast(key, data, address, port)` (src/native/send_fast.rs): `sendOne` on the socket
 * whose `sendKey()` is `key` (see `takeSendKey`), as a plain function rather than a class
 * method (~3 µs less per call); undefined on the fallback backend. Not in the generated
 * typings: the binary adds it to its exports at load.
 */
export const sendOneFast: SendOneFast | undefined = (chosen.binding as { sendOneFast?: SendOneFast }).sendOneFast
/** Dispatch `kind` values: a received batch (full or compact metadata layout), a receive error, room in the send buffer. */
export const EVENT_BATCH = chosen.binding.EVENT_BATCH
export const EVENT_BATCH_COMPACT = chosen.binding.EVENT_BATCH_COMPACT
/** A small batch in the environment's landing buffer (src/native/landing.rs): `data` is that buffer, the batch its first `errno` bytes, to be copied out at once. */
export const EVENT_BATCH_LANDED = chosen.binding.EVENT_BATCH_LANDED
export const EVENT_BATCH_COMPACT_LANDED = chosen.binding.EVENT_BATCH_COMPACT_LANDED
export const EVENT_ERROR = chosen.binding.EVENT_ERROR
export const EVENT_WRITABLE = chosen.binding.EVENT_WRITABLE
/**
 * The dispatch callback a native socket calls once per event, with positional arguments (see
 * src/native/dispatch.rs `event_args`): `data`/`count`/`kernelDrops` for a batch, `errno` and
 * `syscall` for an error.
 */
export type Dispatch = (kind: number, data: Uint8Array | null, count: number, kernelDrops: number, errno?: number, syscall?: string) => void
export type { AddressInfo, BatchLayout, BufferSizes, Capabilities, NativeOptions, NativeSendError, NativeStats } from '../index.js'
