'use strict'
// UdpSocket: the public API over the native socket. Receiving: the native I/O thread pushes
// whole batches; they go to 'batch' listeners (onBatch) and to pull consumers (recvBatch,
// for await). Reading is paused whenever nobody consumes, so unread datagrams wait in the
// kernel buffer rather than in JS memory. Sending: messages are packed and handed to
// sendmmsg on the calling thread without blocking; when the send buffer is full the rest
// waits for a writable event from the I/O thread.

const { EventEmitter } = require('node:events')
const { NativeSocket, EVENT_BATCH, EVENT_ERROR, EVENT_WRITABLE } = require('./native.js')
const { Batch } = require('./batch.js')
const { pack, detach, sliceOf, cursor, PackScratch } = require('./pack.js')
const { normalize, portOf, ipOf } = require('./options.js')
const errors = require('./errors.js')

/** Datagrams sendBatch hands to the kernel per event-loop turn, so one huge batch does not
 * starve receives and timers in the same process (trySendBatch sends all it can at once). */
const SEND_SLICE = 4096

/** Unread batches an async iterator may have queued before reading pauses (for every consumer
 * of the socket, a 'batch' listener included). Batches already on their way to JS when reading
 * pauses (at most `maxPendingBatches`) are queued behind them. */
const ITERATOR_HIGH_WATER = 8
/** Receive errors kept for the next recvBatch when nobody listens for 'error'. */
const MAX_PENDING_ERRORS = 64
/** Linux `SOL_UDP` and `UDP_GRO`, which setSocketOption refuses on a socket bound without gro. */
const SOL_UDP = 17
const UDP_GRO = 104

/** Open, referenced sockets: kept from garbage collection, as Node keeps active handles. */
const live = new Set()
/** Open sockets with a pending pull (recvBatch or an iterator's next()), referenced or not. An
 * unref()'d socket may be referenced only by the promise chain of its own pending pull; if it
 * were collected (its finalizer closes it), that pull would never settle. Holding it here keeps
 * it, but not the event loop: an unref()'d socket still lets the process exit. */
const pulling = new Set()
const warned = new Set()

const KIND_BATCH = EVENT_BATCH
const KIND_ERROR = EVENT_ERROR
const KIND_WRITABLE = EVENT_WRITABLE

// Built outside the class so the closure holds only the WeakRef, never the socket: an
// unreferenced socket can then be collected (its native finalizer closes the fd).
function makeDispatch(weak) {
  return (event) => {
    const s = weak.deref()
    if (s !== undefined) s._onNative(event)
  }
}

function callNative(fn) {
  try {
    return fn()
  } catch (e) {
    throw errors.fromNative(e)
  }
}

function checkSignal(signal, name) {
  if (signal === undefined) return undefined
  if (signal === null || typeof signal !== 'object' || typeof signal.aborted !== 'boolean' || typeof signal.addEventListener !== 'function') {
    throw errors.invalidArgType(name, 'an instance of AbortSignal', signal)
  }
  return signal
}

function checkInt(v, name, min, max) {
  if (typeof v !== 'number') throw errors.invalidArgType(name, 'of type number', v)
  if (!Number.isInteger(v) || v < min || v > max) throw errors.outOfRange(name, `an integer >= ${min} and <= ${max}`, v)
}

/**
 * The native layer rejects an address it cannot use (an unknown IPv6 scope) with an argument
 * error (`code: 'UDP_MMSG_ARG'`) whose `argument` is 'destination' or 'source' and whose `index`
 * is k, the entry of the table it was given; `locate(kind, k)` turns that into
 * `[message index, address]` so the error names the first message that used it. The error
 * carries `index` (that message) and `sent` (datagrams of the batch already handed to the
 * kernel: 0 unless the batch was being sent in slices), like a send's errno errors.
 */
function messageError(e, locate, sent) {
  if (!e || e.code !== 'UDP_MMSG_ARG' || e.index === undefined || (e.argument !== 'destination' && e.argument !== 'source')) return null
  const [i, value] = locate(e.argument, e.index)
  const name = e.argument === 'destination' ? 'address' : 'sourceAddress'
  const err = errors.invalidArgValue(`messages[${Math.max(i, 0)}].${name}`, value, e.reason)
  return Object.assign(err, { sent, index: Math.max(i, 0) })
}

