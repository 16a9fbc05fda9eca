// UdpSocket: the public API over the native socket. This file holds the class, its state and
// its documented methods; the machinery lives by concern in receive.ts (fan-out to listeners
// and pull consumers, backpressure), send-queue.ts (packing, slices, waiting for room) and
// lifetime.ts (GC roots, buffer-cap warning, stats after close). It runs past ~400 lines
// because every public method carries its full TSDoc (Errors / abort / close sections).

import { EventEmitter } from 'node:events'
import type { ReadableStream } from 'node:stream/web'
import { Batch } from './batch.js'
import * as errors from './errors.js'
import { live, stats, warnIfCapped } from './lifetime.js'
import { BACKEND, openSocket, takeSendKey } from './native.js'
import type { NativeSocket, NativeStats } from './native.js'
import { normalize, steeringOf } from './options.js'
import { PackScratch, sharedScratch } from './pack.js'
import type { SockInfo } from './pack.js'
import { makeDispatch, closeReceive, iterate, kReadAtOnce, onListenerChange, pulling, recvBatch } from './receive.js'
import type { Waiter } from './receive.js'
import { closeSends, flushSends, sendBatch, trySendBatch } from './send-queue.js'
import type { SendOp } from './send-queue.js'
import { readable } from './streams.js'
import type { ReadableOptions } from './streams.js'
import type { AddressInfo, BindOptions, BufferSizes, Capabilities, ErrnoError, OutgoingMessage, Stats, Steering } from './types.js'
import { checkBool, checkFunction, checkInt, checkSignal, checkString, ipOf, portOf } from './validate.js'

function callNative<T>(fn: () => T): T {
  try {
    return fn()
  } catch (e) {
    throw errors.fromNative(e)
  }
}

/** The error a failed send rejects with: how many of the batch went before the failing datagram. */
export interface SendError extends ErrnoError {
  /** Datagrams of this batch handed to the kernel before the failure. */
  sent: number
  /** Index (in the batch) of the datagram that failed. */
  index: number
}

/** Options of {@link UdpSocket.recvBatch}. */
export interface RecvOptions {
  /** Resolve with an empty batch when nothing arrived within this many ms. Default: wait forever. */
  timeoutMs?: number
  /** Reject with an AbortError when aborted. */
  signal?: AbortSignal
}

/** Options of {@link UdpSocket.sendBatch}. */
export interface SendOptions {
  /** Stop waiting for the send buffer and reject with an AbortError (with `sent`). */
  signal?: AbortSignal
}

/**
 * A UDP socket whose I/O is batched in the kernel: many datagrams per `recvmmsg`/`sendmmsg`.
 *
 * Receiving: the socket is read on the event loop of the thread that bound it (no thread per
 * socket), and each batch is handed to JS as soon as it is read: to `'batch'` listeners
 * (`onBatch`) and to pull consumers (`recvBatch`, `for await`). Reading is paused whenever
 * nobody consumes, so unread datagrams wait in the kernel buffer rather than in JS memory.
 * Sending: messages are packed and handed to `sendmmsg` on the calling thread without
 * blocking; when the send buffer is full the rest waits for room.
 *
 * Events: `'batch'` (a {@link Batch}), `'error'` (receive errors such as ICMP
 * `ECONNREFUSED`; they never stop the socket), `'close'`.
 *
 * @example
 * ```ts
 * import { UdpSocket } from 'udp-mmsg'
 * const socket = await UdpSocket.bind({ port: 5140 })
 * socket.onBatch((batch) => console.log(`${batch.count} datagrams`))
 * await socket.sendBatch([{ data: 'ping', address: '127.0.0.1', port: 5140 }])
 * ```
 */
