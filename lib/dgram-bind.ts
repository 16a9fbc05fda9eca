// The node:dgram facade's bind, lookup and connect, following Node's lib/dgram.js (the
// pending-bind queue, implicit binds, lookup of empty addresses as loopback), and the
// receive side: one UdpSocket batch becomes one 'message' event per datagram.

import { EventEmitter } from 'node:events'
import { networkInterfaces, constants as osConstants } from 'node:os'
import { ipFamily } from './address.js'
import type { Batch } from './batch.js'
import { dgram as E } from './errors.js'
import { endDispatch, finishSend, flushNow } from './dgram-send.js'
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
import { bindInWorker, fdTypeName, inClusterWorker } from './dgram-cluster.js'
import type { Obtained } from './dgram-cluster.js'
import { UdpSocket } from './socket.js'
import { kReadAtOnce, setSink } from './receive.js'
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

/** True for Node's own dns.lookup (it carries Node's `customPromisifyArgs` symbol; a replacement
 * does not): a socket using it may skip the call for IP literals, which dns.lookup answers on
 * the next tick without resolving, exactly as the fast paths here do. */
export function isDnsLookup(f: unknown): boolean {
  if (f === lastLookup.f) return lastLookup.is
  const is = typeof f === 'function' && Object.getOwnPropertySymbols(f).some((s) => s.description === 'customPromisifyArgs')
  lastLookup = { f, is }
  return is
}
/** The answer for the last function asked about (the same dns.lookup, socket after socket). */
let lastLookup: { f: unknown; is: boolean } = { f: undefined, is: false }

/** Resolves `address` like Node's lookup4/lookup6 (empty means loopback), always through the
 * socket's lookup function: the `lookup` option, or dns.lookup as it was at createSocket(). */
export function lookup(self: Facade, address: string | undefined, callback: LookupCallback): void {
  const state = self[kState]
  const family = self.type === 'udp6' ? 6 : 4
  const host = address || (family === 6 ? '::1' : '127.0.0.1')
  if (state.dnsLookup) {
    const fam = ipFamily(host)
    if (fam !== 0) return void process.nextTick(callback, null, host, fam)
  }
  return void state.lookup(host, family, callback)
}

/** Socket.bind(port?, address?, callback?) / bind(options, callback?). */
export function bind(self: Facade, args: unknown[]): void {
  let port = args[0] as unknown
  const address_ = args[1]
  healthCheck(self)
  const state = self[kState]
  if (state.bindState !== BIND_STATE_UNBOUND) throw E.alreadyBound()

  let address: unknown
  let exclusive = false
  let fd: number | undefined
  if (port !== null && typeof port === 'object') {
    const o = port as { fd?: unknown; address?: unknown; port?: unknown; exclusive?: unknown }
    // Node opens an fd given as a positive int32 and ignores address and port then.
    if (typeof o.fd === 'number' && (o.fd | 0) === o.fd && o.fd > 0) fd = o.fd
    exclusive = !!o.exclusive
    address = o.address || ''
    port = o.port
  } else {
    address = typeof address_ === 'function' ? '' : address_
  }
  // Node 20 silently truncates out-of-range ports here; the facade throws like send() does.
  const p = fd !== undefined || port === undefined || port === null || typeof port === 'function' ? 0 : dgramPort(port, 'Port', true)
  if (!address) address = self.type === 'udp4' ? '0.0.0.0' : '::'
  else if (fd === undefined) dgramString(address, 'address')

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

  const shared = inClusterWorker() && !exclusive
  if (fd !== undefined && !shared) {
    // As Node: the fd is opened at once and 'listening' is emitted synchronously.
    let sock: UdpSocket
    try {
      sock = new UdpSocket({ type: self.type, fd, ...adoptOptions(state.ext), [kReadAtOnce]: true } as BindOptions)
    } catch (e) {
      const code = (e as { code?: unknown }).code
      // As Node: anything but a UDP socket is ERR_INVALID_FD_TYPE (with Node's name for it),
      // and the socket stays "binding" (a second bind() throws ERR_SOCKET_ALREADY_BOUND).
      if (code === 'EBADF' || code === 'ENOTSOCK' || code === 'EINVAL') throw E.invalidFdType(fdTypeName(fd, code))
      throw E.withHostPort(asErrno(e), 'open', undefined, undefined)
    }
    startListening(self, sock)
    return
  }

  const onBound = (ip: string) => (err: Error | null, got?: Obtained) => {
    if (err || got === undefined) return failBind(self, err, ip, p)
    if (!state.open) return void (got.holder && got.holder.close())
    let sock: UdpSocket
    try {
      sock = new UdpSocket({ type: self.type, fd: got.fd, ...adoptOptions(state.ext), [kReadAtOnce]: true } as BindOptions)
    } catch (e) {
      if (got.holder) got.holder.close()
      return failBind(self, E.withHostPort(asErrno(e), 'bind', ip, p), ip, p)
    }
    const holder = got.holder
    state.holder = holder
    // The cluster closes the handles it gave a worker when the worker disconnects: the facade
    // socket goes with it, as node:dgram's (whose handle it is) would.
    if (holder !== null) {
      holder.once('close', () => {
        if (state.holder === holder && state.open) {
          state.holder = null
          self.close()
        }
      })
    }
    startListening(self, sock)
  }

  if (fd !== undefined) {
    bindInWorker({ type: self.type, address: '', port: 0, fd, reuseAddr: state.reuseAddr, ipv6Only: state.ipv6Only }, onBound(''))
    return
  }

  lookup(self, address as string, (err, ip) => {
    if (!state.open) return
    if (err) return failBind(self, err, ip, p)
    if (shared) {
      bindInWorker(
        { type: self.type, address: ip, port: p, fd: undefined, reuseAddr: state.reuseAddr, ipv6Only: state.ipv6Only },
        onBound(ip),
      )
      return
    }
    let sock: UdpSocket
    try {
      const opts: Record<string | symbol, unknown> = { type: self.type, address: ip, port: p, [kReadAtOnce]: true }
      for (const k in state.ext) opts[k] = state.ext[k]
      if (state.reuseAddr) opts.reuseAddr = true
      if (state.ipv6Only && self.type === 'udp6') opts.ipv6Only = true
      sock = new UdpSocket(opts as BindOptions)
    } catch (e) {
      return failBind(self, E.withHostPort(asErrno(e), 'bind', ip, p), ip, p)
    }
    startListening(self, sock)
  })
}

