// FallbackSocket: the native socket's interface (index.d.ts `NativeSocket`) over node:dgram,
// for platforms without a prebuilt binary or when UDP_MMSG_BACKEND=fallback. Binding is
// synchronous, as natively: node:dgram resolves the bind address through the `lookup` option,
// and this socket's lookup answers at once (addresses are IP literals, validated already), so
// node:dgram binds inside bind(). Features node:dgram cannot give are refused with
// ERR_UDP_MMSG_UNSUPPORTED when asked for, and reported false by capabilities().

import * as dgram from 'node:dgram'
import { isIP } from 'node:net'
import { constants } from 'node:os'
import * as errors from '../errors.js'
import type { AddressInfo, BufferSizes, Capabilities, NativeOptions, NativeSendError, NativeStats, SteeringOptions } from '../../index.js'
import type { Dispatch } from '../native.js'
import { Core } from './core.js'
import { zoneIndex } from './addr.js'
import { argError, closedError, fromDgram, osError } from './native-errors.js'
import { send as sendPacked } from './send.js'

/** The backend name in errors and capabilities. */
const BACKEND = 'fallback (node:dgram)'
const HINT = 'install the native binary (see docs/fallback.md)'

/** node:dgram's `reusePort` option: Node >= 22.12 (22.x) or >= 23.1; not on Node 20. */
export const DGRAM_REUSE_PORT = (() => {
  const [major, minor] = process.versions.node.split('.').map(Number)
  return major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12)
})()

function unsupported(feature: string): Error {
  return errors.unsupportedFeature(feature, BACKEND, HINT)
}

/** The bind options the fallback cannot honour, refused rather than ignored. */
function refuseUnsupported(o: NativeOptions): void {
  if (o.gso === 2) throw unsupported('gso: true (UDP GSO)')
  if (o.gro) throw unsupported('gro (UDP GRO)')
  if (o.pktinfo) throw unsupported('pktinfo (per-datagram local address)')
  if (o.timestamps) throw unsupported('timestamps (kernel receive times)')
  if (o.recvTos) throw unsupported('recvTos (TOS / ECN on receive)')
  if (o.tos !== undefined) throw unsupported('tos (socket-wide TOS / traffic class)')
  if (o.forceBufferSize) throw unsupported('forceBufferSize (SO_RCVBUFFORCE / SO_SNDBUFFORCE)')
  if (o.steering && o.steering.mode !== 'hash') throw unsupported(`steering: '${o.steering.mode}' (SO_ATTACH_REUSEPORT_CBPF)`)
  if (o.reusePort && !DGRAM_REUSE_PORT) throw unsupported(`reusePort on Node ${process.versions.node} (node:dgram has it from 22.12)`)
}

/** A lookup that answers synchronously with the literal (IPv4 mapped on an IPv6 socket). */
function literalLookup(ipv6: boolean) {
  return (address: string, _family: unknown, cb: (err: Error | null, address: string, family: number) => void): void => {
    if (ipv6 && isIP(address) === 4) cb(null, `::ffff:${address}`, 6)
    else cb(null, address, isIP(address.split('%')[0]) || (ipv6 ? 6 : 4))
  }
}

function toAddressInfo(a: { address: string; port: number; family: string | number }): AddressInfo {
  const family = a.family === 6 || a.family === 'IPv6' ? 'IPv6' : 'IPv4'
  return { address: a.address, port: a.port, family }
}

/** IPv4 224.0.0.0/4 or IPv6 ff00::/8. */
function isMulticast(group: string, fam: number): boolean {
  if (fam === 4) return (Number(group.split('.')[0]) & 0xf0) === 0xe0
  return fam === 6 && /^ff/i.test(group)
}

/** Registered FallbackSockets: one garbage-collected closes its node:dgram socket. */
const finalizer = new FinalizationRegistry<Core>((core) => core.close())

/** The native socket interface over node:dgram. */
export class FallbackSocket {
  private readonly core: Core
  private broadcast: boolean
  private multicastLoop = true

