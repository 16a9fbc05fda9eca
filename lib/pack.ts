// Packing an array of messages into the flat form the native send takes: one byte buffer
// with every part back to back, the length of each part, the parts per datagram (only when
// some datagram has more than one), and a destination table with one index per datagram
// (only when there is more than one destination). Validates every message on the way.
//
// Native-interface seam (argument side): the shape of `Packed`/`Slice` is the argument list of
// the native send (see send-queue.ts `nativeSend`).

import { ipFamily } from './address.js'
import * as errors from './errors.js'

export type { OutgoingMessage } from './types.js'

/** What the packer needs to know of the socket. */
export interface SockInfo {
  family: 4 | 6
  connected: boolean
}

/** The flat form of a batch the native send takes (see the native `send`). */
export interface Packed {
  count: number
  data: Uint8Array
  lens: Uint32Array
  parts: Uint32Array | null
  dest: Uint32Array | null
  addrs: string[]
  ports: number[]
  srcIdx: Uint32Array | null
  sources: string[] | null
  tos: Int32Array | null
  scopedDests: number[]
  scopedSources: number[]
  owned: boolean
}

type Bytes = Uint8Array
/** Destination table lookup: address -> index, or port -> index once it has two ports. */
type DestKeys = Map<string, number | Map<number, number>>
type TypedCtor<T> = new (n: number) => T

interface Extras {
  srcIdx: Uint32Array | null
  sources: string[] | null
  srcKeys: Map<string, number> | null
  tos: Int32Array | null
  scratch: ScratchArrays
  owned: boolean
  scopedSources: number[]
}

interface ScratchArrays {
  data?: Buffer
  lens?: Uint32Array
  one?: Uint32Array
  parts?: Uint32Array
  dest?: Uint32Array
  src?: Uint32Array | null
  tos?: Int32Array | null
}

/** Normalises one payload part to a Uint8Array (strings are UTF-8 encoded). */
function toBytes(part: unknown, name: string): Bytes {
  if (part instanceof Uint8Array) {
    checkAttached(part, name)
    return part
  }
  if (typeof part === 'string') return Buffer.from(part, 'utf8')
  if (ArrayBuffer.isView(part)) {
    checkAttached(part, name)
    return new Uint8Array(part.buffer, part.byteOffset, part.byteLength)
  }
  throw errors.invalidArgType(name, 'of type string or an instance of Buffer, TypedArray or DataView', part)
}

function checkAttached(view: ArrayBufferView, name: string): void {
  let length: number
  try {
    length = view.byteLength
  } catch {
    // A DataView over a detached ArrayBuffer throws on byteLength itself.
    throw errors.invalidArgValue(name, view, 'is backed by a detached ArrayBuffer')
  }
  if (length !== 0) return
  // A view of a detached ArrayBuffer reads as empty; constructing over it throws instead.
  try {
    const probe = new Uint8Array(view.buffer, 0, 0)
    void probe
  } catch {
    throw errors.invalidArgValue(name, view, 'is backed by a detached ArrayBuffer')
  }
}

/**
 * Scratch storage reused across packs (grown as needed; one for every socket of the thread,
 * see {@link sharedScratch}), so a send that
 * completes synchronously allocates nothing but the normalised part list. `busy` is true
 * while a pack is using it: a send made re-entrantly from inside that pack (a getter of a
 * message calling trySendBatch/sendBatch) packs into a fresh scratch instead, so neither
 * call overwrites the other's destination indexes or bytes.
 */
export class PackScratch {
  data: Buffer
  lens: Uint32Array
  parts: Uint32Array
  dest: Uint32Array
  src: Uint32Array | null
  tos: Int32Array | null
  one: Uint32Array
  busy: boolean
  constructor() {
    this.data = Buffer.allocUnsafe(64 * 1024)
    this.lens = new Uint32Array(1024)
    this.parts = new Uint32Array(1024)
    this.dest = new Uint32Array(1024)
    this.src = null
    this.tos = null
    this.one = new Uint32Array(1)
    this.busy = false
  }
}

