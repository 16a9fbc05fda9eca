// The view JS gets of one received batch. The native layer hands over one buffer: metadata
// laid out as parallel arrays (see src/batch.rs), then the payloads back to back. Full layout:
//   timestamps u64[n] @0 | lengths u32[n] @8n | offsets u32[n] @12n | scope ids u32[n] @16n |
//   interface index u32[n] @20n | ports u16[n] @24n | families u8[n] @26n | flags u8[n] @27n |
//   tos u8[n] @28n | local families u8[n] @29n | source address bytes u8[16n] @32n |
//   local address bytes u8[16n] @48n          (64 bytes per datagram)
// Compact layout (every source IPv4, no timestamps / TOS / local addresses: the defaults):
//   lengths u32[n] @0 | offsets u32[n] @4n | source IPv4 bytes u8[4n] @8n | ports u16[n] @12n |
//   families u8[n] @14n | flags u8[n] @15n    (16 bytes per datagram)
// Nothing is created per datagram unless asked for (data(i), address(i), iteration).
//
// Native-interface seam: `LAYOUT` below reads that layout from the native layer (batchLayout()).
// (Past ~400 lines only because each public member carries TSDoc with an example: one class.)

import { endianness } from 'node:os'
import { formatIPv4, formatIPv6 } from './address.js'
import * as errors from './errors.js'
import { BATCH_LAYOUT } from './native.js'

/**
 * One metadata layout: where each per-datagram array starts, as a multiple of the datagram
 * count `n` (so `offset = shape.x * n`), the metadata bytes per datagram and the bytes per
 * source address. The sections only the full layout has are -1 in the compact one. Read once
 * from the native layer, which defines both (src/batch.rs `MetaLayout`). Both objects have the
 * same properties in the same order, so reads from either stay monomorphic.
 */
interface Shape {
  readonly compact: boolean
  readonly bytes: number
  readonly lengths: number
  readonly offsets: number
  readonly ports: number
  readonly families: number
  readonly flags: number
  readonly addr: number
  readonly addrWidth: number
  readonly timestamps: number
  readonly scopeIds: number
  readonly interfaceIndexes: number
  readonly tos: number
  readonly localFamilies: number
  readonly localAddr: number
}

const FULL: Shape = Object.freeze({
  compact: false,
  bytes: BATCH_LAYOUT.bytesPerDatagram,
  lengths: BATCH_LAYOUT.lengths,
  offsets: BATCH_LAYOUT.offsets,
  ports: BATCH_LAYOUT.ports,
  families: BATCH_LAYOUT.families,
  flags: BATCH_LAYOUT.flags,
  addr: BATCH_LAYOUT.addresses,
  addrWidth: 16,
  timestamps: BATCH_LAYOUT.timestamps,
  scopeIds: BATCH_LAYOUT.scopes,
  interfaceIndexes: BATCH_LAYOUT.ifindexes,
  tos: BATCH_LAYOUT.tos,
  localFamilies: BATCH_LAYOUT.localFamilies,
  localAddr: BATCH_LAYOUT.localAddresses,
})

const COMPACT: Shape = Object.freeze({
  compact: true,
  bytes: BATCH_LAYOUT.compactBytesPerDatagram,
  lengths: BATCH_LAYOUT.compactLengths,
  offsets: BATCH_LAYOUT.compactOffsets,
  ports: BATCH_LAYOUT.compactPorts,
  families: BATCH_LAYOUT.compactFamilies,
  flags: BATCH_LAYOUT.compactFlags,
  addr: BATCH_LAYOUT.compactAddresses,
  addrWidth: 4,
  timestamps: -1,
  scopeIds: -1,
  interfaceIndexes: -1,
  tos: -1,
  localFamilies: -1,
  localAddr: -1,
})

