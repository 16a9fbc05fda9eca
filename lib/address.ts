// Formatting the compact address bytes a batch carries, the way Node prints addresses, and
// telling an address literal's family.

import { isIP } from 'node:net'

let memoText = ''
let memoFamily = 0

/**
 * `net.isIP(text)` (4, 6 or 0), remembering the last answer: a server answering one client
 * asks about the same address for every datagram, and each check is a regular expression
 * (three per facade send). Takes any value as isIP does.
 */
export function ipFamily(text: string): number {
  if (text === memoText) return memoFamily
  const family = isIP(text)
  if (typeof text === 'string') {
    memoText = text
    memoFamily = family
  }
  return family
}

function hex(bytes: Uint8Array, o: number, k: number): string {
  return ((bytes[o + 2 * k] << 8) | bytes[o + 2 * k + 1]).toString(16)
}

/** IPv4 dotted quad from 4 bytes at `o`. */
export function formatIPv4(bytes: Uint8Array, o: number): string {
  return `${bytes[o]}.${bytes[o + 1]}.${bytes[o + 2]}.${bytes[o + 3]}`
}

/** RFC 5952 text for 16 bytes at `o` (longest zero run compressed, IPv4-mapped kept dotted). */
export function formatIPv6(bytes: Uint8Array, o: number, scopeId: number): string {
  let mapped = bytes[o + 10] === 0xff && bytes[o + 11] === 0xff
  for (let i = 0; i < 10 && mapped; i++) if (bytes[o + i] !== 0) mapped = false
  let text: string
  if (mapped) {
    text = `::ffff:${formatIPv4(bytes, o + 12)}`
  } else {
    let bestStart = -1
    let bestLen = 0
    for (let k = 0; k < 8;) {
      if (bytes[o + 2 * k] === 0 && bytes[o + 2 * k + 1] === 0) {
        let e = k
        while (e < 8 && bytes[o + 2 * e] === 0 && bytes[o + 2 * e + 1] === 0) e++
        if (e - k > bestLen) {
          bestLen = e - k
          bestStart = k
        }
        k = e
      } else {
        k++
      }
    }
    if (bestLen < 2) bestStart = -1
    const parts: string[] = []
    for (let k = 0; k < 8; k++) {
      if (k === bestStart) {
        parts.push(k === 0 ? ':' : '')
        k += bestLen - 1
        if (k === 7) parts.push('')
        continue
      }
      parts.push(hex(bytes, o, k))
    }
    text = parts.join(':')
  }
  return scopeId ? `${text}%${scopeId}` : text
}
