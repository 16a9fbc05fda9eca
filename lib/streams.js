'use strict'
// Web streams over a UdpSocket. readable(): a ReadableStream of Batch objects, pull-based:
// a batch is read only when the stream's queue has room, so a slow consumer leaves datagrams
// in the kernel buffer (where they are counted as drops once it is full) instead of in memory.
// writable(): a WritableStream of messages (or arrays of messages, one sendBatch each).

const { ReadableStream, WritableStream, CountQueuingStrategy } = require('node:stream/web')
const errors = require('./errors.js')

function checkSocket(socket) {
  if (socket === null || typeof socket !== 'object' || typeof socket.recvBatch !== 'function' || typeof socket.sendBatch !== 'function') {
    throw errors.invalidArgType('socket', 'a UdpSocket', socket)
  }
}

function checkOptions(options) {
  if (options === undefined) return {}
  if (options === null || typeof options !== 'object') throw errors.invalidArgType('options', 'of type object', options)
  const { signal, highWaterMark } = options
  if (signal !== undefined && (signal === null || typeof signal !== 'object' || typeof signal.aborted !== 'boolean')) {
    throw errors.invalidArgType('options.signal', 'an instance of AbortSignal', signal)
  }
  if (highWaterMark !== undefined) {
    if (typeof highWaterMark !== 'number') throw errors.invalidArgType('options.highWaterMark', 'of type number', highWaterMark)
    if (!Number.isInteger(highWaterMark) || highWaterMark < 1 || highWaterMark > 1024) {
      throw errors.outOfRange('options.highWaterMark', 'an integer >= 1 and <= 1024', highWaterMark)
    }
  }
  for (const k of ['closeOnCancel', 'skipErrors']) {
    if (options[k] !== undefined && typeof options[k] !== 'boolean') throw errors.invalidArgType(`options.${k}`, 'of type boolean', options[k])
  }
  return options
}

/**
 * A ReadableStream of the socket's batches (never empty ones). The stream ends when the socket
 * closes. Cancelling the stream stops reading but leaves the socket open unless
 * `closeOnCancel` is true. Aborting `signal` errors the stream with an AbortError (the socket
 * stays open). Receive errors (ICMP `ECONNREFUSED`...) error the stream, unless the socket
 * has an `'error'` listener (which then gets them) or `skipErrors` is true.
 *
 * @param {import('./socket.js').UdpSocket} socket
 * @param {{ highWaterMark?: number, closeOnCancel?: boolean, skipErrors?: boolean, signal?: AbortSignal }} [options]
 * @returns {ReadableStream}
 */
function readable(socket, options) {
  checkSocket(socket)
  const { highWaterMark = 4, closeOnCancel = false, skipErrors = false, signal } = checkOptions(options)
  // Aborts the pending recvBatch when the stream is cancelled or `signal` fires.
  const stop = new AbortController()
  let onAbort = null
  const cleanup = () => {
    if (onAbort !== null) signal.removeEventListener('abort', onAbort)
    onAbort = null
  }
  return new ReadableStream(
    {
      start(controller) {
        if (!signal) return
        if (signal.aborted) {
          stop.abort()
          controller.error(errors.abortError(signal))
          return
        }
        onAbort = () => {
          cleanup()
          stop.abort()
          try {
            controller.error(errors.abortError(signal))
          } catch {
            // already closed
          }
        }
        signal.addEventListener('abort', onAbort, { once: true })
      },
      async pull(controller) {
        for (;;) {
          let batch
          try {
            batch = await socket.recvBatch({ signal: stop.signal })
          } catch (err) {
            if (stop.signal.aborted) return
            if (err && err.code === 'ERR_SOCKET_CLOSED') {
              cleanup()
              controller.close()
              return
            }
            if (skipErrors) continue
            cleanup()
            controller.error(err)
            return
          }
          if (batch.count > 0) {
            controller.enqueue(batch)
            return
          }
        }
      },
      cancel() {
        cleanup()
        stop.abort()
        if (closeOnCancel) socket.close()
      },
    },
    new CountQueuingStrategy({ highWaterMark }),
  )
}

/**
 * A WritableStream that sends what is written: one message (`{ data, address, port }`) or an
 * array of them (sent as one batch). Each write waits for its sendBatch, so the stream's
 * backpressure follows the socket's send buffer. Closing or aborting the stream leaves the
 * socket open unless `closeOnEnd` is true.
 *
 * @param {import('./socket.js').UdpSocket} socket
 * @param {{ highWaterMark?: number, closeOnEnd?: boolean, signal?: AbortSignal }} [options]
 * @returns {WritableStream}
 */
function writable(socket, options) {
  checkSocket(socket)
  if (options !== undefined && options !== null && typeof options === 'object' && options.closeOnEnd !== undefined && typeof options.closeOnEnd !== 'boolean') {
    throw errors.invalidArgType('options.closeOnEnd', 'of type boolean', options.closeOnEnd)
  }
  const { highWaterMark = 16, closeOnEnd = false, signal } = checkOptions(options)
  const stop = new AbortController()
  let onAbort = null
  if (signal) {
    if (signal.aborted) stop.abort()
    else {
      onAbort = () => stop.abort()
      signal.addEventListener('abort', onAbort, { once: true })
    }
  }
  const end = () => {
    if (onAbort !== null) signal.removeEventListener('abort', onAbort)
    onAbort = null
    if (closeOnEnd) socket.close()
  }
  return new WritableStream(
    {
      write(chunk) {
        if (stop.signal.aborted) return Promise.reject(errors.abortError(signal))
        return socket.sendBatch(Array.isArray(chunk) ? chunk : [chunk], { signal: stop.signal }).then(() => undefined)
      },
      close() {
        end()
      },
      abort() {
        stop.abort()
        end()
      },
    },
    new CountQueuingStrategy({ highWaterMark }),
  )
}

module.exports = { readable, writable }
