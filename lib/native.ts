// The native binding, loaded through the generated platform loader (../index.js, the same
// relative path from lib/ and from dist/). When no binary fits this machine the loader throws
// "Cannot find native binding. npm has a bug ...", which names neither the platform nor the
// package it looked for; this rethrows that as an error that does, and says how to build from
// source (the loader's error is kept as `cause`).

import { nativeLoadError } from './native-error.js'

type Binding = typeof import('../index.js')

let binding: Binding
try {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  binding = require('../index.js') as Binding
} catch (err) {
  throw nativeLoadError(err)
}

/** The native socket class (typed by the napi-generated ../index.d.ts). */
export const NativeSocket = binding.NativeSocket
/** The batch metadata layout, defined once in src/batch.rs (read once at load). */
export const BATCH_LAYOUT = binding.batchLayout()
/** The family (4 or 6) of an open UDP socket fd, checked as adopting it would be (src/adopt.rs). */
export const udpSocketFamily = binding.udpSocketFamily
/** `NativeEvent.kind` values: a received batch, a receive error, room in the send buffer. */
export const EVENT_BATCH = binding.EVENT_BATCH
export const EVENT_ERROR = binding.EVENT_ERROR
export const EVENT_WRITABLE = binding.EVENT_WRITABLE
export type NativeSocket = import('../index.js').NativeSocket
export type {
  AddressInfo,
  BatchLayout,
  BufferSizes,
  Capabilities,
  NativeEvent,
  NativeOptions,
  NativeSendResult,
  NativeStats,
} from '../index.js'
