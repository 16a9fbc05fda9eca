//! The napi class JS talks to: one owned UDP socket, its I/O thread and its counters.
//! `lib/socket.js` wraps it in the public `UdpSocket` API; argument validation with
//! `TypeError`/`RangeError` happens there, and this layer checks again without trusting it.

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use socket2::{SockAddr, Socket};

use crate::addr::{self, AddrError};
use crate::cleanup::{CleanupHook, Shutdown, Slot, SlotCell};
use crate::error::{closed, invalid_arg, os_error, OsError};
use crate::io::{self, Delivery, Event, Shared};
use crate::recv::{RecvMode, RecvSlab};
use crate::send::{self, Packed, SendScratch};
use crate::socket::{self, SocketConfig};
use crate::stats::Counters;
use crate::wake::Waker;

/// Largest batch (`recvmmsg`/`sendmmsg` vlen is capped at UIO_MAXIOV).
pub const MAX_BATCH_SIZE: u32 = 1024;
/// Largest UDP payload the slab can hold per datagram.
pub const MAX_DATAGRAM_SIZE: u32 = 65535;

/// Options for `NativeSocket`, already normalised by `lib/socket.js`.
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
  /// Batches that may wait for the JS thread before the I/O thread stops reading.
  pub max_pending_batches: u32,
  /// Microseconds a partial batch may wait for more datagrams before delivery (0..=1000000).
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
  /// `SO_REUSEPORT` load balancing is available on this platform.
  pub reuse_port: bool,
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

/// Outcome of one native send call.
#[napi(object)]
pub struct NativeSendResult {
  /// Datagrams handed to the kernel by this call.
  pub sent: u32,
  /// Bytes in those datagrams.
  pub bytes: f64,
  /// The send buffer is full: wait for `writable`, then resume at `start + sent`.
  pub would_block: bool,
  /// Errno of the error that stopped the call at datagram `start + sent`, or 0.
  pub errno: i32,
  /// System call that failed, when `errno` is not 0.
  pub syscall: String,
}

/// Counters of one socket (cumulative since it was opened).
#[napi(object)]
pub struct NativeStats {
  /// Datagrams delivered to JS (after GRO splitting).
  pub datagrams_received: f64,
  /// Payload bytes delivered to JS.
  pub bytes_received: f64,
  /// Batches delivered to JS.
  pub batches_received: f64,
  /// Datagrams that arrived cut to `maxDatagramSize`.
  pub truncated: f64,
  /// Receive system calls made (`recvmmsg`, or `recvmsg` on the portable path).
  pub recv_syscalls: f64,
  /// Receive errors reported (ICMP errors, errors parked after a partial batch, error queue).
  pub recv_errors: f64,
  /// The kernel's count of datagrams dropped for this socket because its buffer was full.
  pub kernel_drops: f64,
  /// Datagrams handed to the kernel.
  pub datagrams_sent: f64,
  /// Payload bytes handed to the kernel.
  pub bytes_sent: f64,
  /// Send system calls made (`sendmmsg`, or `sendmsg` on the portable path).
  pub send_syscalls: f64,
  /// Times a send found the send buffer full and waited for room.
  pub send_retries: f64,
  /// Sends that failed with an errno error.
  pub send_errors: f64,
  /// Receive errors not queued to JS because 64 were already waiting.
  pub events_dropped: f64,
  /// Bytes waiting in the kernel receive queue now (Linux, `SO_MEMINFO`).
  pub recv_queue_bytes: f64,
  /// Receives the kernel had coalesced with GRO and that were split back into datagrams.
  pub gro_receives: f64,
  /// Datagrams whose control data the kernel cut (`MSG_CTRUNC`, too many receive options
  /// enabled with `setSocketOption`): they are delivered without local address, timestamp
  /// or TOS rather than with part of them.
  pub control_truncated: f64,
  /// Entries on the socket error queue that were not errors (transmit timestamps, zerocopy
  /// completions): read and discarded, never reported as errors.
  pub error_queue_notices: f64,
  /// GSO sends (one system call entry carrying several datagrams).
  pub gso_sends: f64,
  /// Times the kernel refused a GSO send that then went through as plain sends: a segment over
  /// the path MTU (later runs keep below it) or no GSO on the path (GSO turns off).
  pub gso_fallbacks: f64,
}

