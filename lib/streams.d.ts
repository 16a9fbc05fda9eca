// Typings of lib/streams.js: Web streams over a UdpSocket.
/// <reference types="node" />
import type { ReadableStream, WritableStream } from 'node:stream/web'
import type { Batch, OutgoingMessage, UdpSocket } from './index'

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

/**
 * A ReadableStream of the socket's batches, pull-based: the socket is read only while the
 * stream's queue has room. Ends when the socket closes.
 */
export declare function readable(socket: UdpSocket, options?: ReadableOptions): ReadableStream<Batch>

/** A WritableStream sending each written message, or array of messages as one batch. */
export declare function writable(socket: UdpSocket, options?: WritableOptions): WritableStream<OutgoingMessage | ReadonlyArray<OutgoingMessage>>
