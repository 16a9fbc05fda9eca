'use strict'
// The view JS gets of one received batch. The native layer hands over two buffers: the
// payloads back to back, and metadata laid out as parallel arrays (see src/batch.rs):
//   lengths u32[n] @0 | offsets u32[n] @4n | scope ids u32[n] @8n | ports u16[n] @12n |
//   families u8[n] @14n | flags u8[n] @15n | address bytes u8[16n] @16n
// Nothing is created per datagram unless asked for (data(i), address(i), iteration).

const { formatIPv4, formatIPv6 } = require('./address.js')

const FLAG_TRUNCATED = 1
const EMPTY = Buffer.alloc(0)
const EMPTY_META = new Uint8Array(0)

class Batch {
  /**
   * @param {Buffer} buffer payloads back to back
   * @param {Uint8Array} meta metadata (layout above)
   * @param {number} count datagrams in the batch
   * @param {number} kernelDrops cumulative kernel drop counter, or -1 when unknown
   */
  constructor(buffer, meta, count, kernelDrops) {
    const ab = meta.buffer
    const base = meta.byteOffset
    /** Number of datagrams. */
    this.count = count
    /** All payloads, back to back. */
    this.buffer = buffer
    /** Byte length of each datagram in `buffer`. */
    this.lengths = new Uint32Array(ab, base, count)
    /** Byte offset of each datagram in `buffer`. */
    this.offsets = new Uint32Array(ab, base + 4 * count, count)
    /** Kernel's cumulative count of datagrams dropped for this socket (buffer full), if known. */
    this.kernelDrops = kernelDrops >= 0 ? kernelDrops : undefined
    this._meta = meta
    this._ports = null
    this._families = null
    this._flags = null
  }

  /** Source ports, one per datagram. */
  get ports() {
    if (this._ports === null) this._ports = new Uint16Array(this._meta.buffer, this._meta.byteOffset + 12 * this.count, this.count)
    return this._ports
  }

  /** Source address families, one per datagram: 4 or 6. */
  get families() {
    if (this._families === null) this._families = new Uint8Array(this._meta.buffer, this._meta.byteOffset + 14 * this.count, this.count)
    return this._families
  }

  /** Per-datagram flags; bit 0 set means truncated. */
  get flags() {
    if (this._flags === null) this._flags = new Uint8Array(this._meta.buffer, this._meta.byteOffset + 15 * this.count, this.count)
    return this._flags
  }

  /** Source address bytes, 16 per datagram (IPv4 in the first four). */
  get addressBytes() {
    return new Uint8Array(this._meta.buffer, this._meta.byteOffset + 16 * this.count, 16 * this.count)
  }

  /** IPv6 scope ids, one per datagram (0 when none). */
  get scopeIds() {
    return new Uint32Array(this._meta.buffer, this._meta.byteOffset + 8 * this.count, this.count)
  }

  _check(i) {
    if (!(i >= 0 && i < this.count) || !Number.isInteger(i)) {
      throw new RangeError(`The value of "index" is out of range. It must be an integer >= 0 and < ${this.count}. Received ${i}`)
    }
  }

  /** The payload of datagram `i`: a view into `buffer`, no copy. */
  data(i) {
    this._check(i)
    const off = this.offsets[i]
    return this.buffer.subarray(off, off + this.lengths[i])
  }

  /** True when datagram `i` was longer than `maxDatagramSize` and was cut. */
  truncated(i) {
    this._check(i)
    return (this._meta[15 * this.count + i] & FLAG_TRUNCATED) !== 0
  }

  /** Source address of datagram `i` as text (IPv6 sources, IPv4-mapped ones included, as IPv6). */
  address(i) {
    this._check(i)
    const n = this.count
    const m = this._meta
    const o = 16 * n + 16 * i
    const fam = m[14 * n + i]
    if (fam === 4) return formatIPv4(m, o)
    if (fam === 6) return formatIPv6(m, o, this.scopeIds[i])
    return ''
  }

  /** Source port of datagram `i`. */
  port(i) {
    this._check(i)
    return this.ports[i]
  }

  /** `'IPv4'` or `'IPv6'`: the family of datagram `i`'s source. */
  family(i) {
    this._check(i)
    return this._meta[14 * this.count + i] === 6 ? 'IPv6' : 'IPv4'
  }

  /** One message object per datagram (created lazily as you iterate). */
  *[Symbol.iterator]() {
    for (let i = 0; i < this.count; i++) {
      yield {
        data: this.data(i),
        address: this.address(i),
        port: this.ports[i],
        family: this.family(i),
        truncated: this.truncated(i),
      }
    }
  }

  /** Wraps what the native layer delivers: metadata (32 bytes per datagram) then payloads. */
  static fromNative(bytes, count, kernelDrops) {
    const metaLen = 32 * count
    return new Batch(bytes.subarray(metaLen), bytes.subarray(0, metaLen), count, kernelDrops)
  }

  /** A batch with no datagrams (what `recvBatch` resolves with when its timeout fires). */
  static empty() {
    return new Batch(EMPTY, EMPTY_META, 0, -1)
  }
}

module.exports = { Batch }