type Dispatch = Arc<DispatchFn>;
type DispatchFn = ThreadsafeFunction<Event, (), DispatchArgs, Status, false, false, 0>;
/// (kind, bytes, unused, count-or-errno, kernel drops, syscall): kind 0 = batch (metadata
/// then payloads, see `batch.rs`), 1 = error, 2 = writable.
type DispatchArgs = FnArgs<(u32, Option<Buffer>, Option<Buffer>, i32, f64, Option<String>)>;

/// An open socket: everything `close()` releases. Dropping it stops and joins the I/O thread;
/// the fd closes once both this and the thread's [`Shared`] are gone.
struct Open {
  /// The socket, shared with the I/O thread (`shared.socket`).
  socket: Arc<Socket>,
  shared: Arc<Shared>,
  thread: Option<JoinHandle<()>>,
  dispatch: Dispatch,
  scratch: SendScratch,
  ipv6: bool,
  granted: socket::Granted,
  connected: bool,
  referenced: bool,
  caps: CapsProbe,
}

#[derive(Clone, Copy)]
struct CapsProbe {
  gso_supported: bool,
  drop_counter: bool,
  info: socket::RecvInfo,
}

impl Shutdown for Open {
  /// Stops and joins the I/O thread; the fd closes when `self` drops. The thread never
  /// blocks on the JS thread, so the join returns promptly.
  fn shutdown(&mut self) {
    self.shared.request_stop();
    if let Some(t) = self.thread.take() {
      // A panic on the I/O thread is already reported by the panic hook; the thread is gone.
      let _ = t.join();
    }
  }
}

impl Drop for Open {
  /// However an `Open` goes away, its thread is stopped and joined first.
  fn drop(&mut self) {
    self.shutdown();
  }
}

/// One UDP socket owned by Rust. Use the `UdpSocket` class from the package instead.
#[napi]
pub struct NativeSocket {
  /// Shared with the environment cleanup hook, which closes the socket on worker teardown.
  inner: Slot<Open>,
  hook: Option<CleanupHook<Open>>,
}

fn addr_error(e: AddrError, what: &str) -> Error {
  match e {
    AddrError::NotAnIp => invalid_arg(&format!("{what} must be an IP address literal")),
    AddrError::BadScope => invalid_arg(&format!("{what} has an unknown IPv6 scope")),
  }
}

fn port(p: u32, what: &str) -> Result<u16> {
  u16::try_from(p).map_err(|_| invalid_arg(&format!("{what} must be 0..65535")))
}

fn ipv4(text: &str, what: &str) -> Result<std::net::Ipv4Addr> {
  match addr::parse_ip(text) {
    Ok((std::net::IpAddr::V4(v4), _)) => Ok(v4),
    _ => Err(invalid_arg(&format!("{what} must be an IPv4 address"))),
  }
}

/// An IPv6 interface given as a name (`lo`), an index (`1`) or `::%scope`.
fn interface_index(text: &str) -> Result<u32> {
  if let Ok(i) = text.parse::<u32>() {
    return Ok(i);
  }
  if let Ok((_, scope)) = addr::parse_ip(text) {
    return Ok(scope);
  }
  addr::parse_ip(&format!("::%{text}"))
    .map(|(_, s)| s)
    .map_err(|_| invalid_arg("interface names no known interface"))
}

fn address_info(a: &SocketAddr) -> AddressInfo {
  // An IPv4-mapped peer on a dual-stack socket is still reported as IPv6, as Node does.
  AddressInfo {
    address: addr::ip_to_string(a),
    port: a.port() as u32,
    family: if a.is_ipv4() { "IPv4" } else { "IPv6" }.to_string(),
  }
}

