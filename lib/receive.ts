// UdpSocket's receive side: fan-out of the batches the native side hands over (on this thread's
// event loop, one call per batch, as soon as it is read) to 'batch' listeners and to pull consumers (recvBatch, async iterators), and the backpressure that
// pauses reading whenever nobody consumes, so unread datagrams wait in the kernel buffer
// rather than in JS memory. Functions over the socket's (internal) receive state.
//
// Native-interface seam: `makeDispatch`, `onBatch` and `onEvent` are the only code that reads the native
// dispatch callback's arguments.

import { Batch } from './batch.js'
import * as errors from './errors.js'
import { EVENT_BATCH, EVENT_BATCH_COMPACT, EVENT_BATCH_COMPACT_LANDED, EVENT_BATCH_LANDED, EVENT_ERROR, EVENT_WRITABLE } from './native.js'
import type { Dispatch } from './native.js'
import type { UdpSocket } from './socket.js'
import { checkOptions, checkSignal } from './validate.js'

/** Unread batches an async iterator may have queued before reading pauses (for every consumer
 * of the socket, a 'batch' listener included). Reading pauses before the next receive, so no
 * batch arrives behind them (`maxPendingBatches` bounds nothing here). */
export const ITERATOR_HIGH_WATER = 8
/** Receive errors kept for the next recvBatch when nobody listens for 'error'. */
const MAX_PENDING_ERRORS = 64

/** Open sockets with a pending pull (recvBatch or an iterator's next()), referenced or not. An
 * unref()'d socket may be referenced only by the promise chain of its own pending pull; if it
 * were collected (its finalizer closes it), that pull would never settle. Holding it here keeps
 * it, but not the event loop: an unref()'d socket still lets the process exit. */
export const pulling = new Set<UdpSocket>()

/** What the native side reports: a batch (full or compact metadata), a receive error, or room in the send buffer. */
export const KIND_BATCH = EVENT_BATCH
export const KIND_BATCH_COMPACT = EVENT_BATCH_COMPACT
export const KIND_BATCH_LANDED = EVENT_BATCH_LANDED
export const KIND_BATCH_COMPACT_LANDED = EVENT_BATCH_COMPACT_LANDED
export const KIND_ERROR = EVENT_ERROR
export const KIND_WRITABLE = EVENT_WRITABLE

/**
 * The callback given to the native socket. Built outside the class so the closure holds only
 * the WeakRef, never the socket: an unreferenced socket can then be collected (its native
 * finalizer closes the fd). The native layer calls it once per batch or event (see {@link Dispatch}).
 */
export function makeDispatch(weak: WeakRef<UdpSocket>): Dispatch {
  return (kind, data, count, kernelDrops, errno, syscall) => {
    const s = weak.deref()
    if (s === undefined) return
    if (kind === KIND_BATCH_COMPACT_LANDED) onBatch(s, landed(data as Uint8Array, errno as number), count, kernelDrops, true)
    else if (kind === KIND_BATCH_LANDED) onBatch(s, landed(data as Uint8Array, errno as number), count, kernelDrops, false)
    else if (kind === KIND_BATCH_COMPACT) onBatch(s, data as Buffer, count, kernelDrops, true)
    else if (kind === KIND_BATCH) onBatch(s, data as Buffer, count, kernelDrops, false)
    else onEvent(s, kind, errno, syscall)
  }
}

/**
 * The first `length` bytes of the landing buffer (src/native/landing.rs), copied into a
 * `Buffer` of their own from Node's pool (8-byte aligned, as the metadata views need). The
 * copy is made before anything else runs: the next batch overwrites the landing buffer, and
 * it must never reach user code.
 */
function landed(landing: Uint8Array, length: number): Buffer {
  const b = Buffer.allocUnsafe(length)
  if (length > 0) b.set(length === landing.length ? landing : landing.subarray(0, length))
  return b
}

