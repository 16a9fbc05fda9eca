'use strict'
// A node:dgram-compatible facade over UdpSocket: `require('udp-mmsg/dgram')` is a drop-in
// for `require('node:dgram')` in ingestion code. Receiving: one UdpSocket batch becomes one
// 'message' event per datagram (no extra system calls). Sending: every send() made in the
// same tick is coalesced into one sendmmsg batch on process.nextTick, and each callback
// still gets its own (err, bytes) like Node's.
//
// Argument handling follows Node's lib/dgram.js closely (including its quirks) so code written
// for node:dgram behaves the same. Intentional differences are listed in the README
// ("node:dgram facade: differences").

const { EventEmitter } = require('node:events')
const dns = require('node:dns')
const { isIP } = require('node:net')
const { constants: osConstants } = require('node:os')
const { getSystemErrorName } = require('node:util')
const { UdpSocket } = require('./socket.js')
const { normalize } = require('./options.js')

const BIND_STATE_UNBOUND = 0
const BIND_STATE_BINDING = 1
const BIND_STATE_BOUND = 2

const CONNECT_STATE_DISCONNECTED = 0
const CONNECT_STATE_CONNECTING = 1
const CONNECT_STATE_CONNECTED = 2

/** Largest UDP payload: the facade receives whole datagrams by default, as Node does. */
const DEFAULT_MAX_DATAGRAM_SIZE = 65535

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

// ---- errors, shaped like Node's ---------------------------------------------------------------

function codedError(Ctor, code, message, extra) {
  const err = new Ctor(message)
  // Like Node's internal errors: the stack reads `Error [ERR_X]: message`, the name stays plain.
  err.name = `${err.name} [${code}]`
  void err.stack
  delete err.name
  Object.defineProperty(err, 'code', { value: code, enumerable: true, writable: true, configurable: true })
  if (code.startsWith('ERR_')) Object.defineProperty(err, 'toString', { value: nodeErrorToString, writable: true, configurable: true })
  if (extra) Object.assign(err, extra)
  return err
}

function nodeErrorToString() {
  return `${this.name} [${this.code}]: ${this.message}`
}

function describe(value) {
  if (value == null) return String(value)
  if (typeof value === 'function') return `function ${value.name || '<anonymous>'}`
  if (typeof value === 'object') {
    const name = value.constructor && value.constructor.name
    return name ? `an instance of ${name}` : 'an object'
  }
  let shown = String(value)
  if (shown.length > 28) shown = `${shown.slice(0, 25)}...`
  if (typeof value === 'string') shown = `'${shown}'`
  return `type ${typeof value} (${shown})`
}

const E = {
  badType: () => codedError(TypeError, 'ERR_SOCKET_BAD_TYPE', 'Bad socket type specified. Valid types are: udp4, udp6'),
  notRunning: () => codedError(Error, 'ERR_SOCKET_DGRAM_NOT_RUNNING', 'Not running'),
  alreadyBound: () => codedError(Error, 'ERR_SOCKET_ALREADY_BOUND', 'Socket is already bound'),
  isConnected: () => codedError(Error, 'ERR_SOCKET_DGRAM_IS_CONNECTED', 'Already connected'),
  notConnected: () => codedError(Error, 'ERR_SOCKET_DGRAM_NOT_CONNECTED', 'Not connected'),
  badBufferSize: () => codedError(TypeError, 'ERR_SOCKET_BAD_BUFFER_SIZE', 'Buffer size must be a positive integer'),
  badPort: (name, port, allowZero) =>
    codedError(RangeError, 'ERR_SOCKET_BAD_PORT', `${name} should be ${allowZero ? '>=' : '>'} 0 and < 65536. Received ${describe(port)}.`),
  outOfBounds: (name) => codedError(RangeError, 'ERR_BUFFER_OUT_OF_BOUNDS', `"${name}" is outside of buffer bounds`),
  invalidArgType: (name, expected, value) =>
    codedError(TypeError, 'ERR_INVALID_ARG_TYPE', `The "${name}" argument must be ${expected}. Received ${describe(value)}`),
  unsupported: (what, hint) =>
    codedError(
      Error,
      'ERR_UDP_MMSG_UNSUPPORTED',
      `udp-mmsg/dgram: ${what} is not supported${hint ? `: ${hint}` : ''}. Use node:dgram for this socket if you need it.`,
    ),
}