// oxlint-disable-next-line typescript/no-unsafe-declaration-merging -- the interface below adds only event overloads
export class UdpSocket extends EventEmitter implements AsyncIterable<Batch> {
  /** @internal */ _native: NativeSocket
  /** @internal */ _type: 'udp4' | 'udp6'
  /** @internal */ _family: 4 | 6
  /** @internal */ _connected: boolean
  /** @internal */ _closed = false
  /** @internal */ _reading = false
  /** @internal The native socket's key for `sendOneFast` (send-queue.ts); -1 once closed or when there is none. */
  _sendKey = -1
  /** @internal */ _refed = true
  /** @internal Batches waiting for a pull consumer. */ _queue: Batch[] = []
  /** @internal Pending pulls (recvBatch calls, iterators' next()). */ _waiters: Waiter[] = []
  /** @internal Active async iterators. */ _iterators = 0
  /** @internal Receive errors kept for the next pull. */ _errors: unknown[] = []
  /** @internal */ _errorsDropped = 0
  // Receive accounting that outlives close(): every batch the native layer handed to JS
  // (also those arriving after close), the datagrams no consumer took before close, the
  // queued batches a 'batch' listener already had, and the native counters at close.
  /** @internal */ _gotDatagrams = 0
  /** @internal */ _gotBatches = 0
  /** @internal */ _gotBytes = 0
  /** @internal */ _discarded = 0
  /** @internal */ _heard = new WeakSet<Batch>()
  /** @internal */ _statsAtClose: NativeStats | null = null
  /** @internal */ _sendQueue: SendOp[] = []
  /** @internal */ _flushScheduled = false
  /** @internal */ _scratch: PackScratch = sharedScratch
  /** @internal */ _readingScheduled = false
  /** @internal The facade's consumer of every batch (see `setSink` in receive.ts). */ _sink: ((batch: Batch) => void) | null = null

  /**
   * Creates and binds a socket (the same as {@link UdpSocket.bindSync}, as a promise).
   *
   * Errors: rejects with a TypeError/RangeError naming a bad option (nothing is created), an
   * errno error from the kernel (`EADDRINUSE`, `EACCES`, ...), or an AbortError when
   * `options.signal` is already aborted (binding itself is immediate, so a later abort does
   * nothing).
   *
   * @example
   * ```ts
   * const socket = await UdpSocket.bind({ address: '127.0.0.1', port: 0, batchSize: 64 })
   * console.log(socket.localAddress().port)
   * ```
   */
  static async bind(options?: BindOptions): Promise<UdpSocket> {
    return new UdpSocket(options)
  }

  /**
   * Synchronous form of {@link UdpSocket.bind}.
   *
   * @throws TypeError / RangeError for bad options, an errno error from the kernel
   * (`EADDRINUSE`, ...), or an AbortError when `options.signal` is already aborted.
   *
   * @example
   * ```ts
   * const socket = UdpSocket.bindSync({ type: 'udp6', address: '::1' })
   * ```
   */
  static bindSync(options?: BindOptions): UdpSocket {
    return new UdpSocket(options)
  }

  /**
   * Same as {@link UdpSocket.bindSync}.
   * @throws See {@link UdpSocket.bindSync}.
   */
  constructor(options?: BindOptions) {
    super()
    const signal = options && typeof options === 'object' ? checkSignal(options.signal, 'options.signal') : undefined
    if (signal && signal.aborted) throw errors.abortError(signal)
    const { type, native: nopts } = normalize(options)
    const readAtOnce = typeof options === 'object' && options !== null && (options as Record<symbol, unknown>)[kReadAtOnce] === true
    if (readAtOnce) nopts.reading = true
    this._native = callNative(() => openSocket(nopts, makeDispatch(new WeakRef(this))))
    this._sendKey = takeSendKey()
    this._type = type
    this._family = type === 'udp6' ? 6 : 4
    this._connected = nopts.connectAddress !== undefined
    this._reading = readAtOnce
    live.add(this)
    this.on('newListener', onListenerChange)
    this.on('removeListener', onListenerChange)
    warnIfCapped(this, nopts)
  }