/** Locates table entries of a packed batch (or slice) `v` whose datagram 0 is datagram `base`. */
function locateIn(v, base) {
  return (kind, k) => {
    if (kind === 'destination') return [base + (v.dest === null ? 0 : v.dest.indexOf(k)), v.addrs[k]]
    return [base + (v.srcIdx === null ? 0 : v.srcIdx.indexOf(k + 1)), v.sources[k]]
  }
}

const NO_BYTES = Buffer.alloc(0)
const ONE_EMPTY = new Uint32Array(1)

class UdpSocket extends EventEmitter {
  /**
   * Creates and binds a socket. Resolves once it is bound; rejects with a TypeError/RangeError
   * for bad options or an errno error (`EADDRINUSE`, ...) from the kernel.
   */
  static async bind(options) {
    return new UdpSocket(options)
  }

  /** Synchronous form of `bind`: throws instead of rejecting. */
  static bindSync(options) {
    return new UdpSocket(options)
  }

  constructor(options) {
    super()
    const signal = options && typeof options === 'object' ? checkSignal(options.signal, 'options.signal') : undefined
    if (signal && signal.aborted) throw errors.abortError(signal)
    const { type, native: nopts } = normalize(options)
    this._native = callNative(() => new NativeSocket(nopts, makeDispatch(new WeakRef(this))))
    this._type = type
    this._family = type === 'udp6' ? 6 : 4
    this._connected = nopts.connectAddress !== undefined
    this._closed = false
    this._reading = false
    this._refed = true
    this._queue = []
    this._waiters = []
    this._iterators = 0
    this._errors = []
    this._errorsDropped = 0
    // Receive accounting that outlives close(): every batch the native layer handed to JS
    // (also those arriving after close), the datagrams no consumer took before close, the
    // queued batches a 'batch' listener already had, and the native counters at close.
    this._gotDatagrams = 0
    this._gotBatches = 0
    this._gotBytes = 0
    this._discarded = 0
    this._heard = new WeakSet()
    this._statsAtClose = null
    this._sendQueue = []
    this._flushScheduled = false
    this._scratch = new PackScratch()
    this._readingScheduled = false
    live.add(this)
    this.on('newListener', onListenerChange)
    this.on('removeListener', onListenerChange)
    this._warnIfCapped(nopts)
  }

  _warnIfCapped(nopts) {
    const sizes = this.bufferSizes()
    const check = (requested, granted, forced, which, sysctl) => {
      if (requested === undefined || forced || process.platform !== 'linux') return
      // Linux reports twice the accepted request; less than that means rmem_max/wmem_max capped it.
      if (granted >= 2 * requested) return
      const key = `${which}:${requested}:${granted}`
      if (warned.has(key)) return
      warned.add(key)
      process.emitWarning(
        `udp-mmsg: ${which} ${requested} was capped by net.core.${sysctl} (the kernel granted ${granted}, which is doubled for bookkeeping). ` +
          `Raise net.core.${sysctl}, or pass forceBufferSize: true with CAP_NET_ADMIN.`,
        { code: 'UDP_MMSG_BUFFER_CAPPED' },
      )
    }
    check(nopts.recvBufferSize, sizes.recvBufferSize, sizes.recvForced, 'recvBufferSize', 'rmem_max')
    check(nopts.sendBufferSize, sizes.sendBufferSize, sizes.sendForced, 'sendBufferSize', 'wmem_max')
  }

  /** `'udp4'` or `'udp6'`. */
  get type() {
    return this._type
  }

  /** True once `close()` was called. */
  get closed() {
    return this._closed
  }

  /** True when this socket makes one system call per datagram (the portable fallback). */
  get portable() {
    return this._native.portable
  }

  /** The bound address: `{ address, port, family }`. */
  localAddress() {
    return callNative(() => this._native.localAddress())
  }

  /** The connected peer, or `null`. */
  remoteAddress() {
    return callNative(() => this._native.remoteAddress())
  }

