// The node:dgram facade's socket-option methods: buffer sizes, TTL, broadcast, multicast.
// Errors read as Node's: EBADF before bind, `method CODE` errno errors, and the core's
// argument checks reported as libuv's EINVAL.

import { constants as osConstants } from 'node:os'
import { dgram as E } from './errors.js'
import { healthCheck } from './dgram-bind.js'
import { kState } from './dgram-state.js'
import type { Facade } from './dgram-state.js'
import type { UdpSocket } from './socket.js'
import { dgramString } from './validate.js'

/** Gets (`size === 0`) or sets a buffer size, with Node's errors. */
export function bufferSize(self: Facade, size: number, which: 'recv' | 'send'): number | undefined {
  if (size >>> 0 !== size) throw E.badBufferSize()
  const sock = self[kState].sock
  if (sock === null) throw E.bufferSizeError(osConstants.errno.EBADF, which)
  if (size === 0) {
    const sizes = sock.bufferSizes()
    return which === 'recv' ? sizes.recvBufferSize : sizes.sendBufferSize
  }
  try {
    if (which === 'recv') sock.setRecvBufferSize(size)
    else sock.setSendBufferSize(size)
  } catch (e) {
    const errno = (e as { errno?: unknown }).errno
    throw E.bufferSizeError(typeof errno === 'number' ? -errno : osConstants.errno.EINVAL, which)
  }
  return undefined
}

type Method =
  | 'setBroadcast'
  | 'setTTL'
  | 'setMulticastTTL'
  | 'setMulticastLoopback'
  | 'setMulticastInterface'
  | 'addMembership'
  | 'dropMembership'
  | 'addSourceSpecificMembership'
  | 'dropSourceSpecificMembership'

/** Runs a socket-option call of the core as Node reports it: EBADF before bind, `method CODE`. */
export function option<T>(self: Facade, method: Method, call: (sock: UdpSocket) => T): T {
  healthCheck(self)
  const sock = self[kState].sock
  if (sock === null) throw E.errnoException(osConstants.errno.EBADF, method)
  if (typeof sock[method] !== 'function') throw E.unsupported(`${method}()`, 'this build of udp-mmsg has no native support for it')
  try {
    return call(sock)
  } catch (e) {
    const x = e as { errno?: unknown; code?: unknown } | null
    if (x && typeof x.errno === 'number') throw E.errnoException(x.errno, method)
    // The core's argument checks stand for what libuv reports as EINVAL.
    if (x && (x.code === 'ERR_INVALID_ARG_VALUE' || x.code === 'ERR_OUT_OF_RANGE')) throw E.errnoException(osConstants.errno.EINVAL, method)
    throw e
  }
}

/** addMembership / dropMembership. */
export function membership(self: Facade, method: 'addMembership' | 'dropMembership', group: unknown, iface: unknown): void {
  healthCheck(self)
  if (!group) throw E.missingArgs('multicastAddress')
  option(self, method, (sock) => sock[method](group as string, iface === undefined || iface === null ? undefined : (iface as string)))
}

/** addSourceSpecificMembership / dropSourceSpecificMembership. */
export function sourceMembership(
  self: Facade,
  method: 'addSourceSpecificMembership' | 'dropSourceSpecificMembership',
  source: unknown,
  group: unknown,
  iface: unknown,
): void {
  healthCheck(self)
  dgramString(source, 'sourceAddress')
  dgramString(group, 'groupAddress')
  option(self, method, (sock) => sock[method](source, group, iface === undefined || iface === null ? undefined : (iface as string)))
}
