// The node:dgram facade's bind, lookup and connect, following Node's lib/dgram.js (the
// pending-bind queue, implicit binds, lookup of empty addresses as loopback), and the
// receive side: one UdpSocket batch becomes one 'message' event per datagram.

import * as dns from 'node:dns'
import { EventEmitter } from 'node:events'
import { isIP } from 'node:net'
import { constants as osConstants } from 'node:os'
import type { Batch } from './batch.js'
import { dgram as E } from './errors.js'
import { finishSend, flushNow } from './dgram-send.js'
import {
  BIND_STATE_BINDING,
  BIND_STATE_BOUND,
  BIND_STATE_UNBOUND,
  CONNECT_STATE_CONNECTED,
  CONNECT_STATE_CONNECTING,
  CONNECT_STATE_DISCONNECTED,
  kState,
  rethrow,
} from './dgram-state.js'
import type { Facade, LookupCallback } from './dgram-state.js'
import { UdpSocket } from './socket.js'
import type { BindOptions } from './options.js'
import { dgramPort, dgramString } from './validate.js'

/** Throws ERR_SOCKET_DGRAM_NOT_RUNNING once the socket is closed. */
export function healthCheck(self: Facade): void {
  if (!self[kState].open) throw E.notRunning()
}

/** The core's "wrong address family" argument error is EINVAL from the kernel in Node. */
export function asErrno(err: unknown): unknown {
  const e = err as { code?: unknown; errno?: unknown } | null
  if (e && e.code === 'ERR_INVALID_ARG_VALUE' && typeof e.errno !== 'number') return E.errnoException(osConstants.errno.EINVAL, 'x')
  return err
}

/** Resolves `address` like Node's lookup4/lookup6 (empty means loopback). */
export function lookup(self: Facade, address: string | undefined, callback: LookupCallback): void {
  const state = self[kState]
  const family = self.type === 'udp6' ? 6 : 4
  const host = address || (family === 6 ? '::1' : '127.0.0.1')
  if (state.lookup !== null) return void state.lookup(host, family, callback)
  if (isIP(host) !== 0) return void process.nextTick(callback, null, host, isIP(host))
  return void dns.lookup(host, family, callback)
}

/** Socket.bind(port?, address?, callback?) / bind(options, callback?). */
export function bind(self: Facade, args: unknown[]): void {
  let port = args[0] as unknown
  const address_ = args[1]
  healthCheck(self)
  const state = self[kState]
  if (state.bindState !== BIND_STATE_UNBOUND) throw E.alreadyBound()

  let address: unknown
  if (port !== null && typeof port === 'object') {
    const o = port as { fd?: unknown; address?: unknown; port?: unknown }
    if (o.fd !== undefined) throw E.unsupported('bind({ fd })', 'binding an existing file descriptor')
    address = o.address || ''
    port = o.port
  } else {
    address = typeof address_ === 'function' ? '' : address_
  }
  // Node 20 silently truncates out-of-range ports here; the facade throws like send() does.
  const p = port === undefined || port === null || typeof port === 'function' ? 0 : dgramPort(port, 'Port', true)
  if (!address) address = self.type === 'udp4' ? '0.0.0.0' : '::'
  else dgramString(address, 'address')

  state.bindState = BIND_STATE_BINDING
  const cb = args.length && args[args.length - 1]
  if (typeof cb === 'function') {
    const removeListeners = () => {
      self.removeListener('error', removeListeners)
      self.removeListener('listening', onListening)
    }
    const onListening = () => {
      removeListeners()
      cb.call(self)
    }
    self.on('error', removeListeners)
    self.on('listening', onListening)
  }

  lookup(self, address as string, (err, ip) => {
    if (!state.open) return
    if (err) {
      state.bindState = BIND_STATE_UNBOUND
      dropPending(self, err)
      self.emit('error', err)
      return
    }
    let sock: UdpSocket
    try {
      const opts: Record<string, unknown> = { type: self.type, address: ip, port: p, ...state.ext }
      if (state.reuseAddr) opts.reuseAddr = true
      if (state.ipv6Only && self.type === 'udp6') opts.ipv6Only = true
      sock = new UdpSocket(opts as BindOptions)
    } catch (e) {
      const ex = E.withHostPort(asErrno(e), 'bind', ip, p)
      state.bindState = BIND_STATE_UNBOUND
      dropPending(self, ex)
      self.emit('error', ex)
      return
    }
    startListening(self, sock)
  })
}

/** A failed bind: sends made while binding report its error (Node drops them silently). */
function dropPending(self: Facade, err: unknown): void {
  const state = self[kState]
  const pending = state.sends
  state.sends = []
  for (const e of pending) finishSend(self, e, e.callback ? err : null)
}