const FLAG_TRUNCATED = BATCH_LAYOUT.flagTruncated
const FLAG_LOCAL = BATCH_LAYOUT.flagLocal
const FLAG_TIMESTAMP = BATCH_LAYOUT.flagTimestamp
const FLAG_TOS = BATCH_LAYOUT.flagTos
const EMPTY = Buffer.alloc(0)
/** A typed-array constructor: a view (buffer, offset, length) or zeros (length). */
type ExtraArray<T> = { new (length: number): T; new (buffer: ArrayBufferLike, byteOffset: number, length: number): T }
/** The last IPv4 source formatted (its address word as the metadata holds it) and its text. */
let lastV4Word = -1
let lastV4Text = ''
/** Ports are u16 in the machine's byte order (the native layer writes them so). */
const LITTLE_ENDIAN = endianness() === 'LE'
/** Up to this many datagrams, per-datagram reads compose metadata words from bytes (see `#u32`). */
const FEW = 4

/** One received datagram, as created by iterating a {@link Batch}. */
export interface Message {
  /** Payload: a view into the batch's buffer (no copy). */
  data: Buffer
  /** Source address (IPv4-mapped sources on dual-stack sockets appear as `::ffff:a.b.c.d`). */
  address: string
  /** Source port. */
  port: number
  /** `'IPv4'` or `'IPv6'`. */
  family: 'IPv4' | 'IPv6'
  /** The datagram was longer than `maxDatagramSize` and was cut. */
  truncated: boolean
}

interface AddressCache {
  fam: number
  w0: number
  w1: number
  w2: number
  w3: number
  scope: number
  text: string
}

/**
 * A batch of received datagrams: one buffer and parallel typed arrays. Nothing is created per
 * datagram unless you ask (`data(i)`, `address(i)`, iteration). Batches come from a
 * {@link UdpSocket} (`'batch'` events, `recvBatch()`, `for await`); there is no public
 * constructor. The typed arrays are views of memory the batch owns: they stay valid as long
 * as you keep the batch (or the arrays). A small batch (up to 16 KiB) lives in Node's buffer
 * pool, as a `Buffer.allocUnsafe()` result does: `batch.buffer.buffer` is then the pool's
 * `ArrayBuffer`, shared with other pooled Buffers.
 *
 * @example
 * ```ts
 * const batch = await socket.recvBatch()
 * for (let i = 0; i < batch.count; i++) handle(batch.data(i), batch.address(i), batch.port(i))
 * for (const { data, address, port } of batch) handle(data, address, port)
 * ```
 */
export class Batch implements Iterable<Message> {
  /** Number of datagrams. */
  readonly count: number
  /** Kernel's cumulative count of datagrams dropped for this socket because its buffer was full (Linux; undefined when unknown). */
  readonly kernelDrops: number | undefined
  /** What the native layer handed over: the metadata from byte 0, then the payloads. Every
   * view below is made from it when first asked for: a batch of one datagram read through
   * data(0), address(0) and port(0) makes two typed arrays, not eight. */
  #meta: Buffer
  #metaLen: number
  /** The layout of `#meta`: full, or compact (IPv4 sources, no extras). */
  #s: Shape
  #buffer: Buffer | null = null
  #lengths: Uint32Array | null = null
  #offsets: Uint32Array | null = null
  #ports: Uint16Array | null = null
  #families: Uint8Array | null = null
  #flags: Uint8Array | null = null
  /** The metadata as 32-bit words (lengths, offsets, scope ids, address bytes). */
  #words: Uint32Array | null = null
  #cache: AddressCache | null = null

  private constructor(bytes: Buffer, count: number, kernelDrops: number, compact: boolean) {
    this.count = count
    this.kernelDrops = kernelDrops >= 0 ? kernelDrops : undefined
    this.#meta = bytes
    this.#s = compact ? COMPACT : FULL
    this.#metaLen = this.#s.bytes * count
  }

