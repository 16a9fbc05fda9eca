// Validation and defaults for UdpSocket.bind() options. Bad input throws a TypeError or
// RangeError naming the option, before anything touches the kernel.

import * as errors from './errors.js'
import { udpSocketFamily } from './native.js'
import type { NativeOptions } from './native.js'
import type { SteeringOptions } from '../index.js'
import type { Steering } from './types.js'
export type { BindOptions } from './types.js'
import { boolValue as bool, checkInt, intValue as int, ipOf, portOf } from './validate.js'

/** The largest UDP payload over IPv4 (65,535 − 8 UDP − 20 IP header bytes). */
export const MAX_UDP_PAYLOAD_V4 = 65507
/** The largest UDP payload over IPv6 without jumbograms (65,535 − 8 UDP header bytes). */
export const MAX_UDP_PAYLOAD_V6 = 65527

/** Defaults of the numeric bind options. `maxDatagramSize` defaults to the largest payload of
 * the socket's family (nothing is cut, as with node:dgram): the receive slab is made on the
 * first receive and its pages are touched only where datagrams land, so this costs an idle or
 * small-datagram socket nothing. */
export const DEFAULTS = Object.freeze({
  batchSize: 256,
  maxPendingBatches: 16,
  coalesceMicros: 200,
})

/** Validated options: the socket type and the options for the native constructor. */
export interface Normalized {
  type: 'udp4' | 'udp6'
  native: NativeOptions
}

/** Validates user options and returns the normalised native options. */
export function normalize(options: unknown): Normalized {
  if (options === undefined) options = {}
  if (options === null || typeof options !== 'object') throw errors.invalidArgType('options', 'of type object', options)
  const o = options as Record<string, unknown>
  let type = o.type
  if (type !== undefined && type !== 'udp4' && type !== 'udp6') {
    throw errors.invalidArgValue('options.type', type, "must be 'udp4' or 'udp6'")
  }
  const fd = o.fd === undefined ? undefined : adoptedFd(o)
  if (fd !== undefined) {
    const fam = fd.family === 6 ? 'udp6' : 'udp4'
    if (type === undefined) type = fam
    else if (type !== fam) throw errors.invalidArgValue('options.type', type, `does not match options.fd, an IPv${fd.family} socket`)
  }
  let address = o.address as string | undefined
  if (address !== undefined) {
    const fam = ipOf(address, 'options.address')
    if (type === undefined) type = fam === 6 ? 'udp6' : 'udp4'
    if (fam === 6 && type === 'udp4') throw errors.invalidArgValue('options.address', address, "is IPv6 but options.type is 'udp4'")
  } else {
    if (type === undefined) type = 'udp4'
    address = type === 'udp6' ? '::' : '0.0.0.0'
  }
  const port = o.port === undefined ? 0 : portOf(o.port, 'options.port', true)
  let connect: { address: string; port: number } | undefined
  if (o.connect !== undefined) {
    const c = o.connect as { address?: unknown; port?: unknown } | null
    if (c === null || typeof c !== 'object') throw errors.invalidArgType('options.connect', 'an object with address and port', c)
    const fam = ipOf(c.address, 'options.connect.address')
    if (fam === 6 && type === 'udp4') throw errors.invalidArgValue('options.connect.address', c.address, "is IPv6 but the socket is 'udp4'")
    connect = { address: c.address as string, port: portOf(c.port, 'options.connect.port', false) }
  }
  // Each option read once, by name: a helper reading `o[name]` for every option made a
  // megamorphic keyed load per option, a visible part of opening a socket.
  const { reuseAddr, reusePort, broadcast, recvBufferSize, sendBufferSize, forceBufferSize, batchSize, maxDatagramSize } = o
  const { maxPendingBatches, coalesceMicros, pktinfo, timestamps, recvTos, tos } = o
  const ipv6 = type === 'udp6'
  const ipv6Only = o.ipv6Only === undefined ? undefined : bool(o.ipv6Only, 'ipv6Only', false)
  if (ipv6Only !== undefined && !ipv6) throw errors.invalidArgValue('options.ipv6Only', ipv6Only, "applies to 'udp6' sockets only")
  const maxBuf = 0x7fffffff
  const ttl = int(o.ttl, 'ttl', 1, 255, undefined)
  const portable = bool(o.portable, 'portable', process.platform !== 'linux')
  let gso = 1
  if (o.gso !== undefined) {
    if (o.gso === 'auto') gso = 1
    else if (o.gso === true) gso = 2
    else if (o.gso === false) gso = 0
    else throw errors.invalidArgValue('options.gso', o.gso, "must be 'auto', true or false")
  }
  if (portable && gso === 2) throw errors.invalidArgValue('options.gso', true, 'needs the batched (non-portable) path')
  const gro = bool(o.gro, 'gro', false)
  if (portable && gro) throw errors.invalidArgValue('options.gro', true, 'needs the batched (non-portable) path')
  return {
    type: type as 'udp4' | 'udp6',
    native: {
      address,
      port,
      ipv6,
      ipv6Only,
      reuseAddr: bool(reuseAddr, 'reuseAddr', false),
      reusePort: bool(reusePort, 'reusePort', false),
      broadcast: bool(broadcast, 'broadcast', false),
      recvBufferSize: int(recvBufferSize, 'recvBufferSize', 1, maxBuf, undefined),
      sendBufferSize: int(sendBufferSize, 'sendBufferSize', 1, maxBuf, undefined),
      forceBufferSize: bool(forceBufferSize, 'forceBufferSize', false),
      ttl,
      batchSize: int(batchSize, 'batchSize', 1, 1024, DEFAULTS.batchSize),
      maxDatagramSize: int(maxDatagramSize, 'maxDatagramSize', 1, 65535, ipv6 ? MAX_UDP_PAYLOAD_V6 : MAX_UDP_PAYLOAD_V4),
      maxPendingBatches: int(maxPendingBatches, 'maxPendingBatches', 1, 1024, DEFAULTS.maxPendingBatches),
      coalesceMicros: int(coalesceMicros, 'coalesceMicros', 0, 1000000, DEFAULTS.coalesceMicros),
      connectAddress: connect ? connect.address : undefined,
      connectPort: connect ? connect.port : undefined,
      portable,
      gso: portable ? 0 : gso,
      gro,
      pktinfo: bool(pktinfo, 'pktinfo', false),
      timestamps: bool(timestamps, 'timestamps', false),
      recvTos: bool(recvTos, 'recvTos', false),
      tos: int(tos, 'tos', 0, 255, undefined),
      fd: fd === undefined ? undefined : fd.fd,
      // Not a user option: set by the constructor for the facade (see `kReadAtOnce`).
      reading: false,
      steering: bindSteering(o, fd !== undefined),
    },
  }
}