  /**
   * `'udp4'` or `'udp6'`.
   * @example
   * ```ts
   * UdpSocket.bindSync({ address: '::1' }).type // 'udp6'
   * ```
   */
  get type(): 'udp4' | 'udp6' {
    return this._type
  }

  /**
   * True once `close()` was called.
   * @example
   * ```ts
   * socket.close()
   * socket.closed // true
   * ```
   */
  get closed(): boolean {
    return this._closed
  }

  /**
   * True when this socket makes one system call per datagram (the portable fallback: off
   * Linux, or with `portable: true`).
   * After `close()` it reads `false`.
   * @example
   * ```ts
   * if (socket.portable) console.log('one syscall per datagram')
   * ```
   */
  get portable(): boolean {
    return this._native.portable
  }

  /**
   * The bound address (the real port when bound to port 0).
   * @throws `ERR_SOCKET_CLOSED` after `close()`.
   * @example
   * ```ts
   * const { address, port, family } = socket.localAddress()
   * ```
   */
  localAddress(): AddressInfo {
    return callNative(() => this._native.localAddress())
  }

  /**
   * The connected peer, or `null`.
   * @throws `ERR_SOCKET_CLOSED` after `close()`.
   * @example
   * ```ts
   * socket.remoteAddress() // { address: '127.0.0.1', port: 9000, family: 'IPv4' } or null
   * ```
   */
  remoteAddress(): AddressInfo | null {
    return callNative(() => this._native.remoteAddress())
  }

  /**
   * Connects to a peer: sends then need no destination, and only its datagrams arrive (ICMP
   * errors such as `ECONNREFUSED` are then reported as `'error'` events).
   * @throws TypeError for an address that is not an IP literal (or IPv6 on a udp4 socket),
   * RangeError `ERR_SOCKET_BAD_PORT` for a port outside 1..65535, an errno error from the
   * kernel, `ERR_SOCKET_CLOSED` after `close()`.
   * @example
   * ```ts
   * socket.connect('127.0.0.1', 9000)
   * await socket.sendBatch([{ data: 'hi' }])
   * ```
   */
  connect(address: string, port: number): void {
    const fam = ipOf(address, 'address')
    if (fam === 6 && this._family === 4) throw errors.invalidArgValue('address', address, "is IPv6 but the socket is 'udp4'")
    portOf(port, 'port', false)
    callNative(() => this._native.connect(address, port))
    this._connected = true
  }

  /**
   * Dissolves the association made by `connect`. As with node:dgram, Linux releases a
   * kernel-picked port (bound with port 0) on disconnect: the socket receives nothing until
   * its next send picks a new one. Bind a fixed port if you disconnect and keep receiving.
   * @throws `ERR_SOCKET_DGRAM_NOT_CONNECTED` on a socket that is not connected;
   * `ERR_SOCKET_CLOSED` after `close()`.
   * @example
   * ```ts
   * socket.disconnect()
   * ```
   */
  disconnect(): void {
    if (!this._closed && !this._connected) throw errors.notConnected()
    callNative(() => this._native.disconnect())
    this._connected = false
  }

  /**
   * Kernel-granted buffer sizes: `{ recvBufferSize, sendBufferSize, recvForced, sendForced }`
   * (Linux reports twice the accepted request).
   * @throws `ERR_SOCKET_CLOSED` after `close()`.
   * @example
   * ```ts
   * socket.bufferSizes().recvBufferSize
   * ```
   */
  bufferSizes(): BufferSizes {
    return callNative(() => this._native.bufferSizes())
  }

  /**
   * Sets SO_RCVBUF after creation (the kernel may cap it; read `bufferSizes()`).
   * @throws TypeError / RangeError unless `size` is an integer 1..2147483647; an errno error;
   * `ERR_SOCKET_CLOSED` after `close()`.
   * @example
   * ```ts
   * socket.setRecvBufferSize(8 << 20)
   * ```
   */
  setRecvBufferSize(size: number): void {
    this._setBuffer(false, size, 'size')
  }