  /** Connects to a peer: sends then need no destination, and only its datagrams arrive. */
  connect(address, port) {
    const fam = ipOf(address, 'address')
    if (fam === 6 && this._family === 4) throw errors.invalidArgValue('address', address, "is IPv6 but the socket is 'udp4'")
    portOf(port, 'port', false)
    callNative(() => this._native.connect(address, port))
    this._connected = true
  }

  /**
   * Dissolves the association made by `connect`. Throws `ERR_SOCKET_DGRAM_NOT_CONNECTED` on a
   * socket that is not connected. As with node:dgram, Linux releases a kernel-picked port
   * (bound with port 0) on disconnect: the socket receives nothing until its next send picks a
   * new one. Bind a fixed port if you disconnect and keep receiving.
   */
  disconnect() {
    if (!this._closed && !this._connected) throw errors.notConnected()
    callNative(() => this._native.disconnect())
    this._connected = false
  }

  /** Kernel-granted buffer sizes: `{ recvBufferSize, sendBufferSize, recvForced, sendForced }`. */
  bufferSizes() {
    return callNative(() => this._native.bufferSizes())
  }

  /** Sets SO_RCVBUF after creation (the kernel may cap it; read `bufferSizes()`). */
  setRecvBufferSize(size) {
    this._setBuffer(false, size, 'size')
  }

  /** Sets SO_SNDBUF after creation (the kernel may cap it; read `bufferSizes()`). */
  setSendBufferSize(size) {
    this._setBuffer(true, size, 'size')
  }

  _setBuffer(send, size, name) {
    if (typeof size !== 'number') throw errors.invalidArgType(name, 'of type number', size)
    if (!Number.isInteger(size) || size < 1 || size > 0x7fffffff) throw errors.outOfRange(name, 'an integer >= 1 and <= 2147483647', size)
    callNative(() => this._native.setBufferSize(send, size))
  }

  /** What this socket can do: batched syscalls, GSO (supported / in use), GRO, the kernel drop
   * counter, pktinfo, timestamps, TOS, SO_REUSEPORT. Probed once when the socket opened. */
  capabilities() {
    return callNative(() => this._native.capabilities())
  }

  /** Sets an integer socket option directly (`setsockopt(fd, level, option, value)`): an escape
   * hatch for options this API does not cover. Numbers are the platform's constants. */
  setSocketOption(level, option, value) {
    checkInt(level, 'level', 0, 0x7fffffff)
    checkInt(option, 'option', 0, 0x7fffffff)
    checkInt(value, 'value', -0x80000000, 0x7fffffff)
    if (process.platform === 'linux' && level === SOL_UDP && option === UDP_GRO && value !== 0 && !this._closed && !this.capabilities().gro) {
      // Receive slots of a socket bound without gro hold one datagram each: coalesced receives
      // would be cut and most of their datagrams lost uncounted.
      throw errors.invalidArgValue('option', option, 'is UDP_GRO, which a socket bound without gro cannot take: bind with gro: true instead')
    }
    callNative(() => this._native.setIntOption(level, option, value))
  }

  /** Reads an integer socket option directly (`getsockopt`). */
  getSocketOption(level, option) {
    checkInt(level, 'level', 0, 0x7fffffff)
    checkInt(option, 'option', 0, 0x7fffffff)
    return callNative(() => this._native.getIntOption(level, option))
  }

  /** Sets SO_BROADCAST. */
  setBroadcast(flag) {
    if (typeof flag !== 'boolean') throw errors.invalidArgType('flag', 'of type boolean', flag)
    callNative(() => this._native.setBroadcast(flag))
  }

  /** Reads SO_BROADCAST. */
  getBroadcast() {
    return callNative(() => this._native.getBroadcast())
  }

  /** Sets the unicast TTL (IPv4) or hop limit (IPv6), 1..255. */
  setTTL(ttl) {
    checkInt(ttl, 'ttl', 1, 255)
    callNative(() => this._native.setTtl(ttl))
  }

  /** Sets the TOS (IPv4) or traffic class (IPv6) of everything this socket sends, 0..255. */
  setTOS(tos) {
    checkInt(tos, 'tos', 0, 255)
    callNative(() => this._native.setTos(tos))
  }