function startListening(self: Facade, sock: UdpSocket): void {
  const state = self[kState]
  state.sock = sock
  if (!state.refed) sock.unref()
  // Receive errors (ICMP ECONNREFUSED on a connected socket...) read `recvmsg X` as in Node.
  sock.on('error', (err) => {
    const ex = typeof err.errno === 'number' ? E.errnoException(err.errno, 'recvmsg') : err
    try {
      self.emit('error', ex)
    } catch (e) {
      process.nextTick(rethrow, e)
    }
  })
  state.unsubscribe = sock.onBatch((batch) => onBatch(self, batch))
  state.bindState = BIND_STATE_BOUND
  if (state.recvBufferSize) self.setRecvBufferSize(state.recvBufferSize)
  if (state.sendBufferSize) self.setSendBufferSize(state.sendBufferSize)
  self.emit('listening')
}

function onBatch(self: Facade, batch: Batch): void {
  const n = batch.count
  if (n === 0 || self.listenerCount('message') === 0) return
  const state = self[kState]
  const buf = batch.buffer
  const offsets = batch.offsets
  const lengths = batch.lengths
  const ports = batch.ports
  const fams = batch.families
  const bytes = batch.addressBytes
  const scopes = batch.scopeIds
  // Consecutive datagrams usually share a source: reuse its address text.
  let prev = -1
  let address = ''
  let family = 'IPv4'
  for (let i = 0; i < n && state.open; i++) {
    if (prev === -1 || !sameSource(bytes, fams, scopes, prev, i)) {
      address = batch.address(i)
      family = fams[i] === 6 ? 'IPv6' : 'IPv4'
      prev = i
    }
    const off = offsets[i]
    const len = lengths[i]
    try {
      self.emit('message', buf.subarray(off, off + len), { address, family, port: ports[i], size: len })
    } catch (err) {
      // A throwing listener is an uncaught exception, as with Node, but the rest of the batch
      // is still delivered (each datagram is its own event) and the core is left alone.
      process.nextTick(rethrow, err)
    }
  }
}

function sameSource(bytes: Uint8Array, fams: Uint8Array, scopes: Uint32Array, a: number, b: number): boolean {
  if (fams[a] !== fams[b]) return false
  const n = fams[a] === 4 ? 4 : 16
  const oa = 16 * a
  const ob = 16 * b
  for (let k = 0; k < n; k++) if (bytes[oa + k] !== bytes[ob + k]) return false
  return n === 4 || scopes[a] === scopes[b]
}

/** Socket.connect(port, address?, callback?). */
export function connect(self: Facade, port_: unknown, address_: unknown, callback_: unknown): void {
  const port = dgramPort(port_, 'Port', false)
  let address = address_
  let callback = callback_ as ((err?: unknown) => void) | undefined
  if (typeof address === 'function') {
    callback = address as (err?: unknown) => void
    address = ''
  } else if (address === undefined) {
    address = ''
  }
  dgramString(address, 'address')
  healthCheck(self)
  const state = self[kState]
  if (state.connectState !== CONNECT_STATE_DISCONNECTED) throw E.isConnected()
  state.connectState = CONNECT_STATE_CONNECTING
  if (state.bindState === BIND_STATE_UNBOUND) self.bind({ port: 0 }, null)
  const addr = address
  if (state.bindState !== BIND_STATE_BOUND) {
    enqueue(self, () => doConnect(self, port, addr, callback))
    return
  }
  doConnect(self, port, addr, callback)
}

function doConnect(self: Facade, port: number, address: string, callback: ((err?: unknown) => void) | undefined): void {
  const state = self[kState]
  if (callback) self.once('connect', callback)
  lookup(self, address, (err, ip) => {
    let ex: unknown = err
    if (!state.open) return
    if (!ex) {
      // Sends made before connect() go out unconnected, as they would with Node.
      flushNow(self)
      try {
        ;(state.sock as UdpSocket).connect(ip, port)
      } catch (e) {
        ex = E.withHostPort(asErrno(e), 'connect', address, port)
      }
    }
    if (ex) {
      state.connectState = CONNECT_STATE_DISCONNECTED
      process.nextTick(() => {
        if (callback) {
          self.removeListener('connect', callback)
          callback(ex)
        } else {
          self.emit('error', ex)
        }
      })
      return
    }
    state.connectState = CONNECT_STATE_CONNECTED
    process.nextTick(() => self.emit('connect'))
  })
}

/** Socket.disconnect(). */
export function disconnect(self: Facade): void {
  const state = self[kState]
  if (state.connectState !== CONNECT_STATE_CONNECTED) throw E.notConnected()
  // Node hands connected sends to the kernel synchronously: send those queued this tick first.
  flushNow(self)
  ;(state.sock as UdpSocket).disconnect()
  state.connectState = CONNECT_STATE_DISCONNECTED
}

/** Runs `fn` once the pending bind completes (dropped if it fails), as Node does. */
export function enqueue(self: Facade, fn: () => void): void {
  const state = self[kState]
  if (state.queue === undefined) {
    state.queue = []
    const onListenError = () => {
      self.removeListener('listening', onListenSuccess)
      state.queue = undefined
    }
    const onListenSuccess = () => {
      self.removeListener(EventEmitter.errorMonitor, onListenError)
      const queue = state.queue as Array<() => void>
      state.queue = undefined
      for (const f of queue) f()
    }
    self.once(EventEmitter.errorMonitor, onListenError)
    self.once('listening', onListenSuccess)
  }
  state.queue.push(fn)
}
