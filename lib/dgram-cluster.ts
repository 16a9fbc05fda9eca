// The node:dgram facade's sockets it does not open itself: `bind({ fd })` (adopting a socket
// someone else opened) and binds in a cluster worker, where node:dgram gets its socket from
// the primary. For the latter the facade asks node:dgram itself: an internal node:dgram socket
// binds through the cluster machinery (so the primary's sharing rules, errors and handle
// passing are Node's own), stops reading, and the facade adopts a duplicate of its fd; the
// internal socket is kept (not reading, unreferenced) for the facade socket's lifetime, so the
// primary sees the worker holding the handle, and closed with it.

import cluster from 'node:cluster'
import * as nodeDgram from 'node:dgram'
import { fstatSync } from 'node:fs'
import { isatty } from 'node:tty'

/** A socket obtained from elsewhere: its fd, and what must be closed with the facade socket. */
export interface Obtained {
  fd: number
  /** The internal node:dgram socket holding the cluster's handle (null for a plain fd). */
  holder: nodeDgram.Socket | null
}

/** What bind() asks for, as node:dgram's cluster machinery takes it. */
export interface SharedBind {
  type: 'udp4' | 'udp6'
  address: string
  port: number
  fd: number | undefined
  reuseAddr: boolean | undefined
  ipv6Only: boolean | undefined
}

/** True in a cluster worker, where a non-exclusive bind goes through the primary. */
export function inClusterWorker(): boolean {
  return cluster.isWorker === true
}

interface UdpHandle {
  fd?: number
  recvStop?: () => number
}

/** node:dgram's handle of `s`, read through its state slot (not the deprecated `_handle`). */
function handleOf(s: nodeDgram.Socket): { state: { handle?: UdpHandle; receiving?: boolean }; handle: UdpHandle } | null {
  for (const sym of Object.getOwnPropertySymbols(s)) {
    const state = (s as unknown as Record<symbol, { handle?: UdpHandle; receiving?: boolean } | undefined>)[sym]
    if (state && typeof state === 'object' && state.handle && typeof state.handle.fd === 'number') return { state, handle: state.handle }
  }
  return null
}

/**
 * Binds through the cluster primary as node:dgram does in a worker; calls back with the fd of
 * the shared socket (the facade adopts a duplicate) or with node:dgram's own bind error.
 */
export function bindInWorker(req: SharedBind, callback: (err: Error | null, got?: Obtained) => void): void {
  const holder = nodeDgram.createSocket({ type: req.type, reuseAddr: req.reuseAddr, ipv6Only: req.ipv6Only })
  const onError = (err: Error) => {
    holder.removeListener('listening', onListening)
    try {
      holder.close()
    } catch {
      // already closed
    }
    callback(err)
  }
  const onListening = () => {
    holder.removeListener('error', onError)
    const h = handleOf(holder)
    if (h === null || typeof h.handle.fd !== 'number' || h.handle.fd < 0) {
      holder.close()
      callback(new Error('udp-mmsg/dgram: the cluster handle has no file descriptor'))
      return
    }
    // The facade reads the socket; node:dgram's handle must not compete for datagrams.
    if (typeof h.handle.recvStop === 'function') h.handle.recvStop()
    h.state.receiving = false
    holder.unref()
    // A later error of the holder (it does not read, so none is expected) must not throw.
    holder.on('error', () => {})
    callback(null, { fd: h.handle.fd, holder })
  }
  holder.once('error', onError)
  holder.once('listening', onListening)
  if (req.fd !== undefined) holder.bind({ fd: req.fd })
  else holder.bind({ port: req.port, address: req.address })
}

/**
 * What Node's guessHandleType calls `fd` ('TCP', 'PIPE', 'FILE', 'TTY', 'UNKNOWN'), for
 * ERR_INVALID_FD_TYPE when bind({ fd }) is given something that is not a UDP socket (`code`:
 * the adoption's errno code: EINVAL is a socket of another kind, ENOTSOCK not a socket).
 */
export function fdTypeName(fd: number, code: unknown): string {
  try {
    const st = fstatSync(fd)
    if (st.isSocket()) return code === 'EINVAL' ? 'TCP' : 'UNKNOWN'
    if (st.isFile()) return 'FILE'
    if (st.isFIFO()) return 'PIPE'
    if (st.isCharacterDevice()) return isatty(fd) ? 'TTY' : 'FILE'
  } catch {
    // not open
  }
  return 'UNKNOWN'
}
