// Public types shared by several modules, kept apart so the public declarations (what the
// package entry points reach) hold these and the classes, not the internal modules.

import type { Capabilities as NativeCapabilities, NativeStats } from '../index.js'

export type { AddressInfo, BufferSizes } from '../index.js'

/** What this socket can do (probed once when it was opened), and which backend serves it. */
export interface Capabilities extends NativeCapabilities {
  /** `'native'` (the Rust binding) or `'fallback'` (node:dgram, where no binary loads or `UDP_MMSG_BACKEND=fallback`; see docs/fallback.md). */
  backend: 'native' | 'fallback'
}

/**
 * How the kernel spreads datagrams over the sockets of one `SO_REUSEPORT` group (Linux; see
 * docs/scale-out.md): `'hash'` by a hash of the flow (the default: each sender stays on one
 * socket), `'cpu'` to the socket whose index is the CPU that processed the packet, `'random'`
 * evenly at random whatever the number of senders (order across sockets is not kept).
 */
export type Steering = 'hash' | 'cpu' | 'random'

/** Options of {@link UdpSocket.bind}. Every field is optional. */
export interface BindOptions {
  /** Local IP literal to bind. Default `'0.0.0.0'` (udp4) or `'::'` (udp6). Hostnames are not resolved. */
  address?: string
  /** Local port, 0..65535. Default 0: the kernel picks one; read it with `localAddress()`. */
  port?: number
  /** `'udp4'` or `'udp6'`. Inferred from `address` when omitted (`'udp4'` without an address). */
  type?: 'udp4' | 'udp6'
  /** `IPV6_V6ONLY` for udp6 sockets. `false` makes `'::'` dual-stack (IPv4 peers appear as `::ffff:a.b.c.d`). */
  ipv6Only?: boolean
  /** `SO_REUSEADDR`. */
  reuseAddr?: boolean
  /** `SO_REUSEPORT`: several sockets on one port, the kernel spreads datagrams across them (Linux). */
  reusePort?: boolean
  /**
   * Steering of the `SO_REUSEPORT` group this socket joins (needs `reusePort: true`; Linux, else
   * `ERR_UDP_MMSG_UNSUPPORTED`): attaches a classic BPF program (`SO_ATTACH_REUSEPORT_CBPF`) that
   * chooses the socket for every datagram of the whole group, replacing what another member
   * attached. `'random'` needs `groupSize`. Default: the group is left as it is (`'hash'` unless
   * a member attached a program). See {@link Steering} and docs/scale-out.md.
   */
  steering?: Steering
  /**
   * The number of sockets `steering` spreads over, 1..65535: required for `'random'`, optional
   * for `'cpu'` (CPU index modulo this; without it CPU k goes to socket k). Make it the number of
   * sockets in the group: indexes past the sockets present fall back to the flow hash.
   */
  groupSize?: number
  /** `SO_BROADCAST`. */
  broadcast?: boolean
  /** Requested `SO_RCVBUF` in bytes. The kernel caps it at `net.core.rmem_max` (a warning says so); read the granted size with `bufferSizes()`. */
  recvBufferSize?: number
  /** Requested `SO_SNDBUF` in bytes (capped at `net.core.wmem_max`). */
  sendBufferSize?: number
  /** Try `SO_RCVBUFFORCE`/`SO_SNDBUFFORCE` first, which ignore the sysctl caps but need CAP_NET_ADMIN; falls back silently. */
  forceBufferSize?: boolean
  /** Unicast TTL (IPv4) or hop limit (IPv6), 1..255. */
  ttl?: number
  /** Most datagrams one receive system call returns (and a delivered batch holds), 1..1024. Default 256. With `gro: true` the slab has at most 32 slots, each holding up to 64 coalesced datagrams. */
  batchSize?: number
  /**
   * Bytes reserved per datagram, 1..65535. Longer datagrams are cut and flagged `truncated`.
   * Default: the largest UDP payload of the socket's family, 65507 for `'udp4'` and 65527 for
   * `'udp6'`, so nothing is cut (as with node:dgram). The receive slab, `batchSize ×
   * maxDatagramSize` bytes, is made on the socket's first receive; lower this to your protocol's
   * maximum to save address space when many sockets receive.
   */
  maxDatagramSize?: number
  /**
   * Validated (1..1024, default 16) but without effect on the native backend: each batch is
   * handed to JS as soon as it is read, on the JS thread, so no batches wait between native code
   * and JS (while JS is busy, the kernel receive buffer absorbs bursts). On the node:dgram
   * fallback it bounds the datagrams held in JS (`batchSize × maxPendingBatches`) should
   * node:dgram's reading not be pausable.
   */
  maxPendingBatches?: number
  /** Connect to this peer after binding: sends need no destination, only its datagrams arrive, ICMP errors are reported. */
  connect?: { address: string; port: number }
  /** Force the portable path: one `recvmsg`/`sendmsg` per datagram. Always on off Linux. */
  portable?: boolean
  /**
   * Adaptive coalescing, 0..1000000 µs. Default 200. After a wake-up that found two datagrams
   * or more (delivered at once), the socket waits this long before reading again, so the next
   * batch is fuller. A wake-up that finds one datagram never waits: a lone datagram (ping-pong,
   * a lone query) is delivered at once. 0 never waits. Off Linux the wait is rounded up to 1 ms.
   */
  coalesceMicros?: number
  /** UDP GSO on send (Linux): runs of same-size datagrams to one destination go as one super-datagram. `'auto'` (default) uses it when the kernel supports it and falls back if a send is refused; `true` fails the bind without support; `false` never. */
  gso?: 'auto' | boolean
  /** UDP GRO on receive (Linux): the kernel may coalesce datagrams; they are split back so JS sees ordinary datagrams. Default false. */
  gro?: boolean
  /** Deliver each datagram's local (destination) address and interface index: `batch.localAddress(i)`, `batch.interfaceIndex(i)` (IP_PKTINFO / IPV6_RECVPKTINFO). */
  pktinfo?: boolean
  /** Deliver each datagram's kernel receive time (SO_TIMESTAMPNS): `batch.timestamps` (BigUint64Array, ns since the epoch). */
  timestamps?: boolean
  /** Deliver each datagram's TOS / traffic class byte: `batch.tos(i)`, `batch.ecn(i)` (IP_RECVTOS / IPV6_RECVTCLASS). */
  recvTos?: boolean
  /** TOS (IPv4) / traffic class (IPv6) for everything this socket sends, 0..255. */
  tos?: number
  /** Abort the bind (only before it starts: binding itself is immediate). */
  signal?: AbortSignal
  /**
   * Adopt this already open UDP socket (systemd's fd 3, one passed by a parent process...)
   * instead of creating one: the socket takes a duplicate of it (the fd stays yours to close)
   * and uses it as it is bound. `type` defaults to the fd's family; `address`, `port`,
   * `reuseAddr`, `reusePort` and `ipv6Only` cannot be given with it.
   */
  fd?: number
}