  constructor(options: NativeOptions, dispatch: Dispatch) {
    refuseUnsupported(options)
    const zone = options.address.indexOf('%')
    if (zone !== -1 && zoneIndex(options.address.slice(zone + 1)) === undefined) throw argError('address', 'has an unknown IPv6 scope')
    const sock = dgram.createSocket({
      type: options.ipv6 ? 'udp6' : 'udp4',
      reuseAddr: options.reuseAddr,
      ipv6Only: options.ipv6Only,
      lookup: literalLookup(options.ipv6) as never,
      ...(options.reusePort ? { reusePort: true } : {}),
    })
    const maxHeld = options.batchSize * options.maxPendingBatches
    const core = new Core(sock, options.ipv6, options.batchSize, maxHeld, options.maxDatagramSize, dispatch)
    this.core = core
    this.broadcast = options.broadcast
    let failure: unknown = null
    const onError = (err: Error) => {
      failure = err
    }
    sock.prependOnceListener('error', onError)
    try {
      sock.bind({ address: options.address, port: options.port, exclusive: true })
      sock.removeListener('error', onError)
      if (failure !== null) throw fromDgram(failure, 'bind')
      // Bound only if node:dgram bound synchronously (it does with a synchronous lookup).
      sock.address()
      core.bound()
      if (options.broadcast) sock.setBroadcast(true)
      if (options.ttl !== undefined) sock.setTTL(options.ttl)
      if (options.recvBufferSize !== undefined) sock.setRecvBufferSize(options.recvBufferSize)
      if (options.sendBufferSize !== undefined) sock.setSendBufferSize(options.sendBufferSize)
      if (options.connectAddress !== undefined) this.connect(options.connectAddress, options.connectPort ?? 0)
      if (options.reading === true) core.setReading(true)
    } catch (e) {
      core.close()
      throw fromDgram(e, 'bind')
    }
    finalizer.register(this, core, this)
  }

  /** Runs `fn` on the open socket; node:dgram's errno errors become native ones. */
  private with<T>(syscall: string, fn: (sock: dgram.Socket) => T): T {
    if (this.core.closed) throw closedError()
    try {
      return fn(this.core.sock)
    } catch (e) {
      throw fromDgram(e, syscall, true)
    }
  }

  localAddress(): AddressInfo {
    return this.with('getsockname', (s) => toAddressInfo(s.address()))
  }

  remoteAddress(): AddressInfo | null {
    return this.with('getpeername', (s) => (this.core.connected ? toAddressInfo(s.remoteAddress()) : null))
  }

  connect(address: string, portNumber: number): void {
    this.with('connect', (s) => {
      if (this.core.connected) s.disconnect()
      // node:dgram connects synchronously here (synchronous lookup) but reports a failure only
      // on the next tick, to this callback (which keeps it from becoming an 'error' event).
      s.connect(portNumber, address, () => undefined)
      if (this.connectedNow()) {
        this.core.connected = true
        return
      }
      // Refused: the same connect on node:dgram's handle fails again and returns its errno now
      // (should it succeed this time, it is undone: node:dgram does not know of it).
      const h = this.core.handle
      let err = 0
      if (h && h.connect && h.disconnect) {
        const ip = this.core.ipv6 && isIP(address) === 4 ? `::ffff:${address}` : address
        err = h.connect(ip, portNumber)
        if (err === 0) h.disconnect()
      }
      throw osError(err || constants.errno.EINVAL, 'connect', `${address}:${portNumber}`)
    })
  }

  private connectedNow(): boolean {
    try {
      this.core.sock.remoteAddress()
      return true
    } catch {
      return false
    }
  }

  disconnect(): void {
    this.with('disconnect', (s) => {
      if (this.core.connected) s.disconnect()
      this.core.connected = false
    })
  }

  send(
    data: Uint8Array,
    partLens: Uint32Array,
    partsPerMsg: Uint32Array | undefined | null,
    destIndex: Uint32Array | undefined | null,
    destAddresses: Array<string>,
    destPorts: Array<number>,
    start: number,
    maxCount: number,
    sourceIndex?: Uint32Array | undefined | null,
    sources?: Array<string> | undefined | null,
    tos?: Int32Array | undefined | null,
  ): number {
    if (this.core.closed) throw closedError()
    return sendPacked(
      this.core,
      data,
      partLens,
      partsPerMsg,
      destIndex,
      destAddresses,
      destPorts,
      start,
      maxCount,
      sourceIndex,
      sources,
      tos,
    )
  }

  /** One datagram of one part: `send` for a batch of one (see the native `sendOne`). */
  sendOne(data: Uint8Array, address: string | undefined | null, port: number): number {
    const lens = new Uint32Array(1)
    lens[0] = data.byteLength
    return this.send(data, lens, null, null, address == null ? [] : [address], address == null ? [] : [port], 0, 1)
  }

  lastSendError(): NativeSendError | null {
    if (this.core.closed) throw closedError()
    return this.core.lastSendError
  }