  /**
   * Sets SO_SNDBUF after creation (the kernel may cap it; read `bufferSizes()`).
   * @throws As {@link UdpSocket.setRecvBufferSize}.
   * @example
   * ```ts
   * socket.setSendBufferSize(4 << 20)
   * ```
   */
  setSendBufferSize(size: number): void {
    this._setBuffer(true, size, 'size')
  }

  /** @internal */
  _setBuffer(send: boolean, size: unknown, name: string): void {
    checkInt(size, name, 1, 0x7fffffff)
    callNative(() => this._native.setBufferSize(send, size))
  }

  /**
   * What this socket can do: batched syscalls, GSO (supported / in use), GRO, the kernel drop
   * counter, pktinfo, timestamps, TOS, SO_REUSEPORT, and `backend` (`'native'` or `'fallback'`,
   * see docs/fallback.md). Probed once when the socket opened.
   * @throws `ERR_SOCKET_CLOSED` after `close()`.
   * @example
   * ```ts
   * if (socket.capabilities().gso) console.log('GSO in use')
   * ```
   */
  capabilities(): Capabilities {
    return { ...callNative(() => this._native.capabilities()), backend: BACKEND }
  }

  /**
   * Sets an integer socket option directly (`setsockopt(fd, level, option, value)`): an escape
   * hatch for options this API does not cover. Numbers are the platform's constants.
   * @throws TypeError / RangeError for non-integers (level and option 0..2^31-1, value a
   * 32-bit integer); TypeError for `UDP_GRO` on a socket bound without `gro: true`; an errno
   * error from the kernel; `ERR_SOCKET_CLOSED` after `close()`.
   * @example
   * ```ts
   * const SOL_SOCKET = 1, SO_PRIORITY = 12 // Linux
   * socket.setSocketOption(SOL_SOCKET, SO_PRIORITY, 6)
   * ```
   */
  setSocketOption(level: number, option: number, value: number): void {
    checkInt(level, 'level', 0, 0x7fffffff)
    checkInt(option, 'option', 0, 0x7fffffff)
    checkInt(value, 'value', -0x80000000, 0x7fffffff)
    // The native layer refuses UDP_GRO on a socket bound without gro (its receive slots hold
    // one datagram each: coalesced receives would be cut, most of their datagrams lost uncounted).
    callNative(() => this._native.setIntOption(level, option, value))
  }

  /**
   * Reads an integer socket option directly (`getsockopt`).
   * @throws As {@link UdpSocket.setSocketOption} for bad arguments; an errno error from the
   * kernel; `ERR_SOCKET_CLOSED` after `close()`.
   * @example
   * ```ts
   * const SOL_SOCKET = 1, SO_RCVBUF = 8 // Linux
   * socket.getSocketOption(SOL_SOCKET, SO_RCVBUF)
   * ```
   */
  getSocketOption(level: number, option: number): number {
    checkInt(level, 'level', 0, 0x7fffffff)
    checkInt(option, 'option', 0, 0x7fffffff)
    return callNative(() => this._native.getIntOption(level, option))
  }

  /**
   * Chooses how the kernel spreads datagrams over this socket's `SO_REUSEPORT` group, for the
   * whole group (the `steering` bind option, after the fact: to re-spread over the sockets left
   * when one has gone, say). See docs/scale-out.md.
   * @param steering `'hash'` (detaches any program: the kernel's flow hash), `'cpu'` or `'random'`.
   * @param groupSize Sockets to spread over, 1..65535: required for `'random'`, optional for `'cpu'`.
   * @throws TypeError/RangeError naming `steering` or `groupSize`; `ERR_UDP_MMSG_UNSUPPORTED`
   * off Linux or on the fallback backend; `EINVAL` when the socket is not in a reuseport group;
   * `ERR_SOCKET_CLOSED` after `close()`.
   * @example
   * ```ts
   * socket.setSteering('random', 3) // one of the 4 workers left
   * ```
   */
  setSteering(steering: Steering, groupSize?: number): void {
    const s = steeringOf(steering, groupSize, 'steering', 'groupSize')
    callNative(() => this._native.setSteering(s))
  }

