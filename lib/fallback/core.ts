// The state of one fallback socket that node:dgram's callbacks reach: the dgram socket, the
// datagrams gathered for the next batch, the counters, and the dispatch callback. Kept apart
// from the FallbackSocket object itself, which only the UdpSocket references: when an
// unreferenced UdpSocket is garbage-collected, its FallbackSocket goes too and a
// FinalizationRegistry closes this core (as the native finalizer closes the fd), while
// node:dgram's own references keep only the core alive.

import * as dgram from 'node:dgram'
import type { NativeSendError, NativeStats } from '../../index.js'
import type { Dispatch } from '../native.js'
import { Gather } from './gather.js'
import { EVENT_BATCH, EVENT_ERROR, EVENT_WRITABLE } from './layout.js'
import { SEND_HIGH_WATER } from './send.js'

/** The internal UDP handle of a node:dgram socket: its recvStart/recvStop, and connect to learn
 * the errno of a connect node:dgram refused (it reports that only on the next tick). */
export interface UdpHandle {
  recvStart?: () => number
  recvStop?: () => number
  connect?: (ip: string, port: number) => number
  disconnect?: () => number
}

/** node:dgram keeps its handle under a symbol described 'state symbol' (lib/internal/dgram.js). */
function handleOf(sock: dgram.Socket): UdpHandle | null {
  const sym = Object.getOwnPropertySymbols(sock).find((s) => s.description === 'state symbol')
  const state = sym && (sock as unknown as Record<symbol, { handle?: UdpHandle } | undefined>)[sym]
  const h = state && state.handle
  return h && typeof h.recvStart === 'function' && typeof h.recvStop === 'function' ? h : null
}

/** Zeroed counters in the native shape. */
export function zeroStats(): NativeStats {
  return {
    datagramsReceived: 0,
    bytesReceived: 0,
    batchesReceived: 0,
    truncated: 0,
    recvSyscalls: 0,
    recvErrors: 0,
    kernelDrops: 0,
    datagramsSent: 0,
    bytesSent: 0,
    sendSyscalls: 0,
    sendRetries: 0,
    sendErrors: 0,
    eventsDropped: 0,
    recvQueueBytes: 0,
    groReceives: 0,
    controlTruncated: 0,
    errorQueueNotices: 0,
    gsoSends: 0,
    gsoFallbacks: 0,
  }
}

export class Core {
  closed = false
  connected = false
  reading = false
  refed = true
  wantWritable = false
  stats = zeroStats()
  /** The error that stopped the last send early (`lastSendError()`). */
  lastSendError: NativeSendError | null = null
  gather: Gather
  handle: UdpHandle | null = null
  immediate: NodeJS.Immediate | null = null
  /**
   * Keeps the event loop alive while the socket is open and referenced: node:dgram's handle
   * does so only while it reads or sends, and this socket pauses reading whenever nobody
   * consumes (a native socket holds its own reference on the loop).
   */
  keepAlive: NodeJS.Timeout | null = setInterval(() => undefined, 0x7fffffff)
  /** Datagrams node:dgram delivered while reading was paused and its handle could not be stopped. */
  held = 0
  readonly onSent: (err: Error | null) => void

  constructor(
    readonly sock: dgram.Socket,
    readonly ipv6: boolean,
    readonly batchSize: number,
    readonly maxHeld: number,
    maxDatagramSize: number,
    readonly dispatch: Dispatch,
  ) {
    this.gather = new Gather(maxDatagramSize)
    this.onSent = (err) => this.sent(err)
    sock.on('message', (msg, rinfo) => this.message(msg, rinfo))
    sock.on('error', (err) => this.error(err, 'recvmsg'))
  }

  /** After bind: stop reading until setReading(true) (the native socket starts paused). */
  bound(): void {
    this.handle = handleOf(this.sock)
    if (this.handle) this.handle.recvStop!()
  }

  setReading(on: boolean): void {
    if (this.closed || on === this.reading) return
    this.reading = on
    if (this.handle) {
      if (on) this.handle.recvStart!()
      else this.handle.recvStop!()
    }
    if (on && this.gather.length > 0) this.schedule()
  }

  private message(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (this.closed) return
    this.stats.recvSyscalls++
    if (!this.reading && !this.handle) {
      // No way to leave it in the kernel: hold it, up to what the native socket would have
      // had in flight, and count the rest as dropped.
      if (this.held >= this.maxHeld) {
        this.stats.kernelDrops++
        return
      }
      this.held++
    }
    this.gather.push(msg, rinfo)
    if (this.gather.length >= this.batchSize && this.reading) this.flush()
    else this.schedule()
  }

  /** Delivers gathered datagrams on the next turn (after this poll phase's other messages). */
  private schedule(): void {
    if (this.immediate !== null || this.closed) return
    this.immediate = setImmediate(() => {
      this.immediate = null
      this.flush()
    })
    if (!this.refed) this.immediate.unref()
  }

  /** Delivers one batch (the rest next turn, so a throwing listener stops nothing). */
  private flush(): void {
    if (this.closed || this.gather.length === 0) return
    if (!this.reading && !this.handle) return
    const b = this.gather.take(this.batchSize)
    this.held = Math.max(0, this.held - b.count)
    if (this.gather.length > 0) this.schedule()
    const s = this.stats
    s.datagramsReceived += b.count
    s.bytesReceived += b.bytes
    s.batchesReceived++
    s.truncated += b.truncated
    this.dispatch(EVENT_BATCH, b.data, b.count, -1)
  }

  error(err: Error, syscall: string): void {
    if (this.closed) return
    const e = err as Error & { errno?: number; syscall?: string }
    if (syscall === 'recvmsg') this.stats.recvErrors++
    this.dispatch(
      EVENT_ERROR,
      null,
      0,
      -1,
      Math.abs(typeof e.errno === 'number' ? e.errno : 0) || 5,
      syscall === 'recvmsg' && typeof e.syscall === 'string' ? e.syscall : syscall,
    )
  }

  private sent(err: Error | null): void {
    if (err) {
      this.stats.sendErrors++
      this.error(err, 'sendmsg')
    }
    if (this.wantWritable && !this.closed && this.sock.getSendQueueCount() < SEND_HIGH_WATER / 2) this.writable()
  }

  requestWritable(): void {
    if (this.closed) return
    this.wantWritable = true
    if (this.sock.getSendQueueCount() < SEND_HIGH_WATER / 2) setImmediate(() => this.writable())
  }

  private writable(): void {
    if (!this.wantWritable || this.closed) return
    this.wantWritable = false
    this.dispatch(EVENT_WRITABLE, null, 0, -1)
  }

  ref(): void {
    if (this.closed) return
    this.refed = true
    this.sock.ref()
    if (this.keepAlive) this.keepAlive.ref()
    if (this.immediate) this.immediate.ref()
  }

  unref(): void {
    if (this.closed) return
    this.refed = false
    this.sock.unref()
    if (this.keepAlive) this.keepAlive.unref()
    if (this.immediate) this.immediate.unref()
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    this.reading = false
    if (this.immediate) clearImmediate(this.immediate)
    this.immediate = null
    if (this.keepAlive) clearInterval(this.keepAlive)
    this.keepAlive = null
    this.gather.clear()
    try {
      this.sock.close()
    } catch {
      // Already closed by node:dgram (a failed bind).
    }
  }
}
