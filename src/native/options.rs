//! The plain objects crossing the boundary: the options the constructor takes, and what the
//! socket reports back (capabilities, addresses, buffer sizes, the outcome of a send).

use std::net::SocketAddr;

use napi_derive::napi;

use crate::addr;

/// Largest batch (`recvmmsg`/`sendmmsg` vlen is capped at UIO_MAXIOV).
pub const MAX_BATCH_SIZE: u32 = 1024;
/// Largest UDP payload the slab can hold per datagram.
pub const MAX_DATAGRAM_SIZE: u32 = 65535;

/// Options for `NativeSocket`, already normalised by `lib/options.ts`. They cross the boundary
/// packed (see `packed_options`): this type names and documents them for the JS layer.
#[napi(object)]
pub struct NativeOptions {
  /// Local IP literal to bind (`'0.0.0.0'`, `'::'`, `'127.0.0.1'`, `'::1'`, ...).
  pub address: String,
  /// Local port; 0 asks the kernel for a free one.
  pub port: u32,
  /// Create an IPv6 socket (`'udp6'`); otherwise IPv4.
  pub ipv6: bool,
  /// `IPV6_V6ONLY`; left to the system default when absent.
  pub ipv6_only: Option<bool>,
  /// `SO_REUSEADDR`.
  pub reuse_addr: bool,
  /// `SO_REUSEPORT` (Linux: load-balances datagrams across sockets bound to the same port).
  pub reuse_port: bool,
  /// `SO_BROADCAST`.
  pub broadcast: bool,
  /// Requested `SO_RCVBUF` in bytes.
  pub recv_buffer_size: Option<u32>,
  /// Requested `SO_SNDBUF` in bytes.
  pub send_buffer_size: Option<u32>,
  /// Try `SO_RCVBUFFORCE`/`SO_SNDBUFFORCE` first (needs CAP_NET_ADMIN).
  pub force_buffer_size: bool,
  /// Unicast TTL / hop limit.
  pub ttl: Option<u32>,
  /// Datagrams per receive call (1..=1024).
  pub batch_size: u32,
  /// Bytes per datagram slot; longer datagrams are truncated and flagged (1..=65535).
  pub max_datagram_size: u32,
  /// Accepted for compatibility; unused by the native backend (batches are handed to JS as
  /// they are read, so none wait between the kernel and JS).
  pub max_pending_batches: u32,
  /// Microseconds a socket waits before reading again after a wake-up that found a backlog
  /// (two datagrams or more), so the next batch is fuller; a lone datagram never waits. 0: never
  /// wait (0..=1000000).
  pub coalesce_micros: u32,
  /// Connect to this peer after binding.
  pub connect_address: Option<String>,
  /// Port of the peer to connect to.
  pub connect_port: Option<u32>,
  /// Use one `recvmsg`/`sendmsg` per datagram instead of `recvmmsg`/`sendmmsg`.
  pub portable: bool,
  /// UDP GSO on send: 0 off, 1 auto (use when the kernel supports it), 2 required.
  pub gso: u32,
  /// UDP GRO on receive: coalesced receives are split back into datagrams.
  pub gro: bool,
  /// Deliver each datagram's local (destination) address and interface index.
  pub pktinfo: bool,
  /// Deliver each datagram's kernel receive time (`SO_TIMESTAMPNS`).
  pub timestamps: bool,
  /// Deliver each datagram's TOS / traffic class byte (ECN in its low two bits).
  pub recv_tos: bool,
  /// TOS / traffic class for everything this socket sends.
  pub tos: Option<u32>,
  /// Adopt (a duplicate of) this already open UDP socket instead of creating one: `address`,
  /// `port`, `reuseAddr`, `reusePort` and `ipv6Only` are then unused (see `crate::adopt`).
  pub fd: Option<i32>,
  /// Start reading at once (as `setReading(true)` right after the constructor would, without
  /// the second call); absent: paused.
  pub reading: Option<bool>,
  /// Steering of the `SO_REUSEPORT` group, applied once the socket is open (`crate::steering`);
  /// absent: the group's steering is left as it is.
  pub steering: Option<crate::steering::SteeringOptions>,
}

/// What this socket can do, probed once when it was opened.
#[napi(object)]
pub struct Capabilities {
  /// Many datagrams per system call (`recvmmsg`/`sendmmsg`); false on the portable path.
  pub batched: bool,
  /// The kernel accepts `UDP_SEGMENT` on this socket.
  pub gso_supported: bool,
  /// GSO is in use for sends now (false once a refused GSO send went through plainly: GSO does
  /// not work on this socket's path; a refusal for a segment over the MTU leaves it on).
  pub gso: bool,
  /// GRO receive is on.
  pub gro: bool,
  /// The kernel's drop counter is available (`SO_RXQ_OVFL`/`SO_MEMINFO`).
  pub drop_counter: bool,
  /// Per-datagram local address and interface index are delivered.
  pub pktinfo: bool,
  /// Per-datagram receive timestamps are delivered.
  pub timestamps: bool,
  /// Per-datagram TOS / ECN is delivered.
  pub recv_tos: bool,
  /// `SO_REUSEPORT` is set on this socket (bound with `reusePort: true` on a platform that has
  /// it; read back from the kernel). Linux balances datagrams across such sockets.
  pub reuse_port: bool,
  /// The reuseport group's steering can be chosen (`steering`, `setSteering`: Linux's
  /// `SO_ATTACH_REUSEPORT_CBPF`), and `SO_INCOMING_CPU` read and set.
  pub reuse_port_steering: bool,
}

/// An address as Node reports it.
#[napi(object)]
pub struct AddressInfo {
  /// IP address as text.
  pub address: String,
  /// Port number.
  pub port: u32,
  /// `'IPv4'` or `'IPv6'`.
  pub family: String,
}

/// Socket buffer sizes the kernel granted.
#[napi(object)]
pub struct BufferSizes {
  /// `SO_RCVBUF` as reported by the kernel (Linux doubles the request for bookkeeping).
  pub recv_buffer_size: u32,
  /// `SO_SNDBUF` as reported by the kernel.
  pub send_buffer_size: u32,
  /// True when the receive size was set with `SO_RCVBUFFORCE`, past `net.core.rmem_max`.
  pub recv_forced: bool,
  /// True when the send size was set with `SO_SNDBUFFORCE`, past `net.core.wmem_max`.
  pub send_forced: bool,
}

/// Why the last native send stopped early: the error that stopped it at datagram
/// `start + sent` (see `NativeSocket.lastSendError`).
#[napi(object)]
pub struct NativeSendError {
  /// Its errno (positive).
  pub errno: i32,
  /// The system call that failed.
  pub syscall: String,
}

/// The address `a` as Node reports it.
pub(crate) fn address_info(a: &SocketAddr) -> AddressInfo {
  // An IPv4-mapped peer on a dual-stack socket is still reported as IPv6, as Node does.
  AddressInfo {
    address: addr::ip_to_string(a),
    port: a.port() as u32,
    family: if a.is_ipv4() { "IPv4" } else { "IPv6" }.to_string(),
  }
}