  /** Every payload, back to back. */
  get buffer(): Buffer {
    if (this.#buffer === null) this.#buffer = this.#meta.subarray(this.#metaLen)
    return this.#buffer
  }

  /** Byte length of datagram `i` in `buffer`. */
  get lengths(): Uint32Array {
    if (this.#lengths === null) this.#lengths = this.#view32(this.#s.lengths)
    return this.#lengths
  }

  /** Byte offset of datagram `i` in `buffer`. */
  get offsets(): Uint32Array {
    if (this.#offsets === null) this.#offsets = this.#view32(this.#s.offsets)
    return this.#offsets
  }

  /** @internal Payload bytes in all (without making the `buffer` view). */
  get payloadBytes(): number {
    return this.#meta.length - this.#metaLen
  }

  #view32(section: number): Uint32Array {
    const m = this.#meta
    return new Uint32Array(m.buffer, m.byteOffset + section * this.count, this.count)
  }

  #word32(): Uint32Array {
    if (this.#words === null) {
      const m = this.#meta
      this.#words = new Uint32Array(m.buffer, m.byteOffset, this.#metaLen >>> 2)
    }
    return this.#words
  }

  /** Metadata word `k` (native byte order). A batch of a few datagrams (a lone query) reads
   * its bytes: making the 32-bit view costs more than the reads (and a small V8-owned buffer
   * first has to be moved off the JS heap for `.buffer`). */
  #u32(k: number): number {
    const w = this.#words
    if (w !== null) return w[k]
    if (this.count > FEW) return this.#word32()[k]
    const m = this.#meta
    const o = k << 2
    return LITTLE_ENDIAN
      ? (m[o] | (m[o + 1] << 8) | (m[o + 2] << 16) | (m[o + 3] << 24)) >>> 0
      : ((m[o] << 24) | (m[o + 1] << 16) | (m[o + 2] << 8) | m[o + 3]) >>> 0
  }

