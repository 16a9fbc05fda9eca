// Web streams over a UdpSocket. readable(): a ReadableStream of Batch objects, pull-based:
// a batch is read only when the stream's queue has room, so a slow consumer leaves datagrams
// in the kernel buffer (where they are counted as drops once it is full) instead of in memory.
// writable(): a WritableStream of messages (or arrays of messages, one sendBatch each).

import { CountQueuingStrategy, ReadableStream, WritableStream } from 'node:stream/web'
import type { Batch } from './batch.js'
import * as errors from './errors.js'
import type { UdpSocket } from './socket.js'
import type { OutgoingMessage } from './types.js'
import { checkBool, checkInt, checkOptions as checkOptionsObject } from './validate.js'

/** Options of {@link readable}. */
export interface ReadableOptions {
  /** Batches the stream may hold before it stops reading from the socket, 1..1024. Default 4. */
  highWaterMark?: number
  /** Close the socket when the stream is cancelled. Default false: cancelling only stops reading. */
  closeOnCancel?: boolean
  /** Skip receive errors (ICMP `ECONNREFUSED`...) instead of erroring the stream. Default false. */
  skipErrors?: boolean
  /** Aborting errors the stream with an AbortError; the socket stays open. */
  signal?: AbortSignal
}

/** Options of {@link writable}. */
export interface WritableOptions {
  /** Writes the stream may queue before it applies backpressure, 1..1024. Default 16. */
  highWaterMark?: number
  /** Close the socket when the stream is closed or aborted. Default false. */
  closeOnEnd?: boolean
  /** Aborting rejects the pending write (and later ones) with an AbortError. */
  signal?: AbortSignal
}

type AnyOptions = ReadableOptions & WritableOptions & Record<string, unknown>

function checkSocket(socket: unknown): asserts socket is UdpSocket {
  const s = socket as { recvBatch?: unknown; sendBatch?: unknown } | null
  if (s === null || typeof s !== 'object' || typeof s.recvBatch !== 'function' || typeof s.sendBatch !== 'function') {
    throw errors.invalidArgType('socket', 'a UdpSocket', socket)
  }
}

function checkOptions(options: unknown): AnyOptions {
  if (options === undefined) return {}
  checkOptionsObject(options)
  const o = options as AnyOptions
  const { signal, highWaterMark } = o
  if (signal !== undefined && (signal === null || typeof signal !== 'object' || typeof signal.aborted !== 'boolean')) {
    throw errors.invalidArgType('options.signal', 'an instance of AbortSignal', signal)
  }
  if (highWaterMark !== undefined) checkInt(highWaterMark, 'options.highWaterMark', 1, 1024)
  for (const k of ['closeOnCancel', 'skipErrors']) {
    if (o[k] !== undefined) checkBool(o[k], `options.${k}`)
  }
  return o
}

/**
 * A ReadableStream of the socket's batches (never empty ones), pull-based: the socket is read
 * only while the stream's queue has room, so a slow consumer leaves datagrams in the kernel
 * buffer instead of in memory. The stream ends when the socket closes. Cancelling the stream
 * stops reading but leaves the socket open unless `closeOnCancel` is true. Aborting `signal`
 * errors the stream with an AbortError (the socket stays open). Receive errors (ICMP
 * `ECONNREFUSED`...) error the stream, unless the socket has an `'error'` listener (which then
 * gets them) or `skipErrors` is true.
 *
 * @throws TypeError `ERR_INVALID_ARG_TYPE` when `socket` is not a UdpSocket or an option has the
 * wrong type; RangeError `ERR_OUT_OF_RANGE` for `highWaterMark` outside 1..1024.
 *
 * @example
 * ```ts
 * for await (const batch of readable(socket, { highWaterMark: 8 })) console.log(batch.count)
 * ```
 */
export function readable(socket: UdpSocket, options?: ReadableOptions): ReadableStream<Batch> {
  checkSocket(socket)
  const { highWaterMark = 4, closeOnCancel = false, skipErrors = false, signal } = checkOptions(options)
  // Aborts the pending recvBatch when the stream is cancelled or `signal` fires.
  const stop = new AbortController()
  let onAbort: (() => void) | null = null
  const cleanup = () => {
    if (onAbort !== null) signal!.removeEventListener('abort', onAbort)
    onAbort = null
  }
  return new ReadableStream<Batch>(
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
          let batch: Batch
          try {
            batch = await socket.recvBatch({ signal: stop.signal })
          } catch (err) {
            if (stop.signal.aborted) return
            if (err && (err as { code?: unknown }).code === 'ERR_SOCKET_CLOSED') {
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
 * socket open unless `closeOnEnd` is true. Aborting `signal` rejects the pending write (and
 * later ones) with an AbortError.
 *
 * @throws TypeError `ERR_INVALID_ARG_TYPE` when `socket` is not a UdpSocket or an option has the
 * wrong type; RangeError `ERR_OUT_OF_RANGE` for `highWaterMark` outside 1..1024.
 *
 * @example
 * ```ts
 * const w = writable(socket).getWriter()
 * await w.write({ data: 'hello', address: '127.0.0.1', port: 9000 })
 * ```
 */
export function writable(socket: UdpSocket, options?: WritableOptions): WritableStream<OutgoingMessage | ReadonlyArray<OutgoingMessage>> {
  checkSocket(socket)
  const o = options as AnyOptions | undefined
  if (o !== undefined && o !== null && typeof o === 'object' && o.closeOnEnd !== undefined) checkBool(o.closeOnEnd, 'options.closeOnEnd')
  const { highWaterMark = 16, closeOnEnd = false, signal } = checkOptions(options)
  const stop = new AbortController()
  let onAbort: (() => void) | null = null
  if (signal) {
    if (signal.aborted) stop.abort()
    else {
      onAbort = () => stop.abort()
      signal.addEventListener('abort', onAbort, { once: true })
    }
  }
  const end = () => {
    if (onAbort !== null) signal!.removeEventListener('abort', onAbort)
    onAbort = null
    if (closeOnEnd) socket.close()
  }
  return new WritableStream<OutgoingMessage | ReadonlyArray<OutgoingMessage>>(
    {
      write(chunk) {
        if (stop.signal.aborted) return Promise.reject(errors.abortError(signal))
        return socket.sendBatch(Array.isArray(chunk) ? chunk : [chunk as OutgoingMessage], { signal: stop.signal }).then(() => undefined)
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
