// UdpSocket's send side: messages are packed (pack.ts) and handed to sendmmsg on the calling
// thread without blocking; when the send buffer is full, or a huge batch used up its slice of
// the event-loop turn, the rest waits in a queue for a writable event (the native side polls
// the fd for writability on the event loop) or the next turn. Functions over the socket's (internal) send state.
//
// Native-interface seam: `nativeSend` is the only call of the native send, and `messageError`
// (via errors.nativeAddressRefusal) the only decoding of its address refusals.

import * as errors from './errors.js'
import { sendOneFast } from './native.js'
import { detach, pack } from './pack.js'
import type { Packed } from './pack.js'
import { cursor, sliceOf } from './slice.js'
import type { Cursor, Slice } from './slice.js'
import type { UdpSocket } from './socket.js'
import { checkOptions, checkSignal } from './validate.js'

/** Datagrams sendBatch hands to the kernel per event-loop turn, so one huge batch does not
 * starve receives and timers in the same process (trySendBatch sends all it can at once). */
export const SEND_SLICE = 4096

const NO_BYTES = Buffer.alloc(0)
const ONE_EMPTY = new Uint32Array(1)

/** A sendBatch call waiting for room in the send buffer (or its next slice). */
export interface SendOp {
  p: Packed
  cur: Cursor
  start: number
  resolve(sent: number): void
  reject(err: unknown): void
  signal: AbortSignal | undefined
  onAbort: (() => void) | null
}

type Locate = (kind: 'destination' | 'source', k: number) => [number, string | undefined]

function nativeSend(s: UdpSocket, v: Slice | Packed, start: number, max: number): number {
  const native = s._native
  // One datagram of one part to one destination (or the connected peer), nothing per
  // datagram: the call a server answering one query at a time makes, with 3 arguments for
  // the native layer to convert instead of 11 (through `sendOneFast` where the binary has it
  // and gave the socket a key; otherwise `sendOne`).
  if (v.count === 1 && start === 0 && max >= 1 && v.parts === null && v.srcIdx === null && v.tos === null && v.addrs.length <= 1) {
    const address = v.addrs.length === 0 ? null : v.addrs[0]
    const port = v.addrs.length === 0 ? 0 : v.ports[0]
    const key = s._sendKey
    if (key >= 0 && sendOneFast !== undefined) return sendOneFast(key, v.data, address, port)
    return native.sendOne(v.data, address, port)
  }
  return native.send(v.data, v.lens, v.parts, v.dest, v.addrs, v.ports, start, max, v.srcIdx, v.sources, v.tos)
}

/**
 * The native layer rejects an address it cannot use (an unknown IPv6 scope) naming the entry of
 * the destination or source table it was given; `locate(kind, k)` turns that into
 * `[message index, address]` so the error names the first message that used it. The error
 * carries `index` (that message) and `sent` (datagrams of the batch already handed to the
 * kernel: 0 unless the batch was being sent in slices), like a send's errno errors.
 */
function messageError(e: unknown, locate: Locate, sent: number): Error | null {
  const r = errors.nativeAddressRefusal(e)
  if (r === null) return null
  const [i, value] = locate(r.kind, r.entry)
  const name = r.kind === 'destination' ? 'address' : 'sourceAddress'
  const err = errors.invalidArgValue(`messages[${Math.max(i, 0)}].${name}`, value, r.reason)
  return Object.assign(err, { sent, index: Math.max(i, 0) })
}

/** Locates table entries of a packed batch (or slice) `v` whose datagram 0 is datagram `base`. */
function locateIn(v: Slice | Packed, base: number): Locate {
  return (kind, k) => {
    if (kind === 'destination') return [base + (v.dest === null ? 0 : v.dest.indexOf(k)), v.addrs[k]]
    return [base + (v.srcIdx === null ? 0 : v.srcIdx.indexOf(k + 1)), (v.sources as string[])[k]]
  }
}

/**
 * Sends up to `max` datagrams of packed batch `p` from `start`; returns the new start (less
 * than the count when the send buffer is full or `max` was reached). Throws an errno error
 * with `sent`. A part of a batch (not the whole) goes as a slice of its own (`sliceOf`,
 * positioned by `cur`), so the native side converts only that slice's destinations.
 */
function sendFrom(s: UdpSocket, p: Packed, start: number, max: number, cur: Cursor | null): number {
  const whole = start === 0 && max >= p.count
  const v = whole ? p : sliceOf(p, start, max, cur as Cursor)
  let sent: number
  try {
    sent = nativeSend(s, v, 0, v.count)
  } catch (e) {
    throw messageError(e, locateIn(v, start), start) || errors.fromNative(e)
  }
  const at = start + sent
  // Fewer than asked: the send buffer is full (wait for 'writable'), or an error stopped it.
  const r = sent < v.count ? s._native.lastSendError() : null
  if (r !== null) {
    throw errors.errnoError(r.errno, r.syscall, `(datagram ${at} of ${p.count})`, { sent: at, index: at })
  }
  return at
}