#[napi]
impl NativeSocket {
  /// Creates, configures and binds the socket, and starts its I/O thread (paused).
  /// `dispatch` receives every event the I/O thread produces.
  #[napi(constructor)]
  pub fn new(
    env: Env,
    options: NativeOptions,
    #[napi(
      ts_arg_type = "(kind: number, bytes: Buffer | null, unused: null, n: number, drops: number, syscall: string | null) => void"
    )]
    dispatch: Function<'_, (), ()>,
  ) -> Result<Self> {
    if options.batch_size == 0 || options.batch_size > MAX_BATCH_SIZE {
      return Err(invalid_arg("batchSize must be 1..1024"));
    }
    if options.max_datagram_size == 0 || options.max_datagram_size > MAX_DATAGRAM_SIZE {
      return Err(invalid_arg("maxDatagramSize must be 1..65535"));
    }
    let bind = addr::socket_addr(&options.address, port(options.port, "port")?)
      .map_err(|e| addr_error(e, "address"))?;
    let connect = match (&options.connect_address, options.connect_port) {
      (Some(a), Some(p)) => {
        Some(addr::socket_addr(a, port(p, "connect port")?).map_err(|e| addr_error(e, "connect address"))?)
      }
      (None, None) => None,
      _ => return Err(invalid_arg("connect needs both address and port")),
    };
    if bind.is_ipv6() && !options.ipv6 {
      return Err(invalid_arg("an IPv6 address needs a udp6 socket"));
    }
    let cfg = SocketConfig {
      bind,
      ipv6: options.ipv6,
      ipv6_only: options.ipv6_only,
      reuse_addr: options.reuse_addr,
      reuse_port: options.reuse_port,
      broadcast: options.broadcast,
      recv_buffer_size: options.recv_buffer_size.map(|s| s as usize),
      send_buffer_size: options.send_buffer_size.map(|s| s as usize),
      force_buffer_size: options.force_buffer_size,
      ttl: options.ttl,
      connect,
    };
    let (sock, granted) = socket::open(&cfg).map_err(|e| os_error(e.os, &e.detail))?;
    let batched = cfg!(target_os = "linux") && !options.portable;
    let mode = if batched { RecvMode::Batched } else { RecvMode::Portable };
    let drop_counter = enable_drop_counter(&sock);
    let info = socket::RecvInfo {
      pktinfo: options.pktinfo,
      timestamps: options.timestamps,
      tos: options.recv_tos,
      gro: options.gro && batched,
    };
    socket::enable_recv_info(&sock, options.ipv6, info).map_err(|e| os_error(e.os, &e.detail))?;
    if let Some(tos) = options.tos {
      if tos > 255 {
        return Err(invalid_arg("tos must be 0..255"));
      }
      socket::set_tos(&sock, options.ipv6, tos).map_err(|e| os_error(e.os, &e.detail))?;
    }
    let gso_supported = batched && socket::probe_gso(&sock);
    if options.gso == 2 && !gso_supported {
      let e = OsError { errno: libc::ENOPROTOOPT, syscall: "getsockopt" };
      return Err(os_error(e, "UDP_SEGMENT (gso: true needs Linux >= 4.18 and the batched path)"));
    }
    let waker = Waker::new().map_err(|e| os_error(OsError::from_io(&e, "eventfd"), ""))?;
    let sock = Arc::new(sock);
    let shared = Arc::new(Shared::new(
      Arc::clone(&sock),
      waker,
      mode,
      options.batch_size as usize,
      std::time::Duration::from_micros(options.coalesce_micros.min(1_000_000) as u64),
      options.max_pending_batches.clamp(1, 1024),
    ));

    // Weak: the callback closure is freed only when napi finalizes the threadsafe function, on
    // a later turn of the event loop; a strong reference would keep the wake-up eventfd open
    // after close() until then.
    let credit = Arc::downgrade(&shared);
    let tsfn: Dispatch = Arc::new(
      dispatch
        .build_threadsafe_function::<Event>()
        .callee_handled::<false>()
        .max_queue_size::<0>()
        .build_callback(move |ctx| {
          Ok(match ctx.value {
            Event::Batch(b) => {
              if let Some(shared) = credit.upgrade() {
                shared.return_credit();
              }
              let drops = b.kernel_drops.map_or(-1.0, |d| d as f64);
              (0, Some(Buffer::from(b.bytes)), None, b.count as i32, drops, None).into()
            }
            Event::Error(e) => {
              if let Some(shared) = credit.upgrade() {
                shared.error_handled();
              }
              (1, None, None, e.errno, 0.0, Some(e.syscall.to_string())).into()
            }
            Event::Writable => (2, None, None, 0, 0.0, None).into(),
          })
        })?,
    );

    let mut slab =
      RecvSlab::with_gro(options.batch_size as usize, options.max_datagram_size as usize, info.gro);
    slab.drop_counter = drop_counter;
    let thread_shared = shared.clone();
    let sink_tsfn = Arc::clone(&tsfn);
    let thread = std::thread::Builder::new()
      .name("udp-mmsg-io".into())
      .stack_size(256 * 1024)
      .spawn(move || {
        io::run(thread_shared, slab, move |event| {
          match sink_tsfn.call(event, ThreadsafeFunctionCallMode::NonBlocking) {
            Status::Ok => Delivery::Queued,
            _ => Delivery::Closed,
          }
        })
      })
      .map_err(|e| os_error(OsError::from_io(&e, "pthread_create"), ""))?;

    let open = Open {
      socket: sock,
      shared,
      thread: Some(thread),
      dispatch: tsfn,
      scratch: {
        let mut s = SendScratch::default();
        s.gso = options.gso > 0 && gso_supported;
        s
      },
      ipv6: options.ipv6,
      granted,
      connected: connect.is_some(),
      referenced: true,
      caps: CapsProbe { gso_supported, drop_counter, info },
    };
    // Worker teardown: the environment's cleanup hook closes a socket JS never closed.
    // Stopping the thread needs no borrow of the slot (see `SlotCell::close`); weak, so the
    // slot does not keep the socket open after close.
    let stopper = Arc::downgrade(&open.shared);
    let inner = SlotCell::new(open, move || {
      if let Some(shared) = stopper.upgrade() {
        shared.request_stop();
      }
    });
    let hook = CleanupHook::register(&env, inner.clone());
    Ok(NativeSocket { inner, hook })
  }

  /// Runs `f` on the open socket, or fails with the closed-socket error.
  fn with<T>(&self, f: impl FnOnce(&mut Open) -> Result<T>) -> Result<T> {
    self.inner.with(f).unwrap_or_else(|| Err(closed()))
  }

  /// The local address the socket is bound to (the real port when bound to port 0).
  #[napi]
  pub fn local_address(&self) -> Result<AddressInfo> {
    self.with(|o| {
      let a = o.socket.local_addr().map_err(|e| os_error(OsError::from_io(&e, "getsockname"), ""))?;
      a.as_socket().map(|a| address_info(&a)).ok_or_else(|| invalid_arg("not an IP socket"))
    })
  }

  /// The connected peer, or null when not connected.
  #[napi]
  pub fn remote_address(&self) -> Result<Option<AddressInfo>> {
    self.with(|o| {
      if !o.connected {
        return Ok(None);
      }
      match o.socket.peer_addr() {
        Ok(a) => Ok(a.as_socket().map(|a| address_info(&a))),
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => Ok(None),
        Err(e) => Err(os_error(OsError::from_io(&e, "getpeername"), "")),
      }
    })
  }

  /// Connects the socket to a peer: sends without a destination go there, and only its
  /// datagrams are received.
  #[napi]
  pub fn connect(&self, address: String, port_number: u32) -> Result<()> {
    let peer =
      addr::socket_addr(&address, port(port_number, "port")?).map_err(|e| addr_error(e, "address"))?;
    self.with(|o| {
      let peer = if o.ipv6 { addr::to_v6_mapped(peer) } else { peer };
      o.socket
        .connect(&SockAddr::from(peer))
        .map_err(|e| os_error(OsError::from_io(&e, "connect"), &peer.to_string()))?;
      o.connected = true;
      Ok(())
    })
  }

  /// Dissolves the association made by `connect`.
  #[napi]
  pub fn disconnect(&self) -> Result<()> {
    self.with(|o| {
      // SAFETY: an all-zero sockaddr with AF_UNSPEC is the documented way to disconnect UDP.
      let mut sa: libc::sockaddr = unsafe { std::mem::zeroed() };
      sa.sa_family = libc::AF_UNSPEC as libc::sa_family_t;
      // SAFETY: passes a live sockaddr and its exact size.
      let rc = unsafe {
        libc::connect(o.socket.as_raw_fd(), &sa, std::mem::size_of::<libc::sockaddr>() as libc::socklen_t)
      };
      if rc != 0 {
        let e = std::io::Error::last_os_error();
        // Some systems answer EAFNOSUPPORT yet do disconnect.
        if e.raw_os_error() != Some(libc::EAFNOSUPPORT) {
          return Err(os_error(OsError::from_io(&e, "connect"), "AF_UNSPEC"));
        }
      }
      o.connected = false;
      Ok(())
    })
  }

  /// Buffer sizes the kernel granted (read back with getsockopt, not the requested ones).
  #[napi]
  pub fn buffer_sizes(&self) -> Result<BufferSizes> {
    self.with(|o| {
      let r = o.socket.recv_buffer_size().unwrap_or(o.granted.recv_buffer_size);
      let s = o.socket.send_buffer_size().unwrap_or(o.granted.send_buffer_size);
      Ok(BufferSizes {
        recv_buffer_size: r.min(u32::MAX as usize) as u32,
        send_buffer_size: s.min(u32::MAX as usize) as u32,
        recv_forced: o.granted.recv_forced,
        send_forced: o.granted.send_forced,
      })
    })
  }

  /// Sets `SO_RCVBUF` (or `SO_SNDBUF` when `send` is true) after creation.
  #[napi]
  pub fn set_buffer_size(&self, send: bool, size: u32) -> Result<()> {
    self.with(|o| {
      let r = if send {
        o.socket.set_send_buffer_size(size as usize)
      } else {
        o.socket.set_recv_buffer_size(size as usize)
      };
      r.map_err(|e| {
        os_error(OsError::from_io(&e, "setsockopt"), if send { "SO_SNDBUF" } else { "SO_RCVBUF" })
      })
    })
  }

  /// True when this socket uses one system call per datagram (the portable path).
  #[napi(getter)]
  pub fn portable(&self) -> bool {
    self.with(|o| Ok(o.shared.mode == RecvMode::Portable)).unwrap_or(false)
  }

  /// Starts (true) or pauses (false) reading; while paused, datagrams wait in the kernel.
  #[napi]
  pub fn set_reading(&self, on: bool) -> Result<()> {
    self.with(|o| {
      o.shared.set_reading(on);
      Ok(())
    })
  }

  /// Asks for one writable event (kind 2) when the send buffer has room again.
  #[napi]
  pub fn request_writable(&self) -> Result<()> {
    self.with(|o| {
      o.shared.request_writable();
      Ok(())
    })
  }

  /// Sends at most `max_count` datagrams from `start` of a packed batch without blocking; see
  /// `lib/pack.js` for the format. Returns how many went and why it stopped.
  #[allow(clippy::too_many_arguments)]
  #[napi]
  pub fn send(
    &self,
    data: &[u8],
    part_lens: &[u32],
    parts_per_msg: Option<&[u32]>,
    dest_index: Option<&[u32]>,
    dest_addresses: Vec<String>,
    dest_ports: Vec<u32>,
    start: u32,
    max_count: u32,
    source_index: Option<&[u32]>,
    sources: Option<Vec<String>>,
    tos: Option<&[i32]>,
  ) -> Result<NativeSendResult> {
    self.with(|o| {
      let mut source_ips = Vec::new();
      for (k, a) in sources.iter().flatten().enumerate() {
        // "source k" / "destination k": the JS layer names the message it came from.
        let (ip, _) = addr::parse_ip(a).map_err(|e| addr_error(e, &format!("source {k}")))?;
        source_ips.push(match ip {
          std::net::IpAddr::V4(v4) if o.ipv6 => std::net::IpAddr::V6(v4.to_ipv6_mapped()),
          other => other,
        });
      }
      if dest_addresses.len() != dest_ports.len() {
        return Err(invalid_arg("destination addresses and ports differ in length"));
      }
      let mut dests = Vec::with_capacity(dest_addresses.len());
      for (k, (a, &p)) in dest_addresses.iter().zip(dest_ports.iter()).enumerate() {
        let sa =
          addr::socket_addr(a, port(p, "port")?).map_err(|e| addr_error(e, &format!("destination {k}")))?;
        dests.push(SockAddr::from(if o.ipv6 { addr::to_v6_mapped(sa) } else { sa }));
      }
      let packed = Packed {
        data,
        part_lens,
        parts_per_msg,
        dest_index,
        dests: &dests,
        source_index,
        sources: &source_ips,
        tos,
      };
      packed.validate().map_err(invalid_arg)?;
      if start as usize > packed.count() {
        return Err(invalid_arg("start is past the end of the batch"));
      }
      if dests.is_empty() && !o.connected && packed.count() > start as usize {
        return Err(invalid_arg("a destination is required on an unconnected socket"));
      }
      let batched = o.shared.mode == RecvMode::Batched;
      let end = (start as usize).saturating_add(max_count as usize);
      let out = send::send(o.socket.as_raw_fd(), &packed, start as usize, end, batched, &mut o.scratch);
      let c = &o.shared.counters;
      Counters::add(&c.datagrams_sent, out.sent as u64);
      Counters::add(&c.bytes_sent, out.bytes);
      Counters::add(&c.send_syscalls, out.syscalls);
      Counters::add(&c.gso_sends, out.gso_sends);
      Counters::add(&c.gso_fallbacks, out.gso_fallbacks);
      if out.would_block {
        Counters::add(&c.send_retries, 1);
      }
      if out.error.is_some() {
        Counters::add(&c.send_errors, 1);
      }
      Ok(NativeSendResult {
        sent: out.sent as u32,
        bytes: out.bytes as f64,
        would_block: out.would_block,
        errno: out.error.map_or(0, |e| e.errno),
        syscall: out.error.map_or("", |e| e.syscall).to_string(),
      })
    })
  }

  /// What this socket can do (probed once at open; `gso` turns false when GSO proves not to
  /// work on the socket's path).
  #[napi]
  pub fn capabilities(&self) -> Result<Capabilities> {
    self.with(|o| {
      let batched = o.shared.mode == RecvMode::Batched;
      Ok(Capabilities {
        batched,
        gso_supported: o.caps.gso_supported,
        gso: o.scratch.gso,
        gro: o.caps.info.gro,
        drop_counter: o.caps.drop_counter,
        pktinfo: o.caps.info.pktinfo,
        timestamps: o.caps.info.timestamps,
        recv_tos: o.caps.info.tos,
        reuse_port: cfg!(target_os = "linux") || cfg!(target_os = "macos"),
      })
    })
  }

  /// Sets an integer socket option directly (`setsockopt(fd, level, option, &value)`): an
  /// escape hatch for options this API does not cover.
  #[napi]
  pub fn set_int_option(&self, level: i32, option: i32, value: i32) -> Result<()> {
    self.with(|o| {
      #[cfg(target_os = "linux")]
      if level == libc::SOL_UDP && option == crate::linux::UDP_GRO && value != 0 && !o.caps.info.gro {
        // The receive slots of a socket bound without `gro` hold one datagram each: coalesced
        // receives would be cut, and most of their datagrams lost without a count.
        return Err(invalid_arg(
          "option UDP_GRO cannot be enabled with setSocketOption: bind with gro: true",
        ));
      }
      socket::set_int(&o.socket, level, option, value, "raw option").map_err(|e| os_error(e.os, &e.detail))
    })
  }

  /// Reads an integer socket option directly (`getsockopt`).
  #[napi]
  pub fn get_int_option(&self, level: i32, option: i32) -> Result<i32> {
    self.with(|o| {
      socket::get_int(&o.socket, level, option)
        .map_err(|e| os_error(OsError::from_io(&e, "getsockopt"), "raw option"))
    })
  }

  /// Sets `SO_BROADCAST`.
  #[napi]
  pub fn set_broadcast(&self, on: bool) -> Result<()> {
    self.with(|o| {
      o.socket.set_broadcast(on).map_err(|e| os_error(OsError::from_io(&e, "setsockopt"), "SO_BROADCAST"))
    })
  }

  /// Reads `SO_BROADCAST`.
  #[napi]
  pub fn get_broadcast(&self) -> Result<bool> {
    self.with(|o| {
      o.socket.broadcast().map_err(|e| os_error(OsError::from_io(&e, "getsockopt"), "SO_BROADCAST"))
    })
  }

  /// Sets the unicast TTL (IPv4) or hop limit (IPv6).
  #[napi]
  pub fn set_ttl(&self, ttl: u32) -> Result<()> {
    self.with(|o| {
      let r = if o.ipv6 { o.socket.set_unicast_hops_v6(ttl) } else { o.socket.set_ttl_v4(ttl) };
      r.map_err(|e| os_error(OsError::from_io(&e, "setsockopt"), "IP_TTL"))
    })
  }

  /// Sets the TOS (IPv4) or traffic class (IPv6) of everything this socket sends.
  #[napi]
  pub fn set_tos(&self, tos: u32) -> Result<()> {
    if tos > 255 {
      return Err(invalid_arg("tos must be 0..255"));
    }
    self.with(|o| socket::set_tos(&o.socket, o.ipv6, tos).map_err(|e| os_error(e.os, &e.detail)))
  }

  /// Sets the multicast TTL (IPv4) or hop limit (IPv6).
  #[napi]
  pub fn set_multicast_ttl(&self, ttl: u32) -> Result<()> {
    self.with(|o| {
      let r = if o.ipv6 { o.socket.set_multicast_hops_v6(ttl) } else { o.socket.set_multicast_ttl_v4(ttl) };
      r.map_err(|e| os_error(OsError::from_io(&e, "setsockopt"), "IP_MULTICAST_TTL"))
    })
  }

  /// Sets whether multicast sent from this socket loops back to local receivers.
  #[napi]
  pub fn set_multicast_loopback(&self, on: bool) -> Result<()> {
    self.with(|o| {
      let r = if o.ipv6 { o.socket.set_multicast_loop_v6(on) } else { o.socket.set_multicast_loop_v4(on) };
      r.map_err(|e| os_error(OsError::from_io(&e, "setsockopt"), "IP_MULTICAST_LOOP"))
    })
  }

  /// Reads whether multicast loops back.
  #[napi]
  pub fn get_multicast_loopback(&self) -> Result<bool> {
    self.with(|o| {
      let r = if o.ipv6 { o.socket.multicast_loop_v6() } else { o.socket.multicast_loop_v4() };
      r.map_err(|e| os_error(OsError::from_io(&e, "getsockopt"), "IP_MULTICAST_LOOP"))
    })
  }

  /// Chooses the interface for outgoing multicast: an IPv4 address of the interface, or for
  /// IPv6 an interface name, index or `::%scope`.
  #[napi]
  pub fn set_multicast_interface(&self, interface: String) -> Result<()> {
    self.with(|o| {
      let r = if o.ipv6 {
        o.socket.set_multicast_if_v6(interface_index(&interface)?)
      } else {
        o.socket.set_multicast_if_v4(&ipv4(&interface, "interface")?)
      };
      r.map_err(|e| os_error(OsError::from_io(&e, "setsockopt"), "IP_MULTICAST_IF"))
    })
  }

  /// Joins (`join` true) or leaves a multicast group, optionally on one interface, optionally
  /// source-specific (`source`).
  #[napi]
  pub fn membership(
    &self,
    join: bool,
    group: String,
    interface: Option<String>,
    source: Option<String>,
  ) -> Result<()> {
    let (g, _) = addr::parse_ip(&group).map_err(|e| addr_error(e, "group"))?;
    if !g.is_multicast() {
      return Err(invalid_arg("group must be a multicast address"));
    }
    self.with(|o| {
      let what = if join { "join" } else { "leave" };
      let err = |e: std::io::Error| os_error(OsError::from_io(&e, "setsockopt"), what);
      match (g, source) {
        (std::net::IpAddr::V4(g4), None) => {
          let ifa = match &interface {
            Some(i) => ipv4(i, "interface")?,
            None => std::net::Ipv4Addr::UNSPECIFIED,
          };
          if join { o.socket.join_multicast_v4(&g4, &ifa) } else { o.socket.leave_multicast_v4(&g4, &ifa) }
            .map_err(err)
        }
        (std::net::IpAddr::V4(g4), Some(src)) => {
          let s4 = ipv4(&src, "source")?;
          let ifa = match &interface {
            Some(i) => ipv4(i, "interface")?,
            None => std::net::Ipv4Addr::UNSPECIFIED,
          };
          if join { o.socket.join_ssm_v4(&s4, &g4, &ifa) } else { o.socket.leave_ssm_v4(&s4, &g4, &ifa) }
            .map_err(err)
        }
        (std::net::IpAddr::V6(g6), None) => {
          let idx = match &interface {
            Some(i) => interface_index(i)?,
            None => 0,
          };
          if join { o.socket.join_multicast_v6(&g6, idx) } else { o.socket.leave_multicast_v6(&g6, idx) }
            .map_err(err)
        }
        (std::net::IpAddr::V6(g6), Some(src)) => {
          let (s, _) = addr::parse_ip(&src).map_err(|e| addr_error(e, "source"))?;
          let std::net::IpAddr::V6(s6) = s else {
            return Err(invalid_arg("source must be IPv6 for an IPv6 group"));
          };
          let idx = match &interface {
            Some(i) => interface_index(i)?,
            None => 0,
          };
          crate::multicast::ssm_v6(&o.socket, join, g6, s6, idx).map_err(err)
        }
      }
    })
  }

  /// Counters since the socket was opened (zeros after close).
  #[napi]
  pub fn stats(&self) -> NativeStats {
    self
      .with(|o| {
        let meminfo = read_meminfo(&o.socket);
        if let Some(m) = &meminfo {
          Counters::raise(&o.shared.counters.kernel_drops, m.drops);
        }
        Ok(NativeStats::from_counters(&o.shared.counters, meminfo))
      })
      .unwrap_or_else(|_| NativeStats::from_counters(&Counters::default(), None))
  }

  /// Keeps the Node event loop alive while the socket is open (the default).
  #[napi(js_name = "ref")]
  pub fn ref_(&self, env: Env) -> Result<()> {
    self.set_ref(env, true)
  }

  /// Lets the process exit even though the socket is open.
  #[napi]
  pub fn unref(&self, env: Env) -> Result<()> {
    self.set_ref(env, false)
  }

  fn set_ref(&self, env: Env, on: bool) -> Result<()> {
    if self.inner.is_closed() {
      return Ok(());
    }
    self.with(|o| {
      if o.referenced == on {
        return Ok(());
      }
      let raw = o.dispatch.raw();
      // SAFETY: called on the JS thread that owns the (still open) threadsafe function.
      let status = unsafe {
        if on {
          napi::sys::napi_ref_threadsafe_function(env.raw(), raw)
        } else {
          napi::sys::napi_unref_threadsafe_function(env.raw(), raw)
        }
      };
      check(status)?;
      o.referenced = on;
      Ok(())
    })
  }

  /// Stops the I/O thread, closes the fd and releases the event-loop reference. Idempotent.
  #[napi]
  pub fn close(&mut self) {
    self.shutdown();
  }

  /// True once `close()` has run.
  #[napi(getter)]
  pub fn closed(&self) -> bool {
    self.inner.is_closed()
  }

  /// Closes the slot (stop, join, fd closed; deferred to the end of a call on this socket that
  /// is on the stack, with the thread told to stop at once) and frees the cleanup hook.
  fn shutdown(&mut self) {
    self.inner.close();
    if let Some(hook) = self.hook.take() {
      hook.remove();
    }
  }
}