/** A pending pull: a recvBatch call or an iterator's next(). */
export interface Waiter {
  resolve(batch: Batch): void
  reject(err: unknown): void
  end(): void
  iterator: boolean
  timer: NodeJS.Timeout | null
  signal: AbortSignal | undefined
  onAbort: (() => void) | null
}

/** UdpSocket.recvBatch. */
export function recvBatch(s: UdpSocket, options: unknown): Promise<Batch> {
  try {
    let timeoutMs = Infinity
    let signal: AbortSignal | undefined
    if (options !== undefined) {
      checkOptions(options)
      const o = options as { timeoutMs?: unknown; signal?: unknown }
      if (o.timeoutMs !== undefined) {
        const t = o.timeoutMs
        if (typeof t !== 'number') throw errors.invalidArgType('options.timeoutMs', 'of type number', t)
        if (Number.isNaN(t) || t < 0) throw errors.outOfRange('options.timeoutMs', '>= 0 (or Infinity)', t)
        timeoutMs = t
      }
      signal = checkSignal(o.signal, 'options.signal')
    }
    if (s._errors.length > 0) return Promise.reject(s._errors.shift())
    if (s._queue.length > 0) {
      const b = s._queue.shift() as Batch
      updateReading(s)
      return Promise.resolve(b)
    }
    if (s._closed) throw errors.socketClosed()
    if (signal && signal.aborted) throw errors.abortError(signal)
    return new Promise<Batch>((resolve, reject) => {
      const w: Waiter = { resolve, reject, end: () => undefined, iterator: false, timer: null, signal, onAbort: null }
      if (timeoutMs !== Infinity) {
        w.timer = setTimeout(
          () => {
            removeWaiter(s, w)
            resolve(Batch.empty())
          },
          Math.min(timeoutMs, 0x7fffffff),
        )
        if (!s._refed) w.timer.unref()
      }
      if (signal) {
        w.onAbort = () => {
          removeWaiter(s, w)
          reject(errors.abortError(signal))
        }
        signal.addEventListener('abort', w.onAbort, { once: true })
      }
      s._waiters.push(w)
      updateReading(s)
    })
  } catch (e) {
    return Promise.reject(e)
  }
}

/** UdpSocket[Symbol.asyncIterator]. */
export function iterate(s: UdpSocket): AsyncIterableIterator<Batch> {
  let done = false
  /** This iterator's waiters (next() calls not yet settled), in the socket's `_waiters` too. */
  const pending: Waiter[] = []
  const forget = (w: Waiter) => {
    const i = pending.indexOf(w)
    if (i !== -1) pending.splice(i, 1)
  }
  s._iterators++
  updateReading(s)
  const finish = () => {
    if (done) return
    done = true
    s._iterators--
    if (s._iterators === 0) dropHeard(s)
    for (const w of pending.splice(0)) {
      const i = s._waiters.indexOf(w)
      if (i !== -1) s._waiters.splice(i, 1)
      w.end()
    }
    updateReading(s)
  }
  const next = (): Promise<IteratorResult<Batch>> => {
    if (done) return Promise.resolve({ value: undefined, done: true })
    if (s._errors.length > 0) {
      finish()
      return Promise.reject(s._errors.shift())
    }
    if (s._queue.length > 0) {
      const value = s._queue.shift() as Batch
      updateReading(s)
      return Promise.resolve({ value, done: false })
    }
    if (s._closed) {
      finish()
      return Promise.resolve({ value: undefined, done: true })
    }
    return new Promise((resolve, reject) => {
      const w: Waiter = {
        resolve: (value) => {
          forget(w)
          resolve({ value, done: false })
        },
        reject: (err) => {
          forget(w)
          finish()
          reject(err)
        },
        end: () => {
          forget(w)
          finish()
          resolve({ value: undefined, done: true })
        },
        iterator: true,
        timer: null,
        signal: undefined,
        onAbort: null,
      }
      pending.push(w)
      s._waiters.push(w)
      updateReading(s)
    })
  }
  return {
    next,
    return: (value?: unknown) => {
      finish()
      return Promise.resolve({ value, done: true } as IteratorResult<Batch>)
    },
    [Symbol.asyncIterator]() {
      return this
    },
  }
}