/** The scratch every socket of this thread packs into. A pack is synchronous and a send that
 * has to wait copies its batch out (send-queue `detach`), so one is enough; a socket owning
 * 76 KiB of scratch of its own made every socket cost that much, and its creation time. */
export const sharedScratch = new PackScratch()

function grow<T extends { length: number }>(arr: T, need: number, Ctor: TypedCtor<T>): T {
  if (arr.length >= need) return arr
  let n = arr.length
  while (n < need) n *= 2
  return new Ctor(n)
}

/**
 * Packs `messages` for the native send. Every property of every message (`data` and its
 * parts, `address`, `port`, `sourceAddress`, `tos`) is read exactly once, so a getter sees
 * one read and the packed batch is what those reads returned.
 *
 * With `scratch`, the result is views into it (valid until the next pack with the same
 * scratch: send or `detach` them before running any user code). Without (`null`), the
 * arrays are allocated for this batch alone and the result is `owned` (no `detach` needed),
 * which suits a batch that will wait for several turns of the event loop anyway.
 *
 * `scopedDests` / `scopedSources` list the table indexes of addresses with a `%scope`: the
 * only ones (besides what `isIP` accepts and the native parser might not) the native layer
 * can still refuse, so a caller that sends in slices can have them checked up front.
 *
 * @param {Array} messages
 * @param {{ family: 4|6, connected: boolean }} sock
 * @param {PackScratch | null} scratch
 * @returns {{ count, data, lens, parts, dest, addrs, ports, srcIdx, sources, tos, scopedDests, scopedSources, owned }}
 */
export function pack(messages: unknown, sock: SockInfo, scratch: PackScratch | null): Packed {
  if (!Array.isArray(messages)) throw errors.invalidArgType('messages', 'an array of messages', messages)
  // No scratch, or a re-entrant pack (from a getter of a message being packed, while the
  // shared scratch is in use): arrays of this batch's own.
  if (scratch === null || scratch.busy) return packInto(messages, sock, {}, true)
  scratch.busy = true
  try {
    return packInto(messages, sock, scratch, false)
  } finally {
    scratch.busy = false
  }
}

/** Allocates exactly `need` elements for an owned batch, or grows the scratch array. */
function take<T extends { length: number }>(owned: boolean, arr: T | undefined, need: number, Ctor: TypedCtor<T>): T {
  return owned ? new Ctor(need) : grow(arr as T, need, Ctor)
}