/** Node's ErrnoException: `syscall CODE`, negative errno. */
function errnoException(errno, syscall) {
  const n = -Math.abs(errno)
  let code
  try {
    code = getSystemErrorName(n)
  } catch {
    code = `Unknown system error ${n}`
  }
  return codedError(Error, code, `${syscall} ${code}`, { errno: n, syscall })
}

/** Node's ExceptionWithHostPort from an errno error (others are returned unchanged). */
function withHostPort(err, syscall, address, port) {
  if (!err || typeof err.errno !== 'number' || typeof err.code !== 'string' || err.code.startsWith('ERR_')) return err
  let details = ''
  if (port && port > 0) details = ` ${address}:${port}`
  else if (address) details = ` ${address}`
  const ex = codedError(Error, err.code, `${syscall} ${err.code}${details}`, { errno: err.errno, syscall })
  if (address) ex.address = address
  if (port) ex.port = port
  return ex
}

/** The core's "wrong address family" argument error is EINVAL from the kernel in Node. */
function asErrno(err) {
  if (err && err.code === 'ERR_INVALID_ARG_VALUE' && typeof err.errno !== 'number') return errnoException(osConstants.errno.EINVAL, 'x')
  return err
}

/** What Node throws for buffer-size calls on an unbound socket. */
function bufferSizeError(errno, which) {
  const name = getSystemErrorName(-errno)
  const syscall = which === 'recv' ? 'uv_recv_buffer_size' : 'uv_send_buffer_size'
  const message = `Could not get or set buffer size: ${syscall} returned ${name} (${name === 'EBADF' ? 'bad file descriptor' : name})`
  const err = codedError(Error, 'ERR_SOCKET_BUFFER_SIZE', message, {
    errno: -errno,
    syscall,
    info: { errno: -errno, code: name, message: name, syscall },
  })
  err.name = 'SystemError'
  return err
}

// ---- argument validation (Node's validators) --------------------------------------------------

function validatePort(port, name, allowZero) {
  if (
    (typeof port !== 'number' && typeof port !== 'string') ||
    (typeof port === 'string' && port.trim().length === 0) ||
    +port !== +port >>> 0 ||
    port > 0xffff ||
    (port === 0 && !allowZero) ||
    (!allowZero && +port === 0)
  ) {
    throw E.badPort(name, port, allowZero)
  }
  return +port | 0
}

function validateString(value, name) {
  if (typeof value !== 'string') throw E.invalidArgType(name, 'of type string', value)
}

const BUFFER_TYPES = 'of type string or an instance of Buffer, TypedArray, or DataView'

function toBuffer(part) {
  if (typeof part === 'string') return Buffer.from(part)
  if (ArrayBuffer.isView(part)) return part
  return null
}

function sliceBuffer(buffer, offset, length) {
  if (typeof buffer === 'string') buffer = Buffer.from(buffer)
  else if (!ArrayBuffer.isView(buffer)) throw E.invalidArgType('buffer', BUFFER_TYPES, buffer)
  offset = offset >>> 0
  length = length >>> 0
  if (offset > buffer.byteLength) throw E.outOfBounds('offset')
  if (offset + length > buffer.byteLength) throw E.outOfBounds('length')
  return Buffer.from(buffer.buffer, buffer.byteOffset + offset, length)
}

function fixBufferList(list) {
  const out = new Array(list.length)
  for (let i = 0; i < list.length; i++) {
    const b = toBuffer(list[i])
    if (b === null) return null
    out[i] = b
  }
  return out
}

// ---- the socket -------------------------------------------------------------------------------

const kState = Symbol('udp-mmsg dgram state')

/**
 * A node:dgram-compatible socket backed by a batched UdpSocket. Create it with
 * `createSocket()`; see Node's dgram documentation for the behaviour of each method.
 */
