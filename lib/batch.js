'use strict'
// The view JS gets of one received batch. The native layer hands over one buffer: metadata
// laid out as parallel arrays (see src/batch.rs; the offsets come from the native
// batchLayout(), read once below), then the payloads back to back:
//   timestamps u64[n] @0 | lengths u32[n] @8n | offsets u32[n] @12n | scope ids u32[n] @16n |
//   interface index u32[n] @20n | ports u16[n] @24n | families u8[n] @26n | flags u8[n] @27n |
//   tos u8[n] @28n | local families u8[n] @29n | source address bytes u8[16n] @32n |
//   local address bytes u8[16n] @48n          (64 bytes per datagram)
// Nothing is created per datagram unless asked for (data(i), address(i), iteration).

const { formatIPv4, formatIPv6 } = require('./address.js')
const errors = require('./errors.js')
const { batchLayout } = require('./native.js')

// Section offsets as multiples of the datagram count, and flag bits: one source of truth.
const L = batchLayout()
const FLAG_TRUNCATED = L.flagTruncated
const FLAG_LOCAL = L.flagLocal
const FLAG_TIMESTAMP = L.flagTimestamp
const FLAG_TOS = L.flagTos
const META_BYTES = L.bytesPerDatagram
const LENGTHS = L.lengths
const OFFSETS = L.offsets
const SCOPES = L.scopes
const IFINDEXES = L.ifindexes
const PORTS = L.ports
const FAMILIES = L.families
const FLAGS = L.flags
const TOS = L.tos
const LOCAL_FAMILIES = L.localFamilies
const ADDRESSES = L.addresses
const LOCAL_ADDRESSES = L.localAddresses
const TIMESTAMPS = L.timestamps
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
    this.lengths = new Uint32Array(ab, base + LENGTHS * count, count)
    /** Byte offset of each datagram in `buffer`. */
    this.offsets = new Uint32Array(ab, base + OFFSETS * count, count)
    /** Kernel's cumulative count of datagrams dropped for this socket (buffer full), if known. */
    this.kernelDrops = kernelDrops >= 0 ? kernelDrops : undefined
    this._meta = meta
    this._ports = null
    this._families = null
    this._flags = null
    this._words = null
    this._cache = null
  }

  /** Source ports, one per datagram. */
  get ports() {
    if (this._ports === null) this._ports = new Uint16Array(this._meta.buffer, this._meta.byteOffset + PORTS * this.count, this.count)
    return this._ports
  }

  /** Source address families, one per datagram: 4 or 6. */
  get families() {
    if (this._families === null) this._families = new Uint8Array(this._meta.buffer, this._meta.byteOffset + FAMILIES * this.count, this.count)
    return this._families
  }

  /** Per-datagram flags; bit 0 set means truncated. */
  get flags() {
    if (this._flags === null) this._flags = new Uint8Array(this._meta.buffer, this._meta.byteOffset + FLAGS * this.count, this.count)
    return this._flags
  }

  /** Source address bytes, 16 per datagram (IPv4 in the first four). */
  get addressBytes() {
    return new Uint8Array(this._meta.buffer, this._meta.byteOffset + ADDRESSES * this.count, 16 * this.count)
  }

  /** Local (destination) address bytes, 16 per datagram (with `pktinfo: true`). */
  get localAddressBytes() {
    return new Uint8Array(this._meta.buffer, this._meta.byteOffset + LOCAL_ADDRESSES * this.count, 16 * this.count)
  }

  /** Interface index each datagram arrived on (with `pktinfo: true`; 0 when unknown). */
  get interfaceIndexes() {
    return new Uint32Array(this._meta.buffer, this._meta.byteOffset + IFINDEXES * this.count, this.count)
  }

  /** Kernel receive time of each datagram in nanoseconds since the Unix epoch (with
   * `timestamps: true`; 0n when unknown). */
  get timestamps() {
    return new BigUint64Array(this._meta.buffer, this._meta.byteOffset + TIMESTAMPS * this.count, this.count)
  }

  /** TOS (IPv4) / traffic class (IPv6) byte of each datagram (with `recvTos: true`). */
  get tosValues() {
    return new Uint8Array(this._meta.buffer, this._meta.byteOffset + TOS * this.count, this.count)
  }

  /** IPv6 scope ids, one per datagram (0 when none). */
  get scopeIds() {
    return new Uint32Array(this._meta.buffer, this._meta.byteOffset + SCOPES * this.count, this.count)
  }

  _check(i) {
    if (!(i >= 0 && i < this.count) || !Number.isInteger(i)) {
      throw errors.outOfRange('index', `an integer >= 0 and < ${this.count}`, i)
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
    return (this._meta[FLAGS * this.count + i] & FLAG_TRUNCATED) !== 0
  }

  /** Local address datagram `i` was sent to (with `pktinfo: true`), or undefined. */
  localAddress(i) {
    this._check(i)
    const n = this.count
    const m = this._meta
    if ((m[FLAGS * n + i] & FLAG_LOCAL) === 0) return undefined
    const o = LOCAL_ADDRESSES * n + 16 * i
    return m[LOCAL_FAMILIES * n + i] === 6 ? formatIPv6(m, o, 0) : formatIPv4(m, o)
  }

  /** Interface index datagram `i` arrived on (with `pktinfo: true`), or undefined. */
  interfaceIndex(i) {
    this._check(i)
    if ((this._meta[FLAGS * this.count + i] & FLAG_LOCAL) === 0) return undefined
    return this.interfaceIndexes[i]
  }

  /** Kernel receive time of datagram `i`, nanoseconds since the epoch (with `timestamps: true`), or undefined. */
  timestamp(i) {
    this._check(i)
    if ((this._meta[FLAGS * this.count + i] & FLAG_TIMESTAMP) === 0) return undefined
    return this.timestamps[i]
  }

  /** TOS / traffic class byte of datagram `i` (with `recvTos: true`), or undefined. */
  tos(i) {
    this._check(i)
    if ((this._meta[FLAGS * this.count + i] & FLAG_TOS) === 0) return undefined
    return this._meta[TOS * this.count + i]
  }

  /** ECN codepoint of datagram `i` (low two bits of TOS: 0 Not-ECT, 1 ECT(1), 2 ECT(0), 3 CE), or undefined. */
  ecn(i) {
    const t = this.tos(i)
    return t === undefined ? undefined : t & 3
  }

  /** Source address of datagram `i` as text (IPv6 sources, IPv4-mapped ones included, as IPv6). */
  address(i) {
    this._check(i)
    return this._address(i)
  }

  // Formats lazily, reusing the previous string when the address repeats (a batch usually
  // comes from few sources).
  _address(i) {
    const n = this.count
    const m = this._meta
    if (this._words === null) this._words = new Uint32Array(m.buffer, m.byteOffset + ADDRESSES * n, 4 * n)
    const w = this._words
    const fam = m[FAMILIES * n + i]
    const j = 4 * i
    const c = this._cache
    if (c !== null && c.fam === fam && c.w0 === w[j] && (fam === 4 || (c.w1 === w[j + 1] && c.w2 === w[j + 2] && c.w3 === w[j + 3] && c.scope === this.scopeIds[i]))) {
      return c.text
    }
    let text = ''
    if (fam === 4) text = formatIPv4(m, ADDRESSES * n + 16 * i)
    else if (fam === 6) text = formatIPv6(m, ADDRESSES * n + 16 * i, this.scopeIds[i])
    this._cache = { fam, w0: w[j], w1: w[j + 1], w2: w[j + 2], w3: w[j + 3], scope: fam === 6 ? this.scopeIds[i] : 0, text }
    return text
  }

  /** Source port of datagram `i`. */
  port(i) {
    this._check(i)
    return this.ports[i]
  }

  /** `'IPv4'` or `'IPv6'`: the family of datagram `i`'s source. */
  family(i) {
    this._check(i)
    return this._meta[FAMILIES * this.count + i] === 6 ? 'IPv6' : 'IPv4'
  }

  /** One message object per datagram (created lazily as you iterate). */
  [Symbol.iterator]() {
    let i = 0
    const batch = this
    return {
      next() {
        if (i >= batch.count) return { value: undefined, done: true }
        const k = i++
        const n = batch.count
        const m = batch._meta
        const off = batch.offsets[k]
        return {
          value: {
            data: batch.buffer.subarray(off, off + batch.lengths[k]),
            address: batch._address(k),
            port: batch.ports[k],
            family: m[FAMILIES * n + k] === 6 ? 'IPv6' : 'IPv4',
            truncated: (m[FLAGS * n + k] & FLAG_TRUNCATED) !== 0,
          },
          done: false,
        }
      },
      [Symbol.iterator]() {
        return this
      },
    }
  }

  /** Wraps what the native layer delivers: metadata (`META_BYTES` per datagram) then payloads. */
  static fromNative(bytes, count, kernelDrops) {
    const metaLen = META_BYTES * count
    return new Batch(bytes.subarray(metaLen), bytes.subarray(0, metaLen), count, kernelDrops)
  }

  /** A batch with no datagrams (what `recvBatch` resolves with when its timeout fires). */
  static empty() {
    return new Batch(EMPTY, EMPTY_META, 0, -1)
  }
}

module.exports = { Batch }