function packInto(messages: readonly unknown[], sock: SockInfo, scratch: ScratchArrays, owned: boolean): Packed {
  const count = messages.length
  let total = 0
  let nparts = 0
  let multi = false
  const views = new Array<Bytes | Bytes[]>(count)
  // Destinations: the common case is one (or few) destination(s); a run of the same one is
  // detected without a map lookup.
  const addrs: string[] = []
  const ports: number[] = []
  const scopedDests: number[] = []
  let destKeys: DestKeys | null = null
  let lastAddr: unknown
  let lastPort: unknown
  let lastIdx = -1
  let destIdx: Uint32Array | null = null
  const ex: Extras = { srcIdx: null, sources: null, srcKeys: null, tos: null, scratch, owned, scopedSources: [] }
  for (let i = 0; i < count; i++) {
    const m = messages[i] as Record<string, unknown> | null
    if (m === null || typeof m !== 'object') throw errors.invalidArgType(`messages[${i}]`, 'an object with a data property', m)
    const d = m.data
    let v: Bytes | Bytes[]
    if (Array.isArray(d)) {
      const n = d.length
      const vs = new Array<Bytes>(n)
      for (let k = 0; k < n; k++) {
        vs[k] = toBytes(d[k], `messages[${i}].data[${k}]`)
        total += vs[k].byteLength
      }
      v = vs
      nparts += n
      if (n !== 1) multi = true
    } else {
      v = toBytes(d, `messages[${i}].data`)
      total += v.byteLength
      nparts += 1
    }
    views[i] = v
    const sourceAddress = m.sourceAddress
    const tos = m.tos
    if (sourceAddress !== undefined || tos !== undefined) extras(sourceAddress, tos, i, count, sock, ex)
    const address = m.address
    const port = m.port
    if (sock.connected) {
      if (address !== undefined || port !== undefined) throw errors.isConnected(`messages[${i}]`)
      continue
    }
    // (Only once a destination was seen: before that, lastAddr/lastPort are undefined and
    // would let a message without a destination through.)
    if (lastIdx !== -1 && address === lastAddr && port === lastPort) {
      if (destIdx !== null) destIdx[i] = lastIdx
      continue
    }
    if (address === undefined && port === undefined) throw errors.notConnected(`messages[${i}]`)
    if (typeof address !== 'string') throw errors.invalidArgType(`messages[${i}].address`, 'of type string', address)
    // Keyed by the address string itself (V8 caches its hash; no key string is built per
    // message): the index of its first destination, or a Map port -> index once it is used
    // with a second port. An address already in the table was already validated. The map is
    // made with the second destination (a batch of one, or of one destination, needs none).
    if (destKeys === null && addrs.length > 0) destKeys = new Map([[addrs[0], 0]])
    let entry = destKeys === null ? undefined : destKeys.get(address)
    if (entry === undefined) {
      const fam = ipFamily(address)
      if (fam === 0) throw errors.invalidArgValue(`messages[${i}].address`, address, 'must be an IPv4 or IPv6 address literal')
      if (fam === 6 && sock.family === 4) {
        throw errors.invalidArgValue(`messages[${i}].address`, address, 'is IPv6 but the socket is udp4')
      }
    }
    if (typeof port !== 'number') throw errors.invalidArgType(`messages[${i}].port`, 'of type number', port)
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw errors.badPort(`messages[${i}].port`, port, false)
    let idx: number | undefined
    if (typeof entry === 'number') {
      if (ports[entry] === port) idx = entry
      else (destKeys as DestKeys).set(address, (entry = new Map([[ports[entry], entry]])))
    } else if (entry !== undefined) {
      idx = entry.get(port)
    }
    if (idx === undefined) {
      idx = addrs.length
      if (entry !== undefined) (entry as Map<number, number>).set(port, idx)
      else if (destKeys !== null) destKeys.set(address, idx)
      addrs.push(address)
      ports.push(port)
      if (address.includes('%')) scopedDests.push(idx)
      if (idx === 1) {
        // A second destination: from now on every datagram needs its index.
        destIdx = scratch.dest = take(owned, scratch.dest, count, Uint32Array)
        destIdx.fill(0, 0, i)
      }
    }
    if (destIdx !== null) destIdx[i] = idx
    lastAddr = address
    lastPort = port
    lastIdx = idx
  }
  let data: Uint8Array
  let lens: Uint32Array
  let parts: Uint32Array | null = null
  const only = count === 1 && !owned ? views[0] : null
  if (only !== null && !Array.isArray(only)) {
    // One datagram of one part: sent from its own bytes (a batch that has to wait is copied
    // out by detach() before any other code runs, as the scratch would be).
    lens = scratch.one = scratch.one || new Uint32Array(1)
    lens[0] = only.byteLength
    data = only
  } else {
    const sd = scratch.data as Buffer
    const buf = owned
      ? Buffer.allocUnsafe(total)
      : (scratch.data = total > sd.length ? Buffer.allocUnsafe(Math.max(total, sd.length * 2)) : sd)
    const allLens = (scratch.lens = take(owned, scratch.lens, nparts, Uint32Array))
    const allParts = multi ? (scratch.parts = take(owned, scratch.parts, count, Uint32Array)) : null
    let off = 0
    let p = 0
    for (let i = 0; i < count; i++) {
      const v = views[i]
      if (Array.isArray(v)) {
        for (let k = 0; k < v.length; k++) {
          buf.set(v[k], off)
          off += v[k].byteLength
          allLens[p++] = v[k].byteLength
        }
        if (allParts !== null) allParts[i] = v.length
      } else {
        buf.set(v, off)
        off += v.byteLength
        allLens[p++] = v.byteLength
        if (allParts !== null) allParts[i] = 1
      }
    }
    data = buf.subarray(0, total)
    lens = allLens.subarray(0, nparts)
    parts = allParts === null ? null : allParts.subarray(0, count)
  }
  return {
    count,
    data,
    lens,
    parts,
    dest: destIdx === null ? null : destIdx.subarray(0, count),
    addrs,
    ports,
    srcIdx: ex.srcIdx === null ? null : ex.srcIdx.subarray(0, count),
    sources: ex.sources,
    tos: ex.tos === null ? null : ex.tos.subarray(0, count),
    scopedDests,
    scopedSources: ex.scopedSources,
    owned,
  }
}