/**
 * Once no iterator is left, drops the queued batches a 'batch' listener already had: they
 * were queued only for the iterators, and the listener consumed them. Otherwise a listener
 * with iterators started and abandoned in turn would leave their unread batches (up to
 * ITERATOR_HIGH_WATER each time) piling up for a pull that may never come.
 * Batches no listener had stay for the next pull.
 */
function dropHeard(s: UdpSocket): void {
  if (s._queue.some((b) => s._heard.has(b))) s._queue = s._queue.filter((b) => !s._heard.has(b))
}

/**
 * Hands the queued batches, oldest first, to a 'batch' listener when no pull consumer is
 * there to take them. They arrived while nobody listened (or were queued for an iterator or
 * pull that went away) and wait for the next consumer: without this, a listener that comes and
 * goes under traffic could leave batches behind each time, for ever. One
 * batch per microtask, so a throwing listener does not stop the rest; all before any later
 * batch, which comes from a later task.
 */
function handToListener(s: UdpSocket): void {
  if (s._closed || s._iterators > 0 || s._waiters.length > 0 || s._queue.length === 0) return
  if (s.listenerCount('batch') === 0) return
  const batch = s._queue.shift() as Batch
  if (s._queue.length > 0) queueMicrotask(() => handToListener(s))
  if (!s._heard.has(batch)) s.emit('batch', batch)
}

function removeWaiter(s: UdpSocket, w: Waiter): void {
  const i = s._waiters.indexOf(w)
  if (i !== -1) s._waiters.splice(i, 1)
  settled(w)
  updateReading(s)
}

/** Releases a waiter's timer and abort listener. */
export function settled(w: Waiter): void {
  if (w.timer !== null) clearTimeout(w.timer)
  if (w.onAbort !== null) w.signal!.removeEventListener('abort', w.onAbort)
}

/**
 * @internal An options key (a symbol, so no user option can collide or be mistaken for it) for a
 * socket whose consumer is attached right after the constructor returns (the facade's sink):
 * the socket reads from the start, saving the separate `setReading(true)` call.
 */
export const kReadAtOnce: unique symbol = Symbol('udp-mmsg.readAtOnce')

/**
 * Starts or pauses reading to match the consumers, and keeps the socket reachable while a
 * pull is pending (see `pulling`). Called after every change of the listeners, waiters,
 * iterators or queue. A pending pull always reads (the queue is then empty). With an active
 * iterator, batches are queued for it, so its unread ones bound reading for everyone: at
 * ITERATOR_HIGH_WATER a 'batch' listener waits too, and unread datagrams wait in the kernel
 * buffer (where overflow is counted in kernelDrops) instead of in JS memory.
 */
export function updateReading(s: UdpSocket): void {
  const waiting = s._waiters.length > 0 && !s._closed
  const want =
    !s._closed && (waiting || (s._iterators > 0 ? s._queue.length < ITERATOR_HIGH_WATER : s._sink !== null || s.listenerCount('batch') > 0))
  if (want !== s._reading) {
    s._reading = want
    s._native.setReading(want)
  }
  if (waiting) pulling.add(s)
  else pulling.delete(s)
}

/**
 * A 'batch' listener came or went: re-evaluate reading (once per microtask). One function
 * shared by every socket, registered as its 'newListener'/'removeListener' listener, so
 * `this` is the socket (a closure per socket would do as well, but this is how it was).
 */