/**
 * Has the native layer check, before anything of `p` is sent, the addresses it may still
 * refuse (those with a `%scope`): a batch sent in slices would otherwise only find an
 * unknown scope when its slice comes up, after earlier slices went. Sends nothing (it asks
 * for zero datagrams from the end of a one-empty-datagram batch); throws the TypeError
 * naming the first message with such an address.
 */
function checkScopes(s: UdpSocket, p: Packed): void {
  if (p.scopedDests.length === 0 && p.scopedSources.length === 0) return
  const addrs = p.scopedDests.map((g) => p.addrs[g])
  const ports = p.scopedDests.map((g) => p.ports[g])
  const sources = p.scopedSources.length === 0 ? null : p.scopedSources.map((g) => (p.sources as string[])[g])
  const probe = { data: NO_BYTES, lens: ONE_EMPTY, parts: null, dest: null, addrs, ports, srcIdx: null, sources, tos: null }
  try {
    nativeSend(s, probe as unknown as Slice, 1, 0)
  } catch (e) {
    const locate: Locate = (kind, k) => {
      if (kind === 'destination') {
        const g = p.scopedDests[k]
        return [p.dest === null ? 0 : p.dest.indexOf(g), p.addrs[g]]
      }
      const g = p.scopedSources[k]
      return [(p.srcIdx as Uint32Array).indexOf(g + 1), (p.sources as string[])[g]]
    }
    throw messageError(e, locate, 0) || errors.fromNative(e)
  }
}

/** UdpSocket.sendBatch. */
export function sendBatch(s: UdpSocket, messages: unknown, options: unknown): Promise<number> {
  try {
    if (s._closed) throw errors.socketClosed({ sent: 0 })
    let signal: AbortSignal | undefined
    if (options !== undefined) {
      checkOptions(options)
      signal = checkSignal((options as { signal?: unknown }).signal, 'options.signal')
    }
    if (signal && signal.aborted) throw errors.abortError(signal, { sent: 0 })
    // A batch that will take several slices is packed into arrays of its own: it waits
    // anyway, and the socket's scratch then neither grows to its size nor needs copying.
    const sliced = Array.isArray(messages) && messages.length > SEND_SLICE
    const p = pack(messages, s._sock(), sliced ? null : s._scratch)
    if (p.count === 0) return Promise.resolve(0)
    if (p.count > SEND_SLICE) checkScopes(s, p)
    const cur = cursor()
    let start = 0
    if (s._sendQueue.length === 0) {
      start = sendFrom(s, p, 0, SEND_SLICE, cur)
      if (start === p.count) return Promise.resolve(p.count)
    }
    return new Promise<number>((resolve, reject) => {
      const op: SendOp = { p: p.owned ? p : detach(p), cur, start, resolve, reject, signal, onAbort: null }
      if (signal) {
        op.onAbort = () => {
          const i = s._sendQueue.indexOf(op)
          if (i !== -1) s._sendQueue.splice(i, 1)
          reject(errors.abortError(signal, { sent: op.start }))
        }
        signal.addEventListener('abort', op.onAbort, { once: true })
      }
      s._sendQueue.push(op)
      if (s._sendQueue.length === 1) scheduleFlush(s, start < SEND_SLICE)
    })
  } catch (e) {
    return Promise.reject(e)
  }
}

/** UdpSocket.trySendBatch. */
export function trySendBatch(s: UdpSocket, messages: unknown): number {
  if (s._closed) throw errors.socketClosed({ sent: 0 })
  const p = pack(messages, s._sock(), s._scratch)
  if (p.count === 0 || s._sendQueue.length > 0) return 0
  return sendFrom(s, p, 0, 0xffffffff, null)
}

/** Continues queued sends: after a writable event when the buffer was full, or on the next
 * turn of the event loop when a slice was used up. */
function scheduleFlush(s: UdpSocket, bufferFull: boolean): void {
  if (bufferFull) {
    s._native.requestWritable()
  } else if (!s._flushScheduled) {
    s._flushScheduled = true
    setImmediate(() => {
      s._flushScheduled = false
      flushSends(s)
    })
  }
}

/** Sends queued batches, oldest first, until the buffer is full or a slice is used up. */
export function flushSends(s: UdpSocket): void {
  while (s._sendQueue.length > 0 && !s._closed) {
    const op = s._sendQueue[0]
    const before = op.start
    try {
      op.start = sendFrom(s, op.p, op.start, SEND_SLICE, op.cur)
    } catch (e) {
      s._sendQueue.shift()
      endOp(op)
      op.reject(e)
      continue
    }
    if (op.start < op.p.count) {
      scheduleFlush(s, op.start - before < SEND_SLICE)
      return
    }
    s._sendQueue.shift()
    endOp(op)
    op.resolve(op.p.count)
  }
}

function endOp(op: SendOp): void {
  if (op.onAbort !== null) op.signal!.removeEventListener('abort', op.onAbort)
}

/** At close: rejects every queued send with ERR_SOCKET_CLOSED (and how much of it went). */
export function closeSends(s: UdpSocket): void {
  const sends = s._sendQueue
  s._sendQueue = []
  for (const op of sends) {
    endOp(op)
    op.reject(errors.socketClosed({ sent: op.start }))
  }
}
