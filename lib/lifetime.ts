// UdpSocket's lifetime outside the I/O paths: which sockets are kept from garbage collection,
// the one-time warning when the kernel caps a requested buffer size, and the counters a
// closed socket keeps reporting.

import type { NativeOptions } from './native.js'
import type { Stats } from './types.js'
import type { UdpSocket } from './socket.js'

/** Open, referenced sockets: kept from garbage collection, as Node keeps active handles. */
export const live = new Set<UdpSocket>()
const warned = new Set<string>()

export type { Stats }

function checkCapped(requested: number | undefined, granted: number, forced: boolean, which: string, sysctl: string): void {
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

/** Warns once per (option, requested, granted) when net.core.rmem_max/wmem_max capped a request. */
export function warnIfCapped(s: UdpSocket, nopts: NativeOptions): void {
  if (nopts.recvBufferSize === undefined && nopts.sendBufferSize === undefined) return
  const sizes = s.bufferSizes()
  checkCapped(nopts.recvBufferSize, sizes.recvBufferSize, sizes.recvForced, 'recvBufferSize', 'rmem_max')
  checkCapped(nopts.sendBufferSize, sizes.sendBufferSize, sizes.sendForced, 'sendBufferSize', 'wmem_max')
}

/** UdpSocket.stats(). */
export function stats(s: UdpSocket): Stats {
  const st = (s._closed ? closedStats(s) : s._native.stats()) as Stats
  if (!s._closed) st.datagramsDiscarded = 0
  st.queuedBatches = s._queue.length
  st.pendingSends = s._sendQueue.length
  st.pendingErrors = s._errors.length
  st.errorsDropped = s._errorsDropped + st.eventsDropped
  return st
}

/**
 * The native counters taken at close() (the native layer reports zeros once closed), raised
 * to what JS itself counted should a batch have reached JS after the snapshot (a guard: since
 * receiving happens on the JS thread, a batch is counted natively and delivered in the same
 * loop callback, and none arrives after close()).
 * `datagramsDiscarded`: received, but dropped at close before any consumer took them (queued
 * batches, plus any batch counted natively that JS never saw), so `datagramsReceived` is
 * exactly what consumers got plus `datagramsDiscarded`.
 */
function closedStats(s: UdpSocket): Stats {
  // Both backends report the final counts from stats() once closed.
  if (s._statsAtClose === null) s._statsAtClose = s._native.stats()
  const st = { ...s._statsAtClose } as Stats
  st.datagramsReceived = Math.max(st.datagramsReceived, s._gotDatagrams)
  st.batchesReceived = Math.max(st.batchesReceived, s._gotBatches)
  st.bytesReceived = Math.max(st.bytesReceived, s._gotBytes)
  st.datagramsDiscarded = s._discarded + (st.datagramsReceived - s._gotDatagrams)
  return st
}