  /**
   * `SO_INCOMING_CPU` (Linux): for a connected socket, the CPU that processed the last datagram
   * it received; otherwise the value set with `setIncomingCpu` (the kernel records the CPU on
   * receive only for connected UDP sockets); -1 before either.
   * @throws `ERR_UDP_MMSG_UNSUPPORTED` on the fallback backend, an errno error off Linux,
   * `ERR_SOCKET_CLOSED` after `close()`.
   * @example
   * ```ts
   * console.log(socket.getIncomingCpu()) // -1 until set (or, connected, until a datagram arrives)
   * ```
   */
  getIncomingCpu(): number {
    return callNative(() => this._native.getIncomingCpu())
  }

  /**
   * Sets `SO_INCOMING_CPU` (Linux): the CPU this socket prefers, for users who build their own
   * steering. On a connected socket the kernel overwrites it with the processing CPU of each
   * datagram received.
   * @throws TypeError/RangeError naming `cpu` (an integer 0..2147483647); as {@link getIncomingCpu}.
   * @example
   * ```ts
   * socket.setIncomingCpu(1)
   * ```
   */
  setIncomingCpu(cpu: number): void {
    checkInt(cpu, 'cpu', 0, 0x7fffffff)
    callNative(() => this._native.setIncomingCpu(cpu))
  }

  /**
   * Sets SO_BROADCAST.
   * @throws TypeError unless `flag` is a boolean; `ERR_SOCKET_CLOSED` after `close()`.
   * @example
   * ```ts
   * socket.setBroadcast(true)
   * ```
   */
  setBroadcast(flag: boolean): void {
    checkBool(flag, 'flag')
    callNative(() => this._native.setBroadcast(flag))
  }

  /**
   * Reads SO_BROADCAST.
   * @throws `ERR_SOCKET_CLOSED` after `close()`.
   * @example
   * ```ts
   * socket.getBroadcast() // false
   * ```
   */
  getBroadcast(): boolean {
    return callNative(() => this._native.getBroadcast())
  }

  /**
   * Sets the unicast TTL (IPv4) or hop limit (IPv6), 1..255.
   * @throws TypeError / RangeError outside 1..255; `ERR_SOCKET_CLOSED` after `close()`.
   * @example
   * ```ts
   * socket.setTTL(64)
   * ```
   */
  setTTL(ttl: number): void {
    checkInt(ttl, 'ttl', 1, 255)
    callNative(() => this._native.setTtl(ttl))
  }

  /**
   * Sets the TOS (IPv4) or traffic class (IPv6) of everything this socket sends, 0..255.
   * @throws TypeError / RangeError outside 0..255; `ERR_SOCKET_CLOSED` after `close()`.
   * @example
   * ```ts
   * socket.setTOS(0xb8) // DSCP EF
   * ```
   */
  setTOS(tos: number): void {
    checkInt(tos, 'tos', 0, 255)
    callNative(() => this._native.setTos(tos))
  }

  /**
   * Sets the multicast TTL / hop limit, 0..255 (0 keeps multicast on this host).
   * @throws TypeError / RangeError outside 0..255; `ERR_SOCKET_CLOSED` after `close()`.
   * @example
   * ```ts
   * socket.setMulticastTTL(1)
   * ```
   */
  setMulticastTTL(ttl: number): void {
    checkInt(ttl, 'ttl', 0, 255)
    callNative(() => this._native.setMulticastTtl(ttl))
  }

  /**
   * Sets whether multicast sent by this socket loops back to local receivers.
   * @throws TypeError unless `flag` is a boolean; `ERR_SOCKET_CLOSED` after `close()`.
   * @example
   * ```ts
   * socket.setMulticastLoopback(false)
   * ```
   */
  setMulticastLoopback(flag: boolean): void {
    checkBool(flag, 'flag')
    callNative(() => this._native.setMulticastLoopback(flag))
  }