impl Drop for NativeSocket {
  /// Runs when the JS object is garbage-collected without `close()`: same as `close()`.
  fn drop(&mut self) {
    self.shutdown();
  }
}

fn check(status: napi::sys::napi_status) -> Result<()> {
  if status == napi::sys::Status::napi_ok {
    Ok(())
  } else {
    Err(Error::new(Status::from(status), "threadsafe function (un)ref failed".to_string()))
  }
}

struct MemInfo {
  drops: u64,
  queued: u64,
}

#[cfg(target_os = "linux")]
fn read_meminfo(s: &Socket) -> Option<MemInfo> {
  let mut v = [0u32; 16];
  let mut len = std::mem::size_of_val(&v) as libc::socklen_t;
  // SAFETY: passes a live u32 array and its size; the kernel writes at most `len` bytes.
  let rc = unsafe {
    libc::getsockopt(
      s.as_raw_fd(),
      libc::SOL_SOCKET,
      crate::linux::SO_MEMINFO,
      v.as_mut_ptr() as *mut libc::c_void,
      &mut len,
    )
  };
  let have = len as usize / 4;
  (rc == 0 && have > crate::linux::SK_MEMINFO_DROPS).then(|| MemInfo {
    drops: v[crate::linux::SK_MEMINFO_DROPS] as u64,
    queued: v[crate::linux::SK_MEMINFO_RMEM_ALLOC] as u64,
  })
}