/* oxlint-disable oxc/no-this-in-exported-function -- only ever called as an EventEmitter listener */
export function onListenerChange(this: UdpSocket, event: string | symbol): void {
  // After close nothing reads any more (a listener removed while closing needs no work).
  if (event === 'batch' && !this._readingScheduled && !this._closed) {
    this._readingScheduled = true
    queueMicrotask(() => {
      this._readingScheduled = false
      handToListener(this)
      updateReading(this)
    })
  }
}
/* oxlint-enable oxc/no-this-in-exported-function */

function onBatch(s: UdpSocket, data: Buffer | null, n: number, kernelDrops: number, compact: boolean): void {
  const batch = Batch.fromNative(data ?? Buffer.alloc(0), n, kernelDrops, compact)
  s._gotDatagrams += n
  s._gotBatches++
  s._gotBytes += batch.payloadBytes
  if (s._closed) {
    // Reached JS after close() (a guard: the native side stops delivering at close): nobody
    // can take it now; counted, not lost silently.
    s._discarded += n
    return
  }
  const sink = s._sink
  const emitting = s.listenerCount('batch') > 0
  const listening = sink !== null || emitting
  // A throwing listener is the caller's uncaught exception (as with node:dgram), but the
  // batch still reaches pull consumers and the reading state stays right.
  try {
    if (sink !== null) sink(batch)
    if (emitting) s.emit('batch', batch)
  } finally {
    afterBatch(s, batch, listening)
  }
}

/**
 * Sets (or, with null, removes) the socket's internal consumer: it gets every batch before the
 * `'batch'` listeners and keeps the socket reading, without the EventEmitter bookkeeping a
 * listener costs (`'newListener'`, a microtask). The `node:dgram` facade receives through it
 * (what it throws is an uncaught exception, as from a listener).
 */
export function setSink(s: UdpSocket, sink: ((batch: Batch) => void) | null): void {
  s._sink = sink
  if (!s._closed) updateReading(s)
}

/** A receive error or room in the send buffer. */
function onEvent(s: UdpSocket, kind: number, errno: number | undefined, syscall: string | undefined): void {
  if (s._closed) return
  if (kind === KIND_ERROR) {
    onError(s, errors.errnoError(errno ?? 5, syscall || 'recvmsg'))
  } else if (kind === KIND_WRITABLE) {
    s._onWritable()
  }
}

function afterBatch(s: UdpSocket, batch: Batch, listening: boolean): void {
  if (s._closed) {
    // The listener closed the socket; a batch nobody heard would be dropped here.
    if (!listening) s._discarded += batch.count
    return
  }
  if (!listening || s._waiters.length > 0 || s._iterators > 0) {
    // A batch nobody was listening for is kept for the next pull rather than lost.
    if (s._waiters.length > 0) {
      const w = s._waiters.shift() as Waiter
      settled(w)
      w.resolve(batch)
    } else {
      // Remember that the listener had it: dropping it at close then loses nothing.
      if (listening) s._heard.add(batch)
      s._queue.push(batch)
    }
  }
  updateReading(s)
}

function onError(s: UdpSocket, err: Error): void {
  if (s.listenerCount('error') > 0) {
    s.emit('error', err)
  } else if (s._waiters.length > 0) {
    const w = s._waiters.shift() as Waiter
    settled(w)
    w.reject(err)
    updateReading(s)
  } else if (s._errors.length < MAX_PENDING_ERRORS) {
    s._errors.push(err)
  } else {
    s._errorsDropped++
  }
}

/** At close: settles pending pulls, drops (and counts) queued batches and pending errors. */
export function closeReceive(s: UdpSocket): void {
  pulling.delete(s)
  const waiters = s._waiters
  s._waiters = []
  for (const w of waiters) {
    settled(w)
    if (w.iterator) w.end()
    else w.reject(errors.socketClosed())
  }
  for (const b of s._queue) if (!s._heard.has(b)) s._discarded += b.count
  s._queue = []
  // Receive errors still waiting for a recvBatch are moot once closed: later calls report
  // ERR_SOCKET_CLOSED (and iterators end), not a stale ECONNREFUSED.
  s._errors = []
}
