// The node:dgram facade's send(): Node's argument handling (offset/length, buffer lists,
// connected sends), then coalescing: every send() made in the same tick goes out as one
// UdpSocket batch on process.nextTick, and each callback still gets its own (err, bytes)
// like Node's. A batch that fails part-way fails only the send that failed; the rest go on.
// Bursts are paced (dgram-pace.ts): a receiver that keeps up with node:dgram keeps up.

import { constants as osConstants } from 'node:os'
import { ipFamily } from './address.js'
import { dgram as E } from './errors.js'
import { healthCheck, enqueue, lookup } from './dgram-bind.js'
import { allowance, armPace, holdBack, stopPace } from './dgram-pace.js'
import { BIND_STATE_BOUND, BIND_STATE_UNBOUND, CONNECT_STATE_CONNECTED, kState } from './dgram-state.js'
import type { Facade, SendCallback, SendEntry } from './dgram-state.js'
import type { OutgoingMessage } from './types.js'
import type { UdpSocket } from './socket.js'
import { DGRAM_BUFFER_TYPES, dgramBufferList, dgramPort, dgramSlice, dgramString } from './validate.js'

/** Socket.send(msg, [offset, length,] [port, address,] [callback]), as Node parses it. */
export function send(
  self: Facade,
  buffer: unknown,
  offset: unknown,
  length: unknown,
  port: unknown,
  address: unknown,
  callback: unknown,
): void {
  let list: ArrayBufferView[] | null
  const state = self[kState]
  const connected = state.connectState === CONNECT_STATE_CONNECTED
  if (!connected) {
    if (address || (port && typeof port !== 'function')) {
      buffer = dgramSlice(buffer, offset, length)
    } else {
      callback = port
      port = offset
      address = length
    }
  } else {
    if (typeof length === 'number') {
      buffer = dgramSlice(buffer, offset, length)
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
    else if (!ArrayBuffer.isView(buffer)) throw E.invalidArgType('buffer', DGRAM_BUFFER_TYPES, buffer)
    else list = [buffer]
  } else if (!(list = dgramBufferList(buffer))) {
    throw E.invalidArgType('buffer list arguments', DGRAM_BUFFER_TYPES, buffer)
  }

  if (!connected) port = dgramPort(port, 'Port', false)
  if (typeof callback !== 'function') callback = undefined
  if (typeof address === 'function') {
    callback = address
    address = undefined
  } else if (address != null) {
    dgramString(address, 'address')
  }

  healthCheck(self)
  if (state.bindState === BIND_STATE_UNBOUND) self.bind({ port: 0, exclusive: true }, null)
  if (list.length === 0) list.push(Buffer.alloc(0))

  let bytes = 0
  for (let i = 0; i < list.length; i++) bytes += list[i].byteLength
  const entry: SendEntry = {
    data: list.length === 1 ? list[0] : list,
    bytes,
    connected,
    address: connected ? undefined : (address as string | undefined),
    port: connected ? undefined : (port as number),
    ip: undefined,
    callback: callback as SendCallback | undefined,
    error: null,
    ready: false,
    held: false,
    answer: state.dispatching,
  }
  state.sends.push(entry)
  state.sendBytes += bytes

  if (state.bindState !== BIND_STATE_BOUND) {
    enqueue(self, () => resolveSend(self, entry))
    return
  }
  resolveSend(self, entry)
}

function resolveSend(self: Facade, entry: SendEntry): void {
  const state = self[kState]
  const host = entry.address
  // dns.lookup answers an IP literal on the next tick; the flush runs on the next tick too.
  if (entry.connected || (state.dnsLookup && host && ipFamily(host) !== 0)) {
    entry.ip = host
    entry.ready = true
    scheduleFlush(self)
    return
  }
  if (state.dnsLookup && !host) {
    entry.ip = self.type === 'udp6' ? '::1' : '127.0.0.1'
    entry.ready = true
    scheduleFlush(self)
    return
  }
  lookup(self, host, (err, ip) => {
    if (err) entry.error = err
    else entry.ip = ip
    entry.ready = true
    scheduleFlush(self)
  })
}

/** Pacing's timer fired: flush what it held back (unless a flush is already on its way). */
function resume(self: Facade): void {
  const state = self[kState]
  if (state.open && !state.flushScheduled) flush(self)
}

function scheduleFlush(self: Facade): void {
  const state = self[kState]
  if (state.flushScheduled || state.inFlight !== null) return
  state.flushScheduled = true
  // Answers sent from 'message' listeners go out together when the batch's events are done
  // (`endDispatch`), one tick sooner than a next-tick flush and still in one batch.
  if (state.dispatching) return
  process.nextTick(flush, self)
}

/** Takes the sends that are ready, in order, stopping at one still waiting for DNS or at the
 * first past `max` paced ones (answers are not paced); also says how many were paced. */
function takeReady(self: Facade, max: number): { taken: SendEntry[]; paced: number } | null {
  const state = self[kState]
  const sends = state.sends
  let k = 0
  let paced = 0
  while (k < sends.length && sends[k].ready) {
    if (!sends[k].answer) {
      if (paced >= max) break
      paced++
    }
    k++
  }
  if (k === 0) return null
  const taken = k === sends.length ? sends : sends.slice(0, k)
  state.sends = k === sends.length ? [] : sends.slice(k)
  return { taken, paced }
}

/** Builds the batch for `entries`; entries that cannot go (DNS error, wrong state) fail alone. */
function prepare(self: Facade, entries: SendEntry[]): { ok: SendEntry[]; messages: OutgoingMessage[] } {
  const state = self[kState]
  // The facade connects the core socket itself, so its state is the socket's.
  const sockConnected = state.connectState === CONNECT_STATE_CONNECTED
  const family = self.type === 'udp6' ? 6 : 4
  const ok: SendEntry[] = []
  const messages: OutgoingMessage[] = []
  for (const e of entries) {
    let err = e.error
    if (err === null) {
      if (e.connected !== sockConnected) {
        err = E.errnoException(e.connected ? osConstants.errno.EDESTADDRREQ : osConstants.errno.EISCONN, 'send')
      } else if (!e.connected && ipFamily(e.ip as string) !== family) {
        // Node (libuv) refuses a destination of the other family, and so does the facade.
        err = E.withHostPort(E.errnoException(osConstants.errno.EINVAL, 'send'), 'send', e.ip || e.address, e.port)
      }
      if (err === null) {
        ok.push(e)
        messages.push(e.connected ? { data: e.data } : { data: e.data, address: e.ip, port: e.port })
        continue
      }
    }
    finishSend(self, e, err, err === e.error)
  }
  return { ok, messages }
}

/** Reports one send: callback(err, bytes) like Node; errors without a callback are dropped
 * like Node's, except DNS failures, which Node emits as 'error'. `drop`: no report at all
 * (Node's fate of a send whose socket closed or failed to bind before it went). */
export function finishSend(self: Facade, entry: SendEntry, err: unknown, isLookupError?: boolean, drop?: boolean): void {
  const state = self[kState]
  state.sendBytes -= entry.bytes
  if (drop) return
  if (entry.callback !== undefined) {
    if (err) process.nextTick(entry.callback, err)
    else process.nextTick(entry.callback, null, entry.bytes)
  } else if (err && isLookupError) {
    process.nextTick(() => self.emit('error', err))
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
function failed(entries: SendEntry[], from: number, err: unknown): unknown {
  const c = err as { code?: unknown; index?: unknown } | null
  if (c && c.code === 'ERR_SOCKET_CLOSED') return E.notRunning()
  const e = entries[from]
  if (c && c.code === 'ERR_INVALID_ARG_VALUE' && typeof c.index === 'number') {
    err = E.errnoException(osConstants.errno.EINVAL, 'send')
  }
  return E.withHostPort(err, 'send', e.connected ? undefined : e.ip, e.connected ? undefined : e.port)
}

/** The 'message' events of one received batch are done: send what their listeners sent. */
export function endDispatch(self: Facade): void {
  const state = self[kState]
  state.dispatching = false
  if (state.flushScheduled) flush(self)
}

/** One flush: the ready sends the pacing allows (all with `unpaced`) in one batch. Sends what
 * fits now; waits for the rest. */
function flush(self: Facade, unpaced = false): void {
  const state = self[kState]
  state.flushScheduled = false
  // A batch that failed part-way is retried at once with the sends after the failing one, as
  // Node would have sent them in this same turn: a retry on a later tick would let other
  // sockets' sends (and callbacks) overtake them.
  while (flushOnce(self, unpaced)) {
    /* retry what a failed batch left */
  }
}

/** One batch of the ready sends. True when it failed part-way and sends are ready again. */
function flushOnce(self: Facade, unpaced: boolean): boolean {
  const state = self[kState]
  if (!state.open || state.inFlight !== null || state.sock === null) return false
  const sock = state.sock
  const max = unpaced ? Infinity : allowance(state)
  const took = takeReady(self, max)
  if (took === null) {
    if (state.sends.length > 0 && state.sends[0].ready) holdBack(self, resume)
    return false
  }
  const taken = took.taken
  if (max !== Infinity) {
    state.paceTokens -= took.paced
    if (state.sends.length > 0 && state.sends[0].ready) holdBack(self, resume)
  }
  const { ok, messages } = prepare(self, taken)
  if (ok.length === 0) {
    scheduleMore(self)
    return false
  }
  let sent: number
  try {
    sent = sock.trySendBatch(messages)
  } catch (err) {
    onSendError(self, ok, 0, err)
    return state.open && state.sends.length > 0 && state.sends[0].ready
  }
  for (let i = 0; i < sent; i++) finishSend(self, ok[i], null)
  if (sent === ok.length) {
    scheduleMore(self)
    return false
  }
  // The send buffer is full: the rest waits (without blocking) for room.
  const rest = ok.slice(sent)
  const p = sock.sendBatch(sent === 0 ? messages : messages.slice(sent))
  state.inFlight = p
  p.then(
    () => {
      state.inFlight = null
      for (const e of rest) finishSend(self, e, null)
      scheduleMore(self)
    },
    (err: unknown) => {
      state.inFlight = null
      onSendError(self, rest, 0, err)
      scheduleMore(self)
    },
  )
  return false
}

/**
 * A batch failed at `err.index` (relative to `entries.slice(base)`): the first `err.sent`
 * went (for an errno error that is every one before the failing one; for an address the
 * core refused before sending, none), that one fails alone, and the others (not sent, not
 * failed) are retried in the next flush, in order. An error without an index (the socket
 * closed...) fails every send not yet sent.
 */
function onSendError(self: Facade, entries: SendEntry[], base: number, err: unknown): void {
  const state = self[kState]
  const e = err as { index?: unknown; sent?: unknown }
  const index = typeof e.index === 'number' ? e.index : typeof e.sent === 'number' ? e.sent : 0
  const sent = typeof e.sent === 'number' ? Math.min(e.sent, index) : index
  const failAll = !state.open || typeof e.index !== 'number'
  for (let i = base; i < base + sent && i < entries.length; i++) finishSend(self, entries[i], null)
  const at = base + index
  if (at < entries.length) finishSend(self, entries[at], failed(entries, at, err))
  const after = entries.slice(base + sent, at).concat(entries.slice(at + 1))
  if (after.length === 0) return
  if (failAll) {
    for (const x of after) finishSend(self, x, failed([x], 0, err))
  } else {
    // A flush took them, so they count as held (and held sends stay a prefix of the queue).
    for (const x of after) x.held = true
    state.sends = after.concat(state.sends)
  }
}

function scheduleMore(self: Facade): void {
  const state = self[kState]
  if (!state.open || state.sends.length === 0 || !state.sends[0].ready) return
  // Sends held back by pacing wait for their timer (armed again if it fired meanwhile).
  if (state.sends[0].held) armPace(self, resume)
  else scheduleFlush(self)
}

/** Sends everything ready now, without waiting or pacing (before close/connect/disconnect). */
export function flushNow(self: Facade): void {
  const state = self[kState]
  if (state.sends.length === 0) stopPace(state)
  if (state.inFlight !== null || state.sock === null) return
  let guard = state.sends.length + 1
  while (guard-- > 0 && state.sends.length > 0 && state.sends[0].ready && state.inFlight === null) flush(self, true)
  if (state.sends.length === 0) stopPace(state)
}

/** getSendQueueCount(): sends not yet handed to the kernel. */
export function sendQueueCount(self: Facade): number {
  const state = self[kState]
  return state.sends.length + (state.sock !== null ? (state.sock as UdpSocket).stats().pendingSends : 0)
}
