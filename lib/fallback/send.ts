// The fallback's send: a packed batch (lib/pack.ts, the native send's arguments) handed to
// node:dgram one datagram at a time. node:dgram reports a send's outcome only in a callback,
// so what the native send returns synchronously is recovered where it can be: a datagram too
// big for UDP stops the call with EMSGSIZE before it is handed over (as sendmsg would refuse
// it; `lastSendError()` then says so), a full send queue stops it early with no error; an error node:dgram reports later (for
// example ECONNREFUSED on a connected socket) arrives as a receive-side error event
// (`syscall: 'sendmsg'`), as node:dgram itself reports errors of sends without a callback.

import { constants } from 'node:os'
import { isIP } from 'node:net'
import * as errors from '../errors.js'
import { zoneIndex } from './addr.js'
import { argError } from './native-errors.js'
import type { Core } from './core.js'

/** Largest UDP payload over IPv4 and over IPv6 (65535 minus the IP and UDP headers). */
const MAX_V4 = 65507
const MAX_V6 = 65527
/** Datagrams node:dgram may hold queued (send buffer full) before a send reports wouldBlock. */
export const SEND_HIGH_WATER = 256

function unsupported(feature: string): Error {
  return errors.unsupportedFeature(feature, 'fallback (node:dgram)', 'install the native binary (see docs/fallback.md)')
}

/** Checks the destination table as the native send does: IP literals, known IPv6 scopes. */
function checkDestinations(addrs: string[], ports: number[]): void {
  if (addrs.length !== ports.length) throw argError('destination', 'addresses and ports differ in length')
  for (let k = 0; k < addrs.length; k++) {
    const a = addrs[k]
    const pct = a.indexOf('%')
    if (pct === -1) {
      if (isIP(a) === 0) throw argError('destination', 'must be an IP address literal', k)
    } else if (isIP(a.slice(0, pct)) !== 6) {
      throw argError('destination', 'must be an IP address literal', k)
    } else if (pct === a.length - 1 || zoneIndex(a.slice(pct + 1)) === undefined) {
      throw argError('destination', 'has an unknown IPv6 scope', k)
    }
  }
}

/** The native `send` over node:dgram (same arguments, same result). */
export function send(
  core: Core,
  data: Uint8Array,
  partLens: Uint32Array,
  partsPerMsg: Uint32Array | undefined | null,
  destIndex: Uint32Array | undefined | null,
  destAddresses: string[],
  destPorts: number[],
  start: number,
  maxCount: number,
  sourceIndex?: Uint32Array | undefined | null,
  sources?: string[] | undefined | null,
  tos?: Int32Array | undefined | null,
): number {
  if (sources && sources.length > 0 && sourceIndex) throw unsupported('sourceAddress (a per-datagram source address)')
  if (tos && tos.some((t) => t >= 0)) throw unsupported('tos per datagram')
  checkDestinations(destAddresses, destPorts)
  const count = partsPerMsg ? partsPerMsg.length : partLens.length
  if (start > count) throw argError('start', 'is past the end of the batch')
  if (destAddresses.length === 0 && !core.connected && count > start) throw argError('destination', 'is required on an unconnected socket')
  core.lastSendError = null
  let sent = 0
  // Position of datagram `start`: its first part and byte.
  let part = 0
  let byte = 0
  for (let i = 0; i < start; i++) {
    const np = partsPerMsg ? partsPerMsg[i] : 1
    for (let k = 0; k < np; k++) byte += partLens[part++]
  }
  const end = Math.min(count, start + maxCount)
  for (let i = start; i < end; i++) {
    const np = partsPerMsg ? partsPerMsg[i] : 1
    let len = 0
    for (let k = 0; k < np; k++) len += partLens[part + k]
    const d = destIndex ? destIndex[i] : 0
    const address = core.connected ? '' : destAddresses[d]
    const v6 = core.ipv6 && !(address !== '' && isIP(address) === 4) && !address.startsWith('::ffff:')
    if (len > (v6 ? MAX_V6 : MAX_V4)) {
      core.lastSendError = { errno: constants.errno.EMSGSIZE, syscall: 'sendmsg' }
      core.stats.sendErrors++
      return sent
    }
    if (core.sock.getSendQueueCount() >= SEND_HIGH_WATER) {
      core.stats.sendRetries++
      return sent
    }
    // A copy: node:dgram keeps the buffer until the datagram went, and the caller reuses its own.
    const buf = Buffer.allocUnsafe(len)
    buf.set(data.subarray(byte, byte + len))
    part += np
    byte += len
    if (core.connected) core.sock.send(buf, core.onSent)
    else core.sock.send(buf, destPorts[d], address, core.onSent)
    sent++
    core.stats.datagramsSent++
    core.stats.bytesSent += len
    core.stats.sendSyscalls++
  }
  return sent
}
