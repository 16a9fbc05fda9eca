// The node:dgram facade's socket-option methods: buffer sizes, TTL, broadcast, multicast.
// Errors read as Node's: EBADF before bind, `method CODE` errno errors, and the core's
// argument checks reported as libuv's EINVAL.

import { isIP } from 'node:net'
import { networkInterfaces, constants as osConstants } from 'node:os'
import { dgram as E } from './errors.js'
import { healthCheck, startListening } from './dgram-bind.js'
import { BIND_STATE_UNBOUND, kState } from './dgram-state.js'
import type { Facade } from './dgram-state.js'
import type { BindOptions } from './options.js'
import { UdpSocket } from './socket.js'
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

/** An IPv6 `%scope` naming no interface: libuv reads it as scope 0 (the default interface). */
function knownScope(scope: string): boolean {
  if (/^\d+$/.test(scope)) return true
  return Object.prototype.hasOwnProperty.call(networkInterfaces(), scope)
}

/** setMulticastInterface's argument as libuv reads it: on udp6, an unknown `%ifname` is scope 0. */
export function multicastInterface(type: 'udp4' | 'udp6', iface: string): string {
  if (type !== 'udp6') return iface
  const pct = iface.indexOf('%')
  if (pct < 0 || knownScope(iface.slice(pct + 1))) return iface
  return iface.slice(0, pct)
}

/** libuv's address check of a membership call (before anything else: EINVAL); a checkAddress
 * passes on to the kernel, which judges the family. */
function checkAddress(self: Facade, method: Method, value: unknown): void {
  if (value === undefined || value === null) return
  if (isIP(String(value).split('%')[0]) === 0) throw E.errnoException(osConstants.errno.EINVAL, method)
}

/**
 * What libuv does for a membership call on a socket that is not bound yet: bind it to the
 * wildcard address (port 0, with the socket's reuseAddr), so the call can proceed.
 */
function bindForMembership(self: Facade): void {
  const state = self[kState]
  if (state.bindState !== BIND_STATE_UNBOUND) return
  const opts: Record<string, unknown> = { type: self.type, address: self.type === 'udp6' ? '::' : '0.0.0.0', port: 0, ...state.ext }
  opts.reuseAddr = true // libuv's implicit bind uses UV_UDP_REUSEADDR
  if (state.ipv6Only && self.type === 'udp6') opts.ipv6Only = true
  let sock: UdpSocket
  try {
    sock = new UdpSocket(opts as BindOptions)
  } catch {
    return // the membership call then reports EBADF, as before
  }
  startListening(self, sock)
}

/** addMembership / dropMembership. */
export function membership(self: Facade, method: 'addMembership' | 'dropMembership', group: unknown, iface: unknown): void {
  healthCheck(self)
  if (!group) throw E.missingArgs('multicastAddress')
  checkAddress(self, method, group)
  checkAddress(self, method, iface)
  bindForMembership(self)
  option(self, method, (sock) => sock[method](String(group), iface === undefined || iface === null ? undefined : String(iface)))
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
  checkAddress(self, method, source)
  checkAddress(self, method, group)
  checkAddress(self, method, iface)
  bindForMembership(self)
  option(self, method, (sock) => sock[method](source, group, iface === undefined || iface === null ? undefined : String(iface)))
}
