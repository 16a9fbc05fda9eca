// The batch layout and event kinds of the native binding, restated for the node:dgram fallback
// (which has no binary to ask). They must equal src/batch.rs (`MetaLayout`, `FLAG_*`) and
// src/native/dispatch.rs (`EVENT_*`): __test__/fallback.spec.ts compares them with the
// binding's `batchLayout()` whenever the binary loads, so a change there fails a test here.

import type { BatchLayout } from '../../index.js'

/** The metadata layout of a received batch (see src/batch.rs). */
export const FALLBACK_LAYOUT: BatchLayout = Object.freeze({
  bytesPerDatagram: 64,
  timestamps: 0,
  lengths: 8,
  offsets: 12,
  scopes: 16,
  ifindexes: 20,
  ports: 24,
  families: 26,
  flags: 27,
  tos: 28,
  localFamilies: 29,
  addresses: 32,
  localAddresses: 48,
  flagTruncated: 1,
  flagLocal: 2,
  flagTimestamp: 4,
  flagTos: 8,
  compactBytesPerDatagram: 16,
  compactLengths: 0,
  compactOffsets: 4,
  compactAddresses: 8,
  compactPorts: 12,
  compactFamilies: 14,
  compactFlags: 15,
})

/** Dispatch `kind` values (src/native/dispatch.rs). */
export const EVENT_BATCH = 0
export const EVENT_ERROR = 1
export const EVENT_WRITABLE = 2
export const EVENT_BATCH_COMPACT = 3
/** The fallback never lands a batch in a shared buffer (the native `EVENT_BATCH_LANDED` kinds): no kind matches. */
export const EVENT_BATCH_LANDED = -1
export const EVENT_BATCH_COMPACT_LANDED = -1
