// The node:dgram-compatible socket class. Its methods follow Node's lib/dgram.js closely
// (including its quirks) so code written for node:dgram behaves the same; the work is done by
// concern in dgram-bind.ts, dgram-send.ts and dgram-options.ts. Intentional differences are
// listed in the README ("node:dgram facade: differences"). Typed for users as node:dgram's
// Socket (see dgram.ts); argument types here are what Node accepts at run time.

import * as dns from 'node:dns'
import { EventEmitter } from 'node:events'
import { constants as osConstants } from 'node:os'
import { dgram as E } from './errors.js'
import { bind, connect, disconnect, healthCheck, isDnsLookup } from './dgram-bind.js'
import { installLegacy } from './dgram-legacy.js'
import { bufferSize, membership, multicastInterface, option, sourceMembership } from './dgram-options.js'
import { PACE_BURST, sendRate, stopPace } from './dgram-pace.js'
import { finishSend, flushNow, send, sendQueueCount } from './dgram-send.js'
import { BIND_STATE_UNBOUND, CONNECT_STATE_CONNECTED, CONNECT_STATE_DISCONNECTED, kState } from './dgram-state.js'
import type { State } from './dgram-state.js'
import { normalize } from './options.js'
import type { UdpSocket } from './socket.js'
import { dgramString, dgramUint32 } from './validate.js'

/** udp-mmsg options createSocket() accepts on top of Node's (ignored by node:dgram). */
const EXTENSION_OPTIONS = [
  'reusePort',
  'batchSize',
  'maxDatagramSize',
  'maxPendingBatches',
  'coalesceMicros',
  'broadcast',
  'ttl',
  'tos',
  'gso',
  'gro',
  'portable',
  'forceBufferSize',
]

/** The options of a socket created from a type string: none (never written to). */
const NO_OPTIONS: Record<string, unknown> = Object.freeze({})

type AddressInfo = { address: string; family: string; port: number }

/**
 * A node:dgram-compatible socket backed by a batched UdpSocket. Create it with
 * `createSocket()`; see Node's dgram documentation for the behaviour of each method.
 */
export class Socket extends EventEmitter {
  /** `'udp4'` or `'udp6'`, as on a node:dgram socket. */
  readonly type: 'udp4' | 'udp6';
  /** @internal */
  [kState]: State

  constructor(type: unknown, listener?: unknown) {
    super()
    let options: Record<string, unknown>
    if (type !== null && typeof type === 'object') {
      options = type as Record<string, unknown>
      type = options.type
      // As Node: checked here (a bad size at bind time would be thrown where nothing catches it).
      if (options.recvBufferSize) dgramUint32(options.recvBufferSize, 'options.recvBufferSize')
      if (options.sendBufferSize) dgramUint32(options.sendBufferSize, 'options.sendBufferSize')
    } else {
      options = NO_OPTIONS
    }
    if (type !== 'udp4' && type !== 'udp6') throw E.badType()
    const lookup = options.lookup
    if (lookup !== undefined && typeof lookup !== 'function') throw E.invalidArgType('lookup', 'of type function', lookup)
    // Node captures dns.lookup when the socket is created (a later replacement is not seen).
    const resolver = (lookup ?? dns.lookup) as State['lookup']

    const ext: Record<string, unknown> = {}
    let extended = false
    // createSocket('udp4') has no options object: nothing to look up (a keyed load per name
    // here showed in a socket-per-request profile).
    if (options !== NO_OPTIONS) {
      for (const k of EXTENSION_OPTIONS) {
        if (options[k] !== undefined) {
          ext[k] = options[k]
          extended = true
        }
      }
    }
    // maxDatagramSize defaults (in UdpSocket) to the largest UDP payload of the family.
    // Validate the udp-mmsg options now (nothing touches the kernel) rather than at bind time.
    if (extended) normalize({ type, ...ext })

    this.type = type
    this[kState] = {
      sock: null,
      open: true,
      bindState: BIND_STATE_UNBOUND,
      connectState: CONNECT_STATE_DISCONNECTED,
      queue: undefined,
      lookup: resolver,
      dnsLookup: isDnsLookup(resolver),
      holder: null,
      receiving: false,
      reuseAddr: options.reuseAddr as boolean | undefined,
      ipv6Only: options.ipv6Only as boolean | undefined,
      recvBufferSize: options.recvBufferSize as number | undefined,
      sendBufferSize: options.sendBufferSize as number | undefined,
      ext,
      refed: true,
      sends: [],
      sendBytes: 0,
      inFlight: null,
      flushScheduled: false,
      paceRate: sendRate(options) / 1000,
      paceTokens: PACE_BURST,
      paceAt: 0,
      paceTimer: null,
      dispatching: false,
      unsubscribe: null,
    }
    if (typeof listener === 'function') this.on('message', listener as (...args: unknown[]) => void)

    if (options.signal !== undefined) {
      const signal = options.signal as AbortSignal | null
      if (signal === null || typeof signal !== 'object' || !('aborted' in signal)) {
        throw E.invalidArgType('options.signal', 'an instance of AbortSignal', signal)
      }
      const onAborted = () => {
        if (this[kState].open) this.close()
      }
      if (signal.aborted) {
        onAborted()
      } else {
        signal.addEventListener('abort', onAborted, { once: true })
        this.once('close', () => signal.removeEventListener('abort', onAborted))
      }
    }
  }

  /** The UdpSocket behind this facade (`null` before bind and after close): stats(), batches... */
  get udpSocket(): UdpSocket | null {
    return this[kState].sock
  }

  bind(port?: unknown, address?: unknown, ...rest: unknown[]): this {
    bind(this, arguments.length === 0 ? [] : [port, address, ...rest].slice(0, arguments.length))
    return this
  }

