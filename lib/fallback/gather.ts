// Gathering node:dgram's one-'message'-at-a-time delivery into batches in the native byte
// layout (src/batch.rs, restated in layout.ts): metadata as parallel arrays, then the payloads
// back to back, so the same `Batch` view reads what either backend delivers. Datagrams longer
// than `maxDatagramSize` are cut and flagged truncated, as the native receive slots cut them.

import type { RemoteInfo } from 'node:dgram'
import { writeAddress } from './addr.js'
import { FALLBACK_LAYOUT as L } from './layout.js'

/** Datagrams received from node:dgram and not yet delivered as a batch. */
export class Gather {
  msgs: Buffer[] = []
  infos: RemoteInfo[] = []
  constructor(readonly maxDatagramSize: number) {}

  get length(): number {
    return this.msgs.length
  }

  push(msg: Buffer, rinfo: RemoteInfo): void {
    this.msgs.push(msg)
    this.infos.push(rinfo)
  }

  clear(): void {
    this.msgs = []
    this.infos = []
  }

  /**
   * Takes up to `max` datagrams, oldest first, as one batch buffer (metadata then payloads).
   * Returns the buffer, the count, the payload bytes and how many were truncated.
   */
  take(max: number): { data: Buffer; count: number; bytes: number; truncated: number } {
    const n = Math.min(max, this.msgs.length)
    const msgs = this.msgs.splice(0, n)
    const infos = this.infos.splice(0, n)
    const cap = this.maxDatagramSize
    const meta = L.bytesPerDatagram * n
    let bytes = 0
    for (let i = 0; i < n; i++) bytes += Math.min(msgs[i].length, cap)
    // Not pooled: offset 0 of its own ArrayBuffer, so every section is aligned for its type.
    const data = Buffer.allocUnsafeSlow(meta + bytes)
    data.fill(0, 0, meta)
    const ab = data.buffer
    const lengths = new Uint32Array(ab, L.lengths * n, n)
    const offsets = new Uint32Array(ab, L.offsets * n, n)
    const scopes = new Uint32Array(ab, L.scopes * n, n)
    const ports = new Uint16Array(ab, L.ports * n, n)
    const fams = L.families * n
    const flags = L.flags * n
    const addrs = L.addresses * n
    let truncated = 0
    let at = 0
    for (let i = 0; i < n; i++) {
      const m = msgs[i]
      const r = infos[i]
      const len = Math.min(m.length, cap)
      if (len < m.length) {
        data[flags + i] = L.flagTruncated
        truncated++
      }
      m.copy(data, meta + at, 0, len)
      lengths[i] = len
      offsets[i] = at
      at += len
      ports[i] = r.port
      const v4 = r.family === 'IPv4'
      data[fams + i] = v4 ? 4 : 6
      scopes[i] = writeAddress(r.address, v4, data, addrs + 16 * i)
    }
    return { data, count: n, bytes, truncated }
  }
}