class Socket extends EventEmitter {
  constructor(type, listener) {
    super()
    let options
    if (type !== null && typeof type === 'object') {
      options = type
      type = options.type
    } else {
      options = {}
    }
    if (type !== 'udp4' && type !== 'udp6') throw E.badType()
    const lookup = options.lookup
    if (lookup !== undefined && typeof lookup !== 'function') throw E.invalidArgType('options.lookup', 'of type function', lookup)

    const ext = {}
    for (const k of EXTENSION_OPTIONS) if (options[k] !== undefined) ext[k] = options[k]
    if (ext.maxDatagramSize === undefined) ext.maxDatagramSize = DEFAULT_MAX_DATAGRAM_SIZE
    // Validate the udp-mmsg options now (nothing touches the kernel) rather than at bind time.
    normalize({ type, ...ext })

    /** `'udp4'` or `'udp6'`, as on a node:dgram socket. */
    this.type = type
    this[kState] = {
      sock: null,
      open: true,
      bindState: BIND_STATE_UNBOUND,
      connectState: CONNECT_STATE_DISCONNECTED,
      queue: undefined,
      lookup: lookup || null,
      reuseAddr: options.reuseAddr,
      ipv6Only: options.ipv6Only,
      recvBufferSize: options.recvBufferSize,
      sendBufferSize: options.sendBufferSize,
      ext,
      refed: true,
      // Sends waiting for the next flush (and for DNS), in order.
      sends: [],
      sendBytes: 0,
      inFlight: null,
      flushScheduled: false,
      unsubscribe: null,
    }
    if (typeof listener === 'function') this.on('message', listener)

    if (options.signal !== undefined) {
      const signal = options.signal
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
  get udpSocket() {
    return this[kState].sock
  }

  _healthCheck() {
    if (!this[kState].open) throw E.notRunning()
  }

  /** Resolves `address` like Node's lookup4/lookup6 (empty means loopback). */
  _lookup(address, callback) {
    const state = this[kState]
    const family = this.type === 'udp6' ? 6 : 4
    const host = address || (family === 6 ? '::1' : '127.0.0.1')
    if (state.lookup !== null) return state.lookup(host, family, callback)
    if (isIP(host) !== 0) return process.nextTick(callback, null, host, isIP(host))
    return dns.lookup(host, family, callback)
  }

  bind(port_, address_ /* , callback */) {
    let port = port_
    this._healthCheck()
    const state = this[kState]
    if (state.bindState !== BIND_STATE_UNBOUND) throw E.alreadyBound()

    let address
    if (port !== null && typeof port === 'object') {
      if (port.fd !== undefined) throw E.unsupported('bind({ fd })', 'binding an existing file descriptor')
      address = port.address || ''
      port = port.port
    } else {
      address = typeof address_ === 'function' ? '' : address_
    }
    // Node 20 silently truncates out-of-range ports here; the facade throws like send() does.
    port = port === undefined || port === null || typeof port === 'function' ? 0 : validatePort(port, 'Port', true)
    if (!address) address = this.type === 'udp4' ? '0.0.0.0' : '::'
    else validateString(address, 'address')

    state.bindState = BIND_STATE_BINDING
    const cb = arguments.length && arguments[arguments.length - 1]
    if (typeof cb === 'function') {
      const removeListeners = () => {
        this.removeListener('error', removeListeners)
        this.removeListener('listening', onListening)
      }
      const onListening = () => {
        removeListeners()
        cb.call(this)
      }
      this.on('error', removeListeners)
      this.on('listening', onListening)
    }

    this._lookup(address, (err, ip) => {
      if (!state.open) return
      if (err) {
        state.bindState = BIND_STATE_UNBOUND
        this._dropPending(err)
        this.emit('error', err)
        return
      }
      let sock
      try {
        const opts = { type: this.type, address: ip, port, ...state.ext }
        if (state.reuseAddr) opts.reuseAddr = true
        if (state.ipv6Only && this.type === 'udp6') opts.ipv6Only = true
        sock = new UdpSocket(opts)
      } catch (e) {
        const ex = withHostPort(asErrno(e), 'bind', ip, port)
        state.bindState = BIND_STATE_UNBOUND
        this._dropPending(ex)
        this.emit('error', ex)
        return
      }
      this._startListening(sock)
    })
    return this
  }

  /** A failed bind: sends made while binding report its error (Node drops them silently). */
  _dropPending(err) {
    const state = this[kState]
    const pending = state.sends
    state.sends = []
    for (const e of pending) this._finish(e, e.callback ? err : null)
  }

  _startListening(sock) {
    const state = this[kState]
    state.sock = sock
    if (!state.refed) sock.unref()
    // Receive errors (ICMP ECONNREFUSED on a connected socket...) read `recvmsg X` as in Node.
    sock.on('error', (err) => {
      const ex = typeof err.errno === 'number' ? errnoException(err.errno, 'recvmsg') : err
      try {
        this.emit('error', ex)
      } catch (e) {
        process.nextTick(rethrow, e)
      }
    })
    state.unsubscribe = sock.onBatch((batch) => this._onBatch(batch))
    state.bindState = BIND_STATE_BOUND
    if (state.recvBufferSize) this.setRecvBufferSize(state.recvBufferSize)
    if (state.sendBufferSize) this.setSendBufferSize(state.sendBufferSize)
    this.emit('listening')
  }

  _onBatch(batch) {
    const n = batch.count
    if (n === 0 || this.listenerCount('message') === 0) return
    const state = this[kState]
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
        this.emit('message', buf.subarray(off, off + len), { address, family, port: ports[i], size: len })
      } catch (err) {
        // A throwing listener is an uncaught exception, as with Node, but the rest of the batch
        // is still delivered (each datagram is its own event) and the core is left alone.
        process.nextTick(rethrow, err)
      }
    }
  }