  /**
   * Reads whether multicast loops back.
   * @throws `ERR_SOCKET_CLOSED` after `close()`.
   * @example
   * ```ts
   * socket.getMulticastLoopback() // true
   * ```
   */
  getMulticastLoopback(): boolean {
    return callNative(() => this._native.getMulticastLoopback())
  }

  /**
   * Chooses the outgoing multicast interface: an IPv4 address of it, or for IPv6 a name, an
   * index or `::%scope`.
   * @throws TypeError unless `iface` is a string; an errno error for an unknown interface;
   * `ERR_SOCKET_CLOSED` after `close()`.
   * @example
   * ```ts
   * socket.setMulticastInterface('192.168.1.10')
   * ```
   */
  setMulticastInterface(iface: string): void {
    checkString(iface, 'interface')
    callNative(() => this._native.setMulticastInterface(iface))
  }

  /**
   * Joins a multicast group, optionally on one interface.
   * @throws TypeError for a group that is not an IP literal or a non-string interface; an
   * errno error from the kernel; `ERR_SOCKET_CLOSED` after `close()`.
   * @example
   * ```ts
   * socket.addMembership('239.1.2.3')
   * ```
   */
  addMembership(group: string, iface?: string): void {
    this._membership(true, group, iface, undefined)
  }

  /**
   * Leaves a multicast group.
   * @throws As {@link UdpSocket.addMembership}.
   * @example
   * ```ts
   * socket.dropMembership('239.1.2.3')
   * ```
   */
  dropMembership(group: string, iface?: string): void {
    this._membership(false, group, iface, undefined)
  }

  /**
   * Joins a source-specific multicast group: only datagrams from `source` are received.
   * @throws As {@link UdpSocket.addMembership}, and TypeError when `source` is not an IP literal.
   * @example
   * ```ts
   * socket.addSourceSpecificMembership('10.0.0.1', '232.1.2.3')
   * ```
   */
  addSourceSpecificMembership(source: string, group: string, iface?: string): void {
    ipOf(source, 'source')
    this._membership(true, group, iface, source)
  }

  /**
   * Leaves a source-specific multicast group.
   * @throws As {@link UdpSocket.addSourceSpecificMembership}.
   * @example
   * ```ts
   * socket.dropSourceSpecificMembership('10.0.0.1', '232.1.2.3')
   * ```
   */
  dropSourceSpecificMembership(source: string, group: string, iface?: string): void {
    ipOf(source, 'source')
    this._membership(false, group, iface, source)
  }

  /** @internal */
  _membership(join: boolean, group: string, iface: string | undefined, source: string | undefined): void {
    ipOf(group, 'group')
    if (iface !== undefined) checkString(iface, 'interface')
    callNative(() => this._native.membership(join, group, iface, source))
  }

  // ---- receiving -------------------------------------------------------------------------

  /**
   * Calls `listener` with every received batch; returns a function that unsubscribes. A
   * listener that throws is the caller's uncaught exception (as with node:dgram), but the
   * batch still reaches pull consumers.
   * @throws TypeError unless `listener` is a function.
   * @example
   * ```ts
   * const off = socket.onBatch((batch) => {
   *   for (const m of batch) console.log(m.address, m.port, m.data.length)
   * })
   * off()
   * ```
   */
  onBatch(listener: (batch: Batch) => void): () => void {
    checkFunction(listener, 'listener')
    this.on('batch', listener)
    return () => this.off('batch', listener)
  }