  bufferSizes(): BufferSizes {
    return this.with('getsockopt', (s) => ({
      recvBufferSize: s.getRecvBufferSize(),
      sendBufferSize: s.getSendBufferSize(),
      recvForced: false,
      sendForced: false,
    }))
  }

  setBufferSize(send: boolean, size: number): void {
    this.with('setsockopt', (s) => (send ? s.setSendBufferSize(size) : s.setRecvBufferSize(size)))
  }

  capabilities(): Capabilities & { backend: 'fallback' } {
    if (this.core.closed) throw closedError()
    return {
      batched: false,
      gsoSupported: false,
      gso: false,
      gro: false,
      dropCounter: false,
      pktinfo: false,
      timestamps: false,
      recvTos: false,
      reusePort: DGRAM_REUSE_PORT && process.platform !== 'win32',
      reusePortSteering: false,
      backend: 'fallback',
    }
  }

  setIntOption(_level: number, _option: number, _value: number): void {
    if (this.core.closed) throw closedError()
    throw unsupported('setSocketOption (raw setsockopt)')
  }

  getIntOption(_level: number, _option: number): number {
    if (this.core.closed) throw closedError()
    throw unsupported('getSocketOption (raw getsockopt)')
  }

  setSteering(steering: SteeringOptions): void {
    if (this.core.closed) throw closedError()
    if (steering.mode !== 'hash') throw unsupported(`setSteering('${steering.mode}') (SO_ATTACH_REUSEPORT_CBPF)`)
  }

  getIncomingCpu(): number {
    if (this.core.closed) throw closedError()
    throw unsupported('getIncomingCpu (SO_INCOMING_CPU)')
  }

  setIncomingCpu(_cpu: number): void {
    if (this.core.closed) throw closedError()
    throw unsupported('setIncomingCpu (SO_INCOMING_CPU)')
  }

  setBroadcast(on: boolean): void {
    this.with('setsockopt', (s) => s.setBroadcast(on))
    this.broadcast = on
  }

  getBroadcast(): boolean {
    return this.with('getsockopt', () => this.broadcast)
  }

  setTtl(ttl: number): void {
    this.with('setsockopt', (s) => s.setTTL(ttl))
  }

  setTos(_tos: number): void {
    if (this.core.closed) throw closedError()
    throw unsupported('setTOS (TOS / traffic class)')
  }

  setMulticastTtl(ttl: number): void {
    this.with('setsockopt', (s) => s.setMulticastTTL(ttl))
  }

  setMulticastLoopback(on: boolean): void {
    this.with('setsockopt', (s) => s.setMulticastLoopback(on))
    this.multicastLoop = on
  }

  getMulticastLoopback(): boolean {
    return this.with('getsockopt', () => this.multicastLoop)
  }

  setMulticastInterface(iface: string): void {
    if (this.core.closed) throw closedError()
    // As natively: an IPv4 address of the interface, or for IPv6 a name, an index or `::%scope`.
    const known = this.core.ipv6 ? zoneIndex(iface.replace(/^::%/, '')) !== undefined : isIP(iface) === 4
    if (!known) throw argError('interface', 'names no known interface')
    this.with('setsockopt', (s) => s.setMulticastInterface(this.core.ipv6 && !iface.includes('%') ? `::%${iface}` : iface))
  }

  membership(join: boolean, group: string, iface?: string | null, source?: string | null): void {
    if (this.core.closed) throw closedError()
    const fam = isIP(group)
    if (!isMulticast(group, fam)) throw argError('group', 'must be a multicast address')
    if (source && isIP(source) !== fam) throw argError('source', `must be IPv${fam} for an IPv${fam} group`)
    this.with('setsockopt', (s) => {
      const i = iface ?? undefined
      if (source) {
        if (join) s.addSourceSpecificMembership(source, group, i)
        else s.dropSourceSpecificMembership(source, group, i)
      } else if (join) s.addMembership(group, i)
      else s.dropMembership(group, i)
    })
  }

  stats(): NativeStats {
    // After close: the final counts, as the native backend reports them.
    return { ...this.core.stats }
  }

  /** One `send` per datagram, like the native portable path (false after close, as there). */
  get portable(): boolean {
    return !this.core.closed
  }

  setReading(on: boolean): void {
    this.core.setReading(on)
  }

  requestWritable(): void {
    this.core.requestWritable()
  }

  ref(): void {
    this.core.ref()
  }

  unref(): void {
    this.core.unref()
  }

  close(): void {
    if (this.core.closed) return
    finalizer.unregister(this)
    this.core.close()
  }

  get closed(): boolean {
    return this.core.closed
  }
}