#[cfg(not(target_os = "linux"))]
fn read_meminfo(_s: &Socket) -> Option<MemInfo> {
  None
}

/// Asks for the kernel's drop counter with every datagram; false when unavailable.
#[cfg(target_os = "linux")]
fn enable_drop_counter(s: &Socket) -> bool {
  socket::set_int(s, libc::SOL_SOCKET, crate::linux::SO_RXQ_OVFL, 1, "SO_RXQ_OVFL").is_ok()
}

#[cfg(not(target_os = "linux"))]
fn enable_drop_counter(_s: &Socket) -> bool {
  false
}

impl NativeStats {
  fn from_counters(c: &Counters, m: Option<MemInfo>) -> Self {
    let g = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed) as f64;
    NativeStats {
      datagrams_received: g(&c.datagrams_received),
      bytes_received: g(&c.bytes_received),
      batches_received: g(&c.batches_received),
      truncated: g(&c.truncated),
      recv_syscalls: g(&c.recv_syscalls),
      recv_errors: g(&c.recv_errors),
      kernel_drops: g(&c.kernel_drops),
      datagrams_sent: g(&c.datagrams_sent),
      bytes_sent: g(&c.bytes_sent),
      send_syscalls: g(&c.send_syscalls),
      send_retries: g(&c.send_retries),
      send_errors: g(&c.send_errors),
      events_dropped: g(&c.events_dropped),
      gro_receives: g(&c.gro_receives),
      control_truncated: g(&c.control_truncated),
      error_queue_notices: g(&c.error_queue_notices),
      gso_sends: g(&c.gso_sends),
      gso_fallbacks: g(&c.gso_fallbacks),
      recv_queue_bytes: m.map_or(0.0, |m| m.queued as f64),
    }
  }
}