  /**
   * Source ports, one per datagram.
   * @example
   * ```ts
   * batch.ports[0] // source port of datagram 0
   * ```
   */
  get ports(): Uint16Array {
    if (this.#ports === null)
      this.#ports = new Uint16Array(this.#meta.buffer, this.#meta.byteOffset + this.#s.ports * this.count, this.count)
    return this.#ports
  }

  /**
   * Source address families, one per datagram: 4 or 6.
   * @example
   * ```ts
   * batch.families[0] // 4 or 6
   * ```
   */
  get families(): Uint8Array {
    if (this.#families === null)
      this.#families = new Uint8Array(this.#meta.buffer, this.#meta.byteOffset + this.#s.families * this.count, this.count)
    return this.#families
  }

  /**
   * Per-datagram flags; bit 0 set means truncated.
   * @example
   * ```ts
   * const cut = batch.flags.filter((f) => f & 1).length
   * ```
   */
  get flags(): Uint8Array {
    if (this.#flags === null)
      this.#flags = new Uint8Array(this.#meta.buffer, this.#meta.byteOffset + this.#s.flags * this.count, this.count)
    return this.#flags
  }

  /**
   * Source address bytes, 16 per datagram (IPv4 in the first four). A view of the batch's
   * memory, except for a batch whose sources are all IPv4 and that carries no timestamps, TOS
   * or local addresses: it keeps 4 bytes per source, and this is a 16-byte-per-datagram copy.
   * @example
   * ```ts
   * batch.addressBytes.subarray(0, 4) // IPv4 source of datagram 0
   * ```
   */
  get addressBytes(): Uint8Array {
    const s = this.#s
    const n = this.count
    const m = this.#meta
    if (!s.compact) return new Uint8Array(m.buffer, m.byteOffset + s.addr * n, 16 * n)
    const out = new Uint8Array(16 * n)
    const a = s.addr * n
    for (let i = 0; i < n; i++) {
      out[16 * i] = m[a + 4 * i]
      out[16 * i + 1] = m[a + 4 * i + 1]
      out[16 * i + 2] = m[a + 4 * i + 2]
      out[16 * i + 3] = m[a + 4 * i + 3]
    }
    return out
  }

  /** A view of the full-layout-only section at `section * n`, or zeros for a compact batch. */
  #extra<T>(Kind: ExtraArray<T>, section: number, perDatagram: number): T {
    const n = this.count
    if (section < 0) return new Kind(perDatagram * n)
    return new Kind(this.#meta.buffer, this.#meta.byteOffset + section * n, perDatagram * n)
  }

  /**
   * Local (destination) address bytes, 16 per datagram (with `pktinfo: true`).
   * @example
   * ```ts
   * batch.localAddressBytes.subarray(16 * i, 16 * i + 16)
   * ```
   */
  get localAddressBytes(): Uint8Array {
    return this.#extra(Uint8Array, this.#s.localAddr, 16)
  }

  /**
   * Interface index each datagram arrived on (with `pktinfo: true`; 0 when unknown).
   * @example
   * ```ts
   * batch.interfaceIndexes[i] // with pktinfo: true
   * ```
   */
  get interfaceIndexes(): Uint32Array {
    return this.#extra(Uint32Array, this.#s.interfaceIndexes, 1)
  }

  /**
   * Kernel receive time of each datagram in nanoseconds since the Unix epoch (with
   * `timestamps: true`; 0n when unknown).
   * @example
   * ```ts
   * const ns = batch.timestamps[i] // with timestamps: true
   * ```
   */
  get timestamps(): BigUint64Array {
    return this.#extra(BigUint64Array, this.#s.timestamps, 1)
  }

  /**
   * TOS (IPv4) / traffic class (IPv6) byte of each datagram (with `recvTos: true`).
   * @example
   * ```ts
   * batch.tosValues[i] & 3 // ECN bits, with recvTos: true
   * ```
   */
  get tosValues(): Uint8Array {
    return this.#extra(Uint8Array, this.#s.tos, 1)
  }

  /**
   * IPv6 scope ids, one per datagram (0 when none).
   * @example
   * ```ts
   * batch.scopeIds[i] // 0 unless a link-local IPv6 source
   * ```
   */
  get scopeIds(): Uint32Array {
    return this.#extra(Uint32Array, this.#s.scopeIds, 1)
  }

  #check(i: number): void {
    if (!(i >= 0 && i < this.count) || !Number.isInteger(i)) {
      throw errors.outOfRange('index', `an integer >= 0 and < ${this.count}`, i)
    }
  }

  /**
   * The payload of datagram `i`: a view into `buffer`, no copy.
   * @throws RangeError `ERR_OUT_OF_RANGE` when `i` is not an integer 0..count-1 (so does every per-datagram method).
   * @example
   * ```ts
   * const text = batch.data(0).toString('utf8')
   * ```
   */
  data(i: number): Buffer {
    this.#check(i)
    const n = this.count
    const s = this.#s
    const at = this.#metaLen + this.#u32(((s.offsets * n) >>> 2) + i)
    return this.#meta.subarray(at, at + this.#u32(((s.lengths * n) >>> 2) + i))
  }

  /**
   * True when datagram `i` was longer than `maxDatagramSize` and was cut.
   * @throws RangeError `ERR_OUT_OF_RANGE` when `i` is not an integer 0..count-1.
   * @example
   * ```ts
   * if (batch.truncated(i)) console.warn('raise maxDatagramSize')
   * ```
   */
  truncated(i: number): boolean {
    this.#check(i)
    return (this.#meta[this.#s.flags * this.count + i] & FLAG_TRUNCATED) !== 0
  }

  /**
   * Local address datagram `i` was sent to (with `pktinfo: true`), or undefined.
   * @throws RangeError `ERR_OUT_OF_RANGE` when `i` is not an integer 0..count-1.
   * @example
   * ```ts
   * batch.localAddress(i) // '192.0.2.1', with pktinfo: true
   * ```
   */
  localAddress(i: number): string | undefined {
    this.#check(i)
    const n = this.count
    const m = this.#meta
    const s = this.#s
    // A compact batch has no datagram with FLAG_LOCAL (nor the sections read below).
    if ((m[s.flags * n + i] & FLAG_LOCAL) === 0) return undefined
    const o = s.localAddr * n + 16 * i
    return m[s.localFamilies * n + i] === 6 ? formatIPv6(m, o, 0) : formatIPv4(m, o)
  }

  /**
   * Interface index datagram `i` arrived on (with `pktinfo: true`), or undefined.
   * @throws RangeError `ERR_OUT_OF_RANGE` when `i` is not an integer 0..count-1.
   * @example
   * ```ts
   * batch.interfaceIndex(i) // 2, with pktinfo: true
   * ```
   */
  interfaceIndex(i: number): number | undefined {
    this.#check(i)
    if ((this.#meta[this.#s.flags * this.count + i] & FLAG_LOCAL) === 0) return undefined
    return this.interfaceIndexes[i]
  }

  /**
   * Kernel receive time of datagram `i`, nanoseconds since the epoch (with `timestamps: true`), or undefined.
   * @throws RangeError `ERR_OUT_OF_RANGE` when `i` is not an integer 0..count-1.
   * @example
   * ```ts
   * const ms = Number(batch.timestamp(i) ?? 0n) / 1e6
   * ```
   */
  timestamp(i: number): bigint | undefined {
    this.#check(i)
    if ((this.#meta[this.#s.flags * this.count + i] & FLAG_TIMESTAMP) === 0) return undefined
    return this.timestamps[i]
  }

  /**
   * TOS / traffic class byte of datagram `i` (with `recvTos: true`), or undefined.
   * @throws RangeError `ERR_OUT_OF_RANGE` when `i` is not an integer 0..count-1.
   * @example
   * ```ts
   * batch.tos(i) // 0xb8, with recvTos: true
   * ```
   */
  tos(i: number): number | undefined {
    this.#check(i)
    if ((this.#meta[this.#s.flags * this.count + i] & FLAG_TOS) === 0) return undefined
    return this.#meta[this.#s.tos * this.count + i]
  }

  /**
   * ECN codepoint of datagram `i` (low two bits of TOS: 0 Not-ECT, 1 ECT(1), 2 ECT(0), 3 CE), or undefined.
   * @throws RangeError `ERR_OUT_OF_RANGE` when `i` is not an integer 0..count-1.
   * @example
   * ```ts
   * if (batch.ecn(i) === 3) console.log('congestion experienced')
   * ```
   */
  ecn(i: number): number | undefined {
    const t = this.tos(i)
    return t === undefined ? undefined : t & 3
  }

  /**
   * Source address of datagram `i` as text (IPv6 sources, IPv4-mapped ones included, as IPv6).
   * @throws RangeError `ERR_OUT_OF_RANGE` when `i` is not an integer 0..count-1.
   * @example
   * ```ts
   * batch.address(i) // '127.0.0.1'
   * ```
   */
  address(i: number): string {
    this.#check(i)
    return this.#address(i)
  }

  // Formats lazily, reusing the previous string when the address repeats (a batch usually
  // comes from few sources).
  #address(i: number): string {
    const n = this.count
    const m = this.#meta
    const s = this.#s
    const fam = m[s.families * n + i]
    const j = ((s.addr * n) >>> 2) + (s.addrWidth >>> 2) * i
    const w0 = this.#u32(j)
    const c = this.#cache
    if (
      c !== null &&
      c.fam === fam &&
      c.w0 === w0 &&
      (fam !== 6 || (c.w1 === this.#u32(j + 1) && c.w2 === this.#u32(j + 2) && c.w3 === this.#u32(j + 3) && c.scope === this.#scope(i)))
    ) {
      return c.text
    }
    let text = ''
    if (fam === 6) {
      // Only the full layout holds IPv6 sources.
      const scope = this.#scope(i)
      text = formatIPv6(m, s.addr * n + 16 * i, scope)
      this.#cache = { fam, w0, w1: this.#u32(j + 1), w2: this.#u32(j + 2), w3: this.#u32(j + 3), scope, text }
      return text
    }
    if (fam === 4) {
      // Batch after batch from the same client (request/response): the text is kept.
      if (w0 === lastV4Word) text = lastV4Text
      else {
        text = formatIPv4(m, s.addr * n + s.addrWidth * i)
        lastV4Word = w0
        lastV4Text = text
      }
    }
    this.#cache = { fam, w0, w1: 0, w2: 0, w3: 0, scope: 0, text }
    return text
  }

  #scope(i: number): number {
    const at = this.#s.scopeIds
    return at < 0 ? 0 : this.#u32(((at * this.count) >>> 2) + i)
  }

  /**
   * Whether datagrams `a` and `b` come from the same source address (ports aside).
   * @internal
   */
  sameSource(a: number, b: number): boolean {
    const n = this.count
    const m = this.#meta
    const s = this.#s
    const fam = m[s.families * n + a]
    if (fam !== m[s.families * n + b]) return false
    const k = s.addrWidth >>> 2
    const ja = ((s.addr * n) >>> 2) + k * a
    const jb = ((s.addr * n) >>> 2) + k * b
    if (this.#u32(ja) !== this.#u32(jb)) return false
    if (k === 1) return true
    return (
      this.#u32(ja + 1) === this.#u32(jb + 1) &&
      this.#u32(ja + 2) === this.#u32(jb + 2) &&
      this.#u32(ja + 3) === this.#u32(jb + 3) &&
      (fam !== 6 || this.#scope(a) === this.#scope(b))
    )
  }

  /**
   * IPv6 scope id of datagram `i`'s source (0 when none).
   * @internal
   */
  scopeId(i: number): number {
    return this.#scope(i)
  }

  /**
   * Source port of datagram `i`.
   * @throws RangeError `ERR_OUT_OF_RANGE` when `i` is not an integer 0..count-1.
   * @example
   * ```ts
   * batch.port(i) // 51234
   * ```
   */
  port(i: number): number {
    this.#check(i)
    const m = this.#meta
    const o = this.#s.ports * this.count + 2 * i
    return LITTLE_ENDIAN ? m[o] | (m[o + 1] << 8) : (m[o] << 8) | m[o + 1]
  }

  /**
   * `'IPv4'` or `'IPv6'`: the family of datagram `i`'s source.
   * @throws RangeError `ERR_OUT_OF_RANGE` when `i` is not an integer 0..count-1.
   * @example
   * ```ts
   * batch.family(i) // 'IPv4'
   * ```
   */
  family(i: number): 'IPv4' | 'IPv6' {
    this.#check(i)
    return this.#meta[this.#s.families * this.count + i] === 6 ? 'IPv6' : 'IPv4'
  }

  /**
   * One message object per datagram (created lazily as you iterate).
   * @example
   * ```ts
   * for (const { data, address, port, truncated } of batch) console.log(address, port, data.length, truncated)
   * ```
   */
  [Symbol.iterator](): IterableIterator<Message> {
    let i = 0
    const n = this.count
    const m = this.#meta
    const fams = this.#s.families * n
    const flags = this.#s.flags * n
    const ports = this.ports
    const buffer = this.buffer
    const offsets = this.offsets
    const lengths = this.lengths
    const address = (k: number) => this.#address(k)
    return {
      next(): IteratorResult<Message> {
        if (i >= n) return { value: undefined, done: true }
        const k = i++
        const off = offsets[k]
        return {
          value: {
            data: buffer.subarray(off, off + lengths[k]),
            address: address(k),
            port: ports[k],
            family: m[fams + k] === 6 ? 'IPv6' : 'IPv4',
            truncated: (m[flags + k] & FLAG_TRUNCATED) !== 0,
          },
          done: false,
        }
      },
      [Symbol.iterator]() {
        return this
      },
    }
  }

  /**
   * Wraps what the native layer delivers: metadata (64 bytes per datagram, or 16 when
   * `compact`) then payloads.
   * @internal
   */
  static fromNative(bytes: Buffer, count: number, kernelDrops: number, compact = false): Batch {
    return new Batch(bytes, count, kernelDrops, compact)
  }

  /**
   * A batch with no datagrams (what `recvBatch` resolves with when its timeout fires).
   * @example
   * ```ts
   * Batch.empty().count // 0
   * ```
   */
  static empty(): Batch {
    return new Batch(EMPTY, 0, -1, false)
  }
}