/** The udp-mmsg options that apply to an adopted socket (reusePort only applies to a bind). */
function adoptOptions(ext: Record<string, unknown>): Record<string, unknown> {
  const { reusePort: _unused, ...rest } = ext
  return rest
}

/** A failed bind: back to unbound, the sends waiting for it dropped (as Node), 'error'. */
function failBind(self: Facade, err: unknown, _ip: string, _port: number): void {
  const state = self[kState]
  if (!state.open) return
  state.bindState = BIND_STATE_UNBOUND
  dropPending(self)
  self.emit('error', err)
}

/** Sends made while a bind was pending are dropped without a callback when it fails, as Node's. */
function dropPending(self: Facade): void {
  const state = self[kState]
  const pending = state.sends
  state.sends = []
  for (const e of pending) finishSend(self, e, null, false, true)
}

/** The socket is bound to `sock`: receive from it, then 'listening' (as Node's startListening). */
export function startListening(self: Facade, sock: UdpSocket): void {
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
  setSink(sock, (batch) => onBatch(self, batch))
  state.unsubscribe = () => setSink(sock, null)
  state.receiving = true
  state.bindState = BIND_STATE_BOUND
  if (state.recvBufferSize) self.setRecvBufferSize(state.recvBufferSize)
  if (state.sendBufferSize) self.setSendBufferSize(state.sendBufferSize)
  self.emit('listening')
}

function onBatch(self: Facade, batch: Batch): void {
  const n = batch.count
  if (n === 0 || self.listenerCount('message') === 0) return
  const state = self[kState]
  state.dispatching = true
  try {
    emitMessages(self, batch, n)
  } finally {
    endDispatch(self)
  }
}

/** One 'message' per datagram of `batch`. */
function emitMessages(self: Facade, batch: Batch, n: number): void {
  if (n === 1) return emitOne(self, batch)
  const state = self[kState]
  const buf = batch.buffer
  const offsets = batch.offsets
  const lengths = batch.lengths
  const ports = batch.ports
  const fams = batch.families
  // Consecutive datagrams usually share a source: reuse its address text.
  let prev = -1
  let address = ''
  let family = 'IPv4'
  for (let i = 0; i < n && state.open; i++) {
    if (prev === -1 || !batch.sameSource(prev, i)) {
      address = batch.address(i)
      family = fams[i] === 6 ? 'IPv6' : 'IPv4'
      // Node names the scope of a link-local sender by its interface (`fe80::1%eth0`).
      if (family === 'IPv6') {
        const scope = batch.scopeId(i)
        if (scope !== 0) address = scopeByName(address, scope)
      }
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

/** A batch of one (a lone query, ping-pong): read through the batch's accessors, without the
 * per-section views a longer batch amortizes. */
function emitOne(self: Facade, batch: Batch): void {
  const msg = batch.data(0)
  const family = batch.family(0)
  let address = batch.address(0)
  if (family === 'IPv6') {
    const scope = batch.scopeId(0)
    if (scope !== 0) address = scopeByName(address, scope)
  }
  try {
    self.emit('message', msg, { address, family, port: batch.port(0), size: msg.length })
  } catch (err) {
    process.nextTick(rethrow, err)
  }
}

let ifNames: Map<number, string> | null = null

/** `addr%<index>` as `addr%<interface name>` (if_indextoname, as libuv formats it). */
function scopeByName(address: string, scope: number): string {
  if (ifNames === null || !ifNames.has(scope)) {
    ifNames = new Map()
    for (const [name, entries] of Object.entries(networkInterfaces())) {
      for (const e of entries ?? []) if (e.family === 'IPv6' && e.scopeid) ifNames.set(e.scopeid, name)
    }
  }
  // A scope no interface claims keeps its number (and is not looked up again).
  if (!ifNames.has(scope)) ifNames.set(scope, String(scope))
  const name = ifNames.get(scope)
  const pct = address.lastIndexOf('%')
  return name === undefined || pct < 0 ? address : `${address.slice(0, pct)}%${name}`
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
  if (state.bindState === BIND_STATE_UNBOUND) self.bind({ port: 0, exclusive: true }, null)
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
