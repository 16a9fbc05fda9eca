// Slicing a packed batch (pack.ts) for one native send call: the datagrams of one event-loop
// turn, with a destination (and source) table of only the addresses they use, so a batch to
// many destinations costs linear time however it is sliced.

import type { Packed } from './pack.js'

/** A part of a packed batch, re-indexed for one native send call (see `sliceOf`). */
export interface Slice extends Omit<Packed, 'scopedDests' | 'scopedSources' | 'owned'> {
  destOf: number[] | null
  sourceOf: number[] | null
}

/** Where a batch is being sent from, kept between the slices of one batch. */
export interface Cursor {
  msg: number
  part: number
  byte: number
  remap: Int32Array | null
  dest: Uint32Array | null
  remapSrc: Int32Array | null
  src: Uint32Array | null
}

/** Where a batch is being sent from, kept between the slices of one batch (see `sliceOf`). */
export function cursor(): Cursor {
  return { msg: 0, part: 0, byte: 0, remap: null, dest: null, remapSrc: null, src: null }
}

/** Moves a `{ msg, part, byte }` position forward to datagram `to` of `p`. */
function advance(
  p: Packed | Slice,
  pos: { msg: number; part: number; byte: number },
  to: number,
): { msg: number; part: number; byte: number } {
  let { msg, part, byte } = pos
  const lens = p.lens
  const parts = p.parts
  while (msg < to) {
    const n = parts === null ? 1 : parts[msg]
    for (let k = 0; k < n; k++) byte += lens[part++]
    msg++
  }
  return { msg, part, byte }
}

/**
 * The datagrams `start` .. `start + max` of packed batch `p` as a packed batch of their own,
 * for one native send call: its bytes, lengths and per-datagram arrays are views of `p`'s, but
 * its destination (and source) table holds only the addresses these datagrams use, re-indexed.
 * The native send converts its whole table to socket addresses on every call, so this keeps a
 * batch to many destinations linear: each call converts at most `max` addresses, not all of
 * them.
 *
 * `cur` (from `cursor()`) remembers the byte/part position of the previous start, so walking a
 * batch slice by slice is linear too; `start` never goes backwards within one batch. The
 * returned view is valid until the next call with the same `cur` (its tables are reused).
 * `destOf[k]` / `sourceOf[k]` give the index in `p`'s tables of local entry `k`.
 */
export function sliceOf(p: Packed, start: number, max: number, cur: Cursor): Slice {
  if (start < cur.msg) Object.assign(cur, { msg: 0, part: 0, byte: 0 })
  Object.assign(cur, advance(p, cur, start))
  const end = Math.min(p.count, start + max)
  const n = end - start
  const last = advance(p, cur, end)
  let dest: Uint32Array | null = null
  let addrs = p.addrs
  let ports = p.ports
  let destOf: number[] | null = null
  if (p.dest !== null) {
    if (cur.remap === null) cur.remap = new Int32Array(p.addrs.length).fill(-1)
    if (cur.dest === null || cur.dest.length < n) cur.dest = new Uint32Array(n)
    const remap = cur.remap
    const pdest = p.dest
    const d = (dest = cur.dest.subarray(0, n))
    const of: number[] = (destOf = [])
    addrs = []
    ports = []
    for (let j = 0; j < n; j++) {
      const g = pdest[start + j]
      let l = remap[g]
      if (l === -1) {
        l = remap[g] = of.length
        of.push(g)
        addrs.push(p.addrs[g])
        ports.push(p.ports[g])
      }
      d[j] = l
    }
    for (const g of of) remap[g] = -1
  }
  let srcIdx: Uint32Array | null = null
  let sources = p.sources
  let sourceOf: number[] | null = null
  if (p.srcIdx !== null) {
    const psources = p.sources as string[]
    const psrc = p.srcIdx
    // Source indexes are 1-based (0: no source address for that datagram).
    if (cur.remapSrc === null) cur.remapSrc = new Int32Array(psources.length + 1).fill(-1)
    if (cur.src === null || cur.src.length < n) cur.src = new Uint32Array(n)
    const remap = cur.remapSrc
    const si = (srcIdx = cur.src.subarray(0, n))
    const srcs: string[] = (sources = [])
    const of: number[] = (sourceOf = [])
    for (let j = 0; j < n; j++) {
      const g = psrc[start + j]
      if (g === 0) {
        si[j] = 0
        continue
      }
      let l = remap[g]
      if (l === -1) {
        l = remap[g] = of.length + 1
        of.push(g - 1)
        srcs.push(psources[g - 1])
      }
      si[j] = l
    }
    for (const g of of) remap[g + 1] = -1
  }
  return {
    count: n,
    data: p.data.subarray(cur.byte, last.byte),
    lens: p.lens.subarray(cur.part, last.part),
    parts: p.parts === null ? null : p.parts.subarray(start, end),
    dest,
    addrs,
    ports,
    srcIdx,
    sources,
    tos: p.tos === null ? null : p.tos.subarray(start, end),
    destOf,
    sourceOf,
  }
}