  connect(port, address, callback) {
    port = validatePort(port, 'Port', false)
    if (typeof address === 'function') {
      callback = address
      address = ''
    } else if (address === undefined) {
      address = ''
    }
    validateString(address, 'address')
    this._healthCheck()
    const state = this[kState]
    if (state.connectState !== CONNECT_STATE_DISCONNECTED) throw E.isConnected()
    state.connectState = CONNECT_STATE_CONNECTING
    if (state.bindState === BIND_STATE_UNBOUND) this.bind({ port: 0 }, null)
    if (state.bindState !== BIND_STATE_BOUND) {
      this._enqueue(() => this._connect(port, address, callback))
      return
    }
    this._connect(port, address, callback)
  }

  _connect(port, address, callback) {
    const state = this[kState]
    if (callback) this.once('connect', callback)
    this._lookup(address, (ex, ip) => {
      if (!state.open) return
      if (!ex) {
        // Sends made before connect() go out unconnected, as they would with Node.
        this._flushNow()
        try {
          state.sock.connect(ip, port)
        } catch (e) {
          ex = withHostPort(asErrno(e), 'connect', address, port)
        }
      }
      if (ex) {
        state.connectState = CONNECT_STATE_DISCONNECTED
        process.nextTick(() => {
          if (callback) {
            this.removeListener('connect', callback)
            callback(ex)
          } else {
            this.emit('error', ex)
          }
        })
        return
      }
      state.connectState = CONNECT_STATE_CONNECTED
      process.nextTick(() => this.emit('connect'))
    })
  }

  disconnect() {
    const state = this[kState]
    if (state.connectState !== CONNECT_STATE_CONNECTED) throw E.notConnected()
    // Node hands connected sends to the kernel synchronously: send those queued this tick first.
    this._flushNow()
    state.sock.disconnect()
    state.connectState = CONNECT_STATE_DISCONNECTED
  }

