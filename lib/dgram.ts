// udp-mmsg/dgram: a node:dgram-compatible facade over UdpSocket. `require('udp-mmsg/dgram')`
// is a drop-in for `require('node:dgram')` in ingestion code. Receiving: one UdpSocket batch
// becomes one 'message' event per datagram (no extra system calls). Sending: every send() made
// in the same tick is coalesced into one sendmmsg batch on process.nextTick, and each callback
// still gets its own (err, bytes) like Node's. The socket type extends node:dgram's, so code
// typed against `dgram.Socket` accepts it unchanged. The implementation is dgram-socket.ts.

import type * as nodeDgram from 'node:dgram'
import * as realDgram from 'node:dgram'
import { Socket as FacadeSocket } from './dgram-socket.js'
import type { UdpSocket } from './socket.js'

export type SocketType = nodeDgram.SocketType
export type RemoteInfo = nodeDgram.RemoteInfo
export type BindOptions = nodeDgram.BindOptions
/** A 'message' listener: `(msg, rinfo) => void`, typed as node:dgram's (msg is a non-shared Buffer). */
export type MessageListener = NonNullable<Parameters<typeof nodeDgram.createSocket>[1]>

/** node:dgram's createSocket options, plus udp-mmsg's (node:dgram ignores unknown keys). */
export interface SocketOptions extends nodeDgram.SocketOptions {
  /** `SO_REUSEPORT`: several sockets on one port, the kernel spreads datagrams across them (Linux). */
  reusePort?: boolean | undefined
  /** Most datagrams one receive system call returns, 1..1024. Default: UdpSocket's (256). */
  batchSize?: number | undefined
  /** Bytes reserved per datagram, 1..65535. Default: the largest UDP payload, 65507 for `'udp4'` and 65527 for `'udp6'` (whole datagrams, like node:dgram). */
  maxDatagramSize?: number | undefined
  /** Validated, 1..1024 (default 16), but without effect on the native backend (no batches wait between native code and JS); see UdpSocket's option. */
  maxPendingBatches?: number | undefined
  /** After a read that found two datagrams or more, how long (µs) to wait before reading again so the next batch is fuller, 0..1000000. Default 200; a lone datagram never waits; 0 never waits. */
  coalesceMicros?: number | undefined
  /** `SO_BROADCAST` from the start (same as calling setBroadcast(true) once bound). */
  broadcast?: boolean | undefined
  /** Unicast TTL / hop limit from the start, 1..255 (same as setTTL() once bound). */
  ttl?: number | undefined
  /** TOS / traffic class of everything sent, 0..255. */
  tos?: number | undefined
  /** UDP GSO on send (Linux). Default `'auto'`. */
  gso?: 'auto' | boolean | undefined
  /** UDP GRO on receive (Linux); datagrams are split back before 'message'. Default false. */
  gro?: boolean | undefined
  /** One system call per datagram (the portable path). */
  portable?: boolean | undefined
  /** Try `SO_RCVBUFFORCE`/`SO_SNDBUFFORCE` first (needs CAP_NET_ADMIN). */
  forceBufferSize?: boolean | undefined
  /**
   * Datagrams per second that bursts of send() are paced to, past the first 64: node:dgram's
   * own pace on a small machine, so that a receiver which keeps up with node:dgram (a StatsD
   * daemon behind a default-sized receive buffer) is not flooded. `Infinity`: no pacing (every
   * send of a tick in one batch). Default 64000. For bulk sending, see UdpSocket.sendBatch.
   *
   * @example
   * ```ts
   * const loadGenerator = createSocket({ type: 'udp4', sendRate: Infinity })
   * ```
   * @throws TypeError when not a number, RangeError when not > 0 (at createSocket).
   */
  sendRate?: number | undefined
}

/**
 * A node:dgram-compatible socket. Receives come in batches (one recvmmsg, many 'message'
 * events); the sends of one tick go out as one sendmmsg batch. Every method behaves as
 * node:dgram's (see Node's documentation for each), errors included; the differences are
 * listed in the README.
 */
export interface Socket extends nodeDgram.Socket {
  /** `'udp4'` or `'udp6'`. */
  readonly type: SocketType
  /** The UdpSocket behind this facade (`null` before bind and after close): for stats() and the like. */
  readonly udpSocket: UdpSocket | null
}

/** The constructor of {@link Socket} (as node:dgram exports its `Socket`). */
export const Socket = FacadeSocket as unknown as {
  new (type: SocketType | SocketOptions, listener?: MessageListener): Socket
  readonly prototype: Socket
}

/**
 * Creates a node:dgram-compatible socket backed by udp-mmsg: `createSocket('udp4')`,
 * `createSocket('udp6', onMessage)` or `createSocket({ type, reuseAddr, reusePort, ipv6Only,
 * recvBufferSize, sendBufferSize, lookup, signal, ...udp-mmsg options })`. Nothing touches the
 * kernel until `bind()` (or the first `send()`); closing is `close()`, or aborting `signal`.
 *
 * @throws TypeError `ERR_SOCKET_BAD_TYPE` for a type other than `'udp4'`/`'udp6'`;
 * `ERR_INVALID_ARG_TYPE` for a non-function `lookup`, a non-AbortSignal `signal` or a
 * non-number `recvBufferSize`/`sendBufferSize`; RangeError `ERR_OUT_OF_RANGE` for a buffer
 * size that is not an integer in 0..4294967295 (all as node:dgram); a TypeError/RangeError
 * naming a bad udp-mmsg option.
 *
 * @example
 * ```ts
 * import { createSocket } from 'udp-mmsg/dgram'
 * const socket = createSocket({ type: 'udp4', batchSize: 512 })
 * socket.on('message', (msg, rinfo) => console.log(rinfo.address, msg.length))
 * socket.bind(8125)
 * ```
 */
export function createSocket(type: SocketType, callback?: MessageListener): Socket
export function createSocket(options: SocketOptions, callback?: MessageListener): Socket
export function createSocket(type: SocketType | SocketOptions, listener?: MessageListener): Socket {
  return new Socket(type, listener)
}

/**
 * node:dgram's own `_createSocketHandle`, re-exported so the module has node:dgram's exports.
 * It makes a node:dgram (libuv) handle, which facade sockets do not use.
 *
 * @deprecated DEP0112 in Node; kept only for code that still reaches for it.
 * @throws As node:dgram's.
 * @example
 * ```ts
 * import * as dgram from 'udp-mmsg/dgram'
 * typeof dgram._createSocketHandle // 'function' (where Node still has it)
 * ```
 */
export const _createSocketHandle: unknown = (realDgram as unknown as { _createSocketHandle?: unknown })._createSocketHandle