  /**
   * Resolves with the next batch as soon as at least one datagram has arrived, or with an
   * empty batch (`count === 0`) when `timeoutMs` passes first.
   *
   * Errors: rejects with a TypeError/RangeError for bad options; with a pending receive error
   * (ICMP `ECONNREFUSED`...) when nobody listens for `'error'`; with `ERR_SOCKET_CLOSED` when
   * called after `close()`.
   *
   * Abort: aborting `options.signal` rejects with an AbortError (`code: 'ABORT_ERR'`, the
   * signal's reason as `cause`) and withdraws the call: no batch is taken for it, the next
   * consumer gets it. Close: a pending call rejects with `ERR_SOCKET_CLOSED`.
   *
   * @example
   * ```ts
   * const batch = await socket.recvBatch({ timeoutMs: 1000, signal: AbortSignal.timeout(5000) })
   * if (batch.count === 0) console.log('nothing within a second')
   * ```
   */
  recvBatch(options?: RecvOptions): Promise<Batch> {
    return recvBatch(this, options)
  }

  /**
   * A Web `ReadableStream` of batches, pull-based with backpressure (see {@link readable}):
   * cancelling it does not close the socket unless `closeOnCancel` is set.
   * @throws As {@link readable}.
   * @example
   * ```ts
   * for await (const batch of socket.readable({ highWaterMark: 8 })) console.log(batch.count)
   * ```
   */
  readable(options?: ReadableOptions): ReadableStream<Batch> {
    return readable(this, options)
  }

  /**
   * `for await (const batch of socket)`: yields batches until the socket closes. While the
   * iterator is active the socket reads ahead up to 8 unread batches. Ending it (return(),
   * which `break` calls, a receive error, close) settles every next() still pending with
   * `done: true` and withdraws it, so no batch is handed to a next() that nobody will read:
   * the next consumer gets it instead.
   *
   * Errors: a receive error (when nobody listens for `'error'`) rejects the pending next()
   * and ends the iterator. Close: the iterator ends (`done: true`); it never rejects with
   * `ERR_SOCKET_CLOSED`.
   *
   * @example
   * ```ts
   * for await (const batch of socket) {
   *   if (batch.count > 0) console.log(batch.data(0).toString())
   * }
   * ```
   */
  [Symbol.asyncIterator](): AsyncIterableIterator<Batch> {
    return iterate(this)
  }

  // ---- sending ---------------------------------------------------------------------------

  /** @internal */
  _sock(): SockInfo {
    return { family: this._family, connected: this._connected }
  }

  /** @internal The native side reported room in the send buffer (the fd polled writable). */
  _onWritable(): void {
    flushSends(this)
  }

  /**
   * Hands every message to the kernel, many per `sendmmsg`, waiting (without blocking the
   * thread) while the send buffer is full. Resolves with the number sent.
   *
   * Every message is validated, read exactly once and copied before anything is sent: a bad
   * message (TypeError/RangeError naming it, also an unknown IPv6 `%scope`) rejects the call
   * with nothing sent, and changing the messages or their buffers afterwards does not change
   * what is sent. That step is synchronous and linear in the batch (measured on a loaded
   * 2-core VM: ~0.4–0.6 µs a message to one destination, 1–3 µs when every message has its
   * own), so split batches of hundreds of thousands if event-loop latency matters. It is not
   * spread over several turns on purpose: validating is most of its cost, and validating
   * lazily would send part of a batch before finding a bad message. The datagrams then go at
   * most 4096 per turn of the event loop, each turn converting only its own destinations:
   * time is linear in the batch, however many destinations it has. Calls are sent in order:
   * a call waits behind earlier ones still queued.
   *
   * Errors: rejects with a {@link SendError} (an errno error such as `EMSGSIZE`, with `sent`,
   * the datagrams that went before the failing one, and its `index`); with a TypeError /
   * RangeError naming a bad message (nothing sent); with `ERR_SOCKET_CLOSED` (`sent: 0`) when
   * called after `close()`.
   *
   * Abort: aborting `options.signal` while the call waits removes it from the queue and
   * rejects with an AbortError whose `sent` says how many datagrams already went (they
   * cannot be called back); an already aborted signal rejects with `sent: 0`. Close: a
   * waiting call rejects with `ERR_SOCKET_CLOSED` carrying `sent` likewise.
   *
   * @example
   * ```ts
   * const n = await socket.sendBatch([
   *   { data: 'a', address: '127.0.0.1', port: 9000 },
   *   { data: [header, body], address: '::1', port: 9001 },
   * ])
   * ```
   */
  sendBatch(messages: ReadonlyArray<OutgoingMessage>, options?: SendOptions): Promise<number> {
    return sendBatch(this, messages, options)
  }