  /** Runs `fn` once the pending bind completes (dropped if it fails), as Node does. */
  _enqueue(fn) {
    const state = this[kState]
    if (state.queue === undefined) {
      state.queue = []
      const onListenError = () => {
        this.removeListener('listening', onListenSuccess)
        state.queue = undefined
      }
      const onListenSuccess = () => {
        this.removeListener(EventEmitter.errorMonitor, onListenError)
        const queue = state.queue
        state.queue = undefined
        for (const f of queue) f()
      }
      this.once(EventEmitter.errorMonitor, onListenError)
      this.once('listening', onListenSuccess)
    }
    state.queue.push(fn)
  }

  send(buffer, offset, length, port, address, callback) {
    let list
    const state = this[kState]
    const connected = state.connectState === CONNECT_STATE_CONNECTED
    if (!connected) {
      if (address || (port && typeof port !== 'function')) {
        buffer = sliceBuffer(buffer, offset, length)
      } else {
        callback = port
        port = offset
        address = length
      }
    } else {
      if (typeof length === 'number') {
        buffer = sliceBuffer(buffer, offset, length)
        if (typeof port === 'function') {
          callback = port
          port = null
        }
      } else {
        callback = offset
      }
      if (port || address) throw E.isConnected()
    }

    if (!Array.isArray(buffer)) {
      if (typeof buffer === 'string') list = [Buffer.from(buffer)]
      else if (!ArrayBuffer.isView(buffer)) throw E.invalidArgType('buffer', BUFFER_TYPES, buffer)
      else list = [buffer]
    } else if (!(list = fixBufferList(buffer))) {
      throw E.invalidArgType('buffer list arguments', BUFFER_TYPES, buffer)
    }

    if (!connected) port = validatePort(port, 'Port', false)
    if (typeof callback !== 'function') callback = undefined
    if (typeof address === 'function') {
      callback = address
      address = undefined
    } else if (address != null) {
      validateString(address, 'address')
    }

    this._healthCheck()
    if (state.bindState === BIND_STATE_UNBOUND) this.bind({ port: 0 }, null)
    if (list.length === 0) list.push(Buffer.alloc(0))

    let bytes = 0
    for (let i = 0; i < list.length; i++) bytes += list[i].byteLength
    const entry = {
      data: list.length === 1 ? list[0] : list,
      bytes,
      connected,
      address: connected ? undefined : address,
      port: connected ? undefined : port,
      ip: undefined,
      callback,
      error: null,
      ready: false,
    }
    state.sends.push(entry)
    state.sendBytes += bytes

    if (state.bindState !== BIND_STATE_BOUND) {
      this._enqueue(() => this._resolveSend(entry))
      return
    }
    this._resolveSend(entry)
  }

  _resolveSend(entry) {
    const state = this[kState]
    const host = entry.address
    if (entry.connected || (state.lookup === null && host && isIP(host) !== 0)) {
      entry.ip = host
      entry.ready = true
      this._scheduleFlush()
      return
    }
    if (state.lookup === null && !host) {
      entry.ip = this.type === 'udp6' ? '::1' : '127.0.0.1'
      entry.ready = true
      this._scheduleFlush()
      return
    }
    this._lookup(host, (err, ip) => {
      if (err) entry.error = err
      else entry.ip = ip
      entry.ready = true
      this._scheduleFlush()
    })
  }

  _scheduleFlush() {
    const state = this[kState]
    if (state.flushScheduled || state.inFlight !== null) return
    state.flushScheduled = true
    process.nextTick(flushNT, this)
  }

  /** Takes the sends that are ready (in order, stopping at one still waiting for DNS). */
  _takeReady() {
    const state = this[kState]
    const sends = state.sends
    let k = 0
    while (k < sends.length && sends[k].ready) k++
    if (k === 0) return null
    const taken = k === sends.length ? sends : sends.slice(0, k)
    state.sends = k === sends.length ? [] : sends.slice(k)
    return taken
  }