/** The steering modes of a `SO_REUSEPORT` group. */
export const STEERING_MODES: readonly Steering[] = Object.freeze(['hash', 'cpu', 'random'])

/**
 * A steering choice (`mode`, `groupSize`, named `modeName` / `sizeName` in errors) checked and
 * put in the native form. `'random'` needs the group size; `'hash'` takes none; modes other
 * than `'hash'` need Linux.
 */
export function steeringOf(mode: unknown, groupSize: unknown, modeName: string, sizeName: string): SteeringOptions {
  if (!STEERING_MODES.includes(mode as Steering)) throw errors.invalidArgValue(modeName, mode, "must be 'hash', 'cpu' or 'random'")
  if (groupSize !== undefined) {
    checkInt(groupSize, sizeName, 1, 65535)
    if (mode === 'hash') throw errors.invalidArgValue(sizeName, groupSize, "applies to 'cpu' and 'random' steering only")
  } else if (mode === 'random') {
    throw errors.invalidArgValue(sizeName, groupSize, "is required with 'random' steering (the number of sockets in the group)")
  }
  if (mode !== 'hash' && process.platform !== 'linux') {
    throw errors.unsupportedFeature(
      `${modeName} '${String(mode)}'`,
      `${process.platform} native`,
      'reuseport steering (SO_ATTACH_REUSEPORT_CBPF) is Linux-only',
    )
  }
  return { mode: mode as string, groupSize: groupSize as number | undefined }
}

/** `options.steering` and `options.groupSize` of bind: only for a socket that joins a reuseport group. */
function bindSteering(o: Record<string, unknown>, adopted: boolean): SteeringOptions | undefined {
  if (o.steering === undefined) {
    if (o.groupSize !== undefined) throw errors.invalidArgValue('options.groupSize', o.groupSize, 'needs options.steering')
    return undefined
  }
  const s = steeringOf(o.steering, o.groupSize, 'options.steering', 'options.groupSize')
  if (!adopted && o.reusePort !== true) throw errors.invalidArgValue('options.steering', o.steering, 'needs options.reusePort: true')
  return s
}

/** Options that only apply when the socket binds itself, so not with `fd`. */
const NOT_WITH_FD = ['address', 'port', 'reuseAddr', 'reusePort', 'ipv6Only'] as const

/** `options.fd`: a non-negative integer naming an open UDP socket; returns it and its family. */
function adoptedFd(o: Record<string, unknown>): { fd: number; family: number } {
  const fd = o.fd
  checkInt(fd, 'options.fd', 0, 0x7fffffff)
  for (const k of NOT_WITH_FD) {
    if (o[k] !== undefined)
      throw errors.invalidArgValue(`options.${k}`, o[k], 'cannot be given with options.fd (the socket is already bound)')
  }
  if (udpSocketFamily === undefined) {
    throw errors.unsupportedFeature('fd', 'fallback', 'adopting a socket fd needs the native backend')
  }
  try {
    return { fd, family: udpSocketFamily(fd) }
  } catch (e) {
    throw errors.fromNative(e)
  }
}