  /** Sets the multicast TTL / hop limit, 0..255 (0 keeps multicast on this host). */
  setMulticastTTL(ttl) {
    checkInt(ttl, 'ttl', 0, 255)
    callNative(() => this._native.setMulticastTtl(ttl))
  }

  /** Sets whether multicast sent by this socket loops back to local receivers. */
  setMulticastLoopback(flag) {
    if (typeof flag !== 'boolean') throw errors.invalidArgType('flag', 'of type boolean', flag)
    callNative(() => this._native.setMulticastLoopback(flag))
  }

  /** Reads whether multicast loops back. */
  getMulticastLoopback() {
    return callNative(() => this._native.getMulticastLoopback())
  }

  /** Chooses the outgoing multicast interface: an IPv4 address of it, or for IPv6 a name, an index or `::%scope`. */
  setMulticastInterface(iface) {
    if (typeof iface !== 'string') throw errors.invalidArgType('interface', 'of type string', iface)
    callNative(() => this._native.setMulticastInterface(iface))
  }

  /** Joins a multicast group (optionally on one interface). */
  addMembership(group, iface) {
    this._membership(true, group, iface, undefined)
  }

  /** Leaves a multicast group. */
  dropMembership(group, iface) {
    this._membership(false, group, iface, undefined)
  }

  /** Joins a source-specific multicast group: only datagrams from `source` are received. */
  addSourceSpecificMembership(source, group, iface) {
    ipOf(source, 'source')
    this._membership(true, group, iface, source)
  }

  /** Leaves a source-specific multicast group. */
  dropSourceSpecificMembership(source, group, iface) {
    ipOf(source, 'source')
    this._membership(false, group, iface, source)
  }

  _membership(join, group, iface, source) {
    ipOf(group, 'group')
    if (iface !== undefined && typeof iface !== 'string') throw errors.invalidArgType('interface', 'of type string', iface)
    callNative(() => this._native.membership(join, group, iface, source))
  }

  // ---- receiving -------------------------------------------------------------------------

  /** Calls `listener` with every received batch; returns a function that unsubscribes. */
  onBatch(listener) {
    if (typeof listener !== 'function') throw errors.invalidArgType('listener', 'of type function', listener)
    this.on('batch', listener)
    return () => this.off('batch', listener)
  }

  /**
   * Resolves with the next batch, or with an empty batch (`count === 0`) when `timeoutMs`
   * passes first. Rejects with a pending receive error when nobody listens for 'error'.
   */
  recvBatch(options) {
    try {
      let timeoutMs = Infinity
      let signal
      if (options !== undefined) {
        if (options === null || typeof options !== 'object') throw errors.invalidArgType('options', 'of type object', options)
        if (options.timeoutMs !== undefined) {
          timeoutMs = options.timeoutMs
          if (typeof timeoutMs !== 'number') throw errors.invalidArgType('options.timeoutMs', 'of type number', timeoutMs)
          if (Number.isNaN(timeoutMs) || timeoutMs < 0) throw errors.outOfRange('options.timeoutMs', '>= 0 (or Infinity)', timeoutMs)
        }
        signal = checkSignal(options.signal, 'options.signal')
      }
      if (this._errors.length > 0) return Promise.reject(this._errors.shift())
      if (this._queue.length > 0) {
        const b = this._queue.shift()
        this._updateReading()
        return Promise.resolve(b)
      }
      if (this._closed) throw errors.socketClosed()
      if (signal && signal.aborted) throw errors.abortError(signal)
      return new Promise((resolve, reject) => {
        const w = { resolve, reject, iterator: false, timer: null, signal, onAbort: null }
        if (timeoutMs !== Infinity) {
          w.timer = setTimeout(() => {
            this._removeWaiter(w)
            resolve(Batch.empty())
          }, Math.min(timeoutMs, 0x7fffffff))
          if (!this._refed) w.timer.unref()
        }
        if (signal) {
          w.onAbort = () => {
            this._removeWaiter(w)
            reject(errors.abortError(signal))
          }
          signal.addEventListener('abort', w.onAbort, { once: true })
        }
        this._waiters.push(w)
        this._updateReading()
      })
    } catch (e) {
      return Promise.reject(e)
    }
  }