  /** Builds the batch for `entries`; entries that cannot go (DNS error, wrong state) fail alone. */
  _prepare(entries) {
    const state = this[kState]
    // The facade connects the core socket itself, so its state is the socket's.
    const sockConnected = state.connectState === CONNECT_STATE_CONNECTED
    const family = this.type === 'udp6' ? 6 : 4
    const ok = []
    const messages = []
    for (const e of entries) {
      let err = e.error
      if (err === null) {
        if (e.connected !== sockConnected) {
          err = errnoException(e.connected ? osConstants.errno.EDESTADDRREQ : osConstants.errno.EISCONN, 'send')
        } else if (!e.connected && isIP(e.ip) !== family) {
          // Node (libuv) refuses a destination of the other family, and so does the facade.
          err = withHostPort(errnoException(osConstants.errno.EINVAL, 'send'), 'send', e.ip || e.address, e.port)
        }
        if (err === null) {
          ok.push(e)
          messages.push(e.connected ? { data: e.data } : { data: e.data, address: e.ip, port: e.port })
          continue
        }
      }
      this._finish(e, err, err === e.error)
    }
    return { ok, messages }
  }

  /** Reports one send: callback(err, bytes) like Node; errors without a callback are dropped
   * like Node's, except DNS failures, which Node emits as 'error'. */
  _finish(entry, err, isLookupError) {
    const state = this[kState]
    state.sendBytes -= entry.bytes
    if (entry.callback !== undefined) {
      if (err) process.nextTick(entry.callback, err)
      else process.nextTick(entry.callback, null, entry.bytes)
    } else if (err && isLookupError) {
      process.nextTick(() => this.emit('error', err))
    }
  }

  /**
   * The error one send reports for a batch failure `err`. An address the core refused as an
   * argument (an IPv6 `%scope` naming no interface) is reported the way libuv reports an
   * unusable destination: `send EINVAL <address>:<port>` about that send alone, never the
   * core's "messages[i]" naming a position in the facade's internal batch. (node:dgram itself
   * turns an unknown scope name into scope 0 and sends to whatever the routing table picks;
   * the facade refuses rather than guess the interface.)
   */
  _failed(entries, from, err) {
    if (err && err.code === 'ERR_SOCKET_CLOSED') return E.notRunning()
    const e = entries[from]
    if (err && err.code === 'ERR_INVALID_ARG_VALUE' && typeof err.index === 'number') {
      err = errnoException(osConstants.errno.EINVAL, 'send')
    }
    return withHostPort(err, 'send', e.connected ? undefined : e.ip, e.connected ? undefined : e.port)
  }

  /** One flush: every ready send in one batch. Sends what fits now; waits for the rest. */
  _flush() {
    const state = this[kState]
    state.flushScheduled = false
    if (!state.open || state.inFlight !== null || state.sock === null) return
    const taken = this._takeReady()
    if (taken === null) return
    const { ok, messages } = this._prepare(taken)
    if (ok.length === 0) return this._scheduleMore()
    let sent
    try {
      sent = state.sock.trySendBatch(messages)
    } catch (err) {
      this._onSendError(ok, 0, err)
      return this._scheduleMore()
    }
    for (let i = 0; i < sent; i++) this._finish(ok[i], null)
    if (sent === ok.length) return this._scheduleMore()
    // The send buffer is full: the rest waits (without blocking) for room.
    const rest = ok.slice(sent)
    const p = state.sock.sendBatch(sent === 0 ? messages : messages.slice(sent))
    state.inFlight = p
    p.then(
      () => {
        state.inFlight = null
        for (const e of rest) this._finish(e, null)
        this._scheduleMore()
      },
      (err) => {
        state.inFlight = null
        this._onSendError(rest, 0, err)
        this._scheduleMore()
      },
    )
  }

  /**
   * A batch failed at `err.index` (relative to `entries.slice(base)`): the first `err.sent`
   * went (for an errno error that is every one before the failing one; for an address the
   * core refused before sending, none), that one fails alone, and the others (not sent, not
   * failed) are retried in the next flush, in order. An error without an index (the socket
   * closed...) fails every send not yet sent.
   */
  _onSendError(entries, base, err) {
    const state = this[kState]
    const index = typeof err.index === 'number' ? err.index : typeof err.sent === 'number' ? err.sent : 0
    const sent = typeof err.sent === 'number' ? Math.min(err.sent, index) : index
    const failAll = !state.open || typeof err.index !== 'number'
    for (let i = base; i < base + sent && i < entries.length; i++) this._finish(entries[i], null)
    const at = base + index
    if (at < entries.length) this._finish(entries[at], this._failed(entries, at, err))
    const after = entries.slice(base + sent, at).concat(entries.slice(at + 1))
    if (after.length === 0) return
    if (failAll) {
      for (const e of after) this._finish(e, this._failed([e], 0, err))
    } else {
      state.sends = after.concat(state.sends)
    }
  }