  /**
   * Sends what fits in the send buffer now, never waiting: returns how many messages were
   * handed to the kernel (0 while earlier sendBatch calls still wait, to keep order). The
   * whole batch goes in one native call (its destination table converted once).
   * @throws a {@link SendError} when a datagram fails (with `sent`); a TypeError/RangeError
   * naming a bad message before anything is sent; `ERR_SOCKET_CLOSED` after `close()`.
   * @example
   * ```ts
   * const sent = socket.trySendBatch(messages)
   * if (sent < messages.length) await socket.sendBatch(messages.slice(sent))
   * ```
   */
  trySendBatch(messages: ReadonlyArray<OutgoingMessage>): number {
    return trySendBatch(this, messages)
  }

  // ---- lifetime --------------------------------------------------------------------------

  /**
   * Counters since the socket was opened; after `close()`, as they were at close (see
   * {@link Stats}). Never throws.
   * @example
   * ```ts
   * const { datagramsReceived, kernelDrops } = socket.stats()
   * ```
   */
  stats(): Stats {
    return stats(this)
  }

  /**
   * Keeps the process alive while the socket is open (the default).
   * @example
   * ```ts
   * socket.unref().ref()
   * ```
   */
  ref(): this {
    if (!this._closed && !this._refed) {
      this._refed = true
      live.add(this)
      this._native.ref()
      for (const w of this._waiters) if (w.timer !== null) w.timer.ref()
    }
    return this
  }

  /**
   * Lets the process exit while the socket is open. An unreferenced socket that is no longer
   * reachable from JS may be garbage-collected, which closes it; not while a `recvBatch()` or
   * an iterator's `next()` is pending on it.
   * @example
   * ```ts
   * socket.unref()
   * ```
   */
  unref(): this {
    if (!this._closed && this._refed) {
      this._refed = false
      live.delete(this)
      this._native.unref()
      for (const w of this._waiters) if (w.timer !== null) w.timer.unref()
    }
    return this
  }

  /**
   * Closes the socket: stops its watch on the event loop, closes the fd (before returning),
   * rejects pending `recvBatch` and `sendBatch` calls with `ERR_SOCKET_CLOSED`, ends async
   * iterators, then emits `'close'`.
   * Batches received but not taken by any consumer are dropped and counted in
   * `stats().datagramsDiscarded`. Calling it again does nothing; never throws.
   * @example
   * ```ts
   * socket.close()
   * await once(socket, 'close')
   * ```
   */
  close(): void {
    if (this._closed) return
    this._closed = true
    this._reading = false
    this._sendKey = -1
    live.delete(this)
    pulling.delete(this)
    // The final counters are read on demand (stats() after close): making the 20-field stats
    // object on every close was a third of the cost of a socket's close.
    this._native.close()
    closeReceive(this)
    closeSends(this)
    process.nextTick(() => this.emit('close'))
  }
}

/** The events of a {@link UdpSocket} (typed overloads of EventEmitter's `on`/`once`). */
// oxlint-disable-next-line typescript/no-unsafe-declaration-merging -- declares only method overloads, no properties
export interface UdpSocket {
  on(event: 'batch', listener: (batch: Batch) => void): this
  on(event: 'error', listener: (err: ErrnoError) => void): this
  on(event: 'close', listener: () => void): this
  on(event: string | symbol, listener: (...args: any[]) => void): this
  once(event: 'batch', listener: (batch: Batch) => void): this
  once(event: 'error', listener: (err: ErrnoError) => void): this
  once(event: 'close', listener: () => void): this
  once(event: string | symbol, listener: (...args: any[]) => void): this
}
