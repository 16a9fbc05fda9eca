// Address text to the 16 compact bytes a batch carries (IPv4 in the first four, IPv6 in all
// sixteen), and IPv6 zone (`%scope`) names to interface indexes: what the native layer reads
// from a sockaddr, recovered on the fallback from the text node:dgram reports.

import { networkInterfaces } from 'node:os'

/** Writes dotted-quad `text` as 4 bytes at `out[o]`. */
function writeIPv4(text: string, out: Uint8Array, o: number): void {
  let v = 0
  let k = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 46) {
      out[o + k++] = v
      v = 0
    } else {
      v = v * 10 + (c - 48)
    }
  }
  out[o + k] = v
}

/** Appends the 16-bit groups of one side of an IPv6 `::` (a trailing dotted quad as two). */
function parseGroups(s: string, into: number[]): void {
  if (s === '') return
  for (const g of s.split(':')) {
    if (g.includes('.')) {
      const q = new Uint8Array(4)
      writeIPv4(g, q, 0)
      into.push((q[0] << 8) | q[1], (q[2] << 8) | q[3])
    } else {
      into.push(parseInt(g, 16))
    }
  }
}

/** Writes the 8 groups of IPv6 `text` (no zone; `::` and a trailing dotted quad allowed). */
function writeIPv6(text: string, out: Uint8Array, o: number): void {
  const groups: number[] = []
  const tail: number[] = []
  const halves = text.split('::')
  parseGroups(halves[0], groups)
  if (halves.length > 1) parseGroups(halves[1], tail)
  const zeros = 8 - groups.length - tail.length
  const all = [...groups, ...new Array<number>(Math.max(zeros, 0)).fill(0), ...tail]
  for (let k = 0; k < 8; k++) {
    out[o + 2 * k] = all[k] >> 8
    out[o + 2 * k + 1] = all[k] & 0xff
  }
}

/**
 * The interface index of an IPv6 zone: a number as is, an interface name looked up in
 * `os.networkInterfaces()` (its IPv6 `scopeid`); undefined when unknown.
 */
export function zoneIndex(zone: string): number | undefined {
  if (/^\d+$/.test(zone)) return Number(zone)
  const ifs = networkInterfaces()[zone]
  if (!ifs) return undefined
  for (const a of ifs) if (a.family === 'IPv6' && a.scopeid) return a.scopeid
  // An interface without a link-local IPv6 address still exists; its index is unknown here.
  return 0
}

/**
 * Writes `text` (an IP literal as node:dgram reports a source) as compact bytes at `out[o]`
 * (16 bytes, zeroed beforehand) and returns the IPv6 scope id (0 when none).
 */
export function writeAddress(text: string, v4: boolean, out: Uint8Array, o: number): number {
  if (v4) {
    writeIPv4(text, out, o)
    return 0
  }
  const pct = text.indexOf('%')
  const bare = pct === -1 ? text : text.slice(0, pct)
  writeIPv6(bare, out, o)
  return pct === -1 ? 0 : (zoneIndex(text.slice(pct + 1)) ?? 0)
}