/** One datagram to send. */
export interface OutgoingMessage {
  /** The payload: bytes, a string (UTF-8), or several parts sent as one datagram (scatter/gather). */
  data: string | ArrayBufferView | ReadonlyArray<string | ArrayBufferView>
  /** Destination IP literal. Required on an unconnected socket, forbidden on a connected one. */
  address?: string
  /** Destination port, 1..65535. */
  port?: number
  /** Local address to send this datagram from (IP_PKTINFO / IPV6_PKTINFO): how a server bound to `0.0.0.0` replies from the address it was reached on. */
  sourceAddress?: string
  /** TOS / traffic class byte for this datagram only, 0..255 (ECN in its low two bits). */
  tos?: number
}

/** An errno error as Node makes them. */
export interface ErrnoError extends Error {
  /** `'EMSGSIZE'`, `'ECONNREFUSED'`, ... */
  code: string
  /** The negative errno, as Node reports it. */
  errno: number
  /** The system call that failed (`'send'`, `'recvmsg'`, ...). */
  syscall: string
}

/**
 * Counters of one socket since it was opened. After `close()` they keep their values from the
 * moment of close; `queuedBatches`, `pendingSends` and `pendingErrors` are 0.
 */
export interface Stats extends NativeStats {
  /** Batches received but not yet taken by recvBatch / an iterator. */
  queuedBatches: number
  /**
   * Datagrams the socket received (counted in `datagramsReceived`) but dropped at `close()`
   * before any consumer (a `'batch'` listener, `recvBatch`, an iterator) had them: batches
   * queued for a pull consumer. 0 while open. After
   * close, `datagramsReceived` is exactly the datagrams consumers got plus this.
   */
  datagramsDiscarded: number
  /** sendBatch calls waiting for the send buffer. */
  pendingSends: number
  /** Receive errors waiting for the next recvBatch (nobody listens for 'error'). */
  pendingErrors: number
  /** Receive errors that could not be kept (more than 64 pending). */
  errorsDropped: number
}