  /** A Web `ReadableStream` of batches with backpressure (see lib/streams.js for options). */
  readable(options) {
    return require('./streams.js').readable(this, options)
  }

  /**
   * `for await (const batch of socket)`: yields batches until the socket closes. While the
   * iterator is active the socket reads ahead up to ITERATOR_HIGH_WATER unread batches.
   * Ending it (return(), which `break` calls, a receive error, close) settles every next()
   * still pending with `done: true` and withdraws it, so no batch is handed to a next() that
   * nobody will read: the next consumer gets it instead.
   */
  [Symbol.asyncIterator]() {
    let done = false
    /** This iterator's waiters (next() calls not yet settled), in the socket's `_waiters` too. */
    const pending = []
    const forget = (w) => {
      const i = pending.indexOf(w)
      if (i !== -1) pending.splice(i, 1)
    }
    this._iterators++
    this._updateReading()
    const finish = () => {
      if (done) return
      done = true
      this._iterators--
      if (this._iterators === 0) this._dropHeard()
      for (const w of pending.splice(0)) {
        const i = this._waiters.indexOf(w)
        if (i !== -1) this._waiters.splice(i, 1)
        w.end()
      }
      this._updateReading()
    }
    const next = () => {
      if (done) return Promise.resolve({ value: undefined, done: true })
      if (this._errors.length > 0) {
        finish()
        return Promise.reject(this._errors.shift())
      }
      if (this._queue.length > 0) {
        const value = this._queue.shift()
        this._updateReading()
        return Promise.resolve({ value, done: false })
      }
      if (this._closed) {
        finish()
        return Promise.resolve({ value: undefined, done: true })
      }
      return new Promise((resolve, reject) => {
        const w = {
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
        this._waiters.push(w)
        this._updateReading()
      })
    }
    return {
      next,
      return: (value) => {
        finish()
        return Promise.resolve({ value, done: true })
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
   * ITERATOR_HIGH_WATER + maxPendingBatches each time) piling up for a pull that may never come.
   * Batches no listener had stay for the next pull.
   */
  _dropHeard() {
    if (this._queue.some((b) => this._heard.has(b))) this._queue = this._queue.filter((b) => !this._heard.has(b))
  }

  /**
   * Hands the queued batches, oldest first, to a 'batch' listener when no pull consumer is
   * there to take them. They arrived while nobody listened (on their way to JS when the last
   * listener left) and wait for the next consumer: without this, a listener that comes and goes
   * under traffic would leave up to maxPendingBatches batches behind each time, for ever. One
   * batch per microtask, so a throwing listener does not stop the rest; all before any later
   * batch, which comes from a later task.
   */
  _handToListener() {
    if (this._closed || this._iterators > 0 || this._waiters.length > 0 || this._queue.length === 0) return
    if (this.listenerCount('batch') === 0) return
    const batch = this._queue.shift()
    if (this._queue.length > 0) queueMicrotask(() => this._handToListener())
    if (!this._heard.has(batch)) this.emit('batch', batch)
  }

  _removeWaiter(w) {
    const i = this._waiters.indexOf(w)
    if (i !== -1) this._waiters.splice(i, 1)
    this._settled(w)
    this._updateReading()
  }

  _settled(w) {
    if (w.timer !== null) clearTimeout(w.timer)
    if (w.onAbort !== null) w.signal.removeEventListener('abort', w.onAbort)
  }

  /**
   * Starts or pauses reading to match the consumers, and keeps the socket reachable while a
   * pull is pending (see `pulling`). Called after every change of the listeners, waiters,
   * iterators or queue. A pending pull always reads (the queue is then empty). With an active
   * iterator, batches are queued for it, so its unread ones bound reading for everyone: at
   * ITERATOR_HIGH_WATER a 'batch' listener waits too, and unread datagrams wait in the kernel
   * buffer (where overflow is counted in kernelDrops) instead of in JS memory.
   */
  _updateReading() {
    const waiting = this._waiters.length > 0 && !this._closed
    const want =
      !this._closed &&
      (waiting || (this._iterators > 0 ? this._queue.length < ITERATOR_HIGH_WATER : this.listenerCount('batch') > 0))
    if (want !== this._reading) {
      this._reading = want
      this._native.setReading(want)
    }
    if (waiting) pulling.add(this)
    else pulling.delete(this)
  }

  _onNative(event) {
    const kind = event.kind
    const n = event.count
    if (kind === KIND_BATCH) {
      const batch = Batch.fromNative(event.data, n, event.kernelDrops)
      this._gotDatagrams += n
      this._gotBatches++
      this._gotBytes += batch.buffer.length
      if (this._closed) {
        // On its way to JS when close() ran: nobody can take it now; counted, not lost silently.
        this._discarded += n
        return
      }
      const listening = this.listenerCount('batch') > 0
      // A throwing listener is the caller's uncaught exception (as with node:dgram), but the
      // batch still reaches pull consumers and the reading state stays right.
      try {
        if (listening) this.emit('batch', batch)
      } finally {
        this._afterBatch(batch, listening)
      }
    } else if (this._closed) {
      return
    } else if (kind === KIND_ERROR) {
      this._onError(errors.errnoError(event.errno, event.syscall || 'recvmsg'))
    } else if (kind === KIND_WRITABLE) {
      this._flushSends()
    }
  }

  _afterBatch(batch, listening) {
    if (this._closed) {
      // The listener closed the socket; a batch nobody heard would be dropped here.
      if (!listening) this._discarded += batch.count
      return
    }
    if (!listening || this._waiters.length > 0 || this._iterators > 0) {
      // A batch nobody was listening for (a listener left while it was in flight) is kept
      // for the next pull rather than lost.
      if (this._waiters.length > 0) {
        const w = this._waiters.shift()
        this._settled(w)
        w.resolve(batch)
      } else {
        // Remember that the listener had it: dropping it at close then loses nothing.
        if (listening) this._heard.add(batch)
        this._queue.push(batch)
      }
    }
    this._updateReading()
  }

  _onError(err) {
    if (this.listenerCount('error') > 0) {
      this.emit('error', err)
    } else if (this._waiters.length > 0) {
      const w = this._waiters.shift()
      this._settled(w)
      w.reject(err)
      this._updateReading()
    } else if (this._errors.length < MAX_PENDING_ERRORS) {
      this._errors.push(err)
    } else {
      this._errorsDropped++
    }
  }

  // ---- sending ---------------------------------------------------------------------------

  _sock() {
    return { family: this._family, connected: this._connected }
  }

  /**
   * Sends up to `max` datagrams of packed batch `p` from `start`; returns the new start (less
   * than the count when the send buffer is full or `max` was reached). Throws an errno error
   * with `sent`. A part of a batch (not the whole) goes as a slice of its own (`sliceOf`,
   * positioned by `cur`), so the native side converts only that slice's destinations.
   */
  _sendFrom(p, start, max, cur) {
    const whole = start === 0 && max >= p.count
    const v = whole ? p : sliceOf(p, start, max, cur)
    let r
    try {
      r = this._native.send(v.data, v.lens, v.parts, v.dest, v.addrs, v.ports, 0, v.count, v.srcIdx, v.sources, v.tos)
    } catch (e) {
      throw messageError(e, locateIn(v, start), start) || errors.fromNative(e)
    }
    const at = start + r.sent
    if (r.errno !== 0) {
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
  _checkScopes(p) {
    if (p.scopedDests.length === 0 && p.scopedSources.length === 0) return
    const addrs = p.scopedDests.map((g) => p.addrs[g])
    const ports = p.scopedDests.map((g) => p.ports[g])
    const sources = p.scopedSources.length === 0 ? null : p.scopedSources.map((g) => p.sources[g])
    try {
      this._native.send(NO_BYTES, ONE_EMPTY, null, null, addrs, ports, 1, 0, null, sources, null)
    } catch (e) {
      const locate = (kind, k) => {
        if (kind === 'destination') {
          const g = p.scopedDests[k]
          return [p.dest === null ? 0 : p.dest.indexOf(g), p.addrs[g]]
        }
        const g = p.scopedSources[k]
        return [p.srcIdx.indexOf(g + 1), p.sources[g]]
      }
      throw messageError(e, locate, 0) || errors.fromNative(e)
    }
  }

  /**
   * Hands every message to the kernel, many per system call; waits (without blocking the
   * thread) while the send buffer is full. Resolves with the number sent. On an error,
   * rejects with an errno error whose `sent` says how many went before the failing one
   * (`index`).
   *
   * Every message is validated and copied before anything is sent (a TypeError/RangeError
   * naming the bad message rejects the call with nothing sent; so does an unknown IPv6
   * scope), and read exactly once: later changes to the messages or their buffers do not
   * affect what is sent. This packing is synchronous and linear (on the loaded 2-core test VM
   * ~0.4–0.6 µs a message to one destination, 1–3 µs when every message has its own). It is not spread over several turns on purpose: validating
   * is most of its cost, and validating lazily would send part of a batch before finding a
   * bad message, and would send whatever the messages hold by the time their slice comes up.
   * The datagrams then go at most `SEND_SLICE` (4096) per turn of the event loop, each slice
   * carrying only its own destinations (`sliceOf`), so a batch to many destinations costs
   * linear time and holds the event loop for one slice at a time after the packing.
   */
  sendBatch(messages, options) {
    try {
      if (this._closed) throw errors.socketClosed({ sent: 0 })
      let signal
      if (options !== undefined) {
        if (options === null || typeof options !== 'object') throw errors.invalidArgType('options', 'of type object', options)
        signal = checkSignal(options.signal, 'options.signal')
      }
      if (signal && signal.aborted) throw errors.abortError(signal, { sent: 0 })
      // A batch that will take several slices is packed into arrays of its own: it waits
      // anyway, and the socket's scratch then neither grows to its size nor needs copying.
      const sliced = Array.isArray(messages) && messages.length > SEND_SLICE
      const p = pack(messages, this._sock(), sliced ? null : this._scratch)
      if (p.count === 0) return Promise.resolve(0)
      if (p.count > SEND_SLICE) this._checkScopes(p)
      const cur = cursor()
      let start = 0
      if (this._sendQueue.length === 0) {
        start = this._sendFrom(p, 0, SEND_SLICE, cur)
        if (start === p.count) return Promise.resolve(p.count)
      }
      return new Promise((resolve, reject) => {
        const op = { p: p.owned ? p : detach(p), cur, start, resolve, reject, signal, onAbort: null }
        if (signal) {
          op.onAbort = () => {
            const i = this._sendQueue.indexOf(op)
            if (i !== -1) this._sendQueue.splice(i, 1)
            reject(errors.abortError(signal, { sent: op.start }))
          }
          signal.addEventListener('abort', op.onAbort, { once: true })
        }
        this._sendQueue.push(op)
        if (this._sendQueue.length === 1) this._scheduleFlush(start < SEND_SLICE)
      })
    } catch (e) {
      return Promise.reject(e)
    }
  }

  /**
   * Sends what fits in the send buffer now, never waiting: returns how many messages were
   * handed to the kernel (0 while earlier sendBatch calls still wait, to keep order).
   * Throws an errno error with `sent` when a datagram fails. The whole batch goes in one
   * native call (its destination table converted once).
   */
  trySendBatch(messages) {
    if (this._closed) throw errors.socketClosed({ sent: 0 })
    const p = pack(messages, this._sock(), this._scratch)
    if (p.count === 0 || this._sendQueue.length > 0) return 0
    return this._sendFrom(p, 0, 0xffffffff, null)
  }

  /** Continues queued sends: after a writable event when the buffer was full, or on the next
   * turn of the event loop when a slice was used up. */
  _scheduleFlush(bufferFull) {
    if (bufferFull) {
      this._native.requestWritable()
    } else if (!this._flushScheduled) {
      this._flushScheduled = true
      setImmediate(() => {
        this._flushScheduled = false
        this._flushSends()
      })
    }
  }

  _flushSends() {
    while (this._sendQueue.length > 0 && !this._closed) {
      const op = this._sendQueue[0]
      const before = op.start
      try {
        op.start = this._sendFrom(op.p, op.start, SEND_SLICE, op.cur)
      } catch (e) {
        this._sendQueue.shift()
        this._endOp(op)
        op.reject(e)
        continue
      }
      if (op.start < op.p.count) {
        this._scheduleFlush(op.start - before < SEND_SLICE)
        return
      }
      this._sendQueue.shift()
      this._endOp(op)
      op.resolve(op.p.count)
    }
  }

  _endOp(op) {
    if (op.onAbort !== null) op.signal.removeEventListener('abort', op.onAbort)
  }

  // ---- lifetime --------------------------------------------------------------------------

  /** Counters since the socket was opened; after close(), as they were at close. */
  stats() {
    const s = this._closed ? this._closedStats() : this._native.stats()
    if (!this._closed) s.datagramsDiscarded = 0
    s.queuedBatches = this._queue.length
    s.pendingSends = this._sendQueue.length
    s.pendingErrors = this._errors.length
    s.errorsDropped = this._errorsDropped + s.eventsDropped
    return s
  }

  /**
   * The native counters taken at close() (the native layer reports zeros once closed), raised
   * by any batch the I/O thread counted during close() that reached JS after the snapshot.
   * `datagramsDiscarded`: received, but dropped at close before any consumer took them (queued
   * batches, and batches on their way to JS, counted whether or not they have arrived yet), so
   * `datagramsReceived` is exactly what consumers got plus `datagramsDiscarded`.
   */
  _closedStats() {
    const s = { ...this._statsAtClose }
    s.datagramsReceived = Math.max(s.datagramsReceived, this._gotDatagrams)
    s.batchesReceived = Math.max(s.batchesReceived, this._gotBatches)
    s.bytesReceived = Math.max(s.bytesReceived, this._gotBytes)
    s.datagramsDiscarded = this._discarded + (s.datagramsReceived - this._gotDatagrams)
    return s
  }

  /** Keeps the process alive while the socket is open (the default). */
  ref() {
    if (!this._closed && !this._refed) {
      this._refed = true
      live.add(this)
      this._native.ref()
      for (const w of this._waiters) if (w.timer !== null) w.timer.ref()
    }
    return this
  }

  /** Lets the process exit while the socket is open. An unreferenced socket that is no longer
   * reachable from JS may be garbage-collected, which closes it; not while a pull is pending on
   * it (see `pulling`). */
  unref() {
    if (!this._closed && this._refed) {
      this._refed = false
      live.delete(this)
      this._native.unref()
      for (const w of this._waiters) if (w.timer !== null) w.timer.unref()
    }
    return this
  }

  /**
   * Closes the socket: stops its I/O thread, closes the fd, rejects pending recvBatch and
   * sendBatch calls with ERR_SOCKET_CLOSED, ends async iterators, then emits 'close'. Batches
   * received but not taken by any consumer are dropped and counted in
   * `stats().datagramsDiscarded`. Calling it again does nothing.
   */
  close() {
    if (this._closed) return
    this._closed = true
    this._reading = false
    live.delete(this)
    pulling.delete(this)
    this._statsAtClose = this._native.stats()
    this._native.close()
    const waiters = this._waiters
    this._waiters = []
    for (const w of waiters) {
      this._settled(w)
      if (w.iterator) w.end()
      else w.reject(errors.socketClosed())
    }
    for (const b of this._queue) if (!this._heard.has(b)) this._discarded += b.count
    this._queue = []
    // Receive errors still waiting for a recvBatch are moot once closed: later calls report
    // ERR_SOCKET_CLOSED (and iterators end), not a stale ECONNREFUSED.
    this._errors = []
    const sends = this._sendQueue
    this._sendQueue = []
    for (const op of sends) {
      this._endOp(op)
      op.reject(errors.socketClosed({ sent: op.start }))
    }
    process.nextTick(() => this.emit('close'))
  }
}

function onListenerChange(event) {
  if (event === 'batch' && !this._readingScheduled) {
    this._readingScheduled = true
    queueMicrotask(() => {
      this._readingScheduled = false
      this._handToListener()
      this._updateReading()
    })
  }
}

module.exports = { UdpSocket }