  connect(port: unknown, address?: unknown, callback?: unknown): void {
    connect(this, port, address, callback)
  }

  disconnect(): void {
    disconnect(this)
  }

  send(buffer: unknown, offset?: unknown, length?: unknown, port?: unknown, address?: unknown, callback?: unknown): void {
    send(this, buffer, offset, length, port, address, callback)
  }

  close(callback?: () => void): this {
    const state = this[kState]
    if (typeof callback === 'function') this.on('close', callback)
    if (state.queue !== undefined) {
      state.queue.push(() => this.close())
      return this
    }
    healthCheck(this)
    // Node hands connected sends to the kernel at once, and an unconnected one only after its
    // (always asynchronous) lookup, by which time the socket is closed: it is dropped without a
    // callback. So: the connected sends of this tick go out, the others are dropped.
    // Sends that pacing held back had their lookup long ago: Node would have sent them.
    if (state.sends.length > 0) {
      const unconnected = state.sends.filter((e) => !e.connected && !e.held)
      state.sends = state.sends.filter((e) => e.connected || e.held)
      for (const e of unconnected) finishSend(this, e, null, false, true)
      flushNow(this)
    }
    stopPace(state)
    state.open = false
    state.receiving = false
    const pending = state.sends
    state.sends = []
    const sock = state.sock
    state.sock = null
    if (sock !== null) {
      // Closed first, the socket is not told to stop reading (a native call) just before.
      sock.close()
      if (state.unsubscribe) state.unsubscribe()
    }
    if (state.holder !== null) {
      const holder = state.holder
      state.holder = null
      holder.close()
    }
    for (const e of pending) finishSend(this, e, e.callback ? E.notRunning() : null)
    process.nextTick(() => this.emit('close'))
    return this
  }

  address(): AddressInfo {
    healthCheck(this)
    const sock = this[kState].sock
    if (sock === null) throw E.errnoException(osConstants.errno.EBADF, 'getsockname')
    const a = sock.localAddress()
    return { address: a.address, family: a.family, port: a.port }
  }

  remoteAddress(): AddressInfo {
    healthCheck(this)
    const state = this[kState]
    if (state.connectState !== CONNECT_STATE_CONNECTED) throw E.notConnected()
    const a = (state.sock as UdpSocket).remoteAddress()
    if (a === null) throw E.errnoException(osConstants.errno.ENOTCONN, 'getpeername')
    return { address: a.address, family: a.family, port: a.port }
  }

  setRecvBufferSize(size: number): void {
    bufferSize(this, size, 'recv')
  }

  setSendBufferSize(size: number): void {
    bufferSize(this, size, 'send')
  }

  /** The kernel's value (Linux reports twice what was set), as Node returns it. */
  getRecvBufferSize(): number {
    return bufferSize(this, 0, 'recv') as number
  }

  getSendBufferSize(): number {
    return bufferSize(this, 0, 'send') as number
  }

  getSendQueueSize(): number {
    return this[kState].sendBytes
  }

  getSendQueueCount(): number {
    return sendQueueCount(this)
  }

  setBroadcast(flag: unknown): void {
    option(this, 'setBroadcast', (sock) => sock.setBroadcast(!!flag))
  }

  setTTL(ttl: unknown): number {
    if (typeof ttl !== 'number') throw E.invalidArgType('ttl', 'of type number', ttl)
    option(this, 'setTTL', (sock) => sock.setTTL(ttl | 0))
    return ttl
  }

  setMulticastTTL(ttl: unknown): number {
    if (typeof ttl !== 'number') throw E.invalidArgType('ttl', 'of type number', ttl)
    option(this, 'setMulticastTTL', (sock) => sock.setMulticastTTL(ttl | 0))
    return ttl
  }

  setMulticastLoopback(flag: unknown): unknown {
    option(this, 'setMulticastLoopback', (sock) => sock.setMulticastLoopback(!!flag))
    return flag
  }

  setMulticastInterface(interfaceAddress: unknown): void {
    healthCheck(this)
    dgramString(interfaceAddress, 'interfaceAddress')
    option(this, 'setMulticastInterface', (sock) => sock.setMulticastInterface(multicastInterface(this.type, interfaceAddress)))
  }

  addMembership(multicastAddress: unknown, interfaceAddress?: unknown): void {
    membership(this, 'addMembership', multicastAddress, interfaceAddress)
  }

  dropMembership(multicastAddress: unknown, interfaceAddress?: unknown): void {
    membership(this, 'dropMembership', multicastAddress, interfaceAddress)
  }

  addSourceSpecificMembership(sourceAddress: unknown, groupAddress: unknown, interfaceAddress?: unknown): void {
    sourceMembership(this, 'addSourceSpecificMembership', sourceAddress, groupAddress, interfaceAddress)
  }

  dropSourceSpecificMembership(sourceAddress: unknown, groupAddress: unknown, interfaceAddress?: unknown): void {
    sourceMembership(this, 'dropSourceSpecificMembership', sourceAddress, groupAddress, interfaceAddress)
  }

  ref(): this {
    const state = this[kState]
    state.refed = true
    if (state.sock !== null) state.sock.ref()
    return this
  }

  unref(): this {
    const state = this[kState]
    state.refed = false
    if (state.sock !== null) state.sock.unref()
    return this
  }
}

installLegacy(Socket.prototype as never)

if (typeof Symbol.asyncDispose === 'symbol') {
  Object.defineProperty(Socket.prototype, Symbol.asyncDispose, {
    value: function (this: Socket): Promise<void> {
      if (!this[kState].open) return Promise.resolve()
      return new Promise<void>((resolve) => this.close(resolve))
    },
    enumerable: true,
    writable: true,
    configurable: true,
  })
}