/** Per-datagram source address (sent with IP_PKTINFO/IPV6_PKTINFO) and TOS / traffic class. */
function extras(sourceAddress: unknown, tos: unknown, i: number, count: number, sock: SockInfo, ex: Extras): void {
  if (sourceAddress !== undefined) {
    const a = sourceAddress
    if (typeof a !== 'string') throw errors.invalidArgType(`messages[${i}].sourceAddress`, 'of type string', a)
    const fam = ipFamily(a)
    if (fam === 0) throw errors.invalidArgValue(`messages[${i}].sourceAddress`, a, 'must be an IPv4 or IPv6 address literal')
    if (fam === 6 && sock.family === 4) throw errors.invalidArgValue(`messages[${i}].sourceAddress`, a, 'is IPv6 but the socket is udp4')
    if (ex.srcIdx === null) {
      ex.srcIdx = ex.scratch.src = take(ex.owned, ex.scratch.src || new Uint32Array(64), count, Uint32Array)
      ex.srcIdx.fill(0, 0, count)
      ex.sources = []
      ex.srcKeys = new Map()
    }
    const srcKeys = ex.srcKeys as Map<string, number>
    const sources = ex.sources as string[]
    let k = srcKeys.get(a)
    if (k === undefined) {
      sources.push(a)
      k = sources.length
      srcKeys.set(a, k)
      if (fam === 6 && a.includes('%')) ex.scopedSources.push(k - 1)
    }
    ex.srcIdx[i] = k
  }
  if (tos !== undefined) {
    const t = tos
    if (typeof t !== 'number') throw errors.invalidArgType(`messages[${i}].tos`, 'of type number', t)
    if (!Number.isInteger(t) || t < 0 || t > 255) throw errors.outOfRange(`messages[${i}].tos`, 'an integer >= 0 and <= 255', t)
    if (ex.tos === null) {
      ex.tos = ex.scratch.tos = take(ex.owned, ex.scratch.tos || new Int32Array(64), count, Int32Array)
      ex.tos.fill(-1, 0, count)
    }
    ex.tos[i] = t
  }
}

/** Copies a packed batch out of the scratch storage so it can wait for writability. */
export function detach(p: Packed): Packed {
  return {
    count: p.count,
    data: Buffer.from(p.data),
    lens: p.lens.slice(),
    parts: p.parts === null ? null : p.parts.slice(),
    dest: p.dest === null ? null : p.dest.slice(),
    addrs: p.addrs,
    ports: p.ports,
    srcIdx: p.srcIdx === null ? null : p.srcIdx.slice(),
    sources: p.sources,
    tos: p.tos === null ? null : p.tos.slice(),
    scopedDests: p.scopedDests,
    scopedSources: p.scopedSources,
    owned: true,
  }
}