  _scheduleMore() {
    const state = this[kState]
    if (state.open && state.sends.length > 0 && state.sends[0].ready) this._scheduleFlush()
  }

  /** Sends everything ready now, without waiting (before close/connect/disconnect). */
  _flushNow() {
    const state = this[kState]
    if (state.inFlight !== null || state.sock === null) return
    let guard = state.sends.length + 1
    while (guard-- > 0 && state.sends.length > 0 && state.sends[0].ready && state.inFlight === null) this._flush()
  }

  close(callback) {
    const state = this[kState]
    if (typeof callback === 'function') this.on('close', callback)
    if (state.queue !== undefined) {
      state.queue.push(() => this.close())
      return this
    }
    this._healthCheck()
    // Sends made earlier in this tick still go out (Node would drop them silently).
    this._flushNow()
    state.open = false
    const pending = state.sends
    state.sends = []
    const sock = state.sock
    state.sock = null
    if (sock !== null) {
      if (state.unsubscribe) state.unsubscribe()
      sock.close()
    }
    for (const e of pending) this._finish(e, e.callback ? E.notRunning() : null)
    process.nextTick(() => this.emit('close'))
    return this
  }

  address() {
    this._healthCheck()
    const sock = this[kState].sock
    if (sock === null) throw errnoException(osConstants.errno.EBADF, 'getsockname')
    const a = sock.localAddress()
    return { address: a.address, family: a.family, port: a.port }
  }

  remoteAddress() {
    this._healthCheck()
    const state = this[kState]
    if (state.connectState !== CONNECT_STATE_CONNECTED) throw E.notConnected()
    const a = state.sock.remoteAddress()
    if (a === null) throw errnoException(osConstants.errno.ENOTCONN, 'getpeername')
    return { address: a.address, family: a.family, port: a.port }
  }

  _bufferSize(size, which) {
    if (size >>> 0 !== size) throw E.badBufferSize()
    const sock = this[kState].sock
    if (sock === null) throw bufferSizeError(osConstants.errno.EBADF, which)
    if (size === 0) {
      const sizes = sock.bufferSizes()
      return which === 'recv' ? sizes.recvBufferSize : sizes.sendBufferSize
    }
    try {
      if (which === 'recv') sock.setRecvBufferSize(size)
      else sock.setSendBufferSize(size)
    } catch (e) {
      throw bufferSizeError(typeof e.errno === 'number' ? -e.errno : osConstants.errno.EINVAL, which)
    }
    return undefined
  }

  setRecvBufferSize(size) {
    this._bufferSize(size, 'recv')
  }

  setSendBufferSize(size) {
    this._bufferSize(size, 'send')
  }

  /** The kernel's value (Linux reports twice what was set), as Node returns it. */
  getRecvBufferSize() {
    return this._bufferSize(0, 'recv')
  }

  getSendBufferSize() {
    return this._bufferSize(0, 'send')
  }

  getSendQueueSize() {
    return this[kState].sendBytes
  }

  getSendQueueCount() {
    const state = this[kState]
    return state.sends.length + (state.sock !== null ? state.sock.stats().pendingSends : 0)
  }

  /** Runs a socket-option call of the core as Node reports it: EBADF before bind, `method CODE`. */
  _option(method, call) {
    this._healthCheck()
    const sock = this[kState].sock
    if (sock === null) throw errnoException(osConstants.errno.EBADF, method)
    if (typeof sock[method] !== 'function') throw E.unsupported(`${method}()`, 'this build of udp-mmsg has no native support for it')
    try {
      return call(sock)
    } catch (e) {
      if (e && typeof e.errno === 'number') throw errnoException(e.errno, method)
      // The core's argument checks stand for what libuv reports as EINVAL.
      if (e && (e.code === 'ERR_INVALID_ARG_VALUE' || e.code === 'ERR_OUT_OF_RANGE')) throw errnoException(osConstants.errno.EINVAL, method)
      throw e
    }
  }

