// The state of one node:dgram facade socket, shared by the files that implement it by concern:
// dgram-socket.ts (the class), dgram-bind.ts (bind, lookup, connect), dgram-send.ts (send queue
// and coalescing), dgram-options.ts (socket-option methods).

import type * as nodeDgram from 'node:dgram'
import type { UdpSocket } from './socket.js'

export const BIND_STATE_UNBOUND = 0
export const BIND_STATE_BINDING = 1
export const BIND_STATE_BOUND = 2

export const CONNECT_STATE_DISCONNECTED = 0
export const CONNECT_STATE_CONNECTING = 1
export const CONNECT_STATE_CONNECTED = 2

/** The state slot of a facade socket (a symbol, so it stays off the node:dgram surface). */
export const kState = Symbol('udp-mmsg dgram state')

/** A lookup callback, as dns.lookup calls it. */
export type LookupCallback = (err: NodeJS.ErrnoException | null, address: string, family?: number) => void

/** A send() callback: `(err, bytes)`. */
export type SendCallback = (error: Error | null, bytes?: number) => void

/** One send() call waiting for the next flush (and maybe for DNS). */
export interface SendEntry {
  data: ArrayBufferView | ArrayBufferView[]
  bytes: number
  connected: boolean
  address: string | undefined
  port: number | undefined
  ip: string | undefined
  callback: SendCallback | undefined
  error: unknown
  ready: boolean
  /** A flush found it ready but pacing held it back: node:dgram would have sent it by now, so
   * close() sends it rather than dropping it. */
  held: boolean
  /** Sent from a 'message' listener: an answer, paced by the requests it answers, not by the
   * facade. */
  answer: boolean
}

/** Everything a facade socket keeps. */
export interface State {
  sock: UdpSocket | null
  open: boolean
  bindState: number
  connectState: number
  /** Calls to run once a pending bind completes (Node's queue). */
  queue: Array<() => void> | undefined
  /** The lookup (called as Node calls it: `(host, family, callback)`): the user's, or dns.lookup
   * as it was when the socket was created (as Node captures it). */
  lookup: (host: string, family: number, callback: LookupCallback) => void
  /** `lookup` is Node's own dns.lookup (IP literals need not go through it). */
  dnsLookup: boolean
  /** In a cluster worker: the internal node:dgram socket holding the primary's handle. */
  holder: nodeDgram.Socket | null
  /** What the deprecated `_receiving` reads (Node: reading started and not stopped). */
  receiving: boolean
  reuseAddr: boolean | undefined
  ipv6Only: boolean | undefined
  recvBufferSize: number | undefined
  sendBufferSize: number | undefined
  /** The udp-mmsg options given to createSocket. */
  ext: Record<string, unknown>
  refed: boolean
  /** Sends waiting for the next flush (and for DNS), in order. */
  sends: SendEntry[]
  sendBytes: number
  inFlight: Promise<number> | null
  flushScheduled: boolean
  /** Send pacing (dgram-send.ts): datagrams allowed per millisecond (Infinity: not paced), the
   * datagrams that may go out now, when that was computed (performance.now()), and the timer
   * that resumes a held-back burst. */
  paceRate: number
  paceTokens: number
  paceAt: number
  paceTimer: NodeJS.Timeout | null
  /** 'message' events of a received batch are being emitted: a send flushes when they are done. */
  dispatching: boolean
  unsubscribe: (() => void) | null
}

/** What the concern files need of the facade class (it is an EventEmitter with this state). */
export interface Facade {
  [kState]: State
  readonly type: 'udp4' | 'udp6'
  emit(event: string | symbol, ...args: unknown[]): boolean
  on(event: string | symbol, listener: (...args: any[]) => void): this
  once(event: string | symbol, listener: (...args: any[]) => void): this
  removeListener(event: string | symbol, listener: (...args: any[]) => void): this
  listenerCount(event: string | symbol): number
  close(callback?: () => void): this
  bind(...args: unknown[]): this
  setRecvBufferSize(size: number): void
  setSendBufferSize(size: number): void
}

/** Rethrows `err` (from process.nextTick: an uncaught exception, as a throwing listener is in Node). */
export function rethrow(err: unknown): never {
  throw err
}