  setBroadcast(flag) {
    this._option('setBroadcast', (sock) => sock.setBroadcast(!!flag))
  }

  setTTL(ttl) {
    if (typeof ttl !== 'number') throw E.invalidArgType('ttl', 'of type number', ttl)
    this._option('setTTL', (sock) => sock.setTTL(ttl | 0))
    return ttl
  }

  setMulticastTTL(ttl) {
    if (typeof ttl !== 'number') throw E.invalidArgType('ttl', 'of type number', ttl)
    this._option('setMulticastTTL', (sock) => sock.setMulticastTTL(ttl | 0))
    return ttl
  }

  setMulticastLoopback(flag) {
    this._option('setMulticastLoopback', (sock) => sock.setMulticastLoopback(!!flag))
    return flag
  }

  setMulticastInterface(interfaceAddress) {
    this._healthCheck()
    validateString(interfaceAddress, 'interfaceAddress')
    this._option('setMulticastInterface', (sock) => sock.setMulticastInterface(interfaceAddress))
  }

  addMembership(multicastAddress, interfaceAddress) {
    this._membership('addMembership', multicastAddress, interfaceAddress)
  }

  dropMembership(multicastAddress, interfaceAddress) {
    this._membership('dropMembership', multicastAddress, interfaceAddress)
  }

  _membership(method, group, iface) {
    this._healthCheck()
    if (!group) throw codedError(TypeError, 'ERR_MISSING_ARGS', 'The "multicastAddress" argument must be specified')
    this._option(method, (sock) => sock[method](group, iface === undefined || iface === null ? undefined : iface))
  }

  addSourceSpecificMembership(sourceAddress, groupAddress, interfaceAddress) {
    this._sourceMembership('addSourceSpecificMembership', sourceAddress, groupAddress, interfaceAddress)
  }

  dropSourceSpecificMembership(sourceAddress, groupAddress, interfaceAddress) {
    this._sourceMembership('dropSourceSpecificMembership', sourceAddress, groupAddress, interfaceAddress)
  }

  _sourceMembership(method, source, group, iface) {
    this._healthCheck()
    validateString(source, 'sourceAddress')
    validateString(group, 'groupAddress')
    this._option(method, (sock) => sock[method](source, group, iface === undefined || iface === null ? undefined : iface))
  }

  ref() {
    const state = this[kState]
    state.refed = true
    if (state.sock !== null) state.sock.ref()
    return this
  }

  unref() {
    const state = this[kState]
    state.refed = false
    if (state.sock !== null) state.sock.unref()
    return this
  }
}

if (typeof Symbol.asyncDispose === 'symbol') {
  Socket.prototype[Symbol.asyncDispose] = function () {
    if (!this[kState].open) return Promise.resolve()
    return new Promise((resolve) => this.close(resolve))
  }
}

function rethrow(err) {
  throw err
}

function flushNT(self) {
  self._flush()
}

function sameSource(bytes, fams, scopes, a, b) {
  if (fams[a] !== fams[b]) return false
  const n = fams[a] === 4 ? 4 : 16
  const oa = 16 * a
  const ob = 16 * b
  for (let k = 0; k < n; k++) if (bytes[oa + k] !== bytes[ob + k]) return false
  return n === 4 || scopes[a] === scopes[b]
}

/**
 * Creates a node:dgram-compatible socket: `createSocket('udp4')`, `createSocket('udp6', onMessage)`
 * or `createSocket({ type, reuseAddr, reusePort, ipv6Only, recvBufferSize, sendBufferSize,
 * lookup, signal, ...udp-mmsg options })`.
 */
function createSocket(type, listener) {
  return new Socket(type, listener)
}

module.exports = { createSocket, Socket }
